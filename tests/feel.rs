//! The feel of the tool (issue 14): a closed stdout, the store a command works on, tables on
//! narrow and unknown terminals, the habits of kcat and Kafka's console tools, and what used to
//! be silently ignored.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use common::Store;
use predicates::prelude::*;

/// The write end of a pipe whose read end is already closed: any write to it fails with EPIPE.
fn closed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two fds we then own.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe");
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe {
        drop(OwnedFd::from_raw_fd(fds[0]));
        OwnedFd::from_raw_fd(fds[1])
    }
}

/// Runs `spool ARGS` with stdout a pipe nobody reads (`| true`) and asserts it exits 0 quietly.
fn assert_quiet_on_closed_stdout(store: &Store, args: &[&str]) {
    let mut child = store
        .spool_process()
        .args(args)
        .stdout(Stdio::from(closed_pipe()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spool");
    // Followers (`consume` without -e, `--watch`) must notice the closed pipe too.
    let exited = common::process::wait_until(std::time::Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait for spool");
    assert!(exited, "spool {args:?} kept running with a closed stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0)
            && !stderr.contains("panicked")
            && !stderr.contains("Broken pipe")
            && !stderr.contains("error:"),
        "spool {args:?} with a closed stdout: {:?}\n{stderr}",
        out.status
    );
}

#[test]
fn every_command_that_prints_exits_0_quietly_when_stdout_is_closed() {
    let s = Store::new();
    s.create_topic("orders", 3, &[]);
    s.produce("orders", "alice:a\nbob:b\ncarol:c\n", &["-K", ":"]);
    s.consume("orders", &["--group", "billing"]);
    let commands: &[&[&str]] = &[
        &["topic", "create", "fresh", "-p", "2"],
        &["topic", "create", "orders", "--if-not-exists"],
        &["topic", "create", "fresh-json", "-o", "json"],
        &["topic", "list"],
        &["topic", "list", "-o", "json"],
        &["topic", "list", "-o", "yaml"],
        &["topic", "describe", "orders"],
        &["topic", "describe", "orders", "-o", "json"],
        &["topic", "describe", "orders", "fresh", "-o", "yaml"],
        &["topic", "alter", "fresh", "--partitions", "3"],
        &["topic", "alter", "fresh", "--config", "retention.ms=60000"],
        &["topic", "verify", "orders"],
        &["topic", "verify", "orders", "-o", "json"],
        &["topic", "prune"],
        &["topic", "prune", "orders", "-o", "json"],
        &["consume", "orders", "-e"],
        &["consume", "orders", "-e", "--output", "json"],
        &["consume", "orders", "-e", "--group", "other"],
        &["consume", "orders"],
        &["consume", "orders", "--group", "follower"],
        &["group", "describe", "billing", "--watch", "1s"],
        &["group", "list"],
        &["group", "list", "-o", "json"],
        &["group", "describe", "billing"],
        &["group", "describe", "billing", "--members"],
        &["group", "describe", "billing", "--state"],
        &["group", "describe", "billing", "-o", "json"],
        &["group", "describe", "--all-groups"],
        &[
            "offsets",
            "reset",
            "--group",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
        ],
        &[
            "offsets",
            "reset",
            "--group",
            "billing",
            "--all-topics",
            "--to-latest",
            "--export",
        ],
        &[
            "offsets",
            "reset",
            "--group",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
        ],
        &["group", "delete-offsets", "billing", "--topic", "orders"],
        &["group", "delete", "other"],
        &["topic", "delete", "fresh"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["--help"],
        &["topic", "--help"],
        &["consume", "-h"],
        &["--version"],
    ];
    for args in commands {
        assert_quiet_on_closed_stdout(&s, args);
    }
    // produce prints its summary on stdout with -o json.
    let out = s
        .spool_process()
        .args(["produce", "orders", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(closed_pipe()))
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"x\n")?;
            child.wait_with_output()
        })
        .expect("run produce");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the records were produced: a closed stdout is no reason to lose them.
    assert!(common::lines(&s.consume("orders", &[])).contains(&"x".to_owned()));
}

#[test]
fn a_store_is_created_only_in_a_missing_or_empty_directory() {
    let s = Store::new();
    // A directory with someone else's files is refused, and nothing is written into it.
    let foreign = s.tmp.path().join("etc");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("passwd"), "root:x:0:0\n").unwrap();
    for args in [
        &["produce", "t"][..],
        &["topic", "create", "t"],
        &["topic", "list"],
        &["consume", "t", "-e", "--group", "g"],
        &["group", "list"],
    ] {
        s.spool()
            .arg("--dir")
            .arg(&foreign)
            .args(args)
            .write_stdin("x\n")
            .assert()
            .code(1)
            .stderr(predicates::str::contains(format!(
                "error: {} is not a spool store (it has no spool.yaml and is not empty)",
                foreign.display()
            )))
            .stderr(predicates::str::contains(
                "hint: spool creates a store only in a missing or empty directory",
            ));
        let names: Vec<_> = std::fs::read_dir(&foreign)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["passwd"], "spool {args:?} wrote into {foreign:?}");
    }
    // Through $SPOOL_DIR too.
    s.spool()
        .env("SPOOL_DIR", &foreign)
        .args(["topic", "create", "t"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("is not a spool store"));
    // A missing directory and an empty one become stores; an existing store stays usable.
    let empty = s.tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for dir in [s.tmp.path().join("missing/deeper"), empty] {
        s.spool()
            .arg("--dir")
            .arg(&dir)
            .args(["produce", "t", "-q"])
            .write_stdin("x\n")
            .assert()
            .success();
        s.spool()
            .arg("--dir")
            .arg(&dir)
            .args(["consume", "t", "-e", "-q"])
            .assert()
            .success()
            .stdout("x\n");
    }
}

#[test]
fn a_store_path_that_is_a_file_is_not_a_directory() {
    let s = Store::new();
    let file = s.tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    for args in [&["topic", "list"][..], &["produce", "t"]] {
        s.spool()
            .env("SPOOL_DIR", &file)
            .args(args)
            .write_stdin("x\n")
            .assert()
            .code(1)
            .stderr(predicates::str::contains(format!(
                "error: the store directory {} is not a directory",
                file.display()
            )))
            .stderr(predicates::str::contains(
                "hint: point --dir or $SPOOL_DIR at a directory",
            ));
    }
}

#[test]
fn an_empty_spool_dir_is_unset() {
    let s = Store::new();
    let data = s.tmp.path().join("data");
    s.spool()
        .env("SPOOL_DIR", "")
        .env("XDG_DATA_HOME", &data)
        .args(["produce", "t", "-q"])
        .write_stdin("x\n")
        .assert()
        .success();
    assert!(data.join("spool").join("spool.yaml").exists());
}

#[test]
fn not_found_errors_name_the_store_that_was_searched() {
    let s = Store::new();
    s.create_topic("orders", 1, &[]);
    let store = s.dir().display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["consume", "nope", "-e"], "topic 'nope' does not exist"),
        (
            &["topic", "describe", "nope"],
            "topic 'nope' does not exist",
        ),
        (&["topic", "delete", "nope"], "topic 'nope' does not exist"),
        (
            &["topic", "alter", "nope", "-p", "2"],
            "topic 'nope' does not exist",
        ),
        (&["topic", "verify", "nope"], "topic 'nope' does not exist"),
        (
            &["produce", "nope", "--no-create"],
            "topic 'nope' does not exist",
        ),
        (
            &["group", "describe", "nope"],
            "consumer group 'nope' does not exist",
        ),
        (
            &["group", "delete", "nope"],
            "consumer group 'nope' does not exist",
        ),
        (
            &["group", "delete-offsets", "nope", "--topic", "orders"],
            "consumer group 'nope' does not exist",
        ),
    ];
    for (args, what) in cases {
        s.spool()
            .args(*args)
            .write_stdin("x\n")
            .assert()
            .code(1)
            .stderr(predicates::str::contains(format!(
                "{what} in the store at {store}"
            )));
    }
}

