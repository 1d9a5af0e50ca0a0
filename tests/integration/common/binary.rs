//! The real `videomeet` binary as a child process, for tests that need signals, restarts or
//! `kill -9`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary with HTTPS on a free port; reads its log until both addresses are known.
pub struct Running {
    pub child: Child,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub fingerprint: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(state: &Path, extra: &[&str]) -> Running {
        let program = Path::new(env!("CARGO_BIN_EXE_videomeet"));
        Running::start_program(program, &[], state, extra, Duration::from_secs(10))
    }

    /// Starts `program` (this test build's own binary, or a cross-built one) through `runner`, a
    /// command prefix such as `["qemu-aarch64-static"]` (empty: run it directly), and waits up to
    /// `startup` for each line of the log that tells the addresses.
    pub fn start_program(
        program: &Path,
        runner: &[String],
        state: &Path,
        extra: &[&str],
        startup: Duration,
    ) -> Running {
        let mut command = match runner.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{runner:?} {} starts: {e}", program.display()));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let (mut http, mut https, mut fingerprint) = (None, None, None);
        while http.is_none() || https.is_none() || fingerprint.is_none() {
            let line = rx
                .recv_timeout(startup)
                .unwrap_or_else(|_| panic!("server log so far: {:?}", log.lock().unwrap()));
            if let Some(a) = line.split("listening on http://").nth(1) {
                http = a.trim().parse().ok();
            }
            if let Some(a) = line.split("listening on https://").nth(1) {
                https = a.trim().parse().ok();
            }
            if let Some(f) = line.split("SHA-256 ").nth(1) {
                fingerprint = Some(f.trim().to_string());
            }
        }
        Running {
            child,
            http: http.unwrap(),
            https: https.unwrap(),
            fingerprint: fingerprint.unwrap(),
            log,
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn stop(mut self) {
        self.signal("-TERM");
        let _ = self.child.wait();
    }
}

impl Running {
    /// `kill -9`: no goodbye, no final store write.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to 5 s) for a log line containing `needle`; returns the whole log so far.
    pub fn wait_log(&self, needle: &str) -> String {
        self.wait_log_within(needle, Duration::from_secs(5))
    }

    /// [`Running::wait_log`] with another limit.
    pub fn wait_log_within(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let log = self.log.lock().unwrap().join("\n");
            if log.contains(needle) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never logged {needle:?}: {:?}", self.log.lock().unwrap());
    }

    /// SIGTERM, then the exit status; panics (after `kill -9`) if it takes longer than `limit`.
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "still running {limit:?} after SIGTERM: {:?}",
            self.log.lock().unwrap()
        );
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/ws/{room}", self.http)
    }
}

/// A fresh, empty directory under the system temp dir, unique to this test process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("videomeet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
