//! `spool produce`: every flag, with its effect checked by reading the records back.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{b64, json_lines, kafka_partition, Store, MURMUR2_VECTORS};
use predicates::prelude::*;
use serde_json::Value;

/// Every record of a topic as JSON (base64 keys, values and headers), in partition order.
fn records(s: &Store, topic: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let partitions = s.describe(topic)["partition_count"].as_i64().unwrap();
    for p in 0..partitions {
        let out = s.consume(
            topic,
            &[
                "-p",
                &p.to_string(),
                "--output",
                "json",
                "--encoding",
                "base64",
            ],
        );
        all.extend(json_lines(&out));
    }
    all
}

fn values(s: &Store, topic: &str) -> Vec<Vec<u8>> {
    records(s, topic)
        .iter()
        .map(|r| b64(&r["value"]).expect("non-null value"))
        .collect()
}

fn text_values(s: &Store, topic: &str) -> Vec<String> {
    values(s, topic)
        .into_iter()
        .map(|v| String::from_utf8(v).unwrap())
        .collect()
}

/// `partition -> [values]` through a template.
fn by_partition(s: &Store, topic: &str) -> Vec<(i64, String, String)> {
    let out = s.consume(topic, &["-F", "%p\t%k\t%v\n"]);
    common::lines(&out)
        .into_iter()
        .map(|l| {
            let mut it = l.splitn(3, '\t');
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().to_owned(),
                it.next().unwrap().to_owned(),
            )
        })
        .collect()
}

fn batches(s: &Store, topic: &str) -> u64 {
    let j = s.json(&["topic", "verify", topic, "-o", "json"]);
    j[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["batches"].as_u64().unwrap())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// framing

#[test]
fn one_record_per_line_and_an_unterminated_last_line_is_a_record() {
    let s = Store::new();
    s.produce("lines", "a\n\nb b\nlast", &[]);
    assert_eq!(text_values(&s, "lines"), vec!["a", "", "b b", "last"]);
    let offsets: Vec<i64> = records(&s, "lines")
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3]);
    // Empty input: no record, exit 0.
    s.produce("lines", "", &[]);
    assert_eq!(records(&s, "lines").len(), 4);
    // A carriage return is data, not part of the delimiter.
    s.produce("crlf", "x\r\ny\r\n", &[]);
    assert_eq!(text_values(&s, "crlf"), vec!["x\r", "y\r"]);
}

#[test]
fn bytes_pass_through_unchanged() {
    let s = Store::new();
    // Every byte value except the delimiter, invalid UTF-8, NUL bytes, an empty record.
    let all_but_newline: Vec<u8> = (0u8..=255).filter(|&b| b != b'\n').collect();
    let invalid_utf8 = vec![0xc3, 0x28, 0xff, 0xfe, 0x00, 0x80];
    let mut input = Vec::new();
    for r in [&all_but_newline, &invalid_utf8, &vec![], &vec![0u8; 3]] {
        input.extend_from_slice(r);
        input.push(b'\n');
    }
    s.produce("bin", input, &[]);
    assert_eq!(
        values(&s, "bin"),
        vec![all_but_newline.clone(), invalid_utf8, vec![], vec![0, 0, 0]]
    );

    // -0: NUL-separated records may hold newlines; the template prints raw bytes.
    let with_newlines: Vec<u8> = (1u8..=255).collect();
    let mut input = with_newlines.clone();
    input.push(0);
    input.extend_from_slice(b"two\nlines");
    s.produce("nul", input, &["-0"]);
    assert_eq!(
        values(&s, "nul"),
        vec![with_newlines.clone(), b"two\nlines".to_vec()]
    );
    let raw = s.consume("nul", &["-F", "%v\\0"]);
    let mut expected = with_newlines;
    expected.push(0);
    expected.extend_from_slice(b"two\nlines\0");
    assert_eq!(raw, expected);
}

