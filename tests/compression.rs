//! Compressed batches: `produce -z CODEC` and the topic config `compression.type` write them,
//! every reader reads them (consume in all its forms, @TIME seeks, groups, --exec, verify,
//! recovery), and damage inside a compressed payload is reported, never printed or panicked on.
//! (Decoding by an independent implementation is in tests/kafka_format.rs.)

mod common;

use common::{batch_spans, read, Store};
use predicates::prelude::*;
use spool::record::{Header, Record};
use spool::store::batch::{compress_batch, encode_batch, HEADER_LEN};
use spool::store::compression::{Compression, Compressor};

const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];

fn codec_id(name: &str) -> i16 {
    name.parse::<Compression>().unwrap().id().into()
}

/// Attributes of every batch of a log file.
fn attributes(log: &[u8]) -> Vec<i16> {
    batch_spans(log)
        .iter()
        .map(|s| {
            let at = s.position as usize + 21;
            i16::from_be_bytes([log[at], log[at + 1]])
        })
        .collect()
}

/// JSON lines (base64) of records with binary keys, values and headers, nulls included.
fn binary_json_records(n: usize) -> (String, Vec<serde_json::Value>) {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut input = String::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let key: Option<Vec<u8>> = (i % 5 != 0).then(|| vec![(i % 256) as u8, 0, 0xff, b'\n']);
        let value: Option<Vec<u8>> =
            (i % 7 != 3).then(|| (0..(i % 300)).map(|j| ((i * 31 + j) % 256) as u8).collect());
        let headers = if i % 2 == 0 {
            serde_json::json!([{"key": b64(b"h\x00"), "value": b64(&[0x80, i as u8])}, {"key": b64(b"n"), "value": null}])
        } else {
            serde_json::json!([])
        };
        let record = serde_json::json!({
            "key": key.as_deref().map(b64),
            "value": value.as_deref().map(b64),
            "headers": headers,
            "timestamp": 1_700_000_000_000i64 + i as i64,
        });
        input.push_str(&record.to_string());
        input.push('\n');
        expected.push(record);
    }
    (input, expected)
}

#[test]
fn every_codec_round_trips_binary_keys_values_and_headers() {
    let s = Store::new();
    let (input, expected) = binary_json_records(2000);
    for codec in CODECS {
        let topic = format!("t-{codec}");
        s.create_topic(&topic, 1, &[]);
        s.produce(
            &topic,
            input.clone(),
            &[
                "--input",
                "json",
                "--encoding",
                "base64",
                "-z",
                codec,
                "--batch-size",
                "16KiB",
            ],
        );
        let log = read(&s.segments(&topic, 0)[0]);
        let attrs = attributes(&log);
        assert!(attrs.len() > 5, "{codec}: several batches");
        assert!(
            attrs.iter().all(|&a| a == codec_id(codec)),
            "{codec}: {attrs:?}"
        );
        let out = s.consume(&topic, &["--output", "json", "--encoding", "base64"]);
        let got = common::json_lines(&out);
        assert_eq!(got.len(), expected.len(), "{codec}");
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g["offset"], i as i64, "{codec}");
            for field in ["key", "value", "timestamp"] {
                assert_eq!(g[field], e[field], "{codec}: {field} of record {i}");
            }
            let headers: Vec<(serde_json::Value, serde_json::Value)> = g["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h["key"].clone(), h["value"].clone()))
                .collect();
            let want: Vec<(serde_json::Value, serde_json::Value)> = e["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h["key"].clone(), h["value"].clone()))
                .collect();
            assert_eq!(headers, want, "{codec}: headers of record {i}");
        }
        // Raw values through a template, a seek into the middle of a compressed batch, and
        // the last records: the same bytes as from an uncompressed topic.
        s.spool()
            .args(["topic", "verify", &topic])
            .assert()
            .success();
        let n = s.consume(
            &topic,
            &[
                "-o",
                "1001",
                "-n",
                "3",
                "--output",
                "json",
                "--encoding",
                "hex",
            ],
        );
        let offsets: Vec<i64> = common::json_lines(&n)
            .iter()
            .map(|r| r["offset"].as_i64().unwrap())
            .collect();
        assert_eq!(offsets, [1001, 1002, 1003], "{codec}");
    }
}

