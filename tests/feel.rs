//! The feel of the tool (issue 14): a closed stdout, the store a command works on, tables on
//! narrow and unknown terminals, the habits of kcat and Kafka's console tools, and what used to
//! be silently ignored.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use common::Store;

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
    let out = store
        .spool_process()
        .args(args)
        .stdout(Stdio::from(closed_pipe()))
        .stderr(Stdio::piped())
        .output()
        .expect("run spool");
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
