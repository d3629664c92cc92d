//! The JSON line writer `spool consume --output json` runs for every record: the same lines as
//! [`write_json_record`](super::write_json_record), written with what one record shares with
//! the one before it rendered once.
//!
//! A line is `{"topic":..,"partition":..,"offset":..,"timestamp":..,"key":` (kept per
//! partition by [`LineHeads`], the offset counted up in place), the key, `,"value":`, the
//! value and the headers. Room for the usual line is reserved once and the bytes are stored
//! into it directly; plain ASCII keys and values are checked and copied in one pass
//! ([`copy_plain`]), anything else goes through the escaping writer.

use super::ascii_copy::copy_plain;
use super::encoding::Encoding;
use super::json_output::{
    write_escaped_after, write_headers, BytesWriter, EncodeError, RecordField,
};
use super::line_heads::{HeadPart, LineHeads, Rendered};
use super::spare::{put_head, Cursor};
use crate::record::RecordRef;

/// Bytes of a line besides its start, key and value, when it has no headers:
/// `null,"value":null,"headers":[]}\n` and two pairs of quotes.
const REST: usize = 48;

/// Renders records as JSON lines, remembering the start of the last line of each partition.
#[derive(Debug, Clone)]
pub struct JsonLines {
    encoding: Encoding,
    heads: LineHeads,
    /// The CPU has AVX2: text is checked and copied 32 bytes a step.
    avx2: bool,
}

impl JsonLines {
    pub fn new(encoding: Encoding) -> JsonLines {
        let literal = |text: &str| HeadPart::Literal(text.as_bytes().into());
        let heads = LineHeads::new(vec![
            literal("{\"topic\":"),
            HeadPart::JsonTopic,
            literal(",\"partition\":"),
            HeadPart::Partition,
            literal(",\"offset\":"),
            HeadPart::Offset,
            literal(",\"timestamp\":"),
            HeadPart::TimestampMs,
            literal(",\"key\":"),
        ]);
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        JsonLines {
            encoding,
            heads,
            avx2,
        }
    }

    /// The same without AVX2, to test that path on a CPU that has it.
    #[cfg(test)]
    fn without_avx2(encoding: Encoding) -> JsonLines {
        JsonLines {
            avx2: false,
            ..JsonLines::new(encoding)
        }
    }

    /// Appends `rec` as one JSON line, byte for byte what
    /// [`write_json_record`](super::write_json_record) writes. On error `out` is left as it
    /// was.
    #[inline]
    pub fn render(
        &mut self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
    ) -> Result<(), EncodeError> {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.render_avx2(out, topic, partition, rec) };
        }
        self.render_sse2(out, topic, partition, rec)
    }

    /// [`JsonLines::render`] compiled for AVX2 (which also gives the SSE2 code three-operand
    /// instructions).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn render_avx2(
        &mut self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
    ) -> Result<(), EncodeError> {
        self.render_with::<true>(out, topic, partition, rec)
    }

    #[inline(never)]
    fn render_sse2(
        &mut self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
    ) -> Result<(), EncodeError> {
        self.render_with::<false>(out, topic, partition, rec)
    }

    /// `AVX2` as in [`copy_plain`].
    #[inline(always)]
    fn render_with<const AVX2: bool>(
        &mut self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        let head = self.heads.head(topic, partition, rec.offset, rec.timestamp);
        let written = match self.encoding {
            Encoding::Utf8 => write_text_line::<AVX2>(out, head, rec),
            encoding => write_binary_line(out, head, rec, encoding),
        };
        if written.is_err() {
            out.truncate(start);
        }
        written
    }
}

/// The line of `rec` with keys and values as text; `AVX2` as in [`copy_plain`].
#[inline(always)]
fn write_text_line<const AVX2: bool>(
    out: &mut Vec<u8>,
    head: Rendered<'_>,
    rec: &RecordRef<'_>,
) -> Result<(), EncodeError> {
    let len = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
    // 15 more for the head's block copy.
    let room = head.len() + 15 + len(rec.key) + len(rec.value) + REST;
    let mut cursor = Cursor::new(out, room);
    // SAFETY (every `put` and `put_text` below): room for the head, key, value and REST bytes
    // was reserved above, and `put_text` reserves it again when it took the escaping path.
    unsafe {
        cursor.put_head(head);
        let value_room = len(rec.value) + REST;
        match rec.key {
            None => cursor.put(b"null,\"value\":"),
            Some(key) => {
                cursor.put(b"\"");
                cursor = put_text::<AVX2>(cursor, key, RecordField::Key, rec.offset, value_room)?;
                cursor.put(b"\",\"value\":");
            }
        }
        match rec.value {
            None => cursor.put(b"null"),
            Some(value) => {
                cursor.put(b"\"");
                cursor = put_text::<AVX2>(cursor, value, RecordField::Value, rec.offset, REST)?;
                cursor.put(b"\"");
            }
        }
        if rec.headers.is_empty() {
            cursor.put(b",\"headers\":[]}\n");
            cursor.finish();
            return Ok(());
        }
    }
    write_headers(cursor.finish(), rec, Encoding::Utf8)
}

/// The line of `rec` with keys and values in base64 or hex.
#[inline(never)]
fn write_binary_line(
    out: &mut Vec<u8>,
    head: Rendered<'_>,
    rec: &RecordRef<'_>,
    enc: Encoding,
) -> Result<(), EncodeError> {
    out.reserve(head.len() + 15);
    // SAFETY: reserved just above.
    unsafe { put_head(out, head) };
    let bytes = |field| BytesWriter {
        enc,
        offset: rec.offset,
        field,
    };
    bytes(RecordField::Key).write_nullable(out, rec.key)?;
    out.extend_from_slice(b",\"value\":");
    bytes(RecordField::Value).write_nullable(out, rec.value)?;
    write_headers(out, rec, enc)
}