#[test]
fn delimiters_single_multi_byte_and_escaped() {
    let s = Store::new();
    s.produce("d1", "a||b|c||||d", &["-D", "||"]);
    assert_eq!(text_values(&s, "d1"), vec!["a", "b|c", "", "d"]);
    s.produce("d2", "x\ty\tz\n", &["--delimiter", "\\t"]);
    assert_eq!(text_values(&s, "d2"), vec!["x", "y", "z\n"]);
    s.produce("d3", b"p\x1eq\x1e".to_vec(), &["-D", "\\x1e"]);
    assert_eq!(text_values(&s, "d3"), vec!["p", "q"]);
    s.produce("d4", "1,2,3", &["-D", ","]);
    assert_eq!(text_values(&s, "d4"), vec!["1", "2", "3"]);
    // Bad delimiters are usage errors.
    for d in ["", "\\q", "\\xZZ"] {
        s.spool()
            .args(["produce", "d5", "-D", d])
            .write_stdin("v\n")
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error:"));
    }
    s.spool()
        .args(["produce", "d5", "-0", "-D", ","])
        .write_stdin("v\n")
        .assert()
        .code(2);
}

// ---------------------------------------------------------------------------------------------
// keys, null marker, headers

#[test]
fn key_separator_splits_at_the_first_separator() {
    let s = Store::new();
    s.create_topic("k", 1, &[]);
    s.produce(
        "k",
        "user1:clicked\nuser2:a:b\n:empty-key\nno-value:\n",
        &["-K", ":"],
    );
    let recs = records(&s, "k");
    let kv: Vec<(Vec<u8>, Vec<u8>)> = recs
        .iter()
        .map(|r| (b64(&r["key"]).unwrap(), b64(&r["value"]).unwrap()))
        .collect();
    assert_eq!(
        kv,
        vec![
            (b"user1".to_vec(), b"clicked".to_vec()),
            (b"user2".to_vec(), b"a:b".to_vec()),
            (vec![], b"empty-key".to_vec()),
            (b"no-value".to_vec(), vec![]),
        ]
    );
    // A multi-byte and an escaped separator; binary keys.
    s.produce("k2", b"\xffk=>v=>w\n".to_vec(), &["-K", "=>"]);
    let r = &records(&s, "k2")[0];
    assert_eq!(b64(&r["key"]).unwrap(), b"\xffk");
    assert_eq!(b64(&r["value"]).unwrap(), b"v=>w");
    s.produce("k3", "a\tb\n", &["-K", "\\t"]);
    assert_eq!(b64(&records(&s, "k3")[0]["key"]).unwrap(), b"a");
    // An empty separator and -K with -k are usage errors.
    s.spool()
        .args(["produce", "k4", "-K", ""])
        .write_stdin("v\n")
        .assert()
        .code(2);
    s.spool()
        .args(["produce", "k4", "-K", ":", "-k", "x"])
        .write_stdin("v\n")
        .assert()
        .code(2);
}

#[test]
fn missing_key_separator_names_the_line_and_keeps_earlier_records() {
    let s = Store::new();
    s.create_topic("mk", 1, &[]);
    s.spool()
        .args(["produce", "mk", "-K", ":"])
        .write_stdin("a:1\nb:2\nc:3\nno separator here\nd:4\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: line 4 has no key separator \":\"",
        ))
        .stderr(predicate::str::contains("--ignore-missing-key"))
        .stderr(predicate::str::contains("Produced 3 records"));
    assert_eq!(text_values(&s, "mk"), vec!["1", "2", "3"]);

    // --ignore-missing-key sends such lines with a null key.
    s.produce("mk2", "a:1\nplain\n", &["-K", ":", "--ignore-missing-key"]);
    let recs = records(&s, "mk2");
    assert_eq!(b64(&recs[0]["key"]).unwrap(), b"a");
    assert!(recs[1]["key"].is_null());
    assert_eq!(b64(&recs[1]["value"]).unwrap(), b"plain");
    // --ignore-missing-key needs -K.
    s.spool()
        .args(["produce", "mk2", "--ignore-missing-key"])
        .write_stdin("v\n")
        .assert()
        .code(2);
}

