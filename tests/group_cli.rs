//! `spool group list|describe|delete|delete-offsets`: every view and option, their JSON, empty
//! and missing groups, lag, liveness shown without eviction, history, and the describe timing.

mod common;
mod group_support;

use std::time::{Duration, Instant};

use common::Store;
use group_support::{
    committed, consume_group, json, member, produce_numbers, run, wait_until, WAIT,
};
use serde_json::Value;
use spool::group::assignor::TopicPartition;
use spool::group::lease::{HeldLease, Lease};
use spool::group::state::{GroupDir, GroupState, MemberInfo};

fn group_file(store: &Store, group: &str) -> Vec<u8> {
    std::fs::read(store.dir().join("groups").join(group).join("group.yaml")).unwrap_or_default()
}

fn lease_files(store: &Store, group: &str) -> usize {
    std::fs::read_dir(store.dir().join("groups").join(group).join("members"))
        .map(|d| {
            d.filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                let n = n.to_string_lossy();
                n.ends_with(".yaml") && !n.starts_with('.')
            })
            .count()
        })
        .unwrap_or(0)
}

/// The members of `describe --members -o json`.
fn members_json(store: &Store, group: &str) -> Vec<Value> {
    json(
        store,
        &["group", "describe", group, "--members", "-o", "json"],
    )["members"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn list_and_describe_all_on_an_empty_store() {
    let store = Store::new();
    let (code, out, err) = run(&store, &["group", "list"]);
    assert_eq!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains("No consumer groups"), "{err}");
    assert_eq!(
        json(&store, &["group", "list", "-o", "json"]),
        Value::Array(vec![])
    );
    assert_eq!(
        json(&store, &["group", "describe", "--all-groups", "-o", "json"]),
        Value::Array(vec![])
    );
    let (code, _, _) = run(&store, &["group", "describe", "--all-groups"]);
    assert_eq!(code, 0);
}

#[test]
fn a_missing_group_is_an_error_but_the_others_are_shown() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    store.produce("t", "a\nb\n", &[]);
    consume_group(&store, "t", "g");
    let (code, out, err) = run(&store, &["group", "describe", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(
        err.contains("error: consumer group 'nope' does not exist"),
        "{err}"
    );
    let (code, out, err) = run(&store, &["group", "describe", "nope", "g"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error: consumer group 'nope' does not exist"),
        "{err}"
    );
    assert!(
        out.contains("CURRENT-OFFSET") && out.lines().any(|l| l.starts_with("g ")),
        "{out}"
    );
    for view in ["--members", "--state", "--history"] {
        let (code, _, err) = run(&store, &["group", "describe", "nope", view, "-o", "json"]);
        assert_eq!(code, 1, "{view}");
        assert!(err.contains("does not exist"), "{err}");
    }
}

#[test]
fn bad_argument_combinations_are_usage_errors() {
    let store = Store::new();
    for args in [
        vec!["group", "describe"],
        vec!["group", "describe", "g", "--all-groups"],
        vec!["group", "describe", "g", "--members", "--state"],
        vec!["group", "describe", "g", "--history", "--offsets"],
        vec!["group", "delete"],
        vec!["group", "delete-offsets", "g"],
        vec!["group", "delete-offsets", "g", "--topic", "t:x"],
    ] {
        let (code, _, err) = run(&store, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let (code, _, err) = run(&store, &["group", "describe", "bad/name"]);
    assert_ne!(code, 0);
    assert!(err.contains("bad/name"), "{err}");
}

#[test]
fn lag_after_produce_and_after_commits() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    produce_numbers(&store, "t", 0, 10);
    assert_eq!(consume_group(&store, "t", "g").len(), 10);
    // Everything read and committed: no lag.
    let v = json(&store, &["group", "describe", "g", "-o", "json"]);
    assert_eq!(v["group"], "g");
    assert_eq!(v["state"], "Empty");
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    for p in parts {
        assert_eq!(p["current_offset"], 5);
        assert_eq!(p["log_start_offset"], 0);
        assert_eq!(p["log_end_offset"], 5);
        assert_eq!(p["lag"], 0);
        assert_eq!(p["consumer_id"], Value::Null);
        assert_eq!(p["below_log_start"], false);
    }
    // New records: lag grows by what was produced.
    produce_numbers(&store, "t", 10, 16);
    let v = json(&store, &["group", "describe", "g", "-o", "json"]);
    let lags: Vec<i64> = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .collect();
    assert_eq!(lags, vec![3, 3]);
    let list = json(&store, &["group", "list", "-o", "json"]);
    assert_eq!(list[0]["group"], "g");
    assert_eq!(list[0]["state"], "Empty");
    assert_eq!(list[0]["members"], 0);
    assert_eq!(list[0]["topics"], serde_json::json!(["t"]));
    assert_eq!(list[0]["total_lag"], 6);
    let (code, out, err) = run(&store, &["group", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("GROUP"), "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["g", "Empty", "0", "t", "6"]);
    assert_eq!(err, "");

    // The table: Kafka's columns, `-` for no owner, and the no-active-members notice.
    let (code, out, err) = run(&store, &["group", "describe", "g"]);
    assert_eq!(code, 0);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-START-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["g", "t", "0", "5", "0", "8", "3", "-", "-", "-"]);
    assert!(
        err.contains("Consumer group 'g' has no active members."),
        "{err}"
    );

    // Reading again commits the rest.
    assert_eq!(consume_group(&store, "t", "g").len(), 6);
    let list = json(&store, &["group", "list", "-o", "json"]);
    assert_eq!(list[0]["total_lag"], 0);
    // YAML carries the same fields.
    let (code, out, _) = run(&store, &["group", "describe", "g", "-o", "yaml"]);
    assert_eq!(code, 0);
    let y: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(
        y["partitions"][1]["log_end_offset"],
        serde_yaml::Value::from(8)
    );
}

#[test]
fn assigned_partitions_without_a_commit_show_dashes() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    let m = member(&store, "t", "g", &["--no-commit"]);
    let (code, out, err) = run(&store, &["group", "describe", "g"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    for row in rows {
        assert_eq!(&row[3..7], ["-", "0", "0", "-"], "{out}");
        assert!(row[7].starts_with("spool-consumer-"), "{out}");
        assert_eq!(row[9], "spool-consumer");
    }
    assert!(!err.contains("no active members"), "{err}");
    drop(m);
}

#[test]
fn a_committed_offset_below_the_log_start_is_flagged() {
    let store = Store::new();
    store.create_topic(
        "t",
        1,
        &["--segment-bytes", "1KiB", "--retention-bytes", "1KiB"],
    );
    // Commit offset 0 of an empty topic, then let retention delete the first records.
    let (code, _, err) = run(
        &store,
        &[
            "offsets",
            "reset",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let line = "x".repeat(100);
    let input: String = (0..200).map(|_| format!("{line}\n")).collect();
    store.produce("t", input, &["--batch-size", "1KiB"]);
    store
        .spool()
        .args(["topic", "prune", "t"])
        .assert()
        .success();
    let v = json(&store, &["group", "describe", "g", "-o", "json"]);
    let p = &v["partitions"][0];
    let start = p["log_start_offset"].as_i64().unwrap();
    assert!(start > 0, "retention deleted nothing: {v}");
    assert_eq!(p["current_offset"], 0);
    assert_eq!(p["below_log_start"], true);
    assert_eq!(p["lag"], 200, "lag counts from the committed offset");
    let (code, out, err) = run(&store, &["group", "describe", "g"]);
    assert_eq!(code, 0);
    assert!(out.contains(" 0 "), "the offset is shown: {out}");
    assert!(
        err.contains("Warning") && err.contains("below the log start offset"),
        "{err}"
    );
}

#[test]
fn members_state_and_offsets_of_a_live_group() {
    let store = Store::new();
    store.create_topic("t", 3, &[]);
    store.create_topic("u", 1, &[]);
    produce_numbers(&store, "t", 0, 9);
    let a = member(&store, "t", "g", &["--client-id", "app-a"]);
    let b = member(
        &store,
        "t",
        "g",
        &["--client-id", "app-b", "--instance-id", "b-1"],
    );
    // Stable with both members holding their partitions.
    assert!(wait_until(WAIT, || {
        json(&store, &["group", "describe", "g", "--state", "-o", "json"])["state"] == "Stable"
    }));
    let st = json(&store, &["group", "describe", "g", "--state", "-o", "json"]);
    assert_eq!(st["assignor"], "cooperative-sticky");
    assert_eq!(st["members"], 2);
    assert!(st["generation"].as_i64().unwrap() >= 2);
    let (code, out, err) = run(&store, &["group", "describe", "g", "--state"]);
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["GROUP", "ASSIGNOR", "STATE", "GENERATION", "#MEMBERS"]
    );
    assert!(out.contains("Stable"), "{out}");

    let members = members_json(&store, "g");
    assert_eq!(members.len(), 2);
    let ma = members.iter().find(|m| m["client_id"] == "app-a").unwrap();
    let mb = members.iter().find(|m| m["client_id"] == "app-b").unwrap();
    assert_eq!(ma["pid"], a.child.id());
    assert_eq!(mb["pid"], b.child.id());
    assert_eq!(mb["instance_id"], "b-1");
    assert_eq!(mb["member_id"], "b-1");
    assert_eq!(ma["status"], "alive");
    assert_eq!(ma["session_timeout_ms"], 2000);
    let total: u64 = members
        .iter()
        .map(|m| m["partitions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    assert!(ma["last_heartbeat_ago_ms"].as_i64().unwrap() < 2000);

    let (code, out, _) = run(&store, &["group", "describe", "g", "--members"]);
    assert_eq!(code, 0);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "CONSUMER-ID",
            "INSTANCE-ID",
            "HOST",
            "PID",
            "CLIENT-ID",
            "#PARTITIONS",
            "ASSIGNMENT",
            "LAST-HEARTBEAT",
            "SESSION-TIMEOUT",
            "STATUS"
        ]
    );
    let row_b = out.lines().find(|l| l.contains("b-1")).unwrap();
    assert!(row_b.contains(" ago "), "{row_b}");
    assert!(row_b.contains(" 2s "), "{row_b}");
    assert!(row_b.contains("t:"), "{row_b}");
    assert!(row_b.trim_end().ends_with("alive"), "{row_b}");

    // Offsets: every partition has its consumer, host and client id.
    let v = json(&store, &["group", "describe", "g", "-o", "json"]);
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for p in parts {
        assert!(p["consumer_id"].is_string(), "{p}");
        assert!(p["host"].is_string(), "{p}");
        assert_eq!(p["consumer_status"], "alive");
    }
    // Everything is read and committed within the auto-commit interval.
    let _ = &a;
}

#[test]
fn describe_shows_dead_and_expired_members_without_evicting_them() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    // One member alone: nobody else reconciles when it dies.
    let hung = member(&store, "t", "g", &[]);
    hung.signal(libc::SIGSTOP);
    assert!(
        wait_until(WAIT, || members_json(&store, "g")[0]["status"] == "expired"),
        "{:?}",
        members_json(&store, "g")
    );
    let before = group_file(&store, "g");
    let st = json(&store, &["group", "describe", "g", "--state", "-o", "json"]);
    assert_eq!(st["state"], "Empty");
    assert_eq!(st["members"], 0);
    let (code, out, err) = run(&store, &["group", "describe", "g"]);
    assert_eq!(code, 0);
    assert!(out.contains("(expired)"), "{out}");
    assert!(err.contains("has no active members"), "{err}");
    let (_, out, _) = run(&store, &["group", "describe", "g", "--members"]);
    assert!(
        out.lines().nth(1).unwrap().trim_end().ends_with("expired"),
        "{out}"
    );
    run(&store, &["group", "list"]);
    assert_eq!(
        group_file(&store, "g"),
        before,
        "looking changed group.yaml"
    );
    assert_eq!(lease_files(&store, "g"), 1, "looking removed the lease");
    hung.signal(libc::SIGCONT);
    drop(hung);

    let store = Store::new();
    store.create_topic("t", 2, &[]);
    let crashed = member(&store, "t", "g", &[]);
    crashed.signal(libc::SIGKILL);
    assert!(wait_until(WAIT, || members_json(&store, "g")[0]["status"] == "dead"));
    let before = group_file(&store, "g");
    let (_, out, _) = run(&store, &["group", "describe", "g", "--members"]);
    assert!(
        out.lines().nth(1).unwrap().trim_end().ends_with("dead"),
        "{out}"
    );
    run(&store, &["group", "describe", "g"]);
    assert_eq!(group_file(&store, "g"), before);
    assert_eq!(lease_files(&store, "g"), 1);
}

/// A long-lived group's state stays the size of its present: every member reads `group.yaml`
/// after every change, so the rebalances it went through are kept beside it (`history.yaml`).
#[test]
fn a_group_joined_many_times_keeps_its_state_small_and_its_last_fifty_rebalances() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    store.produce("t", "one\n", &[]);
    for _ in 0..60 {
        store
            .spool()
            .args(["consume", "t", "--group", "g", "-e"])
            .assert()
            .success();
    }
    let group_yaml = store.dir().join("groups/g/group.yaml");
    let size = std::fs::metadata(&group_yaml).unwrap().len();
    assert!(
        size < 1024,
        "{size} bytes:\n{}",
        String::from_utf8_lossy(&common::read(&group_yaml))
    );
    let history = json(
        &store,
        &["group", "describe", "g", "--history", "-o", "json"],
    )["history"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(history.len(), 50, "the last fifty of 120");
    assert_eq!(history.last().unwrap()["generation"], 120);
    assert_eq!(history.last().unwrap()["trigger"], "left");
    assert_eq!(history[0]["generation"], 71);
}

#[test]
fn history_after_joins_and_a_kill() {
    let store = Store::new();
    store.create_topic("t", 4, &[]);
    let a = member(&store, "t", "g", &["--instance-id", "a"]);
    let b = member(&store, "t", "g", &["--client-id", "bb"]);
    let b_id = members_json(&store, "g")
        .iter()
        .find(|m| m["client_id"] == "bb")
        .unwrap()["member_id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.signal(libc::SIGKILL);
    let history = || -> Vec<Value> {
        json(
            &store,
            &["group", "describe", "g", "--history", "-o", "json"],
        )["history"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(wait_until(WAIT, || history().len() >= 3), "{:?}", history());
    let h = history();
    let triggers: Vec<&str> = h.iter().map(|e| e["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers, ["joined", "joined", "died"]);
    assert_eq!(h[0]["generation"], 1);
    assert_eq!(h[0]["subjects"], serde_json::json!(["a"]));
    assert_eq!(h[0]["members_before"], serde_json::json!([]));
    assert_eq!(h[1]["members_after"], serde_json::json!(["a", b_id]));
    assert_eq!(h[2]["subjects"], serde_json::json!([b_id]));
    assert_eq!(h[2]["members_before"], serde_json::json!(["a", b_id]));
    assert_eq!(h[2]["members_after"], serde_json::json!(["a"]));
    assert!(h[2]["time"].as_str().unwrap().ends_with('Z'));
    let (code, out, _) = run(&store, &["group", "describe", "g", "--history"]);
    assert_eq!(code, 0);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "GENERATION",
            "TIME",
            "TRIGGER",
            "MEMBERS-BEFORE",
            "MEMBERS-AFTER"
        ]
    );
    assert!(out.contains(&format!("died: {b_id}")), "{out}");
    drop(a);
}

/// A live member without a process: a lease locked by the test itself, in a generation the
/// member has not acknowledged yet.
#[test]
fn a_rebalancing_group_is_announced() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    let s = common::lib_store(&store);
    let dir = GroupDir::new(&s, "g").unwrap();
    dir.ensure_created().unwrap();
    let now = spool::store::fsutil::now_ms();
    let _held = HeldLease::create(
        &dir.members_dir(),
        Lease {
            member_id: "m".into(),
            instance_id: None,
            client_id: "c".into(),
            host: "h".into(),
            pid: std::process::id(),
            topics: vec!["t".into()],
            pattern: None,
            assignor: "range".into(),
            session_timeout_ms: 600_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            joined_at_ms: now,
            heartbeat_ms: now,
            last_poll_ms: now,
            acked_generation: None,
        },
    )
    .unwrap();
    let mut state = GroupState {
        generation: 3,
        protocol: Some("range".into()),
        ..GroupState::default()
    };
    state.members.insert(
        "m".into(),
        MemberInfo {
            instance_id: None,
            client_id: "c".into(),
            topics: vec!["t".into()],
        },
    );
    state.acked.insert("m".into(), 2);
    state
        .assignment
        .insert("m".into(), vec![TopicPartition::new("t", 0)]);
    state.partition_counts.insert("t".into(), 1);
    dir.save_state(&state).unwrap();
    let (code, _, err) = run(&store, &["group", "describe", "g", "--state"]);
    assert_eq!(code, 0);
    assert!(
        err.contains(
            "Warning: Consumer group 'g' is rebalancing. Some information may be outdated."
        ),
        "{err}"
    );
    let st = json(&store, &["group", "describe", "g", "--state", "-o", "json"]);
    assert_eq!(st["state"], "PreparingRebalance");
    // Partitions added to a subscribed topic: a rebalance is due too.
    state.acked.insert("m".into(), 3);
    dir.save_state(&state).unwrap();
    let st = json(&store, &["group", "describe", "g", "--state", "-o", "json"]);
    assert_eq!(
        st["state"], "CompletingRebalance",
        "t/0 is not taken up yet: {st}"
    );
    store
        .spool()
        .args(["topic", "alter", "t", "--partitions", "2"])
        .assert()
        .success();
    let st = json(&store, &["group", "describe", "g", "--state", "-o", "json"]);
    assert_eq!(st["state"], "PreparingRebalance");
}

#[test]
fn describe_all_groups_and_several_groups() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    store.produce("t", "a\n", &[]);
    consume_group(&store, "t", "g1");
    consume_group(&store, "t", "g2");
    let v = json(&store, &["group", "describe", "--all-groups", "-o", "json"]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["g1", "g2"]);
    let v = json(
        &store,
        &["group", "describe", "g2", "g1", "--state", "-o", "json"],
    );
    assert_eq!(v.as_array().unwrap().len(), 2);
    let v = json(
        &store,
        &["group", "describe", "g1", "--history", "-o", "json"],
    );
    assert!(v.is_object());
    let (code, out, _) = run(&store, &["group", "describe", "--all-groups", "--state"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn delete_refuses_live_groups_and_names_the_members() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    let mut m = member(&store, "t", "g", &["--client-id", "holder"]);
    let (code, _, err) = run(&store, &["group", "delete", "g"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("can only be deleted if it has no live members"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", m.child.id())), "{err}");
    assert!(err.contains("holder-"), "names the member: {err}");
    assert!(err.contains("hint:"), "{err}");
    // A clean exit (SIGTERM) leaves the group: now it can go.
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit(WAIT).success());
    let (code, out, err) = run(&store, &["group", "delete", "g"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Deletion of requested consumer groups ('g') was successful."),
        "{out}"
    );
    let (code, _, err) = run(&store, &["group", "describe", "g"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = run(&store, &["group", "delete", "g"]);
    assert_eq!(code, 1);
    assert!(err.contains("consumer group 'g' does not exist"), "{err}");
}

#[test]
fn delete_several_and_all_groups() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    store.produce("t", "a\n", &[]);
    for g in ["a", "b", "c"] {
        consume_group(&store, "t", g);
    }
    let (code, out, err) = run(&store, &["group", "delete", "a", "b"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("('a', 'b')"), "{out}");
    // One missing among several: the others are deleted, the failure reported.
    consume_group(&store, "t", "a");
    let (code, out, err) = run(&store, &["group", "delete", "a", "zz"]);
    assert_eq!(code, 1);
    assert!(out.contains("('a')"), "{out}");
    assert!(err.contains("zz"), "{err}");
    let (code, _, err) = run(&store, &["group", "delete", "--all-groups"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(&store, &["group", "list", "-o", "json"]),
        Value::Array(vec![])
    );
    // A member joining later starts a new group.
    assert_eq!(consume_group(&store, "t", "c"), ["0:0:a"]);
}

#[test]
fn delete_offsets_of_topics_and_partitions() {
    let store = Store::new();
    store.create_topic("t", 3, &[]);
    store.create_topic("u", 1, &[]);
    produce_numbers(&store, "t", 0, 6);
    store.produce("u", "x\n", &[]);
    consume_group(&store, "t", "g");
    consume_group(&store, "u", "g");
    assert_eq!(committed(&store, "g").len(), 4);
    let (code, out, err) = run(&store, &["group", "delete-offsets", "g", "--topic", "u"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Successful"), "{out}");
    let (code, out, err) = run(
        &store,
        &[
            "group",
            "delete-offsets",
            "g",
            "--topic",
            "t:0,2",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["offset"], 2);
    assert_eq!(committed(&store, "g"), [("t".to_owned(), 1, 2)]);
    // Nothing committed for u any more: said so, not an error.
    let (code, _, err) = run(&store, &["group", "delete-offsets", "g", "--topic", "u"]);
    assert_eq!(code, 0);
    assert!(err.contains("no committed offsets for topic u"), "{err}");
    // The next run of the group reads the deleted partitions from the start again.
    let again = consume_group(&store, "t", "g");
    assert_eq!(again.len(), 4, "{again:?}");

    // Refused while a live member subscribes to the topic, as Kafka refuses it.
    let m = member(&store, "t", "g", &[]);
    let (code, _, err) = run(&store, &["group", "delete-offsets", "g", "--topic", "t"]);
    assert_eq!(code, 1);
    assert!(err.contains("is subscribed to it"), "{err}");
    drop(m);
    let (code, _, err) = run(&store, &["group", "delete-offsets", "nope", "--topic", "t"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn watch_redraws_until_interrupted_without_escapes_off_a_terminal() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    store.produce("t", "a\n", &[]);
    consume_group(&store, "t", "g");
    let mut w = group_support::spawn(
        &store,
        &["group", "describe", "g", "--state", "--watch", "100ms"],
    );
    assert!(wait_until(WAIT, || {
        w.stdout_lines()
            .iter()
            .filter(|l| l.starts_with("GROUP"))
            .count()
            >= 3
    }));
    w.signal(libc::SIGINT);
    assert!(w.wait_exit(WAIT).success());
    let out = w.stdout_lines().join("\n");
    assert!(!out.contains('\x1b'), "{out}");

    let mut w = group_support::spawn(&store, &["group", "describe", "g", "-o", "json", "--watch"]);
    assert!(wait_until(WAIT, || w
        .stdout_lines()
        .iter()
        .any(|l| l == "}")));
    w.signal(libc::SIGTERM);
    assert!(w.wait_exit(WAIT).success());
}

/// `group describe` of 100 members over 1,000 partitions, built through the library.
#[test]
fn describe_of_a_large_group_is_fast() {
    let store = Store::new();
    let _leases = group_support::synthetic::build_group(&store.dir(), "big", 100, 10, 100, 20);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let out = store
            .spool()
            .args(["group", "describe", "big"])
            .output()
            .unwrap();
        best = best.min(started.elapsed());
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1001);
    }
    eprintln!("group describe, 100 members, 1000 partitions: {best:?}");
    let members = members_json(&store, "big");
    assert_eq!(members.len(), 100);
    assert!(members
        .iter()
        .all(|m| m["status"] == "alive" && m["partitions"] == 10));
    assert!(best < Duration::from_secs(1), "took {best:?}");
}

/// The benchmark behind `scripts/bench-group-describe.sh`: times `spool group describe` of
/// 100 members over 1,000 partitions (in whatever profile the test was built).
#[test]
#[ignore]
fn bench_group_describe() {
    let store = Store::new();
    let _leases = group_support::synthetic::build_group(&store.dir(), "big", 100, 10, 100, 20);
    for args in [
        vec!["group", "describe", "big"],
        vec!["group", "describe", "big", "--members"],
        vec!["group", "describe", "big", "-o", "json"],
        vec!["group", "list"],
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let out = store.spool().args(&args).output().unwrap();
            times.push(started.elapsed());
            assert!(out.status.success());
        }
        times.sort();
        println!(
            "spool {}: min {:?}, median {:?}, max {:?} (20 runs)",
            args.join(" "),
            times[0],
            times[10],
            times[19]
        );
    }
}
