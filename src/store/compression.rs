//! Kafka's compression codecs for the records of a batch: gzip, snappy, lz4 and zstd.
//!
//! A compressed batch keeps its 61-byte header as is (record count, offset delta, timestamps)
//! and replaces the records after it with one compressed stream of them; attributes bits 0-2
//! name the codec (1 gzip, 2 snappy, 3 lz4, 4 zstd), and the CRC covers the compressed bytes.
//! The streams are those Kafka's clients write:
//!
//! - gzip: one gzip member (Java's `GZIPOutputStream`), level 6 as Kafka's default.
//! - snappy: Java's xerial framing (`\x82SNAPPY\0`, two versions, then length-prefixed raw
//!   snappy blocks of up to 32 KiB), which spool writes; a stream without that magic is read
//!   as one raw snappy block, as librdkafka writes it.
//! - lz4: the LZ4 frame format (64 KiB independent blocks, as Kafka's `KafkaLZ4BlockOutputStream`).
//! - zstd: a zstd frame, level 3 as Kafka's default.
//!
//! Decompression never trusts the stream: output is bounded by [`MAX_DECOMPRESSED_BATCH`] and
//! refused as damage the moment it would pass it (a small batch that claims or expands to
//! gigabytes costs at most that much memory), and a reader's [`Decompressor`] reuses one output
//! buffer from batch to batch.

use std::io::{Read, Write};

/// The most a batch's records may decompress to: 64 MiB. A batch that would expand past it is
/// refused as damaged (a decompression bomb) before more memory is spent. Kafka's producers
/// build batches of `batch.size` (16 KiB by default) compressed, so real batches stay far below;
/// spool's producer never builds a compressed batch whose records are larger.
pub const MAX_DECOMPRESSED_BATCH: usize = 64 << 20;

/// A record batch's compression codec (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Why a codec id or name is not one of Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression codec '{0}'; the codecs are none, gzip, snappy, lz4 and zstd")]
pub struct UnknownCodecName(pub String);

impl Compression {
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec of attributes bits 0-2; `None` for ids 5-7, which Kafka does not define.
    pub fn from_id(id: u8) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// The id written into attributes bits 0-2.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The name Kafka's configs and tools use (`none` for no codec).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = UnknownCodecName;

    /// Kafka's names; `uncompressed` (the topic config's word) is `none` too.
    fn from_str(s: &str) -> Result<Compression, UnknownCodecName> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(UnknownCodecName(s.to_owned())),
        }
    }
}

/// Why compressed records could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("the {codec}-compressed records do not decompress: {reason}")]
    Corrupt { codec: Compression, reason: String },
    #[error("the {codec}-compressed records expand past {limit} bytes, the most a batch may hold (a decompression bomb?)")]
    TooLarge { codec: Compression, limit: usize },
}

/// Java's xerial snappy framing: magic, version 1, compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
const XERIAL_BLOCK: usize = 32 << 10;
/// Kafka's default levels (`compression.gzip.level`, `compression.zstd.level`).
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// Decompresses batches' records into one buffer reused from batch to batch.
#[derive(Default)]
pub struct Decompressor {
    /// Zeroed up to its length once, so reads write into it without zeroing it again; the
    /// last batch's records are `buf[..filled]`.
    buf: Vec<u8>,
    filled: usize,
    limit: Option<usize>,
    zstd: Option<zstd::stream::raw::Decoder<'static>>,
    snappy: Option<snap::raw::Decoder>,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("capacity", &self.buf.len())
            .field("filled", &self.filled)
            .finish()
    }
}

/// One step of a bounded decompression.
enum Fail {
    Corrupt(String),
    TooLarge,
}

impl Decompressor {
    /// A decompressor that refuses output past `limit` bytes instead of
    /// [`MAX_DECOMPRESSED_BATCH`] (for tests of the bound).
    pub fn with_limit(limit: usize) -> Decompressor {
        Decompressor {
            limit: Some(limit),
            ..Decompressor::default()
        }
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(MAX_DECOMPRESSED_BATCH)
    }