#[test]
fn fixed_key_null_marker_and_headers() {
    let s = Store::new();
    s.create_topic("fk", 4, &[]);
    s.produce("fk", "1\n2\n3\n4\n5\n6\n", &["-k", "foobar"]);
    let expected = kafka_partition(-790_332_482, 4) as i64;
    let rows = by_partition(&s, "fk");
    assert_eq!(rows.len(), 6);
    for (p, k, _) in &rows {
        assert_eq!((*p, k.as_str()), (expected, "foobar"));
    }
    let in_order: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(in_order, vec!["1", "2", "3", "4", "5", "6"]);

    // --null-marker: a key or value equal to it is null (a tombstone for values).
    s.produce(
        "nm",
        "k:v\nNULL:v2\nk3:NULL\nNULL:NULL\nk5:NULLx\n",
        &["-K", ":", "--null-marker", "NULL"],
    );
    let recs = records(&s, "nm");
    type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);
    let kv: Vec<KeyValue> = recs
        .iter()
        .map(|r| (b64(&r["key"]), b64(&r["value"])))
        .collect();
    assert_eq!(
        kv,
        vec![
            (Some(b"k".to_vec()), Some(b"v".to_vec())),
            (None, Some(b"v2".to_vec())),
            (Some(b"k3".to_vec()), None),
            (None, None),
            (Some(b"k5".to_vec()), Some(b"NULLx".to_vec())),
        ]
    );
    s.produce("nm2", "-\nx\n", &["--null-marker", "-"]);
    let out = s.consume("nm2", &["-F", "%V:%v\n"]);
    assert_eq!(out, b"-1:\n1:x\n");

    // -H adds headers to every record, in order; a value may contain '='.
    s.produce(
        "hd",
        "a\nb\n",
        &["-H", "trace=1", "-H", "eq=x=y", "-H", "empty="],
    );
    for r in records(&s, "hd") {
        let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (b64(&h["key"]).unwrap(), b64(&h["value"])))
            .collect();
        assert_eq!(
            headers,
            vec![
                (b"trace".to_vec(), Some(b"1".to_vec())),
                (b"eq".to_vec(), Some(b"x=y".to_vec())),
                (b"empty".to_vec(), Some(vec![])),
            ]
        );
    }
    s.spool()
        .args(["produce", "hd", "-H", "novalue"])
        .write_stdin("v\n")
        .assert()
        .code(2);
}

// ---------------------------------------------------------------------------------------------
// JSON input

#[test]
fn json_input_in_each_encoding() {
    let s = Store::new();
    s.create_topic("j", 3, &[]);
    let input = concat!(
        r#"{"key":"k1","value":"v1","headers":{"h":"x"},"partition":2,"timestamp":1700000000123}"#,
        "\n",
        "\n",
        r#"{"value":null,"partition":0}"#,
        "\n",
        r#"{"key":"k3","value":"v3","headers":[{"key":"a","value":null}],"partition":1}"#,
    );
    s.produce("j", input, &["--input", "json", "-H", "fixed=1"]);
    let recs = records(&s, "j");
    assert_eq!(recs.len(), 3, "blank lines are skipped");
    let p0 = &recs[0];
    assert_eq!(p0["partition"], 0);
    assert!(p0["key"].is_null() && p0["value"].is_null());
    let p1 = &recs[1];
    assert_eq!(p1["partition"], 1);
    assert_eq!(b64(&p1["headers"][1]["key"]).unwrap(), b"a");
    assert!(p1["headers"][1]["value"].is_null());
    let p2 = &recs[2];
    assert_eq!(p2["partition"], 2);
    assert_eq!(p2["timestamp"], 1_700_000_000_123i64);
    assert_eq!(b64(&p2["key"]).unwrap(), b"k1");
    assert_eq!(b64(&p2["value"]).unwrap(), b"v1");
    // -H headers come first, then the line's own.
    assert_eq!(b64(&p2["headers"][0]["key"]).unwrap(), b"fixed");
    assert_eq!(b64(&p2["headers"][1]["key"]).unwrap(), b"h");

    s.produce(
        "jb",
        "{\"key\":\"/wA=\",\"value\":\"AAEC\"}\n",
        &["--input", "json", "--encoding", "base64"],
    );
    let r = &records(&s, "jb")[0];
    assert_eq!(b64(&r["key"]).unwrap(), vec![0xff, 0x00]);
    assert_eq!(b64(&r["value"]).unwrap(), vec![0, 1, 2]);
    s.produce(
        "jh",
        "{\"key\":\"ff00\",\"value\":\"0a0d\"}\n",
        &["--input", "json", "--encoding", "hex"],
    );
    let r = &records(&s, "jh")[0];
    assert_eq!(b64(&r["key"]).unwrap(), vec![0xff, 0x00]);
    assert_eq!(b64(&r["value"]).unwrap(), b"\n\r");

    // Errors name the line; a bad encoding name is a usage error.
    s.spool()
        .args(["produce", "jb", "--input", "json"])
        .write_stdin("{\"value\":\"ok\"}\n{\"vaule\":1}\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 2 is not a valid JSON record",
        ));
    s.spool()
        .args(["produce", "jb", "--input", "json", "--encoding", "base64"])
        .write_stdin("{\"value\":\"not base64!\"}\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 1"));
    s.spool()
        .args(["produce", "j", "--input", "json"])
        .write_stdin("{\"value\":\"x\",\"partition\":7}\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 1 asks for partition 7"));
    s.spool()
        .args(["produce", "jb", "--input", "json", "--encoding", "rot13"])
        .write_stdin("{}\n")
        .assert()
        .code(2);
}

