//! `spool serve`: the store over Kafka's wire protocol (see [`crate::serve`]).

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::{Context, UsageError};
use crate::serve::{FsyncPolicy, ServeOptions, Server};

/// Serve the store to Kafka clients over Kafka's wire protocol.
///
/// Any Kafka client (kcat, librdkafka, kafka-python, kafkajs, the Java client) can then
/// produce to, fetch from, create and configure the store's topics while spool's own commands
/// keep working on the same store. The server is one broker (id 0) that leads every partition;
/// records are stored as the clients send them and served as stored. Kafka clients join
/// spool's consumer groups beside `spool consume --group` members (one assignment, one set of
/// committed offsets, shown by `spool group describe`); transactions are not provided. There is no authentication and no TLS: it listens on the loopback interface unless
/// told otherwise, and warns when it is not.
///
/// Ctrl-C or SIGTERM stops accepting, lets the requests in progress finish (for up to 5 s: then
/// the connections still open are cut), forces the appended data to disk (unless --fsync never)
/// and exits 0; a second one exits at once.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool serve\n  kcat -b 127.0.0.1:9092 -L\n  echo hello | kcat -b 127.0.0.1:9092 -t greetings -P\n  spool serve --listen 0.0.0.0:9092 --advertise myhost.example:9092 --fsync batch"
)]
pub struct ServeArgs {
    /// The address and port to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "ADDR:PORT")]
    pub listen: String,

    /// The host and port clients are told to connect to [default: the listening address].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// When appended records are forced to disk: when the server exits (a killed server loses
    /// nothing acknowledged; power loss may), after every batch before it is acknowledged, or
    /// never.
    #[arg(long, value_enum, default_value_t = FsyncArg::Exit, value_name = "WHEN")]
    pub fsync: FsyncArg,

    /// Requests larger than this are refused and their connection closed, before anything is
    /// read into memory (Kafka's socket.request.max.bytes).
    #[arg(long, default_value = "100MiB", value_parser = super::size_arg, value_name = "SIZE")]
    pub max_request_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    Exit,
    Batch,
    Never,
}

fn parse_listen(s: &str) -> anyhow::Result<SocketAddr> {
    let addrs = s.to_socket_addrs().map_err(|e| {
        UsageError(format!(
            "--listen {s:?} is not an address and port ({e}); example: 127.0.0.1:9092"
        ))
    })?;
    let mut addrs: Vec<SocketAddr> = addrs.collect();
    // `localhost` may resolve to ::1 and 127.0.0.1: clients try IPv4 first.
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| UsageError(format!("--listen {s:?} resolves to no address")).into())
}

fn parse_advertise(s: &str) -> anyhow::Result<(String, u16)> {
    let bad = || {
        UsageError(format!(
            "--advertise {s:?} must be HOST:PORT, e.g. myhost.example:9092"
        ))
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad().into());
    }
    Ok((host.to_owned(), port))
}

pub fn run(ctx: &Context, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = parse_listen(&a.listen)?;
    let advertise = a.advertise.as_deref().map(parse_advertise).transpose()?;
    let max_request_size = usize::try_from(a.max_request_size)
        .ok()
        .filter(|&n| n >= 64 && n <= i32::MAX as usize)
        .ok_or_else(|| UsageError("--max-request-size must be between 64 bytes and 2GiB".into()))?;
    let options = ServeOptions {
        listen,
        advertise,
        fsync: match a.fsync {
            FsyncArg::Exit => FsyncPolicy::Exit,
            FsyncArg::Batch => FsyncPolicy::Batch,
            FsyncArg::Never => FsyncPolicy::Never,
        },
        max_request_size,
    };
    // Before any thread exists, so every thread inherits the mask and the signals are
    // taken by the waiting thread alone.
    let signals = block_shutdown_signals();
    raise_descriptor_limit();
    let server = Server::bind(served_store(ctx)?.clone(), options).context("spool serve")?;
    let local = server.local_addr().context("spool serve")?;
    let (host, port) = server.advertised();
    if !local.ip().is_loopback() {
        eprintln!(
            "warning: listening on {local}, which other machines can reach: spool serve has no authentication, so anyone who can connect can read, write and delete every topic of {}",
            served_store(ctx)?.root().display()
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "spool serve: listening on {local} (clients connect to {host}:{port}), store {}",
        served_store(ctx)?.root().display()
    );
    let _ = out.flush();
    drop(out);
    let handle = server.shutdown_handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            wait_for_signal(&signals);
            handle.shutdown();
            // A second signal: stop at once.
            wait_for_signal(&signals);
            std::process::exit(130);
        })
        .context("spool serve: starting the signal thread")?;
    server.run().context("spool serve")?;
    Ok(ExitCode::SUCCESS)
}

/// Lifts the soft limit on open descriptors to the hard one: each connection holds one, and
/// the usual soft limit of 1024 would refuse the thousandth idle client.
fn raise_descriptor_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn block_shutdown_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: sigwait on a valid set; the signals are blocked in every thread.
    unsafe {
        libc::sigwait(set, &mut sig);
    }
}

/// The local store: `spool serve` works on no other target (yet).
fn served_store(ctx: &Context) -> anyhow::Result<&crate::store::Store> {
    ctx.local_store("spool serve", "it serves a store directory over Kafka's protocol, and a cluster is already a Kafka server")
}
