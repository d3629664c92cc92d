//! `spool -b`: the same commands on a Kafka cluster, through librdkafka, checked against
//! `spool serve` on a free loopback port (a real Kafka client against a real Kafka-protocol
//! server). The checks are the local tests' where they make sense, and the output of a
//! cluster's records is compared byte for byte with the local store's for the same records.
//! Every `spool -b` command runs with no `$SPOOL_DIR` and an empty home directory, which each
//! test checks stays empty: `-b` never touches a local store.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::kafka::Cluster;
use common::{json_lines, lines, Store};

/// JSON lines with fixed timestamps, keys, headers and a null value: the same records on
/// both targets.
const RECORDS: &str = concat!(
    r#"{"key":"alice","value":"book","timestamp":1700000000000,"headers":{"trace":"a1"}}"#,
    "\n",
    r#"{"key":"bob","value":"pen","timestamp":1700000001000}"#,
    "\n",
    r#"{"key":"alice","value":"lamp","timestamp":1700000002000}"#,
    "\n",
    r#"{"key":"carol","value":null,"timestamp":1700000003000}"#,
    "\n",
    r#"{"key":null,"value":"no key","timestamp":1700000004000,"partition":1}"#,
    "\n",
    r#"{"key":"dave","value":"mug","timestamp":1700000005000,"headers":{"a":"1","b":null}}"#,
    "\n",
);

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `spool -b 127.0.0.1:PORT` with the cluster's empty home.
fn unreachable(cluster: &Cluster, port: u16) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("spool").unwrap();
    cmd.args(["-b", &format!("127.0.0.1:{port}")])
        .env_remove("SPOOL_DIR")
        .env("HOME", cluster.home.path())
        .env("XDG_DATA_HOME", cluster.home.path());
    cmd
}

