//! The segments spool writes are Kafka's: the `kafka-protocol` crate's RecordBatch v2 decoder
//! reads them (checking every CRC), its encoder produces the same bytes, and spool reads
//! batches that it encoded. The indexes follow Kafka's layout and `index.interval.bytes` rule.
//! Compressed batches too, with each of Kafka's codecs, both ways.

mod common;

use common::{batch_spans, read, Store};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// What one record should look like after the round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
}

fn decode_segment(bytes: &[u8]) -> Vec<Record> {
    let mut buf = bytes;
    let sets = RecordBatchDecoder::decode_all(&mut buf)
        .unwrap_or_else(|e| panic!("kafka-protocol cannot decode the segment: {e:#}"));
    for set in &sets {
        assert_eq!(set.version, 2);
        assert_eq!(set.compression, Compression::None);
    }
    sets.into_iter().flat_map(|s| s.records).collect()
}

fn headers_of(r: &Record) -> Vec<(String, Option<Vec<u8>>)> {
    r.headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_ref().map(|b| b.to_vec())))
        .collect()
}

#[test]
fn kafka_protocol_decodes_every_field_spool_wrote() {
    let s = Store::new();
    // Small segments so the records span several segments (each decoded on its own).
    s.create_topic("k", 1, &["--segment-bytes", "1024"]);
    let mut expected = Vec::new();

    // Lines with keys, a null key, a null value, binary bytes and -H headers.
    let mut input = Vec::new();
    for i in 0..30u32 {
        let key = format!("key-{i}");
        let value: Vec<u8> = if i == 7 {
            b"NULL".to_vec()
        } else {
            let mut v = format!("value-{i}-").into_bytes();
            v.extend_from_slice(&[0x00, 0xff, 0x80, (i % 256) as u8 | 0x80]);
            v
        };
        let key_out = if i == 3 {
            None
        } else {
            Some(key.clone().into_bytes())
        };
        let written_key = if i == 3 { "NULL".to_owned() } else { key };
        input.extend_from_slice(written_key.as_bytes());
        input.push(b'\t');
        input.extend_from_slice(&value);
        input.push(b'\n');
        expected.push(Expected {
            key: key_out,
            value: (i != 7).then_some(value),
            headers: vec![
                ("trace".into(), Some(b"abc".to_vec())),
                ("n\u{e9}".into(), Some("\u{e9}t\u{e9}".as_bytes().to_vec())),
            ],
            timestamp: None,
        });
    }
    s.produce(
        "k",
        input,
        &[
            "-K",
            "\\t",
            "--null-marker",
            "NULL",
            "-H",
            "trace=abc",
            "-H",
            "n\u{e9}=\u{e9}t\u{e9}",
            "--batch-size",
            "300",
        ],
    );
    // JSON lines with explicit timestamps (one earlier than the batch's first), a null header
    // value and a value long enough for multi-byte varint lengths.
    let big = "B".repeat(700);
    let json = format!(
        concat!(
            "{{\"key\":\"j1\",\"value\":\"v1\",\"timestamp\":1700000000000,\"headers\":{{\"h\":null}}}}\n",
            "{{\"key\":null,\"value\":\"{big}\",\"timestamp\":1600000000000}}\n",
            "{{\"value\":\"v3\",\"timestamp\":1800000000000}}\n",
        ),
        big = big
    );
    s.produce("k", json, &["--input", "json"]);
    expected.push(Expected {
        key: Some(b"j1".to_vec()),
        value: Some(b"v1".to_vec()),
        headers: vec![("h".into(), None)],
        timestamp: Some(1_700_000_000_000),
    });
    expected.push(Expected {
        key: None,
        value: Some(big.into_bytes()),
        headers: vec![],
        timestamp: Some(1_600_000_000_000),
    });
    expected.push(Expected {
        key: None,
        value: Some(b"v3".to_vec()),
        headers: vec![],
        timestamp: Some(1_800_000_000_000),
    });

    let segments = s.segments("k", 0);
    assert!(segments.len() >= 3, "{segments:?}");
    let mut decoded = Vec::new();
    for seg in &segments {
        let base: i64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let bytes = read(seg);
        let records = decode_segment(&bytes);
        if let Some(first) = records.first() {
            assert_eq!(first.offset, base, "segment named by its base offset");
        }
        // Batch headers as Kafka's producer leaves them.
        let mut buf = &bytes[..];
        for info in RecordBatchDecoder::decode_batch_info(&mut buf).unwrap() {
            assert_eq!(info.version, 2);
            assert_eq!(info.compression, Compression::None);
            assert_eq!(info.timestamp_type, TimestampType::Creation);
            assert_eq!(info.producer_id, -1);
            assert_eq!(info.producer_epoch, -1);
            assert_eq!(info.base_sequence, -1);
            assert_eq!(info.partition_leader_epoch, 0);
            assert!(!info.transactional && !info.control && !info.delete_horizon);
        }
        decoded.extend(records);
    }
    assert_eq!(decoded.len(), expected.len());
    for (i, (r, e)) in decoded.iter().zip(&expected).enumerate() {
        assert_eq!(r.offset, i as i64, "offsets contiguous from 0");
        assert_eq!(r.key.as_deref(), e.key.as_deref(), "key of record {i}");
        assert_eq!(
            r.value.as_deref(),
            e.value.as_deref(),
            "value of record {i}"
        );
        assert_eq!(headers_of(r), e.headers, "headers of record {i}");
        if let Some(ts) = e.timestamp {
            assert_eq!(r.timestamp, ts, "timestamp of record {i}");
        }
        assert_eq!(r.timestamp_type, TimestampType::Creation);
    }
    // spool's own reader agrees on the timestamps the Kafka decoder saw.
    let out = s.consume("k", &["-F", "%o %T\n"]);
    let spool_ts: Vec<i64> = common::lines(&out)
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let kafka_ts: Vec<i64> = decoded.iter().map(|r| r.timestamp).collect();
    assert_eq!(spool_ts, kafka_ts);
}

