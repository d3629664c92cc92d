//! Every option and argument of every subcommand, fed bad values (empty, negative, huge,
//! non-UTF-8, an unknown word): spool exits 1 or 2 with an `error:` line, or accepts the value
//! (exit 0), and never panics. The options come from walking the clap definitions, so a new
//! option is covered without touching this file; a new subcommand needs a line in `base`.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{ArgAction, CommandFactory};

/// A valid invocation of a subcommand, into which one bad value is put.
struct Base {
    /// Positional values, in order.
    positionals: Vec<&'static str>,
    /// Options, each with its values.
    options: Vec<Vec<&'static str>>,
    stdin: &'static [u8],
}

fn base(path: &str, heading: Option<&str>) -> Base {
    let b = |positionals: &[&'static str], options: &[&[&'static str]]| Base {
        positionals: positionals.to_vec(),
        options: options.iter().map(|o| o.to_vec()).collect(),
        stdin: b"",
    };
    match path {
        "topic create" => b(&["fresh"], &[]),
        "topic list" => b(&[], &[]),
        "topic describe" | "topic delete" | "topic verify" | "topic prune" => b(&["t"], &[]),
        "topic alter" => b(&["t"], &[&["--partitions", "3"]]),
        "produce" => Base {
            stdin: b"k:v\n",
            ..b(&["t"], &[])
        },
        // Short sessions: a static member (--instance-id) of an earlier run holds its
        // partitions for its session timeout after it exits, and -e waits for them.
        "consume" if heading == Some("Consumer group") => b(
            &["t"],
            &[
                &["-e"],
                &["-g", "g"],
                &["--session-timeout", "1s"],
                &["--heartbeat-interval", "100ms"],
            ],
        ),
        "consume" => b(&["t"], &[&["-e"]]),
        "group list" => b(&[], &[]),
        "group describe" | "group delete" => b(&["g"], &[]),
        "group delete-offsets" => b(&["g"], &[&["--topic", "t"]]),
        "offsets reset" => b(
            &[],
            &[&["--group", "g"], &["--topic", "t"], &["--to-earliest"]],
        ),
        "completions" => b(&["bash"], &[]),
        // A server runs until stopped: an address nobody can bind makes each run end at once,
        // after every other option was parsed (and a bad --listen is the option under test).
        "serve" => b(&[], &[&["--listen", "256.0.0.1:0"]]),
        other => panic!("no base invocation for `spool {other}`: add one to tests/bad_input.rs"),
    }
}

/// Options of the base that cannot go with `arg` (exclusive groups the walk cannot see).
fn drops(path: &str, long: Option<&str>) -> &'static [&'static str] {
    match (path, long) {
        ("offsets reset", Some("from-file")) => &["--to-earliest", "--topic"],
        ("offsets reset", Some(l))
            if l.starts_with("to-") || l == "shift-by" || l == "by-duration" =>
        {
            &["--to-earliest"]
        }
        _ => &[],
    }
}

fn bad_values() -> Vec<OsString> {
    vec![
        OsString::new(),
        "-1".into(),
        "-9223372036854775809".into(),
        "99999999999999999999999999".into(),
        OsStr::from_bytes(b"\xff\xfe\x80").to_owned(),
        "definitely-not-valid".into(),
        "x".repeat(300).into(),
    ]
}

/// A store with topic `t` (2 partitions, 3 records) and group `g` that has committed offsets.
fn fixture() -> common::Store {
    let store = common::Store::new();
    store.create_topic("t", 2, &[]);
    store.produce("t", "a:1\nb:2\nc:3\n", &["-K", ":"]);
    store
        .spool()
        .args(["consume", "t", "-g", "g", "-e", "-q"])
        .assert()
        .success();
    store
}

struct Outcome {
    line: String,
    code: Option<i32>,
    problem: Option<String>,
}

