//! The signaling rules of docs/PROTOCOL.md, each against a real server on loopback.

use crate::common;

use std::time::Duration;

use crate::common::{client_id, Client, Server};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn two_people_meet_and_signals_flow_between_them() {
    let server = Server::start(&[]).await;
    let (mut ada, joined) = server.join("team-standup", "ada").await;
    assert_eq!(joined["host"], true);
    assert_eq!(joined["peers"], json!([]));
    assert_eq!(joined["ice_servers"], json!([]));
    assert_eq!(joined["token"].as_str().unwrap().len(), 32, "128-bit token");
    let ada_id = joined["you"].as_str().unwrap().to_string();

    let (mut bo, joined) = server.join("team-standup", "bo").await;
    assert_eq!(joined["host"], false);
    assert_eq!(joined["peers"][0]["id"], ada_id.as_str());
    assert_eq!(joined["peers"][0]["name"], "ada");
    let bo_id = joined["you"].as_str().unwrap().to_string();

    let seen = ada.recv().await;
    assert_eq!(seen["type"], "peer-joined");
    assert_eq!(seen["peer"]["id"], bo_id.as_str());
    assert_eq!(seen["peer"]["audio"], true);

    // Offers and answers relay untouched, with `from` set by the server.
    let offer = json!({"description":{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}});
    bo.send(json!({"type":"signal","to":ada_id,"data":offer, "from":"forged"}))
        .await;
    let got = ada.recv().await;
    assert_eq!(got, json!({"type":"signal","from":bo_id,"data":offer}));

    ada.send(json!({"type":"update","video":false})).await;
    let upd = bo.recv().await;
    assert_eq!(upd["type"], "peer-updated");
    assert_eq!(upd["peer"]["video"], false);
    assert_eq!(upd["peer"]["audio"], true);

    bo.send(json!({"type":"leave"})).await;
    let left = ada.recv().await;
    assert_eq!(left, json!({"type":"peer-left","id":bo_id}));
    assert_eq!(bo.until_closed().await.0, Some(1000));
    server.shutdown().await;
}