#[test]
fn kafka_protocol_rejects_a_flipped_byte_by_its_crc() {
    let s = Store::new();
    s.produce("crc", "one\ntwo\nthree\n", &[]);
    let mut bytes = read(&s.segments("crc", 0)[0]);
    let mut buf = &bytes[..];
    assert_eq!(RecordBatchDecoder::decode_all(&mut buf).unwrap().len(), 1);
    let n = bytes.len();
    bytes[n - 3] ^= 0x01;
    let mut buf = &bytes[..];
    let err = RecordBatchDecoder::decode_all(&mut buf).unwrap_err();
    assert!(
        format!("{err:#}").contains("Cyclic redundancy check failed"),
        "{err:#}"
    );
}

#[test]
fn kafka_protocol_encoder_writes_the_same_bytes() {
    let s = Store::new();
    s.create_topic("same", 1, &[]);
    let mut input = String::new();
    for i in 0..200 {
        input.push_str(&format!("k{}\tv{}{}\n", i % 13, i, "x".repeat(i % 50)));
    }
    s.produce(
        "same",
        input,
        &["-K", "\\t", "-H", "a=1", "--batch-size", "2KiB"],
    );
    s.produce("same", "no key\n", &["-H", "b="]);
    let bytes = read(&s.segments("same", 0)[0]);
    let spans = batch_spans(&bytes);
    assert!(spans.len() > 5);
    assert_eq!(spans.iter().map(|b| b.len).sum::<u64>(), bytes.len() as u64);
    for span in spans {
        let batch = &bytes[span.position as usize..(span.position + span.len) as usize];
        let mut buf = batch;
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(set.records.len(), span.records as usize);
        let mut encoded = Vec::new();
        RecordBatchEncoder::encode(
            &mut encoded,
            &set.records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        assert_eq!(
            encoded, batch,
            "batch at byte {} differs from kafka-protocol's encoding",
            span.position
        );
    }
}

fn kafka_record(offset: i64, key: Option<&str>, value: Option<&[u8]>, ts: i64) -> Record {
    let mut headers = IndexMap::new();
    headers.insert(
        StrBytes::from_string(format!("h{offset}")),
        Some(vec![offset as u8, 0xff].into()),
    );
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // kafka-protocol derives baseSequence from the first record: -1 keeps it "none".
        sequence: -1 + offset as i32,
        timestamp: ts,
        key: key.map(|k| k.as_bytes().to_vec().into()),
        value: value.map(|v| v.to_vec().into()),
        headers,
    }
}

