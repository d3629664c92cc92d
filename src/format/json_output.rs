//! One record as one line of JSON, for `spool consume --output json`.
//!
//! The writer is hand-rolled because it runs for every consumed record: it appends straight to
//! the output buffer, base64/hex encode in place, and nothing is allocated per record. The
//! usual key or value, plain ASCII with nothing to escape, is recognised in one pass over its
//! bytes (which also proves it UTF-8) and copied whole; anything else is validated as UTF-8 and
//! escaped as needed.

use std::fmt;

use thiserror::Error;

use super::decimal::write_i64;
use super::encoding::{append_base64, append_hex, Encoding};
use crate::record::RecordRef;

/// Which part of a record a JSON string came from or goes to, named as its JSON path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordField {
    Key,
    Value,
    HeaderKey { index: usize },
    HeaderValue { index: usize },
}

impl fmt::Display for RecordField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordField::Key => f.write_str("key"),
            RecordField::Value => f.write_str("value"),
            RecordField::HeaderKey { index } => write!(f, "headers[{index}].key"),
            RecordField::HeaderValue { index } => write!(f, "headers[{index}].value"),
        }
    }
}

/// A record that cannot be written in the chosen [`Encoding`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error(
        "`{field}` of the record at offset {offset} is not valid UTF-8 (bad byte at position \
         {position}); use `--encoding base64` or `--encoding hex` for binary data"
    )]
    InvalidUtf8 {
        field: RecordField,
        offset: i64,
        /// Byte index of the first byte that is not part of valid UTF-8.
        position: usize,
    },
}

/// Appends `rec` as one JSON object and a trailing `\n`:
/// `{"topic":..,"partition":..,"offset":..,"timestamp":..,"key":..,"value":..,"headers":[{"key":..,"value":..}]}`.
/// Null keys, values and header values are JSON `null`. On error `out` is left as it was.
pub fn write_json_record(
    out: &mut Vec<u8>,
    topic: &str,
    partition: i32,
    rec: &RecordRef<'_>,
    enc: Encoding,
) -> Result<(), EncodeError> {
    let start = out.len();
    let written = write_object(out, topic, partition, rec, enc);
    if written.is_err() {
        // Never leave half a line behind for the caller to flush.
        out.truncate(start);
    }
    written
}

fn write_object(
    out: &mut Vec<u8>,
    topic: &str,
    partition: i32,
    rec: &RecordRef<'_>,
    enc: Encoding,
) -> Result<(), EncodeError> {
    let bytes = |field| BytesWriter {
        enc,
        offset: rec.offset,
        field,
    };
    // Room for the usual line at once: the fixed text, three numbers, the fields unescaped.
    let len = |b: Option<&[u8]>| b.map_or(4, <[u8]>::len);
    out.reserve(128 + topic.len() + len(rec.key) + len(rec.value));
    out.extend_from_slice(b"{\"topic\":");
    write_json_string(out, topic.as_bytes());
    out.extend_from_slice(b",\"partition\":");
    write_i64(out, partition.into());
    out.extend_from_slice(b",\"offset\":");
    write_i64(out, rec.offset);
    out.extend_from_slice(b",\"timestamp\":");
    write_i64(out, rec.timestamp);
    out.extend_from_slice(b",\"key\":");
    bytes(RecordField::Key).write_nullable(out, rec.key)?;
    out.extend_from_slice(b",\"value\":");
    bytes(RecordField::Value).write_nullable(out, rec.value)?;
    write_headers(out, rec, enc)
}

/// `,"headers":[...]}` and the newline: the end of every JSON line, for both writers.
#[inline(never)]
pub(super) fn write_headers(
    out: &mut Vec<u8>,
    rec: &RecordRef<'_>,
    enc: Encoding,
) -> Result<(), EncodeError> {
    let bytes = |field| BytesWriter {
        enc,
        offset: rec.offset,
        field,
    };
    out.extend_from_slice(b",\"headers\":[");
    for (index, header) in rec.headers.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        bytes(RecordField::HeaderKey { index }).write(out, header.key)?;
        out.extend_from_slice(b",\"value\":");
        bytes(RecordField::HeaderValue { index }).write_nullable(out, header.value)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
    Ok(())
}

/// Writes one field's bytes as a JSON string, knowing enough to name the field in an error.
pub(super) struct BytesWriter {
    pub(super) enc: Encoding,
    pub(super) offset: i64,
    pub(super) field: RecordField,
}

