//! One line of JSON as a record to produce, for `spool produce --input json`.
//!
//! Accepts what `spool consume --output json` writes (its `topic` and `offset` are ignored) and
//! the shorter hand-written forms: every field is optional, and headers may also be given as an
//! object `{"name": "value"}`. Unknown fields are rejected so a typo such as `"vaule"` is not
//! silently produced as a tombstone.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

use super::encoding::{decode_base64, decode_hex, Encoding};
use crate::record::{Header, Record};

/// A record read from one JSON line, with keys, values and headers decoded to bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonInput {
    pub key: Option<Vec<u8>>,
    /// `None` (field missing or `null`) is a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// The partition the line asks for; `None` leaves the choice to the partitioner.
    pub partition: Option<i32>,
    /// CreateTime in ms; `None` means "now", decided by the producer.
    pub timestamp: Option<i64>,
}

impl JsonInput {
    /// The record to append, stamped with `default_timestamp` when the line gave none.
    /// Read `partition` first: it is not part of a [`Record`].
    pub fn into_record(self, default_timestamp: i64) -> Record {
        Record {
            timestamp: self.timestamp.unwrap_or(default_timestamp),
            key: self.key,
            value: self.value,
            headers: self.headers,
        }
    }
}

/// Shown with structural errors so the user sees what a line should look like.
const EXAMPLE: &str =
    r#"{"key":"k","value":"v","headers":{"h":"x"},"partition":0,"timestamp":1732000000000}"#;

/// Why a JSON line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("malformed JSON: {0}; expected one JSON object per line, e.g. {EXAMPLE}")]
    Malformed(String),
    #[error("expected a JSON object per line, found {0}; e.g. {EXAMPLE}")]
    NotAnObject(&'static str),
    /// Unknown or duplicate fields, and wrongly shaped `headers`.
    #[error("invalid record: {0}")]
    Invalid(String),
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("`{field}` is not valid {encoding}: {reason}; the input encoding is chosen with `--encoding`")]
    BadEncoding {
        field: String,
        encoding: Encoding,
        reason: String,
    },
}

/// Decodes one line (a trailing `\n` or `\r\n` is fine) into a record to produce.
pub fn parse_json_record(line: &[u8], enc: Encoding) -> Result<JsonInput, DecodeError> {
    // serde would also read a JSON array positionally into the struct; only objects are records.
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(match serde_json::from_slice::<Value>(line) {
            Ok(value) => DecodeError::NotAnObject(kind_of(&value)),
            Err(_) if first.is_none() => DecodeError::NotAnObject("an empty line"),
            Err(e) => DecodeError::Malformed(e.to_string()),
        });
    }
    let raw: RawInput = serde_json::from_slice(line).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => DecodeError::Invalid(e.to_string()),
        _ => DecodeError::Malformed(e.to_string()),
    })?;

    let headers = raw
        .headers
        .map_or_else(Vec::new, |h| h.0)
        .into_iter()
        .enumerate()
        .map(|(index, (key, value))| {
            Ok(Header {
                key: decode(key, enc, || format!("headers[{index}].key"))?,
                value: value
                    .map(|v| decode(v, enc, || format!("headers[{index}].value")))
                    .transpose()?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(JsonInput {
        key: nullable_bytes(raw.key, "key", enc)?,
        value: nullable_bytes(raw.value, "value", enc)?,
        headers,
        partition: raw.partition.map(partition_of).transpose()?,
        timestamp: raw.timestamp.map(timestamp_of).transpose()?,
    })
}

/// The line as serde sees it. Fields stay `Value` so type errors are reported by us, naming the
/// field, rather than by serde without one.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    key: Option<Value>,
    value: Option<Value>,
    headers: Option<RawHeaders>,
    partition: Option<Value>,
    timestamp: Option<Value>,
    #[serde(rename = "topic")]
    _topic: Option<IgnoredAny>,
    #[serde(rename = "offset")]
    _offset: Option<IgnoredAny>,
}

fn nullable_bytes(
    value: Option<Value>,
    field: &'static str,
    enc: Encoding,
) -> Result<Option<Vec<u8>>, DecodeError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) => decode(text, enc, || field.to_owned()).map(Some),
        Some(other) => Err(DecodeError::WrongType {
            field,
            expected: "a string or null",
            found: kind_of(&other).to_owned(),
        }),
    }
}

fn partition_of(value: Value) -> Result<i32, DecodeError> {
    value
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .filter(|&n| n >= 0)
        .ok_or_else(|| DecodeError::WrongType {
            field: "partition",
            expected: "an integer from 0 to 2147483647 or null",
            found: describe(&value),
        })
}

fn timestamp_of(value: Value) -> Result<i64, DecodeError> {
    value.as_i64().ok_or_else(|| DecodeError::WrongType {
        field: "timestamp",
        expected: "an integer number of milliseconds since the Unix epoch or null",
        found: describe(&value),
    })
}