/// Runs `spool ARGS` in a pseudo-terminal of `columns` columns (0: one that reports no size,
/// as `script` makes without a terminal around it) and returns what it printed.
fn in_terminal(store: &Store, columns: u16, args: &str) -> String {
    let bin = assert_cmd::cargo::cargo_bin("spool");
    let resize = if columns > 0 {
        format!("stty cols {columns} rows 50; ")
    } else {
        "stty cols 0 rows 0; ".to_owned()
    };
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{resize}{} {args}", bin.display()))
        .arg("/dev/null")
        .env("SPOOL_DIR", store.dir())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script(1)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn a_terminal_of_unknown_width_gets_whole_columns() {
    let s = Store::new();
    s.create_topic("orders", 3, &[]);
    let out = in_terminal(&s, 0, "topic list");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("TOPIC"), "{out}");
    assert!(lines[1].starts_with("orders "), "{out}");
}

#[test]
fn timestamps_and_ids_never_wrap_on_a_narrow_terminal() {
    let s = Store::new();
    s.create_topic("orders", 3, &[]);
    s.produce("orders", "a:1\nb:2\nc:3\n", &["-K", ":"]);
    let out = in_terminal(&s, 80, "topic describe orders");
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").unwrap();
    let whole = out
        .lines()
        .filter(|l| time.find_iter(l).count() == 2)
        .count();
    // Three partitions, two of them with records: each row shows both timestamps whole.
    assert!(whole >= 2, "timestamps split:\n{out}");

    let mut member = s.spool_process();
    member.args(["consume", "orders", "--group", "billing"]);
    let member = common::process::Running::spawn(member);
    member.wait_stderr("Reading orders/", std::time::Duration::from_secs(30));
    let id = member
        .stderr_text()
        .lines()
        .find_map(|l| l.strip_prefix("Joined group billing as "))
        .and_then(|l| l.split(' ').next())
        .expect("member id")
        .to_owned();
    for args in ["group describe billing --members", "group describe billing"] {
        let out = in_terminal(&s, 80, args);
        assert!(
            out.lines().any(|l| l.contains(&id)),
            "{args}: {id} split over lines:\n{out}"
        );
    }
    member.signal(libc::SIGINT);
}

