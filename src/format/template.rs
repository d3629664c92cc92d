//! kcat/rpk style output templates for `spool consume --format`, e.g. `%k=%v\n`.
//!
//! A template is compiled once into literal byte runs and field tokens, so rendering a record is
//! a walk over that list that appends bytes: no parsing and no allocation per record, and room
//! for the whole record reserved once (not at every part).
//!
//! [`TemplateLines`] renders the usual shapes without the walk: a line start of topic,
//! partition, offset and timestamp kept per partition ([`LineHeads`]), and plain lines (the
//! value and a suffix, or the key, a separator, the value and a suffix) written a batch at a
//! time into room reserved once ([`PlainLines`]).

use std::mem;

use thiserror::Error;

use super::decimal::write_i64;
use super::line_heads::{HeadPart, LineHeads};
use super::spare::{put_head, Cursor};
use crate::record::{Headers, RecordRef};
use crate::spec::write_rfc3339_millis;

/// Shown in every template error so the user can fix the format without looking it up.
const VALID_TOKENS: &str = "valid tokens are %t topic, %p partition, %o offset, %k key, \
    %v or %s value, %K key length, %V or %S value length, %T timestamp (ms), \
    %d timestamp (RFC 3339, UTC), %h headers, %% percent sign; \
    escapes are \\n \\t \\r \\0 \\\\";

/// What is wrong with a `--format` template; positions are byte offsets into the template.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("unknown token `%{token}` at byte {position} of the format; {VALID_TOKENS}")]
    UnknownToken { token: char, position: usize },
    #[error("lone `%` at the end of the format (byte {position}); write `%%` for a percent sign; {VALID_TOKENS}")]
    TrailingPercent { position: usize },
    #[error("unknown escape `\\{escape}` at byte {position} of the format; {VALID_TOKENS}")]
    UnknownEscape { escape: char, position: usize },
    #[error("lone `\\` at the end of the format (byte {position}); write `\\\\` for a backslash; {VALID_TOKENS}")]
    TrailingBackslash { position: usize },
}

/// A record field a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    KeyLength,
    ValueLength,
    TimestampMs,
    TimestampRfc3339,
    Headers,
}

impl Field {
    fn from_token(token: char) -> Option<Field> {
        Some(match token {
            't' => Field::Topic,
            'p' => Field::Partition,
            'o' => Field::Offset,
            'k' => Field::Key,
            // %s is kcat's name for the value, %v rpk's.
            'v' | 's' => Field::Value,
            'K' => Field::KeyLength,
            // %S is kcat's name for the value length, %V rpk's.
            'V' | 'S' => Field::ValueLength,
            'T' => Field::TimestampMs,
            'd' => Field::TimestampRfc3339,
            'h' => Field::Headers,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    /// A one-byte literal (the usual `\n` or a space): a push, not a call to memcpy.
    Byte(u8),
    Field(Field),
}

/// A compiled output template. The template is the whole output for one record: it adds no
/// newline of its own, so the usual form ends in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// Bytes a record takes besides its topic, key and value, headers and RFC 3339 times: the
    /// literals and 20 a number.
    fixed_len: usize,
    /// The value followed by a literal (the default `%v\n`), rendered without walking `parts`:
    /// it is what `consume` prints a million times a second.
    value_then: Option<Box<[u8]>>,
}

impl Template {
    /// Compiles `format`; `%` starts a token and `\` an escape.
    pub fn parse(format: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut chars = format.char_indices();
        while let Some((position, c)) = chars.next() {
            match c {
                '%' => {
                    let Some((_, token)) = chars.next() else {
                        return Err(TemplateError::TrailingPercent { position });
                    };
                    if token == '%' {
                        literal.push(b'%');
                        continue;
                    }
                    let field = Field::from_token(token)
                        .ok_or(TemplateError::UnknownToken { token, position })?;
                    if !literal.is_empty() {
                        parts.push(Part::Literal(mem::take(&mut literal).into_boxed_slice()));
                    }
                    parts.push(Part::Field(field));
                }
                '\\' => {
                    let Some((_, escape)) = chars.next() else {
                        return Err(TemplateError::TrailingBackslash { position });
                    };
                    literal.push(match escape {
                        'n' => b'\n',
                        't' => b'\t',
                        'r' => b'\r',
                        '0' => b'\0',
                        '\\' => b'\\',
                        _ => return Err(TemplateError::UnknownEscape { escape, position }),
                    });
                }
                _ => literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into_boxed_slice()));
        }
        let value_then = match parts.as_slice() {
            [Part::Field(Field::Value)] => Some(Box::default()),
            [Part::Field(Field::Value), Part::Literal(suffix)] => Some(suffix.clone()),
            _ => None,
        };
        Ok(Template::new(parts, value_then))
    }

    fn new(parts: Vec<Part>, value_then: Option<Box<[u8]>>) -> Template {
        let parts: Vec<Part> = parts
            .into_iter()
            .map(|part| match part {
                Part::Literal(bytes) if bytes.len() == 1 => Part::Byte(bytes[0]),
                part => part,
            })
            .collect();
        let fixed_len = fixed_len(&parts);
        Template {
            parts,
            fixed_len,
            value_then,
        }
    }

    /// The template that writes what `spool produce -K SEP -D DELIM` reads: the key and
    /// `key_separator` (when given), the value, then `delimiter`. Built from bytes, so any
    /// separator works, including ones a `--format` string cannot spell.
    pub fn key_value(key_separator: Option<&[u8]>, delimiter: &[u8]) -> Template {
        let mut parts = Vec::new();
        if let Some(separator) = key_separator {
            parts.push(Part::Field(Field::Key));
            parts.push(Part::Literal(separator.into()));
        }
        parts.push(Part::Field(Field::Value));
        parts.push(Part::Literal(delimiter.into()));
        let value_then = key_separator.is_none().then(|| delimiter.into());
        Template::new(parts, value_then)
    }

    /// Appends one record rendered through the template to `out`. Keys, values and headers are
    /// copied as raw bytes; a null key, value or header value is written as `null_literal`.
    #[inline(always)]
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
        null_literal: &[u8],
    ) {
        match &self.value_then {
            Some(suffix) => render_value_then(out, rec, suffix, null_literal),
            None => self.render_parts(out, topic, partition, rec, null_literal),
        }
    }

