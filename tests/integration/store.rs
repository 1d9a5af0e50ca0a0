//! Nothing lost on restart: the real binary, killed with SIGKILL, comes back with its rooms,
//! passwords, hosts and seats, and its store is never torn.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::binary::{temp_dir, Running};
use crate::common::{client_id, Client};

async fn wait_for_store(dir: &std::path::Path, needle: &str) {
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(dir.join("rooms.json")) {
            if text.contains(needle) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store never mentioned {needle}");
}

#[tokio::test]
async fn after_kill_9_rooms_keep_their_password_and_host_and_tokens_resume_seats() {
    let state = temp_dir("store-kill");
    let server = Running::start(&state, &[]);
    let mut host = Client::connect(&server.ws_url("family")).await;
    let joined = host.join("Ada", &client_id("Ada"), None).await;
    let (host_id, host_token) = (joined["you"].clone(), joined["token"].clone());
    assert_eq!(joined["host"], true);
    host.send(json!({"type":"set-password","password":"open sesame"}))
        .await;
    assert_eq!(host.recv().await["type"], "room-updated");
    let mut guest = Client::connect(&server.ws_url("family")).await;
    guest
        .send(json!({"type":"join","name":"Bo","client":client_id("Bo"),"password":"open sesame","audio":true,"video":true}))
        .await;
    let guest_joined = guest.recv().await;
    assert_eq!(guest_joined["type"], "joined");
    wait_for_store(&state, "\"Bo\"").await;
    server.kill();

    let server = Running::start(&state, &[]);
    server.wait_log("restored 1 rooms and 2 seats");

    // The host comes back with its token: same seat, still host, Bo shown as reconnecting.
    let mut host = Client::connect(&server.ws_url("family")).await;
    let token = host_token.as_str().unwrap();
    let back = host.join("Ada", &client_id("Ada"), Some(token)).await;
    assert_eq!(back["you"], host_id);
    assert_eq!(back["host"], true);
    assert_eq!(back["resumed"], true);
    assert_eq!(back["password"], true);
    let peers = back["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(
        (peers[0]["name"].as_str(), peers[0]["away"].as_bool()),
        (Some("Bo"), Some(true))
    );

    // A stranger still needs the password.
    let mut stranger = Client::connect(&server.ws_url("family")).await;
    stranger
        .send(
            json!({"type":"join","name":"Eve","client":client_id("Eve"),"audio":true,"video":true}),
        )
        .await;
    let refused = stranger.recv().await;
    assert_eq!(refused["code"], "bad_password", "{refused}");

    // Bo resumes too, and the host hears it as a rejoin, not a stranger.
    let mut guest = Client::connect(&server.ws_url("family")).await;
    let bo_back = guest
        .join("Bo", &client_id("Bo"), guest_joined["token"].as_str())
        .await;
    assert_eq!(bo_back["you"], guest_joined["you"]);
    assert_eq!(bo_back["host"], false);
    let heard: Value = host.recv().await;
    assert_eq!(heard["type"], "peer-rejoined", "{heard}");
    server.stop();
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test]
async fn kill_9_at_any_moment_never_leaves_a_torn_or_empty_store() {
    let state = temp_dir("store-torn");
    let mut seed = 0x9e37_79b9_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut rooms_seen = 0;
    for round in 0..6 {
        // Churn from one address far past the default join rate.
        let lifted = [
            "--set",
            "rates.ip_joins_burst=100000",
            "--set",
            "rates.ip_connections_burst=100000",
        ];
        let server = Running::start(&state, &lifted);
        let said = server.log.lock().unwrap().join("\n");
        assert!(!said.contains("not a room store"), "round {round}: {said}");
        let url = server.ws_url(&format!("churn-{round}"));
        // Churn: people join and leave while the kill comes at a random moment.
        let churn = tokio::spawn(async move {
            for i in 0.. {
                let mut c = Client::connect(&url).await;
                c.join("p", &client_id(&format!("p{i}")), None).await;
                if i % 2 == 0 {
                    c.send(json!({"type":"leave"})).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(1100 + u64::from(next() % 900))).await;
        server.kill();
        churn.abort();
        let text = std::fs::read_to_string(state.join("rooms.json")).expect("a store exists");
        let parsed: Value = serde_json::from_str(&text).expect("the store parses whole");
        assert_eq!(parsed["version"], 1);
        let rooms = parsed["rooms"].as_array().unwrap().len();
        assert!(
            rooms >= rooms_seen,
            "rooms from earlier rounds are still there"
        );
        rooms_seen = rooms;
    }
    assert!(rooms_seen >= 5, "each round's room was kept: {rooms_seen}");
    let _ = std::fs::remove_dir_all(&state);
}

/// A room store written before issue 13 holds PBKDF2-HMAC-SHA1 hashes. They still guard their
/// rooms (a wrong password is refused, the right one joins), and the first right password
/// replaces the hash with PBKDF2-HMAC-SHA256, which the store keeps across a `kill -9`.
#[tokio::test]
async fn an_old_sha1_password_hash_still_guards_its_room_and_is_upgraded_on_the_right_password() {
    let state = temp_dir("store-rehash");
    std::fs::create_dir_all(&state).unwrap();
    // "open sesame", salt 00..0f, 60,000 iterations: python3 hashlib.pbkdf2_hmac('sha1', ...).
    let old = "pbkdf2-sha1$60000$000102030405060708090a0b0c0d0e0f$071c16db7c4b95eaafe67a8d9315651680a5ca80";
    let saved_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = json!({"version":1,"saved_at":saved_at,"rooms":[
        {"name":"legacy","idle_secs":0,"password":old,"locked":false,"removed":[],"seats":[]}
    ]});
    std::fs::write(state.join("rooms.json"), store.to_string()).unwrap();

    let join = |name: &str, password: &str| {
        json!({"type":"join","name":name,"client":client_id(name),"password":password,
               "audio":true,"video":true})
    };
    let server = Running::start(&state, &[]);
    let mut guesser = Client::connect(&server.ws_url("legacy")).await;
    guesser.send(join("Eve", "sesame")).await;
    assert_eq!(guesser.recv().await["code"], "bad_password");
    let mut ada = Client::connect(&server.ws_url("legacy")).await;
    ada.send(join("Ada", "open sesame")).await;
    assert_eq!(ada.recv().await["type"], "joined");
    wait_for_store(&state, "pbkdf2-sha256$").await;
    let text = std::fs::read_to_string(state.join("rooms.json")).unwrap();
    assert!(!text.contains("pbkdf2-sha1"), "{text}");
    server.kill();

    let server = Running::start(&state, &[]);
    let mut bo = Client::connect(&server.ws_url("legacy")).await;
    bo.send(join("Bo", "open sesame")).await;
    assert_eq!(
        bo.recv().await["type"],
        "joined",
        "the new hash is of the same password"
    );
    let mut eve = Client::connect(&server.ws_url("legacy")).await;
    eve.send(join("Eve", "open sesame!")).await;
    assert_eq!(eve.recv().await["code"], "bad_password");
    server.stop();
    let _ = std::fs::remove_dir_all(&state);
}

async fn wait_for_file(path: &std::path::Path, needle: &str) {
    for _ in 0..100 {
        if std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never mentioned {needle}", path.display());
}

fn join_msg(name: &str, password: Option<&str>, token: Option<&str>) -> Value {
    json!({"type":"join","name":name,"client":client_id(name),"password":password,
           "token":token,"audio":true,"video":true})
}

/// Joins `room` and returns the first answer (`joined` or an `error`).
async fn try_join(server: &Running, room: &str, msg: Value) -> Value {
    let mut c = Client::connect(&server.ws_url(room)).await;
    c.send(msg).await;
    c.recv().await
}

/// A damaged disk: one unreadable room entry costs that room at most, never the protection of
/// the others, and a room whose protection cannot be read comes back locked, not open; a wholly
/// unreadable file falls back to the previous generation (`rooms.json.prev`), its rooms locked
/// with their passwords, and their host, resuming with its token, can open them again.
#[tokio::test]
async fn a_damaged_store_never_gives_a_protected_room_away() {
    let state = temp_dir("store-damaged");
    let server = Running::start(&state, &[]);
    let mut tokens = std::collections::HashMap::new();
    let mut hosts = Vec::new();
    for (room, host, password) in [
        ("family", "Ada", "open sesame"),
        ("team", "Tom", "team pass"),
        ("club", "Cat", "club pass"),
    ] {
        let mut c = Client::connect(&server.ws_url(room)).await;
        let joined = c.join(host, &client_id(host), None).await;
        tokens.insert(room, joined["token"].as_str().unwrap().to_string());
        c.send(json!({"type":"set-password","password":password}))
            .await;
        assert_eq!(c.recv().await["type"], "room-updated");
        hosts.push(c);
    }
    // Two writes after the last password, so both generations hold all three.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut late = Client::connect(&server.ws_url("club")).await;
    late.send(join_msg("Dee", Some("club pass"), None)).await;
    assert_eq!(late.recv().await["type"], "joined");
    wait_for_file(&state.join("rooms.json.prev"), "\"Cat\"").await;
    wait_for_store(&state, "\"Dee\"").await;
    server.kill();
    drop(hosts);

    // One entry damaged: team's password field is no longer a string.
    let path = state.join("rooms.json");
    let mut store: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for room in store["rooms"].as_array_mut().unwrap() {
        if room["name"] == "team" {
            room["password"] = json!(42);
        }
    }
    std::fs::write(&path, store.to_string()).unwrap();
    let server = Running::start(&state, &[]);
    server.wait_log("room entry");
    let refused = try_join(&server, "team", join_msg("Eve", None, None)).await;
    assert_eq!(refused["code"], "locked", "never open: {refused}");
    let refused = try_join(&server, "family", join_msg("Eve", None, None)).await;
    assert_eq!(refused["code"], "bad_password", "{refused}");
    let refused = try_join(&server, "club", join_msg("Eve", Some("guess"), None)).await;
    assert_eq!(refused["code"], "bad_password", "{refused}");
    // Honest people still get in: the others with their passwords, team's host with its token.
    let joined = try_join(&server, "family", join_msg("Bo", Some("open sesame"), None)).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let tom = try_join(
        &server,
        "team",
        join_msg("Tom", None, Some(&tokens["team"])),
    )
    .await;
    assert_eq!(
        (tom["type"].as_str(), tom["host"].as_bool()),
        (Some("joined"), Some(true))
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let joined = try_join(&server, "family", join_msg("Cy", Some("open sesame"), None)).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    wait_for_file(&state.join("rooms.json.prev"), "\"Bo\"").await;
    server.kill();

    // The whole current file unreadable: the previous generation is used, every room locked.
    std::fs::write(
        &path,
        b"{\"version\":1,\"saved_at\":17,\"rooms\":[{\"name\":\"fam",
    )
    .unwrap();
    let server = Running::start(&state, &[]);
    server.wait_log("restored from rooms.json.prev, locked");
    let refused = try_join(&server, "family", join_msg("Eve", None, None)).await;
    assert_eq!(refused["code"], "locked", "{refused}");
    let refused = try_join(
        &server,
        "family",
        join_msg("Fay", Some("open sesame"), None),
    )
    .await;
    assert_eq!(
        refused["code"], "locked",
        "newcomers wait for the host: {refused}"
    );
    let mut ada = Client::connect(&server.ws_url("family")).await;
    let back = ada
        .join("Ada", &client_id("Ada"), Some(&tokens["family"]))
        .await;
    assert_eq!(
        (back["host"].as_bool(), back["locked"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        back["password"], true,
        "the password came back with the room"
    );
    ada.send(json!({"type":"lock","locked":false})).await;
    assert_eq!(ada.recv().await["locked"], false);
    let joined = try_join(
        &server,
        "family",
        join_msg("Fay", Some("open sesame"), None),
    )
    .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let refused = try_join(&server, "family", join_msg("Eve", Some("guess"), None)).await;
    assert_eq!(refused["code"], "bad_password", "{refused}");
    server.stop();
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test]
async fn recording_off_is_kept_across_a_restart() {
    let state = temp_dir("store-recording");
    let server = Running::start(&state, &[]);
    let mut host = Client::connect(&server.ws_url("no-rec")).await;
    let joined = host.join("Ada", &client_id("Ada"), None).await;
    host.send(json!({"type":"allow-recording","allowed":false}))
        .await;
    assert_eq!(host.recv().await["recording_allowed"], false);
    wait_for_store(&state, "\"recording_off\":true").await;
    server.kill();

    let server = Running::start(&state, &[]);
    server.wait_log("restored 1 rooms");
    let mut host = Client::connect(&server.ws_url("no-rec")).await;
    let back = host
        .join("Ada", &client_id("Ada"), joined["token"].as_str())
        .await;
    assert_eq!(back["recording_allowed"], false);
    host.send(json!({"type":"update","recording":true})).await;
    assert_eq!(host.recv().await["code"], "recording_off");
    server.stop();
}
