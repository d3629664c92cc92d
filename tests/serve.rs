//! `spool serve`: real Kafka clients (kcat, confluent-kafka, kafka-python, kafkajs) against a
//! server on a free loopback port, side by side with spool's own commands on the same store,
//! plus a raw protocol client for hostile and malformed requests.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::serve::{self as peers, RawClient, Server};
use common::Store;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, InitProducerIdRequest, ProduceRequest, RequestKind,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use proptest::prelude::*;
use spool::produce::partitioner::partition_for_key;

/// `partition offset key value` lines of a topic, read by `spool consume`.
fn spool_records(store: &Store, topic: &str) -> Vec<(i32, i64, String, String)> {
    let out = store.consume(topic, &["-F", "%p %o %k %v\\n"]);
    common::lines(&out)
        .into_iter()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().to_owned(),
                it.next().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn kcat_run(args: &[&str], input: Option<&[u8]>) -> std::process::Output {
    let mut cmd = peers::kcat().expect("kcat checked by the caller");
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run kcat");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn kcat_lists_the_metadata_of_cli_created_topics() {
    if peers::kcat().is_none() {
        return;
    }
    let store = Store::new();
    store.create_topic("orders", 3, &[]);
    store.create_topic("clicks", 1, &[]);
    let server = Server::start(&store, &[]);
    let out = kcat_run(&["-b", &server.addr, "-L", "-J"], None);
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let brokers = meta["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["id"], 0);
    assert_eq!(brokers[0]["name"], server.addr);
    let topics: BTreeMap<String, usize> = meta["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["topic"].as_str().unwrap().to_owned(),
                t["partitions"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        topics,
        BTreeMap::from([("clicks".to_owned(), 1), ("orders".to_owned(), 3)])
    );
}

#[test]
fn topics_created_by_clients_are_ordinary_topics_to_the_cli() {
    let (Some(_), Some(python)) = (peers::kcat(), peers::confluent_python()) else {
        return;
    };
    let store = Store::new();
    let server = Server::start(&store, &[]);
    peers::python(
        &python,
        &server,
        r#"
import os
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
a = AdminClient({"bootstrap.servers": os.environ["BOOTSTRAP"]})
a.create_topics([NewTopic("made", num_partitions=4, replication_factor=1,
                          config={"retention.ms": "60000"})])["made"].result()
a.create_partitions([NewPartitions("made", 6)])["made"].result()
try:
    a.create_topics([NewTopic("made", num_partitions=1)])["made"].result()
    raise SystemExit("a second create succeeded")
except Exception as e:
    assert "TOPIC_ALREADY_EXISTS" in str(e), e
try:
    a.create_topics([NewTopic("bad", num_partitions=1, config={"retention.msec": "1"})])["bad"].result()
    raise SystemExit("an unknown config was accepted")
except Exception as e:
    assert "INVALID_CONFIG" in str(e), e
"#,
    );
    let described = store.describe("made");
    assert_eq!(described["partitions"].as_array().unwrap().len(), 6);
    assert_eq!(described["configs"]["retention.ms"], "60000");
    // Producing to a topic nobody created creates it (auto.create.topics.enable).
    kcat_run(
        &["-b", &server.addr, "-t", "auto", "-P"],
        Some(b"one\ntwo\n"),
    );
    assert_eq!(common::lines(&store.consume("auto", &[])), ["one", "two"]);
    // And a topic the CLI deletes is gone for clients at once.
    store
        .spool()
        .args(["topic", "delete", "auto"])
        .assert()
        .success();
    let out = kcat_run(&["-b", &server.addr, "-L", "-J"], None);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"auto\""));
    store
        .spool()
        .args(["topic", "verify", "made"])
        .assert()
        .success();
}

/// Keys whose records a client produced land on the partition spool's partitioner picks, and
/// `spool consume` reads every one of them there.
fn check_keyed(store: &Store, topic: &str, partitions: i32, keys: &[String]) {
    let records = spool_records(store, topic);
    assert_eq!(records.len(), keys.len(), "every record is stored once");
    let stored: BTreeSet<(i32, String)> = records.iter().map(|r| (r.0, r.2.clone())).collect();
    for key in keys {
        let p = partition_for_key(key.as_bytes(), partitions);
        assert!(
            stored.contains(&(p, key.clone())),
            "{key} not on partition {p}"
        );
    }
    for r in &records {
        assert_eq!(r.3, format!("value-of-{}", r.2));
    }
}

#[test]
fn kcat_and_confluent_kafka_produce_keyed_records_where_spool_would() {
    let (Some(_), Some(python)) = (peers::kcat(), peers::confluent_python()) else {
        return;
    };
    let store = Store::new();
    store.create_topic("keyed", 5, &[]);
    store.create_topic("keyed2", 5, &[]);
    let server = Server::start(&store, &[]);
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let input: String = keys.iter().map(|k| format!("{k}:value-of-{k}\n")).collect();
    kcat_run(
        &[
            "-b",
            &server.addr,
            "-t",
            "keyed",
            "-P",
            "-K:",
            "-X",
            "partitioner=murmur2_random",
            "-X",
            "enable.idempotence=true",
        ],
        Some(input.as_bytes()),
    );
    check_keyed(&store, "keyed", 5, &keys);
    peers::python(
        &python,
        &server,
        r#"
import os
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": os.environ["BOOTSTRAP"], "partitioner": "murmur2_random",
              "enable.idempotence": True, "acks": "all", "linger.ms": 5})
for i in range(200):
    p.produce("keyed2", key=f"k{i}".encode(), value=f"value-of-k{i}".encode())
assert p.flush(30) == 0
"#,
    );
    check_keyed(&store, "keyed2", 5, &keys);
    store
        .spool()
        .args(["topic", "verify", "keyed", "keyed2"])
        .assert()
        .success();
}