impl BytesWriter {
    pub(super) fn write_nullable(
        &self,
        out: &mut Vec<u8>,
        bytes: Option<&[u8]>,
    ) -> Result<(), EncodeError> {
        match bytes {
            Some(bytes) => self.write(out, bytes),
            None => {
                out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }

    pub(super) fn write(&self, out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), EncodeError> {
        match self.enc {
            Encoding::Utf8 if is_plain_ascii(bytes) => write_quoted(out, bytes),
            Encoding::Utf8 => {
                std::str::from_utf8(bytes).map_err(|e| EncodeError::InvalidUtf8 {
                    field: self.field,
                    offset: self.offset,
                    position: e.valid_up_to(),
                })?;
                write_json_string(out, bytes);
            }
            // Neither alphabet contains a character JSON needs escaped.
            Encoding::Base64 => {
                out.push(b'"');
                append_base64(out, bytes);
                out.push(b'"');
            }
            Encoding::Hex => {
                out.push(b'"');
                append_hex(out, bytes);
                out.push(b'"');
            }
        }
        Ok(())
    }
}

/// `"text"`, for text with nothing to escape.
fn write_quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// Whether `text` is ASCII with nothing JSON escapes (so also valid UTF-8).
fn is_plain_ascii(text: &[u8]) -> bool {
    let special = |b: u8| !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\';
    #[cfg(target_arch = "x86_64")]
    {
        // 16 bytes at a time with SSE2 (every x86-64 CPU has it): a few instructions a block
        // instead of a few a byte.
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        let blocks = text.chunks_exact(16);
        let tail = blocks.remainder();
        for block in blocks {
            // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of `block`, unaligned.
            let found = unsafe {
                let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                // Signed: bytes from 0x80 on are negative, so below 0x20 too.
                let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                _mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(quote, backslash)))
            };
            if found != 0 {
                return false;
            }
        }
        !tail.iter().any(|&b| special(b))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        !text.iter().any(|&b| special(b))
    }
}

/// Writes valid UTF-8 as a quoted JSON string, escaping `"`, `\` and control characters.
pub(super) fn write_json_string(out: &mut Vec<u8>, text: &[u8]) {
    if is_plain_ascii(text) {
        return write_quoted(out, text);
    }
    out.push(b'"');
    write_escaped(out, text);
    out.push(b'"');
}

/// Writes valid UTF-8 as the inside of a JSON string, escaping `"`, `\` and control characters.
fn write_escaped(out: &mut Vec<u8>, text: &[u8]) {
    let mut rest = text;
    loop {
        // Copy the run that needs no escaping in one go: most text has no escape at all.
        let run = clean_prefix_len(rest);
        out.extend_from_slice(&rest[..run]);
        let Some((&b, after)) = rest[run..].split_first() else {
            break;
        };
        rest = after;
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            _ => b'u',
        };
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
    }
}