    #[inline(never)]
    fn render_parts(
        &self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
        null_literal: &[u8],
    ) {
        let len = |bytes: Option<&[u8]>| bytes.map_or(null_literal.len(), <[u8]>::len);
        out.reserve(self.fixed_len + topic.len() + len(rec.key) + len(rec.value));
        render_body(&self.parts, out, topic, partition, rec, null_literal);
    }
}

/// Appends the value of `rec` and `suffix`.
#[inline(always)]
fn render_value_then(out: &mut Vec<u8>, rec: &RecordRef<'_>, suffix: &[u8], null_literal: &[u8]) {
    let value = rec.value.unwrap_or(null_literal);
    out.reserve(value.len() + suffix.len());
    out.extend_from_slice(value);
    match *suffix {
        [byte] => out.push(byte),
        _ => out.extend_from_slice(suffix),
    }
}

/// Appends what `parts` render for `rec`.
#[inline(always)]
fn render_body(
    parts: &[Part],
    out: &mut Vec<u8>,
    topic: &str,
    partition: i32,
    rec: &RecordRef<'_>,
    null_literal: &[u8],
) {
    for part in parts {
        match *part {
            Part::Byte(byte) => out.push(byte),
            Part::Literal(ref bytes) => out.extend_from_slice(bytes),
            Part::Field(field) => match field {
                Field::Topic => out.extend_from_slice(topic.as_bytes()),
                Field::Partition => write_i64(out, partition.into()),
                Field::Offset => write_i64(out, rec.offset),
                Field::Key => out.extend_from_slice(rec.key.unwrap_or(null_literal)),
                Field::Value => out.extend_from_slice(rec.value.unwrap_or(null_literal)),
                Field::KeyLength => write_i64(out, length_or_minus_one(rec.key)),
                Field::ValueLength => write_i64(out, length_or_minus_one(rec.value)),
                Field::TimestampMs => write_i64(out, rec.timestamp),
                Field::TimestampRfc3339 => write_rfc3339_millis(out, rec.timestamp),
                Field::Headers => write_headers(out, &rec.headers, null_literal),
            },
        }
    }
}

