//! What one meeting does, as browsers running the VideoMeet page would: everyone joins; the
//! newcomer offers to each peer already there (a ~4 KiB SDP and 10 ICE candidates of ~200 B)
//! and each peer answers alike; everyone sends a mute and a camera `update` and one `chat`;
//! then churn: one participant `leave`s and comes back on a fresh socket (a new seat, so the
//! offers start again), and one loses its socket without a close frame and resumes its seat
//! with `client` + `token` + `resume: true` (it must get the same `you` and `resumed: true`).
//!
//! Each participant is a task that owns its socket and keeps reading it (so heartbeats are
//! answered and answers are sent the moment offers arrive); a conductor per meeting sequences
//! the phases by commands and waits for their effects through counters the participants bump.
//! Every wait is bounded, and a phase that does not complete is counted as `timeout:<phase>`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::client::{source, Conn, Failure, Incoming, OpenOpts, Target};
use crate::stats::Stats;

pub const OFFER_BYTES: usize = 4096;
pub const CANDIDATE_BYTES: usize = 200;
pub const CANDIDATES: usize = 10;
/// Signals one pair exchanges in a negotiation: offer + 10 candidates, answer + 10 candidates.
const SIGNALS_PER_PAIR: u64 = 2 * (1 + CANDIDATES as u64);
/// How long one phase of the workload may take before it is counted as timed out.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

static SDP: LazyLock<String> = LazyLock::new(|| {
    // Shaped like an SDP (lines), sized like a two-track one with a few codecs.
    let mut s = String::from("v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\n");
    while s.len() < OFFER_BYTES {
        s.push_str("a=rtpmap:96 VP8/90000\\r\\n");
    }
    s.truncate(OFFER_BYTES);
    s
});
static CANDIDATE: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::from("candidate:842163049 1 udp 1677729535 192.0.2.10 49203 typ srflx ");
    while s.len() < CANDIDATE_BYTES - 60 {
        s.push_str("raddr 10.0.0.2 ");
    }
    s
});

/// A JSON string literal.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn micros(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// `signal` carrying an SDP; `t` is the send time, for relay latency at the receiver.
pub fn sdp_signal(to: &str, kind: &str, t: u64) -> String {
    format!(
        r#"{{"type":"signal","to":{},"data":{{"t":{t},"description":{{"type":"{kind}","sdp":"{}"}}}}}}"#,
        q(to),
        *SDP
    )
}

/// `signal` carrying an ICE candidate (~200 B of `data`).
pub fn candidate_signal(to: &str, t: u64) -> String {
    format!(
        r#"{{"type":"signal","to":{},"data":{{"t":{t},"candidate":{{"candidate":"{}","sdpMid":"0","sdpMLineIndex":0}}}}}}"#,
        q(to),
        *CANDIDATE
    )
}

pub fn join_json(name: &str, client: &str, token: Option<&str>, resume: bool) -> String {
    let mut j = json!({"type":"join","name":name,"client":client,"audio":true,"video":true});
    if let Some(t) = token {
        j["token"] = json!(t);
        j["resume"] = json!(resume);
    }
    j.to_string()
}

/// Relay latency from a received signal's `t`.
pub fn note_signal(stats: &Stats, epoch: Instant, v: &Value) {
    stats.received.fetch_add(1, Ordering::Relaxed);
    if let Some(t) = v["data"]["t"].as_u64() {
        stats.relay_us.push(micros(epoch).saturating_sub(t));
    }
}

/// What every participant of a run shares.
pub struct Ctx {
    pub target: Target,
    pub stats: Arc<Stats>,
    /// Connects and joins in progress at once: pacing them keeps the server's accept backlog
    /// (and the kernel's SYN queue) from overflowing when thousands start together.
    pub gate: Arc<Semaphore>,
    pub epoch: Instant,
    pub opts: OpenOpts,
    pub churn: bool,
    /// Source address block (127.BLOCK.x.y).
    pub block: u8,
    /// Makes `client` ids unique per run, so a second run against the same server never
    /// collides with seats the first one left held.
    pub run: u32,
}