fn run(store: &common::Store, args: &[OsString], stdin: &[u8]) -> Outcome {
    let line = format!(
        "spool {}",
        args.iter()
            .map(|a| format!("{:?}", a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("spool"))
        .args(args)
        .current_dir(store.tmp.path())
        .env("SPOOL_DIR", store.dir())
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spool");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome {
                line,
                code: None,
                problem: Some("did not exit within 20s".into()),
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let problem = if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        Some(format!("panicked:\n{stderr}"))
    } else {
        match out.status.code() {
            None => Some(format!("killed by a signal ({:?})", out.status)),
            Some(0) => None,
            Some(1 | 2) if stderr.lines().any(|l| l.starts_with("error:")) => None,
            Some(1 | 2) => Some(format!("no `error:` line:\n{stderr}")),
            Some(code) => Some(format!("exit {code}:\n{stderr}")),
        }
    };
    if std::env::var_os("SPOOL_BAD_INPUT_LOG").is_some() {
        // For reviewing what each bad value gets: `SPOOL_BAD_INPUT_LOG=1 cargo test --test
        // bad_input -- --nocapture`.
        eprintln!(
            "{line} => {:?} {}",
            out.status.code(),
            stderr.lines().next().unwrap_or("")
        );
    }
    Outcome {
        line,
        code: out.status.code(),
        problem,
    }
}

/// Every leaf subcommand as (path words, clap command).
fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    if subs.is_empty() {
        out.push((path, cmd.clone()));
        return;
    }
    for s in subs {
        let mut p = path.clone();
        p.push(s.get_name().to_owned());
        leaves(s, p, out);
    }
}