#[test]
fn every_client_reads_cli_records_from_any_offset() {
    let (Some(_), Some(confluent), Some(kafka_python)) = (
        peers::kcat(),
        peers::confluent_python(),
        peers::kafka_python(),
    ) else {
        return;
    };
    let store = Store::new();
    store.create_topic("lines", 1, &[]);
    let input: String = (0..50).map(|i| format!("line-{i}\n")).collect();
    store.produce("lines", input, &[]);
    let server = Server::start(&store, &[]);
    for start in [0, 1, 17, 49] {
        let out = kcat_run(
            &[
                "-b",
                &server.addr,
                "-t",
                "lines",
                "-p",
                "0",
                "-C",
                "-e",
                "-q",
                "-o",
                &start.to_string(),
                "-f",
                "%o %s\\n",
            ],
            None,
        );
        let expected: Vec<String> = (start..50).map(|i| format!("{i} line-{i}")).collect();
        assert_eq!(common::lines(&out.stdout), expected, "kcat from {start}");
        for (python, client) in [(&confluent, "confluent"), (&kafka_python, "kafka-python")] {
            let script = if client == "confluent" {
                format!(
                    r#"
import os
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": os.environ["BOOTSTRAP"], "group.id": "unused",
              "enable.auto.commit": False}})
c.assign([TopicPartition("lines", 0, {start})])
got = []
while len(got) < {n}:
    m = c.poll(10)
    assert m is not None, got
    assert not m.error(), m.error()
    got.append(f"{{m.offset()}} {{m.value().decode()}}")
print("\n".join(got))
"#,
                    n = 50 - start
                )
            } else {
                format!(
                    r#"
import os
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=os.environ["BOOTSTRAP"], consumer_timeout_ms=10000)
tp = TopicPartition("lines", 0)
c.assign([tp]); c.seek(tp, {start})
got = []
for m in c:
    got.append(f"{{m.offset}} {{m.value.decode()}}")
    if len(got) == {n}: break
print("\n".join(got))
"#,
                    n = 50 - start
                )
            };
            let out = peers::python(python, &server, &script);
            assert_eq!(
                common::lines(&out.stdout),
                expected,
                "{client} from {start}"
            );
        }
    }
}

