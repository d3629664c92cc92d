//! Consumer groups end to end: several `spool consume --group` processes sharing partitions,
//! joining, leaving, crashing, hanging and coming back.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::process::{wait_until, Running};
use common::Store;
use spool::group::state::{GroupDir, GroupPhase, GroupState};

const FAST: [&str; 4] = ["--heartbeat-interval", "200ms", "--session-timeout", "2s"];
const WAIT: Duration = Duration::from_secs(20);

fn member(store: &Store, topic: &str, group: &str, extra: &[&str]) -> Running {
    let mut cmd = store.spool_process();
    cmd.args(["consume", topic, "--group", group, "-F", "%p %o %v\\n"])
        .args(extra);
    Running::spawn(cmd)
}

fn state(store: &Store, group: &str) -> GroupState {
    let s = common::lib_store(store);
    GroupDir::new(&s, group)
        .unwrap()
        .load_state()
        .unwrap_or_default()
}

/// The group's rebalances, as `group describe --history` shows them.
fn history(store: &Store, group: &str) -> Vec<spool::group::state::RebalanceEvent> {
    let s = common::lib_store(store);
    let dir = GroupDir::new(&s, group).unwrap();
    dir.load_history(&[]).unwrap()
}

/// Partition counts per member when the group is stable with `members` members.
fn stable_counts(store: &Store, group: &str, members: usize) -> Option<Vec<usize>> {
    let s = state(store, group);
    if s.members.len() != members || s.phase() != GroupPhase::Stable {
        return None;
    }
    let mut counts: Vec<usize> = s.members.keys().map(|m| s.owned_by(m).len()).collect();
    counts.sort_unstable();
    Some(counts)
}

fn wait_stable(store: &Store, group: &str, members: usize, expected: &[usize]) {
    let ok = wait_until(WAIT, || {
        stable_counts(store, group, members).as_deref() == Some(expected)
    });
    assert!(
        ok,
        "group never settled at {expected:?}: {:#?}",
        state(store, group)
    );
}

/// Runs `spool ARGS` with fast group timings and expects exit 1 with `needle` on stderr.
fn refused(store: &Store, args: &[&str], needle: &str) {
    store
        .spool()
        .args(args)
        .args(FAST)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(needle));
}

fn produce_numbers(store: &Store, topic: &str, from: u32, to: u32) {
    let input: String = (from..to).map(|i| format!("{i}\n")).collect();
    store.produce(topic, input, &["--partitioner", "round-robin"]);
}

