//! The README's tour, run: every `$ command` of its ```console blocks, in order, in a fresh
//! store, with its output compared to the lines the README shows below it. So the README
//! cannot drift from the tool.
//!
//! Conventions (also stated in the README's Development section):
//! - the output is stdout and stderr together, as a terminal shows them;
//! - timestamps, epoch milliseconds, topic ids, member-id suffixes, sizes and the store's path
//!   are masked on both sides, trailing spaces are dropped and runs of spaces compare as one;
//! - `…` in the README matches anything within a line, and a line of only `…` any lines;
//! - a block right after `<!-- readme-test: skip ... -->` is not run; one after
//!   `<!-- readme-test: run NAME -->` is replaced by the scripted step NAME below, which does
//!   the same with processes side by side and checks the essential lines.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{wait_until, Running};
use regex::Regex;

enum Block {
    /// Commands with the output the README shows for each.
    Run(Vec<(String, Vec<String>)>),
    /// A scripted equivalent.
    Scripted(String),
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(m) = trimmed
            .strip_prefix("<!-- readme-test:")
            .and_then(|m| m.strip_suffix("-->"))
        {
            marker = Some(m.trim().to_owned());
            continue;
        }
        if trimmed != "```console" {
            if !trimmed.is_empty() {
                marker = None;
            }
            continue;
        }
        let mut body = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push(l.to_owned());
        }
        match marker.take() {
            Some(m) if m.starts_with("skip") => {}
            Some(m) => {
                let name = m
                    .strip_prefix("run ")
                    .unwrap_or_else(|| panic!("unknown readme-test marker {m:?}"));
                out.push(Block::Scripted(name.trim().to_owned()));
            }
            None => {
                let mut commands: Vec<(String, Vec<String>)> = Vec::new();
                for l in body {
                    if let Some(cmd) = l.strip_prefix("$ ") {
                        commands.push((cmd.to_owned(), Vec::new()));
                    } else {
                        commands
                            .last_mut()
                            .unwrap_or_else(|| panic!("output before any `$ ` line: {l:?}"))
                            .1
                            .push(l);
                    }
                }
                out.push(Block::Run(commands));
            }
        }
    }
    out
}