#[test]
fn a_waiting_fetch_is_woken_by_a_cli_append() {
    let store = Store::new();
    store.create_topic("live", 1, &[]);
    let server = Server::start(&store, &[]);
    let mut client = RawClient::connect(&server);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(10_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("live")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let producer = std::thread::spawn({
        let dir = store.dir();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("spool"));
            cmd.env("SPOOL_DIR", dir)
                .args(["produce", "live", "-q"])
                .stdin(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            child.stdin.take().unwrap().write_all(b"wake up\n").unwrap();
            assert!(child.wait().unwrap().success());
        }
    });
    let started = Instant::now();
    let Some(ResponseKind::Fetch(resp)) =
        client.request(ApiKey::Fetch, 12, RequestKind::Fetch(fetch))
    else {
        panic!("no fetch response");
    };
    let waited = started.elapsed();
    producer.join().unwrap();
    let data = &resp.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 1);
    assert!(!data.records.as_ref().unwrap().is_empty());
    assert!(
        waited < Duration::from_secs(5),
        "the fetch waited {waited:?} instead of waking at the append"
    );
}

fn produce_request(topic: &str, partition: i32, batch: Vec<u8>, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(batch)))])])
}

/// An uncompressed batch of `n` one-byte records, as an idempotent producer sends it.
fn batch(n: usize, producer_id: i64, epoch: i16, sequence: i32) -> Vec<u8> {
    let records: Vec<spool::record::Record> = (0..n)
        .map(|i| spool::record::Record {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(vec![b'a' + (i % 26) as u8]),
            headers: Vec::new(),
        })
        .collect();
    let mut out = Vec::new();
    spool::store::batch::encode_batch(&mut out, &records);
    out[43..51].copy_from_slice(&producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&epoch.to_be_bytes());
    out[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

fn crc32c(bytes: &[u8]) -> u32 {
    spool::store::crc::crc32c(bytes)
}

fn produce_answer(client: &mut RawClient, req: ProduceRequest) -> (i16, i64) {
    let Some(ResponseKind::Produce(resp)) =
        client.request(ApiKey::Produce, 9, RequestKind::Produce(req))
    else {
        panic!("no produce response");
    };
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn produce_errors_are_kafkas_and_idempotent_retries_are_not_appended_twice() {
    let store = Store::new();
    store.create_topic("idem", 1, &[]);
    let server = Server::start(&store, &[]);
    let mut c = RawClient::connect(&server);
    let Some(ResponseKind::InitProducerId(init)) = c.request(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60000)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ),
    ) else {
        panic!("no InitProducerId response");
    };
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    assert!(pid >= 0);
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(3, pid, 0, 0), -1)),
        (0, 0)
    );
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(2, pid, 0, 3), -1)),
        (0, 3)
    );
    // A retry of either batch is acknowledged with its offset and not appended again.
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(3, pid, 0, 0), -1)),
        (0, 0)
    );
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(2, pid, 0, 3), 1)),
        (0, 3)
    );
    // A gap is refused.
    let (code, _) = produce_answer(&mut c, produce_request("idem", 0, batch(1, pid, 0, 9), -1));
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(spool_records(&store, "idem").len(), 5);
    // acks=0: appended, never answered; the next request's answer is the next frame.
    c.send_only(
        ApiKey::Produce,
        9,
        RequestKind::Produce(produce_request("idem", 0, batch(1, pid, 0, 5), 0)),
    );
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(1, pid, 0, 6), 1)),
        (0, 6)
    );
    assert_eq!(spool_records(&store, "idem").len(), 7);
    // A damaged batch, an unknown topic or partition: Kafka's codes.
    let mut bad = batch(1, -1, -1, -1);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let (code, _) = produce_answer(&mut c, produce_request("idem", 0, bad, -1));
    assert_eq!(code, ResponseError::CorruptMessage.code());
    let (code, _) = produce_answer(&mut c, produce_request("idem", 7, batch(1, -1, -1, -1), -1));
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    let (code, _) = produce_answer(&mut c, produce_request("nope", 0, batch(1, -1, -1, -1), -1));
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    // A transactional producer is told transactions are not supported.
    let Some(ResponseKind::InitProducerId(init)) = c.request(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(StrBytes::from_static_str("tx").into()))
                .with_transaction_timeout_ms(60000)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ),
    ) else {
        panic!("no InitProducerId response");
    };
    assert_eq!(init.error_code, ResponseError::UnsupportedVersion.code());
    // The windows are rebuilt from the log after a restart: the retry is still recognised.
    drop(c);
    drop(server);
    let server = Server::start(&store, &[]);
    let mut c = RawClient::connect(&server);
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(2, pid, 0, 3), -1)),
        (0, 3)
    );
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(1, pid, 0, 6), -1)),
        (0, 6)
    );
    assert_eq!(
        produce_answer(&mut c, produce_request("idem", 0, batch(1, pid, 0, 7), -1)),
        (0, 7)
    );
    assert_eq!(spool_records(&store, "idem").len(), 8);
    store
        .spool()
        .args(["topic", "verify", "idem"])
        .assert()
        .success();
}