/// Renders records through a [`Template`], byte for byte as [`Template::render`] does, with
/// the start of the line up to its first key, value, length or headers (`%t`, `%p`, `%o`,
/// `%T`, `%d` and literals) kept per partition by `LineHeads`: rendered once, its offset
/// counted up in place from one record to the next.
#[derive(Debug, Clone)]
pub struct TemplateLines {
    template: Template,
    null_literal: Box<[u8]>,
    lines: Lines,
}

/// What plain lines hold ([`TemplateLines::plain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// The value and a suffix (the default `%v\n`).
    Value,
    /// The key, a separator, the value and a suffix (`-K`).
    KeyValue,
}

/// Plain lines written into room reserved once ([`TemplateLines::plain_lines`]): the value and
/// a suffix, or with `KEYED` the key, a separator, the value and a suffix. (A parameter of the
/// type rather than a field tested per line: the default line's loop stays as tight as it was.)
pub struct PlainLines<'a, const KEYED: bool> {
    cursor: Cursor<'a>,
    /// Room left.
    left: usize,
    /// With `KEYED`: what comes between the key and the value.
    key_separator: &'a [u8],
    suffix: &'a [u8],
    null_literal: &'a [u8],
}

impl<'a, const KEYED: bool> PlainLines<'a, KEYED> {
    /// Appends the line of a record whose key and value are `key` and `value`, if the room
    /// left holds it; false (and nothing written) when it does not.
    #[inline(always)]
    pub fn push(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
        let len = self.line_len(key, value);
        if len > self.left {
            return false;
        }
        self.left -= len;
        // SAFETY: within the room reserved (`left` counts what is still free of it).
        unsafe {
            let value = value.unwrap_or(self.null_literal);
            if KEYED {
                let key = key.unwrap_or(self.null_literal);
                self.cursor
                    .put_key_value(key, self.key_separator, value, self.suffix);
            } else {
                self.cursor.put(value);
                self.cursor.put_literal(self.suffix);
            }
        }
        true
    }

    /// How long the line of a record whose key and value are `key` and `value` is.
    #[inline(always)]
    pub fn line_len(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
        let field = |bytes: Option<&[u8]>| bytes.unwrap_or(self.null_literal).len();
        let key_part = if KEYED {
            field(key) + self.key_separator.len()
        } else {
            0
        };
        key_part + field(value) + self.suffix.len()
    }

    /// Makes the lines written part of the buffer, and gives the buffer back.
    #[inline(always)]
    pub fn finish(self) -> &'a mut Vec<u8> {
        self.cursor.finish()
    }
}

/// How a record's line is rendered: one test picks the way (as many as `Template::render`
/// makes for the default `%v\n`).
#[derive(Debug, Clone)]
enum Lines {
    /// The value and this suffix ([`Template::value_then`]).
    ValueThen(Box<[u8]>),
    /// `%k SEPARATOR %v END` from the line's start (`-K`, `-F '%k\t%v\n'`): written into
    /// room reserved once.
    KeyValue {
        separator: Box<[u8]>,
        end: Box<[u8]>,
    },
    /// Walking the template's parts: it starts with nothing a line start could hold.
    Parts,
    /// The line start kept per partition, then `body`.
    Cached { heads: LineHeads, body: Body },
}

/// The rest of a line after its start.
#[derive(Debug, Clone)]
enum Body {
    /// `%k SEPARATOR %v END` (`-F '%p %o %k %v\n'`, `-K`): written into room reserved once.
    KeyValue {
        separator: Box<[u8]>,
        end: Box<[u8]>,
    },
    /// `%v END`.
    Value { end: Box<[u8]> },
    /// Anything else, with [`fixed_len`] of `parts`.
    Parts(Box<[Part]>, usize),
}

impl Body {
    fn of(parts: &[Part]) -> Body {
        let literal = |part: &Part| match part {
            Part::Literal(bytes) => Some(bytes.clone()),
            Part::Byte(byte) => Some(Box::new([*byte]) as Box<[u8]>),
            Part::Field(_) => None,
        };
        match parts {
            [Part::Field(Field::Key), separator, Part::Field(Field::Value), end] => {
                if let (Some(separator), Some(end)) = (literal(separator), literal(end)) {
                    return Body::KeyValue { separator, end };
                }
            }
            [Part::Field(Field::Value), end] => {
                if let Some(end) = literal(end) {
                    return Body::Value { end };
                }
            }
            _ => {}
        }
        Body::Parts(parts.into(), fixed_len(parts))
    }
}