#[test]
fn consume_json_round_trips_through_produce_json() {
    let s = Store::new();
    s.create_topic("src", 3, &[]);
    let mut input = Vec::new();
    for i in 0..50u8 {
        input.extend_from_slice(&[b'k', i % 7, b':', 0xff, i + 100, 0, b'v']);
        input.push(b'\n');
    }
    s.produce("src", input, &["-K", ":", "-H", "h=\u{e9}"]);
    s.create_topic("copy", 3, &[]);
    let dump = s.consume("src", &["--output", "json", "--encoding", "base64"]);
    s.spool()
        .args([
            "produce",
            "copy",
            "-q",
            "--input",
            "json",
            "--encoding",
            "base64",
        ])
        .write_stdin(dump)
        .assert()
        .success();
    let strip = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("topic");
                r
            })
            .collect()
    };
    let a = strip(records(&s, "src"));
    let b = strip(records(&s, "copy"));
    assert_eq!(a.len(), 50);
    assert_eq!(
        a, b,
        "same partitions, offsets, timestamps, keys, values, headers"
    );
}

// ---------------------------------------------------------------------------------------------
// partitioning

#[test]
fn murmur2_places_keys_as_kafkas_java_client() {
    let s = Store::new();
    for n in [2, 3, 7, 16] {
        let topic = format!("m{n}");
        s.create_topic(&topic, n, &[]);
        let input: String = MURMUR2_VECTORS
            .iter()
            .map(|(k, _)| format!("{k}\tvalue-of-{k}\n"))
            .collect();
        s.produce(&topic, input, &["-K", "\\t"]);
        let rows = by_partition(&s, &topic);
        assert_eq!(rows.len(), MURMUR2_VECTORS.len());
        for (key, hash) in MURMUR2_VECTORS {
            let row = rows.iter().find(|r| r.1 == key).unwrap();
            assert_eq!(
                row.0,
                kafka_partition(hash, n as i32) as i64,
                "key {key} with {n} partitions"
            );
            assert_eq!(row.2, format!("value-of-{key}"));
        }
    }
    // 'foobar' -> -790332482: 4 partitions -> 2 (a hand-checked anchor).
    assert_eq!(kafka_partition(-790_332_482, 4), 2);
    s.create_topic("m4", 4, &[]);
    s.produce("m4", "foobar:x\n", &["-K", ":", "--partitioner", "murmur2"]);
    assert_eq!(by_partition(&s, "m4")[0].0, 2);
}

