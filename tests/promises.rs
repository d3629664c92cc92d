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
