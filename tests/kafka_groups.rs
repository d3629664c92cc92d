//! Consumer groups on a Kafka cluster (`spool -b`): group consumers through librdkafka, `group
//! list|describe|delete|delete-offsets` and `offsets reset`, against `spool serve` on a free
//! loopback port (a real Kafka-protocol server over a store this test can also read locally),
//! and a smaller set against tansu, a Kafka-compatible broker that is not spool.
//!
//! Where the same command can run on both targets (the served store read locally, and the
//! server through `-b`), the outputs are compared: they must be the same, byte for byte.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use assert_cmd::Command;
use common::checker::{self, ConsumerRun, ProduceRun};
use common::kafka::Cluster;
use common::process::{wait_until, Running};
use common::Store;

/// Exit code, stdout and stderr.
fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run spool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `spool serve` over a store this test also reads directly.
struct Served {
    cluster: Cluster,
}

impl Served {
    fn new(setup: impl FnOnce(&Store)) -> Served {
        let cluster = Cluster::serve();
        setup(cluster.store.as_ref().expect("a served store"));
        Served { cluster }
    }

    fn store(&self) -> &Store {
        self.cluster.store.as_ref().expect("a served store")
    }

    /// `spool -b ... ARGS`.
    fn b(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.cluster.spool();
        cmd.args(args);
        run(cmd)
    }

    /// The same command on the served store directly.
    fn local(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.store().spool();
        cmd.args(args);
        run(cmd)
    }

    /// A `spool -b ... ARGS` member running beside the test.
    fn member(&self, args: &[&str]) -> Running {
        let mut cmd = self.cluster.spool_process();
        cmd.args(args);
        Running::spawn(cmd)
    }

    fn committed(&self, group: &str) -> Vec<(String, i32, i64)> {
        common::committed(self.store(), group)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.cluster.assert_home_untouched();
        }
    }
}

fn keyed(n: usize, prefix: &str) -> String {
    (0..n).map(|i| format!("k{i}:{prefix}{i}\n")).collect()
}

fn values(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.splitn(3, ' ').nth(2).map(str::to_owned))
        .collect()
}

const FORMAT: &str = "%p %o %v\\n";
/// Short timings: members notice each other and dead peers within seconds.
const FAST: [&str; 4] = ["--session-timeout", "6s", "--heartbeat-interval", "300ms"];

#[test]
fn a_member_says_what_it_got_prints_it_and_commits_what_it_printed() {
    let s = Served::new(|store| {
        store.create_topic("t", 3, &[]);
        store.produce("t", keyed(30, "v"), &["-K", ":"]);
    });
    let mut args = vec!["consume", "t", "--group", "g", "-e", "-F", FORMAT];
    args.extend(FAST);
    let (code, out, err) = s.b(&args);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = out.lines().map(str::to_owned).collect();
    let got: BTreeSet<String> = values(&lines).into_iter().collect();
    let all: BTreeSet<String> = (0..30).map(|i| format!("v{i}")).collect();
    assert_eq!(got, all);
    assert_eq!(lines.len(), 30, "{out}");
    assert!(err.contains("Joined group g as "), "{err}");
    assert!(err.contains(": assigned t:0,1,2"), "{err}");
    assert!(err.contains("Reading t/0 from offset 0\n"), "{err}");
    assert!(err.ends_with("Processed 30 records\n"), "{err}");
    // What it printed is committed: the group's offsets are the logs' ends.
    let total: i64 = s.committed("g").iter().map(|c| c.2).sum();
    assert_eq!(total, 30, "{:?}", s.committed("g"));

    // The next member resumes there.
    s.store().produce("t", keyed(3, "w"), &["-K", ":"]);
    let (code, out, err) = s.b(&args);
    assert_eq!(code, 0, "{err}");
    let mut got: Vec<String> = values(&out.lines().map(str::to_owned).collect::<Vec<_>>());
    got.sort();
    assert_eq!(got, ["w0", "w1", "w2"]);
    assert!(err.contains(" (committed)"), "{err}");
}