impl Ctx {
    /// Connects and joins under the gate; the join latency runs from before the TCP connect to
    /// `joined`, which is what a person waits for.
    pub async fn connect_join(
        &self,
        room: &str,
        src_index: usize,
        join: &str,
    ) -> Result<(Conn, Value), Failure> {
        let _permit = self.gate.acquire().await.expect("gate never closed");
        let started = Instant::now();
        let mut conn = Conn::open(
            self.target,
            room,
            source(self.block, src_index),
            self.opts,
            &self.stats,
        )
        .await?;
        let joined = conn.join(join).await?;
        self.stats
            .join_us
            .push(started.elapsed().as_micros() as u64);
        self.stats.joins.fetch_add(1, Ordering::Relaxed);
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        Ok((conn, joined))
    }
}

/// Commands from the conductor to one participant.
#[derive(Clone, Copy, Debug)]
pub enum Cmd {
    /// Mute the microphone, then turn the camera off.
    Media,
    Chat,
    LeaveRejoin,
    DropResume,
    /// `leave` and end (the meeting is over).
    Leave,
    /// Close frame and end (the scenario is over).
    Close,
}

/// Counters the participants bump and the conductor waits on.
#[derive(Default)]
pub struct RoomShared {
    pub joined: AtomicUsize,
    pub failed: AtomicUsize,
    pub signals: AtomicU64,
    pub chats: AtomicU64,
    pub rejoined: AtomicUsize,
    pub resumed: AtomicUsize,
    changed: Notify,
}

impl RoomShared {
    fn bump(&self, c: &AtomicUsize) {
        c.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// Waits until `cond` holds or the deadline passes; the conductor is the only waiter, so
    /// `notify_one` (which keeps a permit when nobody waits) loses no wake-up.
    async fn wait_until(&self, within: Duration, cond: impl Fn(&RoomShared) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if cond(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.changed.notified())
                .await
                .is_err()
            {
                return cond(self);
            }
        }
    }
}

/// One meeting's participants, and the handles to command them.
pub struct Meeting {
    pub room: String,
    pub shared: Arc<RoomShared>,
    cmds: Vec<mpsc::Sender<Cmd>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Meeting {
    /// Starts `size` participants in `room`; participant k connects from source index
    /// `first_src + k`.
    pub fn spawn(ctx: &Arc<Ctx>, room: String, size: usize, first_src: usize) -> Meeting {
        let shared = Arc::new(RoomShared::default());
        let mut cmds = Vec::with_capacity(size);
        let mut tasks = Vec::with_capacity(size);
        for k in 0..size {
            let (tx, rx) = mpsc::channel(8);
            cmds.push(tx);
            tasks.push(tokio::spawn(participant(
                ctx.clone(),
                shared.clone(),
                room.clone(),
                first_src + k,
                rx,
            )));
        }
        Meeting {
            room,
            shared,
            cmds,
            tasks,
        }
    }

    async fn tell(&self, k: usize, cmd: Cmd) {
        if let Some(tx) = self.cmds.get(k) {
            let _ = tx.send(cmd).await;
        }
    }

    /// Runs the phases after everyone has tried to join. True when all of them completed.
    pub async fn workload(&self, ctx: &Ctx) -> bool {
        let s = &self.shared;
        let n = self.cmds.len();
        let timeout = |phase: &'static str| {
            ctx.stats.error(&format!("timeout:{phase}"), || {
                format!("room {}", self.room)
            });
            false
        };
        // Joining waits for the gate, which at 10,000 participants can take minutes.
        s.wait_until(Duration::from_secs(3600), |s| {
            s.joined.load(Ordering::Acquire) + s.failed.load(Ordering::Acquire) >= n
        })
        .await;
        let ok = s.joined.load(Ordering::Acquire) as u64;
        let pairs = ok * ok.saturating_sub(1) / 2;
        if !s
            .wait_until(PHASE_TIMEOUT, |s| {
                s.signals.load(Ordering::Acquire) >= pairs * SIGNALS_PER_PAIR
            })
            .await
        {
            return timeout("negotiate");
        }
        for k in 0..n {
            self.tell(k, Cmd::Media).await;
            self.tell(k, Cmd::Chat).await;
        }
        // Everyone's chat reaches everyone, the sender included.
        if !s
            .wait_until(PHASE_TIMEOUT, |s| {
                s.chats.load(Ordering::Acquire) >= ok * ok
            })
            .await
        {
            return timeout("chat");
        }
        if !ctx.churn || ok < 3 {
            return ok as usize == n;
        }
        let base = s.signals.load(Ordering::Acquire);
        self.tell(1, Cmd::LeaveRejoin).await;
        if !s
            .wait_until(PHASE_TIMEOUT, |s| {
                s.rejoined.load(Ordering::Acquire) >= 1
                    && s.signals.load(Ordering::Acquire) >= base + (ok - 1) * SIGNALS_PER_PAIR
            })
            .await
        {
            return timeout("rejoin");
        }
        self.tell(2, Cmd::DropResume).await;
        if !s
            .wait_until(PHASE_TIMEOUT, |s| s.resumed.load(Ordering::Acquire) >= 1)
            .await
        {
            return timeout("resume");
        }
        ok as usize == n
    }