/// Writes `text[from..]` as the inside of a JSON string, where `text[..from]` is plain ASCII
/// and already written: checked as UTF-8 (an error gives the position in all of `text`), then
/// escaped.
pub(super) fn write_escaped_after(
    out: &mut Vec<u8>,
    text: &[u8],
    from: usize,
    field: RecordField,
    offset: i64,
) -> Result<(), EncodeError> {
    let rest = &text[from..];
    std::str::from_utf8(rest).map_err(|e| EncodeError::InvalidUtf8 {
        field,
        offset,
        position: from + e.valid_up_to(),
    })?;
    write_escaped(out, rest);
    Ok(())
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Length of the prefix of `text` with nothing to escape. Whole 32-byte blocks are checked
/// without an early exit, which the compiler turns into a few vector instructions.
fn clean_prefix_len(text: &[u8]) -> usize {
    const BLOCK: usize = 32;
    let mut clean = 0;
    for block in text.chunks_exact(BLOCK) {
        if block
            .iter()
            .fold(false, |dirty, &b| dirty | needs_escape(b))
        {
            break;
        }
        clean += BLOCK;
    }
    clean
        + text[clean..]
            .iter()
            .position(|&b| needs_escape(b))
            .unwrap_or(text.len() - clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HeaderRef, Headers};

    fn record() -> RecordRef<'static> {
        RecordRef {
            offset: 5,
            timestamp: 1_732_000_000_000,
            key: Some(b"k"),
            value: Some(b"v"),
            headers: Headers::List(&[HeaderRef {
                key: b"h",
                value: Some(b"x"),
            }]),
        }
    }

    fn written(rec: &RecordRef<'_>, enc: Encoding) -> String {
        let mut out = Vec::new();
        write_json_record(&mut out, "orders", 2, rec, enc).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_ascii_is_told_apart_at_any_position() {
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100] {
            let plain = vec![b'a'; len];
            assert!(is_plain_ascii(&plain), "{len}");
            for at in 0..len {
                for special in [0x00, 0x1f, b'"', b'\\', 0x7f + 1, 0xc3, 0xff] {
                    let mut text = plain.clone();
                    text[at] = special;
                    assert!(!is_plain_ascii(&text), "{len} {at} {special:#x}");
                }
                let mut text = plain.clone();
                text[at] = 0x7f;
                assert!(is_plain_ascii(&text), "DEL needs no escape");
            }
        }
    }

    #[test]
    fn canonical_line() {
        assert_eq!(
            written(&record(), Encoding::Utf8),
            "{\"topic\":\"orders\",\"partition\":2,\"offset\":5,\"timestamp\":1732000000000,\
             \"key\":\"k\",\"value\":\"v\",\"headers\":[{\"key\":\"h\",\"value\":\"x\"}]}\n"
        );
    }

    #[test]
    fn nulls_and_no_headers() {
        let rec = RecordRef {
            key: None,
            value: None,
            headers: Headers::List(&[
                HeaderRef {
                    key: b"a",
                    value: None,
                },
                HeaderRef {
                    key: b"",
                    value: Some(b""),
                },
            ]),
            ..record()
        };
        let line = written(&rec, Encoding::Utf8);
        assert!(
            line.ends_with(
                "\"key\":null,\"value\":null,\"headers\":[{\"key\":\"a\",\"value\":null},{\"key\":\"\",\"value\":\"\"}]}\n"
            ),
            "{line}"
        );
        let bare = RecordRef {
            headers: Headers::NONE,
            ..record()
        };
        assert!(written(&bare, Encoding::Utf8).ends_with(",\"headers\":[]}\n"));
    }

    #[test]
    fn escapes_text() {
        let rec = RecordRef {
            value: Some("q\"b\\n\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}é€😀".as_bytes()),
            ..record()
        };
        let line = written(&rec, Encoding::Utf8);
        assert!(
            line.contains(r#""value":"q\"b\\n\n\t\r\b\f\u0001\u001f"#),
            "{line}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed["value"],
            "q\"b\\n\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}é€😀"
        );
        let topic: serde_json::Value = {
            let mut out = Vec::new();
            write_json_record(&mut out, "a\"b", 0, &record(), Encoding::Utf8).unwrap();
            serde_json::from_slice(&out).unwrap()
        };
        assert_eq!(topic["topic"], "a\"b");
    }

    #[test]
    fn binary_encodings() {
        let rec = RecordRef {
            key: Some(b"\x00\xff"),
            value: Some(b"hello"),
            headers: Headers::List(&[HeaderRef {
                key: b"\xfe",
                value: None,
            }]),
            ..record()
        };
        let line = written(&rec, Encoding::Base64);
        assert!(
            line.contains(
                r#""key":"AP8=","value":"aGVsbG8=","headers":[{"key":"/g==","value":null}]"#
            ),
            "{line}"
        );
        let line = written(&rec, Encoding::Hex);
        assert!(
            line.contains(
                r#""key":"00ff","value":"68656c6c6f","headers":[{"key":"fe","value":null}]"#
            ),
            "{line}"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_field() {
        let cases = [
            (
                RecordRef {
                    key: Some(b"ok\xc3"),
                    ..record()
                },
                RecordField::Key,
                2,
            ),
            (
                RecordRef {
                    value: Some(b"\xff"),
                    ..record()
                },
                RecordField::Value,
                0,
            ),
            (
                RecordRef {
                    headers: Headers::List(&[
                        HeaderRef {
                            key: b"a",
                            value: None,
                        },
                        HeaderRef {
                            key: b"\x80",
                            value: None,
                        },
                    ]),
                    ..record()
                },
                RecordField::HeaderKey { index: 1 },
                0,
            ),
            (
                RecordRef {
                    headers: Headers::List(&[HeaderRef {
                        key: b"a",
                        value: Some(b"x\xff"),
                    }]),
                    ..record()
                },
                RecordField::HeaderValue { index: 0 },
                1,
            ),
        ];
        for (rec, field, position) in cases {
            let mut out = b"earlier line\n".to_vec();
            let err = write_json_record(&mut out, "t", 0, &rec, Encoding::Utf8).unwrap_err();
            assert_eq!(
                err,
                EncodeError::InvalidUtf8 {
                    field,
                    offset: 5,
                    position
                }
            );
            assert_eq!(
                out, b"earlier line\n",
                "a failed record leaves no partial line"
            );
        }
        let message = EncodeError::InvalidUtf8 {
            field: RecordField::HeaderValue { index: 0 },
            offset: 5,
            position: 1,
        }
        .to_string();
        assert_eq!(
            message,
            "`headers[0].value` of the record at offset 5 is not valid UTF-8 (bad byte at \
             position 1); use `--encoding base64` or `--encoding hex` for binary data"
        );
    }
}
