//! Kafka's RecordBatch v2 (`DefaultRecordBatch` / `DefaultRecord`), byte for byte.
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...
//! ```
//!
//! `batchLength` counts the bytes after itself; the CRC-32C covers `attributes` to the end.
//! Because neither `baseOffset` nor the leader epoch is covered by the CRC, a producer encodes a
//! whole batch outside the partition lock and only patches the base offset once it holds the lock
//! and knows the log end offset ([`set_base_offset`]).
//!
//! A compressed batch (attributes bits 0-2, see [`super::compression`]) has the same header;
//! its records are one compressed stream, which [`Batch::records`] decompresses into a
//! [`Decompressor`]'s reused buffer and decodes from there. An uncompressed batch's records are
//! decoded straight from the batch bytes: the decompressor is not touched.

use std::mem::MaybeUninit;

use super::compression::{Compression, Compressor, DecompressError, Decompressor};
use super::crc;
use crate::record::{Header, HeaderRef, Headers, Record, RecordRef};

/// Size of the fixed batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s payload: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
pub const MAGIC: i8 = 2;

const LENGTH_OFFSET: usize = 8;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const RECORDS_COUNT_OFFSET: usize = 57;
/// Smallest `batchLength` a valid batch can have (a header with no records).
const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch is incomplete: {needed} bytes needed, {available} available")]
    Incomplete { needed: usize, available: usize },
    #[error("batch length {0} is impossible")]
    BadLength(i32),
    #[error("unsupported magic byte {0} (only RecordBatch v2 is supported)")]
    BadMagic(i8),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("unknown compression codec {codec} in the batch's attributes ({attributes:#06x}); Kafka's codecs are 1 gzip, 2 snappy, 3 lz4 and 4 zstd")]
    UnknownCodec { codec: u8, attributes: i16 },
    #[error("control batches (transaction markers, attributes {0:#06x}) are not supported")]
    ControlBatch(i16),
    #[error("transactional batches (attributes {0:#06x}) are not supported")]
    TransactionalBatch(i16),
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error(
        "the batch header counts {expected} records but its decompressed records hold {found}"
    )]
    RecordCount { expected: i32, found: String },
    #[error("record {index} of the batch is malformed: {reason}")]
    BadRecord { index: i32, reason: &'static str },
    /// Found by readers, which know which offset the batch at a position must start at.
    #[error("batch starts at offset {found} where {expected} was expected")]
    UnexpectedOffset { expected: i64, found: i64 },
    /// Found by readers: a batch claiming to run past the end of the log as its last writer
    /// left it, although the file holds all of that (a damaged length field).
    #[error("batch length {length} runs past the end of the log ({end} bytes) as last written")]
    PastLogEnd { length: i32, end: u64 },
}