#[test]
fn keyless_records_stick_to_one_partition_per_batch() {
    let s = Store::new();
    s.create_topic("sticky", 4, &[]);
    // One small input is one batch: every record on one partition.
    s.produce("sticky", "a\nb\nc\nd\ne\n", &[]);
    let rows = by_partition(&s, "sticky");
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.0 == rows[0].0), "{rows:?}");

    // From a file (always "ready"), batches close when full: runs of records move on to another
    // partition with each batch.
    s.create_topic("sticky2", 4, &[]);
    let file = s.tmp.path().join("in");
    let input: String = (0..2000)
        .map(|i| format!("{i:05}-{}\n", "s".repeat(40)))
        .collect();
    std::fs::write(&file, input).unwrap();
    s.spool()
        .args(["produce", "sticky2", "-q", "--batch-size", "2KiB", "--file"])
        .arg(&file)
        .assert()
        .success();
    let out = s.consume("sticky2", &["-F", "%p %v\n"]);
    let mut placed: Vec<(usize, i64)> = common::lines(&out)
        .iter()
        .map(|l| {
            let (p, v) = l.split_once(' ').unwrap();
            (v[..5].parse().unwrap(), p.parse().unwrap())
        })
        .collect();
    placed.sort();
    assert_eq!(placed.len(), 2000);
    let runs = 1 + placed.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let used: std::collections::BTreeSet<i64> = placed.iter().map(|p| p.1).collect();
    let batches = batches(&s, "sticky2");
    assert!(used.len() >= 3, "spread over partitions: {used:?}");
    assert_eq!(
        runs as u64, batches,
        "each batch is one run of consecutive records on one partition"
    );
    assert!(batches >= 20, "2KiB batches of ~50-byte records: {batches}");
}

