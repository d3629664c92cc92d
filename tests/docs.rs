//! The generated files (`man/`, `completions/`) match the clap definitions; `SPOOL_BLESS=1 cargo
//! test --test docs` rewrites them. Also: `spool completions` prints the committed scripts, the
//! dynamic completion answers with the store's topic and group names, and every command's
//! `--help` has a summary, a description and an example.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use spool::cli::docs::generated_files;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("SPOOL_BLESS").is_some_and(|v| v == "1")
}

/// Files of a generated directory that are on disk.
fn on_disk(dir: &Path) -> BTreeSet<PathBuf> {
    match std::fs::read_dir(root().join(dir)) {
        Ok(entries) => entries
            .map(|e| dir.join(e.expect("directory entry").file_name()))
            .filter(|p| !p.ends_with(".gitkeep"))
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

#[test]
fn generated_files_are_current() {
    let files = generated_files();
    let mut stale = Vec::new();
    let mut expected = BTreeSet::new();
    for f in &files {
        expected.insert(f.path.clone());
        let path = root().join(&f.path);
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(&f.contents[..]) {
            continue;
        }
        if blessing() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f.contents).unwrap();
        } else {
            stale.push(f.path.display().to_string());
        }
    }
    let mut extra = Vec::new();
    for dir in ["man", "completions"] {
        for path in on_disk(Path::new(dir)) {
            if !expected.contains(&path) {
                if blessing() {
                    std::fs::remove_file(root().join(&path)).unwrap();
                } else {
                    extra.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        stale.is_empty() && extra.is_empty(),
        "generated files are out of date; run `SPOOL_BLESS=1 cargo test --test docs` and commit the result\n  differ or missing: {stale:?}\n  no longer generated: {extra:?}"
    );
}

#[test]
fn a_man_page_per_command() {
    let files = generated_files();
    let names: BTreeSet<String> = files
        .iter()
        .filter(|f| f.path.starts_with("man"))
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "spool.1",
        "spool-topic.1",
        "spool-topic-create.1",
        "spool-produce.1",
        "spool-consume.1",
        "spool-group-describe.1",
        "spool-offsets-reset.1",
        "spool-completions.1",
    ] {
        assert!(names.contains(expected), "no {expected} in {names:?}");
    }
    for f in files.iter().filter(|f| f.path.starts_with("man")) {
        let text = String::from_utf8(f.contents.clone()).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
        ] {
            assert!(
                text.contains(section),
                "{} has no {section} section",
                f.path.display()
            );
        }
    }
}

#[test]
fn completions_command_prints_the_committed_scripts() {
    let store = common::Store::new();
    for f in generated_files()
        .iter()
        .filter(|f| f.path.starts_with("completions"))
    {
        let shell = match f.path.file_name().unwrap().to_str().unwrap() {
            "spool.bash" => "bash",
            "_spool" => "zsh",
            "spool.fish" => "fish",
            "spool.elv" => "elvish",
            "_spool.ps1" => "powershell",
            other => panic!("unexpected completion file {other}"),
        };
        let out = store.spool().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, f.contents, "spool completions {shell}");
    }
}

/// What `spool` answers to a completion request (fish's protocol: one candidate a line).
fn complete(store: &common::Store, words: &[&str], extra_env: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = store.spool();
    cmd.env("SPOOL_COMPLETE", "fish").arg("--").args(words);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

#[test]
fn dynamic_completion_of_topics_and_groups() {
    let store = common::Store::new();
    store.create_topic("orders", 2, &[]);
    store.create_topic("audit", 1, &[]);
    store.produce("orders", "a\n", &[]);
    store
        .spool()
        .args(["consume", "orders", "-g", "billing", "-e", "-q"])
        .assert()
        .success();

    assert_eq!(
        complete(&store, &["spool", "consume", "o"], &[]),
        ["orders"]
    );
    assert_eq!(
        complete(&store, &["spool", "topic", "describe", ""], &[])
            .into_iter()
            .filter(|c| !c.starts_with('-'))
            .collect::<Vec<_>>(),
        ["audit", "orders"]
    );
    assert_eq!(complete(&store, &["spool", "produce", "a"], &[]), ["audit"]);
    assert_eq!(
        complete(&store, &["spool", "consume", "orders", "--group", ""], &[]),
        ["billing"]
    );
    assert_eq!(
        complete(&store, &["spool", "group", "describe", "b"], &[]),
        ["billing"]
    );
    assert_eq!(
        complete(&store, &["spool", "offsets", "reset", "--topic", "or"], &[]),
        ["orders"]
    );
    // Values of enums and subcommands come from the clap definitions.
    assert!(
        complete(&store, &["spool", "consume", "t", "--assignor", "r"], &[])
            .contains(&"roundrobin".to_owned())
    );
    assert!(complete(&store, &["spool", "top"], &[]).contains(&"topic".to_owned()));

    // --dir on the line being completed wins over $SPOOL_DIR; a missing store offers nothing.
    let other = common::Store::new();
    other.create_topic("elsewhere", 1, &[]);
    let dir = other.dir();
    assert_eq!(
        complete(
            &store,
            &["spool", "--dir", dir.to_str().unwrap(), "consume", ""],
            &[]
        )
        .into_iter()
        .filter(|c| !c.starts_with('-'))
        .collect::<Vec<_>>(),
        ["elsewhere"]
    );
    assert!(complete(
        &store,
        &["spool", "consume", "o"],
        &[("SPOOL_DIR", "/nonexistent/spool")]
    )
    .is_empty());
    // Completing never creates the store.
    assert!(!Path::new("/nonexistent/spool").exists());
}

/// Every command and command group: `--help` has a summary, a paragraph and an example.
#[test]
fn every_command_has_help_with_an_example() {
    let mut cmd = spool::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    fn walk(cmd: &mut clap::Command, path: String, missing: &mut Vec<String>) {
        let long = cmd.render_long_help().to_string();
        let short = cmd.render_help().to_string();
        if cmd.get_about().is_none() {
            missing.push(format!("{path}: no one-line summary"));
        }
        if cmd.get_long_about().is_none() {
            missing.push(format!("{path}: no paragraph (long about)"));
        }
        if !long.contains("Examples:\n  ") {
            missing.push(format!("{path} --help: no examples"));
        }
        if !short.contains("Examples:\n  ") {
            missing.push(format!("{path} -h: no examples"));
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path}: {} has no help", arg.get_id()));
            }
        }
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .filter(|n| n != "help")
            .collect();
        for name in names {
            let sub = cmd.find_subcommand_mut(&name).unwrap();
            walk(sub, format!("{path} {name}"), missing);
        }
    }
    walk(&mut cmd, "spool".into(), &mut missing);
    assert!(missing.is_empty(), "help gaps:\n{}", missing.join("\n"));
}