#[test]
fn one_corrupt_topic_yaml_does_not_hide_the_other_topics() {
    let s = Store::new();
    s.create_topic("alpha", 1, &[]);
    s.create_topic("broken", 2, &[]);
    s.create_topic("gamma", 3, &[]);
    std::fs::write(
        s.dir().join("topics/broken/topic.yaml"),
        "partitions: [nonsense\n",
    )
    .unwrap();
    let out = s.spool().args(["topic", "list"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines = common::lines(&out.stdout);
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[1].starts_with("alpha "), "{stdout}");
    assert!(lines[2].starts_with("broken (DAMAGED) "), "{stdout}");
    assert!(lines[3].starts_with("gamma "), "{stdout}");
    assert!(
        stderr.contains("error: 1 topic could not be read: broken: ")
            && stderr.contains("topic.yaml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the other topics are listed"),
        "{stderr}"
    );
    // As JSON, the damaged topic carries its error and no numbers.
    let out = s
        .spool()
        .args(["topic", "list", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let topics = v.as_array().unwrap();
    assert_eq!(topics.len(), 3);
    assert_eq!(topics[0]["partitions"], 1);
    assert!(topics[1]["partitions"].is_null());
    assert!(topics[1]["error"].as_str().unwrap().contains("topic.yaml"));
    assert_eq!(topics[2]["partitions"], 3);
}

#[test]
fn topic_commands_take_quiet() {
    let s = Store::new();
    let quiet = |args: &[&str]| {
        s.spool()
            .args(args)
            .arg("-q")
            .assert()
            .success()
            .stdout("")
            .stderr("");
    };
    quiet(&["topic", "list"]);
    quiet(&["topic", "create", "t", "-p", "2"]);
    quiet(&["topic", "create", "t", "--if-not-exists"]);
    quiet(&["topic", "alter", "t", "-p", "3"]);
    quiet(&["topic", "alter", "t", "--config", "retention.ms=60000"]);
    quiet(&["topic", "verify", "t"]);
    quiet(&["topic", "prune", "t"]);
    quiet(&["topic", "delete", "t"]);
}

/// Runs `spool LINE` (split at spaces) and returns (exit code, stderr).
fn run_line(s: &Store, line: &str) -> (Option<i32>, String) {
    let out = s
        .spool()
        .args(line.split(' '))
        .write_stdin("")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kcat_and_console_tool_habits_get_the_spool_command() {
    let s = Store::new();
    s.create_topic("orders", 1, &[]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "-C -t orders -o beginning -e",
            "unexpected argument '-C' (kcat's consumer mode)",
            "`spool consume orders -o beginning -e`",
        ),
        (
            "-P -t orders",
            "'-P' (kcat's producer mode)",
            "`spool produce orders`",
        ),
        (
            "-G billing orders",
            "'-G' (kcat's group consumer)",
            "`spool consume orders --group billing`",
        ),
        ("consume -t orders -e", "'-t'", "`spool consume orders -e`"),
        (
            "consume orders -c 5 -f %k=%s\\n",
            "'-c' (kcat's message count)",
            "`spool consume orders -n 5 -F '%k=%v\\n'`",
        ),
        (
            "consume orders -J",
            "'-J' (kcat's JSON envelope)",
            "`spool consume orders --output json`",
        ),
        (
            "consume --topic orders --from-beginning --property print.key=true",
            "'--topic'",
            "`spool consume orders -o earliest -F '%k\\t%v\\n'`",
        ),
        (
            "consume orders --from-beginning --max-messages 1",
            "'--from-beginning'",
            "`spool consume orders -o earliest -n 1`",
        ),
        (
            "produce orders --property parse.key=true --property key.separator=:",
            "'--property'",
            "`spool produce orders -K :`",
        ),
        (
            "topic produce orders",
            "'produce' is not a `spool topic` command",
            "`spool produce orders`",
        ),
    ];
    for (line, error, hint) in cases {
        let (code, err) = run_line(&s, line);
        assert_eq!(code, Some(2), "spool {line}: {err}");
        let mut lines = err.lines();
        let (e, h) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        assert!(
            e.starts_with("error: ") && e.contains(error),
            "spool {line}: {err}"
        );
        assert!(
            h.starts_with("hint: ") && h.contains(hint),
            "spool {line}: {err}"
        );
        assert!(!err.contains("-- -"), "spool {line}: clap's advice: {err}");
        assert!(!err.contains("prune"), "spool {line}: {err}");
    }
    // Nothing was created or read.
    s.spool()
        .args(["topic", "list", "-o", "json"])
        .assert()
        .stdout(predicates::str::contains("t2").not());
}

#[test]
fn consume_o_json_is_the_offset_with_a_pointer_to_output() {
    let s = Store::new();
    s.create_topic("orders", 1, &[]);
    let (code, err) = run_line(&s, "consume orders -o json");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("`-o` is the offset here (as in kcat); did you mean `--output json`?"),
        "{err}"
    );
    let (code, err) = run_line(&s, "consume orders -o yaml -e");
    assert_eq!(code, Some(2));
    assert!(err.contains("`-o` is the offset here"), "{err}");
}

#[test]
fn negative_numbers_mean_forever_or_say_the_valid_range() {
    let s = Store::new();
    s.create_topic("orders", 2, &[]);
    for (line, says) in [
        (
            "consume orders -n -1 -e",
            "expected a count of records (0 or more)",
        ),
        ("consume orders -p -1 -e", "partitions are numbered from 0"),
        ("produce orders -p -1", "partitions are numbered from 0"),
        (
            "consume orders -p x -e",
            "expected a partition number (0, 1, 2, ...), not \"x\"",
        ),
        (
            "produce orders -p x",
            "expected a partition number (0, 1, 2, ...), not \"x\"",
        ),
        ("topic create r --retention -5", "or -1 (forever)"),
    ] {
        let (code, err) = run_line(&s, line);
        assert_eq!(code, Some(2), "spool {line}: {err}");
        assert!(err.contains(says), "spool {line}: {err}");
        assert!(!err.contains("unexpected argument"), "spool {line}: {err}");
    }
    // retention -1 is Kafka's forever, at creation and when altering.
    s.spool()
        .args([
            "topic",
            "create",
            "r",
            "--retention",
            "-1",
            "--retention-bytes",
            "-1",
        ])
        .assert()
        .success();
    let v = s.describe("r");
    assert_eq!(v["configs"]["retention.ms"], "-1");
    assert_eq!(v["configs"]["retention.bytes"], "-1");
    s.spool()
        .args([
            "topic",
            "alter",
            "r",
            "--retention",
            "7d",
            "--retention-bytes",
            "1KiB",
        ])
        .assert()
        .success();
    let v = s.describe("r");
    assert_eq!(v["configs"]["retention.ms"], "604800000");
    assert_eq!(v["configs"]["retention.bytes"], "1024");
    s.spool()
        .args(["topic", "alter", "r", "--retention", "-1"])
        .assert()
        .success();
    assert_eq!(s.describe("r")["configs"]["retention.ms"], "-1");
}

#[test]
fn a_config_given_twice_is_refused() {
    let s = Store::new();
    for line in [
        "topic create t --config retention.ms=1000 --retention 7d",
        "topic create t --config segment.bytes=1048576 --segment-bytes 2MiB",
    ] {
        let (code, err) = run_line(&s, line);
        assert_eq!(code, Some(2), "spool {line}: {err}");
        assert!(err.contains("both set"), "spool {line}: {err}");
    }
    s.create_topic("t", 1, &[]);
    let (code, err) = run_line(
        &s,
        "topic alter t --config retention.ms=1000 --retention 7d",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--retention and --config retention.ms=... both set retention.ms"),
        "{err}"
    );
}

#[test]
fn consume_regex_reads_matching_topics_and_those_created_later() {
    let s = Store::new();
    s.produce("orders.eu", "a\n", &[]);
    s.produce("orders.us", "b\n", &[]);
    s.produce("other", "c\n", &[]);
    s.produce("xorders.eu", "c\n", &[]);
    // The whole name must match, as Kafka's pattern subscription.
    let out = s
        .spool()
        .args([
            "consume",
            "--regex",
            r"orders\..*",
            "-e",
            "-q",
            "-F",
            "%t %v\n",
        ])
        .output()
        .unwrap();
    assert_eq!(common::lines(&out.stdout), ["orders.eu a", "orders.us b"]);
    let out = s
        .spool()
        .args(["consume", "--include", "orders", "-e"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No topic in the store at"),
        "{out:?}"
    );

    // Following: a topic created later that matches joins, one that does not stays out.
    let mut cmd = s.spool_process();
    cmd.args(["consume", "-r", r"orders\..*", "-F", "%t %v\n"]);
    let follower = common::process::Running::spawn(cmd);
    let t = std::time::Duration::from_secs(20);
    assert!(common::process::wait_until(t, || follower
        .stdout_lines()
        .len()
        == 2));
    s.produce("orders.asia", "d\n", &[]);
    s.produce("notorders", "e\n", &[]);
    s.produce("orders.eu", "f\n", &[]);
    assert!(
        common::process::wait_until(t, || follower.stdout_lines().len() == 4),
        "{:?}",
        follower.stdout_lines()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut lines = follower.stdout_lines();
    lines.sort();
    assert_eq!(
        lines,
        ["orders.asia d", "orders.eu a", "orders.eu f", "orders.us b"]
    );
}

#[test]
fn consume_regex_is_checked() {
    let s = Store::new();
    let (code, err) = run_line(&s, "consume -r x( -e");
    assert_eq!(code, Some(2));
    assert!(err.contains("not a valid regular expression"), "{err}");
    assert!(!err.contains("^(?:"), "{err}");
    let (code, err) = run_line(&s, "consume orders -r orders -e");
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn o_overridden_by_committed_offsets_is_said() {
    let s = Store::new();
    s.produce("orders", "a\nb\n", &[]);
    s.consume("orders", &["--group", "billing"]);
    let out = s
        .spool()
        .args([
            "consume", "orders", "--group", "billing", "-o", "earliest", "-e",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: -o earliest applies only to partitions where group billing has no committed offset")
            && err.contains("`spool offsets reset --group billing --topic orders --to-earliest --execute`"),
        "{err}"
    );
    assert_eq!(err.matches("note:").count(), 1, "{err}");
    // No note where -o did apply, nor without -o.
    for args in [
        &[
            "consume", "orders", "--group", "fresh", "-o", "earliest", "-e",
        ][..],
        &["consume", "orders", "--group", "billing", "-e"],
    ] {
        let out = s.spool().args(args).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("note:"),
            "{args:?}"
        );
    }
}

#[test]
fn produce_conflicts_and_no_ops_are_said() {
    let s = Store::new();
    let (code, err) = run_line(&s, "produce t --encoding base64");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--encoding applies to --input json only"),
        "{err}"
    );
    let (code, err) = run_line(&s, "produce t --batch-size 10GiB");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("a batch is at most 1GiB"), "{err}");
    assert!(
        !s.dir().join("topics/t").exists(),
        "created by a refused command"
    );
    let out = s
        .spool()
        .args(["produce", "t", "--max-message-bytes", "10GiB"])
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: --max-message-bytes 10 GiB is above the topic's max.message.bytes (1 MiB), which applies"),
        "{err}"
    );
    let (code, err) = run_line(&s, "produce t -H noequals");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("expected a header as KEY=VALUE, e.g. -H trace-id=abc")
            && !err.contains("retention"),
        "{err}"
    );
}

#[test]
fn every_name_is_checked_before_anything_is_done() {
    let s = Store::new();
    // produce -p N to a missing topic: refused before the topic is created.
    let (code, err) = run_line(&s, "produce nope2 -p 3");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("topic 'nope2' does not exist"), "{err}");
    assert!(
        err.contains("hint: create it first with `spool topic create nope2 --partitions 4`"),
        "{err}"
    );
    assert!(!s.dir().join("topics/nope2").exists());
    // -p 0 is fine: a created topic has partition 0.
    s.spool()
        .args(["produce", "fresh", "-p", "0", "-q"])
        .write_stdin("x\n")
        .assert()
        .success();
    // topic delete y nonexist: nothing is deleted.
    s.create_topic("y", 1, &[]);
    let (code, err) = run_line(&s, "topic delete y nonexist");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("topic 'nonexist' does not exist"), "{err}");
    assert!(
        s.dir().join("topics/y/topic.yaml").exists(),
        "y was deleted"
    );
    // With --if-exists the missing one is skipped.
    s.spool()
        .args(["topic", "delete", "y", "nonexist", "--if-exists"])
        .assert()
        .success()
        .stdout("Deleted topic y.\n");
    // verify --repair checks every name before repairing any.
    s.create_topic("z", 1, &[]);
    let (code, err) = run_line(&s, "topic verify z nonexist --repair");
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("z/0"), "{err}");
}