impl TemplateLines {
    /// Whether a line is plain, and which: the value and a suffix (the default `%v\n`), or the
    /// key, a separator, the value and a suffix (`-K`). Plain lines are written a batch at a
    /// time ([`TemplateLines::plain_lines`]).
    pub fn plain(&self) -> Option<Plain> {
        match self.lines {
            Lines::ValueThen(_) => Some(Plain::Value),
            Lines::KeyValue { .. } => Some(Plain::KeyValue),
            Lines::Parts | Lines::Cached { .. } => None,
        }
    }

    /// Renders through `template`, with null keys, values and header values as `null_literal`.
    pub fn new(template: Template, null_literal: Vec<u8>) -> TemplateLines {
        let head: Vec<HeadPart> = template.parts.iter().map_while(head_part).collect();
        let cached = template.value_then.is_none()
            && head
                .iter()
                .any(|part| !matches!(part, HeadPart::Literal(_)));
        let lines = match &template.value_then {
            Some(suffix) => Lines::ValueThen(suffix.clone()),
            None if cached => Lines::Cached {
                body: Body::of(&template.parts[head.len()..]),
                heads: LineHeads::new(head),
            },
            None => match Body::of(&template.parts) {
                Body::KeyValue { separator, end } => Lines::KeyValue { separator, end },
                _ => Lines::Parts,
            },
        };
        TemplateLines {
            lines,
            null_literal: null_literal.into_boxed_slice(),
            template,
        }
    }

    /// When lines are plain ([`TemplateLines::plain`]: [`Plain::KeyValue`] with `KEYED`,
    /// else [`Plain::Value`]): a writer of such lines into `out`, with `room` bytes reserved
    /// for them at once (record by record, a line cost a reservation and two capacity checks).
    pub fn plain_lines<'a, const KEYED: bool>(
        &'a self,
        out: &'a mut Vec<u8>,
        room: usize,
    ) -> Option<PlainLines<'a, KEYED>> {
        let (key_separator, suffix): (&[u8], _) = match (&self.lines, KEYED) {
            (Lines::ValueThen(suffix), false) => (&[], suffix),
            (Lines::KeyValue { separator, end }, true) => (separator, end),
            _ => return None,
        };
        Some(PlainLines {
            cursor: Cursor::new(out, room),
            left: room,
            key_separator,
            suffix,
            null_literal: &self.null_literal,
        })
    }

    /// Appends `rec` rendered through the template to `out`.
    #[inline(always)]
    pub fn render(&mut self, out: &mut Vec<u8>, topic: &str, partition: i32, rec: &RecordRef<'_>) {
        match &self.lines {
            Lines::ValueThen(suffix) => render_value_then(out, rec, suffix, &self.null_literal),
            Lines::KeyValue { separator, end } => {
                let key = rec.key.unwrap_or(&self.null_literal);
                let value = rec.value.unwrap_or(&self.null_literal);
                let room = key.len() + separator.len() + value.len() + end.len();
                let mut cursor = Cursor::new(out, room);
                // SAFETY: room for all of it reserved just above.
                unsafe { cursor.put_key_value(key, separator, value, end) };
                cursor.finish();
            }
            Lines::Parts => {
                self.template
                    .render_parts(out, topic, partition, rec, &self.null_literal)
            }
            Lines::Cached { .. } => self.render_cached(out, topic, partition, rec),
        }
    }

    #[inline(never)]
    fn render_cached(
        &mut self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
    ) {
        let Lines::Cached { heads, body } = &mut self.lines else {
            return;
        };
        let head = heads.head(topic, partition, rec.offset, rec.timestamp);
        let null_literal = &self.null_literal[..];
        let key = rec.key.unwrap_or(null_literal);
        let value = rec.value.unwrap_or(null_literal);
        // The head's block copy writes up to 15 bytes past it.
        let head_room = head.len() + 15;
        match &*body {
            Body::KeyValue { separator, end } => {
                let room = head_room + key.len() + separator.len() + value.len() + end.len();
                let mut cursor = Cursor::new(out, room);
                // SAFETY: room for all of it reserved just above.
                unsafe {
                    cursor.put_head(head);
                    cursor.put_key_value(key, separator, value, end);
                }
                cursor.finish();
            }
            Body::Value { end } => {
                let mut cursor = Cursor::new(out, head_room + value.len() + end.len());
                // SAFETY: room for all of it reserved just above.
                unsafe {
                    cursor.put_head(head);
                    cursor.put(value);
                    cursor.put_literal(end);
                }
                cursor.finish();
            }
            Body::Parts(parts, fixed_len) => {
                out.reserve(head_room + fixed_len + topic.len() + key.len() + value.len());
                // SAFETY: room for the head reserved just above.
                unsafe { put_head(out, head) };
                render_body(parts, out, topic, partition, rec, null_literal);
            }
        }
    }
}