    /// Frees the output buffer if it is larger than `bytes` (a reader among many partitions
    /// keeps no decompressed batch between batches); the next batch allocates anew.
    pub fn release_above(&mut self, bytes: usize) {
        if self.buf.len() > bytes {
            self.buf = Vec::new();
            self.filled = 0;
        }
    }

    /// The records the last [`Decompressor::decompress`] produced.
    pub fn output(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Decompresses `input` with `codec` into the reused buffer and returns the result.
    pub fn decompress(
        &mut self,
        codec: Compression,
        input: &[u8],
    ) -> Result<&[u8], DecompressError> {
        self.filled = 0;
        let limit = self.limit();
        let result = match codec {
            Compression::None => {
                self.ensure(input.len().min(limit + 1));
                if input.len() > limit {
                    Err(Fail::TooLarge)
                } else {
                    self.buf[..input.len()].copy_from_slice(input);
                    Ok(input.len())
                }
            }
            Compression::Gzip => {
                read_bounded(flate2::read::GzDecoder::new(input), &mut self.buf, limit)
            }
            Compression::Lz4 => read_bounded(
                lz4_flex::frame::FrameDecoder::new(input),
                &mut self.buf,
                limit,
            ),
            Compression::Snappy => self.snappy(input, limit),
            Compression::Zstd => self.zstd(input, limit),
        };
        match result {
            Ok(n) => {
                self.filled = n;
                Ok(&self.buf[..n])
            }
            Err(Fail::Corrupt(reason)) => Err(DecompressError::Corrupt { codec, reason }),
            Err(Fail::TooLarge) => Err(DecompressError::TooLarge { codec, limit }),
        }
    }

    fn ensure(&mut self, len: usize) {
        super::fsutil::grow_zeroed(&mut self.buf, len);
    }

    fn snappy(&mut self, input: &[u8], limit: usize) -> Result<usize, Fail> {
        let decoder = self.snappy.get_or_insert_with(snap::raw::Decoder::new);
        let mut block = |raw: &[u8], buf: &mut Vec<u8>, at: usize| -> Result<usize, Fail> {
            // The length is declared up front: a bomb is refused before anything is allocated.
            let n = snap::raw::decompress_len(raw).map_err(|e| Fail::Corrupt(e.to_string()))?;
            if at + n > limit {
                return Err(Fail::TooLarge);
            }
            if buf.len() < at + n {
                // Doubling: a stream of many small blocks must not copy the buffer each time.
                let grown = (buf.len() * 2).clamp(at + n, limit.max(at + n));
                super::fsutil::grow_zeroed(buf, grown);
            }
            decoder
                .decompress(raw, &mut buf[at..at + n])
                .map_err(|e| Fail::Corrupt(e.to_string()))
        };
        if input.len() < XERIAL_HEADER_LEN || &input[..8] != XERIAL_MAGIC {
            // librdkafka's raw snappy: one block.
            return block(input, &mut self.buf, 0);
        }
        let mut rest = &input[XERIAL_HEADER_LEN..];
        let mut filled = 0;
        while !rest.is_empty() {
            let Some((len, after)) = rest.split_first_chunk::<4>() else {
                return Err(Fail::Corrupt("xerial block length cut short".into()));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if after.len() < len {
                return Err(Fail::Corrupt(format!(
                    "xerial block of {len} bytes runs past the records ({} left)",
                    after.len()
                )));
            }
            filled += block(&after[..len], &mut self.buf, filled)?;
            rest = &after[len..];
        }
        Ok(filled)
    }

    fn zstd(&mut self, input: &[u8], limit: usize) -> Result<usize, Fail> {
        use zstd::stream::raw::Operation;
        let corrupt = |e: std::io::Error| Fail::Corrupt(e.to_string());
        let decoder = match &mut self.zstd {
            Some(d) => {
                d.reinit().map_err(corrupt)?;
                d
            }
            None => self
                .zstd
                .insert(zstd::stream::raw::Decoder::new().map_err(corrupt)?),
        };
        let (mut read, mut filled) = (0, 0);
        let mut frame_done = false;
        loop {
            if filled == self.buf.len() {
                if self.buf.len() > limit {
                    return Err(Fail::TooLarge);
                }
                let grown = (self.buf.len() * 2).clamp(64 << 10, limit + 1);
                super::fsutil::grow_zeroed(&mut self.buf, grown);
            }
            let status = decoder
                .run_on_buffers(&input[read..], &mut self.buf[filled..])
                .map_err(corrupt)?;
            read += status.bytes_read;
            filled += status.bytes_written;
            // Called again after the end of a frame with nothing left to do, zstd answers
            // with the size of the next frame's header: only a call that did something says
            // whether a frame is complete.
            if status.bytes_read > 0 || status.bytes_written > 0 {
                frame_done = status.remaining == 0;
            }
            // With room left in the output, zstd has written out everything it could.
            if filled < self.buf.len() {
                if read == input.len() {
                    break;
                }
                if status.bytes_read == 0 && status.bytes_written == 0 {
                    return Err(Fail::Corrupt("the zstd stream makes no progress".into()));
                }
            }
        }
        if !frame_done {
            return Err(Fail::Corrupt("the zstd frame is cut short".into()));
        }
        Ok(filled)
    }
}

/// Reads everything `reader` decompresses into `buf` (grown as needed, never past `limit + 1`
/// bytes); returns how many bytes it holds.
fn read_bounded(mut reader: impl Read, buf: &mut Vec<u8>, limit: usize) -> Result<usize, Fail> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() > limit {
                return Err(Fail::TooLarge);
            }
            let grown = (buf.len() * 2).clamp(64 << 10, limit + 1);
            super::fsutil::grow_zeroed(buf, grown);
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::Corrupt(e.to_string())),
        }
    }
}