#[tokio::test]
async fn the_seventh_join_is_told_the_room_is_full() {
    let server = Server::start(&[]).await;
    let mut seated = Vec::new();
    for n in 0..6 {
        seated.push(server.join("full", &format!("p{n}")).await.0);
    }
    let mut seventh = server.client("full").await;
    seventh
        .send(json!({"type":"join","name":"late","client":client_id("late"),"audio":false,"video":false}))
        .await;
    let (code, seen) = seventh.until_closed().await;
    assert_eq!(seen[0]["type"], "error");
    assert_eq!(seen[0]["code"], "room_full");
    assert_eq!(code, Some(4001));
    assert_eq!(server.metric("videomeet_participants").await, 6.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_rejoin_with_the_token_takes_the_seat_over_quietly() {
    let server = Server::start(&[]).await;
    let (mut ada, first) = server.join("r", "ada").await;
    let (mut bo, _) = server.join("r", "bo").await;
    assert_eq!(ada.recv().await["type"], "peer-joined");

    let mut second_tab = server.client("r").await;
    let again = second_tab
        .join("ada", &client_id("ada"), first["token"].as_str())
        .await;
    assert_eq!(again["you"], first["you"], "same seat, same id");
    assert_eq!(again["token"], first["token"]);
    assert_eq!(again["host"], true, "host rights kept");
    assert_eq!(again["resumed"], true);
    assert_eq!(first["resumed"], false);
    assert_eq!(again["peers"].as_array().unwrap().len(), 1);

    // The old tab is told and closed.
    let (code, seen) = ada.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], "replaced");
    assert_eq!(code, Some(4000));

    // The other side gets one peer-rejoined: no second peer-joined, no peer-left.
    let note = bo.recv().await;
    assert_eq!(note["type"], "peer-rejoined");
    assert_eq!(note["peer"]["id"], first["you"]);
    assert_eq!(note["reset"], true);
    bo.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(server.metric("videomeet_participants").await, 2.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_known_client_with_a_wrong_or_missing_token_gets_its_own_seat() {
    let server = Server::start(&[]).await;
    let (mut ada, first) = server.join("r", "ada").await;
    let mut imposters = Vec::new();
    for token in [
        None,
        Some("0123456789abcdef0123456789abcdef"),
        Some("nonsense"),
    ] {
        let mut imposter = server.client("r").await;
        let joined = imposter.join("ada", &client_id("ada"), token).await;
        assert_ne!(joined["you"], first["you"]);
        assert_eq!(ada.recv().await["type"], "peer-joined", "not a takeover");
        imposters.push(imposter);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_too_large_message_closes_only_that_socket_and_900_kib_still_relays() {
    let server = Server::start(&[]).await;
    let (mut ada, a) = server.join("big", "ada").await;
    let (mut bo, _) = server.join("big", "bo").await;
    let (mut cy, _) = server.join("big", "cy").await;
    ada.recv().await;
    ada.recv().await;
    bo.recv().await;

    let payload = "x".repeat(900 * 1024);
    bo.send(json!({"type":"signal","to":a["you"],"data":payload}))
        .await;
    let got = ada.recv().await;
    assert_eq!(got["data"].as_str().unwrap().len(), 900 * 1024);

    let huge = format!(
        r#"{{"type":"signal","to":{},"data":"{}"}}"#,
        a["you"],
        "y".repeat(1024 * 1024)
    );
    cy.send_text(huge).await;
    let (code, seen) = cy.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], "too_large");
    assert_eq!(code, Some(1009));

    // Everyone else carries on; the closed socket's seat is held for it to come back.
    let away = ada.recv().await;
    assert_eq!(away["type"], "peer-updated");
    assert_eq!(away["peer"]["away"], true);
    bo.send(json!({"type":"signal","to":a["you"],"data":"still here"}))
        .await;
    let got = ada.recv().await;
    assert_eq!(got["data"], "still here");
    assert!(server.metric("videomeet_frames_rejected_total").await >= 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_messages_get_bad_request_and_the_socket_stays() {
    let server = Server::start(&[]).await;
    let (mut ada, a) = server.join("r", "ada").await;
    let (mut bo, _) = server.join("r", "bo").await;
    ada.recv().await;
    for bad in [
        "not json",
        "[1,2]",
        r#"{"type":"dance"}"#,
        r#"{"type":"signal","to":"x"}"#,
    ] {
        bo.send_text(bad.to_string()).await;
        let err = bo.recv().await;
        assert_eq!(err["type"], "error", "{bad}");
        assert_eq!(err["code"], "bad_request", "{bad}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    bo.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(bo.recv().await["code"], "bad_request");
    bo.send(json!({"type":"signal","to":a["you"],"data":1}))
        .await;
    assert_eq!(ada.recv().await["data"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_first_message_must_be_a_join_in_time() {
    let server = Server::start(&[("timers.join_timeout_secs", "1")]).await;
    let mut early = server.client("r").await;
    early
        .send(json!({"type":"signal","to":"1","data":{}}))
        .await;
    let (code, seen) = early.until_closed().await;
    assert_eq!(seen[0]["code"], "bad_request");
    assert_eq!(code, Some(1008));

    let mut idle = server.client("r").await;
    let started = std::time::Instant::now();
    let (code, _) = idle.until_closed().await;
    assert_eq!(code, Some(1008));
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.shutdown().await;
}

#[tokio::test]
async fn signals_never_cross_rooms() {
    let server = Server::start(&[]).await;
    let (mut ada, _) = server.join("one", "ada").await;
    let (mut bo, b) = server.join("two", "bo").await;
    ada.send(json!({"type":"signal","to":b["you"],"data":"psst"}))
        .await;
    let (_bo2, _) = server.join("two", "bo2").await;
    // bo hears of bo2, never of ada's signal.
    ada.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(bo.recv().await["type"], "peer-joined");
    bo.expect_silence(Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_socket_is_dropped_and_its_seat_freed_after_grace() {
    let server = Server::start(&[
        ("timers.ping_secs", "1"),
        ("timers.timeout_secs", "2"),
        ("timers.seat_grace_secs", "1"),
    ])
    .await;
    let (mut ada, _) = server.join("r", "ada").await;
    // Bo joins and then stops reading and answering pings (a frozen laptop).
    let (bo, b) = server.join("r", "bo").await;
    assert_eq!(ada.recv().await["type"], "peer-joined");
    let frozen = bo; // never polled again, so pongs are never sent
    let away = ada.recv().await;
    assert_eq!(away["type"], "peer-updated");
    assert_eq!(away["peer"]["away"], true);
    let left = ada.recv().await;
    assert_eq!(left, json!({"type":"peer-left","id":b["you"]}));
    drop(frozen);
    server.shutdown().await;
}

/// The other half of the test above: a socket that says nothing but answers pings is pinged
/// on time and keeps its seat well past the silence timeout.
#[tokio::test]
async fn an_idle_socket_that_answers_pings_keeps_its_seat() {
    let server = Server::start(&[("timers.ping_secs", "1"), ("timers.timeout_secs", "2")]).await;
    let (mut ada, _) = server.join("r", "ada").await;
    let (mut bo, _) = server.join("r", "bo").await;
    assert_eq!(ada.recv().await["type"], "peer-joined");
    let (a, b) = tokio::join!(
        ada.pings_over(Duration::from_secs(5)),
        bo.pings_over(Duration::from_secs(5))
    );
    assert!(a >= 3 && b >= 3, "a ping a second: {a} and {b} in 5 s");
    server.shutdown().await;
}

#[tokio::test]
async fn a_lost_socket_can_resume_its_seat_within_grace() {
    let server = Server::start(&[("timers.seat_grace_secs", "30")]).await;
    let (mut ada, _) = server.join("r", "ada").await;
    let (bo, b) = server.join("r", "bo").await;
    ada.recv().await;
    // Drop the TCP connection without a close frame, as a network blip does.
    drop(bo);
    let away = ada.recv().await;
    assert_eq!(away["peer"]["away"], true);
    assert_eq!(
        server.metric("videomeet_frames_rejected_total").await,
        0.0,
        "a lost connection is not a bad frame"
    );

    let mut back = server.client("r").await;
    back.send(json!({"type":"join","name":"bo","client":client_id("bo"),"token":b["token"],"audio":true,"video":true,"resume":true}))
        .await;
    let joined = back.recv().await;
    assert_eq!(joined["you"], b["you"]);
    let note = ada.recv().await;
    assert_eq!(note["type"], "peer-rejoined");
    assert_eq!(note["reset"], false);
    assert_eq!(note["peer"]["away"], false);
    server.shutdown().await;
}

#[tokio::test]
async fn host_passes_to_the_longest_present_when_the_host_leaves() {
    let server = Server::start(&[]).await;
    let (mut ada, _) = server.join("r", "ada").await;
    let (mut bo, b) = server.join("r", "bo").await;
    let (mut cy, _) = server.join("r", "cy").await;
    ada.recv().await;
    ada.recv().await;
    bo.recv().await;
    ada.close().await;
    for c in [&mut bo, &mut cy] {
        assert_eq!(c.recv().await["type"], "peer-left");
        let host = c.recv().await;
        assert_eq!(host["type"], "peer-updated");
        assert_eq!(host["peer"]["id"], b["you"]);
        assert_eq!(host["peer"]["host"], true);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let server = Server::start(&[]).await;
    let (mut ada, _) = server.join("r", "ada").await;
    let stop = tokio::spawn(server.shutdown());
    let (code, _) = ada.until_closed().await;
    assert_eq!(code, Some(1001));
    stop.await.unwrap();
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_dropped_not_the_server() {
    let server = Server::start(&[
        ("caps.max_message_bytes", "8192"),
        ("arenas.outbound_per_socket_kib", "16"),
    ])
    .await;
    let (mut ada, a) = server.join("r", "ada").await;
    let (slow, s) = server.join("r", "slow").await;
    ada.recv().await;
    let blob = "z".repeat(7000);
    // The slow client never reads; fill its queue and socket buffers until the server gives up.
    let mut dropped = false;
    for _ in 0..20_000 {
        // Ada signals to the slow seat; its messages pile up.
        ada.send(json!({"type":"signal","to":s["you"],"data":blob}))
            .await;
        if server.metric("videomeet_slow_clients_dropped_total").await >= 1.0 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the slow reader was dropped");
    // Ada is unharmed.
    let (mut cy, _) = server.join("r", "cy").await;
    cy.send(json!({"type":"signal","to":a["you"],"data":"hi"}))
        .await;
    loop {
        let m = ada.recv().await;
        if m["type"] == "signal" {
            assert_eq!(m["data"], "hi");
            break;
        }
    }
    drop(slow);
    server.shutdown().await;
}

/// Sockets that stop reading fill the outbound arena (each under its own cap: two of them
/// can hold the 1 MiB here while their sessions wait on a stalled write); a reading socket's
/// next message must still find room, so the pair in another room keeps talking and only
/// the non-readers are dropped. (Before the arena kept a reserve for short queues, every
/// message to a reading socket failed while the arena was full, and dropped that socket as
/// too slow: `bench/run.sh flood64` lost 5-20 honest participants a run.)
#[tokio::test]
async fn sockets_that_stop_reading_cannot_take_the_room_a_reading_socket_needs() {
    let server = Server::start(&[
        ("caps.max_message_bytes", "8192"),
        ("arenas.outbound_mib", "1"),
        ("rates.socket_messages_burst", "1000000"),
        ("rates.socket_messages_per_sec", "1000000"),
    ])
    .await;
    let (mut ada, _) = server.join("flood", "ada").await;
    let (n1, a1) = server.join("flood", "n1").await;
    let (n2, a2) = server.join("flood", "n2").await;
    let (mut bo, b) = server.join("calm", "bo").await;
    let (mut cy, c) = server.join("calm", "cy").await;
    bo.recv().await; // cy joined
    let arena = r#"videomeet_arena_used{arena="outbound"}"#;
    // For 3 s, fill the non-readers' queues (and their sockets' kernel buffers) past what the
    // arena holds, while the pair only answers pings.
    let to = [a1["you"].clone(), a2["you"].clone()];
    let wait = Duration::from_secs(4);
    tokio::join!(
        flood_for(&mut ada, &to, Duration::from_secs(3)),
        bo.pings_over(wait),
        cy.pings_over(wait)
    );
    let held = server.metric(arena).await;
    assert!(
        held > 700_000.0,
        "the non-readers hold most of the arena: {held}"
    );
    // The pair in the other room trades offer-sized messages while the flood goes on.
    let offer = "o".repeat(4000);
    let talk = async {
        for k in 0..40 {
            bo.send(json!({"type":"signal","to":c["you"],"data":format!("{k} {offer}")}))
                .await;
            let m = cy.recv().await;
            assert_eq!(
                m["data"],
                format!("{k} {offer}"),
                "cy hears bo: {}",
                m["type"]
            );
            cy.send(json!({"type":"signal","to":b["you"],"data":format!("{k} {offer}")}))
                .await;
            let m = bo.recv().await;
            assert_eq!(
                m["data"],
                format!("{k} {offer}"),
                "bo hears cy: {}",
                m["type"]
            );
        }
    };
    tokio::join!(flood_for(&mut ada, &to, Duration::from_secs(2)), talk);
    assert!(
        server.metric("videomeet_slow_clients_dropped_total").await <= 2.0,
        "only the non-readers are dropped"
    );
    drop((n1, n2));
    server.shutdown().await;
}

/// Sends signals of 4,000 bytes (the size of the pair's, so what the arena has left is never room for one) to `to` in turn for `how_long`, as fast as the socket takes them.
async fn flood_for(from: &mut Client, to: &[Value], how_long: Duration) {
    let blob = "z".repeat(4000);
    let until = tokio::time::Instant::now() + how_long;
    let mut i = 0;
    while tokio::time::Instant::now() < until {
        from.send(json!({"type":"signal","to":to[i % to.len()],"data":blob}))
            .await;
        i += 1;
    }
}

#[tokio::test]
async fn sockets_past_the_budget_get_503_before_the_upgrade() {
    // 1 MiB of socket arena at 512 KiB each admits two sockets.
    let server = Server::start(&[("arenas.sockets_mib", "1"), ("arenas.socket_kib", "512")]).await;
    let _a = server.client("r").await;
    let _b = server.client("r").await;
    let refused = tokio_tungstenite::connect_async(server.ws_url("r")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn tricklers_cannot_pass_the_in_flight_arena_and_honest_clients_still_meet() {
    use tokio::io::AsyncWriteExt;
    let server =
        Server::start(&[("arenas.in_flight_mib", "1"), ("timers.message_secs", "2")]).await;
    // Three participants each begin an almost-1 MiB frame and send 600 KB of it: 1.8 MB
    // wanted, 1 MiB allowed. (They join first: a socket without a seat may send no more than
    // a join's worth, see a_message_longer_than_a_join_before_joining_is_refused.)
    let mut tricklers = Vec::new();
    for n in 0..3 {
        let mut raw = server.raw_ws_joined("flood", &format!("trickler{n}")).await;
        raw.write_all(&common::masked_text_header(1_000_000))
            .await
            .unwrap();
        tricklers.push(raw);
    }
    let chunk = vec![b'x'; 60_000];
    let writes = tricklers.into_iter().map(|mut raw| {
        let chunk = chunk.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                if raw.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            raw
        })
    });
    let _held: Vec<_> = writes.collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let used = server
        .metric("videomeet_arena_used{arena=\"in_flight\"}")
        .await;
    assert!(
        used <= (1 << 20) as f64,
        "in-flight {used} within its arena"
    );
    // Large messages may take three quarters of the arena; the last quarter stays for offers.
    assert!(
        used >= 700_000.0 && used <= (3 << 18) as f64 + 4096.0,
        "the tricklers did fill what large messages may take ({used})"
    );

    // Meanwhile honest people join and talk at once.
    let started = std::time::Instant::now();
    let (mut ada, a) = server.join("honest", "ada").await;
    let (mut bo, _) = server.join("honest", "bo").await;
    ada.recv().await;
    bo.send(json!({"type":"signal","to":a["you"],"data":{"candidate":"x".repeat(200)}}))
        .await;
    assert_eq!(ada.recv().await["type"], "signal");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Past the message deadline the tricklers are cut off and the arena is free again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let used = server
        .metric("videomeet_arena_used{arena=\"in_flight\"}")
        .await;
    assert_eq!(used, 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_longer_than_a_join_before_joining_is_refused() {
    let server = Server::start(&[]).await;
    let mut c = server.client("r").await;
    let name = "n".repeat(3000);
    c.send(json!({"type":"join","name":name,"client":"long-join-1","audio":true,"video":true}))
        .await;
    let (code, seen) = c.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], "too_large", "{seen:?}");
    assert_eq!(code, Some(1009));
    // After joining, the same length is fine.
    let (mut ada, a) = server.join("r", "ada").await;
    let (mut bo, _) = server.join("r", "bo").await;
    ada.recv().await;
    bo.send(json!({"type":"signal","to":a["you"],"data":"s".repeat(3000)}))
        .await;
    assert_eq!(ada.recv().await["data"].as_str().unwrap().len(), 3000);
    server.shutdown().await;
}