#[test]
fn bad_values_for_every_option_never_panic() {
    let mut root = spool::cli::Cli::command();
    root.build();
    let mut all = Vec::new();
    leaves(&root, Vec::new(), &mut all);

    // One thread per subcommand, each with its own store.
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .iter()
            .map(|(path, cmd)| scope.spawn(move || check_command(path, cmd)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs: usize = results.iter().map(|r| r.0).sum();
    let problems: Vec<String> = results.into_iter().flat_map(|r| r.1).collect();
    assert!(runs > 300, "only {runs} runs: is the walk broken?");
    assert!(
        problems.is_empty(),
        "{} of {runs} runs went wrong:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

fn check_command(path: &[String], cmd: &clap::Command) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut runs = 0;
    {
        let path_str = path.join(" ");
        let store = fixture();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let long = arg.get_long();
            let takes_value = arg.get_num_args().is_some_and(|r| r.takes_values());
            let b = base(&path_str, arg.get_help_heading());
            let flag = match (long, arg.get_short()) {
                (Some(l), _) => Some(format!("--{l}")),
                (None, Some(s)) => Some(format!("-{s}")),
                (None, None) => None,
            };
            let drop = drops(&path_str, long);
            let assemble = |value: Option<&OsString>, as_flag_value: bool| -> Vec<OsString> {
                let mut args: Vec<OsString> = path.iter().map(OsString::from).collect();
                for (i, p) in b.positionals.iter().enumerate() {
                    let replaced = arg.is_positional() && arg.get_index() == Some(i + 1);
                    match (replaced, value) {
                        (true, Some(v)) => args.push(v.clone()),
                        _ => args.push(p.into()),
                    }
                }
                if arg.is_positional() && arg.get_index().unwrap_or(0) > b.positionals.len() {
                    if let Some(v) = value {
                        args.push(v.clone());
                    }
                }
                for o in &b.options {
                    let same = flag.as_deref() == Some(o[0])
                        || arg.get_short().is_some_and(|s| o[0] == format!("-{s}"));
                    if same || drop.contains(&o[0]) {
                        continue;
                    }
                    args.extend(o.iter().map(OsString::from));
                }
                if let (Some(f), false) = (&flag, arg.is_positional()) {
                    match (value, as_flag_value) {
                        (Some(v), true) => {
                            let mut joined = OsString::from(format!("{f}="));
                            joined.push(v);
                            args.push(joined);
                        }
                        (Some(v), false) => {
                            args.push(f.into());
                            args.push(v.clone());
                        }
                        (None, _) => args.push(f.into()),
                    }
                }
                args
            };
            if takes_value || arg.is_positional() {
                for v in bad_values() {
                    // `--opt VALUE`, and `--opt=VALUE` so values that look like flags reach the
                    // option's parser too.
                    for joined in [false, true] {
                        if joined && (arg.is_positional() || long.is_none()) {
                            continue;
                        }
                        let outcome = run(&store, &assemble(Some(&v), joined), b.stdin);
                        runs += 1;
                        if let Some(p) = outcome.problem {
                            problems.push(format!("{}: {p}", outcome.line));
                        } else if !arg.get_possible_values().is_empty()
                            && v == "definitely-not-valid"
                            && outcome.code != Some(2)
                        {
                            problems.push(format!(
                                "{}: an unknown value of an enum gave {:?}, not 2",
                                outcome.line, outcome.code
                            ));
                        }
                    }
                }
            } else if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::Count) {
                // A flag given a value is a usage error.
                if let Some(l) = long {
                    let mut args = assemble(None, false);
                    args.pop();
                    args.push(format!("--{l}=yes").into());
                    let out = Command::new(assert_cmd::cargo::cargo_bin("spool"))
                        .args(&args)
                        .current_dir(store.tmp.path())
                        .env("SPOOL_DIR", store.dir())
                        .env("NO_COLOR", "1")
                        .stdin(Stdio::null())
                        .output()
                        .unwrap();
                    runs += 1;
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    if out.status.code() != Some(2) || !stderr.starts_with("error:") {
                        problems.push(format!(
                            "spool {:?}: expected exit 2 with `error:`, got {:?}:\n{stderr}",
                            args, out.status
                        ));
                    }
                }
            }
        }
    }
    (runs, problems)
}

/// Enum options refuse an unknown value with exit 2, naming the possible values.
#[test]
fn unknown_enum_values_are_usage_errors() {
    let store = fixture();
    for args in [
        &["topic", "list", "-o", "xml"][..],
        &["produce", "t", "--input", "csv"],
        &["produce", "t", "--fsync", "sometimes"],
        &["produce", "t", "--partitioner", "hash"],
        &["consume", "t", "-e", "--output", "xml"],
        &["consume", "t", "-e", "--encoding", "rot13"],
        &["consume", "t", "-e", "-g", "g", "--assignor", "fair"],
        &[
            "consume",
            "t",
            "-e",
            "-g",
            "g",
            "--auto-offset-reset",
            "middle",
        ],
        &["completions", "tcsh"],
    ] {
        let out = store.spool().args(args).write_stdin("").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "spool {args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "spool {args:?}: {stderr}");
        assert!(
            stderr.contains("possible values") || stderr.contains("expected"),
            "spool {args:?} names no possible values: {stderr}"
        );
    }
}

/// Unknown names get a hint with the close names in the store, or the next step.
#[test]
fn unknown_names_get_did_you_mean_hints() {
    let store = fixture();
    store.create_topic("orders", 1, &[]);
    let run = |args: &[&str]| {
        let out = store.spool().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["consume", "ordrs", "-e"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: topic 'ordrs' does not exist in the store at {}\nhint: did you mean 'orders'?",
            store.dir().display()
        )),
        "{err}"
    );
    let (code, err) = run(&["topic", "describe", "nothing-like-it"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("hint: create it with `spool topic create nothing-like-it`"),
        "{err}"
    );
    for args in [&["group", "describe", "h"][..], &["group", "delete", "h"]] {
        let (code, err) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "error: consumer group 'h' does not exist in the store at {}\nhint: did you mean 'g'?",
                store.dir().display()
            )),
            "{args:?}: {err}"
        );
    }
    let (code, err) = run(&["consume", "t", "-p", "7", "-e"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("hint: `spool topic describe t` lists its partitions"),
        "{err}"
    );
    // Bad names are usage errors.
    let (code, err) = run(&["topic", "create", "a/b"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("error: topic name 'a/b'"), "{err}");
}