#[test]
fn counts_of_one_are_singular() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    s.produce("t", "x\n", &[]);
    s.spool()
        .args(["topic", "verify", "t"])
        .assert()
        .success()
        .stdout("t/0: ok (1 segment, 1 batch, 1 record)\n");
    s.spool()
        .args(["consume", "t", "-e"])
        .assert()
        .stderr("Processed 1 record\n");
    s.spool()
        .args(["topic", "alter", "t", "-p", "1"])
        .assert()
        .stdout("Topic t already has 1 partition.\n");
    let out = s
        .spool()
        .args(["produce", "t"])
        .write_stdin("y\n")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Produced 1 record ") && err.contains("(1 record)"),
        "{err}"
    );
}

#[test]
fn consume_writes_what_produce_reads_with_the_same_delimiter_flags() {
    let s = Store::new();
    s.create_topic("src", 1, &[]);
    s.produce("src", "alice:a b\0bob:c\nd\0", &["-K", ":", "-D", "\\0"]);
    let out = s.consume("src", &["-K", ":", "-D", "\\0"]);
    assert_eq!(out, b"alice:a b\0bob:c\nd\0");
    s.spool()
        .args(["produce", "copy", "-q", "-K", ":", "-D", "\\0"])
        .write_stdin(out)
        .assert()
        .success();
    assert_eq!(
        s.consume("copy", &["-F", "%k=%v|"]),
        s.consume("src", &["-F", "%k=%v|"])
    );
    assert_eq!(s.consume("src", &["-D", ";"]), b"a b;c\nd;");
    let (code, err) = run_line(&s, "consume src -e -D ; -F %v");
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn produce_from_a_pipe_shows_a_spinner_on_a_terminal() {
    let s = Store::new();
    let bin = assert_cmd::cargo::cargo_bin("spool");
    // stdin a pipe that stays open for a second, stderr a terminal.
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "stty cols 100; (printf 'a\\nb\\n'; sleep 1) | {} produce t",
            bin.display()
        ))
        .arg("/dev/null")
        .env("SPOOL_DIR", s.dir())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script(1)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("] 2 records 4 B"),
        "no spinner with records and bytes: {text:?}"
    );
    // Without a terminal: no spinner, only the summary.
    s.spool()
        .args(["produce", "t"])
        .write_stdin("c\n")
        .assert()
        .success()
        .stderr(predicate::str::starts_with("Produced 1 record"));
}