#[test]
fn lines_compress_and_read_back_by_every_reader() {
    let s = Store::new();
    let input: String = (0..20_000)
        .map(|i| format!("line {i:06} {}\n", "x".repeat(i % 90)))
        .collect();
    for codec in CODECS {
        let topic = format!("l-{codec}");
        s.create_topic(&topic, 3, &[]);
        s.produce(
            &topic,
            input.clone(),
            &["-z", codec, "--partitioner", "round-robin"],
        );
        let mut got = common::lines(&s.consume(&topic, &[]));
        got.sort();
        let mut want = common::lines(input.as_bytes());
        want.sort();
        assert_eq!(got, want, "{codec}: plain consume");
        // A group member (-e) reads and commits them all.
        let mut grouped = common::lines(&s.consume(&topic, &["--group", "g"]));
        grouped.sort();
        assert_eq!(grouped, want, "{codec}: group consume");
        // The compressed logs are much smaller than the input.
        let stored: u64 = (0..3)
            .flat_map(|p| s.segments(&topic, p))
            .map(|l| std::fs::metadata(l).unwrap().len())
            .sum();
        assert!(
            stored < input.len() as u64 / 2,
            "{codec}: {stored} bytes stored for {} of input",
            input.len()
        );
    }
}

#[test]
fn time_seeks_and_exec_read_compressed_batches() {
    let s = Store::new();
    s.create_topic("ts", 1, &[]);
    let input: String = (0..100)
        .map(|i| {
            format!(
                "{{\"value\":\"r{i}\",\"timestamp\":{}}}\n",
                1_700_000_000_000i64 + i * 1000
            )
        })
        .collect();
    s.produce(
        "ts",
        input,
        &["--input", "json", "-z", "zstd", "--batch-size", "1KiB"],
    );
    let at = |spec: &str| common::lines(&s.consume("ts", &["-o", spec, "-n", "2"]));
    assert_eq!(
        at(&format!("@{}", 1_700_000_000_000i64 + 57_000)),
        ["r57", "r58"]
    );
    assert_eq!(
        at(&format!("@{}", 1_700_000_000_000i64 + 56_500)),
        ["r57", "r58"]
    );
    let seen = s.tmp.path().join("seen");
    let cmd = format!("cat >> {}; echo >> {}", seen.display(), seen.display());
    s.spool()
        .args(["consume", "ts", "--group", "x", "-e", "-q", "--exec", &cmd])
        .assert()
        .success();
    let lines = common::lines(&read(&seen));
    assert_eq!(lines.len(), 100);
    assert_eq!(lines[99], "r99");
}

#[test]
fn compression_type_config_is_set_altered_shown_and_wins_over_the_producer() {
    let s = Store::new();
    s.create_topic("c", 1, &["--config", "compression.type=zstd"]);
    let configs = &s.describe("c")["configs"];
    assert_eq!(configs["compression.type"], "zstd", "{configs}");
    s.spool()
        .args(["topic", "describe", "c"])
        .assert()
        .success()
        .stdout(predicate::str::contains("compression.type=zstd"));
    // No -z: the topic's codec.
    s.produce("c", "a\nb\n", &[]);
    // Another -z: the topic's codec still, and a note saying so.
    s.spool()
        .args(["produce", "c", "-z", "gzip"])
        .write_stdin("c\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "compression.type=zstd: batches are written with zstd, not gzip",
        ));
    s.spool()
        .args(["topic", "alter", "c", "--config", "compression.type=lz4"])
        .assert()
        .success();
    s.produce("c", "d\n", &["-z", "snappy"]);
    s.spool()
        .args([
            "topic",
            "alter",
            "c",
            "--config",
            "compression.type=uncompressed",
        ])
        .assert()
        .success();
    s.produce("c", "e\n", &["-z", "snappy"]);
    // Removed: `producer` again, what -z says.
    s.spool()
        .args(["topic", "alter", "c", "--config", "compression.type="])
        .assert()
        .success();
    s.produce("c", "f\n", &["-z", "snappy"]);
    s.produce("c", "g\n", &[]);
    s.spool()
        .args([
            "topic",
            "alter",
            "c",
            "--config",
            "compression.type=producer",
        ])
        .assert()
        .success();
    s.produce("c", "h\n", &["-z", "gzip"]);
    assert_eq!(
        attributes(&read(&s.segments("c", 0)[0])),
        [4, 4, 3, 0, 2, 0, 1]
    );
    assert_eq!(
        common::lines(&s.consume("c", &[])),
        ["a", "b", "c", "d", "e", "f", "g", "h"]
    );
    for bad in ["compression.type=brotli", "compression.type=5"] {
        s.spool()
            .args(["topic", "create", "bad", "--config", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
            ));
    }
}