/// The fixed header of a batch, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the length field; the whole batch is `LOG_OVERHEAD + batch_length` bytes.
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf` without checking the CRC. Needs only the first
    /// [`HEADER_LEN`] bytes; the size of the whole batch is [`BatchHeader::total_len`].
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Incomplete {
                needed: LOG_OVERHEAD,
                available: buf.len(),
            });
        }
        let batch_length = read_i32(buf, LENGTH_OFFSET);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength(batch_length));
        }
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Incomplete {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != MAGIC {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, 0),
            batch_length,
            magic,
            crc: read_u32(buf, CRC_OFFSET),
            attributes: read_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_OFFSET),
            records_count: read_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// Size of the whole batch starting at `buf`, from its length field alone; `None` when
    /// `buf` is too short to hold that field or the length is impossible.
    pub fn length_at(buf: &[u8]) -> Option<usize> {
        if buf.len() < LOG_OVERHEAD {
            return None;
        }
        let batch_length = read_i32(buf, LENGTH_OFFSET);
        (batch_length >= MIN_BATCH_LENGTH).then(|| LOG_OVERHEAD + batch_length as usize)
    }

    /// Size of the whole batch in bytes, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

/// A complete batch whose length, magic and CRC checked out.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub header: BatchHeader,
    /// The whole batch, header included.
    pub bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Validates the batch at the start of `buf`: length, magic, attributes and CRC.
    /// [`BatchError::Incomplete`] means `buf` ends inside the batch.
    pub fn parse(buf: &'a [u8]) -> Result<Batch<'a>, BatchError> {
        let header = BatchHeader::parse(buf)?;
        let total = header.total_len();
        if buf.len() < total {
            return Err(BatchError::Incomplete {
                needed: total,
                available: buf.len(),
            });
        }
        let bytes = &buf[..total];
        let computed = crc::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        if computed != header.crc {
            return Err(BatchError::BadCrc {
                stored: header.crc,
                computed,
            });
        }
        check_attributes(header.attributes)?;
        Ok(Batch { header, bytes })
    }

    /// The batch's codec; `Err` for ids 5-7 (which [`Batch::parse`] refuses).
    pub fn compression(&self) -> Result<Compression, BatchError> {
        codec_of(self.header.attributes)
    }

    /// Decodes the records lazily. An uncompressed batch's records are borrowed from the batch
    /// bytes and `decompressor` is not touched; a compressed batch's are decompressed into it
    /// first (refused whole when the stream is damaged, too large or does not frame exactly the
    /// header's record count) and borrowed from there.
    pub fn records<'s>(
        &self,
        decompressor: &'s mut Decompressor,
    ) -> Result<RecordIter<'s>, BatchError>
    where
        'a: 's,
    {
        let stored = &self.bytes[HEADER_LEN..];
        let records = match self.compression()? {
            Compression::None => stored,
            codec => {
                let records = decompressor.decompress(codec, stored)?;
                check_framing(records, self.header.records_count)?;
                records
            }
        };
        Ok(RecordIter {
            header: self.header,
            rest: records,
            len: records.len(),
            index: 0,
        })
    }

    /// The records of an uncompressed batch, borrowed from its bytes; `None` when the batch is
    /// compressed.
    pub fn plain_records(&self) -> Option<RecordIter<'a>> {
        if self.header.attributes & 0b111 != 0 {
            return None;
        }
        let records = &self.bytes[HEADER_LEN..];
        Some(RecordIter {
            header: self.header,
            rest: records,
            len: records.len(),
            index: 0,
        })
    }

    /// Continues decoding where an iterator over this same batch stood
    /// ([`RecordIter::cursor`]), without decoding the records before that point again. For a
    /// compressed batch, `decompressor` must still hold what [`Batch::records`] put there for
    /// this batch: it is not decompressed again.
    pub fn records_from<'s>(
        &self,
        decompressor: &'s Decompressor,
        cursor: RecordCursor,
    ) -> RecordIter<'s>
    where
        'a: 's,
    {
        let records = match self.compression() {
            Ok(Compression::None) | Err(_) => &self.bytes[HEADER_LEN..],
            Ok(_) => decompressor.output(),
        };
        let position = cursor.position.min(records.len());
        RecordIter {
            header: self.header,
            rest: &records[position..],
            len: records.len(),
            index: cursor.index,
        }
    }
}

/// The codec named by attributes bits 0-2.
fn codec_of(attributes: i16) -> Result<Compression, BatchError> {
    let codec = (attributes & 0b111) as u8;
    Compression::from_id(codec).ok_or(BatchError::UnknownCodec { codec, attributes })
}

/// Refuses what spool cannot read: codec ids 5-7, and transactional (bit 4) and control
/// (bit 5) batches. Idempotent producers' fields (producer id, epoch, sequence) are read as any
/// other batch's.
fn check_attributes(attributes: i16) -> Result<(), BatchError> {
    codec_of(attributes)?;
    if attributes & 0b10_0000 != 0 {
        return Err(BatchError::ControlBatch(attributes));
    }
    if attributes & 0b1_0000 != 0 {
        return Err(BatchError::TransactionalBatch(attributes));
    }
    Ok(())
}

/// Checks that decompressed records are exactly `count` records by their length fields, so a
/// stream that decompresses to more or fewer records than the header says is refused before
/// any of them is delivered. One varint read a record: cheap beside the decompression.
fn check_framing(mut records: &[u8], count: i32) -> Result<(), BatchError> {
    let mut found: i64 = 0;
    while !records.is_empty() {
        let bad = |reason: &str| BatchError::RecordCount {
            expected: count,
            found: format!("{found} records, then {reason}"),
        };
        let length = read_varint(&mut records).map_err(bad)?;
        let length = usize::try_from(length).map_err(|_| bad("a negative record length"))?;
        if length > records.len() {
            return Err(bad("a record running past the end"));
        }
        records = &records[length..];
        found += 1;
    }
    if found != i64::from(count) {
        return Err(BatchError::RecordCount {
            expected: count,
            found: found.to_string(),
        });
    }
    Ok(())
}

/// Makes a compressed copy of an encoded, uncompressed batch in `out` (cleared first): the
/// same header with the codec in its attributes, the records compressed with `codec`, the
/// length and CRC computed anew. The base offset is patched under the lock as for any batch.
pub fn compress_batch(
    batch: &[u8],
    codec: Compression,
    compressor: &mut Compressor,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.clear();
    out.extend_from_slice(&batch[..HEADER_LEN]);
    compressor.compress(codec, &batch[HEADER_LEN..], out)?;
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| std::io::Error::other("compressed batch larger than 2 GiB"))?;
    out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (read_i16(out, ATTRIBUTES_OFFSET) & !0b111) | i16::from(codec.id());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A point inside a batch's records: the byte position of the next record (from the first
/// record, in the records as decoded) and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCursor {
    position: usize,
    index: i32,
}

impl RecordCursor {
    /// Bytes from the first record to the next one, in the records as decoded.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Before record `index`, which starts `position` bytes after the first record.
    pub(crate) fn new(position: usize, index: i32) -> RecordCursor {
        RecordCursor { position, index }
    }

    /// The index of the next record.
    pub fn index(&self) -> i32 {
        self.index
    }
}

/// Iterator over the records of a [`Batch`].
pub struct RecordIter<'a> {
    header: BatchHeader,
    rest: &'a [u8],
    /// Length of the records as decoded (for [`RecordIter::cursor`]).
    len: usize,
    index: i32,
}

impl RecordIter<'_> {
    /// Where the iterator stands, for [`Batch::records_from`].
    pub fn cursor(&self) -> RecordCursor {
        RecordCursor {
            position: self.len - self.rest.len(),
            index: self.index,
        }
    }

    /// Records not yet decoded.
    pub fn remaining(&self) -> usize {
        usize::try_from(self.header.records_count - self.index).unwrap_or(0)
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordRef<'a>, BatchError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.header.records_count {
            return None;
        }
        // Decoding from a local copy keeps the cursor in registers. The usual record goes
        // straight from its decoder to the caller, through no intermediate `Result`.
        let mut rest = self.rest;
        if let Some(record) = decode_usual_record(&mut rest, &self.header) {
            self.rest = rest;
            self.index += 1;
            return Some(Ok(record));
        }
        Some(self.next_checked())
    }
}

impl<'a> RecordIter<'a> {
    /// The next record through the checked decoder: one with headers or long varints, or a
    /// malformed one.
    #[inline(never)]
    fn next_checked(&mut self) -> Result<RecordRef<'a>, BatchError> {
        let mut rest = self.rest;
        match decode_record_checked(&mut rest, &self.header) {
            Ok(record) => {
                self.rest = rest;
                self.index += 1;
                Ok(record)
            }
            Err(reason) => Err(self.malformed(reason)),
        }
    }
}

impl RecordIter<'_> {
    #[cold]
    fn malformed(&mut self, reason: &'static str) -> BatchError {
        let index = self.index;
        // After a malformed record nothing further can be trusted.
        self.index = self.header.records_count;
        BatchError::BadRecord { index, reason }
    }
}

/// Decodes the record at the start of `buf` (the rest of the batch) and moves `buf` past it,
/// field by field, each checked: any record, and what is wrong with a malformed one. Fields are read from the rest of the batch rather than from a slice cut to
/// the record's length; whether they add up to exactly that length is checked once at the end.
fn decode_record_checked<'a>(
    buf: &mut &'a [u8],
    header: &BatchHeader,
) -> Result<RecordRef<'a>, &'static str> {
    let length = read_varint(buf)?;
    let length = usize::try_from(length).map_err(|_| "negative record length")?;
    if buf.len() < length {
        return Err("record length runs past the batch");
    }
    let end = buf.len() - length;
    let _attributes = take(buf, 1)?;
    let timestamp_delta = read_varlong(buf)?;
    let offset_delta = read_varint(buf)?;
    let key = read_nullable_bytes(buf)?;
    let value = read_nullable_bytes(buf)?;
    let header_count = read_varint(buf)?;
    let header_count = usize::try_from(header_count).map_err(|_| "negative header count")?;
    if header_count > buf.len().saturating_sub(end) {
        return Err("header count runs past the record");
    }
    // Headers are checked here and decoded again only if they are printed.
    let header_bytes = *buf;
    for _ in 0..header_count {
        read_nullable_bytes(buf)?.ok_or("null header key")?;
        read_nullable_bytes(buf)?;
    }
    let headers = Headers::Encoded {
        count: header_count,
        bytes: &header_bytes[..header_bytes.len() - buf.len()],
    };
    if buf.len() != end {
        return Err(if buf.len() > end {
            "bytes left over after the record's headers"
        } else {
            "field runs past the record"
        });
    }
    Ok(RecordRef {
        offset: header.base_offset + i64::from(offset_delta),
        timestamp: header.base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

/// The usual record, decoded with as few checks as its shape allows: no headers, and every
/// varint of at most three bytes (record lengths, offset deltas and key and value lengths under
/// a million). `None` for anything else, malformed records included, which
/// [`decode_record_checked`] then decodes (or reports) field by field.
#[inline(always)]
fn decode_usual_record<'a>(buf: &mut &'a [u8], header: &BatchHeader) -> Option<RecordRef<'a>> {
    let bytes: &'a [u8] = buf;
    // Length, attributes, timestamp delta, offset delta and key length lie in the first 13
    // bytes: one bounds check for all of them.
    let window: &[u8; 16] = bytes.first_chunk()?;
    let mut at = 0;
    let length = usize::try_from(small_varint(window, &mut at)?).ok()?;
    let body = at;
    let end = body.checked_add(length)?;
    if end > bytes.len() {
        return None;
    }
    at += 1; // attributes
    let timestamp_delta = small_varint(window, &mut at)?;
    let offset_delta = small_varint(window, &mut at)?;
    // Key and value are cut out alike, written out twice: one shared helper returning
    // `Option<Option<&[u8]>>` measured 28% slower for a whole read (23.6 against 18.4 ms).
    let key = match small_varint(window, &mut at)? {
        -1 => None,
        len => {
            let key = bytes[..end].get(at..at + usize::try_from(len).ok()?)?;
            at += key.len();
            Some(key)
        }
    };
    let value = match small_varint(&bytes[..end], &mut at)? {
        -1 => None,
        len => {
            let value = bytes[..end].get(at..at + usize::try_from(len).ok()?)?;
            at += value.len();
            Some(value)
        }
    };
    // No headers: a header count of zero ends the record.
    if bytes.get(at) != Some(&0) || at + 1 != end {
        return None;
    }
    *buf = &bytes[end..];
    Some(RecordRef {
        offset: header.base_offset + i64::from(offset_delta),
        timestamp: header
            .base_timestamp
            .wrapping_add(i64::from(timestamp_delta)),
        key,
        value,
        headers: Headers::NONE,
    })
}

/// A zig-zag varint of one to three bytes at `bytes[*at]`, moving `*at` past it.
#[inline(always)]
fn small_varint(bytes: &[u8], at: &mut usize) -> Option<i32> {
    // Three bytes carry 21 bits: any such value is a valid zig-zag i32.
    let raw = small_raw_varint(bytes, at)?;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// An unsigned LEB128 of one to three bytes at `bytes[*at]`, moving `*at` past it; `None` when
/// it is longer or `bytes` ends first.
#[inline(always)]
fn small_raw_varint(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let b0 = *bytes.get(*at)?;
    if b0 < 0x80 {
        *at += 1;
        return Some(u32::from(b0));
    }
    let b1 = *bytes.get(*at + 1)?;
    if b1 < 0x80 {
        *at += 2;
        return Some(u32::from(b0 & 0x7f) | u32::from(b1) << 7);
    }
    let b2 = *bytes.get(*at + 2)?;
    if b2 < 0x80 {
        *at += 3;
        return Some(u32::from(b0 & 0x7f) | u32::from(b1 & 0x7f) << 7 | u32::from(b2) << 14);
    }
    None
}

/// Decodes the header at the start of `buf` and moves `buf` past it; `None` if it is malformed.
pub(crate) fn decode_header<'a>(buf: &mut &'a [u8]) -> Option<HeaderRef<'a>> {
    let key = read_nullable_bytes(buf).ok()??;
    let value = read_nullable_bytes(buf).ok()?;
    Some(HeaderRef { key, value })
}

/// Overwrites the base offset of an encoded batch (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Encodes `records` as one batch with base offset 0 into `out` (cleared first). Offsets inside
/// the batch are 0, 1, 2, ...; the caller patches the base offset under the partition lock.
pub fn encode_batch(out: &mut Vec<u8>, records: &[Record]) {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut builder = BatchBuilder::new(std::mem::take(out));
    for r in records {
        builder.push(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    builder.finish();
    *out = builder.into_bytes();
}

/// Builds a batch record by record, encoding each straight into the batch buffer, so a
/// producer never holds records twice. The buffer is reused from batch to batch.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Whether the buffer's whole capacity was written once (see `touch_capacity`).
    touched: bool,
}

impl BatchBuilder {
    pub fn new(mut buf: Vec<u8>) -> BatchBuilder {
        buf.clear();
        buf.resize(HEADER_LEN, 0);
        BatchBuilder {
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
            touched: false,
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Bytes the buffer holds room for.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Size of the batch so far, header included.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Measures a record once: what a producer needs to size and push it without walking its
    /// key, value and headers again.
    #[inline]
    pub fn measure(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> Measured {
        let mut payload = nullable_bytes_len(key) + nullable_bytes_len(value) + 1;
        if headers.is_empty() {
            // The usual record: its header count, 0, is one byte.
            return Measured { payload };
        }
        payload += varint_len(headers.len() as i64) - 1;
        for h in headers {
            payload += nullable_bytes_len(Some(&h.key)) + nullable_bytes_len(h.value.as_deref());
        }
        Measured { payload }
    }

    /// Size of a batch holding only the measured record.
    #[inline]
    pub fn single_measured_size(m: Measured) -> usize {
        let body = m.body_len(0, 0);
        HEADER_LEN + varint_len(body as i64) + body
    }

    /// Size the batch would have after pushing the measured record.
    #[inline]
    pub fn size_with_measured(&self, timestamp: i64, m: Measured) -> usize {
        let body = m.body_len(timestamp.wrapping_sub(self.base_for(timestamp)), self.count);
        self.buf.len() + varint_len(body as i64) + body
    }

    #[inline]
    fn base_for(&self, timestamp: i64) -> i64 {
        if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        }
    }

    /// [`BatchBuilder::push`] for a record already measured with [`BatchBuilder::measure`].
    #[inline]
    pub fn push_measured(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        m: Measured,
    ) {
        let delta = timestamp.wrapping_sub(self.base_for(timestamp));
        let body = m.body_len(delta, self.count);
        let total = length_varint_len(body) + body;
        self.write_record(timestamp, delta, body, total, key, value, headers);
    }

    /// Pushes the measured record unless the batch already holds records and would grow past
    /// `limit` bytes with it; returns whether it was pushed. The size is computed once for both.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn push_within(
        &mut self,
        limit: usize,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        m: Measured,
    ) -> bool {
        let delta = timestamp.wrapping_sub(self.base_for(timestamp));
        let body = m.body_len(delta, self.count);
        let total = length_varint_len(body) + body;
        if self.count > 0 && self.buf.len() + total > limit {
            return false;
        }
        self.write_record(timestamp, delta, body, total, key, value, headers);
        true
    }

    /// Writes a record of `total` bytes (`body` and its length) at the end of the batch.
    /// Inlined into its two callers: a call per record cost more than the sizes it passes.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn write_record(
        &mut self,
        timestamp: i64,
        delta: i64,
        body: usize,
        total: usize,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        // The record's exact size is known: reserve it once and fill it in place, instead of
        // checking capacity for every byte (or zeroing bytes about to be overwritten).
        let start = self.buf.len();
        self.buf.reserve(total);
        let mut out = Cursor {
            buf: &mut self.buf.spare_capacity_mut()[..total],
            pos: 0,
        };
        out.length(body);
        out.byte(0); // attributes
        out.varint(delta);
        out.length(self.count as usize);
        out.nullable_bytes(key);
        out.nullable_bytes(value);
        out.varint(headers.len() as i64);
        for h in headers {
            out.nullable_bytes(Some(&h.key));
            out.nullable_bytes(h.value.as_deref());
        }
        assert_eq!(out.pos, total, "measured and written sizes agree");
        // SAFETY: the cursor writes in order from position 0 and has reached `total`, so the
        // `total` bytes after `start` are initialized.
        unsafe { self.buf.set_len(start + total) };
        self.count += 1;
    }

    /// Size the batch would have after pushing this record.
    pub fn size_with(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let body = body_len(
            timestamp.wrapping_sub(base),
            self.count,
            key,
            value,
            headers,
        );
        self.buf.len() + varint_len(body as i64) + body
    }

    /// Size of a batch holding only this record.
    pub fn single_record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = body_len(0, 0, key, value, headers);
        HEADER_LEN + varint_len(body as i64) + body
    }

    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let m = BatchBuilder::measure(key, value, headers);
        self.push_measured(timestamp, key, value, headers, m);
    }

    /// Fills in the header (base offset 0) and CRC; the bytes are then a complete batch.
    pub fn finish(&mut self) -> &mut [u8] {
        assert!(self.count > 0, "a batch holds at least one record");
        let batch_length = (self.buf.len() - LOG_OVERHEAD) as i32;
        let h = &mut self.buf[..HEADER_LEN];
        h[..8].copy_from_slice(&0i64.to_be_bytes()); // baseOffset, patched under the lock
        h[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch
        h[MAGIC_OFFSET] = MAGIC as u8;
        h[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&0i16.to_be_bytes());
        h[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&(self.count - 1).to_be_bytes());
        h[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // producerId
        h[51..53].copy_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
        h[53..57].copy_from_slice(&(-1i32).to_be_bytes()); // baseSequence
        h[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
            .copy_from_slice(&self.count.to_be_bytes());
        let crc = crc::crc32c(&self.buf[ATTRIBUTES_OFFSET..]);
        self.buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        &mut self.buf
    }

    /// Writes the buffer's unused capacity once, so that its pages are faulted in by the thread
    /// calling this (a producer's appender, between batches) rather than one by one by the
    /// thread that fills the buffer next.
    pub fn touch_capacity(&mut self) {
        if !self.touched {
            self.buf.spare_capacity_mut().fill(MaybeUninit::new(0));
            self.touched = true;
        }
    }

    /// Starts the next batch in the same buffer.
    pub fn reset(&mut self) {
        self.buf.truncate(HEADER_LEN);
        self.count = 0;
        self.max_timestamp = i64::MIN;
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Writes a record into the spare capacity reserved for it (bounds-checked, never zeroed first).
struct Cursor<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    pos: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.pos].write(b);
        self.pos += 1;
    }

    /// [`Cursor::varint`] of a length or count (never negative, and below 2^62).
    #[inline(always)]
    fn length(&mut self, n: usize) {
        self.zigzagged((n as u64) << 1);
    }

    #[inline(always)]
    fn varint(&mut self, value: i64) {
        self.zigzagged(((value << 1) ^ (value >> 63)) as u64);
    }

    #[inline(always)]
    fn zigzagged(&mut self, mut v: u64) {
        // One and two bytes (lengths under 8 KiB, offset deltas under 8192) with one bounds
        // check each.
        if v < 0x80 {
            return self.byte(v as u8);
        }
        if v < 0x4000 {
            let dst = &mut self.buf[self.pos..self.pos + 2];
            dst[0].write((v as u8) | 0x80);
            dst[1].write((v >> 7) as u8);
            self.pos += 2;
            return;
        }
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline(always)]
    fn nullable_bytes(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.varint(-1),
            Some(b) => {
                self.length(b.len());
                let dst = &mut self.buf[self.pos..self.pos + b.len()];
                // SAFETY: `dst` is exactly `b.len()` bytes (bounds-checked just above), a shared
                // borrow cannot overlap it, and `MaybeUninit<u8>` has the layout of `u8`.
                unsafe {
                    std::ptr::copy_nonoverlapping(b.as_ptr(), dst.as_mut_ptr().cast(), b.len())
                };
                self.pos += b.len();
            }
        }
    }
}

/// A record's size apart from its timestamp and offset deltas (see [`BatchBuilder::measure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Key, value and headers with their lengths.
    payload: usize,
}

