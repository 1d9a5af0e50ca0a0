//! `idle`: the server's memory with nobody connected, after a short wait.

use std::time::Duration;

use crate::args::Args;
use crate::proc::Reading;
use crate::stats::{Errors, Summary};

pub async fn run(args: &Args) -> i32 {
    tokio::time::sleep(Duration::from_secs(args.secs_or(2))).await;
    crate::proc::print_processes("idle", &args.pids);
    Errors::default().print_table("errors by kind");
    let mut s = Summary::new("idle");
    super::memory_kv(&mut s, "rss", &args.pids, |r: &Reading| r.rss_kib);
    super::memory_kv(&mut s, "hwm", &args.pids, |r: &Reading| r.hwm_kib);
    s.kv("errors", 0);
    s.print();
    0
}