/// An idempotent producer's batch whose retry comes after the segment holding it rolled (and
/// the server restarted, so the windows are rebuilt from the log): still a duplicate,
/// acknowledged with its first offset and not appended again.
#[test]
fn idempotent_retries_across_a_segment_roll_are_not_appended_twice() {
    let store = Store::new();
    store.create_topic("roll", 1, &["--config", "segment.bytes=1024"]);
    let server = Server::start(&store, &[]);
    let mut c = RawClient::connect(&server);
    let Some(ResponseKind::InitProducerId(init)) = c.request(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60000)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ),
    ) else {
        panic!("no InitProducerId response");
    };
    let pid = init.producer_id.0;
    assert_eq!(
        produce_answer(&mut c, produce_request("roll", 0, batch(20, pid, 0, 0), -1)),
        (0, 0)
    );
    // Another (non-idempotent) producer's batch that does not fit rolls the segment.
    assert_eq!(
        produce_answer(
            &mut c,
            produce_request("roll", 0, batch(150, -1, -1, -1), -1)
        ),
        (0, 20)
    );
    let segments = std::fs::read_dir(store.dir().join("topics/roll/0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
        .count();
    assert_eq!(segments, 2, "the segment did not roll");
    // Both before and after a restart.
    let mut server = Some(server);
    for round in 0..2 {
        let (code, offset) =
            produce_answer(&mut c, produce_request("roll", 0, batch(20, pid, 0, 0), -1));
        assert_eq!((code, offset), (0, 0), "round {round}");
        assert_eq!(spool_records(&store, "roll").len(), 170, "round {round}");
        drop(c);
        drop(server.take());
        server = Some(Server::start(&store, &[]));
        c = RawClient::connect(server.as_ref().unwrap());
    }
    // The producer's next batch follows on.
    assert_eq!(
        produce_answer(&mut c, produce_request("roll", 0, batch(5, pid, 0, 20), -1)),
        (0, 170)
    );
}

#[test]
fn api_versions_newer_than_ours_get_unsupported_version_and_our_ranges() {
    let store = Store::new();
    let server = Server::start(&store, &[]);
    let mut c = RawClient::connect(&server);
    // Hand-made: ApiVersions v99, answered in version 0.
    let mut frame = Vec::new();
    frame.extend_from_slice(&18i16.to_be_bytes());
    frame.extend_from_slice(&99i16.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    let mut sized = (frame.len() as i32).to_be_bytes().to_vec();
    sized.extend_from_slice(&frame);
    c.stream.write_all(&sized).unwrap();
    let answer = c.read_frame().expect("an answer");
    assert_eq!(i32::from_be_bytes(answer[..4].try_into().unwrap()), 7);
    assert_eq!(
        peers::i16_at(&answer, 4),
        ResponseError::UnsupportedVersion.code()
    );
    let Some(ResponseKind::ApiVersions(v)) = c.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!("no ApiVersions response");
    };
    let keys: BTreeSet<i16> = v.api_keys.iter().map(|k| k.api_key).collect();
    assert!(keys.contains(&(ApiKey::Produce as i16)));
    assert!(keys.contains(&(ApiKey::Fetch as i16)));
    // Transactions are not advertised.
    assert!(!keys.contains(&(ApiKey::EndTxn as i16)));
    assert!(!keys.contains(&(ApiKey::AddPartitionsToTxn as i16)));
}

/// Sends one frame of arbitrary bytes on a fresh connection, then reads whatever comes back
/// until the server answers or closes.
fn throw(addr: &str, bytes: &[u8]) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        panic!("the server stopped accepting");
    };
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut sink);
}