/// (partition, offset) pairs printed by members.
fn deliveries(members: &[&Running]) -> Vec<(i32, i64)> {
    members
        .iter()
        .flat_map(|m| m.stdout_lines())
        .map(|l| {
            let mut it = l.split(' ');
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Committed offsets of a single-topic group: partition to offset.
fn committed(store: &Store, group: &str) -> BTreeMap<i32, i64> {
    common::committed(store, group)
        .into_iter()
        .map(|(_, p, o)| (p, o))
        .collect()
}

#[test]
fn three_members_split_six_partitions_and_a_fourth_joins() {
    let store = Store::new();
    store.create_topic("t", 6, &[]);
    let a = member(&store, "t", "g", &FAST);
    let b = member(&store, "t", "g", &FAST);
    let c = member(&store, "t", "g", &FAST);
    wait_stable(&store, "g", 3, &[2, 2, 2]);
    produce_numbers(&store, "t", 0, 600);
    assert!(wait_until(WAIT, || deliveries(&[&a, &b, &c]).len() >= 600));
    // Every member printed only its own partitions, and every record exactly once.
    let all = deliveries(&[&a, &b, &c]);
    assert_eq!(all.len(), 600);
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 600);
    for m in [&a, &b, &c] {
        let parts: BTreeSet<i32> = deliveries(&[m]).iter().map(|d| d.0).collect();
        assert_eq!(parts.len(), 2, "{parts:?}");
    }
    let d = member(&store, "t", "g", &FAST);
    wait_stable(&store, "g", 4, &[1, 1, 2, 2]);
    produce_numbers(&store, "t", 600, 1200);
    assert!(wait_until(WAIT, || deliveries(&[&a, &b, &c, &d]).len() >= 1200));
    assert!(!deliveries(&[&d]).is_empty(), "the new member got records");
}

#[test]
fn a_killed_member_is_replaced_long_before_the_session_timeout() {
    let store = Store::new();
    store.create_topic("t", 4, &[]);
    // The default 30 s session timeout: a crash must not wait for it.
    let a = member(&store, "t", "g", &["--heartbeat-interval", "1s"]);
    let b = member(&store, "t", "g", &["--heartbeat-interval", "1s"]);
    wait_stable(&store, "g", 2, &[2, 2]);
    let victim = &b;
    victim.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    wait_stable(&store, "g", 1, &[4]);
    let takeover = killed_at.elapsed();
    eprintln!("takeover after SIGKILL: {takeover:?}");
    assert!(takeover < Duration::from_secs(10), "took {takeover:?}");
    produce_numbers(&store, "t", 0, 100);
    assert!(wait_until(WAIT, || deliveries(&[&a]).len() >= 100));
    // The rebalance is appended to history.yaml just after group.yaml is written.
    let last_is = |t| history(&store, "g").last().is_some_and(|e| e.trigger == t);
    assert!(
        wait_until(WAIT, || last_is(spool::group::state::Trigger::Died)),
        "{:#?}",
        history(&store, "g")
    );
}

#[test]
fn a_stopped_member_loses_its_partitions_and_rejoins_when_resumed() {
    let store = Store::new();
    store.create_topic("t", 4, &[]);
    let a = member(&store, "t", "g", &FAST);
    let b = member(&store, "t", "g", &FAST);
    wait_stable(&store, "g", 2, &[2, 2]);
    // Joins are admitted in batches: b may be in the generation before it knows it. Stopped
    // then, it never joined as far as it knows (and rejoins quietly): stop a member.
    b.wait_stderr("Joined group", WAIT);
    let lock_path = store.dir().join("groups/g/.lock-holder");
    let b_holds = format!(".w-{}-", b.child.id());
    let stopped = loop {
        b.signal(libc::SIGSTOP);
        // Stopped outside the group lock (tests/group_scale.rs stops a member inside it).
        let holder = std::fs::read_link(&lock_path).unwrap_or_default();
        if !holder.to_string_lossy().starts_with(&b_holds) {
            break Instant::now();
        }
        b.signal(libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(30));
    };
    wait_stable(&store, "g", 1, &[4]);
    // The session runs from the last heartbeat, at most one interval before the stop.
    assert!(
        stopped.elapsed() >= Duration::from_millis(1800),
        "moved before the session timeout"
    );
    // The rebalance is appended to history.yaml just after group.yaml is written.
    let last_is = |t| history(&store, "g").last().is_some_and(|e| e.trigger == t);
    assert!(
        wait_until(WAIT, || last_is(spool::group::state::Trigger::TimedOut)),
        "{:#?}",
        history(&store, "g")
    );
    produce_numbers(&store, "t", 0, 200);
    assert!(wait_until(WAIT, || deliveries(&[&a]).len() >= 200));
    b.signal(libc::SIGCONT);
    b.wait_stderr("removed from group", WAIT);
    wait_stable(&store, "g", 2, &[2, 2]);
    // The stopped member printed nothing of what the other consumed while it was gone.
    assert!(deliveries(&[&b]).is_empty(), "{:?}", b.stdout_lines());
}

#[test]
fn partitions_added_to_the_topic_are_assigned() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    let a = member(&store, "t", "g", &FAST);
    let _b = member(&store, "t", "g", &FAST);
    wait_stable(&store, "g", 2, &[1, 1]);
    store
        .spool()
        .args(["topic", "alter", "t", "--partitions", "6"])
        .assert()
        .success();
    wait_stable(&store, "g", 2, &[3, 3]);
    // The rebalance is appended to history.yaml just after group.yaml is written.
    let last_is = |t| history(&store, "g").last().is_some_and(|e| e.trigger == t);
    assert!(
        wait_until(WAIT, || last_is(
            spool::group::state::Trigger::PartitionsAdded
        )),
        "{:#?}",
        history(&store, "g")
    );
    drop(a);
}

#[test]
fn a_static_member_restarting_keeps_its_partitions_without_a_rebalance() {
    let store = Store::new();
    store.create_topic("t", 4, &[]);
    let mut a = member(
        &store,
        "t",
        "g",
        &[&FAST[..], &["--instance-id", "one"]].concat(),
    );
    let _b = member(&store, "t", "g", &FAST);
    wait_stable(&store, "g", 2, &[2, 2]);
    let before = state(&store, "g");
    let owned_before = before.owned_by("one");
    a.signal(libc::SIGKILL);
    a.wait_exit(WAIT);
    let a2 = member(
        &store,
        "t",
        "g",
        &[&FAST[..], &["--instance-id", "one"]].concat(),
    );
    a2.wait_stderr("Reading", WAIT);
    wait_stable(&store, "g", 2, &[2, 2]);
    let after = state(&store, "g");
    assert_eq!(after.generation, before.generation, "no rebalance");
    assert_eq!(after.owned_by("one"), owned_before);

    // A second live process with the same instance id is refused.
    store
        .spool()
        .args(["consume", "t", "--group", "g", "--instance-id", "one", "-e"])
        .args(FAST)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("already in use"));
}