/// Turns a JSON string's text into record bytes; `field` is only built on error.
fn decode(
    text: String,
    enc: Encoding,
    field: impl FnOnce() -> String,
) -> Result<Vec<u8>, DecodeError> {
    let decoded = match enc {
        Encoding::Utf8 => Ok(text.into_bytes()),
        Encoding::Base64 => decode_base64(&text),
        Encoding::Hex => decode_hex(&text),
    };
    decoded.map_err(|reason| DecodeError::BadEncoding {
        field: field(),
        encoding: enc,
        reason,
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Numbers are shown as written, since "a number" does not explain why 1.5 or -1 is refused.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => kind_of(other).to_owned(),
    }
}

/// Headers still as JSON text, in input order, from either accepted shape.
struct RawHeaders(Vec<(String, Option<String>)>);

impl<'de> Deserialize<'de> for RawHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = RawHeaders;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            r#"`headers` as an array of {"key":..,"value":..} objects or an object {"name":"value"}"#,
        )
    }

    /// Canonical form: `[{"key":"k","value":"v"}, ...]`.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawHeaders, A::Error> {
        let mut headers = Vec::new();
        while let Some(element) = seq.next_element::<Value>()? {
            let header = header_from_object(headers.len(), element).map_err(de::Error::custom)?;
            headers.push(header);
        }
        Ok(RawHeaders(headers))
    }

    /// Short form: `{"k":"v", ...}`. Read entry by entry, not into a map, to keep the order and
    /// repeated names: both are meaningful for Kafka headers.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeaders, A::Error> {
        let mut headers = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value::<Value>()? {
                Value::Null => None,
                Value::String(text) => Some(text),
                other => {
                    return Err(de::Error::custom(format!(
                        "`headers[{}]` (\"{key}\") must have a string or null value, found {}",
                        headers.len(),
                        kind_of(&other)
                    )))
                }
            };
            headers.push((key, value));
        }
        Ok(RawHeaders(headers))
    }
}

