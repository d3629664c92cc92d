//! Long-running `spool` processes in tests: output collected line by line in the background,
//! waits with deadlines (never sleep-and-hope), and a kill when the test ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child whose stdout and stderr lines are collected.
pub struct Running {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Collects complete lines. A last line without its newline (a process killed in the middle
/// of a write) is left out: it is not something the process finished printing.
fn collect(reader: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.last() == Some(&b'\n') => {
                    buf.pop();
                    sink.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf).into_owned());
                }
                Ok(_) => break,
            }
        }
    });
    lines
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spool");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until stderr contains `needle`; panics with the stderr after `timeout`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) {
        let ok = wait_until(timeout, || self.stderr_text().contains(needle));
        assert!(
            ok,
            "no {needle:?} on stderr within {timeout:?}:\n{}",
            self.stderr_text()
        );
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we spawned.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Stops the process (SIGSTOP) and waits until every one of its threads is stopped:
    /// kill(2) returns before the signal took effect, and a thread in a system call (taking or
    /// releasing a lock, say) finishes it first. Once this returns, the process changes
    /// nothing until it is continued.
    pub fn stop(&self) {
        self.signal(libc::SIGSTOP);
        let pid = self.child.id();
        let all_stopped = || {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.flatten().all(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                // The state follows the command name, which is in parentheses.
                stat.rsplit_once(')').is_some_and(|(_, rest)| {
                    matches!(rest.trim_start().chars().next(), Some('T' | 't'))
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !all_stopped() {
            assert!(Instant::now() < deadline, "process {pid} did not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > deadline {
                self.signal(libc::SIGKILL);
                panic!(
                    "process did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 10 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command with stdin closed and returns it for spawning.
pub fn with_null_stdin(mut cmd: Command) -> Command {
    cmd.stdin(Stdio::null());
    cmd
}