/// Masks what differs from run to run, and evens out spacing.
fn normalize(text: &str) -> String {
    let masks: [(&str, &str); 6] = [
        (r"(in the store at )\S+", "${1}<DIR>"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "<TIME>",
        ),
        (r"\b1\d{12}\b", "<MS>"),
        (r"(TopicId:\s+)\S+", "${1}<TOPIC-ID>"),
        (
            r"\b([A-Za-z0-9._]+(-[A-Za-z0-9._]+)*)-[0-9a-f]{12}\b",
            "${1}-<ID>",
        ),
        (r"\b\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)\b", "<SIZE>"),
    ];
    let mut s = text.to_owned();
    for (pattern, replacement) in masks {
        s = Regex::new(pattern)
            .unwrap()
            .replace_all(&s, replacement)
            .into_owned();
    }
    let spaces = Regex::new(r" {2,}").unwrap();
    s.lines()
        .map(|l| spaces.replace_all(l.trim_end(), " ").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end_matches('\n')
        .to_owned()
}

/// Whether `actual` is what `expected` (README lines, with `…` wildcards) shows.
fn matches(expected: &[String], actual: &str) -> bool {
    let expected = normalize(&expected.join("\n"));
    let mut pattern = String::from("^");
    for (i, line) in expected.lines().enumerate() {
        if line.trim() == "…" {
            pattern.push_str(if i == 0 { r"(?s:.*?)" } else { r"(?s:\n.*?)?" });
            continue;
        }
        if i > 0 {
            pattern.push('\n');
        }
        let parts: Vec<String> = line.split('…').map(regex::escape).collect();
        pattern.push_str(&parts.join(r"[^\n]*"));
    }
    pattern.push('$');
    Regex::new(&pattern).unwrap().is_match(&normalize(actual))
}

struct Tour {
    store: common::Store,
    bin_dir: PathBuf,
}

impl Tour {
    fn new() -> Tour {
        let bin = assert_cmd::cargo::cargo_bin("spool");
        Tour {
            store: common::Store::new(),
            bin_dir: bin.parent().unwrap().to_owned(),
        }
    }

    /// Runs a README command line with bash, stdout and stderr together.
    fn shell(&self, line: &str) -> String {
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("{{ {line}\n}} 2>&1"))
            .current_dir(self.store.tmp.path())
            .env("PATH", path)
            .env("SPOOL_DIR", self.store.dir())
            .env("NO_COLOR", "1")
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bash");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let mut stdout = stdout;
            std::io::Read::read_to_end(&mut stdout, &mut s).unwrap();
            s
        });
        let ok = wait_until(Duration::from_secs(60), || {
            child.try_wait().unwrap().is_some()
        });
        if !ok {
            let _ = child.kill();
            panic!("README command did not finish within 60s: $ {line}");
        }
        String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
    }

    fn spool(&self, args: &[&str]) -> std::process::Output {
        self.store.spool().args(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.spool(args);
        assert!(
            out.status.success(),
            "spool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn member(&self) -> Running {
        let mut cmd = self.store.spool_process();
        cmd.args(["consume", "orders", "--group", "billing"]);
        Running::spawn(cmd)
    }

    /// Member id → partitions of orders it is assigned, from `group describe --members`.
    fn assignment(&self) -> Vec<(String, Vec<i64>)> {
        let v = self.json(&["group", "describe", "billing", "--members", "-o", "json"]);
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] == "alive")
            .map(|m| {
                let mut ps: Vec<i64> = m["assignment"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|tp| tp["partition"].as_i64().unwrap())
                    .collect();
                ps.sort();
                (m["member_id"].as_str().unwrap().to_owned(), ps)
            })
            .collect()
    }

    fn member_id(m: &Running) -> String {
        let text = m.stderr_text();
        let line = text
            .lines()
            .find(|l| l.starts_with("Joined group billing as "))
            .unwrap_or_else(|| panic!("no join line in:\n{text}"));
        line["Joined group billing as ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    }

    /// The README's "consumer group of three terminals" and "member killed" steps.
    fn group_of_three(&self) {
        let t = Duration::from_secs(30);
        // Three members, started one after the other: each join is a rebalance.
        let mut members = Vec::new();
        for n in 1..=3 {
            let m = self.member();
            m.wait_stderr("Joined group billing as", t);
            members.push(m);
            let settled = wait_until(t, || {
                let a = self.assignment();
                a.len() == n && a.iter().map(|(_, p)| p.len()).sum::<usize>() == 3
            });
            assert!(settled, "{n} members never shared the 3 partitions");
        }
        let balanced = wait_until(t, || {
            let a = self.assignment();
            a.len() == 3 && a.iter().all(|(_, p)| p.len() == 1)
        });
        assert!(balanced, "not one partition each: {:?}", self.assignment());
        for m in &members {
            m.wait_stderr("Reading orders/", t);
        }
        let owner_of = |members: &[Running], partition: i64| -> usize {
            let a = self.assignment();
            let id = &a.iter().find(|(_, p)| p.contains(&partition)).unwrap().0;
            members
                .iter()
                .position(|m| &Tour::member_id(m) == id)
                .unwrap()
        };

        // One record per partition: each shows up at the member that owns its partition.
        assert_eq!(
            self.shell(
                "printf 'alice:pen\\ndave:cup\\ncarol:hat\\n' | spool produce orders -K : -q"
            ),
            ""
        );
        for (partition, value) in [(0, "pen"), (1, "cup"), (2, "hat")] {
            let m = &members[owner_of(&members, partition)];
            assert!(
                wait_until(t, || m.stdout_lines() == [value]),
                "the owner of partition {partition} printed {:?}, not [{value:?}]",
                m.stdout_lines()
            );
        }

        // While members live, a reset is refused, naming them.
        let out = self.spool(&[
            "offsets",
            "reset",
            "--group",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("3 live members"), "{err}");
        for m in &members {
            assert!(err.contains(&Tour::member_id(m)), "{err}");
        }
        assert!(err.contains("\nhint: stop the group's consumers"), "{err}");

        // kill -9 the owner of partition 2: another member takes it over at once.
        let victim = owner_of(&members, 2);
        let mut killed = members.remove(victim);
        killed.signal(libc::SIGKILL);
        let _ = killed.wait_exit(t);
        let taken_over = wait_until(Duration::from_secs(10), || {
            let a = self.assignment();
            a.len() == 2
                && a.iter().any(|(_, p)| p.contains(&2))
                && a.iter().map(|(_, p)| p.len()).sum::<usize>() == 3
        });
        assert!(
            taken_over,
            "partition 2 not taken over: {:?}",
            self.assignment()
        );
        let heir = &members[owner_of(&members, 2)];
        heir.wait_stderr("Reading orders/2 from offset", t);
        // At least once: `hat` was printed by the killed member, and again by its heir unless
        // the killed member had committed it.
        let all: Vec<String> = members
            .iter()
            .chain([&killed])
            .flat_map(|m| m.stdout_lines())
            .collect();
        for v in ["pen", "cup", "hat"] {
            assert!(
                all.contains(&v.to_owned()),
                "{v} was never printed: {all:?}"
            );
        }

        // Ctrl-C: each member commits what it printed and leaves.
        for m in &members {
            m.signal(libc::SIGINT);
        }
        for m in &mut members {
            assert!(m.wait_exit(t).success(), "{}", m.stderr_text());
        }
        let v = self.json(&["group", "describe", "billing", "-o", "json"]);
        for p in v["partitions"].as_array().unwrap() {
            assert_eq!(p["lag"], 0, "{p}");
        }
    }
}

#[test]
fn readme_tour_runs_as_shown() {
    let text = readme();
    let blocks = blocks(&text);
    let commands: usize = blocks
        .iter()
        .map(|b| match b {
            Block::Run(c) => c.len(),
            Block::Scripted(_) => 0,
        })
        .sum();
    assert!(
        commands >= 15,
        "only {commands} commands found in the README"
    );
    let tour = Tour::new();
    let mut failures = Vec::new();
    for block in &blocks {
        match block {
            Block::Scripted(name) => match name.as_str() {
                "group-of-three" => tour.group_of_three(),
                other => panic!("no scripted step {other:?} in tests/readme.rs"),
            },
            Block::Run(commands) => {
                for (line, expected) in commands {
                    let actual = tour.shell(line);
                    if !matches(expected, &actual) {
                        failures.push(format!(
                            "$ {line}\n--- README shows:\n{}\n--- spool printed:\n{}",
                            expected.join("\n"),
                            actual.trim_end()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the README's tour differs from what spool does:\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn the_matcher_masks_and_wildcards() {
    let e = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
    assert!(matches(
        &e("Joined group g as spool-consumer-a03111082f67 (generation 1)"),
        "Joined group g as spool-consumer-0f047b69dbf8 (generation 1)\n"
    ));
    assert!(!matches(
        &e("Joined group g as spool-consumer-a03111082f67 (generation 1)"),
        "Joined group g as spool-consumer-0f047b69dbf8 (generation 2)\n"
    ));
    assert!(matches(
        &e("0          0                 3               106 B  1         2026-11-25T00:47:52.447Z"),
        "0          0                 3               99 B   1         2027-01-01T00:00:00.000Z\n"
    ));
    assert!(matches(&e("a …\n…\nz"), "a b c\nx\ny\nz\n"));
    assert!(matches(&e("a\n…\nz"), "a\nz\n"));
    assert!(!matches(&e("a\nb"), "a\nb\nc\n"));
    assert!(matches(&e(""), ""));
}

/// The spool side of every row of "spool for kcat / kafka-console users" is a command line
/// spool accepts (it may fail for want of the topic, never as a usage error).
#[test]
fn the_kafka_habit_table_names_real_spool_commands() {
    let text = readme();
    let section = text
        .split("## spool for kcat / kafka-console users")
        .nth(1)
        .expect("the section for kcat / kafka-console users")
        .split("\n## ")
        .next()
        .unwrap();
    let store = common::Store::new();
    let code = Regex::new(r"`(spool [^`]*)`").unwrap();
    let mut checked = 0;
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let spool_side = row.rsplit(" | ").next().unwrap();
        for c in code.captures_iter(spool_side) {
            let line = c[1].replace("\\\\", "\\");
            // Parse only: clap reads the words in order, so a flag it does not know (or a bad
            // value) fails before the --help at the end is reached.
            let parsed = Command::new(assert_cmd::cargo::cargo_bin("spool"))
                .args(shell_words(&line).into_iter().skip(1))
                .arg("--help")
                .env("SPOOL_DIR", store.dir())
                .output()
                .unwrap();
            assert_eq!(
                parsed.status.code(),
                Some(0),
                "{line}: {}",
                String::from_utf8_lossy(&parsed.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} spool commands in the table");
}

/// Splits a simple shell line into words (single quotes only, as the README uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}