/// The part of a line's start `part` is, if it can be one.
fn head_part(part: &Part) -> Option<HeadPart> {
    Some(match part {
        Part::Literal(bytes) => HeadPart::Literal(bytes.clone()),
        Part::Byte(byte) => HeadPart::Literal(Box::new([*byte])),
        Part::Field(Field::Topic) => HeadPart::Topic,
        Part::Field(Field::Partition) => HeadPart::Partition,
        Part::Field(Field::Offset) => HeadPart::Offset,
        Part::Field(Field::TimestampMs) => HeadPart::TimestampMs,
        Part::Field(Field::TimestampRfc3339) => HeadPart::TimestampRfc3339,
        Part::Field(_) => return None,
    })
}

/// Bytes `parts` take besides topic, key and value, headers and RFC 3339 times: the literals
/// and 20 a number.
fn fixed_len(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            Part::Literal(bytes) => bytes.len(),
            Part::Byte(_) => 1,
            Part::Field(
                Field::Partition
                | Field::Offset
                | Field::KeyLength
                | Field::ValueLength
                | Field::TimestampMs,
            ) => 20,
            Part::Field(_) => 0,
        })
        .sum()
}

/// kcat prints -1 as the length of a null key or value, keeping it apart from an empty one.
fn length_or_minus_one(bytes: Option<&[u8]>) -> i64 {
    bytes.map_or(-1, |b| i64::try_from(b.len()).unwrap_or(i64::MAX))
}

