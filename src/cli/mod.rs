//! The `spool` command line: clap definitions and the glue from arguments to library calls.
//!
//! One file per command group, each with a doc-commented clap `Args` struct beside its `run`
//! function. Commands never touch store files themselves: they call [`crate::store`] and
//! [`crate::produce`], and render what comes back with [`render`].
//!
//! Errors travel as `anyhow::Error`; [`main`] prints `error: <cause chain>` and, where there is
//! an obvious next step, a `hint:` line. Exit codes: 0 success (also when stdout's reader went
//! away), 1 runtime error, 2 usage error.

pub mod consume;
pub mod consume_group;
pub mod group;
pub mod offsets;
pub mod produce;
pub mod render;
pub mod topic;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::store::{Store, StoreError};

/// Apache Kafka's model on local disk: topics, partitions, offsets and consumer groups, with no
/// server.
///
/// spool keeps a store directory of topics whose partitions are logs in Kafka's own segment
/// format. `spool produce` appends lines to a topic, `spool consume` reads them back, and any
/// number of spool processes may do so at once: they coordinate through file locks.
#[derive(Debug, Parser)]
#[command(
    name = "spool",
    version,
    propagate_version = true,
    after_help = "Examples:\n  printf 'hello\\nworld\\n' | spool produce greetings\n  spool consume greetings -e\n  spool topic describe greetings",
    after_long_help = "Examples:\n  printf 'hello\\nworld\\n' | spool produce greetings\n  spool consume greetings -e\n  spool topic describe greetings\n\nExit status:\n  0  success (also when the reader of stdout went away, as with `| head`)\n  1  runtime error (unknown topic, damaged log, full disk, ...)\n  2  usage error (unknown flag, bad value)"
)]
pub struct Cli {
    /// The store directory [default: $XDG_DATA_HOME/spool, i.e. ~/.local/share/spool].
    #[arg(long, global = true, env = "SPOOL_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter, delete, verify and prune topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    Produce(produce::ProduceArgs),
    Consume(consume::ConsumeArgs),
    /// List, describe (offsets and lag, members, state, history) and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Reset consumer groups' committed offsets.
    #[command(subcommand)]
    Offsets(offsets::OffsetsCommand),
}

/// Everything a command needs from the global flags.
pub struct Context {
    pub store: Store,
}

impl Context {
    fn new(dir: Option<PathBuf>) -> anyhow::Result<Context> {
        let root = dir.unwrap_or_else(Store::default_root);
        Ok(Context {
            store: Store::open(root)?,
        })
    }
}

/// Runs spool with the process's arguments.
pub fn main() -> ExitCode {
    main_with_args(std::env::args_os())
}

pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = Context::new(cli.dir).and_then(|ctx| match cli.command {
        Command::Topic(cmd) => topic::run(&ctx, cmd),
        Command::Produce(args) => produce::run(&ctx, args),
        Command::Consume(args) => consume::run(&ctx, args),
        Command::Group(cmd) => group::run(&ctx, cmd),
        Command::Offsets(cmd) => offsets::run(&ctx, cmd),
    });
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<UsageError>()) => {
            report_error(&e);
            ExitCode::from(2)
        }
        Err(e) => {
            report_error(&e);
            ExitCode::from(1)
        }
    }
}

/// A bad argument found after clap's parsing; exits 2 like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// clap value parser for sizes (`64KiB`, `1GiB`, `1048576`).
pub fn size_arg(s: &str) -> Result<u64, String> {
    crate::spec::parse_size(s).map_err(|e| e.to_string())
}

/// clap value parser for durations (`30s`, `5m`, `PT1H`).
pub fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration(s).map_err(|e| e.to_string())
}

/// clap value parser for `KEY=VALUE`.
pub fn kv_arg(s: &str) -> Result<(String, String), String> {
    crate::spec::parse_kv(s).map_err(|e| e.to_string())
}

/// An error with a suggestion of what to do next.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

/// Prints `error: a: b: c` and a hint when one is known.
pub fn report_error(e: &anyhow::Error) {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    let mut message = String::new();
    for part in &chain {
        // thiserror's transparent variants repeat their source: print each cause once.
        if !message.ends_with(part.as_str()) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(part);
        }
    }
    eprintln!("error: {message}");
    if let Some(hint) = hint_for(e) {
        eprintln!("hint: {hint}");
    }
}

fn hint_for(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        if let Some(store_error) = cause.downcast_ref::<StoreError>() {
            match store_error {
                StoreError::TopicNotFound(_) => {
                    return Some("create it with `spool topic create`, or see `spool topic list`".into())
                }
                StoreError::TopicExists(_) => {
                    return Some("pass --if-not-exists to accept an existing topic".into())
                }
                StoreError::Corrupt { .. } => {
                    return Some("run `spool topic verify <TOPIC>` to locate the damage, and `--repair` to cut it".into())
                }
                _ => {}
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::ENOSPC) {
                return Some("the disk is full: free some space and run the command again; what was written before is intact".into());
            }
        }
    }
    None
}

/// Whether the error is stdout's reader having gone away (`spool consume | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Turns `\n`, `\t`, `\r`, `\0`, `\\` and `\xNN` in a command-line separator into bytes.
pub fn unescape(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let esc = bytes.get(i + 1).copied();
        i += 2;
        out.push(match esc {
            Some(b'n') => b'\n',
            Some(b't') => b'\t',
            Some(b'r') => b'\r',
            Some(b'0') => 0,
            Some(b'\\') => b'\\',
            Some(b'x') => {
                let hex = s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
                i += 2;
                hex.ok_or_else(|| {
                    anyhow::anyhow!("'\\x' in {s:?} must be followed by two hex digits")
                })?
            }
            _ => anyhow::bail!("unknown escape in {s:?}; use \\n, \\t, \\r, \\0, \\\\ or \\xNN"),
        });
    }
    Ok(out)
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes Ctrl-C and SIGTERM set a flag instead of killing the process, so a long-running
/// command can finish cleanly (commit, leave its group, print its summary).
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

/// Whether Ctrl-C or SIGTERM arrived since [`install_interrupt_handler`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether stdout is a pipe whose reader has gone away, checked without writing: lets a
/// following consumer that has nothing to print exit like `| head` expects.
pub fn stdout_closed() -> bool {
    let mut pfd = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}