impl Measured {
    #[inline]
    fn body_len(self, timestamp_delta: i64, offset_delta: i32) -> usize {
        debug_assert!(offset_delta >= 0, "an offset delta is never negative");
        1 + varint_len(timestamp_delta) + length_varint_len(offset_delta as usize) + self.payload
    }
}

/// Bytes that `record` adds to a batch, for batch sizing before encoding.
pub fn encoded_record_len(record: &Record, offset_delta: i32, base_timestamp: i64) -> usize {
    let body = body_len(
        record.timestamp.wrapping_sub(base_timestamp),
        offset_delta,
        record.key.as_deref(),
        record.value.as_deref(),
        &record.headers,
    );
    varint_len(body as i64) + body
}

fn body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut len = 1
        + varint_len(timestamp_delta)
        + varint_len(i64::from(offset_delta))
        + nullable_bytes_len(key)
        + nullable_bytes_len(value)
        + varint_len(headers.len() as i64);
    for h in headers {
        len += nullable_bytes_len(Some(&h.key)) + nullable_bytes_len(h.value.as_deref());
    }
    len
}

#[inline]
fn nullable_bytes_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => 1,
        Some(b) => length_varint_len(b.len()) + b.len(),
    }
}

#[inline(always)]
fn read_nullable_bytes<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, &'static str> {
    let len = read_varint(buf)?;
    if len < 0 {
        return if len == -1 {
            Ok(None)
        } else {
            Err("negative length other than -1")
        };
    }
    take(buf, len as usize).map(Some)
}