/// `k=v,k2=v2` with raw bytes, as kcat prints `%h`.
fn write_headers(out: &mut Vec<u8>, headers: &Headers<'_>, null_literal: &[u8]) {
    for (i, header) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(header.key);
        out.push(b'=');
        out.extend_from_slice(header.value.unwrap_or(null_literal));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::HeaderRef;
    use proptest::prelude::*;

    fn record() -> RecordRef<'static> {
        RecordRef {
            offset: 42,
            timestamp: 1_795_514_400_123, // 2026-11-24T10:00:00.123Z
            key: Some(b"user-1"),
            value: Some(b"{\"a\":1}\xff"),
            headers: Headers::List(&[
                HeaderRef {
                    key: b"trace",
                    value: Some(b"abc"),
                },
                HeaderRef {
                    key: b"gone",
                    value: None,
                },
            ]),
        }
    }

    fn render(format: &str, rec: &RecordRef<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        Template::parse(format)
            .unwrap()
            .render(&mut out, "orders", 3, rec, b"NULL");
        out
    }

    #[test]
    fn every_token() {
        let rec = record();
        assert_eq!(render("%t/%p/%o", &rec), b"orders/3/42");
        assert_eq!(
            render("%k=%v|%s", &rec),
            b"user-1={\"a\":1}\xff|{\"a\":1}\xff"
        );
        assert_eq!(render("%K %V %S", &rec), b"6 8 8");
        assert_eq!(render("%T", &rec), b"1795514400123");
        assert_eq!(render("%d", &rec), b"2026-11-24T10:00:00.123Z");
        assert_eq!(render("%h", &rec), b"trace=abc,gone=NULL");
        assert_eq!(render("100%%", &rec), b"100%");
        assert_eq!(render("", &rec), b"");
        assert_eq!(render("plain ünïcode", &rec), "plain ünïcode".as_bytes());
    }

    #[test]
    fn escapes() {
        let rec = record();
        assert_eq!(render("a\\nb\\tc\\rd\\0e\\\\f", &rec), b"a\nb\tc\rd\0e\\f");
        assert_eq!(render("%v\\n", &rec), b"{\"a\":1}\xff\n");
    }

    #[test]
    fn nulls_and_empties() {
        let rec = RecordRef {
            offset: 0,
            timestamp: -1,
            key: None,
            value: Some(b""),
            headers: Headers::NONE,
        };
        assert_eq!(render("[%k][%v][%K][%V][%h]", &rec), b"[NULL][][-1][0][]");
        let tombstone = RecordRef { value: None, ..rec };
        assert_eq!(render("%v %V", &tombstone), b"NULL -1");
    }

    #[test]
    fn appends_without_clearing() {
        let template = Template::parse("%o\\n").unwrap();
        let mut out = b"keep:".to_vec();
        template.render(&mut out, "t", 0, &record(), b"");
        template.render(&mut out, "t", 0, &record(), b"");
        assert_eq!(out, b"keep:42\n42\n");
    }

    #[test]
    fn errors_name_token_and_position() {
        let err = Template::parse("%k %x").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownToken {
                token: 'x',
                position: 3
            }
        );
        let message = err.to_string();
        assert!(
            message.starts_with("unknown token `%x` at byte 3"),
            "{message}"
        );
        assert!(message.contains("%t topic"), "{message}");

        assert_eq!(
            Template::parse("ab%"),
            Err(TemplateError::TrailingPercent { position: 2 })
        );
        assert_eq!(
            Template::parse("é\\q"),
            Err(TemplateError::UnknownEscape {
                escape: 'q',
                position: 2
            })
        );
        assert_eq!(
            Template::parse("x\\"),
            Err(TemplateError::TrailingBackslash { position: 1 })
        );
        assert_eq!(
            Template::parse("%é"),
            Err(TemplateError::UnknownToken {
                token: 'é',
                position: 0
            })
        );
    }

    /// A record of a random sequence: topic, partition, how far the offset moves, the new
    /// timestamp if it changes, key and value.
    type Step = (
        &'static str,
        i32,
        i64,
        Option<i64>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );

    fn step() -> impl Strategy<Value = Step> {
        let bytes = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
        (
            prop_oneof![Just("orders"), Just("t")],
            prop_oneof![Just(0), Just(7), any::<i32>()],
            prop_oneof![6 => Just(1i64), 1 => any::<i64>(), 1 => 0..2000i64],
            proptest::option::of(any::<i64>()),
            bytes.clone(),
            bytes,
        )
    }

    #[test]
    fn every_shape_renders_as_the_template_does() {
        let formats = [
            "%p %o %k %v\\n",
            "%t:%p:%o\\t%v\\n",
            "%o %v",
            "%T %o %k=%v;;",
            "%d|%o|%o %K %V %h\\n",
            "%p%o%T%k%v%s",
            "%v\\n",
            "%k %o %v\\n",
            "%k\\t%v\\n",
            "%k => %v;;",
        ];
        for format in formats {
            let template = Template::parse(format).unwrap();
            let mut lines = TemplateLines::new(template.clone(), b"-".to_vec());
            let (mut fast, mut plain) = (Vec::new(), Vec::new());
            for (offset, timestamp) in [
                (8, 1),
                (9, 1),
                (10, 2),
                (10, 2),
                (99, 2),
                (100, 3),
                (-1, -1),
                (0, 0),
            ] {
                let rec = RecordRef {
                    offset,
                    timestamp,
                    ..record()
                };
                lines.render(&mut fast, "orders", 3, &rec);
                template.render(&mut plain, "orders", 3, &rec, b"-");
            }
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&plain),
                "{format}"
            );
        }
    }

    /// A record's key and value.
    type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

    /// `records` written as [`TemplateLines::plain_lines`] with `room` bytes at a time (a
    /// line that does not fit starts a new room, as the printer does after a flush), after `x`.
    fn plain_lines<const KEYED: bool>(
        lines: &TemplateLines,
        records: &[KeyValue],
        room: usize,
    ) -> Vec<u8> {
        let mut out = b"x".to_vec();
        let mut writer = lines.plain_lines::<KEYED>(&mut out, room).unwrap();
        for (key, value) in records {
            let (key, value) = (key.as_deref(), value.as_deref());
            if !writer.push(key, value) {
                let line = writer.line_len(key, value);
                assert!(line > 0, "an empty line always fits");
                let out = writer.finish();
                let len = out.len();
                let mut one = lines.plain_lines::<KEYED>(out, room.max(line)).unwrap();
                assert!(one.push(key, value), "a room as large as the line holds it");
                let out = one.finish();
                assert_eq!(out.len(), len + line, "the line's length");
                writer = lines.plain_lines::<KEYED>(out, room).unwrap();
            }
        }
        writer.finish();
        out
    }

    #[test]
    fn plain_lines_are_the_value_or_key_value_templates() {
        let plain =
            |format: &str| TemplateLines::new(Template::parse(format).unwrap(), vec![]).plain();
        assert_eq!(plain("%v\\n"), Some(Plain::Value));
        assert_eq!(plain("%v"), Some(Plain::Value));
        assert_eq!(plain("%k:%v\\n"), Some(Plain::KeyValue));
        assert_eq!(plain("%k => %v;;"), Some(Plain::KeyValue));
        let key_value = Template::key_value(Some(b"\0"), b"\r\n");
        assert_eq!(
            TemplateLines::new(key_value, vec![]).plain(),
            Some(Plain::KeyValue)
        );
        for other in [
            "%k%v\\n",
            "%k:%v",
            "%p %k:%v\\n",
            "%k:%o\\n",
            "%v %k\\n",
            "%K:%v\\n",
        ] {
            assert_eq!(plain(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn plain_lines_are_the_bytes_the_template_renders(
            format in prop_oneof![Just("%v\\n"), Just("%v<->"), Just("%k\\t%v\\n"), Just("%k => %v;;")],
            null_literal in "[a-z]{0,40}",
            records in proptest::collection::vec(
                (
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                ),
                1..60,
            ),
            room in 0..600usize,
        ) {
            let template = Template::parse(format).unwrap();
            let lines = TemplateLines::new(template.clone(), null_literal.clone().into_bytes());
            let fast = match lines.plain() {
                Some(Plain::Value) => plain_lines::<false>(&lines, &records, room),
                Some(Plain::KeyValue) => plain_lines::<true>(&lines, &records, room),
                None => unreachable!("{format} is plain"),
            };
            let mut slow = b"x".to_vec();
            let mut one_by_one = TemplateLines::new(template.clone(), null_literal.clone().into_bytes());
            let mut rendered = b"x".to_vec();
            for (key, value) in &records {
                let rec = RecordRef {
                    key: key.as_deref(),
                    value: value.as_deref(),
                    ..record()
                };
                template.render(&mut slow, "t", 0, &rec, null_literal.as_bytes());
                one_by_one.render(&mut rendered, "t", 0, &rec);
            }
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(&rendered, &slow);
        }

        #[test]
        fn lines_are_the_bytes_the_template_renders(
            format in "([%][tpokvsKVSTdh%]|\\\\[nt]|[ :=|a-z]){0,10}",
            null_literal in "[a-z]{0,3}",
            steps in proptest::collection::vec(step(), 1..80),
            start in prop_oneof![0..1000i64, any::<i64>()],
        ) {
            let template = Template::parse(&format).unwrap();
            let mut lines = TemplateLines::new(template.clone(), null_literal.clone().into_bytes());
            let (mut fast, mut plain) = (b"x".to_vec(), b"x".to_vec());
            let (mut offset, mut timestamp) = (start, 0);
            for (topic, partition, offset_step, new_timestamp, key, value) in steps {
                offset = offset.wrapping_add(offset_step);
                timestamp = new_timestamp.unwrap_or(timestamp);
                let rec = RecordRef {
                    offset,
                    timestamp,
                    key: key.as_deref(),
                    value: value.as_deref(),
                    headers: Headers::List(&[HeaderRef { key: b"h", value: value.as_deref() }]),
                };
                lines.render(&mut fast, topic, partition, &rec);
                template.render(&mut plain, topic, partition, &rec, null_literal.as_bytes());
            }
            prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&plain));
        }

        #[test]
        fn parse_and_render_never_panic(
            format in ".*",
            tokens in "([%\\\\][a-zA-Z%\\\\0]|[^%\\\\]){0,20}",
            offset: i64,
            timestamp: i64,
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) {
            let rec = RecordRef {
                offset,
                timestamp,
                key: key.as_deref(),
                value: value.as_deref(),
                headers: Headers::List(&[HeaderRef { key: b"h", value: value.as_deref() }]),
            };
            for format in [format, tokens] {
                if let Ok(template) = Template::parse(&format) {
                    let mut out = Vec::new();
                    template.render(&mut out, "topic", 0, &rec, b"null");
                }
            }
        }
    }
}
