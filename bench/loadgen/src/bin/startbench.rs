//! Start-to-serving benchmark: launches the videomeet binary again and again and times each run
//! from spawn to the first complete HTTP response for the start page (a new TCP connection
//! every millisecond until one is answered). Prints p50 and max, then stops the process
//! with SIGTERM and waits for it.
//!
//! cargo run --release -p loadgen --bin startbench -- --bin target/release/videomeet --runs 20 \
//!     -- --tls-listen off --stun-listen off --state-dir off
//! Everything after `--` is passed to videomeet; `--listen 127.0.0.1:PORT` is added.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut bin = String::from("target/release/videomeet");
    let mut runs = 20usize;
    let mut port = 18_400u16;
    let mut extra = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bin" => bin = it.next().expect("--bin PATH"),
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--port" => port = it.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--" => extra.extend(it.by_ref()),
            other => {
                eprintln!("startbench: unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    let addr = format!("127.0.0.1:{port}");
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .arg("--listen")
            .arg(&addr)
            .args(&extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let served = loop {
            if let Some(status) = child.try_wait().expect("child status") {
                eprintln!("startbench: run {run}: videomeet exited early ({status})");
                std::process::exit(1);
            }
            if page_served(&addr) {
                break started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(10) {
                eprintln!("startbench: run {run}: nothing served within 10 s");
                let _ = child.kill();
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        times.push(served);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("start to serving ({runs} runs, {bin} {}):", extra.join(" "));
    println!(
        "  min {:.1} ms, p50 {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
}

/// True when GET / on `addr` gets a complete `200` response.
fn page_served(addr: &str) -> bool {
    let Ok(mut tcp) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    if tcp
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    response.starts_with(b"HTTP/1.1 200")
}