#[test]
fn a_group_subscribes_by_regex_and_topics_created_later_join() {
    let s = Store::new();
    s.produce("orders.eu", "a\n", &[]);
    s.produce("other", "x\n", &[]);
    let t = std::time::Duration::from_secs(30);
    let member = |extra: &[&str]| {
        let mut cmd = s.spool_process();
        cmd.args([
            "consume",
            "--regex",
            r"orders\..*",
            "--group",
            "g",
            "--heartbeat-interval",
            "500ms",
            "-F",
            "%t %v\n",
        ])
        .args(extra);
        common::process::Running::spawn(cmd)
    };
    let m1 = member(&[]);
    assert!(
        common::process::wait_until(t, || m1.stdout_lines() == ["orders.eu a"]),
        "{:?} {}",
        m1.stdout_lines(),
        m1.stderr_text()
    );
    // A topic created later that matches joins the subscription; one that does not, not.
    s.produce("orders.asia", "b\n", &[]);
    s.produce("notorders", "y\n", &[]);
    assert!(
        common::process::wait_until(t, || m1.stdout_lines().len() == 2),
        "{:?} {}",
        m1.stdout_lines(),
        m1.stderr_text()
    );
    assert_eq!(m1.stdout_lines()[1], "orders.asia b");
    // The lease carries the pattern, and group describe shows the matched topics.
    let v = s.json(&["group", "describe", "g", "--members", "-o", "json"]);
    let assigned: Vec<String> = v["members"][0]["assignment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tp| tp["topic"].as_str().unwrap().to_owned())
        .collect();
    assert!(assigned.contains(&"orders.asia".to_owned()), "{v}");
    assert!(
        !assigned.iter().any(|t| t == "other" || t == "notorders"),
        "{v}"
    );
    let leases: Vec<String> = std::fs::read_dir(s.dir().join("groups/g/members"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        leases.iter().any(|l| l.contains(r"pattern: orders\..*")),
        "{leases:?}"
    );
    // A second member with the same pattern shares the two partitions.
    let m2 = member(&[]);
    m2.wait_stderr("Generation", t);
    let shared = common::process::wait_until(t, || {
        let v = s.json(&["group", "describe", "g", "--members", "-o", "json"]);
        let members = v["members"].as_array().unwrap();
        members.len() == 2
            && members
                .iter()
                .all(|m| m["assignment"].as_array().is_some_and(|a| a.len() == 1))
    });
    assert!(shared, "not one partition each");
    m1.signal(libc::SIGINT);
    m2.signal(libc::SIGINT);
}

#[test]
fn free_text_wraps_when_that_makes_a_table_fit() {
    let s = Store::new();
    let topics: Vec<String> = (0..8).map(|i| format!("a-rather-long-topic-{i}")).collect();
    for t in &topics {
        s.produce(t, "x\n", &[]);
    }
    let mut args = vec!["consume"];
    args.extend(topics.iter().map(String::as_str));
    args.extend(["--group", "billing-with-a-long-name", "-e", "-q"]);
    s.spool().args(&args).assert().success();
    let out = in_terminal(&s, 70, "group list");
    assert!(out.lines().all(|l| l.chars().count() <= 70), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("billing-with-a-long-name ")),
        "{out}"
    );
    assert!(out.lines().count() > 3, "TOPICS did not wrap: {out}");
}