#[test]
fn round_robin_random_and_fixed_partition() {
    let s = Store::new();
    s.create_topic("rr", 3, &[]);
    s.produce(
        "rr",
        "k:0\nk:1\nk:2\nk:3\nk:4\nk:5\nk:6\nk:7\nk:8\n",
        &["-K", ":", "--partitioner", "round-robin"],
    );
    let mut rows = by_partition(&s, "rr");
    rows.sort_by_key(|r| r.2.clone());
    for w in rows.windows(2) {
        assert_eq!(w[1].0, (w[0].0 + 1) % 3, "{rows:?}");
    }

    s.create_topic("rnd", 4, &[]);
    let input: String = (0..400).map(|i| format!("{i}\n")).collect();
    s.produce("rnd", input, &["--partitioner", "random"]);
    let d = s.describe("rnd");
    let counts: Vec<i64> = (0..4)
        .map(|p| d["partitions"][p]["log_end_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<i64>(), 400);
    assert!(counts.iter().all(|&c| c > 40), "{counts:?}");

    s.create_topic("fixed", 3, &[]);
    s.produce("fixed", "a:1\nb:2\nc:3\n", &["-K", ":", "-p", "1"]);
    assert!(by_partition(&s, "fixed").iter().all(|r| r.0 == 1));
    s.spool()
        .args(["produce", "fixed", "-p", "3"])
        .write_stdin("x\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "partition 3 of topic 'fixed' does not exist",
        ));
    s.spool()
        .args(["produce", "fixed", "--partitioner", "hash"])
        .write_stdin("x\n")
        .assert()
        .code(2);
    s.spool()
        .args(["produce", "fixed", "-p", "1", "--partitioner", "random"])
        .write_stdin("x\n")
        .assert()
        .code(2);
}

#[test]
fn partitioner_command_is_asked_for_each_record() {
    let s = Store::new();
    s.create_topic("pc", 5, &[]);
    let log = s.tmp.path().join("asked");
    // Answers the key's length modulo the partition count; logs what it was asked.
    let cmd = format!(
        "while IFS= read -r line; do printf '%s\\n' \"$line\" >> '{}'; k=\"${{line%%\t*}}\"; n=\"${{line##*\t}}\"; echo $(( ${{#k}} % n )); done",
        log.display()
    );
    s.produce(
        "pc",
        "a:1\nbb:2\nccc:3\nnokey\nffffff:6\n",
        &["-K", ":", "--ignore-missing-key", "--partitioner-cmd", &cmd],
    );
    let rows = by_partition(&s, "pc");
    let mut placed: Vec<(String, i64)> = rows.iter().map(|r| (r.2.clone(), r.0)).collect();
    placed.sort();
    assert_eq!(
        placed,
        vec![
            ("1".into(), 1),
            ("2".into(), 2),
            ("3".into(), 3),
            ("6".into(), 1),
            ("nokey".into(), 0),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "a\t5\nbb\t5\nccc\t5\n\t5\nffffff\t5\n"
    );
}

#[test]
fn partitioner_command_bad_answers_are_clear_errors() {
    let s = Store::new();
    s.create_topic("pcb", 3, &[]);
    for (cmd, needle) in [
        (
            "while read l; do echo 3; done",
            "answered \"3\"; expected a partition number from 0 to 2",
        ),
        ("while read l; do echo -1; done", "answered \"-1\""),
        ("while read l; do echo two; done", "answered \"two\""),
        ("while read l; do echo; done", "answered \"\""),
        ("true", "partitioner command 'true'"),
        ("exit 3", "partitioner command 'exit 3'"),
        ("/nonexistent/partitioner", "partitioner command"),
    ] {
        s.spool()
            .args(["produce", "pcb", "--partitioner-cmd", cmd])
            .write_stdin("x\ny\n")
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "error: line 1: no partition for the record",
            ))
            .stderr(predicate::str::contains(needle));
    }
    // A command that closed its input before the first question: writing to it fails with
    // EPIPE, which must be an error (exit 1), not taken for stdout's reader going away.
    let mut child = s
        .spool_process()
        .args([
            "produce",
            "pcb",
            "--partitioner-cmd",
            "exec 0<&-; exec sleep 5",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"x\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exited or closed its output"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The second answer is bad: the first record is kept, the error names line 2.
    s.spool()
        .args([
            "produce",
            "pcb",
            "--partitioner-cmd",
            "read l; echo 1; read l; echo 9",
        ])
        .write_stdin("x\ny\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: line 2"));
    assert_eq!(
        by_partition(&s, "pcb"),
        vec![(1, String::new(), "x".into())]
    );
}

// ---------------------------------------------------------------------------------------------
// topics

#[test]
fn missing_topic_is_created_with_one_partition_unless_no_create() {
    let s = Store::new();
    s.spool()
        .args(["produce", "auto"])
        .write_stdin("v\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Created topic auto with 1 partition.",
        ));
    let d = s.describe("auto");
    assert_eq!(d["partition_count"], 1);
    assert!(d["configs"].as_object().unwrap().is_empty());

    s.spool()
        .args(["produce", "manual", "--no-create"])
        .write_stdin("v\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: topic 'manual' does not exist",
        ))
        .stderr(predicate::str::contains("hint:"));
    assert!(!s.dir().join("topics/manual").exists());
    s.create_topic("manual", 2, &[]);
    s.produce("manual", "v\n", &["--no-create"]);
    assert_eq!(s.describe("manual")["partition_count"], 2);
}

// ---------------------------------------------------------------------------------------------
// batching, linger, fsync

