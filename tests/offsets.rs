//! `spool offsets reset`: every option with its clamping and refusals, dry runs and --execute,
//! scopes, export and --from-file, and what the next `consume --group` does.

mod common;
mod group_support;

use common::Store;
use group_support::{
    committed, consume_group, json, member, produce_numbers, run, wait_until, WAIT,
};
use serde_json::Value;

fn reset(store: &Store, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["offsets", "reset"];
    all.extend_from_slice(args);
    run(store, &all)
}

/// `reset ... -o json` rows as (topic, partition, prior, new).
fn plan(store: &Store, args: &[&str]) -> Vec<(String, i64, Option<i64>, i64)> {
    let mut all = vec!["offsets", "reset"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(store, &all)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["topic"].as_str().unwrap().to_owned(),
                r["partition"].as_i64().unwrap(),
                r["prior_offset"].as_i64(),
                r["new_offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn offsets_of(store: &Store, group: &str) -> Vec<i64> {
    committed(store, group).into_iter().map(|c| c.2).collect()
}

/// Topic `t` with 2 partitions of 5 records each, all read and committed by group `g`.
fn setup() -> Store {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    produce_numbers(&store, "t", 0, 10);
    assert_eq!(consume_group(&store, "t", "g").len(), 10);
    assert_eq!(offsets_of(&store, "g"), [5, 5]);
    store
}

#[test]
fn a_dry_run_changes_nothing_and_execute_writes() {
    let store = setup();
    let (code, out, err) = reset(&store, &["--group", "g", "--topic", "t", "--to-earliest"]);
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["GROUP", "TOPIC", "PARTITION", "PRIOR-OFFSET", "NEW-OFFSET"]
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["g", "t", "0", "5", "0"]);
    assert!(
        err.contains("Dry run") && err.contains("--execute"),
        "{err}"
    );
    assert_eq!(offsets_of(&store, "g"), [5, 5]);
    let (code, _, _) = reset(
        &store,
        &["--group", "g", "--topic", "t", "--to-earliest", "--dry-run"],
    );
    assert_eq!(code, 0);
    assert_eq!(offsets_of(&store, "g"), [5, 5]);

    let (code, out, err) = reset(
        &store,
        &["--group", "g", "--topic", "t", "--to-earliest", "--execute"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).unwrap().ends_with('0'), "{out}");
    assert!(!err.contains("Dry run"), "{err}");
    assert_eq!(offsets_of(&store, "g"), [0, 0]);
    // The describe view agrees.
    let v = json(&store, &["group", "describe", "g", "-o", "json"]);
    assert_eq!(v["partitions"][0]["lag"], 5);
}

#[test]
fn to_latest_and_to_current() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    produce_numbers(&store, "t", 0, 10);
    // A new group with a commit on partition 0 only.
    let (code, _, err) = reset(
        &store,
        &[
            "--group",
            "g",
            "--topic",
            "t:0",
            "--to-offset",
            "1",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        plan(&store, &["--group", "g", "--topic", "t", "--to-current"]),
        [("t".into(), 0, Some(1), 1), ("t".into(), 1, None, 5)],
        "--to-current gives the log end where nothing was committed"
    );
    assert_eq!(
        plan(
            &store,
            &["--group", "g", "--topic", "t", "--to-latest", "--execute"]
        ),
        [("t".into(), 0, Some(1), 5), ("t".into(), 1, None, 5)]
    );
    assert_eq!(offsets_of(&store, "g"), [5, 5]);
}

#[test]
fn to_offset_is_clamped_with_a_warning() {
    let store = setup();
    let (code, out, err) = reset(
        &store,
        &["--group", "g", "--topic", "t:1", "--to-offset", "100"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).unwrap().ends_with(" 5"), "{out}");
    assert!(
        err.contains("New offset (100) is higher than latest offset for topic partition t-1. Value will be set to 5"),
        "{err}"
    );
    assert_eq!(
        plan(
            &store,
            &[
                "--group",
                "g",
                "--topic",
                "t:1",
                "--to-offset",
                "3",
                "--execute"
            ]
        ),
        [("t".into(), 1, Some(5), 3)]
    );
    let (code, _, err) = reset(
        &store,
        &["--group", "g", "--topic", "t:1", "--to-offset", "-4"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "is lower than earliest offset for topic partition t-1. Value will be set to 0"
        ),
        "{err}"
    );
}

#[test]
fn shift_by_moves_committed_offsets_and_needs_one() {
    let store = setup();
    assert_eq!(
        plan(
            &store,
            &[
                "--group",
                "g",
                "--topic",
                "t",
                "--shift-by",
                "-2",
                "--execute"
            ]
        ),
        [("t".into(), 0, Some(5), 3), ("t".into(), 1, Some(5), 3)]
    );
    assert_eq!(
        plan(
            &store,
            &[
                "--group",
                "g",
                "--topic",
                "t:0",
                "--shift-by",
                "1",
                "--execute"
            ]
        ),
        [("t".into(), 0, Some(3), 4)]
    );
    let (code, _, err) = reset(
        &store,
        &["--group", "g", "--topic", "t:0", "--shift-by", "+10"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("is higher than latest offset"), "{err}");
    let (code, _, err) = reset(
        &store,
        &["--group", "g", "--topic", "t:0", "--shift-by", "-10"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("is lower than earliest offset"), "{err}");
    // A partition without a commit cannot be shifted.
    store.create_topic("u", 1, &[]);
    let (code, _, err) = reset(&store, &["--group", "g", "--topic", "u", "--shift-by", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("u/0") && err.contains("no committed offset"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(offsets_of(&store, "g"), [4, 3]);
}

#[test]
fn to_datetime_and_by_duration() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    let now = spool::store::fsutil::now_ms();
    let times = [1_000, 2_000, 3_000, now - 7_200_000, now - 60_000];
    let input: String = times
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{{\"value\":\"v{i}\",\"timestamp\":{t}}}\n"))
        .collect();
    store.produce("t", input, &["--input", "json"]);
    let to = |args: &[&str]| -> i64 {
        let mut all = vec!["--group", "g", "--topic", "t"];
        all.extend_from_slice(args);
        plan(&store, &all)[0].3
    };
    assert_eq!(to(&["--to-datetime", "2500"]), 2);
    assert_eq!(to(&["--to-datetime", "1970-01-01T00:00:02Z"]), 1);
    assert_eq!(to(&["--to-datetime", "1970-01-01T00:00:02.001Z"]), 2);
    assert_eq!(to(&["--to-datetime", "1969-12-31T00:00:00Z"]), 0);
    assert_eq!(to(&["--by-duration", "1h30m"]), 4);
    assert_eq!(to(&["--by-duration", "PT3H"]), 3);
    assert_eq!(to(&["--by-duration", "P1D"]), 3);
    // Nothing at or after the time: the log end, with a warning.
    let (code, out, err) = reset(
        &store,
        &["--group", "g", "--topic", "t", "--to-datetime", "-1s"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).unwrap().ends_with(" 5"), "{out}");
    assert!(
        err.contains("Value will be set to the latest offset, 5"),
        "{err}"
    );
    let (code, _, err) = reset(
        &store,
        &["--group", "g", "--topic", "t", "--to-datetime", "yesterday"],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = reset(
        &store,
        &["--group", "g", "--topic", "t", "--by-duration", "90"],
    );
    assert_eq!(code, 2);
}

#[test]
fn export_and_from_file_round_trip() {
    let store = setup();
    let (code, out, err) = reset(
        &store,
        &[
            "--group",
            "g",
            "--topic",
            "t",
            "--shift-by",
            "-3",
            "--export",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "t,0,2\nt,1,2\n");
    assert_eq!(
        offsets_of(&store, "g"),
        [5, 5],
        "--export alone is a dry run"
    );
    let file = store.tmp.path().join("plan.csv");
    std::fs::write(&file, "# saved plan\nt,0,1\n\nt,1,4\n").unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        plan(&store, &["--group", "g", "--from-file", f, "--execute"]),
        [("t".into(), 0, Some(5), 1), ("t".into(), 1, Some(5), 4)]
    );
    assert_eq!(offsets_of(&store, "g"), [1, 4]);
    // Clamped like every other option.
    std::fs::write(&file, "t,0,99\n").unwrap();
    let (code, _, err) = reset(&store, &["--group", "g", "--from-file", f]);
    assert_eq!(code, 0);
    assert!(err.contains("higher than latest offset"), "{err}");
    // Bad files say where.
    std::fs::write(&file, "t,0,1\nt,zero,1\n").unwrap();
    let (code, _, err) = reset(&store, &["--group", "g", "--from-file", f]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(&file, "t,5,1\n").unwrap();
    let (code, _, err) = reset(&store, &["--group", "g", "--from-file", f]);
    assert_eq!(code, 1);
    assert!(err.contains("partition 5"), "{err}");
    // --from-file brings its own partitions.
    let (code, _, _) = reset(&store, &["--group", "g", "--from-file", f, "--all-topics"]);
    assert_eq!(code, 2);
}

#[test]
fn several_groups_export_with_the_group_and_read_it_back() {
    let store = setup();
    consume_group(&store, "t", "h");
    let (code, out, err) = reset(
        &store,
        &["--all-groups", "--all-topics", "--to-earliest", "--export"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "g,t,0,0\ng,t,1,0\nh,t,0,0\nh,t,1,0\n");
    let file = store.tmp.path().join("plan.csv");
    std::fs::write(&file, "g,t,0,1\nh,t,1,2\n").unwrap();
    let f = file.to_str().unwrap();
    let (code, _, err) = reset(&store, &["--all-groups", "--from-file", f, "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(offsets_of(&store, "g"), [1, 5]);
    assert_eq!(offsets_of(&store, "h"), [5, 2]);
    // A group of the file that was not named is refused.
    let (code, _, err) = reset(&store, &["--group", "g", "--from-file", f]);
    assert_eq!(code, 2);
    assert!(err.contains("'h'"), "{err}");
    // --group is repeatable.
    let (code, _, err) = reset(
        &store,
        &[
            "-g",
            "g",
            "-g",
            "h",
            "--all-topics",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(offsets_of(&store, "g"), [5, 5]);
    assert_eq!(offsets_of(&store, "h"), [5, 5]);
}

#[test]
fn all_topics_means_the_committed_ones_and_topic_partitions_narrow_it() {
    let store = setup();
    store.create_topic("u", 2, &[]);
    produce_numbers(&store, "u", 0, 4);
    let p = plan(&store, &["--group", "g", "--all-topics", "--to-earliest"]);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|r| r.0 == "t"));
    let p = plan(
        &store,
        &[
            "--group",
            "g",
            "--topic",
            "t:1",
            "--topic",
            "u:0,1",
            "--to-earliest",
        ],
    );
    assert_eq!(
        p.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(),
        [("t", 1), ("u", 0), ("u", 1)]
    );
    let (code, _, err) = reset(&store, &["--group", "g", "--topic", "t:7", "--to-earliest"]);
    assert_eq!(code, 1);
    assert!(err.contains("partition 7"), "{err}");
    let (code, _, err) = reset(
        &store,
        &["--group", "g", "--topic", "nope", "--to-earliest"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("'nope' does not exist"), "{err}");
    // --all-topics of a group with no commits selects nothing: an error with a hint.
    let (code, _, err) = reset(
        &store,
        &["--group", "fresh", "--all-topics", "--to-earliest"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no committed offsets") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn a_missing_group_is_created_by_execute_only() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    produce_numbers(&store, "t", 0, 3);
    let p = plan(
        &store,
        &["--group", "new", "--topic", "t", "--to-offset", "1"],
    );
    assert_eq!(p, [("t".into(), 0, None, 1)]);
    assert_eq!(
        json(&store, &["group", "list", "-o", "json"]),
        Value::Array(vec![])
    );
    let (code, _, err) = reset(
        &store,
        &[
            "--group",
            "new",
            "--topic",
            "t",
            "--to-offset",
            "1",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Created consumer group 'new'"), "{err}");
    let v = json(&store, &["group", "describe", "new", "-o", "json"]);
    assert_eq!(v["state"], "Empty");
    assert_eq!(v["partitions"][0]["current_offset"], 1);
    assert_eq!(v["partitions"][0]["lag"], 2);
    // Its first consumer starts there.
    assert_eq!(consume_group(&store, "t", "new"), ["0:1:1", "0:2:2"]);
}

#[test]
fn refused_while_a_member_is_live_accepted_once_it_exits_and_seen_by_the_next_consumer() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    produce_numbers(&store, "t", 0, 6);
    let mut m = member(&store, "t", "g", &["--auto-commit-interval", "100ms"]);
    assert!(wait_until(WAIT, || offsets_of(&store, "g") == [6]));
    for extra in [&[][..], &["--execute"][..]] {
        let mut args = vec!["--group", "g", "--topic", "t", "--to-offset", "2"];
        args.extend_from_slice(extra);
        let (code, out, err) = reset(&store, &args);
        assert_eq!(code, 1, "{extra:?}");
        assert_eq!(out, "");
        assert!(
            err.contains("can only be reset if the group is inactive"),
            "{err}"
        );
        assert!(
            err.contains(&format!("pid {}", m.child.id())),
            "names the member: {err}"
        );
    }
    assert_eq!(offsets_of(&store, "g"), [6]);
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit(WAIT).success());
    let (code, _, err) = reset(
        &store,
        &[
            "--group",
            "g",
            "--topic",
            "t",
            "--to-offset",
            "2",
            "--execute",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(offsets_of(&store, "g"), [2]);
    assert_eq!(
        consume_group(&store, "t", "g"),
        ["0:2:2", "0:3:3", "0:4:4", "0:5:5"]
    );
}

#[test]
fn an_away_static_member_keeps_the_group_active_until_its_session_ends() {
    let store = setup();
    let mut m = member(&store, "t", "g", &["--instance-id", "s1"]);
    // A static member leaving cleanly keeps its lease: it may come back within the session.
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit(WAIT).success());
    let (code, _, err) = reset(&store, &["--group", "g", "--all-topics", "--to-earliest"]);
    assert_eq!(code, 1);
    assert!(err.contains("s1 (static member away"), "{err}");
    assert!(err.contains("session"), "{err}");
    assert!(
        wait_until(WAIT, || reset(
            &store,
            &["--group", "g", "--all-topics", "--to-earliest", "--execute"]
        )
        .0 == 0),
        "still refused after the session timeout"
    );
    assert_eq!(offsets_of(&store, "g"), [0, 0]);
}

#[test]
fn an_expired_member_does_not_block_a_reset_and_is_fenced_by_it() {
    let store = setup();
    let hung = member(&store, "t", "g", &[]);
    hung.signal(libc::SIGSTOP);
    assert!(wait_until(WAIT, || {
        json(
            &store,
            &["group", "describe", "g", "--members", "-o", "json"],
        )["members"][0]["status"]
            == "expired"
    }));
    let (code, _, err) = reset(
        &store,
        &["--group", "g", "--all-topics", "--to-earliest", "--execute"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(offsets_of(&store, "g"), [0, 0]);
    let h = json(
        &store,
        &["group", "describe", "g", "--history", "-o", "json"],
    );
    let last = h["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["trigger"], "timed-out");
    assert_eq!(last["members_after"], serde_json::json!([]));
    hung.signal(libc::SIGCONT);
}

#[test]
fn usage_errors_exit_2() {
    let store = setup();
    for args in [
        vec!["--group", "g", "--topic", "t"],
        vec![
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ],
        vec![
            "--group",
            "g",
            "--topic",
            "t",
            "--to-offset",
            "1",
            "--shift-by",
            "1",
        ],
        vec!["--group", "g", "--to-earliest"],
        vec!["--topic", "t", "--to-earliest"],
        vec![
            "--group",
            "g",
            "--all-groups",
            "--topic",
            "t",
            "--to-earliest",
        ],
        vec![
            "--group",
            "g",
            "--topic",
            "t",
            "--all-topics",
            "--to-earliest",
        ],
        vec![
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--execute",
            "--dry-run",
        ],
        vec![
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--export",
            "-o",
            "json",
        ],
        vec!["--group", "g", "--topic", "t", "--to-offset", "x"],
        vec!["--group", "bad/name", "--topic", "t", "--to-earliest"],
    ] {
        let (code, _, err) = reset(&store, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    assert_eq!(offsets_of(&store, "g"), [5, 5]);
}

#[test]
fn yaml_output_and_all_groups() {
    let store = setup();
    consume_group(&store, "t", "h");
    let (code, out, err) = reset(
        &store,
        &[
            "--all-groups",
            "--topic",
            "t:0",
            "--to-earliest",
            "--execute",
            "-o",
            "yaml",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let y: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(y.as_sequence().unwrap().len(), 2);
    assert_eq!(y[1]["group"], serde_yaml::Value::from("h"));
    assert_eq!(y[1]["prior_offset"], serde_yaml::Value::from(5));
    assert_eq!(y[1]["new_offset"], serde_yaml::Value::from(0));
    assert_eq!(offsets_of(&store, "g"), [0, 5]);
    assert_eq!(offsets_of(&store, "h"), [0, 5]);
}