/// A valid request frame of `key` at `version` for the fuzz loop to cut and damage.
fn valid_frame(key: ApiKey, version: i16, body: RequestKind) -> Vec<u8> {
    use bytes::BufMut;
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::Encodable;
    let mut buf = bytes::BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

#[test]
fn random_and_truncated_frames_close_only_their_connection() {
    let Some(_) = peers::kcat() else { return };
    let store = Store::new();
    store.create_topic("fz", 2, &[]);
    store.produce("fz", "before\n", &[]);
    let server = Server::start(&store, &["--max-request-size", "1MiB"]);
    let addr = server.addr.clone();
    let seeds = [
        valid_frame(
            ApiKey::Produce,
            9,
            RequestKind::Produce(produce_request("fz", 0, batch(3, -1, -1, -1), -1)),
        ),
        valid_frame(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(Default::default()),
        ),
        valid_frame(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ),
    ];
    // A size past --max-request-size: refused before reading, connection closed.
    throw(&addr, &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
    throw(&addr, &[0xff, 0xff, 0xff, 0xff]);
    // A Metadata request claiming four billion topics in a 20-byte frame: the decoder asks
    // for the capacity first, which must cost neither the server's life nor its memory.
    let mut huge = vec![0, 3, 0, 12, 0, 0, 0, 1, 0, 1, b'x', 0];
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut sized = (huge.len() as i32).to_be_bytes().to_vec();
    sized.extend_from_slice(&huge);
    throw(&addr, &sized);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        0..seeds.len(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..300),
        0..4u8,
    );
    runner
        .run(&strategy, |(seed, cut, noise, how)| {
            let frame = &seeds[seed];
            let bytes: Vec<u8> = match how {
                // Truncated anywhere.
                0 => frame[..(cut as usize % frame.len())].to_vec(),
                // Valid size and header, random body.
                1 => {
                    let mut f = frame[..frame.len().min(14)].to_vec();
                    f.extend_from_slice(&noise);
                    let len = (f.len() - 4) as i32;
                    f[..4].copy_from_slice(&len.to_be_bytes());
                    f
                }
                // Bytes flipped inside a valid frame (size kept).
                2 => {
                    let mut f = frame.clone();
                    for (i, n) in noise.iter().enumerate().take(8) {
                        let at = 4 + (cut as usize).wrapping_add(i * 31) % (f.len() - 4);
                        f[at] ^= n | 1;
                    }
                    f
                }
                // Pure noise.
                _ => noise,
            };
            throw(&addr, &bytes);
            Ok(())
        })
        .unwrap();
    // Still serving, and the store is sound.
    kcat_run(
        &["-b", &server.addr, "-t", "fz", "-p", "1", "-P"],
        Some(b"after\n"),
    );
    let out = kcat_run(
        &[
            "-b",
            &server.addr,
            "-t",
            "fz",
            "-p",
            "1",
            "-C",
            "-e",
            "-q",
            "-f",
            "%s\\n",
        ],
        None,
    );
    assert_eq!(common::lines(&out.stdout).last().unwrap(), "after");
    store
        .spool()
        .args(["topic", "verify", "fz"])
        .assert()
        .success();
}

#[test]
fn sigkill_mid_produce_loses_nothing_acknowledged() {
    let Some(python) = peers::confluent_python() else {
        return;
    };
    let store = Store::new();
    store.create_topic("durable", 3, &[]);
    let mut server = Server::start(&store, &[]);
    let mut producer = Command::new(&python)
        .args([
            "-u",
            "-c",
            r#"
import os, sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": os.environ["BOOTSTRAP"], "acks": "all",
              "enable.idempotence": True, "linger.ms": 1, "message.timeout.ms": 5000,
              "reconnect.backoff.max.ms": 100})
def acked(err, msg):
    if err is None:
        print(msg.value().decode(), flush=True)
i = 0
while True:
    try:
        p.produce("durable", key=str(i).encode(), value=f"v{i}".encode(), on_delivery=acked)
        i += 1
    except BufferError:
        pass
    p.poll(0.001)
"#,
        ])
        .env("BOOTSTRAP", &server.addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = producer.stdout.take().unwrap();
    let acked = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let status = server.stop_with(libc::SIGKILL);
    assert!(!status.success());
    // Let the producer notice and report what it got answers for, then stop it.
    std::thread::sleep(Duration::from_millis(500));
    let _ = producer.kill();
    let _ = producer.wait();
    let acked = acked.join().unwrap();
    assert!(acked.len() > 10, "only {} acknowledged", acked.len());
    let stored: BTreeSet<String> = spool_records(&store, "durable")
        .into_iter()
        .map(|r| r.3)
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|v| !stored.contains(*v)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    store
        .spool()
        .args(["topic", "verify", "durable"])
        .assert()
        .success();
}

