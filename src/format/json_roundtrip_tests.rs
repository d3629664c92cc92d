//! Properties tying the JSON writer and reader together: what `consume --output json` writes,
//! `produce --input json` reads back unchanged.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{parse_json_record, write_json_record, Encoding, JsonInput};
use crate::record::{Header, HeaderRef, Headers, RecordRef};

/// Any bytes at all: NUL, control characters, invalid UTF-8.
fn any_bytes() -> impl Strategy<Value = Vec<u8>> + Clone {
    vec(any::<u8>(), 0..40)
}

/// Any valid UTF-8, including control characters, quotes, backslashes and astral characters.
fn any_text_bytes() -> impl Strategy<Value = Vec<u8>> + Clone {
    any::<String>().prop_map(String::into_bytes)
}

fn input_of(bytes: impl Strategy<Value = Vec<u8>> + Clone) -> impl Strategy<Value = JsonInput> {
    let header =
        (bytes.clone(), option::of(bytes.clone())).prop_map(|(key, value)| Header { key, value });
    (
        option::of(bytes.clone()),
        option::of(bytes),
        vec(header, 0..4),
        0..=i32::MAX,
        any::<i64>(),
    )
        .prop_map(|(key, value, headers, partition, timestamp)| JsonInput {
            key,
            value,
            headers,
            partition: Some(partition),
            timestamp: Some(timestamp),
        })
}

/// Writes `input` as consume would, then reads the line back as produce would.
fn round_trip(input: &JsonInput, offset: i64, enc: Encoding) -> JsonInput {
    let headers: Vec<HeaderRef> = input
        .headers
        .iter()
        .map(|h| HeaderRef {
            key: &h.key,
            value: h.value.as_deref(),
        })
        .collect();
    let rec = RecordRef {
        offset,
        timestamp: input.timestamp.unwrap(),
        key: input.key.as_deref(),
        value: input.value.as_deref(),
        headers: Headers::List(&headers),
    };
    let mut line = Vec::new();
    write_json_record(
        &mut line,
        "topic \"q\"",
        input.partition.unwrap(),
        &rec,
        enc,
    )
    .unwrap();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(
        memchr::memchr(b'\n', &line),
        Some(line.len() - 1),
        "exactly one line"
    );
    parse_json_record(&line, enc).unwrap()
}

proptest! {
    #[test]
    fn binary_round_trips_through_base64(input in input_of(any_bytes()), offset: i64) {
        prop_assert_eq!(round_trip(&input, offset, Encoding::Base64), input);
    }

    #[test]
    fn binary_round_trips_through_hex(input in input_of(any_bytes()), offset: i64) {
        prop_assert_eq!(round_trip(&input, offset, Encoding::Hex), input);
    }

    #[test]
    fn text_round_trips_through_utf8(input in input_of(any_text_bytes()), offset: i64) {
        prop_assert_eq!(round_trip(&input, offset, Encoding::Utf8), input);
    }

    #[test]
    fn reading_arbitrary_bytes_never_panics(line in any_bytes()) {
        for enc in Encoding::ALL {
            let _ = parse_json_record(&line, enc);
        }
    }

    #[test]
    fn reading_json_like_text_never_panics(
        line in r#"\{("(key|value|headers|partition|timestamp|topic|k)":(null|-?[0-9]{1,20}|"[A-Za-z0-9+/=]{0,8}"|\[\{"key":"a","value":(null|"AA==")\}\]|\{"a":"b"\}),?){0,4}\}"#
    ) {
        for enc in Encoding::ALL {
            let _ = parse_json_record(line.as_bytes(), enc);
        }
    }
}
