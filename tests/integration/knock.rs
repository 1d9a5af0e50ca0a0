//! Knock to enter ("Ask to join") and the generic room message, against a real server on
//! loopback with real WebSocket clients; knocks across a `kill -9` with the real binary.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::binary::{temp_dir, Running};
use crate::common::{client_id, Client, Server};

/// Sends a join for `name` (client id from the name) and returns the first answer.
async fn knock(c: &mut Client, name: &str, token: Option<&str>) -> Value {
    c.send(json!({"type":"join","name":name,"client":client_id(name),"token":token,"audio":false,"video":false}))
        .await;
    c.recv().await
}

/// The host of `room` with Bo seated, and "Ask to join" turned on.
async fn asking(server: &Server, room: &str) -> (Client, Value, Client, Value) {
    let (mut host, h) = server.join(room, "host").await;
    let (mut bo, b) = server.join(room, "bo").await;
    assert_eq!(host.recv().await["type"], "peer-joined");
    host.send(json!({"type":"ask-to-join","on":true})).await;
    let asks = json!({"type":"room-updated","locked":false,"password":false,"ask":true,"recording_allowed":true});
    assert_eq!(host.recv().await, asks);
    assert_eq!(bo.recv().await, asks);
    (host, h, bo, b)
}

#[tokio::test]
async fn a_newcomer_knocks_the_host_admits_and_it_joins_under_the_knocks_id() {
    let server = Server::start(&[]).await;
    let (mut host, h, mut bo, _) = asking(&server, "knock").await;
    let mut guest = server.client("knock").await;
    let waiting = knock(&mut guest, "Gus", None).await;
    assert_eq!(waiting["type"], "knocking", "{waiting}");
    let id = waiting["id"].clone();
    assert_eq!(
        host.recv().await,
        json!({"type":"knock","id":id,"name":"Gus"})
    );

    // While waiting it is nobody in the room: its chat and room messages go nowhere.
    guest.send(json!({"type":"chat","text":"let me in"})).await;
    assert_eq!(guest.recv().await["code"], "bad_request");
    guest
        .send(json!({"type":"room-message","data":{"kind":"reaction","emoji":"👋"}}))
        .await;
    assert_eq!(guest.recv().await["code"], "bad_request");
    bo.expect_silence(Duration::from_millis(200)).await;

    // Only the host may admit.
    bo.send(json!({"type":"admit","id":id})).await;
    assert_eq!(bo.recv().await["code"], "not_host");
    host.send(json!({"type":"admit","id":id})).await;
    assert_eq!(guest.recv().await, json!({"type":"admitted"}));
    assert_eq!(host.recv().await, json!({"type":"knock-gone","id":id}));
    let joined = knock(&mut guest, "Gus", waiting["token"].as_str()).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["you"], id);
    assert_eq!(joined["resumed"], false);
    assert_eq!(joined["ask"], true);
    assert_eq!(joined["peers"][0]["id"], h["you"]);
    for c in [&mut host, &mut bo] {
        let seen = c.recv().await;
        assert_eq!(seen["type"], "peer-joined");
        assert_eq!(seen["peer"]["id"], id);
    }
    assert_eq!(server.metric("videomeet_knocks_admitted_total").await, 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_denied_knocker_is_told_and_may_not_knock_again_at_once() {
    let server = Server::start(&[]).await;
    let (mut host, _, _bo, _) = asking(&server, "deny").await;
    let mut guest = server.client("deny").await;
    let waiting = knock(&mut guest, "Gus", None).await;
    let id = waiting["id"].clone();
    assert_eq!(host.recv().await["type"], "knock");
    host.send(json!({"type":"deny","id":id})).await;
    let (code, seen) = guest.until_closed().await;
    assert_eq!(seen[0]["code"], "denied", "{seen:?}");
    assert_eq!(code, Some(4008));
    assert_eq!(host.recv().await, json!({"type":"knock-gone","id":id}));

    // At once again: refused before any knock reaches the host.
    let mut again = server.client("deny").await;
    let answer = knock(&mut again, "Gus", waiting["token"].as_str()).await;
    assert_eq!(answer["code"], "denied");
    assert_eq!(again.until_closed().await.0, Some(4008));
    host.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(server.metric("videomeet_knocks_denied_total").await, 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_knock_left_waiting_is_shown_to_a_host_who_arrives_later_and_resumed_seats_never_knock() {
    let server = Server::start(&[]).await;
    let (mut host, h, bo, b) = asking(&server, "later").await;
    let mut guest = server.client("later").await;
    let waiting = knock(&mut guest, "Gus", None).await;
    assert_eq!(host.recv().await["type"], "knock");
    // The host's connection drops; Bo's too. Both resume with their tokens: no knock.
    drop(host);
    drop(bo);
    let mut host = server.client("later").await;
    let back = host
        .join("host", &client_id("host"), h["token"].as_str())
        .await;
    assert_eq!(back["resumed"], true);
    assert_eq!(
        back["knocks"],
        json!([{"id":waiting["id"],"name":"Gus"}]),
        "the host is shown who waits"
    );
    let mut bo = server.client("later").await;
    let bo_back = bo.join("bo", &client_id("bo"), b["token"].as_str()).await;
    assert_eq!(bo_back["resumed"], true);
    assert_eq!(bo_back["knocks"], json!([]), "only the host sees knocks");

    // The host leaves for good: Bo is host now and is shown the knock.
    host.send(json!({"type":"leave"})).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(bo.recv().await);
    }
    assert!(
        seen.contains(&json!({"type":"knock","id":waiting["id"],"name":"Gus"})),
        "{seen:?}"
    );
    // The knocker gives up: off Bo's list.
    guest.send(json!({"type":"leave"})).await;
    assert_eq!(
        bo.recv().await,
        json!({"type":"knock-gone","id":waiting["id"]})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn knocks_respect_the_seat_cap_and_the_per_address_limit() {
    let config = videomeet::Config {
        limit_loopback: true,
        ..videomeet::Config::default()
    };
    let server = Server::start_with(config, &[("caps.peers_per_room", "3")]).await;
    let mut host = server.client_from([127, 30, 0, 1], "cap").await;
    host.join("host", &client_id("host"), None).await;
    host.send(json!({"type":"ask-to-join","on":true})).await;
    assert_eq!(host.recv().await["ask"], true);
    let home = [127, 30, 0, 7];
    let mut a = server.client_from(home, "cap").await;
    let ka = knock(&mut a, "a", None).await;
    let mut b = server.client_from(home, "cap").await;
    let kb = knock(&mut b, "b", None).await;
    assert_eq!(
        (ka["type"].as_str(), kb["type"].as_str()),
        (Some("knocking"), Some("knocking"))
    );
    // A third knock from the same address is one too many.
    let mut c = server.client_from(home, "cap").await;
    assert_eq!(knock(&mut c, "c", None).await["code"], "rate_limited");
    // Another address may; two admits fill the room's 3 seats, the third waits.
    let mut d = server.client_from([127, 30, 0, 9], "cap").await;
    let kd = knock(&mut d, "d", None).await;
    for _ in 0..3 {
        assert_eq!(host.recv().await["type"], "knock");
    }
    host.send(json!({"type":"admit","id":ka["id"]})).await;
    host.send(json!({"type":"admit","id":kb["id"]})).await;
    host.send(json!({"type":"admit","id":kd["id"]})).await;
    assert_eq!(host.recv().await["type"], "knock-gone");
    assert_eq!(host.recv().await["type"], "knock-gone");
    assert_eq!(host.recv().await["code"], "no_free_seat");
    assert_eq!(a.recv().await["type"], "admitted");
    assert_eq!(
        knock(&mut a, "a", ka["token"].as_str()).await["type"],
        "joined"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_room_message_reaches_everyone_within_its_rate_and_size() {
    let server = Server::start(&[("rates.room_messages_burst", "3")]).await;
    let (mut ada, a) = server.join("react", "ada").await;
    let (mut bo, _) = server.join("react", "bo").await;
    assert_eq!(ada.recv().await["type"], "peer-joined");
    let data = json!({"kind":"reaction","emoji":"🎉"});
    ada.send(json!({"type":"room-message","data":data})).await;
    for c in [&mut ada, &mut bo] {
        assert_eq!(
            c.recv().await,
            json!({"type":"room-message","from":a["you"],"data":data})
        );
    }
    // Past the size cap: refused, nobody else hears, the socket stays.
    let big = json!({"kind":"x","pad":"p".repeat(600)});
    ada.send(json!({"type":"room-message","data":big})).await;
    assert_eq!(ada.recv().await["code"], "bad_request");
    bo.expect_silence(Duration::from_millis(200)).await;
    // Past the rate (burst 3, one already spent): slow_down, the rest dropped.
    for _ in 0..4 {
        ada.send(json!({"type":"room-message","data":data})).await;
    }
    let mut codes = Vec::new();
    for _ in 0..4 {
        let m = ada.recv().await;
        codes.push(m["type"].as_str().unwrap().to_string() + m["code"].as_str().unwrap_or(""));
    }
    assert_eq!(
        codes.iter().filter(|c| *c == "room-message").count(),
        2,
        "{codes:?}"
    );
    assert!(codes.contains(&"errorslow_down".to_string()), "{codes:?}");
    assert_eq!(bo.recv().await["type"], "room-message");
    assert_eq!(bo.recv().await["type"], "room-message");
    bo.expect_silence(Duration::from_millis(200)).await;
    assert!(server.metric("videomeet_room_messages_dropped_total").await >= 2.0);
    server.shutdown().await;
}

/// Issue 16: a chat line with U+200F (RTL keyboards insert it) was refused with `bad_request`.
#[tokio::test]
async fn chat_with_a_right_to_left_mark_is_relayed_and_overrides_are_refused() {
    let server = Server::start(&[]).await;
    let (mut ada, _) = server.join("rtl", "ada").await;
    let text = "\u{5E9}\u{5DC}\u{5D5}\u{5DD}\u{200F}!";
    ada.send(json!({"type":"chat","text":text})).await;
    let line = ada.recv().await;
    assert_eq!(
        (line["type"].as_str(), line["text"].as_str()),
        (Some("chat"), Some(text))
    );
    ada.send(json!({"type":"chat","text":"abc\u{202E}fdp.exe"}))
        .await;
    assert_eq!(ada.recv().await["code"], "bad_request");
    server.shutdown().await;
}

#[tokio::test]
async fn after_kill_9_a_waiting_knock_comes_back_and_the_host_sees_it() {
    let state = temp_dir("store-knock");
    let server = Running::start(&state, &[]);
    let mut host = Client::connect(&server.ws_url("family")).await;
    let h = host.join("Ada", &client_id("Ada"), None).await;
    host.send(json!({"type":"ask-to-join","on":true})).await;
    assert_eq!(host.recv().await["ask"], true);
    let mut guest = Client::connect(&server.ws_url("family")).await;
    let waiting = knock(&mut guest, "Gus", None).await;
    assert_eq!(waiting["type"], "knocking");
    assert_eq!(host.recv().await["type"], "knock");
    for _ in 0..50 {
        let text = std::fs::read_to_string(state.join("rooms.json")).unwrap_or_default();
        if text.contains("\"Gus\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();

    let server = Running::start(&state, &[]);
    server.wait_log("restored 1 rooms");
    // The knocker reconnects first (its backoff is short): the same knock, still waiting.
    let mut guest = Client::connect(&server.ws_url("family")).await;
    let again = knock(&mut guest, "Gus", waiting["token"].as_str()).await;
    assert_eq!(
        (again["type"].as_str(), &again["id"]),
        (Some("knocking"), &waiting["id"])
    );
    // The host resumes and is shown it, and still asks newcomers to knock.
    let mut host = Client::connect(&server.ws_url("family")).await;
    let back = host
        .join("Ada", &client_id("Ada"), h["token"].as_str())
        .await;
    assert_eq!(back["ask"], true);
    assert_eq!(back["knocks"], json!([{"id":waiting["id"],"name":"Gus"}]));
    host.send(json!({"type":"admit","id":waiting["id"]})).await;
    assert_eq!(guest.recv().await["type"], "admitted");
    let joined = knock(&mut guest, "Gus", waiting["token"].as_str()).await;
    assert_eq!(
        (joined["type"].as_str(), &joined["you"]),
        (Some("joined"), &waiting["id"])
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&state);
}