/// Compresses batches' records, reusing the codecs' state from batch to batch.
#[derive(Default)]
pub struct Compressor {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    snappy: Option<snap::raw::Encoder>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

impl Compressor {
    /// Appends `input` compressed with `codec` to `out`.
    pub fn compress(
        &mut self,
        codec: Compression,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        match codec {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
                gz.write_all(input)?;
                gz.finish()?;
            }
            Compression::Snappy => {
                let encoder = self.snappy.get_or_insert_with(snap::raw::Encoder::new);
                out.extend_from_slice(XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                for block in input.chunks(XERIAL_BLOCK) {
                    let at = out.len();
                    out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
                    let n = encoder
                        .compress(block, &mut out[at + 4..])
                        .map_err(std::io::Error::other)?;
                    out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
                    out.truncate(at + 4 + n);
                }
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut lz4 = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
                lz4.write_all(input)?;
                lz4.finish().map_err(std::io::Error::other)?;
            }
            Compression::Zstd => {
                let zstd = match &mut self.zstd {
                    Some(z) => z,
                    None => self.zstd.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
                };
                let at = out.len();
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                let n = zstd.compress_to_buffer(input, &mut WriteAfter { out, at })?;
                debug_assert_eq!(out.len(), at + n);
            }
        }
        Ok(())
    }
}

/// zstd's output buffer: the spare capacity of `out` after its first `at` bytes.
struct WriteAfter<'a> {
    out: &'a mut Vec<u8>,
    at: usize,
}