#[test]
fn exit_at_end_in_a_group_commits_the_log_end() {
    let store = Store::new();
    store.create_topic("t", 3, &[]);
    produce_numbers(&store, "t", 0, 300);
    let out = store
        .spool()
        .args(["consume", "t", "--group", "g", "-e", "-F", "%v\\n"])
        .args(FAST)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(common::lines(&out.stdout).len(), 300);
    assert_eq!(
        committed(&store, "g"),
        BTreeMap::from([(0, 100), (1, 100), (2, 100)])
    );
    // The next run starts from the commits: nothing left.
    let out = store.consume("t", &["--group", "g"]);
    assert!(out.is_empty());
    // -o applies only where nothing is committed.
    let out = store.consume("t", &["--group", "other", "-o", "-1"]);
    assert_eq!(common::lines(&out).len(), 3);
    let out = store.consume("t", &["--group", "g", "-o", "earliest"]);
    assert!(out.is_empty());
}

#[test]
fn auto_offset_reset_none_and_latest() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    produce_numbers(&store, "t", 0, 10);
    refused(
        &store,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "-e",
            "--auto-offset-reset",
            "none",
        ],
        "no committed offset for t/",
    );
    let out = store.consume("t", &["--group", "g2", "--auto-offset-reset", "latest"]);
    assert!(out.is_empty());
    assert_eq!(committed(&store, "g2"), BTreeMap::from([(0, 5), (1, 5)]));
}

#[test]
fn no_commit_leaves_offsets_alone() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    produce_numbers(&store, "t", 0, 5);
    assert_eq!(
        common::lines(&store.consume("t", &["--group", "g", "--no-commit"])).len(),
        5
    );
    assert!(committed(&store, "g").is_empty());
    assert_eq!(
        common::lines(&store.consume("t", &["--group", "g"])).len(),
        5
    );
}

#[test]
fn exec_commits_only_what_the_command_processed() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    produce_numbers(&store, "t", 0, 10);
    let seen = store.tmp.path().join("seen");
    // The command fails on the record "6": records 0..=5 are processed and committed.
    let cmd = format!(
        "v=$(cat); [ \"$v\" = 6 ] && exit 3; echo \"$SPOOL_PARTITION $SPOOL_OFFSET $v\" >> {}",
        seen.display()
    );
    store
        .spool()
        .args(["consume", "t", "--group", "g", "-e", "--exec", &cmd])
        .args(FAST)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("failed for t/0 offset 6"));
    let lines = common::lines(&common::read(&seen));
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[5], "0 5 5");
    assert_eq!(committed(&store, "g"), BTreeMap::from([(0, 6)]));
}

#[test]
fn members_must_agree_on_the_assignor() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    let a = member(
        &store,
        "t",
        "g",
        &[&FAST[..], &["--assignor", "range"]].concat(),
    );
    a.wait_stderr("Generation", WAIT);
    refused(
        &store,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "-e",
            "--assignor",
            "roundrobin",
        ],
        "uses the range assignor",
    );
}