#[inline(always)]
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if buf.len() < n {
        return Err("field runs past the record");
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Zig-zag varint as Kafka writes it (`ByteUtils.writeVarlong`); the encoder's is
/// [`Cursor::varint`], checked against this one.
#[cfg(test)]
fn write_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// [`varint_len`] of a length or count (never negative, and below 2^62), whose zig-zag form
/// is just twice it.
#[inline]
fn length_varint_len(n: usize) -> usize {
    let bits = 64 - ((n as u64) << 1 | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

#[inline]
fn varint_len(value: i64) -> usize {
    let v = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - (v | 1).leading_zeros() as usize;
    // ceil(bits / 7) for bits in 1..=64, with a multiply and a shift instead of a division.
    (bits * 9 + 64) / 64
}

/// Reads an unsigned LEB128 of one to three bytes (every length, offset delta and count of a
/// usual record); `None` sends the caller to the checked slow path.
#[inline(always)]
fn read_raw_fast(buf: &mut &[u8]) -> Option<u64> {
    let mut at = 0;
    let raw = small_raw_varint(buf, &mut at)?;
    *buf = &buf[at..];
    Some(u64::from(raw))
}

/// Zig-zag varint as Kafka reads it (`ByteUtils.readVarlong`): one to three bytes on the fast
/// path, the loop handles the rest.
#[inline(always)]
fn read_varlong(buf: &mut &[u8]) -> Result<i64, &'static str> {
    match read_raw_fast(buf) {
        Some(raw) => Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64)),
        None => read_varlong_slow(buf),
    }
}