fn header_from_object(index: usize, element: Value) -> Result<(String, Option<String>), String> {
    let Value::Object(fields) = element else {
        return Err(format!(
            r#"`headers[{index}]` must be an object {{"key":..,"value":..}}, found {}"#,
            kind_of(&element)
        ));
    };
    let mut key = None;
    let mut value = None;
    for (name, field) in fields {
        match (name.as_str(), field) {
            ("key", Value::String(text)) => key = Some(text),
            ("value", Value::String(text)) => value = Some(text),
            ("value", Value::Null) => {}
            ("key", other) => {
                return Err(format!(
                    "`headers[{index}].key` must be a string, found {}",
                    kind_of(&other)
                ))
            }
            ("value", other) => {
                return Err(format!(
                    "`headers[{index}].value` must be a string or null, found {}",
                    kind_of(&other)
                ))
            }
            (unknown, _) => {
                return Err(format!(
                    "unknown field `{unknown}` in `headers[{index}]`: expected `key` and `value`"
                ))
            }
        }
    }
    let key = key.ok_or_else(|| format!("`headers[{index}]` has no `key`"))?;
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<JsonInput, DecodeError> {
        parse_json_record(line.as_bytes(), Encoding::Utf8)
    }

    fn header(key: &str, value: Option<&str>) -> Header {
        Header {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn full_canonical_line() {
        let line = r#"{"topic":"t","partition":1,"offset":5,"timestamp":1732000000000,"key":"k","value":"v","headers":[{"key":"h","value":"x"},{"key":"n","value":null}]}"#;
        assert_eq!(
            parse(&format!("{line}\r\n")).unwrap(),
            JsonInput {
                key: Some(b"k".to_vec()),
                value: Some(b"v".to_vec()),
                headers: vec![header("h", Some("x")), header("n", None)],
                partition: Some(1),
                timestamp: Some(1_732_000_000_000),
            }
        );
    }

    #[test]
    fn everything_is_optional() {
        assert_eq!(parse("{}").unwrap(), JsonInput::default());
        assert_eq!(
            parse(
                r#" {"key":null,"value":null,"headers":null,"partition":null,"timestamp":null} "#
            )
            .unwrap(),
            JsonInput::default()
        );
        assert_eq!(
            parse(r#"{"value":""}"#).unwrap().value,
            Some(vec![]),
            "empty is not null"
        );
    }

    #[test]
    fn headers_as_object_keep_order_and_repeats() {
        let input = parse(r#"{"headers":{"z":"1","a":null,"z":"2"}}"#).unwrap();
        assert_eq!(
            input.headers,
            vec![
                header("z", Some("1")),
                header("a", None),
                header("z", Some("2"))
            ]
        );
        let input = parse(r#"{"headers":[{"value":"v","key":"k"},{"key":"only"}]}"#).unwrap();
        assert_eq!(
            input.headers,
            vec![header("k", Some("v")), header("only", None)]
        );
    }

    #[test]
    fn encodings_decode_every_field() {
        let line = br#"{"key":"AP8=","value":"aGk=","headers":{"aA==":"Yg=="}}"#;
        let input = parse_json_record(line, Encoding::Base64).unwrap();
        assert_eq!(input.key, Some(vec![0, 255]));
        assert_eq!(input.value, Some(b"hi".to_vec()));
        assert_eq!(input.headers, vec![header("h", Some("b"))]);
        let line = br#"{"key":"00FF","value":"6869","headers":[{"key":"68","value":"62"}]}"#;
        let input = parse_json_record(line, Encoding::Hex).unwrap();
        assert_eq!(input.key, Some(vec![0, 255]));
        assert_eq!(input.headers, vec![header("h", Some("b"))]);
    }

    #[test]
    fn into_record_fills_the_timestamp() {
        let input = parse(r#"{"value":"v"}"#).unwrap();
        assert_eq!(input.into_record(7).timestamp, 7);
        let input = parse(r#"{"value":"v","timestamp":3}"#).unwrap();
        assert_eq!(input.into_record(7).timestamp, 3);
    }

    fn message(line: &str, enc: Encoding) -> String {
        parse_json_record(line.as_bytes(), enc)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_problem() {
        let utf8 = Encoding::Utf8;
        assert!(message(r#"{"key":"#, utf8).starts_with("malformed JSON: EOF"));
        assert!(message("{} x", utf8).starts_with("malformed JSON: trailing characters"));
        assert!(message("nope", utf8).starts_with("malformed JSON"));
        assert!(
            message("[1,2]", utf8).starts_with("expected a JSON object per line, found an array")
        );
        assert!(message("  ", utf8).contains("found an empty line"));
        assert!(
            message(r#"{"vaule":"x"}"#, utf8).contains("unknown field `vaule`, expected one of")
        );
        assert!(message(r#"{"key":"a","key":"b"}"#, utf8).contains("duplicate field `key`"));
        assert_eq!(
            message(r#"{"key":5}"#, utf8),
            "`key` must be a string or null, found a number"
        );
        assert_eq!(
            message(r#"{"value":{"a":1}}"#, utf8),
            "`value` must be a string or null, found an object"
        );
        assert_eq!(
            message(r#"{"partition":-1}"#, utf8),
            "`partition` must be an integer from 0 to 2147483647 or null, found -1"
        );
        assert!(message(r#"{"partition":2147483648}"#, utf8).ends_with("found 2147483648"));
        assert!(message(r#"{"partition":"1"}"#, utf8).ends_with("found a string"));
        assert!(message(r#"{"timestamp":1.5}"#, utf8).ends_with("found 1.5"));
        assert!(message(r#"{"headers":5}"#, utf8).contains("expected `headers` as an array"));
        assert!(message(r#"{"headers":[5]}"#, utf8).contains("`headers[0]` must be an object"));
        assert!(
            message(r#"{"headers":[{"value":"v"}]}"#, utf8).contains("`headers[0]` has no `key`")
        );
        assert!(message(r#"{"headers":[{"key":null}]}"#, utf8)
            .contains("`headers[0].key` must be a string"));
        assert!(message(r#"{"headers":[{"key":"k","value":1}]}"#, utf8)
            .contains("`headers[0].value` must be a string or null, found a number"));
        assert!(message(r#"{"headers":[{"key":"k","v":1}]}"#, utf8)
            .contains("unknown field `v` in `headers[0]`"));
        assert!(message(r#"{"headers":{"a":"b","c":[]}}"#, utf8)
            .contains("`headers[1]` (\"c\") must have a string or null value, found an array"));
        assert!(message(r#"{"value":"\ud800"}"#, utf8).starts_with("malformed JSON"));
    }

    #[test]
    fn bad_encodings_name_the_field() {
        let err = message(r#"{"value":"not base64!"}"#, Encoding::Base64);
        assert!(err.starts_with("`value` is not valid base64: "), "{err}");
        assert!(
            err.ends_with("the input encoding is chosen with `--encoding`"),
            "{err}"
        );
        let err = message(r#"{"key":"abc"}"#, Encoding::Hex);
        assert!(
            err.starts_with("`key` is not valid hex: odd number of hex digits (3)"),
            "{err}"
        );
        let err = message(r#"{"headers":[{"key":"00","value":"zz"}]}"#, Encoding::Hex);
        assert!(
            err.starts_with("`headers[0].value` is not valid hex: `z` at position 0"),
            "{err}"
        );
        let err = message(r#"{"headers":{"x":"00"}}"#, Encoding::Hex);
        assert!(
            err.starts_with("`headers[0].key` is not valid hex"),
            "{err}"
        );
    }
}