#[test]
fn dash_zero_is_nul_delimited_input_and_the_old_dash_z_is_an_error_naming_it() {
    let s = Store::new();
    s.produce("n", b"a\nb\0c\0".to_vec(), &["-0"]);
    s.produce("n", b"d\0".to_vec(), &["--null"]);
    s.produce("n", b"e\0".to_vec(), &["--null-data"]);
    assert_eq!(s.consume("n", &["-F", "%v|"]), b"a\nb|c|d|e|".to_vec());
    // The old use: -z with no codec, before or after the topic.
    for args in [
        &["produce", "n", "-z"][..],
        &["produce", "-z", "n"],
        &["produce", "n", "-z", "-K", ":"],
    ] {
        s.spool()
            .args(args)
            .write_stdin("x\0")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("error:"))
            .stderr(predicate::str::contains(
                "hint: -z now selects a compression codec (as in kcat and rpk); for NUL-delimited records use -0 (--null)",
            ));
    }
    assert_eq!(
        s.offsets_and_values("n", 0).len(),
        4,
        "nothing produced by the old use"
    );
    s.spool()
        .args(["produce", "n", "-z", "brotli"])
        .write_stdin("x\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "possible values: none, gzip, snappy, lz4, zstd",
        ));
    s.produce("n", "plain\n", &["-z", "none"]);
    assert!(attributes(&read(&s.segments("n", 0)[0]))
        .iter()
        .all(|&a| a == 0));
}

/// A log of three compressed batches of 50 records; returns the spans of its batches.
fn three_batches(s: &Store, topic: &str, codec: &str) -> Vec<common::BatchSpan> {
    s.create_topic(topic, 1, &["--config", "max.message.bytes=8388608"]);
    for b in 0..3 {
        let input: String = (0..50)
            .map(|i| format!("batch {b} record {i} {}\n", "v".repeat(i)))
            .collect();
        s.produce(topic, input, &["-z", codec]);
    }
    let spans = batch_spans(&read(&s.segments(topic, 0)[0]));
    assert_eq!(spans.len(), 3);
    spans
}

/// Rewrites the batch at `span` of the log with `edit` applied to its compressed records,
/// fixing up the length and CRC so that only the payload is wrong.
fn edit_payload(log: &std::path::Path, span: &common::BatchSpan, edit: impl FnOnce(&mut Vec<u8>)) {
    let bytes = read(log);
    let start = span.position as usize;
    let end = start + span.len as usize;
    let mut batch = bytes[start..end].to_vec();
    let mut payload = batch.split_off(HEADER_LEN);
    edit(&mut payload);
    batch.extend_from_slice(&payload);
    fix_length_and_crc(&mut batch);
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&batch);
    out.extend_from_slice(&bytes[end..]);
    std::fs::write(log, out).unwrap();
}