#[cold]
fn read_varlong_slow(buf: &mut &[u8]) -> Result<i64, &'static str> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or("varint runs past the record")?;
        *buf = rest;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes")
}

#[inline(always)]
fn read_varint(buf: &mut &[u8]) -> Result<i32, &'static str> {
    // Three bytes carry 21 bits: any such value is a valid zig-zag i32.
    match read_raw_fast(buf) {
        Some(raw) => Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32)),
        None => read_varint_slow(buf),
    }
}

#[cold]
fn read_varint_slow(buf: &mut &[u8]) -> Result<i32, &'static str> {
    let v = read_varlong_slow(buf)?;
    i32::try_from(v).map_err(|_| "varint out of 32-bit range")
}

fn read_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn read_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn read_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64) -> Record {
        Record {
            timestamp: ts,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: vec![],
        }
    }

    #[test]
    fn encodes_kafka_header_fields() {
        let mut buf = Vec::new();
        encode_batch(
            &mut buf,
            &[record(None, Some(b"a"), 10), record(None, None, 7)],
        );
        set_base_offset(&mut buf, 42);
        let batch = Batch::parse(&buf).unwrap();
        assert_eq!(batch.header.base_offset, 42);
        assert_eq!(batch.header.last_offset(), 43);
        assert_eq!(batch.header.base_timestamp, 10);
        assert_eq!(batch.header.max_timestamp, 10);
        assert_eq!(batch.header.records_count, 2);
        assert_eq!(batch.bytes.len(), buf.len());
        let mut d = Decompressor::default();
        let recs: Vec<_> = batch.records(&mut d).unwrap().map(Result::unwrap).collect();
        assert_eq!(recs[1].offset, 43);
        assert_eq!(recs[1].timestamp, 7);
        assert_eq!(recs[1].value, None);
        assert_eq!(recs[0].value, Some(&b"a"[..]));
    }

    #[test]
    fn the_usual_record_takes_the_fast_path_and_others_do_not() {
        // The property test below holds trivially if the fast path declines everything: pin
        // that it decodes the usual records (keys, values and nulls up to a 3-byte length).
        let value = vec![b'v'; 100_000];
        let usual = [
            record(None, Some(b"a"), 10),
            record(Some(b"k"), None, 7),
            record(Some(b"key"), Some(&value), 8),
        ];
        let mut buf = Vec::new();
        encode_batch(&mut buf, &usual);
        let header = BatchHeader::parse(&buf).unwrap();
        let mut rest = &buf[HEADER_LEN..];
        for (i, r) in usual.iter().enumerate() {
            let got = decode_usual_record(&mut rest, &header).expect("a usual record");
            assert_eq!(
                (got.offset, got.key, got.value),
                (i as i64, r.key.as_deref(), r.value.as_deref())
            );
        }
        assert!(rest.is_empty());

        // A record with headers goes the checked way.
        let mut with_header = record(None, Some(b"a"), 10);
        with_header.headers.push(Header {
            key: "h".into(),
            value: None,
        });
        let mut buf = Vec::new();
        encode_batch(&mut buf, &[with_header]);
        let header = BatchHeader::parse(&buf).unwrap();
        assert!(decode_usual_record(&mut &buf[HEADER_LEN..], &header).is_none());
    }

    #[test]
    fn varints_match_kafka_zigzag() {
        for (value, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (63, vec![0x7e]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
            (300, vec![0xd8, 0x04]),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out, bytes, "value {value}");
            assert_eq!(varint_len(value), bytes.len());
            assert_eq!(read_varlong(&mut &out[..]).unwrap(), value);
            let mut buf = [MaybeUninit::new(0u8); 10];
            let mut cursor = Cursor {
                buf: &mut buf,
                pos: 0,
            };
            cursor.varint(value);
            assert_eq!(cursor.pos, bytes.len());
            // SAFETY: initialized above.
            let written: Vec<u8> = buf[..bytes.len()]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            assert_eq!(written, bytes, "cursor, value {value}");
        }
    }

    #[test]
    fn lengths_are_varints_of_their_value() {
        for bits in 0..62 {
            for n in [1usize << bits, (1usize << bits) - 1, (1usize << bits) | 1] {
                assert_eq!(length_varint_len(n), varint_len(n as i64), "{n}");
                let mut buf = [MaybeUninit::new(0u8); 10];
                let (mut by_length, mut by_varint) = (Vec::new(), Vec::new());
                for (out, length) in [(&mut by_length, true), (&mut by_varint, false)] {
                    let mut cursor = Cursor {
                        buf: &mut buf,
                        pos: 0,
                    };
                    if length {
                        cursor.length(n);
                    } else {
                        cursor.varint(n as i64);
                    }
                    let written = cursor.pos;
                    // SAFETY: the cursor initialized the first `written` bytes.
                    out.extend(buf[..written].iter().map(|b| unsafe { b.assume_init() }));
                }
                assert_eq!(by_length, by_varint, "{n}");
            }
        }
    }

    #[test]
    fn varint_len_is_seven_bits_a_byte() {
        for bits in 0..64 {
            for v in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) | 1] {
                // The zig-zag value v comes from this i64.
                let value = ((v >> 1) as i64) ^ -((v & 1) as i64);
                let mut out = Vec::new();
                write_varint(&mut out, value);
                assert_eq!(varint_len(value), out.len(), "zig-zag {v:#x}");
            }
        }
        assert_eq!(varint_len(i64::MIN), 10);
        assert_eq!(varint_len(i64::MAX), 10);
    }

    #[test]
    fn touching_the_capacity_changes_nothing_encoded() {
        let records = [record(Some(b"k"), Some(b"value"), 5), record(None, None, 6)];
        let mut plain = Vec::new();
        encode_batch(&mut plain, &records);
        let mut builder = BatchBuilder::new(Vec::with_capacity(4096));
        builder.push(1, Some(b"old"), Some(b"batch"), &[]);
        builder.finish();
        builder.reset();
        builder.touch_capacity();
        assert_eq!((builder.size(), builder.len()), (HEADER_LEN, 0));
        for r in &records {
            builder.push(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
        }
        assert_eq!(builder.finish(), &plain[..]);
    }

    /// `batch` with its CRC computed anew (after a test changed it on purpose).
    fn fix_crc(batch: &mut [u8]) {
        let crc = crc::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    fn set_attributes(batch: &mut [u8], attributes: i16) {
        batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        fix_crc(batch);
    }

    #[test]
    fn compressed_batches_decode_to_the_same_records_with_the_same_header() {
        let records: Vec<Record> = (0..300)
            .map(|i| Record {
                timestamp: 1000 + i,
                key: (i % 3 != 0).then(|| format!("k{i}").into_bytes()),
                value: Some(vec![(i % 256) as u8; (i % 40) as usize]),
                headers: vec![Header {
                    key: b"h".to_vec(),
                    value: Some(vec![0xff, i as u8]),
                }],
            })
            .collect();
        let mut plain = Vec::new();
        encode_batch(&mut plain, &records);
        set_base_offset(&mut plain, 77);
        let mut compressor = Compressor::default();
        let mut d = Decompressor::default();
        for codec in Compression::ALL {
            let mut out = Vec::new();
            compress_batch(&plain, codec, &mut compressor, &mut out).unwrap();
            let batch = Batch::parse(&out).unwrap();
            assert_eq!(batch.compression(), Ok(codec));
            let original = BatchHeader::parse(&plain).unwrap();
            assert_eq!(batch.header.attributes, i16::from(codec.id()));
            assert_eq!(
                (
                    batch.header.base_offset,
                    batch.header.last_offset_delta,
                    batch.header.records_count,
                    batch.header.base_timestamp,
                    batch.header.max_timestamp
                ),
                (
                    original.base_offset,
                    original.last_offset_delta,
                    original.records_count,
                    original.base_timestamp,
                    original.max_timestamp
                )
            );
            if codec != Compression::None {
                assert!(out.len() < plain.len(), "{codec}: {} bytes", out.len());
            }
            let decoded: Vec<Record> = batch
                .records(&mut d)
                .unwrap()
                .map(|r| r.unwrap().to_owned_record())
                .collect();
            assert_eq!(decoded, records, "{codec}");
        }
    }

    #[test]
    fn a_compressed_batch_must_frame_exactly_its_record_count() {
        let records: Vec<Record> = (0..5).map(|i| record(None, Some(b"v"), i)).collect();
        let mut plain = Vec::new();
        encode_batch(&mut plain, &records);
        let mut out = Vec::new();
        compress_batch(
            &plain,
            Compression::Lz4,
            &mut Compressor::default(),
            &mut out,
        )
        .unwrap();
        for count in [4i32, 6, 0] {
            let mut wrong = out.clone();
            wrong[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
                .copy_from_slice(&count.to_be_bytes());
            fix_crc(&mut wrong);
            let err = Batch::parse(&wrong)
                .unwrap()
                .records(&mut Decompressor::default())
                .err();
            assert!(
                matches!(err, Some(BatchError::RecordCount { expected, .. }) if expected == count),
                "{count}: {err:?}"
            );
        }
        // Bytes after the last record are a record that does not frame either.
        let mut longer = plain.clone();
        longer.extend_from_slice(&[0x7f]);
        let mut out = Vec::new();
        compress_batch(
            &longer,
            Compression::Zstd,
            &mut Compressor::default(),
            &mut out,
        )
        .unwrap();
        let err = Batch::parse(&out)
            .unwrap()
            .records(&mut Decompressor::default())
            .err();
        assert!(
            matches!(err, Some(BatchError::RecordCount { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_codecs_and_control_batches_are_refused_by_name() {
        let mut buf = Vec::new();
        encode_batch(&mut buf, &[record(None, Some(b"v"), 1)]);
        for codec in 5..=7i16 {
            set_attributes(&mut buf, codec);
            let err = Batch::parse(&buf).unwrap_err();
            assert_eq!(
                err,
                BatchError::UnknownCodec {
                    codec: codec as u8,
                    attributes: codec
                }
            );
            assert!(err
                .to_string()
                .contains(&format!("unknown compression codec {codec}")));
        }
        set_attributes(&mut buf, 0b10_0000);
        assert!(matches!(
            Batch::parse(&buf),
            Err(BatchError::ControlBatch(_))
        ));
        // Idempotent producers' fields are read like any batch's.
        set_attributes(&mut buf, 0);
        buf[43..51].copy_from_slice(&42i64.to_be_bytes());
        buf[51..53].copy_from_slice(&3i16.to_be_bytes());
        buf[53..57].copy_from_slice(&7i32.to_be_bytes());
        fix_crc(&mut buf);
        let batch = Batch::parse(&buf).unwrap();
        assert_eq!(
            batch.records(&mut Decompressor::default()).unwrap().count(),
            1
        );
    }

    #[test]
    fn flipped_bit_is_a_crc_error_and_short_buffer_incomplete() {
        let mut buf = Vec::new();
        encode_batch(&mut buf, &[record(Some(b"k"), Some(b"value"), 1)]);
        assert!(matches!(
            Batch::parse(&buf[..buf.len() - 1]),
            Err(BatchError::Incomplete { .. })
        ));
        let last = buf.len() - 2;
        buf[last] ^= 0x10;
        assert!(matches!(Batch::parse(&buf), Err(BatchError::BadCrc { .. })));
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<i64>(),
            arb_bytes(),
            arb_bytes(),
            proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..8), arb_bytes()),
                0..3,
            ),
        )
            .prop_map(|(timestamp, key, value, headers)| Record {
                timestamp,
                key,
                value,
                headers: headers
                    .into_iter()
                    .map(|(key, value)| Header { key, value })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn batches_round_trip(records in proptest::collection::vec(arb_record(), 1..20), base in 0i64..1<<40) {
            let mut buf = Vec::new();
            encode_batch(&mut buf, &records);
            let base_ts = records[0].timestamp;
            let expected_len: usize = HEADER_LEN
                + records.iter().enumerate().map(|(i, r)| encoded_record_len(r, i as i32, base_ts)).sum::<usize>();
            prop_assert_eq!(buf.len(), expected_len);
            set_base_offset(&mut buf, base);
            let batch = Batch::parse(&buf).unwrap();
            let mut d = Decompressor::default();
            let decoded: Vec<_> = batch.records(&mut d).unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(decoded.len(), records.len());
            for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
                prop_assert_eq!(d.offset, base + i as i64);
                prop_assert_eq!(&d.to_owned_record(), r);
            }
        }

        /// The fast path decodes a record only when the checked path decodes the same record
        /// from the same bytes, leaving the same rest: on valid records with any fields, and on
        /// garbage and valid records with bytes changed.
        #[test]
        fn the_usual_record_path_agrees_with_the_checked_one(
            records in proptest::collection::vec(arb_record(), 1..6),
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        ) {
            let mut buf = Vec::new();
            encode_batch(&mut buf, &records);
            let header = BatchHeader::parse(&buf).unwrap();
            let mut body = buf[HEADER_LEN..].to_vec();
            body.extend_from_slice(&garbage);
            for (at, bits) in flips {
                let len = body.len();
                body[at % len] ^= bits;
            }
            let mut fast: &[u8] = &body;
            let mut checked: &[u8] = &body;
            while let Some(record) = decode_usual_record(&mut fast, &header) {
                let other = decode_record_checked(&mut checked, &header);
                prop_assert_eq!(Ok(record), other);
                prop_assert_eq!(fast.len(), checked.len());
            }
            prop_assert_eq!(fast.len(), checked.len(), "the fast path moved only past what it decoded");
        }

        #[test]
        fn compressed_batches_round_trip(
            records in proptest::collection::vec(arb_record(), 1..20),
            codec in 0u8..5,
        ) {
            let codec = Compression::from_id(codec).unwrap();
            let mut plain = Vec::new();
            encode_batch(&mut plain, &records);
            let mut out = Vec::new();
            compress_batch(&plain, codec, &mut Compressor::default(), &mut out).unwrap();
            let batch = Batch::parse(&out).unwrap();
            let mut d = Decompressor::default();
            let decoded: Vec<Record> = batch
                .records(&mut d)
                .unwrap()
                .map(|r| r.unwrap().to_owned_record())
                .collect();
            prop_assert_eq!(decoded, records);
        }

        /// Garbage as the payload of a batch of any codec (CRC valid) is an error, never a
        /// panic, whatever the record count says.
        #[test]
        fn compressed_garbage_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            codec in 1i16..8,
            count in -2i32..50,
            compress_body in any::<bool>(),
        ) {
            let mut buf = Vec::new();
            encode_batch(&mut buf, &[record(None, Some(b"x"), 0)]);
            buf.truncate(HEADER_LEN);
            match Compression::from_id(codec as u8) {
                // Garbage records in a valid stream: the record decoder sees them.
                Some(known) if compress_body => {
                    Compressor::default().compress(known, &body, &mut buf).unwrap()
                }
                _ => buf.extend_from_slice(&body),
            }
            buf[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
            let len = (buf.len() - LOG_OVERHEAD) as i32;
            buf[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
            set_attributes(&mut buf, codec);
            if let Ok(batch) = Batch::parse(&buf) {
                if let Ok(records) = batch.records(&mut Decompressor::default()) {
                    for r in records { let _ = r; }
                }
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(batch) = Batch::parse(&bytes) {
                if let Ok(records) = batch.records(&mut Decompressor::default()) { for r in records { let _ = r; } }
            }
            if let Ok(h) = BatchHeader::parse(&bytes) { let _ = h.total_len(); }
        }

        #[test]
        fn garbage_with_valid_crc_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), count in -2i32..50) {
            // Build a header that passes every check so the record decoder sees the garbage.
            let mut buf = Vec::new();
            encode_batch(&mut buf, &[record(None, Some(b"x"), 0)]);
            buf.truncate(HEADER_LEN);
            buf.extend_from_slice(&body);
            buf[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
            let len = (buf.len() - LOG_OVERHEAD) as i32;
            buf[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
            let crc = crc::crc32c(&buf[ATTRIBUTES_OFFSET..]);
            buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
            let batch = Batch::parse(&buf).unwrap();
            if let Ok(records) = batch.records(&mut Decompressor::default()) { for r in records { let _ = r; } }
        }
    }
}