#[test]
fn batch_size_bounds_the_batches_written() {
    let s = Store::new();
    let file = s.tmp.path().join("in");
    let input: String = (0..100)
        .map(|i| format!("{i:03}-{}\n", "b".repeat(96)))
        .collect();
    std::fs::write(&file, &input).unwrap();
    s.create_topic("big", 1, &[]);
    s.spool()
        .args(["produce", "big", "-q", "--file"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(batches(&s, "big"), 1, "default 1MiB batches");

    s.create_topic("small", 1, &[]);
    s.spool()
        .args(["produce", "small", "-q", "--batch-size", "1KiB", "--file"])
        .arg(&file)
        .assert()
        .success();
    let log = common::read(&s.segments("small", 0)[0]);
    let spans = common::batch_spans(&log);
    assert!(spans.len() >= 10, "{} batches", spans.len());
    assert!(spans.iter().all(|b| b.len <= 1024), "{spans:?}");
    assert_eq!(spans.iter().map(|b| b.records).sum::<i32>(), 100);
    assert_eq!(values(&s, "small"), values(&s, "big"));

    // --batch-size 0 (Kafka: no batching) sends each record alone.
    s.create_topic("none", 1, &[]);
    s.spool()
        .args(["produce", "none", "-q", "--batch-size", "0", "--file"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(batches(&s, "none"), 100);

    for bad in ["lots", "-1", "1.5.5MiB"] {
        s.spool()
            .args(["produce", "big", &format!("--batch-size={bad}")])
            .write_stdin("x\n")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--batch-size"));
    }
}

/// Polls `consume -e` until `n` records are visible or the deadline passes.
fn wait_for_records(s: &Store, topic: &str, n: usize, deadline: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        let out = s
            .spool()
            .args(["consume", topic, "-e", "-q"])
            .output()
            .unwrap();
        if out.status.success() && common::lines(&out.stdout).len() >= n {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_batch_is_written_as_soon_as_stdin_has_nothing_more_ready() {
    let s = Store::new();
    s.create_topic("live", 1, &[]);
    let mut child = s
        .spool_process()
        .args(["produce", "live", "-q"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    // Still open: the record must be visible anyway.
    assert!(
        wait_for_records(&s, "live", 1, Duration::from_secs(10)).is_some(),
        "a line typed by hand must reach the log before stdin closes"
    );
    stdin.write_all(b"second\n").unwrap();
    stdin.flush().unwrap();
    assert!(wait_for_records(&s, "live", 2, Duration::from_secs(10)).is_some());
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(batches(&s, "live"), 2);
    assert_eq!(text_values(&s, "live"), vec!["first", "second"]);
}

#[test]
fn linger_holds_a_record_for_more_input() {
    let s = Store::new();
    s.create_topic("linger", 1, &[]);
    let mut child = s
        .spool_process()
        .args(["produce", "linger", "-q", "--linger", "400ms"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let wrote = Instant::now();
    stdin.write_all(b"a\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stdin.write_all(b"b\n").unwrap();
    stdin.flush().unwrap();
    // Sent after the linger, while stdin is still open, as one batch.
    assert!(wait_for_records(&s, "linger", 2, Duration::from_secs(10)).is_some());
    assert!(
        wrote.elapsed() >= Duration::from_millis(400),
        "sent before the linger was over"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(batches(&s, "linger"), 1);

    s.spool()
        .args(["produce", "linger", "--linger", "soon"])
        .write_stdin("x\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--linger"));
}

#[test]
fn every_fsync_policy_writes_the_records() {
    let s = Store::new();
    for policy in ["exit", "batch", "never"] {
        let topic = format!("fs-{policy}");
        s.produce(
            &topic,
            "1\n2\n3\n",
            &["--fsync", policy, "--batch-size", "0"],
        );
        assert_eq!(text_values(&s, &topic), vec!["1", "2", "3"]);
        s.spool()
            .args(["topic", "verify", &topic])
            .assert()
            .success();
    }
    s.spool()
        .args(["produce", "fs-exit", "--fsync", "always"])
        .write_stdin("x\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "possible values: exit, batch, never",
        ));
}

// ---------------------------------------------------------------------------------------------
// limits and errors

#[test]
fn oversize_record_is_refused_with_its_line_and_earlier_records_stay() {
    let s = Store::new();
    s.create_topic("ov", 1, &[]);
    let input = format!("ok1\nok2\n{}\nafter\n", "x".repeat(300));
    s.spool()
        .args(["produce", "ov", "--max-message-bytes", "200"])
        .write_stdin(input.clone())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: line 3 is too large"))
        .stderr(predicate::str::contains("more than the 200 bytes allowed"))
        .stderr(predicate::str::contains("Produced 2 records"));
    assert_eq!(text_values(&s, "ov"), vec!["ok1", "ok2"]);

    // -q silences the summary, not the error.
    s.spool()
        .args(["produce", "ov", "-q", "--max-message-bytes", "200"])
        .write_stdin(input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 3").and(predicate::str::contains("Produced").not()));
    assert_eq!(text_values(&s, "ov").len(), 4);

    // The topic's max.message.bytes is the default limit.
    s.create_topic("ov2", 1, &["--config", "max.message.bytes=100"]);
    s.spool()
        .args(["produce", "ov2"])
        .write_stdin(format!("a\n{}\n", "y".repeat(150)))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 2 is too large"));
    assert_eq!(text_values(&s, "ov2"), vec!["a"]);
    // --max-message-bytes lowers the topic's limit but cannot raise it.
    s.spool()
        .args(["produce", "ov2", "--max-message-bytes", "1MiB"])
        .write_stdin(format!("{}\n", "y".repeat(150)))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 1 is too large"))
        .stderr(predicate::str::contains("more than the 100 bytes allowed"));
    assert_eq!(text_values(&s, "ov2"), vec!["a"]);

    // A line far larger than any read buffer is refused without reading it all into memory.
    s.create_topic("ov3", 1, &[]);
    let mut huge = b"small\n".to_vec();
    huge.extend(std::iter::repeat_n(b'z', 3 << 20));
    huge.extend_from_slice(b"\nnever\n");
    s.spool()
        .args(["produce", "ov3"])
        .write_stdin(huge)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 2 is too large"));
    assert_eq!(text_values(&s, "ov3"), vec!["small"]);
}

#[test]
fn file_input_and_unreadable_files() {
    let s = Store::new();
    let file = s.tmp.path().join("records.txt");
    std::fs::write(&file, "f1\nf2\nf3").unwrap();
    s.spool()
        .args(["produce", "file", "-q", "--file"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(text_values(&s, "file"), vec!["f1", "f2", "f3"]);
    // stdin is ignored with --file.
    s.spool()
        .args(["produce", "file", "-q", "-f"])
        .arg(&file)
        .write_stdin("from stdin\n")
        .assert()
        .success();
    assert_eq!(text_values(&s, "file").len(), 6);

    let missing = s.tmp.path().join("missing.txt");
    s.spool()
        .args(["produce", "file", "--file"])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: cannot read {}",
            missing.display()
        )));
    s.spool()
        .args(["produce", "file", "--file"])
        .arg(s.tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a directory"));
    // No topic is created for input that cannot be read.
    s.spool()
        .args(["produce", "never-created", "--file"])
        .arg(&missing)
        .assert()
        .code(1);
    assert!(!s.dir().join("topics/never-created").exists());
}

#[test]
fn summary_on_stderr_json_and_yaml_on_stdout() {
    let s = Store::new();
    s.create_topic("sum", 2, &[]);
    s.spool()
        .args(["produce", "sum", "-p", "1"])
        .write_stdin("a\nb\nc\n")
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("Produced 3 records"))
        .stderr(predicate::str::contains(
            "partition 1: offsets 0..2 (3 records)",
        ));
    s.spool()
        .args(["produce", "sum", "-q", "-p", "0"])
        .write_stdin("d\n")
        .assert()
        .success()
        .stdout("")
        .stderr("");

    let out = s
        .spool()
        .args(["produce", "sum", "-p", "1", "-o", "json"])
        .write_stdin("e\nf\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["topic"], "sum");
    assert_eq!(j["records"], 2);
    let log = common::read(&s.segments("sum", 1)[0]);
    let last = *common::batch_spans(&log).last().unwrap();
    assert_eq!(j["bytes"], last.len, "bytes as stored");
    assert_eq!(
        j["partitions"],
        serde_json::json!([{"partition": 1, "records": 2, "first_offset": 3, "last_offset": 4}])
    );

    let out = s
        .spool()
        .args(["produce", "sum", "-p", "0", "-o", "yaml", "-q"])
        .write_stdin("g\n")
        .output()
        .unwrap();
    let y: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(y["records"].as_i64(), Some(1));
    assert_eq!(y["partitions"][0]["partition"].as_i64(), Some(0));
}

#[test]
fn help_has_examples_and_exit_codes() {
    let s = Store::new();
    s.spool()
        .args(["produce", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("Exit status:"));
    s.spool().args(["produce"]).assert().code(2);
}