#[test]
fn an_unreachable_cluster_is_one_line_within_the_timeout() {
    let cluster = Cluster::serve();
    let port = common::kafka::free_port();
    for args in [
        &["topic", "list"][..],
        &["topic", "describe", "orders"],
        &["topic", "create", "orders"],
        &["consume", "orders", "-e"],
    ] {
        let started = Instant::now();
        let out = unreachable(&cluster, port)
            .args(["--cluster-timeout", "2s"])
            .args(args)
            .write_stdin("x\n")
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, not {err:?}");
        assert!(
            err.starts_with(&format!(
                "error: cannot reach the Kafka cluster at 127.0.0.1:{port} within 2s"
            )),
            "{args:?}: {err}"
        );
        assert!(
            elapsed < Duration::from_secs(8),
            "{args:?} took {elapsed:?}"
        );
    }
    // produce too, with its input on stdin.
    let out = unreachable(&cluster, port)
        .args(["--cluster-timeout", "1s"])
        .args(["produce", "orders"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr_of(&out).lines().count(), 1, "{}", stderr_of(&out));
    cluster.assert_home_untouched();
}

#[test]
fn target_flags_are_checked_before_anything_runs() {
    let store = Store::new();
    // --dir (or $SPOOL_DIR) and -b together.
    let out = store
        .spool()
        .args(["-b", "127.0.0.1:9", "topic", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("$SPOOL_DIR selects a local store and -b a Kafka cluster"));
    let out = store
        .spool()
        .env_remove("SPOOL_DIR")
        .env("SPOOL_BROKERS", "127.0.0.1:9")
        .args(["--dir", "/tmp/x", "topic", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--dir selects a local store and $SPOOL_BROKERS"));
    // Cluster settings without a cluster.
    for args in [
        &["-X", "acks=all", "topic", "list"][..],
        &["--cluster-timeout", "5s", "topic", "list"],
        &["--command-config", "/dev/null", "topic", "list"],
    ] {
        let out = store.spool().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains("needs a Kafka cluster"),
            "{args:?}"
        );
    }
    // A property librdkafka does not know, and a bad command config.
    let cluster = Cluster::serve();
    let out = cluster
        .spool()
        .args(["-X", "no.such.property=1", "topic", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("no.such.property"));
    let out = cluster
        .spool()
        .args([
            "--command-config",
            "/nonexistent.properties",
            "topic",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("cannot read --command-config /nonexistent.properties"));
    // A command config librdkafka takes works.
    let config = cluster
        .home
        .path()
        .join("..")
        .join(format!("spool-client-{}.properties", std::process::id()));
    std::fs::write(&config, "# Kafka tools' form\nclient.id = spool-test\n").unwrap();
    cluster.ok(&[
        "--command-config",
        config.to_str().unwrap(),
        "topic",
        "list",
    ]);
    std::fs::remove_file(&config).unwrap();
    // SPOOL_BROKERS selects the cluster like -b.
    let out = Store::new()
        .spool()
        .env_remove("SPOOL_DIR")
        .env("HOME", cluster.home.path())
        .env("XDG_DATA_HOME", cluster.home.path())
        .env("SPOOL_BROKERS", &cluster.brokers)
        .args(["topic", "create", "from-env"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(lines(&cluster.ok(&["topic", "list", "-q"]))
        .iter()
        .any(|l| l.starts_with("from-env")));
    cluster.assert_home_untouched();
}

#[test]
fn local_only_commands_say_why_they_are_refused() {
    let cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "t"]);
    for (args, command) in [
        (
            &["topic", "verify", "t"][..],
            "`spool topic verify` works on a local store only",
        ),
        (
            &["topic", "prune"],
            "`spool topic prune` works on a local store only",
        ),
        (&["serve"], "`spool serve` works on a local store only"),
    ] {
        let out = cluster.spool().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(command), "{}", stderr_of(&out));
    }
    // Options only one target honours.
    let out = cluster
        .spool()
        .args(["produce", "t", "--fsync", "batch"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--fsync applies to a local store"));
    let store = Store::new();
    let out = store
        .spool()
        .args(["produce", "t", "--acks", "all"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--acks applies to a Kafka cluster"));
    let out = store
        .spool()
        .args(["topic", "create", "t", "--replication-factor", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("a local store keeps one copy"));
    store
        .spool()
        .args(["topic", "create", "t", "--replication-factor", "1"])
        .assert()
        .success();
    cluster.assert_home_untouched();
}

#[test]
fn topics_are_created_listed_described_altered_and_deleted() {
    let cluster = Cluster::serve();
    let out = cluster.ok(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=60000",
    ]);
    assert_eq!(lines(&out), ["Created topic orders with 3 partitions."]);
    cluster.ok(&["topic", "create", "clicks"]);
    // Creating it again fails, unless --if-not-exists.
    let out = cluster
        .spool()
        .args(["topic", "create", "orders"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("create topic orders: topic already exists"),
        "{}",
        stderr_of(&out)
    );
    let out = cluster.ok(&["topic", "create", "orders", "--if-not-exists"]);
    assert_eq!(lines(&out), ["Topic orders already exists."]);

    cluster.produce("orders", "a:1\nb:2\nc:3\nd:4\n", &["-K", ":"]);
    let list = cluster.json(&["topic", "list", "-o", "json"]);
    let orders = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .expect("orders listed");
    assert_eq!(orders["partitions"], 3);
    assert_eq!(orders["replication_factor"], 1);
    assert_eq!(orders["records"], 4);
    let table = lines(&cluster.ok(&["topic", "list"]));
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "RECORDS"]
    );

    let d = cluster.json(&["topic", "describe", "orders", "-o", "json"]);
    assert_eq!(d["name"], "orders");
    assert_eq!(d["partition_count"], 3);
    assert_eq!(d["replication_factor"], 1);
    assert_eq!(d["configs"]["retention.ms"], "60000");
    let retention = d["config_sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .expect("retention.ms described");
    assert_eq!(retention["source"], "topic");
    let partitions = d["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    let mut records = 0;
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 0);
        assert_eq!(p["replicas"], serde_json::json!([0]));
        assert_eq!(p["isr"], serde_json::json!([0]));
        assert_eq!(p["log_start_offset"], 0);
        records += p["log_end_offset"].as_i64().unwrap();
    }
    assert_eq!(records, 4);
    let text = String::from_utf8(cluster.ok(&["topic", "describe", "orders"])).unwrap();
    assert!(text.contains("Replication: 1"), "{text}");
    assert!(text.contains("retention.ms=60000 (topic)"), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("PARTITION"))
        .expect("partition table");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "LOG-START-OFFSET",
            "LOG-END-OFFSET"
        ]
    );

    // alter: partitions and configs, the retention flags among them.
    let out = cluster.ok(&["topic", "alter", "orders", "--partitions", "5"]);
    assert_eq!(lines(&out), ["Topic orders now has 5 partitions (was 3)."]);
    let out = cluster.ok(&["topic", "alter", "orders", "--partitions", "5"]);
    assert_eq!(lines(&out), ["Topic orders already has 5 partitions."]);
    let out = cluster
        .spool()
        .args(["topic", "alter", "orders", "--partitions", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("cannot have fewer"),
        "{}",
        stderr_of(&out)
    );
    cluster.ok(&[
        "topic",
        "alter",
        "orders",
        "--retention",
        "1d",
        "--config",
        "segment.bytes=1048576",
    ]);
    let d = cluster.json(&["topic", "describe", "orders", "-o", "json"]);
    assert_eq!(d["partition_count"], 5);
    assert_eq!(d["configs"]["retention.ms"], "86400000");
    assert_eq!(d["configs"]["segment.bytes"], "1048576");
    // KEY= removes a config; the others stay.
    cluster.ok(&["topic", "alter", "orders", "--config", "segment.bytes="]);
    let d = cluster.json(&["topic", "describe", "orders", "-o", "json"]);
    assert_eq!(d["configs"]["retention.ms"], "86400000");
    assert!(d["configs"].get("segment.bytes").is_none(), "{d}");

    // delete, with every name checked first.
    let out = cluster
        .spool()
        .args(["topic", "delete", "clicks", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("topic 'nosuch' does not exist on the Kafka cluster at"));
    assert!(cluster
        .ok(&["topic", "describe", "clicks"])
        .starts_with(b"Topic:       clicks"));
    let out = cluster.ok(&["topic", "delete", "clicks", "orders"]);
    assert_eq!(
        lines(&out),
        ["Deleted topic clicks.", "Deleted topic orders."]
    );
    cluster.ok(&["topic", "delete", "orders", "--if-exists"]);
    let out = cluster
        .spool()
        .args(["topic", "describe", "orders"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.starts_with("error: topic 'orders' does not exist on the Kafka cluster at"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    cluster.assert_home_untouched();
}

/// Produces `input` with `args` to a local store and to the cluster, then consumes both with
/// each of `reads` and checks the output is the same bytes.
fn same_on_both(topic: &str, partitions: u32, input: &[u8], args: &[&str], reads: &[&[&str]]) {
    let local = Store::new();
    let cluster = Cluster::serve();
    local.create_topic(topic, partitions, &[]);
    cluster.ok(&["topic", "create", topic, "-p", &partitions.to_string()]);
    local.produce(topic, input.to_vec(), args);
    cluster.produce(topic, input.to_vec(), args);
    for read in reads {
        let a = local.consume(topic, read);
        let b = cluster.consume(topic, read);
        assert!(!a.is_empty(), "{read:?} printed nothing");
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "produce {args:?}, consume {read:?}"
        );
        assert_eq!(a, b);
    }
    cluster.assert_home_untouched();
}

#[test]
fn json_records_read_back_the_same_bytes_as_locally() {
    same_on_both(
        "orders",
        3,
        RECORDS.as_bytes(),
        &["--input", "json"],
        &[
            &["--output", "json"],
            &["--output", "json", "--encoding", "base64"],
            &[
                "-F",
                "%t %p %o %T %d %k=%v [%h] %K/%V\\n",
                "--null-literal",
                "NULL",
            ],
            &["-K", "\\t"],
            &["-p", "1", "-F", "%o:%v\\n"],
            &["-o", "-1", "--output", "json"],
            &["-o", "@1700000002000", "--output", "json"],
        ],
    );
}

#[test]
fn keys_land_where_the_local_partitioner_puts_them() {
    let input: String = (0..200).map(|i| format!("key-{i}:value {i}\n")).collect();
    same_on_both(
        "keyed",
        7,
        input.as_bytes(),
        &["-K", ":"],
        &[&["-F", "%p %o %k %v\\n"]],
    );
}

#[test]
fn every_input_mode_round_trips() {
    let cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "t", "-p", "2"]);
    // -D delimiter, -0, fixed key, headers, null marker, -p, each codec.
    cluster.produce("t", "a|b|c|", &["-D", "|", "-p", "0"]);
    cluster.produce("t", "d\0e\0", &["-0", "-p", "0"]);
    cluster.produce(
        "t",
        "f\nNULL\n",
        &["-k", "k1", "-H", "h=v", "--null-marker", "NULL", "-p", "0"],
    );
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        cluster.produce("t", format!("{codec}\n"), &["-z", codec, "-p", "1"]);
    }
    let out = cluster.consume(
        "t",
        &["-p", "0", "-F", "%o %k=%v %h\\n", "--null-literal", "~"],
    );
    assert_eq!(
        lines(&out),
        [
            "0 ~=a ",
            "1 ~=b ",
            "2 ~=c ",
            "3 ~=d ",
            "4 ~=e ",
            "5 k1=f h=v",
            "6 k1=~ h=v"
        ]
    );
    let out = cluster.consume("t", &["-p", "1"]);
    assert_eq!(lines(&out), ["gzip", "snappy", "lz4", "zstd"]);
    // spool's other partitioners: round-robin, and a command.
    cluster.ok(&["topic", "create", "rr", "-p", "3"]);
    cluster.produce(
        "rr",
        "1\n2\n3\n4\n5\n6\n",
        &["--partitioner", "round-robin", "--batch-size", "0"],
    );
    cluster.produce(
        "rr",
        "k:7\n",
        &[
            "-K",
            ":",
            "--partitioner-cmd",
            "while read k n; do echo 2; done",
        ],
    );
    let d = cluster.json(&["topic", "describe", "rr", "-o", "json"]);
    let ends: Vec<i64> = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["log_end_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(ends, [2, 2, 3]);
    // Binary values survive: consume --output json | produce --input json.
    let bytes: Vec<u8> = (0..=255u8).collect();
    cluster.produce("bin", bytes.clone(), &["-D", "\\n\\n\\n"]);
    let json = cluster.consume("bin", &["--output", "json", "--encoding", "base64"]);
    cluster.produce("bin2", json, &["--input", "json", "--encoding", "base64"]);
    let back = cluster.consume("bin2", &["-F", "%v"]);
    assert_eq!(back, bytes);
    cluster.assert_home_untouched();
}

#[test]
fn produce_summarizes_acknowledged_offsets() {
    let cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "orders", "-p", "3"]);
    let out = cluster
        .spool()
        .args(["produce", "orders", "-K", ":"])
        .write_stdin("alice:book\nbob:pen\nalice:lamp\ncarol:desk\ndave:mug\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("Produced 5 records ("), "{err}");
    assert!(lines[0].ends_with(") to orders"), "{err}");
    // As in the README's tour: alice and bob hash to 0, dave to 1, carol to 2.
    assert_eq!(
        &lines[1..],
        [
            "  partition 0: offsets 0..2 (3 records)",
            "  partition 1: offsets 0..0 (1 record)",
            "  partition 2: offsets 0..0 (1 record)"
        ]
    );
    let out = cluster
        .spool()
        .args(["produce", "orders", "-K", ":", "-o", "json"])
        .write_stdin("alice:x\n")
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["topic"], "orders");
    assert_eq!(summary["records"], 1);
    assert_eq!(
        summary["partitions"],
        serde_json::json!([{"partition": 0, "records": 1, "first_offset": 3, "last_offset": 3}])
    );
    // A missing topic is created with one partition, unless --no-create.
    let out = cluster
        .spool()
        .args(["produce", "fresh"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).starts_with("Created topic fresh with 1 partition.\n"));
    let out = cluster
        .spool()
        .args(["produce", "other", "--no-create"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("topic 'other' does not exist on the Kafka cluster at"));
    assert!(stderr_of(&out).contains("drop --no-create"));
    let out = cluster
        .spool()
        .args(["produce", "other", "-p", "2"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("-p 2 cannot be written to"),
        "{}",
        stderr_of(&out)
    );
    cluster.assert_home_untouched();
}

#[test]
fn failed_records_are_reported_with_their_line() {
    let cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "t"]);
    let big = "x".repeat(5000);
    let out = cluster
        .spool()
        .args(["produce", "t", "--max-message-bytes", "2000"])
        .write_stdin(format!("small\n{big}\nafter\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("line 2 is too large"), "{err}");
    // -p past the partitions, and a JSON record asking for one.
    let out = cluster
        .spool()
        .args(["produce", "t", "-p", "3"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let out = cluster
        .spool()
        .args(["produce", "t", "--input", "json"])
        .write_stdin("{\"value\":\"a\"}\n{\"value\":\"b\",\"partition\":4}\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("line 2 asks for partition 4"),
        "{}",
        stderr_of(&out)
    );
    cluster.assert_home_untouched();
}

#[test]
fn every_offset_form_starts_where_it_says() {
    let cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "t", "-p", "2"]);
    let records: String = (0..10)
        .map(|i| {
            format!(
                "{{\"value\":\"v{i}\",\"timestamp\":{},\"partition\":{}}}\n",
                1_700_000_000_000i64 + i * 1000,
                i % 2
            )
        })
        .collect();
    cluster.produce("t", records, &["--input", "json"]);
    let read = |extra: &[&str]| {
        let mut args = vec!["-p", "0", "-F", "%o:%v\\n"];
        args.extend_from_slice(extra);
        lines(&cluster.consume("t", &args))
    };
    assert_eq!(read(&[]), ["0:v0", "1:v2", "2:v4", "3:v6", "4:v8"]);
    assert_eq!(read(&["-o", "3"]), ["3:v6", "4:v8"]);
    assert_eq!(read(&["-o", "-2"]), ["3:v6", "4:v8"]);
    assert_eq!(read(&["-o", "+4"]), ["4:v8"]);
    assert_eq!(read(&["-o", "earliest", "-n", "2"]), ["0:v0", "1:v2"]);
    assert!(read(&["-o", "latest"]).is_empty());
    assert_eq!(read(&["-o", "@1700000005000"]), ["3:v6", "4:v8"]);
    assert!(read(&["-o", "@1800000000000"]).is_empty());
    // Clamped, with the local consumer's warning.
    let out = cluster
        .spool()
        .args(["consume", "t", "-p", "1", "-o", "99", "-e"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr_of(&out).contains("warning: t/1: offset 99 is past the log end; starting at 5"),
        "{}",
        stderr_of(&out)
    );
    // Both partitions, -n across them, a missing partition and topic.
    assert_eq!(lines(&cluster.consume("t", &[])).len(), 10);
    assert_eq!(lines(&cluster.consume("t", &["-n", "3"])).len(), 3);
    let out = cluster
        .spool()
        .args(["consume", "t", "-p", "5", "-e"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("partition 5 of topic 't' does not exist"),
        "{}",
        stderr_of(&out)
    );
    let out = cluster
        .spool()
        .args(["consume", "nosuch", "-e"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("topic 'nosuch' does not exist on the Kafka cluster"));
    // The summary line.
    let out = cluster
        .spool()
        .args(["consume", "t", "-e"])
        .output()
        .unwrap();
    assert_eq!(stderr_of(&out), "Processed 10 records\n");
    cluster.assert_home_untouched();
}

#[test]
fn a_following_consumer_prints_new_records_and_regex_topics() {
    let cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "live"]);
    let mut child = cluster
        .spool_process()
        .args(["consume", "live", "-q"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    cluster.produce("live", "first\n", &[]);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    cluster.produce("live", "second\n", &[]);
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "second\n");
    common::signal(&child, libc::SIGTERM);
    assert!(child.wait().unwrap().success());

    // --regex: a topic created later joins.
    let mut child = cluster
        .spool_process()
        .args(["consume", "--regex", "orders\\..*", "-q", "-F", "%t %v\\n"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    cluster.produce("orders.eu", "hello\n", &[]);
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "orders.eu hello\n");
    common::signal(&child, libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    cluster.assert_home_untouched();
}

#[test]
fn records_from_the_cluster_are_what_the_store_behind_it_holds() {
    // spool serve's store read locally and through -b: the same records, the same output.
    let cluster = Cluster::serve();
    let store = cluster.store.as_ref().unwrap();
    store.create_topic("shared", 2, &[]);
    store.produce("shared", RECORDS, &["--input", "json"]);
    cluster.produce("shared", "x:from the cluster\n", &["-K", ":"]);
    for read in [&["--output", "json"][..], &["-F", "%p/%o %T %k=%v %h\\n"]] {
        let local = store.consume("shared", read);
        let remote = cluster.consume("shared", read);
        assert_eq!(
            String::from_utf8_lossy(&local),
            String::from_utf8_lossy(&remote)
        );
        assert_eq!(
            json_lines(&store.consume("shared", &["--output", "json"])).len(),
            7
        );
    }
    cluster.assert_home_untouched();
}

#[test]
fn records_the_cluster_never_acknowledged_fail_the_producer() {
    let mut cluster = Cluster::serve();
    cluster.ok(&["topic", "create", "t"]);
    let mut child = cluster
        .spool_process()
        .args(["-X", "message.timeout.ms=1500", "produce", "t"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write as _;
    stdin.write_all(b"one\ntwo\n").unwrap();
    stdin.flush().unwrap();
    // Wait until the two records are in, then take the broker away.
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.consume("t", &["-n", "2"]).is_empty() {
        assert!(Instant::now() < deadline, "the first records never arrived");
    }
    cluster.stop_server();
    stdin.write_all(b"three\n").unwrap();
    drop(stdin);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("Produced 2 records") && err.contains("before the error"),
        "{err}"
    );
    assert!(
        err.contains("error: line 3: the record was not delivered to t/0 on the Kafka cluster at"),
        "{err}"
    );
    cluster.assert_home_untouched();
}

#[test]
fn verbose_shows_librdkafka_and_quiet_does_not() {
    let cluster = Cluster::serve();
    let port = common::kafka::free_port();
    let out = unreachable(&cluster, port)
        .args(["-v", "--cluster-timeout", "1s", "topic", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.lines().count() > 1, "{err}");
    assert!(err.lines().any(|l| l.starts_with("librdkafka: ")), "{err}");
    // The same command without -v: spool's one line only (checked above for every command).
    let out = unreachable(&cluster, port)
        .args(["--cluster-timeout", "1s", "topic", "list"])
        .output()
        .unwrap();
    assert!(
        !stderr_of(&out).contains("librdkafka"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_cluster_command_never_opens_the_local_store() {
    // A default store that every local command refuses (a newer format): -b does not care.
    let cluster = Cluster::serve();
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("spool");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("spool.yaml"), "format_version: 999\n").unwrap();
    let spool = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("spool").unwrap();
        cmd.env_remove("SPOOL_DIR")
            .env_remove("SPOOL_BROKERS")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .args(args);
        cmd
    };
    let out = spool(&["topic", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let b = ["-b", cluster.brokers.as_str()];
    for args in [
        &["topic", "create", "t", "-p", "2"][..],
        &["topic", "list"],
        &["topic", "describe", "t"],
    ] {
        let out = spool(&b).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    }
    let out = spool(&b)
        .args(["produce", "t", "-q"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = spool(&b)
        .args(["consume", "t", "-e", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"x\n");
    // Nothing new beside the refused store.
    let entries: Vec<_> = std::fs::read_dir(home.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);
}