// SAFETY: the buffer is the vector's spare capacity past `at`; `filled_until` sets its length
// to `at + n` after zstd initialized those `n` bytes.
unsafe impl zstd::zstd_safe::WriteBuf for WriteAfter<'_> {
    fn as_slice(&self) -> &[u8] {
        &self.out[self.at..]
    }
    fn capacity(&self) -> usize {
        self.out.capacity() - self.at
    }
    fn as_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `at` is within the allocation (at <= len <= capacity).
        unsafe { self.out.as_mut_ptr().add(self.at) }
    }
    unsafe fn filled_until(&mut self, n: usize) {
        // SAFETY: zstd initialized `n` bytes from `at` on, within the capacity.
        unsafe { self.out.set_len(self.at + n) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("record {i} {}|", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_through_a_reused_decompressor() {
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        for input in [sample(), b"x".to_vec(), Vec::new()] {
            for codec in Compression::ALL {
                let mut out = b"prefix".to_vec();
                c.compress(codec, &input, &mut out).unwrap();
                assert_eq!(&out[..6], b"prefix", "{codec} appends");
                let got = d.decompress(codec, &out[6..]).unwrap();
                assert_eq!(got, &input[..], "{codec}");
            }
        }
    }

    #[test]
    fn a_released_buffer_is_allocated_again_for_the_next_batch() {
        let input = sample();
        let mut out = Vec::new();
        Compressor::default()
            .compress(Compression::Lz4, &input, &mut out)
            .unwrap();
        let mut d = Decompressor::default();
        d.decompress(Compression::Lz4, &out).unwrap();
        let held = d.buf.len();
        d.release_above(held);
        assert_eq!(d.buf.len(), held, "kept: not larger than the bound");
        d.release_above(64 << 10);
        assert!(d.buf.is_empty());
        assert_eq!(d.decompress(Compression::Lz4, &out).unwrap(), &input[..]);
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_read() {
        let input = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        let mut d = Decompressor::default();
        assert_eq!(d.decompress(Compression::Snappy, &raw).unwrap(), &input[..]);
    }

    #[test]
    fn output_past_the_limit_is_refused_for_every_codec() {
        let zeros = vec![0u8; 1 << 20];
        let mut c = Compressor::default();
        for codec in Compression::ALL {
            let mut out = Vec::new();
            c.compress(codec, &zeros, &mut out).unwrap();
            let mut d = Decompressor::with_limit((1 << 20) - 1);
            assert_eq!(
                d.decompress(codec, &out),
                Err(DecompressError::TooLarge {
                    codec,
                    limit: (1 << 20) - 1
                })
            );
            assert!(
                d.buf.len() <= 1 << 20,
                "{codec}: never more than the limit + 1"
            );
            let mut d = Decompressor::with_limit(1 << 20);
            assert_eq!(d.decompress(codec, &out).unwrap().len(), 1 << 20);
        }
    }

    #[test]
    fn a_snappy_block_claiming_a_gigabyte_is_refused_before_allocating() {
        // A raw snappy stream is its uncompressed length as a varint, then the elements.
        let bomb = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00];
        let mut d = Decompressor::default();
        assert!(matches!(
            d.decompress(Compression::Snappy, &bomb),
            Err(DecompressError::TooLarge { .. })
        ));
        assert!(d.buf.is_empty());
    }

    #[test]
    fn garbage_and_cut_streams_are_errors_not_panics() {
        let input = sample();
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        for codec in Compression::ALL.into_iter().skip(1) {
            let mut out = Vec::new();
            c.compress(codec, &input, &mut out).unwrap();
            let cut = &out[..out.len() / 2];
            assert!(
                d.decompress(codec, cut).is_err(),
                "{codec}: a stream cut in half"
            );
            let garbage: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
            assert!(d.decompress(codec, &garbage).is_err(), "{codec}: garbage");
            for at in (0..out.len()).step_by(out.len() / 50 + 1) {
                let mut flipped = out.clone();
                flipped[at] ^= 0x5a;
                let _ = d.decompress(codec, &flipped);
            }
        }
    }

    #[test]
    fn names_and_ids() {
        for codec in Compression::ALL {
            assert_eq!(Compression::from_id(codec.id()), Some(codec));
            assert_eq!(codec.name().parse::<Compression>(), Ok(codec));
        }
        assert_eq!("uncompressed".parse(), Ok(Compression::None));
        assert_eq!("LZ4".parse(), Ok(Compression::Lz4));
        assert!("brotli".parse::<Compression>().is_err());
        assert_eq!(Compression::from_id(5), None);
    }
}
