//! `spool topic`: every subcommand and flag, checked through what the store holds afterwards.

mod common;

use common::{batch_spans, flip_byte, lines, read, Store};
use predicates::prelude::*;
use serde_json::Value;

fn partition_field(desc: &Value, p: usize, field: &str) -> i64 {
    desc["partitions"][p][field]
        .as_i64()
        .unwrap_or_else(|| panic!("partition {p} has no {field}: {desc}"))
}

fn stdout_of(store: &Store, args: &[&str]) -> String {
    let out = store.spool().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------------
// create

#[test]
fn create_makes_partitions_with_empty_segments_and_reports_them() {
    let s = Store::new();
    s.spool()
        .args(["topic", "create", "orders", "-p", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Created topic orders with 3 partitions.",
        ));
    for p in 0..3 {
        let dir = s.partition_dir("orders", p);
        for ext in ["log", "index", "timeindex"] {
            let f = dir.join(format!("00000000000000000000.{ext}"));
            assert!(f.exists(), "{} missing", f.display());
            assert_eq!(std::fs::metadata(&f).unwrap().len(), 0);
        }
    }
    assert!(!s.partition_dir("orders", 3).exists());
    assert!(s.dir().join("spool.yaml").exists());
    let meta = std::fs::read_to_string(s.dir().join("topics/orders/topic.yaml")).unwrap();
    assert!(meta.contains("partitions: 3"), "{meta}");

    // -p defaults to 1.
    s.spool()
        .args(["topic", "create", "single"])
        .assert()
        .success()
        .stdout(predicate::str::contains("with 1 partition."));
    assert_eq!(s.describe("single")["partition_count"], 1);
}

#[test]
fn create_flags_become_kafka_configs() {
    let s = Store::new();
    let d = s.json(&[
        "topic",
        "create",
        "c",
        "--partitions",
        "2",
        "--retention",
        "2h",
        "--retention-bytes",
        "1MiB",
        "--segment-bytes",
        "1024",
        "--config",
        "max.message.bytes=5000",
        "--config",
        "segment.ms=60000",
        "-o",
        "json",
    ]);
    assert_eq!(d["name"], "c");
    assert_eq!(d["partition_count"], 2);
    assert_eq!(d["configs"]["retention.ms"], "7200000");
    assert_eq!(d["configs"]["retention.bytes"], "1048576");
    assert_eq!(d["configs"]["segment.bytes"], "1024");
    assert_eq!(d["configs"]["max.message.bytes"], "5000");
    assert_eq!(d["configs"]["segment.ms"], "60000");
    assert_eq!(d["id"].as_str().unwrap().len(), 22, "Kafka-style id: {d}");
    assert!(d["created_at"].as_str().unwrap().ends_with('Z'));
    let parts = d["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["log_start_offset"], 0);
        assert_eq!(p["log_end_offset"], 0);
        assert_eq!(p["size_bytes"], 0);
        assert_eq!(p["segments"], 1);
        assert!(p["first_timestamp"].is_null());
        assert!(p["last_timestamp"].is_null());
    }

    // The same fields as YAML.
    let out = stdout_of(&s, &["topic", "create", "y", "-p", "4", "-o", "yaml"]);
    let y: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(y["name"].as_str(), Some("y"));
    assert_eq!(y["partition_count"].as_i64(), Some(4));
    assert_eq!(y["partitions"].as_sequence().unwrap().len(), 4);

    // segment.bytes takes effect: a second batch that does not fit rolls a segment.
    let line = "x".repeat(700);
    s.produce("c", format!("{line}\n"), &["-p", "0"]);
    s.produce("c", format!("{line}\n"), &["-p", "0"]);
    assert_eq!(s.segments("c", 0).len(), 2);
}

#[test]
fn create_refuses_bad_configs_partition_counts_and_values() {
    let s = Store::new();
    // Bad flag values are usage errors (exit 2) that say what was wrong.
    for (args, needle) in [
        (
            &["--config", "retention.msec=1"][..],
            "unknown topic config 'retention.msec'",
        ),
        (&["--config", "segment.bytes=100"], "at least 1024"),
        (&["--segment-bytes", "1023"], "at least 1024"),
        (&["--segment-bytes", "4GiB"], "at most 2147483647"),
        (&["--config", "retention.ms=abc"], "whole number"),
        (&["--config", "retention.ms="], "whole number"),
        (&["--config", "novalue"], "no `=`"),
        (&["-p", "0"], "between 1 and 10000"),
        (&["--partitions=-3"], "between 1 and 10000"),
        (&["-p", "100000"], "between 1 and 10000"),
        (&["-p", "three"], "whole number"),
        (&["--retention", "soon"], "--retention"),
        (&["--retention-bytes", "lots"], "--retention-bytes"),
        (&["-o", "xml"], "possible values"),
        (&["--bogus"], "unexpected argument"),
    ] {
        s.spool()
            .args(["topic", "create", "t"])
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error: "))
            .stderr(predicate::str::contains(needle));
        assert!(!s.dir().join("topics/t").exists(), "{args:?} created it");
    }
    // The smallest accepted segment size.
    s.create_topic("t", 1, &["--segment-bytes", "1024"]);
    assert_eq!(s.describe("t")["configs"]["segment.bytes"], "1024");
}

#[test]
fn bad_names_are_refused_before_any_path_is_built() {
    let s = Store::new();
    s.create_topic("existing", 1, &[]);
    let long = "x".repeat(250);
    for (name, needle) in [
        ("../x", "'/'"),
        ("a/b", "'/'"),
        ("", "empty"),
        (long.as_str(), "250 characters"),
        (".", "not allowed"),
        ("..", "not allowed"),
        ("a b", "' '"),
        ("caf\u{e9}", "letters, digits"),
    ] {
        for cmd in [
            &["topic", "create"][..],
            &["topic", "describe"],
            &["topic", "delete"],
            &["topic", "verify"],
            &["topic", "prune"],
        ] {
            s.spool()
                .args(cmd)
                .arg(name)
                .assert()
                .code(2)
                .stderr(predicate::str::starts_with("error: topic name"))
                .stderr(predicate::str::contains(needle));
        }
        s.spool()
            .args(["produce", name])
            .write_stdin("v\n")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("topic name"));
    }
    // Nothing was created anywhere, not even outside the store.
    let topics: Vec<_> = std::fs::read_dir(s.dir().join("topics"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(topics, vec!["existing"]);
    assert!(!s.tmp.path().join("x").exists());
    assert!(!s.dir().join("x").exists());
    // The longest legal name works.
    let max = "y".repeat(249);
    s.create_topic(&max, 1, &[]);
    s.produce(&max, "v\n", &[]);
    assert_eq!(s.consume(&max, &[]), b"v\n");
}

#[test]
fn duplicate_create_fails_unless_if_not_exists() {
    let s = Store::new();
    s.create_topic("dup", 2, &["--retention", "1h"]);
    s.spool()
        .args(["topic", "create", "dup"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: topic 'dup' already exists",
        ))
        .stderr(predicate::str::contains("hint: pass --if-not-exists"));
    s.spool()
        .args(["topic", "create", "dup", "-p", "5", "--if-not-exists"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already exists"));
    // The existing topic is left as it was, and -o json describes it.
    let d = s.json(&[
        "topic",
        "create",
        "dup",
        "-p",
        "5",
        "--if-not-exists",
        "-o",
        "json",
    ]);
    assert_eq!(d["partition_count"], 2);
    assert_eq!(d["configs"]["retention.ms"], "3600000");
}

// ---------------------------------------------------------------------------------------------
// list and describe

#[test]
fn list_shows_topics_with_record_counts_and_sizes() {
    let s = Store::new();
    s.spool()
        .args(["topic", "list"])
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("No topics"));
    assert_eq!(
        s.json(&["topic", "list", "-o", "json"]),
        Value::Array(vec![])
    );

    s.create_topic("b-topic", 3, &[]);
    s.create_topic("a-topic", 1, &[]);
    s.produce("b-topic", "1\n2\n3\n4\n5\n", &["-p", "1"]);
    s.produce("b-topic", "6\n7\n", &["-p", "2"]);

    let j = s.json(&["topic", "list", "-o", "json"]);
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["name"], "a-topic", "sorted by name");
    assert_eq!(arr[0]["records"], 0);
    assert_eq!(arr[0]["size_bytes"], 0);
    assert_eq!(arr[1]["name"], "b-topic");
    assert_eq!(arr[1]["partitions"], 3);
    assert_eq!(arr[1]["records"], 7);
    let on_disk: u64 = (0..3)
        .flat_map(|p| s.segments("b-topic", p))
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(arr[1]["size_bytes"], on_disk);

    let table = stdout_of(&s, &["topic", "list"]);
    let rows = lines(table.as_bytes());
    assert!(rows[0].starts_with("TOPIC"), "{table}");
    assert!(rows[0].contains("PARTITIONS") && rows[0].contains("RECORDS"));
    let b: Vec<&str> = rows[2].split_whitespace().collect();
    assert_eq!(&b[..3], &["b-topic", "3", "7"], "{table}");

    let y: serde_yaml::Value =
        serde_yaml::from_str(&stdout_of(&s, &["topic", "list", "-o", "yaml"])).unwrap();
    assert_eq!(y[1]["records"].as_i64(), Some(7));
}

#[test]
fn describe_counts_offsets_sizes_segments_and_timestamps_after_produce() {
    let s = Store::new();
    s.create_topic("d", 3, &["--segment-bytes", "1024"]);
    let before = common_now_ms();
    s.produce("d", "a\nb\nc\n", &["-p", "0"]);
    // Three produces of ~600 bytes on partition 2: three segments.
    let big = format!("{}\n", "z".repeat(600));
    for _ in 0..3 {
        s.produce("d", big.clone(), &["-p", "2"]);
    }
    let after = common_now_ms();
    let d = s.describe("d");
    assert_eq!(partition_field(&d, 0, "log_end_offset"), 3);
    assert_eq!(partition_field(&d, 0, "log_start_offset"), 0);
    assert_eq!(partition_field(&d, 0, "segments"), 1);
    assert_eq!(
        partition_field(&d, 0, "size_bytes") as u64,
        std::fs::metadata(&s.segments("d", 0)[0]).unwrap().len()
    );
    let first = partition_field(&d, 0, "first_timestamp");
    let last = partition_field(&d, 0, "last_timestamp");
    assert!(before <= first && first <= last && last <= after, "{d}");

    assert_eq!(partition_field(&d, 1, "log_end_offset"), 0);
    assert_eq!(partition_field(&d, 1, "size_bytes"), 0);
    assert!(d["partitions"][1]["first_timestamp"].is_null());

    assert_eq!(partition_field(&d, 2, "log_end_offset"), 3);
    assert_eq!(partition_field(&d, 2, "segments"), 3);
    let on_disk: u64 = s
        .segments("d", 2)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(partition_field(&d, 2, "size_bytes") as u64, on_disk);

    // The table has Kafka's column names and the same numbers.
    let table = stdout_of(&s, &["topic", "describe", "d"]);
    for col in [
        "PARTITION",
        "LOG-START-OFFSET",
        "LOG-END-OFFSET",
        "SIZE",
        "SEGMENTS",
        "FIRST-TIMESTAMP",
        "LAST-TIMESTAMP",
    ] {
        assert!(table.contains(col), "{col} missing from\n{table}");
    }
    let row2 = table
        .lines()
        .find(|l| l.starts_with("2 "))
        .unwrap_or_else(|| panic!("no row for partition 2:\n{table}"));
    let cols: Vec<&str> = row2.split_whitespace().collect();
    assert_eq!((cols[1], cols[2]), ("0", "3"), "{row2}");
    assert!(table.contains("segment.bytes=1024"), "{table}");

    // YAML has the same fields; several topics give a list.
    let y: serde_yaml::Value =
        serde_yaml::from_str(&stdout_of(&s, &["topic", "describe", "d", "-o", "yaml"])).unwrap();
    assert_eq!(y["partitions"][2]["segments"].as_i64(), Some(3));
    s.create_topic("e", 1, &[]);
    let both = s.json(&["topic", "describe", "d", "e", "-o", "json"]);
    assert_eq!(both.as_array().unwrap().len(), 2);
    assert_eq!(both[1]["name"], "e");

    s.spool()
        .args(["topic", "describe", "missing"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("topic 'missing' does not exist"))
        .stderr(predicate::str::contains("hint:"));
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// alter

#[test]
fn alter_adds_partitions_but_never_removes_them() {
    let s = Store::new();
    s.create_topic("al", 2, &[]);
    s.produce("al", "x\n", &["-p", "1"]);
    s.spool()
        .args(["topic", "alter", "al", "--partitions", "4"])
        .assert()
        .success()
        .stdout(predicate::str::contains("now has 4 partitions (was 2)"));
    let d = s.describe("al");
    assert_eq!(d["partition_count"], 4);
    assert_eq!(d["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(partition_field(&d, 1, "log_end_offset"), 1, "old data kept");
    s.produce("al", "y\n", &["-p", "3"]);
    assert_eq!(s.consume("al", &["-p", "3"]), b"y\n");

    s.spool()
        .args(["topic", "alter", "al", "-p", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "topic 'al' has 4 partitions; it cannot go down to 2",
        ));
    s.spool()
        .args(["topic", "alter", "al", "-p", "4"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already has 4 partitions"));
    s.spool()
        .args(["topic", "alter", "al", "-p", "0"])
        .assert()
        .code(2);
    s.spool()
        .args(["topic", "alter", "al", "-p", "many"])
        .assert()
        .code(2);
    assert_eq!(s.describe("al")["partition_count"], 4);
    assert!(!s.partition_dir("al", 4).exists());
    s.spool()
        .args(["topic", "alter", "nope", "-p", "9"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn alter_sets_and_removes_configs_and_refuses_unknown_ones() {
    let s = Store::new();
    s.create_topic("cfg", 1, &["--retention", "1h"]);
    s.spool()
        .args([
            "topic",
            "alter",
            "cfg",
            "--config",
            "segment.bytes=2048",
            "--config",
            "retention.ms=",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("Updated the configs"));
    let d = s.describe("cfg");
    assert_eq!(d["configs"]["segment.bytes"], "2048");
    assert!(
        d["configs"].get("retention.ms").is_none(),
        "KEY= removes: {d}"
    );

    for (arg, needle) in [
        ("retention.msec=5", "unknown topic config 'retention.msec'"),
        ("bogus=", "unknown topic config 'bogus'"),
        ("segment.bytes=12", "at least 1024"),
        ("max.message.bytes=lots", "whole number"),
    ] {
        s.spool()
            .args(["topic", "alter", "cfg", "--config", arg])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
    assert_eq!(s.describe("cfg")["configs"]["segment.bytes"], "2048");

    // The new config applies to the next append: 1500-byte batches no longer fit together.
    let line = format!("{}\n", "q".repeat(1500));
    s.produce("cfg", line.clone(), &[]);
    s.produce("cfg", line, &[]);
    assert_eq!(s.segments("cfg", 0).len(), 2);
}

#[test]
fn alter_without_a_change_is_a_usage_error() {
    let s = Store::new();
    s.create_topic("nothing", 1, &[]);
    s.spool()
        .args(["topic", "alter", "nothing"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error:"));
}

// ---------------------------------------------------------------------------------------------
// delete

#[test]
fn delete_removes_topics_and_if_exists_tolerates_missing_ones() {
    let s = Store::new();
    s.create_topic("gone", 2, &[]);
    s.create_topic("kept", 1, &[]);
    s.produce("gone", "a\nb\n", &[]);
    s.spool()
        .args(["topic", "delete", "gone"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Deleted topic gone."));
    assert!(!s.dir().join("topics/gone").exists());
    let names: Vec<String> = s
        .json(&["topic", "list", "-o", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["kept"]);
    // Nothing is left in the staging area either.
    assert_eq!(std::fs::read_dir(s.dir().join("tmp")).unwrap().count(), 0);

    s.spool()
        .args(["topic", "delete", "gone"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("topic 'gone' does not exist"));
    s.spool()
        .args(["topic", "delete", "gone", "--if-exists"])
        .assert()
        .success();
    // Several at once; --if-exists skips the missing one and deletes the other.
    s.spool()
        .args(["topic", "delete", "gone", "kept", "--if-exists"])
        .assert()
        .success();
    assert!(!s.dir().join("topics/kept").exists());

    // A deleted topic can be created again, starting from offset 0.
    s.produce("gone", "fresh\n", &[]);
    assert_eq!(
        s.offsets_and_values("gone", 0),
        vec![(0, b"fresh".to_vec())]
    );
}

// ---------------------------------------------------------------------------------------------
// verify

/// A topic with one partition holding three batches (one per produce) of five records each.
fn three_batches(s: &Store, topic: &str) -> Vec<common::BatchSpan> {
    s.create_topic(topic, 1, &[]);
    for b in 0..3 {
        let input: String = (0..5).map(|i| format!("batch{b}-record{i}\n")).collect();
        s.produce(topic, input, &[]);
    }
    let spans = batch_spans(&read(&s.segments(topic, 0)[0]));
    assert_eq!(spans.len(), 3);
    spans
}

#[test]
fn verify_a_clean_topic() {
    let s = Store::new();
    s.create_topic("clean", 2, &[]);
    s.spool()
        .args(["topic", "verify", "clean"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "clean/0: ok (1 segment, 0 batches, 0 records)",
        ));
    three_batches(&s, "v");
    s.spool()
        .args(["topic", "verify", "v"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "v/0: ok (1 segment, 3 batches, 15 records)",
        ));
    let j = s.json(&["topic", "verify", "v", "clean", "-o", "json"]);
    assert_eq!(j[0]["topic"], "v");
    assert_eq!(j[0]["partitions"][0]["records"], 15);
    assert_eq!(j[0]["partitions"][0]["batches"], 3);
    assert_eq!(j[0]["partitions"][0]["problems"], Value::Array(vec![]));
    assert_eq!(j[1]["partitions"].as_array().unwrap().len(), 2);
    s.spool()
        .args(["topic", "verify", "missing"])
        .assert()
        .code(1);
}

#[test]
fn verify_finds_a_flipped_byte_and_repair_cuts_it_aside() {
    let s = Store::new();
    let spans = three_batches(&s, "flip");
    let log = s.segments("flip", 0)[0].clone();
    let original = read(&log);
    // A byte in the middle of the second batch's records.
    let damaged_at = spans[1].position;
    flip_byte(&log, damaged_at + spans[1].len - 10);

    let out = s
        .spool()
        .args(["topic", "verify", "flip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("DAMAGED"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{} at byte {damaged_at}: corrupt batch: CRC mismatch",
            log.display()
        )),
        "{stdout}"
    );
    assert!(stderr.contains("error: found 1 problem"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--repair"),
        "{stderr}"
    );
    // JSON names the file and position too (and still exits 1).
    let out = s
        .spool()
        .args(["topic", "verify", "flip", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problem = &j[0]["partitions"][0]["problems"][0];
    assert_eq!(problem["file"], log.display().to_string());
    assert_eq!(problem["position"], damaged_at);
    // A plain verify changes nothing.
    assert_eq!(read(&log).len(), original.len());

    let out = s
        .spool()
        .args(["topic", "verify", "flip", "--repair"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("repaired: cut"), "{stdout}");
    assert_eq!(read(&log), original[..damaged_at as usize]);
    let cut: Vec<_> = std::fs::read_dir(s.partition_dir("flip", 0))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".log.cut-"))
        .collect();
    assert_eq!(cut.len(), 1, "the cut bytes are kept aside");
    let mut expected_cut = original[damaged_at as usize..].to_vec();
    expected_cut[(spans[1].len - 10) as usize] ^= 0xff;
    assert_eq!(read(&cut[0]), expected_cut);
    s.spool()
        .args(["topic", "verify", "flip"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok (1 segment, 1 batch, 5 records)",
        ));

    // The log goes on where the valid part ends, and reads back whole.
    s.produce("flip", "after-repair\n", &[]);
    let records = s.offsets_and_values("flip", 0);
    assert_eq!(records.len(), 6);
    for (i, (offset, _)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64);
    }
    assert_eq!(records[0].1, b"batch0-record0");
    assert_eq!(records[5], (5, b"after-repair".to_vec()));
    s.spool()
        .args(["topic", "verify", "flip"])
        .assert()
        .success();
}

#[test]
fn verify_reports_a_torn_tail_and_damaged_header_fields() {
    let s = Store::new();
    let spans = three_batches(&s, "torn");
    let log = s.segments("torn", 0)[0].clone();
    let bytes = read(&log);
    // Cut in the middle of the last batch.
    std::fs::write(&log, &bytes[..(spans[2].position + 20) as usize]).unwrap();
    s.spool()
        .args(["topic", "verify", "torn"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "at byte {}: incomplete batch",
            spans[2].position
        )));
    // A base offset that does not follow on (not covered by the CRC).
    let mut bad = bytes.clone();
    bad[spans[1].position as usize + 7] ^= 0x40;
    std::fs::write(&log, &bad).unwrap();
    s.spool()
        .args(["topic", "verify", "torn"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "at byte {}: batch starts at offset",
            spans[1].position
        )));
    s.spool()
        .args(["topic", "verify", "torn", "--repair"])
        .assert()
        .success();
    s.spool()
        .args(["topic", "verify", "torn"])
        .assert()
        .success();
    assert_eq!(s.offsets_and_values("torn", 0).len(), 5);
}

/// A partition with enough batches for several offset index entries.
fn indexed_topic(s: &Store, topic: &str) -> std::path::PathBuf {
    s.create_topic(topic, 1, &[]);
    let input: String = (0..400)
        .map(|i| format!("{i:04}-{}\n", "v".repeat(95)))
        .collect();
    let file = s.tmp.path().join("input");
    std::fs::write(&file, input).unwrap();
    s.spool()
        .args(["produce", topic, "-q", "--batch-size", "1KiB", "--file"])
        .arg(&file)
        .assert()
        .success();
    let index = s.partition_dir(topic, 0).join("00000000000000000000.index");
    assert!(
        std::fs::metadata(&index).unwrap().len() >= 3 * 8,
        "expected several index entries"
    );
    index
}

#[test]
fn verify_finds_a_damaged_index_and_repair_rebuilds_it() {
    let s = Store::new();
    let index = indexed_topic(&s, "idx");
    let good = read(&index);
    let timeindex = index.with_extension("timeindex");
    let good_time = read(&timeindex);
    s.spool()
        .args(["topic", "verify", "idx"])
        .assert()
        .success();

    // Entry 1's position points elsewhere.
    flip_byte(&index, 8 + 6);
    s.spool()
        .args(["topic", "verify", "idx"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "{} at byte 8: offset index",
            index.display()
        )));
    // Readers do not trust it: a seek into the middle still finds the right record.
    let out = s.consume("idx", &["-o", "250", "-n", "1", "-F", "%o %v\n"]);
    assert!(
        String::from_utf8_lossy(&out).starts_with("250 0250-"),
        "{out:?}"
    );

    s.spool()
        .args(["topic", "verify", "idx", "--repair"])
        .assert()
        .success()
        .stdout(predicate::str::contains("rebuilt the indexes"));
    assert_eq!(read(&index), good, "rebuilt byte for byte");
    assert_eq!(read(&timeindex), good_time);
    s.spool()
        .args(["topic", "verify", "idx"])
        .assert()
        .success();

    // A truncated index and a missing time index are found and rebuilt too.
    std::fs::write(&index, &good[..good.len() - 5]).unwrap();
    std::fs::remove_file(&timeindex).unwrap();
    s.spool().args(["topic", "verify", "idx"]).assert().code(1);
    s.spool()
        .args(["topic", "verify", "idx", "--repair"])
        .assert()
        .success();
    assert_eq!(read(&index), good);
    assert_eq!(read(&timeindex), good_time);

    // Appending after the repair keeps the indexes as Kafka's rule wants them.
    s.produce("idx", "one more\n", &[]);
    s.spool()
        .args(["topic", "verify", "idx"])
        .assert()
        .success();
    assert_eq!(s.offsets_and_values("idx", 0).len(), 401);
}

#[test]
fn repair_in_an_older_segment_leaves_a_log_that_verifies() {
    let s = Store::new();
    s.create_topic("mid", 1, &["--segment-bytes", "1024"]);
    let line = format!("{}\n", "m".repeat(600));
    for _ in 0..3 {
        s.produce("mid", line.clone(), &[]);
    }
    let segs = s.segments("mid", 0);
    assert_eq!(segs.len(), 3);
    flip_byte(&segs[1], 100);
    s.spool().args(["topic", "verify", "mid"]).assert().code(1);
    s.spool()
        .args(["topic", "verify", "mid", "--repair"])
        .assert()
        .success();
    // The damaged batch is gone (offset 1), the records after it keep their offsets.
    s.spool()
        .args(["topic", "verify", "mid"])
        .assert()
        .success();
    s.produce("mid", "later\n", &[]);
    let offsets: Vec<i64> = s
        .offsets_and_values("mid", 0)
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(offsets, vec![0, 2, 3]);
    s.spool()
        .args(["topic", "verify", "mid"])
        .assert()
        .success();
}

// ---------------------------------------------------------------------------------------------
// prune and retention

/// Produces `n` batches of one ~600-byte record each: with 1 KiB segments, one segment each.
fn fill_segments(s: &Store, topic: &str, n: usize) {
    for i in 0..n {
        s.produce(topic, format!("{i:03}-{}\n", "r".repeat(600)), &[]);
    }
}

#[test]
fn prune_by_time_deletes_expired_segments_and_offsets_are_never_reused() {
    let s = Store::new();
    s.create_topic("rt", 1, &["--segment-bytes", "1024"]);
    fill_segments(&s, "rt", 4);
    assert_eq!(s.segments("rt", 0).len(), 4);
    // Nothing expires without retention.ms.
    let j = s.json(&["topic", "prune", "rt", "-o", "json"]);
    assert_eq!(j[0]["deleted_segments"], 0);
    assert_eq!(j[0]["log_start_offset"], 0);

    s.spool()
        .args(["topic", "alter", "rt", "--config", "retention.ms=1"])
        .assert()
        .success();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let j = s.json(&["topic", "prune", "rt", "-o", "json"]);
    assert_eq!(j[0]["topic"], "rt");
    assert_eq!(j[0]["partition"], 0);
    // Every segment expired, the active one too: it is rolled so it can go.
    assert_eq!(j[0]["deleted_segments"], 4);
    assert_eq!(j[0]["log_start_offset"], 4);
    assert!(j[0]["deleted_bytes"].as_u64().unwrap() > 2400);

    let d = s.describe("rt");
    assert_eq!(partition_field(&d, 0, "log_start_offset"), 4);
    assert_eq!(partition_field(&d, 0, "log_end_offset"), 4);
    assert_eq!(partition_field(&d, 0, "size_bytes"), 0);
    assert_eq!(partition_field(&d, 0, "segments"), 1);
    assert_eq!(
        std::fs::read_to_string(s.partition_dir("rt", 0).join("log-start-offset"))
            .unwrap()
            .trim(),
        "4"
    );
    assert!(s.consume("rt", &[]).is_empty());

    // The next record gets offset 4, not 0: even with the head checkpoint gone.
    std::fs::remove_file(s.partition_dir("rt", 0).join(".lock")).unwrap();
    s.spool()
        .args(["topic", "alter", "rt", "--config", "retention.ms=-1"])
        .assert()
        .success();
    s.produce("rt", "next\n", &[]);
    assert_eq!(s.offsets_and_values("rt", 0), vec![(4, b"next".to_vec())]);
    let d = s.describe("rt");
    assert_eq!(partition_field(&d, 0, "log_start_offset"), 4);
    assert_eq!(partition_field(&d, 0, "log_end_offset"), 5);
    s.spool().args(["topic", "verify", "rt"]).assert().success();

    // The table form of prune.
    s.spool()
        .args(["topic", "prune"])
        .assert()
        .success()
        .stdout(predicate::str::contains("LOG-START-OFFSET"))
        .stdout(predicate::str::is_match(r"rt\s+0\s+0\s+0 B\s+4").unwrap());
}

#[test]
fn prune_keeps_segments_that_have_not_expired() {
    let s = Store::new();
    s.create_topic("partial", 1, &["--segment-bytes", "1024"]);
    fill_segments(&s, "partial", 2);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    fill_segments(&s, "partial", 2);
    s.spool()
        .args(["topic", "alter", "partial", "--config", "retention.ms=1000"])
        .assert()
        .success();
    let j = s.json(&["topic", "prune", "partial", "-o", "json"]);
    assert_eq!(j[0]["deleted_segments"], 2, "{j}");
    assert_eq!(j[0]["log_start_offset"], 2);
    let records = s.offsets_and_values("partial", 0);
    assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn prune_by_size_keeps_at_least_retention_bytes() {
    let s = Store::new();
    s.create_topic("rb", 1, &["--segment-bytes", "1024"]);
    fill_segments(&s, "rb", 6);
    let sizes: Vec<u64> = s
        .segments("rb", 0)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    assert_eq!(sizes.len(), 6);
    let total: u64 = sizes.iter().sum();
    let limit = sizes[0] * 2 + 10;
    s.spool()
        .args([
            "topic",
            "alter",
            "rb",
            "--config",
            &format!("retention.bytes={limit}"),
        ])
        .assert()
        .success();
    let j = s.json(&["topic", "prune", "rb", "-o", "json"]);
    // Kafka's rule: delete the oldest segments while what remains is still >= the limit.
    let mut remaining = total;
    let mut expected_deleted = 0;
    for size in &sizes[..5] {
        if remaining - size < limit {
            break;
        }
        remaining -= size;
        expected_deleted += 1;
    }
    assert_eq!(expected_deleted, 3);
    assert_eq!(j[0]["deleted_segments"], expected_deleted);
    assert_eq!(j[0]["log_start_offset"], expected_deleted);
    let d = s.describe("rb");
    assert_eq!(partition_field(&d, 0, "log_start_offset"), 3);
    assert_eq!(partition_field(&d, 0, "size_bytes") as u64, remaining);
    assert_eq!(partition_field(&d, 0, "log_end_offset"), 6);
    s.produce("rb", "more\n", &[]);
    assert_eq!(
        s.offsets_and_values("rb", 0)
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
}

#[test]
fn producers_apply_retention_when_they_roll() {
    let s = Store::new();
    s.create_topic(
        "roll",
        1,
        &["--segment-bytes", "1024", "--retention-bytes", "1500"],
    );
    fill_segments(&s, "roll", 8);
    // No prune was run: the appends that rolled deleted the oldest segments.
    let segs = s.segments("roll", 0);
    assert!(segs.len() <= 3, "{segs:?}");
    let d = s.describe("roll");
    let start = partition_field(&d, 0, "log_start_offset");
    assert!(start >= 5, "{d}");
    assert_eq!(partition_field(&d, 0, "log_end_offset"), 8);
    let offsets: Vec<i64> = s
        .offsets_and_values("roll", 0)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(offsets, (start..8).collect::<Vec<_>>());
}

#[test]
fn segment_ms_rolls_by_age() {
    let s = Store::new();
    s.create_topic("age", 1, &["--config", "segment.ms=50"]);
    s.produce("age", "a\n", &[]);
    s.produce("age", "b\n", &[]);
    assert_eq!(s.segments("age", 0).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(120));
    s.produce("age", "c\n", &[]);
    let segs = s.segments("age", 0);
    assert_eq!(segs.len(), 2);
    assert!(segs[1].ends_with("00000000000000000002.log"), "{segs:?}");
    s.spool()
        .args(["topic", "verify", "age"])
        .assert()
        .success();
}

#[test]
fn prune_all_topics_and_unknown_topic() {
    let s = Store::new();
    s.create_topic("p1", 2, &[]);
    s.create_topic("p2", 1, &[]);
    let j = s.json(&["topic", "prune", "-o", "json"]);
    assert_eq!(j.as_array().unwrap().len(), 3, "one row per partition: {j}");
    s.spool()
        .args(["topic", "prune", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn help_has_examples() {
    let s = Store::new();
    for sub in [
        "create", "list", "describe", "alter", "delete", "verify", "prune",
    ] {
        s.spool()
            .args(["topic", sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
    }
}