/// Once every member has left, the group takes the next joiner's assignor, as Kafka's empty
/// group takes the next member's protocol (a joiner with another assignor used to wait for
/// ever: the empty group kept the old one).
#[test]
fn an_empty_group_takes_the_next_members_assignor() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    produce_numbers(&store, "t", 0, 4);
    let out = store.consume(
        "t",
        &[
            &["--group", "g", "--assignor", "cooperative-sticky"],
            &FAST[..],
        ]
        .concat(),
    );
    assert_eq!(common::lines(&out).len(), 4);
    produce_numbers(&store, "t", 4, 6);
    let mut second = store.spool_process();
    second
        .args(["consume", "t", "--group", "g", "-e", "--assignor", "range"])
        .args(FAST);
    let mut second = Running::spawn(second);
    let status = second.wait_exit(WAIT);
    assert!(status.success(), "{}", second.stderr_text());
    assert_eq!(second.stdout_lines().len(), 2, "{}", second.stderr_text());
    assert_eq!(state(&store, "g").protocol.as_deref(), Some("range"));
}

#[test]
fn an_eager_group_splits_partitions_with_range() {
    let store = Store::new();
    store.create_topic("t", 5, &[]);
    let a = member(
        &store,
        "t",
        "g",
        &[&FAST[..], &["--assignor", "range"]].concat(),
    );
    let b = member(
        &store,
        "t",
        "g",
        &[&FAST[..], &["--assignor", "range"]].concat(),
    );
    wait_stable(&store, "g", 2, &[2, 3]);
    produce_numbers(&store, "t", 0, 500);
    assert!(wait_until(WAIT, || deliveries(&[&a, &b]).len() >= 500));
    let distinct: BTreeSet<_> = deliveries(&[&a, &b]).into_iter().collect();
    assert_eq!(distinct.len(), 500);
}

