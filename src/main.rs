//! The `spool` binary: everything lives in the library; see `spool::cli`.

fn main() -> std::process::ExitCode {
    spool::cli::main()
}