#[test]
fn records_print_as_the_local_consumer_prints_them() {
    let s = Served::new(|store| {
        store.create_topic("j", 2, &[]);
        store.produce(
            "j",
            "a:1\nb:2\n:empty-key\nc:\n",
            &["-K", ":", "-H", "trace=x", "-H", "flag="],
        );
    });
    for args in [
        vec!["--output", "json"],
        vec!["-F", "%t %p %o %k %v %K %V %h\\n"],
    ] {
        let mut b_args = vec!["consume", "j", "--group", "same", "-e", "-q"];
        b_args.extend(&args);
        let mut l_args = vec!["consume", "j", "-e", "-q"];
        l_args.extend(&args);
        let (code, b_out, err) = s.b(&b_args);
        assert_eq!(code, 0, "{err}");
        let (code, l_out, err) = s.local(&l_args);
        assert_eq!(code, 0, "{err}");
        let mut b_lines: Vec<&str> = b_out.lines().collect();
        let mut l_lines: Vec<&str> = l_out.lines().collect();
        b_lines.sort_unstable();
        l_lines.sort_unstable();
        assert_eq!(b_lines, l_lines);
        // The next format reads the topic again.
        s.b(&["group", "delete", "same"]);
    }
}

#[test]
fn no_commit_reads_without_moving_the_groups_offsets() {
    let s = Served::new(|store| {
        store.create_topic("n", 2, &[]);
        store.produce("n", keyed(10, "v"), &["-K", ":"]);
    });
    let (code, out, err) = s.b(&["consume", "n", "--group", "nc", "-e", "--no-commit"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 10);
    assert!(s.committed("nc").is_empty(), "{:?}", s.committed("nc"));
}

#[test]
fn exec_commits_only_what_the_command_processed() {
    let s = Served::new(|store| {
        store.create_topic("e", 1, &[]);
        let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
        store.produce("e", input, &[]);
    });
    let (code, out, err) = s.b(&[
        "consume",
        "e",
        "--group",
        "x",
        "-e",
        "--exec",
        r#"v=$(cat); [ "$v" = r5 ] && exit 3; echo "$v""#,
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "r0\nr1\nr2\nr3\nr4\n");
    assert!(
        err.contains("--exec command") && err.contains("offset 5"),
        "{err}"
    );
    assert_eq!(s.committed("x"), [("e".to_owned(), 0, 5)]);
    // The record that failed is read again by the next member.
    let (code, out, err) = s.b(&["consume", "e", "--group", "x", "-e", "--exec", "cat; echo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "r5\nr6\nr7\nr8\nr9\n");
    assert_eq!(s.committed("x"), [("e".to_owned(), 0, 10)]);
}

#[test]
fn n_stops_after_n_records_and_commits_exactly_those() {
    let s = Served::new(|store| {
        store.create_topic("c", 1, &[]);
        let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
        store.produce("c", input, &[]);
    });
    let (code, out, err) = s.b(&["consume", "c", "--group", "n", "-n", "4"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "r0\nr1\nr2\nr3\n");
    assert_eq!(s.committed("n"), [("c".to_owned(), 0, 4)]);
    let (code, out, _) = s.b(&["consume", "c", "--group", "n", "-e", "-q"]);
    assert_eq!(code, 0);
    assert_eq!(out, "r4\nr5\nr6\nr7\nr8\nr9\n");
}

#[test]
fn unknown_topics_and_assignors_are_refused_clearly() {
    let s = Served::new(|store| store.create_topic("t", 1, &[]));
    let (code, _, err) = s.b(&["consume", "nope", "--group", "g", "-e"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("topic 'nope' does not exist"), "{err}");
    let (code, _, err) = s.b(&["consume", "t", "--group", "g", "-e", "--assignor", "sticky"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--assignor sticky") && err.contains("cooperative-sticky"),
        "{err}"
    );
    let (code, _, err) = s.b(&[
        "consume",
        "t",
        "--group",
        "g",
        "--session-timeout",
        "10s",
        "--max-poll-interval",
        "5s",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--max-poll-interval"), "{err}");
    let (code, out, err) = s.b(&[
        "consume",
        "t",
        "--group",
        "fresh",
        "--auto-offset-reset",
        "none",
        "-e",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no committed offset for t/0, and --auto-offset-reset is none"),
        "{err}"
    );
}

/// Live members' assignments (from the served store), as (member, partitions).
fn assignments(s: &Served, group: &str) -> Vec<(String, Vec<String>)> {
    let (_, out, _) = s.local(&["group", "describe", group, "--members", "-o", "json"]);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
        return Vec::new();
    };
    v["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|m| m["status"] == "alive")
        .map(|m| {
            (
                m["member_id"].as_str().unwrap_or_default().to_owned(),
                m["owned"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|tp| tp.to_string())
                    .collect(),
            )
        })
        .collect()
}

fn assert_disjoint(owned: &[(String, Vec<String>)]) {
    let mut seen = BTreeSet::new();
    for (member, tps) in owned {
        for tp in tps {
            assert!(
                seen.insert(tp.clone()),
                "{tp} owned twice (by {member}): {owned:?}"
            );
        }
    }
}

/// One `spool -b … produce` run of `values` (as keys and values), for the delivery checker.
fn produce_run(s: &Served, topic: &str, values: Vec<String>) -> ProduceRun {
    let input: String = values.iter().map(|v| format!("{v}:{v}\n")).collect();
    let mut cmd = s.cluster.spool();
    cmd.args(["produce", topic, "-K", ":", "-q", "-o", "json"])
        .write_stdin(input);
    let out = cmd.output().expect("run spool produce");
    let mut run = ProduceRun {
        values,
        acknowledged: out.status.success(),
        ranges: Default::default(),
    };
    assert!(
        run.acknowledged,
        "produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    for p in summary["partitions"].as_array().expect("partitions") {
        run.ranges.insert(
            p["partition"].as_i64().unwrap() as i32,
            (
                p["first_offset"].as_i64().unwrap(),
                p["last_offset"].as_i64().unwrap(),
            ),
        );
    }
    run
}

fn consumer_run(m: &Running, topic: &str) -> ConsumerRun {
    ConsumerRun {
        stdout: m.stdout_lines(),
        stderr: m.stderr_text(),
        topic: topic.to_owned(),
    }
}

#[test]
fn kafka_members_share_partitions_through_kills_and_nothing_is_lost() {
    let s = Served::new(|store| store.create_topic("k", 4, &[]));
    let batch = |name: &str| -> Vec<String> { (0..200).map(|i| format!("{name}{i}")).collect() };
    let mut runs = vec![produce_run(&s, "k", batch("a"))];
    let mut args = vec!["consume", "k", "--group", "kg", "-F", FORMAT];
    args.extend(FAST);
    let mut members: Vec<Running> = (0..3).map(|_| s.member(&args)).collect();
    assert!(
        wait_until(Duration::from_secs(60), || assignments(&s, "kg").len() == 3),
        "three members: {:?}",
        assignments(&s, "kg")
    );
    // Never two live members on one partition, while records flow and members die and join.
    let watch = |s: &Served, for_ms: u64| {
        for _ in 0..for_ms / 50 {
            assert_disjoint(&assignments(s, "kg"));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    runs.push(produce_run(&s, "k", batch("b")));
    watch(&s, 500);
    members[0].signal(libc::SIGKILL);
    let _ = members[0].wait_exit(Duration::from_secs(10));
    runs.push(produce_run(&s, "k", batch("c")));
    members.push(s.member(&args));
    watch(&s, 1000);
    members[1].signal(libc::SIGKILL);
    let _ = members[1].wait_exit(Duration::from_secs(10));
    runs.push(produce_run(&s, "k", batch("d")));
    let all: BTreeSet<String> = runs.iter().flat_map(|r| r.values.clone()).collect();
    let delivered = |members: &[Running]| -> BTreeSet<String> {
        members
            .iter()
            .flat_map(|m| values(&m.stdout_lines()))
            .collect()
    };
    let done = wait_until(Duration::from_secs(90), || {
        assert_disjoint(&assignments(&s, "kg"));
        delivered(&members).is_superset(&all)
    });
    let got = delivered(&members);
    let missing: Vec<&String> = all.difference(&got).take(10).collect();
    assert!(done, "records never delivered: {missing:?}");
    // Clean exits commit what was printed: the lag goes to 0.
    for m in &mut members[2..] {
        m.signal(libc::SIGTERM);
        let status = m.wait_exit(Duration::from_secs(30));
        assert!(status.success(), "{}", m.stderr_text());
    }
    let consumed: Vec<ConsumerRun> = members.iter().map(|m| consumer_run(m, "k")).collect();
    // Duplicates are allowed: two members were killed before committing all they printed.
    checker::check(&runs, &consumed).assert_ok(true);
    let total: i64 = s.committed("kg").iter().map(|c| c.2).sum();
    assert_eq!(total, 800, "{:?}", s.committed("kg"));
}

#[test]
fn revocations_are_printed_as_the_local_consumer_prints_them() {
    let s = Served::new(|store| store.create_topic("r", 2, &[]));
    let mut args = vec!["consume", "r", "--group", "rg", "--assignor", "range"];
    args.extend(FAST);
    let first = s.member(&args);
    first.wait_stderr(": assigned r:0,1", Duration::from_secs(30));
    let second = s.member(&args);
    // Eager: the first gives both up and gets one back, in one line.
    first.wait_stderr("; revoked r:0,1", Duration::from_secs(60));
    second.wait_stderr(": assigned r:", Duration::from_secs(30));
    let text = first.stderr_text();
    let line = text
        .lines()
        .find(|l| l.contains("; revoked r:0,1"))
        .unwrap()
        .to_owned();
    assert!(
        line.starts_with("Generation ") && line.contains(": assigned r:"),
        "{line}"
    );
    assert_disjoint(&assignments(&s, "rg"));
}

#[test]
fn a_kafka_member_and_a_local_member_share_one_eager_group() {
    kafka_and_local_members_share_one_group("range");
}

/// Cooperative: the partitions the local member hands over reach the Kafka member through
/// `spool serve`'s second cooperative round (a Heartbeat answered REBALANCE_IN_PROGRESS).
#[test]
fn a_kafka_member_and_a_local_member_share_one_cooperative_group() {
    kafka_and_local_members_share_one_group("cooperative-sticky");
}

fn kafka_and_local_members_share_one_group(assignor: &str) {
    let s = Served::new(|store| store.create_topic("m", 4, &[]));
    let mut local = s.store().spool_process();
    local
        .args([
            "consume",
            "m",
            "--group",
            "mg",
            "-F",
            FORMAT,
            "--assignor",
            assignor,
        ])
        .args(FAST);
    let local = Running::spawn(local);
    local.wait_stderr("Generation ", Duration::from_secs(30));
    let mut args = vec![
        "consume",
        "m",
        "--group",
        "mg",
        "-F",
        FORMAT,
        "--assignor",
        assignor,
    ];
    args.extend(FAST);
    let remote = s.member(&args);
    assert!(
        wait_until(Duration::from_secs(60), || {
            let a = assignments(&s, "mg");
            a.len() == 2 && a.iter().all(|(_, tps)| tps.len() == 2)
        }),
        "two members with two partitions each: {:?}",
        assignments(&s, "mg")
    );
    assert_disjoint(&assignments(&s, "mg"));
    s.store().produce("m", keyed(200, "v"), &["-K", ":"]);
    let all: BTreeSet<String> = (0..200).map(|i| format!("v{i}")).collect();
    let delivered = || -> BTreeSet<String> {
        values(&local.stdout_lines())
            .into_iter()
            .chain(values(&remote.stdout_lines()))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(60), || delivered().is_superset(&all)),
        "not every record delivered: {} missing; local member printed {} lines:\n{}\nKafka member printed {} lines:\n{}\nmembers: {:?}",
        all.difference(&delivered()).count(),
        local.stdout_lines().len(),
        local.stderr_text(),
        remote.stdout_lines().len(),
        remote.stderr_text(),
        assignments(&s, "mg")
    );
    // Both took part.
    assert!(!local.stdout_lines().is_empty() && !remote.stdout_lines().is_empty());
}

/// Group `g` on topic `t` (2 partitions, 5 records each), all read and committed through `-b`.
fn with_committed_group() -> Served {
    let s = Served::new(|store| {
        store.create_topic("t", 2, &[]);
        let input: String = (0..10).map(|i| format!("{i}\n")).collect();
        store.produce("t", input, &["-p", "0"]);
        store.produce("t", "x\n".repeat(5), &["-p", "1"]);
    });
    let (code, _, err) = s.b(&["consume", "t", "--group", "g", "-e", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        s.committed("g"),
        [("t".to_owned(), 0, 10), ("t".to_owned(), 1, 5)]
    );
    s
}

#[test]
fn group_list_and_describe_show_what_the_local_store_shows() {
    let s = with_committed_group();
    s.store().produce("t", "late\n", &["-p", "0"]);
    for args in [
        vec!["group", "list"],
        vec!["group", "describe", "g"],
        vec!["group", "describe", "g", "-o", "json"],
        vec!["group", "describe", "--all-groups"],
    ] {
        let local = s.local(&args);
        let remote = s.b(&args);
        let strip = |t: &str| -> String {
            // committed_at_ms is the store's own.
            t.lines()
                .filter(|l| !l.contains("committed_at_ms"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(remote.0, local.0, "{args:?}: {}", remote.2);
        assert_eq!(strip(&remote.1), strip(&local.1), "{args:?}");
        assert_eq!(remote.2, local.2, "{args:?}");
    }
    let (_, out, _) = s.b(&["group", "describe", "g", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["partitions"][0]["lag"], 1);
    assert_eq!(v["partitions"][1]["lag"], 0);

    let (code, _, err) = s.b(&["group", "describe", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("consumer group 'nope' does not exist"),
        "{err}"
    );
    let (code, _, err) = s.b(&["group", "describe", "g", "--history"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--history"), "{err}");
}

#[test]
fn members_and_state_of_a_live_group() {
    let s = with_committed_group();
    let mut args = vec![
        "consume",
        "t",
        "--group",
        "g",
        "--client-id",
        "reporter",
        "--assignor",
        "range",
    ];
    args.extend(FAST);
    let member = s.member(&args);
    member.wait_stderr("Reading t/1", Duration::from_secs(30));
    let (code, out, err) = s.b(&["group", "describe", "g", "--members", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{v}");
    assert_eq!(members[0]["client_id"], "reporter");
    assert_eq!(members[0]["partitions"], 2);
    assert_eq!(v["state"], "Stable");
    let (code, out, err) = s.b(&["group", "describe", "g", "--state"]);
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["g", "range", "Stable", "-", "1"], "{out}");
    let (code, out, _) = s.b(&["group", "list"]);
    assert_eq!(code, 0);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["g", "Stable", "1"], "{out}");

    // Deleting a live group, its offsets of a consumed topic, or resetting them is refused.
    let (code, _, err) = s.b(&["group", "delete", "g"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("can only be deleted if it has no live members"),
        "{err}"
    );
    assert!(err.contains("reporter"), "{err}");
    let (code, _, err) = s.b(&["group", "delete-offsets", "g", "--topic", "t"]);
    assert_eq!(code, 1);
    assert!(err.contains("subscribed"), "{err}");
    for execute in [false, true] {
        let mut args = vec![
            "offsets",
            "reset",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ];
        if execute {
            args.push("--execute");
        }
        let (code, _, err) = s.b(&args);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("can only be reset if the group is inactive"),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
    }
    assert_eq!(
        s.committed("g"),
        [("t".to_owned(), 0, 10), ("t".to_owned(), 1, 5)]
    );
}

#[test]
fn delete_and_delete_offsets() {
    let s = with_committed_group();
    let (code, out, err) = s.b(&["group", "delete-offsets", "g", "--topic", "t:1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Successful (was 5)"), "{out}");
    assert_eq!(s.committed("g"), [("t".to_owned(), 0, 10)]);
    let (code, out, err) = s.b(&["group", "delete", "g"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Deletion of requested consumer groups ('g') was successful.\n"
    );
    let (code, _, err) = s.b(&["group", "delete", "g"]);
    assert_eq!(code, 1);
    assert!(err.contains("consumer group 'g' does not exist"), "{err}");
}

#[test]
fn every_reset_mode_plans_as_the_local_store_plans_and_executes() {
    let s = with_committed_group();
    let file = s.store().tmp.path().join("plan.csv");
    std::fs::write(&file, "t,0,3\nt,1,99\n").unwrap();
    let file = file.to_str().unwrap().to_owned();
    let modes: Vec<Vec<&str>> = vec![
        vec!["--topic", "t", "--to-earliest"],
        vec!["--topic", "t", "--to-latest"],
        vec!["--topic", "t", "--to-current"],
        vec!["--topic", "t:0", "--to-offset", "7"],
        vec!["--topic", "t", "--to-offset", "-3"],
        vec!["--all-topics", "--shift-by", "-2"],
        vec!["--all-topics", "--to-datetime", "2000-01-01T00:00:00Z"],
        vec!["--all-topics", "--to-datetime", "2999-01-01T00:00:00Z"],
        vec!["--all-topics", "--by-duration", "1h"],
        vec!["--from-file", &file],
    ];
    for mode in &modes {
        let mut args = vec!["offsets", "reset", "--group", "g"];
        args.extend(mode);
        let local = s.local(&args);
        let remote = s.b(&args);
        assert_eq!(remote, local, "{mode:?}");
        assert_eq!(remote.0, 0, "{mode:?}: {}", remote.2);
        let mut json_args = args.clone();
        json_args.extend(["-o", "json"]);
        assert_eq!(s.b(&json_args), s.local(&json_args), "{mode:?}");
    }
    // Executed through -b: the group's offsets move.
    let mut expected = vec![
        (vec!["--topic", "t", "--to-earliest"], vec![0, 0]),
        (vec!["--topic", "t:0", "--to-offset", "7"], vec![7, 0]),
        (vec!["--all-topics", "--shift-by", "2"], vec![9, 2]),
        (vec!["--topic", "t", "--to-latest"], vec![10, 5]),
    ];
    expected.push((vec!["--from-file", &file], vec![3, 5]));
    for (mode, offsets) in expected {
        let mut args = vec!["offsets", "reset", "--group", "g", "--execute"];
        args.extend(&mode);
        let (code, _, err) = s.b(&args);
        assert_eq!(code, 0, "{mode:?}: {err}");
        assert!(!err.contains("Dry run"), "{err}");
        let got: Vec<i64> = s.committed("g").iter().map(|c| c.2).collect();
        assert_eq!(got, offsets, "{mode:?}");
    }
    // Export and import round trip.
    let (code, csv, err) = s.b(&[
        "offsets",
        "reset",
        "--group",
        "g",
        "--all-topics",
        "--to-earliest",
        "--export",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(csv, "t,0,0\nt,1,0\n");
    let exported = s.store().tmp.path().join("exported.csv");
    std::fs::write(&exported, &csv).unwrap();
    let (code, _, err) = s.b(&[
        "offsets",
        "reset",
        "--group",
        "g",
        "--from-file",
        exported.to_str().unwrap(),
        "--execute",
    ]);
    assert_eq!(code, 0, "{err}");
    let got: Vec<i64> = s.committed("g").iter().map(|c| c.2).collect();
    assert_eq!(got, [0, 0]);
    // A new group is created by a reset, as locally.
    let (code, _, err) = s.b(&[
        "offsets",
        "reset",
        "--group",
        "fresh",
        "--topic",
        "t",
        "--to-latest",
        "--execute",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        s.committed("fresh"),
        [("t".to_owned(), 0, 10), ("t".to_owned(), 1, 5)]
    );
    // Errors: unknown topic, shift without commits.
    let (code, _, err) = s.b(&[
        "offsets",
        "reset",
        "--group",
        "g",
        "--topic",
        "nope",
        "--to-earliest",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("topic 'nope' does not exist"), "{err}");
    let (code, _, err) = s.b(&[
        "offsets",
        "reset",
        "--group",
        "empty",
        "--topic",
        "t",
        "--shift-by",
        "1",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no committed offset to shift"), "{err}");
}

/// Against tansu: a group member reads and commits, describe shows the commits, a reset
/// rewinds and the next member replays. Skipped there: lag and clamping (tansu answers
/// ListOffsets for the log end wrongly), delete-offsets (no OffsetDelete).
#[test]
fn tansu_group_consume_describe_and_reset() {
    let Some(broker) = Cluster::tansu() else {
        return;
    };
    let b = |args: &[&str]| {
        let mut cmd = broker.spool();
        cmd.args(args);
        run(cmd)
    };
    let (code, _, err) = b(&["topic", "create", "tt", "--partitions", "1"]);
    assert_eq!(code, 0, "{err}");
    let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
    broker.produce("tt", input, &[]);
    let (code, out, err) = b(&["consume", "tt", "--group", "tg", "-n", "6"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "r0\nr1\nr2\nr3\nr4\nr5\n");
    let (code, out, err) = b(&["group", "describe", "tg", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["partitions"][0]["current_offset"], 6, "{v}");
    let (code, out, err) = b(&["group", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tg"), "{out}");
    // To the start (tansu's log end is wrong, so the modes that clamp to it are not tried).
    let (code, out, err) = b(&[
        "offsets",
        "reset",
        "--group",
        "tg",
        "--topic",
        "tt",
        "--to-earliest",
        "--execute",
    ]);
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(row, ["tg", "tt", "0", "6", "0"], "{out}");
    let (code, out, err) = b(&["consume", "tt", "--group", "tg", "-n", "3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "r0\nr1\nr2\n");
    let (code, _, err) = b(&["group", "delete", "tg"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b(&["group", "describe", "tg"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn an_unreachable_cluster_is_one_line_within_the_timeout() {
    let home = tempfile::tempdir().unwrap();
    let brokers = format!("127.0.0.1:{}", common::kafka::free_port());
    for args in [
        vec!["group", "list"],
        vec!["group", "describe", "g", "--members"],
        vec!["group", "delete", "g"],
        vec!["group", "delete-offsets", "g", "--topic", "t"],
        vec![
            "offsets",
            "reset",
            "--group",
            "g",
            "--all-topics",
            "--to-earliest",
        ],
        vec!["consume", "t", "--group", "g"],
    ] {
        let started = std::time::Instant::now();
        let mut cmd = Command::cargo_bin("spool").unwrap();
        cmd.env_remove("SPOOL_DIR")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .args(["-b", &brokers, "--cluster-timeout", "1s"])
            .args(&args);
        let (code, out, err) = run(cmd);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "error: cannot reach the Kafka cluster at {brokers} within 1s"
            )),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}

#[test]
fn regex_subscriptions_and_static_members() {
    let s = Served::new(|store| {
        store.create_topic("orders.a", 2, &[]);
        store.create_topic("orders.b", 1, &[]);
        store.create_topic("other", 1, &[]);
        store.produce("orders.a", "x\ny\n", &[]);
        store.produce("orders.b", "z\n", &[]);
        store.produce("other", "no\n", &[]);
    });
    let (code, out, err) = s.b(&["consume", "--regex", "orders\\..*", "--group", "rx", "-e"]);
    assert_eq!(code, 0, "{err}");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["x", "y", "z"]);
    assert!(err.contains("assigned orders.a:0,1;orders.b:0"), "{err}");
    // --instance-id is Kafka's group.instance.id: the member id the group knows it by.
    let (code, _, err) = s.b(&[
        "consume",
        "orders.a",
        "--group",
        "st",
        "--instance-id",
        "inst-1",
        "--session-timeout",
        "6s",
        "-e",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Joined group st as inst-1"), "{err}");
    let (_, out, _) = s.local(&["group", "describe", "st", "--members", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["members"][0]["instance_id"], "inst-1", "{v}");
    assert_eq!(v["members"][0]["session_timeout_ms"], 6000, "{v}");
}