fn fix_length_and_crc(batch: &mut [u8]) {
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = spool::store::crc::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Runs `consume -e` and returns (exit code, stdout lines, stderr).
fn consume(s: &Store, topic: &str) -> (i32, Vec<String>, String) {
    let out = s
        .spool()
        .args(["consume", topic, "-e", "-q"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        common::lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The damage in the second batch is reported by consume (after the first batch's 50
/// records, naming topic, partition, offset and file) and by verify, with one of `messages`.
fn assert_damage_reported(s: &Store, topic: &str, span: &common::BatchSpan, messages: &[&str]) {
    let (code, lines, stderr) = consume(s, topic);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, 1, "{topic}: {stderr}");
    assert_eq!(
        lines.len(),
        50,
        "{topic}: the records before the damage, nothing after"
    );
    for part in [
        &format!("cannot read {topic}/0 at offset 50"),
        "00000000000000000000.log",
        &format!("at byte {}", span.position),
    ] {
        assert!(stderr.contains(part), "{topic}: {part:?} not in {stderr}");
    }
    assert!(
        messages.iter().any(|m| stderr.contains(m)),
        "{topic}: none of {messages:?} in {stderr}"
    );
    let verified = s.spool().args(["topic", "verify", topic]).output().unwrap();
    assert_eq!(verified.status.code(), Some(1));
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        messages.iter().any(|m| report.contains(m)),
        "{topic}: none of {messages:?} in {report}"
    );
}

#[test]
fn a_payload_that_does_not_decompress_is_damage_for_every_codec() {
    let s = Store::new();
    for codec in CODECS {
        let topic = format!("bad-{codec}");
        let spans = three_batches(&s, &topic, codec);
        let log = s.segments(&topic, 0)[0].clone();
        // The stream's first bytes (a magic number or a length) are wrong.
        edit_payload(&log, &spans[1], |p| {
            p[0] ^= 0xff;
            p[1] ^= 0xff;
        });
        // (A raw snappy stream has no magic: the changed bytes are read as its length.)
        assert_damage_reported(
            &s,
            &topic,
            &spans[1],
            &["do not decompress", "records hold"],
        );
        s.spool()
            .args(["topic", "verify", &topic, "--repair"])
            .assert()
            .success();
        assert_eq!(consume(&s, &topic).1.len(), 50);
    }
}

#[test]
fn a_flipped_byte_anywhere_in_a_compressed_payload_never_panics() {
    let s = Store::new();
    for codec in CODECS {
        let topic = format!("flip-{codec}");
        let spans = three_batches(&s, &topic, codec);
        let log = s.segments(&topic, 0)[0].clone();
        let clean = read(&log);
        let expected = common::lines(&s.consume(&topic, &[]));
        let payload = spans[1].len as usize - HEADER_LEN;
        for k in 0..12 {
            std::fs::write(&log, &clean).unwrap();
            let at = k * payload / 12;
            edit_payload(&log, &spans[1], |p| p[at] ^= 0x55);
            let (code, lines, stderr) = consume(&s, &topic);
            assert!(!stderr.contains("panicked"), "{codec} byte {at}: {stderr}");
            assert!(lines.len() >= 50 && lines[..50] == expected[..50]);
            if code != 0 {
                assert_eq!(code, 1);
                assert!(stderr.starts_with("error:"), "{stderr}");
            }
        }
    }
}

#[test]
fn a_truncated_payload_is_damage_for_every_codec() {
    let s = Store::new();
    for codec in CODECS {
        let topic = format!("cut-{codec}");
        let spans = three_batches(&s, &topic, codec);
        let log = s.segments(&topic, 0)[0].clone();
        edit_payload(&log, &spans[1], |p| p.truncate(p.len() / 2));
        let (code, lines, stderr) = consume(&s, &topic);
        assert_eq!((code, lines.len()), (1, 50), "{codec}: {stderr}");
        assert!(
            stderr.contains("do not decompress") || stderr.contains("records hold"),
            "{codec}: {stderr}"
        );
        s.spool().args(["topic", "verify", &topic]).assert().code(1);
    }
}

#[test]
fn a_payload_with_another_record_count_is_damage() {
    let s = Store::new();
    let spans = three_batches(&s, "count", "lz4");
    let log = s.segments("count", 0)[0].clone();
    let mut bytes = read(&log);
    let at = spans[1].position as usize;
    bytes[at + 57..at + 61].copy_from_slice(&49i32.to_be_bytes());
    bytes[at + 23..at + 27].copy_from_slice(&48i32.to_be_bytes());
    let end = at + spans[1].len as usize;
    fix_length_and_crc(&mut bytes[at..end]);
    std::fs::write(&log, bytes).unwrap();
    assert_damage_reported(
        &s,
        "count",
        &spans[1],
        &["the batch header counts 49 records but its decompressed records hold 50"],
    );
}

#[test]
fn a_decompression_bomb_is_refused_as_damage_for_every_codec() {
    let s = Store::new();
    // 80 MiB of zeros in one record: more than a batch may decompress to (64 MiB).
    let bomb = Record {
        timestamp: 1,
        key: None,
        value: Some(vec![0; 80 << 20]),
        headers: vec![Header {
            key: b"h".to_vec(),
            value: None,
        }],
    };
    let mut plain = Vec::new();
    encode_batch(&mut plain, std::slice::from_ref(&bomb));
    drop(bomb);
    let mut compressor = Compressor::default();
    for codec in CODECS {
        let topic = format!("bomb-{codec}");
        let spans = three_batches(&s, &topic, codec);
        let log = s.segments(&topic, 0)[0].clone();
        let mut compressed = Vec::new();
        compress_batch(
            &plain,
            codec.parse().unwrap(),
            &mut compressor,
            &mut compressed,
        )
        .unwrap();
        assert!(
            compressed.len() < 8 << 20,
            "{codec}: {} bytes",
            compressed.len()
        );
        // In place of the second batch, with its base offset.
        compressed[..8].copy_from_slice(&50i64.to_be_bytes());
        let bytes = read(&log);
        let start = spans[1].position as usize;
        let mut out = bytes[..start].to_vec();
        out.extend_from_slice(&compressed);
        std::fs::write(&log, out).unwrap();
        std::fs::remove_file(s.partition_dir(&topic, 0).join(".lock")).ok();
        assert_damage_reported(&s, &topic, &spans[1], &["expand past 67108864 bytes"]);
    }
}

#[test]
fn unknown_codecs_are_refused_by_number() {
    let s = Store::new();
    for id in 5..=7i16 {
        let topic = format!("codec-{id}");
        let spans = three_batches(&s, &topic, "gzip");
        let log = s.segments(&topic, 0)[0].clone();
        let mut bytes = read(&log);
        let at = spans[1].position as usize;
        bytes[at + 21..at + 23].copy_from_slice(&id.to_be_bytes());
        fix_length_and_crc(&mut bytes[at..at + spans[1].len as usize]);
        std::fs::write(&log, bytes).unwrap();
        assert_damage_reported(
            &s,
            &topic,
            &spans[1],
            &[&format!("unknown compression codec {id}")],
        );
    }
}

#[test]
fn a_torn_compressed_tail_is_cut_by_recovery_and_offsets_continue() {
    let s = Store::new();
    for codec in CODECS {
        let topic = format!("torn-{codec}");
        let spans = three_batches(&s, &topic, codec);
        let log = s.segments(&topic, 0)[0].clone();
        let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        file.set_len(spans[2].position + spans[2].len / 2).unwrap();
        drop(file);
        let (code, lines, _) = consume(&s, &topic);
        assert_eq!(
            (code, lines.len()),
            (0, 100),
            "{codec}: a torn tail is not yet written"
        );
        s.spool()
            .args(["topic", "verify", &topic])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("incomplete batch"));
        s.produce(&topic, "after\n", &["-z", codec]);
        let got = s.offsets_and_values(&topic, 0);
        assert_eq!(got.len(), 101);
        assert_eq!(got[100].1, b"after", "{codec}");
        assert!(got[100].0 >= 100, "{codec}: offsets continue after the cut");
        s.spool()
            .args(["topic", "verify", &topic])
            .assert()
            .success();
    }
}

#[test]
fn index_entries_and_the_time_index_cover_compressed_batches() {
    let s = Store::new();
    s.create_topic("ix", 1, &["--segment-bytes", "64KiB"]);
    // Values that do not compress well, so batches stay large enough for index entries.
    let input: String = (0..6000u64)
        .map(|i| {
            let noise: String = (0..60)
                .map(|j| char::from(b'a' + ((i * 7919 + j * 104_729) % 26) as u8))
                .collect();
            format!("{i} {noise}\n")
        })
        .collect();
    s.produce("ix", input, &["-z", "lz4", "--batch-size", "2KiB"]);
    let segments = s.segments("ix", 0);
    assert!(segments.len() >= 2, "{segments:?}");
    assert!(
        std::fs::metadata(segments[0].with_extension("index"))
            .unwrap()
            .len()
            > 0
    );
    s.spool().args(["topic", "verify", "ix"]).assert().success();
    // Seeks through the index land on the right record.
    for offset in [0, 1999, 3001, 5999] {
        let out = s.consume("ix", &["-o", &offset.to_string(), "-n", "1"]);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .starts_with(&format!("{offset} ")),
            "offset {offset}"
        );
    }
}