/// A client that asks for a large answer and stops reading leaves the server's write blocked:
/// a SIGTERM still ends the server, after its grace period, with what was appended synced.
#[test]
fn sigterm_ends_the_server_even_when_a_client_stopped_reading_its_answer() {
    let store = Store::new();
    store.create_topic("big", 1, &[]);
    let input = store.dir().join("input");
    let line = format!("{}\n", "x".repeat(999));
    std::fs::write(&input, line.repeat(3_000)).unwrap();
    store
        .spool()
        .args(["produce", "big", "-q", "--fsync", "never", "-f"])
        .arg(&input)
        .assert()
        .success();
    let mut server = Server::start(&store, &[]);
    let mut client = RawClient::connect(&server);
    // The log asked for 20 times over and never read: more than the sockets' buffers hold.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(64 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("big")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(64 << 20)])]);
    for _ in 0..20 {
        client.send_only(ApiKey::Fetch, 12, RequestKind::Fetch(fetch.clone()));
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = server.stop_with(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "the server took {took:?} to exit"
    );
    drop(client);
}

#[test]
fn sigterm_exits_zero_and_a_public_address_is_warned_about() {
    let store = Store::new();
    let mut server = Server::start(&store, &[]);
    // An idle connection does not hold the shutdown up.
    let _idle = TcpStream::connect(&server.addr).unwrap();
    let status = server.stop_with(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    assert!(!server.stderr().contains("warning"));

    let mut child = store
        .spool_process()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("listening on 0.0.0.0:"), "{line}");
    common::signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("no authentication"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let store = Store::new();
    store
        .spool()
        .args(["serve", "--listen", "nowhere"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--listen"));
    store
        .spool()
        .args(["serve", "--advertise", "host-without-port"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--advertise"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    store
        .spool()
        .args(["serve", "--listen", &addr])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("cannot listen on"));
}

#[test]
fn kafkajs_produces_and_an_admin_lists_the_topic() {
    let Some(dir) = peers::kafkajs() else { return };
    let store = Store::new();
    let server = Server::start(&store, &[]);
    peers::node(
        &dir,
        &server,
        r#"
const { Kafka, logLevel } = require('kafkajs')
const kafka = new Kafka({ brokers: [process.env.BOOTSTRAP], logLevel: logLevel.ERROR })
;(async () => {
  const admin = kafka.admin(); await admin.connect()
  await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 2 }] })
  const p = kafka.producer({ idempotent: true }); await p.connect()
  await p.send({ topic: 'js', acks: -1, messages: [{ key: 'a', value: 'x' }, { key: 'b', value: 'y' }] })
  await p.disconnect()
  const offsets = await admin.fetchTopicOffsets('js')
  const total = offsets.reduce((n, o) => n + Number(o.high), 0)
  if (total !== 2) throw new Error('high watermarks sum to ' + total)
  await admin.disconnect()
})().catch(e => { console.error(e); process.exit(1) })
"#,
    );
    let mut values: Vec<String> = spool_records(&store, "js")
        .into_iter()
        .map(|r| r.3)
        .collect();
    values.sort();
    assert_eq!(values, ["x", "y"]);
}

#[test]
fn compressed_batches_are_stored_as_sent_or_refused_whole() {
    let Some(python) = peers::confluent_python() else {
        return;
    };
    let store = Store::new();
    let server = Server::start(&store, &[]);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("z-{codec}");
        store.create_topic(&topic, 3, &[]);
        let out = peers::python(
            &python,
            &server,
            &format!(
                r#"
import os
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": os.environ["BOOTSTRAP"], "compression.codec": "{codec}",
              "partitioner": "murmur2_random", "enable.idempotence": True, "linger.ms": 20}})
errors = set()
def done(err, msg):
    if err is not None:
        errors.add(err.name())
for i in range(50):
    k = f"{codec}{{i}}"
    p.produce("{topic}", key=k.encode(), value=(f"value-of-{{k}}" + " " * 0).encode(),
              headers=[("pad", b"x" * 200)], on_delivery=done)
p.flush(30)
print(",".join(sorted(errors)))
"#
            ),
        );
        let errors = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let keys: Vec<String> = (0..50).map(|i| format!("{codec}{i}")).collect();
        if errors.is_empty() {
            // The store reads this codec: stored as sent, read by spool on its partitions.
            check_keyed(&store, &topic, 3, &keys);
            let codec_id = ["gzip", "snappy", "lz4", "zstd"]
                .iter()
                .position(|c| *c == codec)
                .unwrap() as u8
                + 1;
            let stored_codecs: BTreeSet<u8> = (0..3)
                .flat_map(|p| store.segments(&topic, p))
                .map(|log| common::read(&log))
                .filter(|bytes| bytes.len() > 61)
                .map(|bytes| bytes[22] & 0b111)
                .collect();
            assert_eq!(
                stored_codecs,
                BTreeSet::from([codec_id]),
                "{codec}: batches not stored as sent"
            );
            // And served as stored: the client decodes them.
            let out = peers::python(
                &python,
                &server,
                &format!(
                    r#"
import os
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": os.environ["BOOTSTRAP"], "group.id": "unused",
              "enable.auto.commit": False}})