    /// Ends the meeting: every participant gets `how` (Leave or Close) and ends.
    pub async fn end(self, how: Cmd) {
        for k in 0..self.cmds.len() {
            self.tell(k, how).await;
        }
        drop(self.cmds);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// One participant of a meeting.
struct Participant {
    ctx: Arc<Ctx>,
    shared: Arc<RoomShared>,
    room: String,
    src: usize,
    client: String,
    you: String,
    token: String,
    /// Whether this participant counts in `Stats::connected` now.
    seated_now: bool,
}

impl Participant {
    fn unseat(&mut self) {
        if std::mem::take(&mut self.seated_now) {
            self.ctx.stats.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Offers to every peer already there, as the newcomer does.
    async fn offer_to_peers(&self, conn: &mut Conn, joined: &Value) -> Result<(), Failure> {
        for peer in joined["peers"].as_array().into_iter().flatten() {
            let Some(to) = peer["id"].as_str() else {
                continue;
            };
            self.negotiate(conn, to, "offer").await?;
        }
        Ok(())
    }

    /// Sends `to` one SDP of `kind` (offer or answer) and the ICE candidates that follow it.
    async fn negotiate(&self, conn: &mut Conn, to: &str, kind: &str) -> Result<(), Failure> {
        let t = micros(self.ctx.epoch);
        let mut batch = vec![sdp_signal(to, kind, t)];
        batch.extend((0..CANDIDATES).map(|_| candidate_signal(to, t)));
        conn.send_all(&batch).await?;
        self.ctx
            .stats
            .sent
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn seated(&mut self, joined: &Value) {
        self.seated_now = true;
        self.you = joined["you"].as_str().unwrap_or_default().to_string();
        self.token = joined["token"].as_str().unwrap_or_default().to_string();
    }

    /// Handles one received object. Err ends the participant.
    async fn on_incoming(&self, conn: &mut Conn, inc: Incoming) -> Result<(), Failure> {
        let v = match inc {
            Incoming::Msg(v) => v,
            Incoming::Closed(code) => return Err(Failure::Closed(code)),
        };
        match v["type"].as_str() {
            Some("signal") => {
                note_signal(&self.ctx.stats, self.ctx.epoch, &v);
                self.shared.signals.fetch_add(1, Ordering::AcqRel);
                self.shared.changed.notify_one();
                if v["data"]["description"]["type"] == "offer" {
                    let to = v["from"].as_str().unwrap_or_default();
                    self.negotiate(conn, to, "answer").await?;
                }
            }
            Some("chat") => {
                self.shared.chats.fetch_add(1, Ordering::AcqRel);
                self.shared.changed.notify_one();
            }
            _ => {}
        }
        Ok(())
    }

    /// Runs one command; returns the connection to continue with, or None when done.
    async fn on_cmd(&mut self, mut conn: Conn, cmd: Cmd) -> Result<Option<Conn>, Failure> {
        let stats = self.ctx.stats.clone();
        match cmd {
            Cmd::Media => {
                conn.send(r#"{"type":"update","audio":false}"#).await?;
                conn.send(r#"{"type":"update","video":false}"#).await?;
                stats.updates.fetch_add(2, Ordering::Relaxed);
                Ok(Some(conn))
            }
            Cmd::Chat => {
                let text = json!({"type":"chat","text":format!("hello from {}", self.client)});
                conn.send(&text.to_string()).await?;
                stats.chats.fetch_add(1, Ordering::Relaxed);
                Ok(Some(conn))
            }
            Cmd::LeaveRejoin => {
                self.unseat();
                conn.leave().await?;
                // Same tab, no token: a new seat, and the offers start again from it.
                let join = join_json(&format!("p{}", self.src), &self.client, None, false);
                let (mut conn, joined) = self.ctx.connect_join(&self.room, self.src, &join).await?;
                if joined["resumed"] == true || joined["you"].as_str() == Some(&self.you) {
                    stats.error("rejoin_same_seat", || joined.to_string());
                }
                self.seated(&joined);
                self.offer_to_peers(&mut conn, &joined).await?;
                stats.rejoins.fetch_add(1, Ordering::Relaxed);
                self.shared.bump(&self.shared.rejoined);
                Ok(Some(conn))
            }
            Cmd::DropResume => {
                self.unseat();
                conn.abandon();
                let join = join_json(
                    &format!("p{}", self.src),
                    &self.client,
                    Some(&self.token),
                    true,
                );
                let (conn, joined) = self.ctx.connect_join(&self.room, self.src, &join).await?;
                if joined["you"].as_str() != Some(&self.you) || joined["resumed"] != true {
                    stats.error("resume_mismatch", || {
                        format!(
                            "wanted you={} resumed=true, got you={} resumed={}",
                            self.you, joined["you"], joined["resumed"]
                        )
                    });
                }
                self.seated(&joined);
                stats.resumes.fetch_add(1, Ordering::Relaxed);
                self.shared.bump(&self.shared.resumed);
                Ok(Some(conn))
            }
            Cmd::Leave => {
                self.unseat();
                conn.leave().await?;
                Ok(None)
            }
            Cmd::Close => {
                self.unseat();
                conn.close().await;
                Ok(None)
            }
        }
    }
}

async fn participant(
    ctx: Arc<Ctx>,
    shared: Arc<RoomShared>,
    room: String,
    src: usize,
    mut rx: mpsc::Receiver<Cmd>,
) {
    let mut p = Participant {
        client: format!("lg{}-{src:07}", ctx.run),
        ctx,
        shared,
        room,
        src,
        you: String::new(),
        token: String::new(),
        seated_now: false,
    };
    let join = join_json(&format!("p{src}"), &p.client, None, false);
    let first = p.ctx.connect_join(&p.room, src, &join).await;
    let (mut conn, joined) = match first {
        Ok(pair) => pair,
        Err(f) => {
            f.record(&p.ctx.stats);
            p.shared.bump(&p.shared.failed);
            return;
        }
    };
    p.seated(&joined);
    if let Err(f) = p.offer_to_peers(&mut conn, &joined).await {
        f.record(&p.ctx.stats);
    }
    p.shared.bump(&p.shared.joined);
    loop {
        let step = tokio::select! {
            cmd = rx.recv() => {
                let cmd = cmd.unwrap_or(Cmd::Close);
                p.on_cmd(conn, cmd).await
            }
            inc = conn.recv() => {
                let r = match inc {
                    Ok(inc) => p.on_incoming(&mut conn, inc).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(()) => Ok(Some(conn)),
                    Err(f) => {
                        // The server ended this socket: a close after an `error` it sent is
                        // that error's consequence, counted once already.
                        if !(conn.saw_error && matches!(f, Failure::Closed(_))) {
                            f.record(&p.ctx.stats);
                        }
                        p.shared.bump(&p.shared.failed);
                        Ok(None)
                    }
                }
            }
        };
        match step {
            Ok(Some(c)) => conn = c,
            Ok(None) => break,
            Err(f) => {
                f.record(&p.ctx.stats);
                p.shared.bump(&p.shared.failed);
                break;
            }
        }
    }
    p.unseat();
    // Drain commands so the conductor never blocks on a full channel of a finished participant.
    rx.close();
}