#[test]
fn spool_reads_and_extends_batches_encoded_by_kafka_protocol() {
    let s = Store::new();
    s.create_topic("foreign", 1, &[]);
    let records = [
        kafka_record(0, Some("a"), Some(b"first"), 1_700_000_000_000),
        kafka_record(1, None, Some(&[0, 1, 2, 0xff]), 1_700_000_000_005),
        kafka_record(2, Some("c"), None, 1_700_000_000_009),
    ];
    let mut log = Vec::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut log, &records[..2], &options).unwrap();
    RecordBatchEncoder::encode(&mut log, &records[2..], &options).unwrap();
    let dir = s.partition_dir("foreign", 0);
    std::fs::write(dir.join("00000000000000000000.log"), &log).unwrap();
    // No head checkpoint: the next appender learns the log end from the files.
    std::fs::remove_file(dir.join(".lock")).unwrap();

    s.spool()
        .args(["topic", "verify", "foreign"])
        .assert()
        .success();
    let out = s.consume("foreign", &["--output", "json", "--encoding", "base64"]);
    let got = common::json_lines(&out);
    assert_eq!(got.len(), 3);
    for (g, r) in got.iter().zip(&records) {
        assert_eq!(g["offset"], r.offset);
        assert_eq!(g["timestamp"], r.timestamp);
        assert_eq!(common::b64(&g["key"]).as_deref(), r.key.as_deref());
        assert_eq!(common::b64(&g["value"]).as_deref(), r.value.as_deref());
        let h = &g["headers"][0];
        assert_eq!(
            common::b64(&h["key"]).unwrap(),
            format!("h{}", r.offset).as_bytes()
        );
        assert_eq!(
            common::b64(&h["value"]).unwrap(),
            vec![r.offset as u8, 0xff]
        );
    }
    s.produce("foreign", "spool's\n", &[]);
    let mut buf = &read(&dir.join("00000000000000000000.log"))[..];
    let decoded: Vec<Record> = RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .collect();
    assert_eq!(decoded.len(), 4);
    assert_eq!(decoded[3].offset, 3);
    assert_eq!(decoded[3].value.as_deref(), Some(&b"spool's"[..]));
}

/// Reads `.index` entries (relative offset i32, position i32) of a segment.
fn offset_index(path: &std::path::Path) -> Vec<(i32, i32)> {
    read(path)
        .chunks_exact(8)
        .map(|c| {
            (
                i32::from_be_bytes(c[..4].try_into().unwrap()),
                i32::from_be_bytes(c[4..].try_into().unwrap()),
            )
        })
        .collect()
}

