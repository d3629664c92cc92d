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