/// The scripts work in the shells themselves: bash always (the README's tour needs it too),
/// zsh and fish where installed.
#[test]
fn completion_scripts_work_in_the_shells() {
    let store = common::Store::new();
    store.create_topic("orders", 1, &[]);
    store.create_topic("other", 1, &[]);
    let bin_dir = assert_cmd::cargo::cargo_bin("spool")
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |program: &str, script: &str| -> Option<String> {
        let out = std::process::Command::new(program)
            .args(["-c", script])
            .env("PATH", &path)
            .env("SPOOL_DIR", store.dir())
            .env("HOME", store.tmp.path())
            .current_dir(store.tmp.path())
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let bash = shell(
        "bash",
        r#"source <(spool completions bash)
COMP_WORDS=(spool consume o); COMP_CWORD=2; COMP_TYPE=9
_clap_complete_spool spool o consume
printf '%s\n' "${COMPREPLY[@]}""#,
    )
    .expect("bash runs");
    assert_eq!(bash, "orders\nother\n");
    if let Some(zsh) = shell(
        "zsh",
        r#"autoload -U compinit; compinit -u -d "$HOME/.zcompdump"
source <(spool completions zsh)
_describe() { print -l -- "${(@P)${@[-1]}}"; }
words=(spool topic describe o); CURRENT=4
_clap_dynamic_completer_spool"#,
    ) {
        assert_eq!(zsh, "orders\nother\n");
    }
    if let Some(fish) = shell(
        "fish",
        "spool completions fish | source; complete -C 'spool produce o'",
    ) {
        assert_eq!(fish, "orders\nother\n");
    }
}

/// A roff text line as `man` shows it (the escapes spool's pages use).
fn unroff(line: &str) -> String {
    line.replace("\\-", "-")
        .replace("\\*(Aq", "'")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\\\", "\\")
}

#[test]
fn man_page_examples_fit_80_columns() {
    for f in generated_files()
        .iter()
        .filter(|f| f.path.starts_with("man"))
    {
        let text = String::from_utf8(f.contents.clone()).unwrap();
        let mut preformatted = false;
        for line in text.lines() {
            match line {
                ".nf" => preformatted = true,
                ".fi" => preformatted = false,
                _ if line.starts_with('.') => {}
                // 7 columns of margin and 4 of indent before the line, in 80.
                _ if preformatted => assert!(
                    unroff(line).chars().count() < 80 - 11,
                    "{}: too wide for 80 columns: {line}",
                    f.path.display()
                ),
                _ => {}
            }
        }
    }
}

#[test]
fn man_synopsis_is_the_usage_of_help() {
    let store = common::Store::new();
    for (page, args) in [
        ("spool-consume.1", &["consume", "--help"][..]),
        ("spool-topic-describe.1", &["topic", "describe", "--help"]),
        ("spool-produce.1", &["produce", "--help"]),
    ] {
        let help = store.spool().args(args).output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        let usage: Vec<&str> = help
            .lines()
            .skip_while(|l| !l.starts_with("Usage: "))
            .take_while(|l| !l.is_empty())
            .map(|l| l.trim_start_matches("Usage: ").trim())
            .collect();
        let man = generated_files()
            .into_iter()
            .find(|f| f.path.ends_with(page))
            .unwrap();
        let man = String::from_utf8(man.contents).unwrap();
        let synopsis: Vec<String> = man
            .lines()
            .skip_while(|l| *l != ".SH SYNOPSIS")
            .skip(1)
            .take_while(|l| !l.starts_with(".SH") && !l.starts_with(".ie"))
            .filter(|l| !l.starts_with('.'))
            .map(unroff)
            .collect();
        assert_eq!(synopsis, usage, "{page}");
    }
}

#[test]
fn dynamic_completion_of_offset_words() {
    let store = common::Store::new();
    let words = complete(&store, &["spool", "consume", "orders", "-o", ""], &[]);
    for w in ["earliest", "latest", "beginning", "end"] {
        assert!(words.contains(&w.to_owned()), "{words:?}");
    }
    assert_eq!(
        complete(&store, &["spool", "consume", "orders", "-o", "ea"], &[]),
        ["earliest"]
    );
}