#[test]
fn a_member_whose_stdout_closes_leaves_and_commits() {
    let store = Store::new();
    store.create_topic("t", 1, &[]);
    produce_numbers(&store, "t", 0, 1000);
    let script = format!(
        "{} consume t --group g {} | head -n 3",
        assert_cmd::cargo::cargo_bin("spool").display(),
        FAST.join(" ")
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("SPOOL_DIR", store.dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(common::lines(&out.stdout), vec!["0", "1", "2"]);
    assert!(wait_until(WAIT, || state(&store, "g").members.is_empty()));
    let c = committed(&store, "g");
    assert!(c[&0] >= 3 && c[&0] <= 1000, "{c:?}");
}

/// SIGTERM to every member at once: they leave together (whoever takes the group lock first
/// lets out every member leaving then, in one generation), and each commits what it printed.
#[test]
fn members_stopped_at_once_leave_in_a_few_generations_and_commit_what_they_printed() {
    let store = Store::new();
    let n = 12;
    store.create_topic("t", n as u32, &[]);
    produce_numbers(&store, "t", 0, 1200);
    let mut members: Vec<Running> = (0..n).map(|_| member(&store, "t", "g", &FAST)).collect();
    wait_stable(&store, "g", n, &[1; 12]);
    let refs: Vec<&Running> = members.iter().collect();
    assert!(wait_until(WAIT, || deliveries(&refs).len() >= 1200));
    let before = state(&store, "g").generation;
    for m in &members {
        m.signal(libc::SIGTERM);
    }
    for m in &mut members {
        assert!(m.wait_exit(WAIT).success());
    }
    let after = state(&store, "g");
    assert!(after.members.is_empty(), "{after:#?}");
    let generations = after.generation - before;
    eprintln!("{generations} generations for {n} members leaving at once");
    assert!(
        generations < n as i32 / 2,
        "{generations} generations for {n} members leaving at once: {:#?}",
        history(&store, "g")
    );
    let left: usize = history(&store, "g")
        .iter()
        .filter(|e| e.generation > before)
        .map(|e| e.subjects.len())
        .sum();
    assert_eq!(left, n, "every member left once");
    assert_eq!(
        committed(&store, "g"),
        (0..n as i32).map(|p| (p, 100)).collect()
    );
    let group = store.dir().join("groups/g");
    for dir in ["members", "leaving"] {
        let files: Vec<_> = std::fs::read_dir(group.join(dir)).unwrap().collect();
        assert!(files.is_empty(), "{dir}: {files:?}");
    }
}

/// Members join, leave and are killed while records flow. Afterwards every offset was
/// delivered, and each member's hold of a partition printed consecutive offsets in order.
#[test]
fn churn_delivers_every_offset_in_order() {
    let store = Store::new();
    let partitions = 4;
    let total = 100_000u32;
    store.create_topic("t", partitions, &[]);
    let spawn = || {
        member(
            &store,
            "t",
            "g",
            &[&FAST[..], &["--auto-commit-interval", "100ms"]].concat(),
        )
    };
    let mut finished: Vec<Running> = Vec::new();
    let mut live: Vec<Running> = vec![spawn(), spawn()];
    let chunk = total / 10;
    for round in 0..10 {
        produce_numbers(&store, "t", round * chunk, (round + 1) * chunk);
        match round % 3 {
            0 => live.push(spawn()),
            1 => {
                let mut m = live.remove(0);
                m.signal(libc::SIGKILL);
                m.wait_exit(WAIT);
                finished.push(m);
            }
            _ => {
                let mut m = live.remove(0);
                m.signal(libc::SIGTERM);
                assert!(m.wait_exit(WAIT).success());
                finished.push(m);
            }
        }
        if live.is_empty() {
            live.push(spawn());
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    // Drain: the survivors read to the end.
    let all = |live: &[Running], finished: &[Running]| {
        let refs: Vec<&Running> = live.iter().chain(finished.iter()).collect();
        deliveries(&refs)
    };
    let complete = wait_until(Duration::from_secs(60), || {
        let seen: BTreeSet<(i32, i64)> = all(&live, &finished).into_iter().collect();
        seen.len() == total as usize
    });
    let delivered = all(&live, &finished);
    let distinct: BTreeSet<(i32, i64)> = delivered.iter().copied().collect();
    assert!(
        complete,
        "only {} of {total} offsets delivered",
        distinct.len()
    );
    eprintln!(
        "churn: {} records, {} deliveries, {} duplicates",
        total,
        delivered.len(),
        delivered.len() - distinct.len()
    );
    for m in live.iter().chain(finished.iter()) {
        // Each jump in a member's offsets of a partition must start a new hold of it, which
        // the member announces on stderr ("Reading t/P from offset X").
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        let mut jumps: BTreeMap<i32, usize> = BTreeMap::new();
        for (p, o) in deliveries(&[m]) {
            if let Some(prev) = last.get(&p) {
                if o != prev + 1 {
                    *jumps.entry(p).or_default() += 1;
                }
            }
            last.insert(p, o);
        }
        let stderr = m.stderr_text();
        for (p, n) in jumps {
            let holds = stderr.matches(&format!("Reading t/{p} from")).count();
            assert!(
                n < holds,
                "partition {p}: {n} jumps in {holds} holds:\n{stderr}"
            );
        }
    }
}

#[test]
fn a_member_blocked_on_its_output_leaves_after_the_max_poll_interval() {
    let store = Store::new();
    store.create_topic("t", 2, &[]);
    // Far more than a pipe holds, so the member blocks writing to a stdout nobody reads.
    let big = "x".repeat(1000);
    let input: String = (0..2000).map(|i| format!("{i}{big}\n")).collect();
    store.produce("t", input, &["--partitioner", "round-robin"]);
    let mut blocked = store.spool_process();
    blocked
        .args(["consume", "t", "--group", "g", "--max-poll-interval", "1s"])
        .args(FAST)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut blocked = blocked.spawn().unwrap();
    let _stdout_never_read = blocked.stdout.take();
    assert!(wait_until(WAIT, || state(&store, "g").members.len() == 1));
    let other = member(&store, "t", "g", &FAST);
    let left = wait_until(WAIT, || {
        history(&store, "g")
            .iter()
            .any(|e| e.trigger == spool::group::state::Trigger::PollInterval)
    });
    assert!(left, "{:#?}", history(&store, "g"));
    assert!(wait_until(WAIT, || deliveries(&[&other]).len() >= 1000));
    let _ = blocked.kill();
    let _ = blocked.wait();
}

/// `count` lines of 100 bytes (`{i:07}` and padding), produced from a file as `produce -f`
/// does (batches of 1 MiB, some 10,000 records each) into `partitions` partitions in turn.
fn large_backlog(store: &Store, topic: &str, partitions: u32, count: usize) -> Vec<u8> {
    store.create_topic(topic, partitions, &[]);
    let input: String = (0..count)
        .map(|i| format!("{i:07}{}\n", "x".repeat(92)))
        .collect();
    let file = store.tmp.path().join("input");
    std::fs::write(&file, &input).unwrap();
    store
        .spool()
        .args(["produce", topic, "-q", "--fsync", "never"])
        .args(["--partitioner", "round-robin", "-f"])
        .arg(&file)
        .assert()
        .success();
    input.into_bytes()
}

/// Lag of every partition of `group` by `group describe -o json`.
fn lags(store: &Store, group: &str) -> Vec<i64> {
    store.json(&["group", "describe", group, "-o", "json"])["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .collect()
}

/// A member reading a large backlog (30 MB, polls of many 1 MiB batches written a batch at a
/// time) prints every record once, in order, and commits the end: lag 0 everywhere.
#[test]
fn a_member_prints_a_large_backlog_once_in_order_and_commits_its_end() {
    for partitions in [1, 4] {
        let store = Store::new();
        let input = large_backlog(&store, "t", partitions, 300_000);
        let out = store
            .spool()
            .args(["consume", "t", "--group", "g", "-e"])
            .args(FAST)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("Processed 300000 records"), "{stderr}");
        if partitions == 1 {
            assert!(out.stdout == input, "the output is not the input, in order");
        } else {
            // Each partition's records in its order (as a plain read of the partition gives
            // them), interleaved by the member's polls.
            let printed = common::lines(&out.stdout);
            for p in 0..partitions {
                let own: BTreeSet<String> =
                    common::lines(&store.consume("t", &["-p", &p.to_string()]))
                        .into_iter()
                        .collect();
                assert!(
                    own.len() > 50_000,
                    "partition {p} has {} records",
                    own.len()
                );
                let of_p: Vec<&String> = printed.iter().filter(|l| own.contains(*l)).collect();
                let mut in_order = of_p.clone();
                in_order.sort();
                assert!(of_p == in_order, "partition {p} out of order");
                assert_eq!(of_p.len(), own.len(), "partition {p}");
            }
            let mut sorted = printed;
            sorted.sort();
            assert_eq!(sorted, common::lines(&input), "every record exactly once");
        }
        assert_eq!(
            committed(&store, "g").values().sum::<i64>(),
            300_000,
            "{:?}",
            committed(&store, "g")
        );
        assert_eq!(lags(&store, "g"), vec![0; partitions as usize]);
    }
}

/// A group member reading `topic` into a slow pipe (64 KiB every 5 ms): returns the child and
/// the first `bytes` or more it printed.
fn slowly_read(
    store: &Store,
    topic: &str,
    extra: &[&str],
    bytes: usize,
) -> (std::process::Child, std::process::ChildStdout, Vec<u8>) {
    use std::process::Stdio;
    let mut child = store
        .spool_process()
        .args(["consume", topic, "--group", "g", "-e"])
        .args(FAST)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let printed = common::read_slowly(&mut stdout, bytes);
    (child, stdout, printed)
}

/// SIGTERM while a member prints a large backlog of eight partitions into a slow pipe: it
/// stops within a flush or so (a poll takes a 1 MiB batch of each partition, 8 MiB in all; the
/// signal is looked at every 256 KiB written), exits 0, and commits exactly what it printed,
/// whole lines; a second member of the group prints exactly the rest.
#[test]
fn sigterm_during_a_large_backlog_commits_exactly_what_was_printed() {
    use std::io::Read;
    let store = Store::new();
    let input = large_backlog(&store, "t", 8, 400_000);
    let (child, mut stdout, mut printed) = slowly_read(&store, "t", &[], 1 << 20);
    common::signal(&child, libc::SIGTERM);
    stdout.read_to_end(&mut printed).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert_eq!(printed.len() % 100, 0, "whole lines");
    let first = printed.len() / 100;
    assert!(
        stderr.contains(&format!("Processed {first} records")),
        "{first} printed: {stderr}"
    );
    // 1 MiB read, then at most the pipe (64 KiB), the write under way and the next one
    // (256 KiB each): some 16,000 records.
    assert!(
        first < 25_000,
        "{first} of 400000 records printed; the signal came at about 10,500"
    );
    assert_eq!(
        committed(&store, "g").values().sum::<i64>(),
        first as i64,
        "{:?}",
        committed(&store, "g")
    );
    let rest = store.consume("t", &["--group", "g"]);
    let mut all = common::lines(&printed);
    all.extend(common::lines(&rest));
    all.sort();
    assert!(
        all == common::lines(&input),
        "the two members printed {first} and {} lines, not every record once",
        rest.len() / 100
    );
}

/// The same with JSON lines of one partition, which the member renders ahead on its read-ahead
/// thread (a partition read alone is read ahead eagerly) and writes a rendered chunk at a time
/// (often larger than the room left in the output buffer: written where it is; the helper gets
/// ahead of a slow pipe after some megabytes, hence the 16 MiB before the signal): every record
/// counted was printed and committed, none twice.
#[test]
fn sigterm_during_json_output_commits_exactly_what_was_printed() {
    use std::io::Read;
    let store = Store::new();
    large_backlog(&store, "t", 1, 400_000);
    let json = ["--output", "json"];
    let (child, mut stdout, mut printed) = slowly_read(&store, "t", &json, 16 << 20);
    common::signal(&child, libc::SIGTERM);
    stdout.read_to_end(&mut printed).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let positions = |bytes: &[u8]| -> Vec<(i64, i64)> {
        common::json_lines(bytes)
            .iter()
            .map(|r| {
                (
                    r["partition"].as_i64().unwrap(),
                    r["offset"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let first = positions(&printed);
    assert!(
        stderr.contains(&format!("Processed {} records", first.len())),
        "{} printed: {stderr}",
        first.len()
    );
    assert!(first.len() < 100_000, "{} of 400000 printed", first.len());
    assert_eq!(
        committed(&store, "g").values().sum::<i64>(),
        first.len() as i64,
        "{:?}",
        committed(&store, "g")
    );
    let mut all = first;
    all.extend(positions(
        &store.consume("t", &["--group", "g", "--output", "json"]),
    ));
    let distinct: BTreeSet<(i64, i64)> = all.iter().copied().collect();
    assert_eq!(all.len(), 400_000, "printed in all");
    assert_eq!(distinct.len(), 400_000, "every record once");
}

/// A member printing a large backlog of eight partitions into a slow pipe commits as it goes,
/// never beyond what it printed and never far behind it: its polls end at a write every
/// 100 ms (or auto-commit interval) however many records they may take (up to a million;
/// here 8 MiB of 1 MiB batches), and it commits between polls. Killed with kill -9, it loses
/// about an auto-commit interval of progress, not a poll's.
#[test]
fn a_member_printing_into_a_slow_pipe_commits_as_it_prints() {
    use std::io::Read;
    let store = Store::new();
    large_backlog(&store, "t", 8, 400_000);
    let (mut child, mut stdout, mut printed) =
        slowly_read(&store, "t", &["--auto-commit-interval", "50ms"], 256 << 10);
    let mut buf = vec![0u8; 64 << 10];
    let mut behind = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "ended early");
        printed.extend_from_slice(&buf[..n]);
        let c: i64 = committed(&store, "g").values().sum();
        let lines = (printed.len() / 100) as i64;
        // What is committed was printed (the pipe and a write under way hold a little).
        assert!(c <= lines + 3_000, "{c} committed, {lines} printed");
        behind.push(lines - c);
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let most = behind.iter().copied().max().unwrap();
    assert!(
        most < 30_000,
        "the commits were up to {most} records behind the {} printed",
        printed.len() / 100
    );
}
