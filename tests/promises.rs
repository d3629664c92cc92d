//! The core promises under live conditions: no record skipped by a live reader at a segment
//! roll, topics by identity (offsets and producers do not outlive a deleted topic), offsets
//! never reused even after damage, and no output from a member that may no longer own its
//! partition.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{wait_until, Running};
use common::Store;

/// Offsets printed as `%o` lines (or `%p %o`), as a set per partition 0.
fn offsets_printed(lines: &[String]) -> BTreeSet<i64> {
    lines
        .iter()
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect()
}

/// Several producers race over tiny segments while a plain follower and a group member read:
/// each must print every offset. A reader that moved to a newer segment when one read of the
/// current one found nothing took a batch appended to the old one in between for a gap.
#[test]
fn live_readers_print_every_offset_across_segment_rolls() {
    let s = Store::new();
    s.create_topic("t", 1, &["--config", "segment.bytes=1024"]);
    let plain = Running::spawn({
        let mut c = s.spool_process();
        c.args(["consume", "t", "-F", "%o\n"]);
        c
    });
    let member = Running::spawn({
        let mut c = s.spool_process();
        c.args(["consume", "t", "--group", "g", "-F", "%o\n"]);
        c
    });
    member.wait_stderr("Reading t/0", Duration::from_secs(20));

    let deadline = Instant::now() + Duration::from_secs(4);
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = s.spool_process();
            cmd.args(["produce", "t", "-q", "--fsync", "never"]);
            std::thread::spawn(move || {
                let input: String = (1..=20).map(|i| format!("{i}\n")).collect();
                while Instant::now() < deadline {
                    let mut child = {
                        let mut c = std::process::Command::new(cmd.get_program());
                        c.args(cmd.get_args());
                        for (k, v) in cmd.get_envs() {
                            match v {
                                Some(v) => c.env(k, v),
                                None => c.env_remove(k),
                            };
                        }
                        c.stdin(Stdio::piped())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .spawn()
                            .expect("spawn produce")
                    };
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(input.as_bytes())
                        .unwrap();
                    assert!(child.wait().unwrap().success());
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let end = s.describe("t")["partitions"][0]["log_end_offset"]
        .as_i64()
        .expect("log end offset");
    assert!(
        s.segments("t", 0).len() > 20,
        "the test needs many rolls; got {} segments",
        s.segments("t", 0).len()
    );
    let all: BTreeSet<i64> = (0..end).collect();
    for (name, reader) in [("plain", &plain), ("group member", &member)] {
        let done = wait_until(Duration::from_secs(30), || {
            offsets_printed(&reader.stdout_lines()).len() as i64 >= end
        });
        let printed = offsets_printed(&reader.stdout_lines());
        let missing: Vec<_> = all.difference(&printed).take(20).collect();
        assert!(
            done && missing.is_empty(),
            "{name} missed {} of {end} offsets (first: {missing:?}); stderr:\n{}",
            all.difference(&printed).count(),
            reader.stderr_text()
        );
        assert!(
            !reader.stderr_text().contains("deleted"),
            "{name} reported a deletion nobody made:\n{}",
            reader.stderr_text()
        );
    }
}

/// A log cut back by damage (here: half the active segment gone) never hands its offsets out
/// again: the next appender leaves a gap, reported as lost to damage, and the group (committed
/// at 1000) reads the new records instead of skipping them.
#[test]
fn offsets_cut_by_damage_are_never_handed_out_again() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let first: String = (0..1000).map(|i| format!("old{i}\n")).collect();
    s.produce("t", first, &[]);
    s.spool()
        .args(["consume", "t", "--group", "g", "-e", "-q"])
        .assert()
        .success();
    assert_eq!(common::committed(&s, "g"), [("t".to_owned(), 0, 1000)]);
    let log = s.segments("t", 0)[0].clone();
    let len = std::fs::metadata(&log).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);

    let second: String = (0..1000).map(|i| format!("new{i}\n")).collect();
    let out = s
        .spool()
        .args(["produce", "t", "-o", "json"])
        .write_stdin(second)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("were lost to that damage") && stderr.contains("continues at offset 1000"),
        "the producer reports the lost offsets: {stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first_new = summary["partitions"][0]["first_offset"].as_i64();
    assert_eq!(first_new, Some(1000), "{summary}");

    // The group reads every new record.
    let read = s.consume("t", &["--group", "g"]);
    let read = common::lines(&read);
    assert_eq!(
        read.len(),
        1000,
        "the group skipped records: {:?}",
        &read[..5.min(read.len())]
    );
    assert_eq!(read[0], "new0");

    // A plain reader from the start reads what is left and reports the gap as damage.
    let out = s
        .spool()
        .args(["consume", "t", "-e", "-F", "%o %v\n"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lost to damage") && !stderr.contains("retention"),
        "{stderr}"
    );
    let lines = common::lines(&out.stdout);
    assert!(lines.iter().any(|l| l == "1000 new0"));
    for line in &lines {
        let (offset, value) = line.split_once(' ').unwrap();
        let offset: i64 = offset.parse().unwrap();
        assert_eq!(value.starts_with("new"), offset >= 1000, "{line}");
    }

    // verify explains the gap rather than failing on it.
    let out = s.spool().args(["topic", "verify", "t"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("lost to damage"), "{text}");
}

/// `topic verify` works on a store it may not write (a read-only copy, a mount); `--repair`
/// says it needs write access.
#[test]
fn verify_works_on_a_read_only_store() {
    if unsafe { libc::geteuid() } == 0 {
        // root ignores permission bits: make the store unwritable another way, by removing
        // the lock files so verify has nothing it must open for writing, and check that a
        // missing lock file is no error either.
        let s = Store::new();
        s.produce("t", "a\nb\n", &[]);
        std::fs::remove_file(s.partition_dir("t", 0).join(".lock")).unwrap();
        s.spool().args(["topic", "verify", "t"]).assert().success();
    }
    let s = Store::new();
    s.produce("t", "a\nb\n", &[]);
    let ro = Store::new();
    // A read-only bind would need privileges: chmod instead, run as a user it binds.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cp -a {src} {dst} && chmod -R a-w {dst}",
            src = s.dir().display(),
            dst = ro.dir().display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let as_nobody = |args: &[&str]| {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("spool"))
            .args(args)
            .env("SPOOL_DIR", ro.dir())
            .env("NO_COLOR", "1");
        c
    };
    if unsafe { libc::geteuid() } != 0 {
        // Not root: run as ourselves; the store is read-only to us already.
        return check_read_only_verify(s.spool_process(), ro.dir());
    }
    // The temporary directory must be reachable by nobody.
    let mut p = ro.dir();
    while let Some(parent) = p.parent() {
        let _ = std::process::Command::new("chmod")
            .arg("a+x")
            .arg(parent)
            .status();
        p = parent.to_owned();
    }
    let out = as_nobody(&["topic", "verify", "t"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&["topic", "verify", "t", "--repair"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");
}

fn check_read_only_verify(mut spool: std::process::Command, dir: std::path::PathBuf) {
    let out = spool
        .env("SPOOL_DIR", dir)
        .args(["topic", "verify", "t"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Topic `t` with `partitions` partitions and `records` records of about 1 KB.
fn backlog(s: &Store, partitions: u32, records: usize) {
    s.create_topic("t", partitions, &[]);
    let value = "v".repeat(1000);
    let input: String = (0..records).map(|i| format!("{i:05}{value}\n")).collect();
    s.produce("t", input, &["--fsync", "never"]);
}

fn numbers(n: usize) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// Deleting a topic deletes its committed offsets in every group, as Kafka does: a topic
/// created again under the name is read from its start.
#[test]
fn committed_offsets_do_not_outlive_their_topic() {
    let s = Store::new();
    s.produce("t", numbers(5000), &[]);
    assert_eq!(
        common::lines(&s.consume("t", &["--group", "g"])).len(),
        5000
    );
    assert_eq!(
        common::lines(&s.consume("t", &["--group", "other"])).len(),
        5000
    );
    s.spool().args(["topic", "delete", "t"]).assert().success();
    assert!(common::committed(&s, "g").is_empty());
    assert!(common::committed(&s, "other").is_empty());
    s.produce("t", numbers(8000), &[]);
    let read = common::lines(&s.consume("t", &["--group", "g"]));
    assert_eq!(
        read.len(),
        8000,
        "the new topic's first records were skipped"
    );
    assert_eq!(read[0], "1");
}

/// Offsets left by a spool that did not delete them with their topic (no topic id, committed
/// before the topic of that name was created) are ignored with a warning.
#[test]
fn offsets_older_than_their_topic_are_ignored_with_a_warning() {
    let s = Store::new();
    s.produce("t", numbers(10), &[]);
    let group_dir = s.dir().join("groups").join("g");
    std::fs::create_dir_all(&group_dir).unwrap();
    std::fs::write(
        group_dir.join("offsets.yaml"),
        "t:\n  0:\n    offset: 7\n    committed_at_ms: 1000\n",
    )
    .unwrap();
    let out = s
        .spool()
        .args(["consume", "t", "--group", "g", "-e"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(common::lines(&out.stdout).len(), 10);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("earlier topic named t"), "{stderr}");
}

/// A producer whose topic is deleted under it stops with exit 1 and says how far it got; none
/// of its later records land in a topic created again under the name.
#[test]
fn a_producer_whose_topic_is_deleted_stops_and_says_so() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let mut producer = s.spool_process();
    producer
        .args(["produce", "t", "--fsync", "never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = producer.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(numbers(100).as_bytes()).unwrap();
    stdin.flush().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        s.describe("t")["partitions"][0]["log_end_offset"] == 100
    }));
    s.spool().args(["topic", "delete", "t"]).assert().success();
    s.create_topic("t", 1, &[]);
    // The next lines must not land in the new topic.
    let _ = stdin.write_all(numbers(50).as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("topic 't' was deleted"), "{stderr}");
    assert!(
        stderr.contains("100 records"),
        "how many were written before: {stderr}"
    );
    assert_eq!(
        s.describe("t")["partitions"][0]["log_end_offset"],
        0,
        "nothing went into the new topic"
    );
}

/// A following consumer whose topic is deleted stops with a clear message and exit 1.
#[test]
fn a_following_consumer_whose_topic_is_deleted_stops_and_says_so() {
    let s = Store::new();
    s.produce("t", numbers(10), &[]);
    for group in [None, Some("g")] {
        let mut consumer = Running::spawn({
            let mut c = s.spool_process();
            c.args(["consume", "t"]);
            if let Some(g) = group {
                c.args(["--group", g]);
            }
            c
        });
        assert!(wait_until(Duration::from_secs(10), || consumer
            .stdout_lines()
            .len()
            == 10));
        s.spool().args(["topic", "delete", "t"]).assert().success();
        let status = consumer.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1), "{}", consumer.stderr_text());
        assert!(
            consumer.stderr_text().contains("topic 't' was deleted"),
            "{}",
            consumer.stderr_text()
        );
        s.produce("t", numbers(10), &[]);
    }
}

/// A member whose stdout is blocked is removed after --max-poll-interval and another takes
/// its partition; once the pipe drains, the removed member writes nothing more of it (at most
/// the write that was already under way when it was removed).
#[test]
fn a_member_removed_for_blocked_output_prints_nothing_more() {
    let s = Store::new();
    backlog(&s, 1, 20_000);
    let timing = [
        "--heartbeat-interval",
        "100ms",
        "--session-timeout",
        "1s",
        "--max-poll-interval",
        "1s",
    ];
    let mut blocked = s
        .spool_process()
        .args(["consume", "t", "--group", "g", "-q"])
        .args(timing)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads `blocked`'s stdout yet: it fills the pipe and blocks. Another member takes
    // the partition once the blocked one left for exceeding its poll interval, and reads it all.
    std::thread::sleep(Duration::from_millis(500));
    let other = s
        .spool()
        .args(["consume", "t", "--group", "g", "-e", "-q", "-F", "%o\n"])
        .args(timing)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(other.status.success());
    assert_eq!(common::lines(&other.stdout).len(), 20_000);
    // Now drain the blocked member's pipe and see what it printed.
    let mut stdout = blocked.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        use std::io::Read;
        let _ = stdout.read_to_end(&mut all);
        all
    });
    std::thread::sleep(Duration::from_secs(3));
    common::signal(&blocked, libc::SIGTERM);
    let _ = blocked.wait();
    let printed = common::lines(&reader.join().unwrap());
    // At most the one write of up to 256 KiB that was under way when it was removed: about
    // 260 records of 1 KB (and the 64 KiB pipe is part of that write), where the partition
    // has 20,000 and a poll delivers up to 1,000.
    assert!(
        printed.len() <= 400,
        "the removed member printed {} records, most after it lost the partition",
        printed.len()
    );
}

/// A member stopped (SIGSTOP) past its session timeout while reading a backlog loses its
/// partitions to another member; resumed, it prints none of the records it had rendered for
/// them (beyond a write that was already under way): with a template, rendered record by
/// record, and with the plain value, rendered a batch (about 1,000 records here) at once.
#[test]
fn a_member_resumed_after_its_session_expired_prints_nothing_of_lost_partitions() {
    for format in ["%p %o %v\n", "%v\n"] {
        let s = Store::new();
        backlog(&s, 4, 40_000);
        let timing = ["--heartbeat-interval", "100ms", "--session-timeout", "1s"];
        let stopped = Running::spawn({
            let mut c = s.spool_process();
            c.args(["consume", "t", "--group", "g", "-q", "-F", format])
                .args(timing);
            c
        });
        assert!(wait_until(Duration::from_secs(20), || stopped
            .stdout_lines()
            .len()
            >= 1000));
        stopped.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(300));
        let before = stopped.stdout_lines().len();
        let other = s
            .spool()
            .args(["consume", "t", "--group", "g", "-e", "-q", "-F", "%p %o\n"])
            .args(timing)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert!(
            other.status.success(),
            "{}",
            String::from_utf8_lossy(&other.stderr)
        );
        stopped.signal(libc::SIGCONT);
        std::thread::sleep(Duration::from_secs(2));
        let after = stopped.stdout_lines().len() - before;
        assert!(
            after <= 260,
            "{format}: the resumed member printed {after} records of partitions another member had taken"
        );
    }
}

/// Ctrl-C (or SIGTERM) of a producer finishes the batch it is writing, syncs, prints the
/// summary with how far it got, and exits 130; the log has no torn tail.
#[test]
fn an_interrupted_producer_finishes_its_batch_and_says_how_far_it_got() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let s = Store::new();
        s.create_topic("t", 1, &[]);
        let mut child = s
            .spool_process()
            .args(["produce", "t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        use std::io::Write;
        stdin.write_all(numbers(1000).as_bytes()).unwrap();
        stdin.flush().unwrap();
        assert!(wait_until(Duration::from_secs(10), || {
            s.describe("t")["partitions"][0]["log_end_offset"] == 1000
        }));
        common::signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("Produced 1000 records"), "{stderr}");
        assert!(stderr.contains("from record 1001 on"), "{stderr}");
        s.spool().args(["topic", "verify", "t"]).assert().success();
    }
}

/// Durations that cannot work are usage errors naming the range, not a spinning member.
#[test]
fn timing_flags_refuse_zero_and_absurd_values() {
    let s = Store::new();
    s.produce("t", "a\n", &[]);
    for (args, says) in [
        (&["--heartbeat-interval", "0s"][..], "between 10ms and 1h"),
        (&["--max-poll-interval", "0s"][..], "between 1s and 24days"),
        (&["--session-timeout", "0s"][..], "between 100ms and 1h"),
        (&["--auto-commit-interval", "0s"][..], "between 10ms and 1h"),
        (
            &["--heartbeat-interval", "999999h"][..],
            "between 10ms and 1h",
        ),
        (
            &["--session-timeout", "1s", "--heartbeat-interval", "600ms"][..],
            "at least twice --heartbeat-interval",
        ),
        (
            &["--max-poll-interval", "1s", "--heartbeat-interval", "2s"][..],
            "at least --heartbeat-interval",
        ),
    ] {
        s.spool()
            .args(["consume", "t", "--group", "g", "-e"])
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
    s.spool()
        .args(["consume", "t", "--timeout", "0s"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("between 1ms"));
    s.spool()
        .args(["topic", "create", "u", "--retention", "99999999999y"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--retention 99999999999years is too long",
        ));
}

/// A line longer than a record may be is reported as such, not by the size of the buffer that
/// was read when the producer gave up on it.
#[test]
fn an_endless_line_is_reported_as_too_long_with_what_was_read() {
    let s = Store::new();
    let line = vec![b'x'; 8 << 20];
    s.spool()
        .args(["produce", "t"])
        .write_stdin(line)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("line 1 is too large"))
        .stderr(predicates::str::contains(
            "bytes were read without reaching its end",
        ));
}
