//! More than one machine: two real instances behind HAProxy, configured from
//! `deploy/haproxy.cfg` (docs/SCALING.md). Each room lives on exactly one instance, and a
//! second HAProxy that never saw the room agrees by the hash alone. When one instance goes
//! (killed, stopped, or hung) only its rooms move: their people reconnect through HAProxy and
//! meet again on the other instance, and nobody in the other rooms notices. When it comes back
//! the moved rooms stay where they are, so late joiners still find the people already there.
//! Every participant comes from its own address, which the instances learn from HAProxy's
//! X-Forwarded-For, so the per-address limits count browsers, not HAProxy.
//!
//! Needs Debian's `haproxy` (`apt-get install -y haproxy`; `.ci/run` installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{self, handshake::client::Response};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::binary::{temp_dir, Running};
use crate::common::{client_id, Client, Ended, SOON};

type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const ROOMS: usize = 24;

/// HAProxy as a child process, killed when dropped.
struct Haproxy {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// `haproxy` on the PATH, or where Debian puts it (/usr/sbin, not on every user's PATH).
fn haproxy_binary() -> &'static str {
    ["haproxy", "/usr/sbin/haproxy"]
        .into_iter()
        .find(|bin| Command::new(bin).arg("-v").output().is_ok())
        .unwrap_or_else(|| {
            panic!(
                "haproxy is not installed: this test runs two instances behind it. \
                 Install it with `apt-get install -y haproxy` (Debian; .ci/run does)."
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `deploy/haproxy.cfg` as shipped, except for what must differ on loopback: the frontend
/// address, the room-table peer's port, logs to stderr, and `servers` in place of the example
/// servers. The hash, the room table, the checks and the timeouts are the shipped file's.
fn config_from_deploy(port: u16, peer_port: u16, servers: &[(&str, SocketAddr)]) -> String {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg"))
            .expect("deploy/haproxy.cfg exists");
    let mut out = String::new();
    let (mut bind, mut log, mut peer, mut server) = (false, false, false, false);
    for line in shipped.lines() {
        let t = line.trim_start();
        if t == "bind :80" {
            out += &format!("    bind 127.0.0.1:{port}\n");
            bind = true;
        } else if t.starts_with("log /dev/log") {
            out += "    log stderr format raw local0\n";
            log = true;
        } else if t.starts_with("peer ") {
            let name = t.split_whitespace().nth(1).unwrap();
            out += &format!("    peer {name} 127.0.0.1:{peer_port}\n");
            peer = true;
        } else if t.starts_with("server ") {
            if !server {
                for (name, addr) in servers {
                    out += &format!("    server {name} {addr}\n");
                }
            }
            server = true;
        } else {
            out += line;
            out += "\n";
        }
    }
    assert!(
        bind && log && peer && server,
        "deploy/haproxy.cfg changed shape; update config_from_deploy"
    );
    out
}

impl Haproxy {
    fn start(label: &str, servers: &[(&str, SocketAddr)]) -> Haproxy {
        let haproxy = haproxy_binary();
        let port = free_port();
        let dir = temp_dir(&format!("scaling-{label}-haproxy"));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg: PathBuf = dir.join("haproxy.cfg");
        std::fs::write(&cfg, config_from_deploy(port, free_port(), servers)).unwrap();
        let mut child = Command::new(haproxy)
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haproxy starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Haproxy { child, addr, log }.wait_listening()
    }

    fn wait_listening(mut self) -> Haproxy {
        for _ in 0..100 {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return self;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("haproxy exited with {status}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("haproxy never listened:\n{}", self.log_text());
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Its log so far (taken before a panic, so the lock is never held while unwinding).
    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (up to 5 s) for a log line after line `since` containing `needle`.
    async fn wait_log(&self, since: usize, needle: &str) {
        for _ in 0..100 {
            if self.log.lock().unwrap()[since..]
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("haproxy never logged {needle:?}:\n{}", self.log_text());
    }

    /// GETs `path` through HAProxy; returns the instance that answered (`X-Served-By`).
    async fn served_by(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(SOON, stream.read_to_end(&mut raw))
            .await
            .expect("an answer in time")
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {text}");
        served_header(text.lines())
            .unwrap_or_else(|| panic!("GET {path}: no X-Served-By in {text}"))
    }

    /// Opens `/ws/{room}` through HAProxy as a browser does after losing its socket: retrying
    /// with backoff while nothing answers. Returns the socket, the instance behind it and how
    /// many attempts failed first.
    async fn connect(&self, room: &str) -> (Client, String, usize) {
        let url = format!("ws://{}/ws/{room}", self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut delay = Duration::from_millis(50);
        let mut failed = 0;
        loop {
            match tokio::time::timeout(SOON, connect_from_own_address(&url, self.addr)).await {
                Ok(Ok((ws, response))) => {
                    let served = response
                        .headers()
                        .get("x-served-by")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_else(|| panic!("{url}: no X-Served-By on the 101"))
                        .to_string();
                    return (Client { ws }, served, failed);
                }
                // Only HAProxy's own "no server" is worth retrying; VideoMeet's refusals (429:
                // too many sockets from one address) are a failure of this setup.
                Ok(Err(tungstenite::Error::Http(refused))) if refused.status() != 503 => {
                    panic!("{url}: refused with {}", refused.status())
                }
                Ok(Err(_)) | Err(_) if Instant::now() < deadline => failed += 1,
                other => panic!("{url}: no instance answered within 10 s: {other:?}"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}

/// Opens a WebSocket to `url` (at `proxy`) from a loopback address no other socket of this
/// process used: each participant is its own "browser" to the per-address limits.
async fn connect_from_own_address(
    url: &str,
    proxy: SocketAddr,
) -> Result<(WebSocket, Response), tungstenite::Error> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let source = SocketAddr::from(([127, 1, (n / 250) as u8, (n % 250) as u8 + 1], 0));
    let socket = TcpSocket::new_v4()?;
    socket.bind(source)?;
    let stream = socket.connect(proxy).await?;
    stream.set_nodelay(true)?;
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await
}

fn served_header<'a>(mut lines: impl Iterator<Item = &'a str>) -> Option<String> {
    lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-served-by")
            .then(|| v.trim().to_string())
    })
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An instance that is killed if the test panics, so none outlives it.
struct Instance(Option<Running>);

impl Instance {
    /// The binary as it runs behind HAProxy: believing HAProxy's X-Forwarded-For. With
    /// `--limit-loopback`, so that the per-address limits count the test's loopback
    /// "browsers" as they count real ones: were the forwarded addresses not believed, every
    /// socket would seem to come from HAProxy, and the 13th on an instance would get 429.
    /// No built-in STUN/TURN: behind HAProxy it would be announced at HAProxy's host, which
    /// carries no STUN or TURN (docs/SCALING.md).
    fn start(state: &Path, extra: &[&str]) -> Instance {
        let mut args = vec![
            "--trusted-proxies",
            "127.0.0.1",
            "--limit-loopback",
            "--stun-listen",
            "off",
        ];
        args.extend_from_slice(extra);
        Instance(Some(Running::start(state, &args)))
    }

    fn run(&self) -> &Running {
        self.0.as_ref().expect("the instance runs")
    }

    fn addr(&self) -> SocketAddr {
        self.run().http
    }

    fn log_len(&self) -> usize {
        self.run().log.lock().unwrap().len()
    }

    /// (room, name) of every join it logged after log line `since`.
    fn joins(&self, since: usize) -> Vec<(String, String)> {
        self.run().log.lock().unwrap()[since..]
            .iter()
            .filter_map(|l| {
                let (_, tail) = l.split_once("] room ")?;
                let (room, what) = tail.split_once(": ")?;
                let (name, _) = what.split_once(" joined as seat ")?;
                Some((room.to_string(), name.to_string()))
            })
            .collect()
    }

    /// Waits (up to 5 s) until it has logged `count` joins since `since`; returns them.
    async fn wait_joins(&self, since: usize, count: usize) -> Vec<(String, String)> {
        for _ in 0..100 {
            let joins = self.joins(since);
            if joins.len() >= count {
                return joins;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} joins, logged: {:?}", self.joins(since));
    }

    /// One line of its own `/metrics`, asked directly (not through HAProxy).
    async fn metric(&self, name: &str) -> u64 {
        let mut stream = TcpStream::connect(self.addr()).await.unwrap();
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        tokio::time::timeout(SOON, stream.read_to_string(&mut raw))
            .await
            .expect("metrics in time")
            .unwrap();
        raw.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {raw}"))
            .trim()
            .parse()
            .unwrap()
    }

    fn end(&mut self, how: Ending) {
        match how {
            Ending::Killed => self.0.take().expect("the instance runs").kill(),
            Ending::Stopped => self.0.take().expect("the instance runs").stop(),
            Ending::Frozen => self.run().signal("-STOP"),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(running) = self.0.take() {
            running.kill();
        }
    }
}

/// How the instance goes away.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// SIGKILL, as when its machine dies: no goodbye, the connections just drop.
    Killed,
    /// SIGTERM, as `systemctl stop` or an upgrade: every socket is closed with 1001.
    Stopped,
    /// SIGSTOP, as a hung machine or a network cut: connections stay open but nothing answers,
    /// so only HAProxy's health check can tell (and then it cuts the connections).
    Frozen,
}

/// One participant: a socket through HAProxy and the seat it holds.
struct Member {
    room: String,
    name: String,
    client: Client,
    you: String,
    token: String,
}

/// Connects through HAProxy and joins `room` as a browser tab does (after a lost socket: with
/// its earlier token and `resume`). Returns the member, its `joined`, the instance it reached
/// and how many connection attempts failed first.
async fn enter(
    proxy: &Haproxy,
    room: &str,
    name: &str,
    token: Option<&str>,
) -> (Member, Value, String, usize) {
    let (mut client, served, failed) = proxy.connect(room).await;
    client
        .send(
            json!({"type":"join","name":name,"client":client_id(name),"token":token,
                     "audio":true,"video":false,"resume":token.is_some()}),
        )
        .await;
    let joined = client.recv().await;
    assert_eq!(joined["type"], "joined", "{name} in {room}: {joined}");
    assert_eq!(
        joined["ice_servers"],
        json!([]),
        "nothing announced at HAProxy's host"
    );
    let member = Member {
        room: room.to_string(),
        name: name.to_string(),
        client,
        you: joined["you"].as_str().unwrap().to_string(),
        token: joined["token"].as_str().unwrap().to_string(),
    };
    (member, joined, served, failed)
}

/// `newcomer` has just joined and got `joined`: it must list exactly the seats of `present`,
/// and each of them must hear `peer-joined` for it and nothing else.
async fn meets(present: &mut [Member], newcomer: &Member, joined: &Value) {
    let listed: BTreeSet<&str> = joined["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = present.iter().map(|m| m.you.as_str()).collect();
    assert_eq!(
        listed, expected,
        "{} in {} sees the others: {joined}",
        newcomer.name, newcomer.room
    );
    for m in present.iter_mut() {
        let heard = m.client.recv().await;
        assert_eq!(heard["type"], "peer-joined", "{}: {heard}", m.name);
        assert_eq!(
            heard["peer"]["id"],
            newcomer.you.as_str(),
            "{}: {heard}",
            m.name
        );
    }
}

/// Everyone in `group` signals everyone else, and each signal arrives from the right seat.
async fn relay(group: &mut [Member]) {
    for i in 0..group.len() {
        for j in 0..group.len() {
            if i == j {
                continue;
            }
            let (from, to) = (group[i].you.clone(), group[j].you.clone());
            let data = json!({"candidate": format!("{} to {}", group[i].name, group[j].name)});
            group[i]
                .client
                .send(json!({"type":"signal","to":to,"data":data}))
                .await;
            let got = group[j].client.recv().await;
            assert_eq!(got["type"], "signal", "{}: {got}", group[j].name);
            assert_eq!((&got["from"], &got["data"]), (&json!(from), &data));
        }
    }
}

#[tokio::test]
async fn when_an_instance_is_killed_only_its_rooms_move_and_meet_again() {
    scenario("kill", Ending::Killed).await;
}

#[tokio::test]
async fn when_an_instance_is_stopped_only_its_rooms_move_and_meet_again() {
    scenario("stop", Ending::Stopped).await;
}

#[tokio::test]
async fn when_an_instance_hangs_only_its_rooms_move_and_meet_again() {
    scenario("hang", Ending::Frozen).await;
}

async fn scenario(label: &str, ending: Ending) {
    let started = Instant::now();
    let state_a = temp_dir(&format!("scaling-{label}-a"));
    let state_b = temp_dir(&format!("scaling-{label}-b"));
    let mut a = Instance::start(&state_a, &[]);
    let b = Instance::start(&state_b, &[]);
    let a_addr = a.addr();
    let servers = [("vm1", a_addr), ("vm2", b.addr())];
    let proxy = Haproxy::start(label, &servers);

    // 1. 24 rooms of 2 or 3 through HAProxy. The page and every socket of a room reach the
    //    same instance, and everyone in a room meets everyone else and can signal them.
    let mut groups: Vec<Vec<Member>> = Vec::new();
    let mut home: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..ROOMS {
        let room = format!("room-{i:02}");
        // Room names are case-blind (the server lower-cases them): `/r/ROOM-01` is the page of
        // `room-01`, and a socket to `/ws/ROOM-01` joins it too.
        let shout = room.to_uppercase();
        let page = proxy
            .served_by(&format!("/r/{}", if i % 2 == 1 { &shout } else { &room }))
            .await;
        let mut group: Vec<Member> = Vec::new();
        for p in 0..2 + i % 2 {
            let url_room = if p == 1 { &shout } else { &room };
            let (m, joined, served, _) =
                enter(&proxy, url_room, &format!("{room}-p{p}"), None).await;
            assert_eq!(
                served, page,
                "the page and the sockets of {room} hash alike"
            );
            assert_eq!(joined["host"], p == 0);
            meets(&mut group, &m, &joined).await;
            group.push(m);
        }
        relay(&mut group).await;
        home.insert(room, page);
        groups.push(group);
    }
    let members: usize = groups.iter().map(Vec::len).sum();
    let rooms_on = |server: &str| -> BTreeSet<String> {
        home.iter()
            .filter(|(_, s)| *s == server)
            .map(|(r, _)| r.clone())
            .collect()
    };
    let (on_a, on_b) = (rooms_on("vm1"), rooms_on("vm2"));
    assert!(
        !on_a.is_empty() && !on_b.is_empty() && on_a.len() + on_b.len() == ROOMS,
        "both instances get rooms: {home:?}"
    );
    // The instances' own word: each logged the joins of its rooms and none of the others', and
    // counts exactly its rooms and their people in /metrics.
    let sizes: BTreeMap<String, usize> = groups
        .iter()
        .map(|g| (g[0].room.clone(), g.len()))
        .collect();
    let people = |rooms: &BTreeSet<String>| -> usize { rooms.iter().map(|r| sizes[r]).sum() };
    for (instance, rooms) in [(&a, &on_a), (&b, &on_b)] {
        let joins = instance.wait_joins(0, people(rooms)).await;
        let logged: BTreeSet<String> = joins.into_iter().map(|(room, _)| room).collect();
        assert_eq!(
            &logged, rooms,
            "an instance holds exactly the rooms hashed to it"
        );
        assert_eq!(instance.metric("videomeet_rooms").await, rooms.len() as u64);
        assert_eq!(
            instance.metric("videomeet_participants").await,
            people(rooms) as u64
        );
    }

    // 1b. A second HAProxy with the same file but an empty room table (a second machine in
    //     front without `peers`, or this one restarted) sends each room to the same instance by
    //     the hash alone: a late joiner through it is with the room's people.
    let other = Haproxy::start(&format!("{label}-other"), &servers);
    for group in groups.iter_mut().rev() {
        let room = group[0].room.clone();
        let name = format!("{room}-other");
        let (mut m, joined, served, _) = enter(&other, &room, &name, None).await;
        assert_eq!(
            served, home[&room],
            "both HAProxies send {room} to one instance"
        );
        meets(group, &m, &joined).await;
        m.client.send(json!({"type":"leave"})).await;
        for g in group.iter_mut() {
            let left = g.client.recv().await;
            assert_eq!(
                (&left["type"], &left["id"]),
                (&json!("peer-left"), &json!(m.you))
            );
        }
    }
    drop(other);
    let (b_before, proxy_before) = (b.log_len(), proxy.log_len());

    // 2. Instance A goes away. Its rooms' sockets end; they reconnect through HAProxy with
    //    their earlier client and token, get new seats on B (B never heard of those tokens)
    //    and meet again there. Nobody in B's rooms hears a thing.
    let died = Instant::now();
    a.end(ending);
    let (mut moved, mut stayed): (Vec<Vec<Member>>, Vec<Vec<Member>>) =
        groups.into_iter().partition(|g| on_a.contains(&g[0].room));
    let mut going_away = 0;
    for m in moved.iter_mut().flatten() {
        let end = m.client.next().await;
        match ending {
            // Mostly 1001 from A (shutdown waits up to 3 s for every session's close frame).
            // A few may still be cut by HAProxy, whose check finds A's port closed and ends what
            // is left (`shutdown-sessions`). A browser reconnects after either; both are accepted.
            Ending::Stopped if end == Err(Ended::Closed(Some(1001))) => going_away += 1,
            _ => assert_eq!(end, Err(Ended::Dropped), "{}'s socket ends with A", m.name),
        }
    }
    let mut failed_attempts = 0;
    let mut first_back = None;
    let mut regrouped = Vec::new();
    for group in moved {
        let room = group[0].room.clone();
        let mut again: Vec<Member> = Vec::new();
        for old in group {
            let (m, joined, served, failed) =
                enter(&proxy, &room, &old.name, Some(&old.token)).await;
            failed_attempts += failed;
            first_back.get_or_insert(died.elapsed());
            assert_eq!(served, "vm2", "{room} moved to the surviving instance");
            assert_eq!(
                joined["resumed"], false,
                "a token from A is unknown on B: {joined}"
            );
            meets(&mut again, &m, &joined).await;
            again.push(m);
        }
        relay(&mut again).await;
        assert_eq!(proxy.served_by(&format!("/r/{room}")).await, "vm2");
        regrouped.push(again);
    }
    let met_again = died.elapsed();
    assert_eq!(
        failed_attempts, 0,
        "HAProxy retries a connection A refuses on B: no client sees a failed attempt"
    );
    // Everyone in B's rooms: no message, no close, through all of it; and still connected.
    join_all(
        stayed
            .iter_mut()
            .flatten()
            .map(|m| m.client.expect_silence(Duration::from_millis(300))),
    )
    .await;
    for group in stayed.iter_mut() {
        relay(group).await;
        let room = &group[0].room;
        assert_eq!(proxy.served_by(&format!("/r/{room}")).await, "vm2");
    }
    let rejoined: BTreeSet<String> = b
        .wait_joins(b_before, people(&on_a))
        .await
        .into_iter()
        .map(|(room, _)| room)
        .collect();
    assert_eq!(rejoined, on_a, "only A's rooms joined B anew");
    assert_eq!(b.metric("videomeet_rooms").await, ROOMS as u64);
    assert_eq!(b.metric("videomeet_participants").await, members as u64);
    proxy.wait_log(proxy_before, "videomeet/vm1 is DOWN").await;

    // 3. A comes back on its address (restarted, or woken up). The moved rooms stay on B
    //    (HAProxy's room table), so a late joiner finds the people already there; rooms new to
    //    HAProxy go to A again.
    let proxy_before = proxy.log_len();
    let (a, a_since) = if ending == Ending::Frozen {
        a.run().signal("-CONT");
        let since = a.log_len();
        (a, since)
    } else {
        drop(a);
        let a = Instance::start(&state_a, &["--listen", &a_addr.to_string()]);
        assert_eq!(a.addr(), a_addr);
        (a, 0)
    };
    proxy.wait_log(proxy_before, "videomeet/vm1 is UP").await;
    for group in regrouped.iter_mut() {
        let room = group[0].room.clone();
        let (m, joined, served, _) = enter(&proxy, &room, &format!("{room}-late"), None).await;
        assert_eq!(served, "vm2", "{room} stays where its people are");
        meets(group, &m, &joined).await;
        group.push(m);
        relay(group).await;
    }
    let mut fresh_on_a = BTreeSet::new();
    for i in 0..ROOMS {
        let room = format!("fresh-{i:02}");
        let (_m, _, served, _) = enter(&proxy, &room, &format!("{room}-p0"), None).await;
        if served == "vm1" {
            fresh_on_a.insert(room);
        }
    }
    assert!(
        !fresh_on_a.is_empty(),
        "new rooms use the returned instance"
    );
    let logged: BTreeSet<String> = a
        .wait_joins(a_since, fresh_on_a.len())
        .await
        .into_iter()
        .map(|(room, _)| room)
        .collect();
    assert_eq!(
        logged, fresh_on_a,
        "A took new rooms only, none of the moved ones"
    );

    println!(
        "scaling ({ending:?}): {ROOMS} rooms, {members} people; A had {} rooms, B {}; A went \
         ({going_away} of its sockets closed with 1001, the others cut); the first of its {} \
         people was back on B after {:.2?}, all had met again after {:.2?}; {} new rooms of \
         {ROOMS} went to A once back; whole test {:.2?}",
        on_a.len(),
        on_b.len(),
        people(&on_a),
        first_back.unwrap(),
        met_again,
        fresh_on_a.len(),
        started.elapsed()
    );
}