/// Reads `.timeindex` entries (timestamp i64, relative offset i32) of a segment.
fn time_index(path: &std::path::Path) -> Vec<(i64, i32)> {
    read(path)
        .chunks_exact(12)
        .map(|c| {
            (
                i64::from_be_bytes(c[..8].try_into().unwrap()),
                i32::from_be_bytes(c[8..].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn indexes_follow_kafkas_layout_and_interval_rule() {
    let s = Store::new();
    s.create_topic("ix", 1, &["--segment-bytes", "32KiB"]);
    // Many batches of ~500 bytes over three segments; timestamps rise with each produce.
    let file = s.tmp.path().join("in");
    for round in 0..3 {
        let input: String = (0..300)
            .map(|i| format!("{round}-{i:04}-{}\n", "i".repeat(90)))
            .collect();
        std::fs::write(&file, input).unwrap();
        s.spool()
            .args(["produce", "ix", "-q", "--batch-size", "500", "--file"])
            .arg(&file)
            .assert()
            .success();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let segments = s.segments("ix", 0);
    assert!(segments.len() >= 3, "{segments:?}");
    for (n, seg) in segments.iter().enumerate() {
        let base: i64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let bytes = read(seg);
        let spans = batch_spans(&bytes);
        let records = decode_segment(&bytes);
        // Kafka's LogSegment.append: an entry for a batch when more than 4096 bytes were
        // appended since the last entry, naming the batch's last offset and its position.
        let mut expected = Vec::new();
        let mut since = 0u64;
        for b in &spans {
            if since > 4096 {
                let last = b.base_offset + i64::from(b.records) - 1;
                expected.push(((last - base) as i32, b.position as i32));
                since = 0;
            }
            since += b.len;
        }
        let actual = offset_index(&seg.with_extension("index"));
        assert_eq!(actual, expected, "offset index of {}", seg.display());
        if spans.len() > 20 {
            assert!(!actual.is_empty());
        }
        // Time index: non-decreasing timestamps naming offsets in this segment, each the
        // largest timestamp so far; a rolled segment ends with its largest timestamp.
        let times = time_index(&seg.with_extension("timeindex"));
        for w in times.windows(2) {
            assert!(w[0].0 < w[1].0 && w[0].1 <= w[1].1, "{times:?}");
        }
        for &(ts, rel) in &times {
            let upto = records
                .iter()
                .filter(|r| r.offset <= base + i64::from(rel))
                .map(|r| r.timestamp)
                .max()
                .unwrap();
            assert_eq!(ts, upto, "time entry ({ts}, {rel}) of {}", seg.display());
        }
        let is_last = n + 1 == segments.len();
        if !is_last {
            let max = records.iter().map(|r| r.timestamp).max().unwrap();
            assert_eq!(times.last().unwrap().0, max, "rolled segment's final entry");
        }
    }
    s.spool().args(["topic", "verify", "ix"]).assert().success();
}

/// kafka-protocol's name for one of spool's codecs.
fn kafka_codec(name: &str) -> Compression {
    match name {
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    }
}

#[test]
fn kafka_protocol_decodes_the_batches_spool_compressed_with_each_codec() {
    let s = Store::new();
    let mut input = Vec::new();
    for i in 0..3000u32 {
        input.extend_from_slice(format!("key-{}\t", i % 17).as_bytes());
        input.extend_from_slice(format!("value {i} ").as_bytes());
        input.extend_from_slice(&[0x00, 0xff, 0x80, (i % 256) as u8 | 0x80]);
        input.push(b'\n');
    }
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("z-{codec}");
        s.create_topic(&topic, 1, &["--segment-bytes", "16KiB"]);
        s.produce(
            &topic,
            input.clone(),
            &[
                "-K",
                "\\t",
                "-H",
                "h=\u{e9}",
                "-z",
                codec,
                "--batch-size",
                "8KiB",
            ],
        );
        let mut decoded = Vec::new();
        let segments = s.segments(&topic, 0);
        assert!(segments.len() >= 2, "{codec}: {segments:?}");
        for seg in &segments {
            let bytes = read(seg);
            let mut buf = &bytes[..];
            let sets = RecordBatchDecoder::decode_all(&mut buf)
                .unwrap_or_else(|e| panic!("{codec}: kafka-protocol cannot decode: {e:#}"));
            for set in &sets {
                assert_eq!(set.compression, kafka_codec(codec));
            }
            decoded.extend(sets.into_iter().flat_map(|set| set.records));
        }
        assert_eq!(decoded.len(), 3000, "{codec}");
        for (i, (r, line)) in decoded.iter().zip(input.split(|&b| b == b'\n')).enumerate() {
            let (key, value) = line.split_at(line.iter().position(|&b| b == b'\t').unwrap());
            assert_eq!(r.offset, i as i64, "{codec}");
            assert_eq!(r.key.as_deref(), Some(key), "{codec}: key of record {i}");
            assert_eq!(
                r.value.as_deref(),
                Some(&value[1..]),
                "{codec}: value of record {i}"
            );
            assert_eq!(
                headers_of(r),
                [("h".to_owned(), Some("\u{e9}".as_bytes().to_vec()))]
            );
        }
    }
}

/// Appends encoded batches to partition 0 of `topic` as spool's producer appends its own.
fn append_batches(s: &Store, topic: &str, batches: &mut [Vec<u8>]) {
    let store = common::lib_store(s);
    let partition = store.topic(topic).unwrap().partition(0).unwrap();
    let mut writer = partition.writer(spool::store::SyncPolicy::Never).unwrap();
    for batch in batches {
        writer.append(batch, 1_700_000_000_000).unwrap();
    }
}

fn assert_consumed(s: &Store, topic: &str, records: &[Record]) {
    let out = s.consume(topic, &["--output", "json", "--encoding", "base64"]);
    let got = common::json_lines(&out);
    assert_eq!(got.len(), records.len(), "{topic}");
    for (g, r) in got.iter().zip(records) {
        assert_eq!(g["offset"], r.offset, "{topic}");
        assert_eq!(g["timestamp"], r.timestamp, "{topic}");
        assert_eq!(
            common::b64(&g["key"]).as_deref(),
            r.key.as_deref(),
            "{topic}"
        );
        assert_eq!(
            common::b64(&g["value"]).as_deref(),
            r.value.as_deref(),
            "{topic}"
        );
        assert_eq!(
            common::b64(&g["headers"][0]["value"]).unwrap(),
            vec![r.offset as u8, 0xff]
        );
    }
    s.spool()
        .args(["topic", "verify", topic])
        .assert()
        .success();
}

#[test]
fn spool_reads_batches_kafka_protocol_compressed_with_each_codec() {
    let s = Store::new();
    let records: Vec<Record> = (0..400)
        .map(|i| {
            let value = format!("value {i} {}", "z".repeat(i as usize % 50)).into_bytes();
            let key = format!("k{}", i % 7);
            kafka_record(
                i,
                (i % 9 != 0).then_some(key.as_str()),
                (i % 11 != 5).then_some(&value[..]),
                1_700_000_000_000 + i,
            )
        })
        .collect();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("k-{codec}");
        s.create_topic(&topic, 1, &[]);
        let options = RecordEncodeOptions {
            version: 2,
            compression: kafka_codec(codec),
        };
        let mut batches: Vec<Vec<u8>> = records
            .chunks(100)
            .map(|chunk| {
                let mut batch = Vec::new();
                RecordBatchEncoder::encode(&mut batch, chunk, &options).unwrap();
                batch
            })
            .collect();
        append_batches(&s, &topic, &mut batches);
        let log = read(&s.segments(&topic, 0)[0]);
        assert!(batch_spans(&log)
            .iter()
            .all(|b| log[b.position as usize + 22] & 0b111 == kafka_codec(codec) as u8));
        assert_consumed(&s, &topic, &records);
    }
}

#[test]
fn spool_reads_raw_snappy_as_librdkafka_writes_it() {
    let s = Store::new();
    s.create_topic("raw", 1, &[]);
    let records: Vec<Record> = (0..50)
        .map(|i| kafka_record(i, Some("k"), Some(&[i as u8; 30]), 1_700_000_000_000 + i))
        .collect();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    let mut batch = Vec::new();
    RecordBatchEncoder::encode(&mut batch, &records, &options).unwrap();
    // The records as one raw snappy block (no xerial framing), codec 2, length and CRC anew.
    let raw = snap::raw::Encoder::new()
        .compress_vec(&batch[61..])
        .unwrap();
    batch.truncate(61);
    batch.extend_from_slice(&raw);
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    batch[22] |= 2;
    let crc = spool::store::crc::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    append_batches(&s, "raw", &mut [batch]);
    assert_consumed(&s, "raw", &records);
}
