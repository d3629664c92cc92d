//! Fault injection with a delivery checker: consumer groups whose members are killed, stopped
//! and started while several producers write, checked for lost, corrupt, reordered and
//! duplicated records (see `common::checker`).
//!
//! Set `SPOOL_SOAK=N` to multiply the record counts for a longer soak run.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::checker::{self, ConsumerRun, ProduceRun};
use common::process::{wait_until, Running};
use common::Store;

const FAST: [&str; 6] = [
    "--heartbeat-interval",
    "200ms",
    "--session-timeout",
    "2s",
    "--auto-commit-interval",
    "100ms",
];

fn soak() -> u32 {
    std::env::var("SPOOL_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Runs `spool produce` once with `values` keyed by themselves; records what was acknowledged.
fn produce_run(store: &Store, topic: &str, values: Vec<String>) -> ProduceRun {
    let input: String = values.iter().map(|v| format!("{v}:{v}\n")).collect();
    let out = store
        .spool_process()
        .args([
            "produce", topic, "-K", ":", "-q", "-o", "json", "--fsync", "never",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run spool produce");
    let mut run = ProduceRun {
        values,
        acknowledged: out.status.success(),
        ranges: Default::default(),
    };
    if run.acknowledged {
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
        for p in summary["partitions"].as_array().unwrap() {
            run.ranges.insert(
                p["partition"].as_i64().unwrap() as i32,
                (
                    p["first_offset"].as_i64().unwrap(),
                    p["last_offset"].as_i64().unwrap(),
                ),
            );
        }
    }
    run
}

fn member(store: &Store, topic: &str) -> Running {
    let mut cmd = store.spool_process();
    cmd.args(["consume", topic, "--group", "g", "-F", "%p %o %v\\n"])
        .args(FAST);
    Running::spawn(cmd)
}

fn consumer_run(m: &Running) -> ConsumerRun {
    ConsumerRun {
        stdout: m.stdout_lines(),
        stderr: m.stderr_text(),
        topic: "t".into(),
    }
}

/// Starts `producers` threads, each producing `per_producer` values in runs of `run_len`,
/// pausing `pace` between runs so that faults land while records flow.
fn start_producers(
    store: &Arc<Store>,
    producers: u32,
    per_producer: u32,
    run_len: u32,
    pace: Duration,
) -> (
    Arc<Mutex<Vec<ProduceRun>>>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let handles = (0..producers)
        .map(|w| {
            let (store, runs) = (store.clone(), runs.clone());
            std::thread::spawn(move || {
                for start in (0..per_producer).step_by(run_len as usize) {
                    let values = (start..(start + run_len).min(per_producer))
                        .map(|i| format!("w{w}-{i}"))
                        .collect();
                    let run = produce_run(&store, "t", values);
                    runs.lock().unwrap().push(run);
                    std::thread::sleep(pace);
                }
            })
        })
        .collect();
    (runs, handles)
}

/// Waits until the members together consumed every acknowledged value.
fn drain(runs: &[ProduceRun], members: &[&Running]) -> bool {
    let acked: usize = runs
        .iter()
        .filter(|r| r.acknowledged)
        .map(|r| r.values.len())
        .sum();
    // A soak run has `soak()` times the records to catch up on.
    wait_until(Duration::from_secs(90 * u64::from(soak())), || {
        let consumed: Vec<ConsumerRun> = members.iter().map(|m| consumer_run(m)).collect();
        let report = checker::check(runs, &consumed);
        report.consumed >= acked
    })
}

/// A group of four whose members are SIGKILLed, SIGSTOPped past the session timeout and
/// resumed, and started, while four producers write 200,000 records.
#[test]
fn group_under_kills_stops_and_joins_loses_nothing() {
    let store = Arc::new(Store::new());
    store.create_topic("t", 8, &[]);
    let total_per_producer = 50_000 * soak();
    let mut live: Vec<Running> = (0..4).map(|_| member(&store, "t")).collect();
    let mut gone: Vec<Running> = Vec::new();
    let (runs, producers) = start_producers(
        &store,
        4,
        total_per_producer,
        1_000,
        Duration::from_millis(100),
    );
    let done = Arc::new(AtomicBool::new(false));
    {
        let done = done.clone();
        let handles = producers;
        std::thread::spawn(move || {
            for h in handles {
                h.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
    }
    let mut step = 0u32;
    let mut stopped: Option<(Running, std::time::Instant)> = None;
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(300));
        step += 1;
        if let Some((m, since)) = stopped.take() {
            if since.elapsed() > Duration::from_millis(2600) {
                m.signal(libc::SIGCONT);
                live.push(m);
            } else {
                stopped = Some((m, since));
            }
        }
        match step % 4 {
            0 if live.len() > 1 => {
                let mut m = live.remove(step as usize % live.len());
                m.signal(libc::SIGKILL);
                m.wait_exit(Duration::from_secs(10));
                gone.push(m);
            }
            1 if live.len() > 1 && stopped.is_none() => {
                let m = live.remove(step as usize % live.len());
                m.signal(libc::SIGSTOP);
                stopped = Some((m, std::time::Instant::now()));
            }
            _ => live.push(member(&store, "t")),
        }
    }
    if let Some((m, _)) = stopped.take() {
        m.signal(libc::SIGCONT);
        live.push(m);
    }
    let runs = runs.lock().unwrap().clone();
    let everyone: Vec<&Running> = live.iter().chain(gone.iter()).collect();
    assert!(drain(&runs, &everyone), "the group did not catch up");
    let consumed: Vec<ConsumerRun> = everyone.iter().map(|m| consumer_run(m)).collect();
    let report = checker::check(&runs, &consumed);
    report.assert_ok(true);
    assert_eq!(report.acknowledged, (4 * total_per_producer) as usize);
}

/// Members that only join and leave cleanly (SIGTERM) hand partitions over after committing:
/// not a single record may be delivered twice.
#[test]
fn clean_joins_and_leaves_deliver_exactly_once() {
    let store = Arc::new(Store::new());
    store.create_topic("t", 6, &[]);
    let mut live: Vec<Running> = (0..2).map(|_| member(&store, "t")).collect();
    let mut gone: Vec<Running> = Vec::new();
    let (runs, producers) =
        start_producers(&store, 2, 10_000 * soak(), 500, Duration::from_millis(50));
    for round in 0..8 {
        std::thread::sleep(Duration::from_millis(250));
        if round % 2 == 0 {
            live.push(member(&store, "t"));
        } else {
            let mut m = live.remove(0);
            m.signal(libc::SIGTERM);
            assert!(
                m.wait_exit(Duration::from_secs(20)).success(),
                "{}",
                m.stderr_text()
            );
            gone.push(m);
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    let runs = runs.lock().unwrap().clone();
    let everyone: Vec<&Running> = live.iter().chain(gone.iter()).collect();
    assert!(drain(&runs, &everyone), "the group did not catch up");
    let consumed: Vec<ConsumerRun> = everyone.iter().map(|m| consumer_run(m)).collect();
    checker::check(&runs, &consumed).assert_ok(false);
}

/// Producers SIGKILLed at random moments while others keep producing to the same partitions:
/// every acknowledged record is there, exactly where its producer said, and nothing else is.
#[test]
fn producers_killed_midway_lose_no_acknowledged_record() {
    let store = Arc::new(Store::new());
    store.create_topic("t", 2, &["--segment-bytes", "4096"]);
    let (runs, steady) = start_producers(&store, 2, 5_000 * soak(), 500, Duration::ZERO);
    let mut killed_runs = Vec::new();
    for i in 0..20u32 {
        let values: Vec<String> = (0..20_000).map(|k| format!("k{i}-{k}")).collect();
        let input: String = values.iter().map(|v| format!("{v}:{v}\n")).collect();
        let mut child = store
            .spool_process()
            .args(["produce", "t", "-K", ":", "-q", "--batch-size", "2KiB"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(input.as_bytes());
        });
        std::thread::sleep(Duration::from_millis(5 + u64::from(i * 7 % 40)));
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let _ = writer.join();
        killed_runs.push(ProduceRun {
            values,
            acknowledged: false,
            ranges: Default::default(),
        });
    }
    for h in steady {
        h.join().unwrap();
    }
    let mut all = runs.lock().unwrap().clone();
    all.extend(killed_runs);
    store
        .spool()
        .args(["topic", "verify", "t"])
        .assert()
        .success();
    let out = store.consume("t", &["-F", "%p %o %v\\n"]);
    let reader = ConsumerRun {
        stdout: common::lines(&out),
        stderr: String::new(),
        topic: "t".into(),
    };
    let report = checker::check(&all, &[reader]);
    report.assert_ok(false);
    // Offsets are contiguous: every partition holds 0..end with no hole.
    for p in 0..2 {
        let offsets: Vec<i64> = common::lines(&out)
            .iter()
            .filter_map(|l| {
                let mut it = l.split(' ');
                (it.next()? == p.to_string()).then(|| it.next()?.parse().ok())?
            })
            .collect();
        assert!(
            offsets.iter().enumerate().all(|(i, o)| *o == i as i64),
            "partition {p} has holes"
        );
    }
}

/// Segments roll every few batches while four producers write: a plain follower and a group
/// each deliver every acknowledged record (a reader that moved on from a segment before it was
/// sealed took the batches appended to it meanwhile for a gap).
#[test]
fn live_readers_over_tiny_segments_miss_nothing() {
    let store = Arc::new(Store::new());
    store.create_topic("t", 2, &["--config", "segment.bytes=1024"]);
    let follower = Running::spawn({
        let mut c = store.spool_process();
        c.args(["consume", "t", "-F", "%p %o %v\\n"]);
        c
    });
    let members: Vec<Running> = (0..2).map(|_| member(&store, "t")).collect();
    let (runs, producers) = start_producers(&store, 4, 1_000 * soak(), 20, Duration::ZERO);
    for p in producers {
        p.join().unwrap();
    }
    let runs = runs.lock().unwrap().clone();
    assert!(
        store.segments("t", 0).len() > 20,
        "the scenario needs many rolls"
    );
    assert!(drain(&runs, &[&follower]), "the follower did not catch up");
    let report = checker::check(&runs, &[consumer_run(&follower)]);
    report.assert_ok(false);
    assert!(
        !follower.stderr_text().contains("deleted"),
        "{}",
        follower.stderr_text()
    );
    let group: Vec<&Running> = members.iter().collect();
    assert!(drain(&runs, &group), "the group did not catch up");
    let consumed: Vec<ConsumerRun> = group.iter().map(|m| consumer_run(m)).collect();
    checker::check(&runs, &consumed).assert_ok(true);
}

/// A third of a group of twelve SIGKILLed at once, twice, while producers write: the group
/// settles and nothing is lost.
#[test]
fn kill_storms_of_a_third_of_the_group_lose_nothing() {
    let store = Arc::new(Store::new());
    store.create_topic("t", 12, &[]);
    let mut live: Vec<Running> = (0..12).map(|_| member(&store, "t")).collect();
    let mut gone: Vec<Running> = Vec::new();
    let (runs, producers) =
        start_producers(&store, 2, 20_000 * soak(), 500, Duration::from_millis(50));
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(700));
        let victims: Vec<Running> = live.drain(..4).collect();
        for m in &victims {
            m.signal(libc::SIGKILL);
        }
        for mut m in victims {
            m.wait_exit(Duration::from_secs(10));
            gone.push(m);
        }
        live.extend((0..4).map(|_| member(&store, "t")));
    }
    for p in producers {
        p.join().unwrap();
    }
    let runs = runs.lock().unwrap().clone();
    let everyone: Vec<&Running> = live.iter().chain(gone.iter()).collect();
    assert!(drain(&runs, &everyone), "the group did not catch up");
    let consumed: Vec<ConsumerRun> = everyone.iter().map(|m| consumer_run(m)).collect();
    let report = checker::check(&runs, &consumed);
    report.assert_ok(true);
    assert_eq!(report.acknowledged, (2 * 20_000 * soak()) as usize);
}

/// `group.yaml` and its previous version removed, or garbled, while members run: the members
/// stop, rejoin and carry on, and no partition goes to a second member while the first may
/// still read it. Everything is consumed and committed before each loss, and records are
/// produced only after it, so any record delivered twice was read by two members at once.
/// (When every member noticed a garbling before any rejoined, all of them used to exit with
/// "group.yaml is not valid": see `group_scale::a_member_whose_group_state_is_garbled_rejoins_and_carries_on`.)
#[test]
fn losing_or_garbling_the_group_state_never_gives_a_partition_to_two_members() {
    let store = Arc::new(Store::new());
    store.create_topic("t", 6, &[]);
    let live: Vec<Running> = (0..4).map(|_| member(&store, "t")).collect();
    let everyone: Vec<&Running> = live.iter().collect();
    let group = store.dir().join("groups/g");
    let mut all_runs = Vec::new();
    for round in 0..4u32 {
        let values: Vec<String> = (0..400).map(|i| format!("r{round}-{i}")).collect();
        all_runs.push(produce_run(&store, "t", values));
        assert!(drain(&all_runs, &everyone), "the group did not catch up");
        let total: i64 = all_runs.iter().map(|r| r.values.len() as i64).sum();
        assert!(
            wait_until(Duration::from_secs(30), || {
                common::committed(&store, "g")
                    .iter()
                    .map(|(_, _, o)| o)
                    .sum::<i64>()
                    == total
            }),
            "the group did not commit what it consumed"
        );
        for name in ["group.yaml", "group.yaml.prev"] {
            let path = group.join(name);
            if round % 2 == 0 {
                let _ = std::fs::remove_file(&path);
            } else {
                std::fs::write(&path, "{{{ garbled: [").unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        for k in 0..5u32 {
            let values: Vec<String> = (0..200).map(|i| format!("r{round}-{k}-{i}")).collect();
            all_runs.push(produce_run(&store, "t", values));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        drain(&all_runs, &everyone),
        "the group did not catch up: {}\n{}",
        std::fs::read_to_string(group.join("group.yaml")).unwrap_or_default(),
        live.iter()
            .map(|m| m.stderr_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let consumed: Vec<ConsumerRun> = everyone.iter().map(|m| consumer_run(m)).collect();
    let report = checker::check(&all_runs, &consumed);
    report.assert_ok(false);
    for m in &live {
        assert!(
            m.stderr_text().contains("removed from group"),
            "a member never noticed the loss:\n{}",
            m.stderr_text()
        );
    }
}
