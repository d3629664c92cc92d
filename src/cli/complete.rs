//! Shell completion: `spool completions <SHELL>` and the dynamic completion behind it.
//!
//! The scripts that `spool completions` prints (and that `completions/` holds) are small
//! registrations: at each Tab the shell runs `spool` itself with `SPOOL_COMPLETE=<shell>` and the
//! words typed so far, and [`complete_from_env`] answers from the clap definitions
//! (clap_complete's `CompleteEnv`). So subcommands, flags and enum values always match the
//! binary, and topic and group names come from the store: the one named by `--dir` on the line
//! being completed, else `$SPOOL_DIR`, else the default store. Completing never writes to the
//! store and never prints an error.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::store::Store;

/// The environment variable that turns a `spool` run into a completion request.
pub const COMPLETE_VAR: &str = "SPOOL_COMPLETE";

/// Print a shell completion script.
///
/// The script completes subcommands, flags and their values, and the names of the topics and
/// consumer groups in the store (the one given with --dir on the command line being completed,
/// else $SPOOL_DIR, else the default store). It calls `spool` at each Tab, so it always matches
/// the installed binary; `spool` must be on PATH.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  source <(spool completions bash)                       # bash, this shell only
  spool completions bash > ~/.local/share/bash-completion/completions/spool
  echo 'source <(spool completions zsh)' >> ~/.zshrc   # or save it as _spool in $fpath
  spool completions fish > ~/.config/fish/completions/spool.fish
  echo 'eval (spool completions elvish | slurp)' >> ~/.config/elvish/rc.elv
  spool completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// A shell that `spool completions` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    /// Every supported shell, in the order of the files in `completions/`.
    pub const ALL: [Shell; 5] = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::Powershell,
    ];

    /// The conventional file name of the script (`spool.bash`, `_spool`, ...).
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "spool.bash",
            Shell::Zsh => "_spool",
            Shell::Fish => "spool.fish",
            Shell::Elvish => "spool.elv",
            Shell::Powershell => "_spool.ps1",
        }
    }

    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
            Shell::Elvish => &Elvish,
            Shell::Powershell => &Powershell,
        }
    }
}

/// The completion script for `shell`, as `spool completions` prints it.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    shell
        .completer()
        .write_registration(COMPLETE_VAR, "spool", "spool", "spool", &mut buf)
        .expect("writing to a Vec cannot fail");
    if shell == Shell::Zsh {
        // Installed in $fpath as `_spool`, the file is the body of an autoloaded function that
        // zsh runs at the first Tab: complete that Tab too, not only the following ones.
        buf.extend_from_slice(
            b"if [ \"$funcstack[1]\" = \"_spool\" ]; then\n    _clap_dynamic_completer_spool \"$@\"\nfi\n",
        );
    }
    buf
}

pub fn run(a: CompletionsArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&script(a.shell))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The store directory named on the command line being completed, if any.
static COMPLETION_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Answers a completion request and exits when `SPOOL_COMPLETE` is set; returns otherwise.
pub fn complete_from_env() {
    let requested = std::env::var_os(COMPLETE_VAR).is_some_and(|v| !v.is_empty() && v != "0");
    if !requested {
        return;
    }
    let _ = COMPLETION_DIR.set(dir_on_line(std::env::args_os()));
    clap_complete::CompleteEnv::with_factory(super::Cli::command)
        .var(COMPLETE_VAR)
        .bin("spool")
        .completer("spool")
        .complete();
}

/// `--dir DIR` or `--dir=DIR` among the words after `--` (the line being completed).
fn dir_on_line(args: impl IntoIterator<Item = OsString>) -> Option<PathBuf> {
    let words: Vec<OsString> = args.into_iter().skip_while(|a| a != "--").skip(1).collect();
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        if w == "--dir" {
            if let Some(next) = words.get(i + 1) {
                found = Some(PathBuf::from(next));
            }
        } else if let Some(v) = w.to_str().and_then(|s| s.strip_prefix("--dir=")) {
            found = Some(PathBuf::from(v));
        }
    }
    found
}

fn completion_store() -> Option<Store> {
    let root = COMPLETION_DIR
        .get()
        .cloned()
        .flatten()
        .or_else(|| {
            std::env::var_os("SPOOL_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(Store::default_root);
    // Opening only reads spool.yaml; a store that cannot be read simply offers no names.
    Store::open(root).ok()
}

fn candidates(names: Vec<String>, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    names
        .into_iter()
        .filter(|n| n.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// Topic names in the store starting with what was typed.
pub fn topic_names(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(
        completion_store()
            .and_then(|s| s.list_topics().ok())
            .unwrap_or_default(),
        current,
    )
}

/// Consumer group names in the store starting with what was typed.
pub fn group_names(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(
        completion_store()
            .and_then(|s| crate::group::state::list_groups(&s).ok())
            .unwrap_or_default(),
        current,
    )
}

/// `ArgValueCompleter` for topic names (`#[arg(add = topics())]`).
pub fn topics() -> ArgValueCompleter {
    ArgValueCompleter::new(topic_names)
}

/// `ArgValueCompleter` for consumer group names (`#[arg(add = groups())]`).
pub fn groups() -> ArgValueCompleter {
    ArgValueCompleter::new(group_names)
}

/// The words `consume -o` takes, with what each means.
pub fn offset_words(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    [
        ("earliest", "the first record kept"),
        ("latest", "only records produced from now on"),
        ("beginning", "the same as earliest"),
        ("end", "the same as latest"),
    ]
    .into_iter()
    .filter(|(w, _)| w.starts_with(prefix.as_ref()))
    .map(|(w, help)| CompletionCandidate::new(w).help(Some(help.into())))
    .collect()
}

/// `ArgValueCompleter` for `consume -o`.
pub fn offsets() -> ArgValueCompleter {
    ArgValueCompleter::new(offset_words)
}

#[cfg(test)]
mod tests {
    use super::dir_on_line;
    use std::path::PathBuf;

    #[test]
    fn dir_from_the_completed_line() {
        let args = |s: &str| {
            s.split(' ')
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert_eq!(
            dir_on_line(args("spool -- spool --dir /x consume o")),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            dir_on_line(args("spool -- spool --dir=/y topic describe")),
            Some(PathBuf::from("/y"))
        );
        assert_eq!(dir_on_line(args("spool -- spool --dir")), None);
        assert_eq!(dir_on_line(args("spool --dir /z -- spool consume")), None);
    }
}