/// Appends `text` as the inside of a JSON string: copied when it is plain ASCII, else checked
/// as UTF-8 and escaped from its first byte that is not, after which `room_after` more bytes
/// are reserved again (the escaped text may have taken the room reserved for what follows).
///
/// # Safety
/// `cursor` must have room for `text.len()` more bytes.
#[inline(always)]
unsafe fn put_text<'a, const AVX2: bool>(
    mut cursor: Cursor<'a>,
    text: &[u8],
    field: RecordField,
    offset: i64,
    room_after: usize,
) -> Result<Cursor<'a>, EncodeError> {
    let plain = cursor.put_with(|at| copy_plain::<AVX2>(at, text));
    if plain < text.len() {
        let out = cursor.finish();
        write_escaped_after(out, text, plain, field, offset)?;
        return Ok(Cursor::new(out, room_after));
    }
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::write_json_record;
    use crate::record::{HeaderRef, Headers};
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    /// Keys and values as they come: mostly plain text of every length around the block
    /// sizes, some with escapes, non-ASCII or invalid UTF-8.
    fn field() -> impl Strategy<Value = Option<Vec<u8>>> {
        let byte = prop_oneof![
            20 => 0x20..0x7fu8,
            1 => Just(b'"'),
            1 => Just(b'\\'),
            1 => 0..0x20u8,
            1 => 0x80..=0xffu8,
        ];
        let text = prop_oneof![
            4 => "[a-z0-9 ]{0,40}".prop_map(String::into_bytes),
            1 => any::<String>().prop_map(String::into_bytes),
            1 => vec(byte, 0..70),
        ];
        option::of(text)
    }

    #[derive(Debug, Clone)]
    struct Rec {
        topic: &'static str,
        partition: i32,
        offset_step: i64,
        new_timestamp: Option<i64>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    }

    fn rec() -> impl Strategy<Value = Rec> {
        let header = (
            prop_oneof![Just(b"h".to_vec()), vec(any::<u8>(), 0..5)],
            option::of(vec(any::<u8>(), 0..5)),
        );
        (
            prop_oneof![Just("orders"), Just("t"), Just("a \"quoted\" topic é")],
            prop_oneof![Just(0), Just(1), 0..=i32::MAX],
            prop_oneof![4 => Just(1i64), 1 => any::<i64>(), 1 => 0..1000i64],
            option::of(any::<i64>()),
            field(),
            field(),
            prop_oneof![3 => Just(Vec::new()), 1 => vec(header, 0..3)],
        )
            .prop_map(
                |(topic, partition, offset_step, new_timestamp, key, value, headers)| Rec {
                    topic,
                    partition,
                    offset_step,
                    new_timestamp,
                    key,
                    value,
                    headers,
                },
            )
    }

    proptest! {
        #[test]
        fn same_bytes_as_the_plain_writer(
            records in vec(rec(), 1..60),
            start in prop_oneof![0..1000i64, any::<i64>()],
            encoding in prop_oneof![4 => Just(Encoding::Utf8), 1 => Just(Encoding::Base64), 1 => Just(Encoding::Hex)],
        ) {
            let mut lines = JsonLines::new(encoding);
            let mut sse2 = JsonLines::without_avx2(encoding);
            let mut without = b"before\n".to_vec();
            let (mut fast, mut plain) = (b"before\n".to_vec(), b"before\n".to_vec());
            let mut offset = start;
            let mut timestamp = 0;
            for r in records {
                offset = offset.wrapping_add(r.offset_step);
                timestamp = r.new_timestamp.unwrap_or(timestamp);
                let headers: Vec<HeaderRef> = r
                    .headers
                    .iter()
                    .map(|(key, value)| HeaderRef { key, value: value.as_deref() })
                    .collect();
                let rec = RecordRef {
                    offset,
                    timestamp,
                    key: r.key.as_deref(),
                    value: r.value.as_deref(),
                    headers: Headers::List(&headers),
                };
                let got = lines.render(&mut fast, r.topic, r.partition, &rec);
                prop_assert_eq!(&sse2.render(&mut without, r.topic, r.partition, &rec), &got);
                let want = write_json_record(&mut plain, r.topic, r.partition, &rec, encoding);
                prop_assert_eq!(got, want);
                prop_assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&plain)
                );
                prop_assert_eq!(&without, &plain);
            }
        }
    }

    #[test]
    fn a_line_of_every_kind() {
        let mut lines = JsonLines::new(Encoding::Utf8);
        let mut out = Vec::new();
        let rec = RecordRef {
            offset: 9,
            timestamp: 1,
            key: None,
            value: Some(b"v"),
            headers: Headers::NONE,
        };
        lines.render(&mut out, "t", 0, &rec).unwrap();
        let rec = RecordRef {
            offset: 10,
            key: Some(b"k\"\xc3\xa9"),
            ..rec
        };
        lines.render(&mut out, "t", 0, &rec).unwrap();
        let bad = RecordRef {
            offset: 11,
            value: Some(b"0123456789abcdef0123\xff"),
            ..rec
        };
        let err = lines.render(&mut out, "t", 0, &bad).unwrap_err();
        assert_eq!(
            err,
            EncodeError::InvalidUtf8 {
                field: RecordField::Value,
                offset: 11,
                position: 20
            }
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"topic\":\"t\",\"partition\":0,\"offset\":9,\"timestamp\":1,\"key\":null,\
             \"value\":\"v\",\"headers\":[]}\n\
             {\"topic\":\"t\",\"partition\":0,\"offset\":10,\"timestamp\":1,\"key\":\"k\\\"é\",\
             \"value\":\"v\",\"headers\":[]}\n"
        );
    }
}