c.assign([TopicPartition("{topic}", p, 0) for p in range(3)])
got = set()
while len(got) < 50:
    m = c.poll(10)
    assert m is not None, len(got)
    assert not m.error(), m.error()
    got.add(m.key().decode() + "=" + m.value().decode())
print(len(got))
"#
                ),
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "50");
        } else {
            // It does not (yet): refused with Kafka's code, and nothing half-stored.
            assert_eq!(errors, "UNSUPPORTED_COMPRESSION_TYPE", "{codec}");
            assert!(spool_records(&store, &topic).is_empty());
        }
        store
            .spool()
            .args(["topic", "verify", &topic])
            .assert()
            .success();
    }
}

#[test]
fn a_thousand_idle_connections_leave_the_server_serving() {
    let store = Store::new();
    store.create_topic("busy", 1, &[]);
    let server = Server::start(&store, &[]);
    // This test process needs a descriptor per connection too.
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&server.addr).expect("connect"))
        .collect();
    // Each idle connection is a parked thread: the server still answers at once.
    let started = Instant::now();
    let mut c = RawClient::connect(&server);
    let Some(ResponseKind::ApiVersions(v)) = c.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!("no answer with 1000 idle connections");
    };
    assert_eq!(v.error_code, 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    let (code, offset) =
        produce_answer(&mut c, produce_request("busy", 0, batch(2, -1, -1, -1), -1));
    assert_eq!((code, offset), (0, 0));
    drop(idle);
    assert_eq!(spool_records(&store, "busy").len(), 2);
}

