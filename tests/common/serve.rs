//! Helpers for the `spool serve` tests: a running server on a free loopback port, the real
//! Kafka clients the tests drive (kcat, confluent-kafka, kafka-python, kafkajs), and a raw
//! protocol client for requests no well-behaved client sends.
//!
//! The clients are installed by `.ci/run`; a test whose client is missing prints a loud skip
//! message and passes, unless `SPOOL_REQUIRE_PEERS=1` (set by `.ci/run`), where it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::Store;

/// A `spool serve` on a free loopback port, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Server {
    pub fn start(store: &Store, extra: &[&str]) -> Server {
        let mut child = store
            .spool_process()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start spool serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .split_whitespace()
            .find(|w| w.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "spool serve never accepted");
            std::thread::sleep(Duration::from_millis(10));
        }
        Server { child, addr }
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Sends `sig` and waits for the exit.
    pub fn stop_with(&mut self, sig: i32) -> ExitStatus {
        super::signal(&self.child, sig);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "spool serve did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `.ci/run` installs the clients: `$SPOOL_PEERS_DIR`, else `target/peers`.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("SPOOL_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers"))
}

/// Whether a peer is there; when not, fails under `SPOOL_REQUIRE_PEERS=1` and otherwise
/// prints a loud skip message.
pub fn have(peer: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("SPOOL_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{peer} is required (SPOOL_REQUIRE_PEERS=1) but missing; .ci/run installs it");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {peer} is not installed; run .ci/run to install the Kafka clients !!!!!!!!\n");
    false
}

fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn kcat() -> Option<Command> {
    have("kcat", runs(Command::new("kcat").arg("-V"))).then(|| Command::new("kcat"))
}

/// Python with confluent-kafka (librdkafka 2.x): the venv `.ci/run` makes.
pub fn confluent_python() -> Option<PathBuf> {
    let python = peers_dir().join("venv/bin/python");
    let ok = runs(Command::new(&python).args(["-c", "import confluent_kafka"]));
    have("confluent-kafka (python venv)", ok).then_some(python)
}

/// The system Python with Debian's python3-kafka (kafka-python).
pub fn kafka_python() -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let ok = runs(Command::new(&python).args(["-c", "import kafka"]));
    have("kafka-python (python3-kafka)", ok).then_some(python)
}

/// node and the directory holding `node_modules/kafkajs`.
pub fn kafkajs() -> Option<PathBuf> {
    let dir = peers_dir();
    let ok = dir.join("node_modules/kafkajs").is_dir() && runs(Command::new("node").arg("-v"));
    have("kafkajs (npm)", ok).then_some(dir)
}

/// Runs a Python script with `BOOTSTRAP` in its environment; asserts success.
pub fn python(python: &Path, server: &Server, script: &str) -> Output {
    let out = Command::new(python)
        .args(["-c", script])
        .env("BOOTSTRAP", &server.addr)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a kafkajs script (in the peers directory, so `require('kafkajs')` finds it).
pub fn node(dir: &Path, server: &Server, script: &str) -> Output {
    let out = Command::new("node")
        .args(["-e", script])
        .current_dir(dir)
        .env("BOOTSTRAP", &server.addr)
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A bare protocol connection: sends requests encoded by the `kafka-protocol` crate.
pub struct RawClient {
    pub stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    pub fn connect(server: &Server) -> RawClient {
        let stream = TcpStream::connect(&server.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        RawClient {
            stream,
            correlation: 0,
        }
    }

    /// Sends a request and reads no answer (Produce with acks=0 gets none).
    pub fn send_only(&mut self, key: ApiKey, version: i16, body: RequestKind) {
        self.write_request(key, version, body).unwrap();
    }

    /// Encodes a request with the next correlation id and writes it as one frame.
    fn write_request(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> std::io::Result<()> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf)
    }

    /// Sends a request; `None` when the server closed the connection instead of answering.
    pub fn request(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Option<ResponseKind> {
        self.write_request(key, version, body).ok()?;
        let frame = self.read_frame()?;
        let mut frame = Bytes::from(frame);
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        Some(ResponseKind::decode(key, &mut frame, version).expect("decode the response"))
    }

    /// Reads one response frame; `None` at end of stream.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).ok()?;
        Some(frame)
    }

    /// Whether the server closed this connection (reads end of stream within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// Reads an i16 error code at the start of a buffer (for hand-made responses).
pub fn i16_at(bytes: &[u8], at: usize) -> i16 {
    (&bytes[at..at + 2]).get_i16()
}