#[test]
fn admin_apis_over_the_store() {
    let Some(python) = peers::confluent_python() else {
        return;
    };
    let store = Store::new();
    store.create_topic("adm", 2, &[]);
    // Timestamps 1000, 2000, ... 10000 ms on partition 0.
    let input: String = (1..=10)
        .map(|i| {
            format!(
                "{{\"partition\":0,\"timestamp\":{},\"value\":\"v{i}\"}}\n",
                i * 1000
            )
        })
        .collect();
    store.produce("adm", input, &["--input", "json"]);
    let server = Server::start(&store, &[]);
    peers::python(
        &python,
        &server,
        r#"
import os
from confluent_kafka import TopicPartition, ConsumerGroupTopicPartitions
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigEntry, AlterConfigOpType,
                                   OffsetSpec)
a = AdminClient({"bootstrap.servers": os.environ["BOOTSTRAP"]})
c = a.describe_cluster().result(10)
assert len(c.nodes) == 1 and c.nodes[0].id == 0, c
assert c.cluster_id
tp = TopicPartition("adm", 0)
def offset(spec):
    return a.list_offsets({tp: spec})[tp].result(10)
assert offset(OffsetSpec.earliest()).offset == 0
assert offset(OffsetSpec.latest()).offset == 10
assert offset(OffsetSpec.for_timestamp(2500)).offset == 2
assert offset(OffsetSpec.for_timestamp(99999)).offset == -1
m = offset(OffsetSpec.max_timestamp())
assert (m.offset, m.timestamp) == (9, 10000), m
r = ConfigResource("topic", "adm")
a.incremental_alter_configs([ConfigResource("topic", "adm", incremental_configs=[
    ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])])[r].result(10)
got = a.describe_configs([r])[r].result(10)
assert got["retention.ms"].value == "3600000", got
try:
    a.incremental_alter_configs([ConfigResource("topic", "adm", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])])[r].result(10)
    raise SystemExit("an unknown config was accepted")
except Exception as e:
    assert "INVALID_CONFIG" in str(e) or "unknown topic config" in str(e), e
res = a.delete_records([TopicPartition("adm", 0, 4)])
low = list(res.values())[0].result(10)
assert low.low_watermark == 4, low
assert offset(OffsetSpec.earliest()).offset == 4
# The older, whole-set AlterConfigs: what it does not name goes back to its default.
a.alter_configs([ConfigResource("topic", "adm", set_config={"segment.bytes": "1048576"})])[r].result(10)
got = a.describe_configs([r])[r].result(10)
assert got["segment.bytes"].value == "1048576", got
assert got["retention.ms"].value != "3600000", got
assert got["compression.type"].value == "producer", got
"#,
    );
    let described = store.describe("adm");
    assert_eq!(described["configs"]["segment.bytes"], "1048576");
    assert!(described["configs"].get("retention.ms").is_none());
    assert_eq!(described["partitions"][0]["log_start_offset"], 4);
    // The CLI starts reading where the log now starts.
    let out = store.consume("adm", &["-p", "0", "-o", "earliest"]);
    assert_eq!(common::lines(&out).first().map(String::as_str), Some("v5"));
    store
        .spool()
        .args(["topic", "verify", "adm"])
        .assert()
        .success();
}

/// OffsetDelete (no client here sends it, so the raw protocol): a group's committed offsets of
/// a topic it no longer reads are deleted, as `spool group delete-offsets` does.
#[test]
fn offset_delete_removes_a_groups_committed_offsets() {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetDeleteRequest};
    let store = Store::new();
    store.create_topic("od", 2, &[]);
    store.produce("od", "a\nb\nc\n", &[]);
    store.consume("od", &["--group", "g"]);
    assert_eq!(common::committed(&store, "g").len(), 2);
    let server = Server::start(&store, &[]);
    let mut c = RawClient::connect(&server);
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("od")))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0),
                OffsetDeleteRequestPartition::default().with_partition_index(1),
            ])]);
    let Some(ResponseKind::OffsetDelete(answer)) =
        c.request(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(request))
    else {
        panic!("no OffsetDelete answer");
    };
    assert_eq!(answer.error_code, 0, "{answer:?}");
    for t in &answer.topics {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "{answer:?}");
        }
    }
    assert!(common::committed(&store, "g").is_empty());
}
