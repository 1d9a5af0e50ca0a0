//! Chat, raised hands and the host's controls, against a real server on loopback.

use std::time::Duration;

use crate::common::{client_id, Server};
use serde_json::json;

#[tokio::test]
async fn chat_reaches_everyone_and_late_joiners_get_the_history() {
    let server = Server::start(&[]).await;
    let (mut ada, a) = server.join("chat", "ada").await;
    let (mut bo, _) = server.join("chat", "bo").await;
    ada.recv().await;
    let payload = "<img src=x onerror=alert(1)> & \"quotes\"";
    ada.send(json!({"type":"chat","text":payload})).await;
    for c in [&mut ada, &mut bo] {
        let line = c.recv().await;
        assert_eq!(line["type"], "chat");
        assert_eq!(line["from"], a["you"]);
        assert_eq!(line["name"], "ada");
        assert_eq!(
            line["text"], payload,
            "text travels verbatim; the client renders it as text"
        );
        assert!(line["ts"].as_u64().unwrap() > 1_600_000_000_000);
    }
    let (_cy, joined) = server.join("chat", "cy").await;
    assert_eq!(joined["chat"][0]["text"], payload);
    assert_eq!(bo.recv().await["type"], "peer-joined");

    bo.send(json!({"type":"chat","text":"x".repeat(2049)}))
        .await;
    assert_eq!(bo.recv().await["code"], "bad_request");
    server.shutdown().await;
}

#[tokio::test]
async fn chat_history_is_bounded() {
    let server = Server::start(&[]).await;
    let (mut ada, _) = server.join("hist", "ada").await;
    for n in 0..40 {
        ada.send(json!({"type":"chat","text":format!("{n:04}{}", "m".repeat(1000))}))
            .await;
        ada.recv().await;
    }
    let (_bo, joined) = server.join("hist", "bo").await;
    let chat = joined["chat"].as_array().unwrap();
    let bytes: usize = chat.iter().map(|l| l["text"].as_str().unwrap().len()).sum();
    assert!(bytes <= 16 * 1024, "{bytes}");
    assert!(
        chat.last().unwrap()["text"]
            .as_str()
            .unwrap()
            .starts_with("0039"),
        "newest kept"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_raised_hand_shows_to_everyone() {
    let server = Server::start(&[]).await;
    let (mut ada, a) = server.join("hands", "ada").await;
    let (mut bo, _) = server.join("hands", "bo").await;
    ada.recv().await;
    ada.send(json!({"type":"update","hand":true})).await;
    let upd = bo.recv().await;
    assert_eq!(upd["peer"]["id"], a["you"]);
    assert_eq!(upd["peer"]["hand"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn the_host_sets_a_password_and_joiners_need_it() {
    let server = Server::start(&[]).await;
    let (mut host, _) = server.join("secret", "host").await;
    host.send(json!({"type":"set-password","password":"open sesame"}))
        .await;
    let upd = host.recv().await;
    assert_eq!(
        upd,
        json!({"type":"room-updated","locked":false,"password":true,"ask":false,"recording_allowed":true})
    );

    for wrong in [None, Some("open says me")] {
        let mut guest = server.client("secret").await;
        guest
            .send(json!({"type":"join","name":"guest","client":client_id("guest"),"password":wrong,"audio":false,"video":false}))
            .await;
        let (code, seen) = guest.until_closed().await;
        assert_eq!(seen[0]["code"], "bad_password");
        assert_eq!(code, Some(4002));
    }
    let mut guest = server.client("secret").await;
    guest
        .send(json!({"type":"join","name":"guest","client":client_id("guest"),"password":"open sesame","audio":false,"video":false}))
        .await;
    let joined = guest.recv().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["password"], true);

    // Not the host: refused, and the socket stays.
    guest
        .send(json!({"type":"set-password","password":""}))
        .await;
    assert_eq!(guest.recv().await["code"], "not_host");
    guest.send(json!({"type":"lock","locked":true})).await;
    assert_eq!(guest.recv().await["code"], "not_host");

    // Cleared: anyone may join again.
    host.recv().await; // peer-joined
    host.send(json!({"type":"set-password","password":""}))
        .await;
    assert_eq!(host.recv().await["password"], false);
    let (_free, _) = server.join("secret", "free").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_locked_room_keeps_its_people_and_turns_newcomers_away() {
    let server = Server::start(&[]).await;
    let (mut host, _) = server.join("locked", "host").await;
    let (mut bo, b) = server.join("locked", "bo").await;
    host.recv().await;
    host.send(json!({"type":"lock","locked":true})).await;
    assert_eq!(bo.recv().await["locked"], true);

    let mut late = server.client("locked").await;
    late.send(
        json!({"type":"join","name":"late","client":client_id("late"),"audio":false,"video":false}),
    )
    .await;
    let (code, seen) = late.until_closed().await;
    assert_eq!(seen[0]["code"], "locked");
    assert_eq!(code, Some(4005));

    // A seat already taken comes back through the lock with its token.
    drop(bo);
    host.recv().await; // away
    let mut back = server.client("locked").await;
    let joined = back.join("bo", &client_id("bo"), b["token"].as_str()).await;
    assert_eq!(joined["you"], b["you"]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_host_removes_someone_who_cannot_come_back_with_that_identity() {
    let server = Server::start(&[]).await;
    let (mut host, _) = server.join("rm", "host").await;
    let (mut bo, b) = server.join("rm", "bo").await;
    let (mut cy, _) = server.join("rm", "cy").await;
    host.recv().await;
    host.recv().await;
    bo.recv().await;

    // Only the host may remove.
    cy.send(json!({"type":"remove","id":b["you"]})).await;
    assert_eq!(cy.recv().await["code"], "not_host");

    host.send(json!({"type":"remove","id":b["you"]})).await;
    let (code, seen) = bo.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], "removed");
    assert_eq!(code, Some(4004));
    assert_eq!(cy.recv().await, json!({"type":"peer-left","id":b["you"]}));
    assert_eq!(host.recv().await, json!({"type":"peer-left","id":b["you"]}));
    // A removal turns "Ask to join" on (docs/PROTOCOL.md), for everyone to see.
    let asks = json!({"type":"room-updated","locked":false,"password":false,"ask":true,"recording_allowed":true});
    assert_eq!(cy.recv().await, asks);
    assert_eq!(host.recv().await, asks);

    for token in [None, b["token"].as_str()] {
        let mut again = server.client("rm").await;
        again
            .send(json!({"type":"join","name":"bo","client":client_id("bo"),"token":token,"audio":false,"video":false}))
            .await;
        let (code, seen) = again.until_closed().await;
        assert_eq!(seen[0]["code"], "removed");
        assert_eq!(code, Some(4004));
    }
    host.expect_silence(Duration::from_millis(200)).await;
    server.shutdown().await;
}

/// A removed troll opens a private window (a new `client` id) from the same address: refused
/// `removed`. A housemate who was seated from that address before the removal comes and goes
/// freely, and someone from another address joins. Each participant has a 127.x address of its
/// own, counted with `--limit-loopback`.
#[tokio::test]
async fn a_removed_troll_stays_out_from_a_private_window_but_the_household_does_not() {
    let config = videomeet::Config {
        limit_loopback: true,
        ..videomeet::Config::default()
    };
    let server = Server::start_with(config, &[]).await;
    let home = [127, 20, 0, 7];
    let mut host = server.client_from([127, 20, 0, 1], "den").await;
    host.join("host", &client_id("host"), None).await;
    let mut troll = server.client_from(home, "den").await;
    let t = troll.join("troll", &client_id("troll"), None).await;
    let mut mum = server.client_from(home, "den").await;
    let m = mum.join("mum", &client_id("mum"), None).await;
    assert_eq!(host.recv().await["type"], "peer-joined");
    assert_eq!(host.recv().await["type"], "peer-joined");

    host.send(json!({"type":"remove","id":t["you"]})).await;
    let (code, _) = troll.until_closed().await;
    assert_eq!(code, Some(4004));
    assert_eq!(host.recv().await["type"], "peer-left");
    // The removal turned "Ask to join" on; this test is about the removal rules under it.
    assert_eq!(host.recv().await["ask"], true);
    host.send(json!({"type":"ask-to-join","on":false})).await;
    assert_eq!(host.recv().await["ask"], false);
    assert_eq!(mum.recv().await["type"], "peer-left");
    assert_eq!(mum.recv().await["ask"], true);
    assert_eq!(mum.recv().await["ask"], false);

    // A private window: a fresh client id from the same address.
    for n in 0..3 {
        let mut again = server.client_from(home, "den").await;
        let fresh = client_id(&format!("private{n}"));
        again
            .send(json!({"type":"join","name":"friendly","client":fresh,"audio":true,"video":true}))
            .await;
        let (code, seen) = again.until_closed().await;
        assert_eq!(seen[0]["code"], "removed", "{seen:?}");
        assert_eq!(code, Some(4004));
    }
    // The housemate resumes her seat with her token, and after leaving joins again.
    // Her connection drops (no close frame): the seat is held for her.
    drop(mum);
    let away = host.recv().await;
    assert_eq!(
        (away["type"].as_str(), away["peer"]["away"].as_bool()),
        (Some("peer-updated"), Some(true))
    );
    let mut mum = server.client_from(home, "den").await;
    let back = mum
        .join("mum", &client_id("mum"), m["token"].as_str())
        .await;
    assert_eq!(
        (back["you"].clone(), back["resumed"].as_bool()),
        (m["you"].clone(), Some(true))
    );
    mum.send(json!({"type":"leave"})).await;
    let _ = mum.until_closed().await;
    let mut mum = server.client_from(home, "den").await;
    assert_eq!(
        mum.join("mum", &client_id("mum"), None).await["type"],
        "joined"
    );
    // Someone from another address joins as ever.
    let mut guest = server.client_from([127, 20, 0, 9], "den").await;
    assert_eq!(
        guest.join("guest", &client_id("guest"), None).await["type"],
        "joined"
    );
    assert!(
        server
            .metric("videomeet_joins_refused_total{reason=\"removed\"}")
            .await
            >= 3.0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn recording_is_told_to_all_before_it_starts_and_the_host_can_turn_it_off() {
    let server = Server::start(&[]).await;
    let (mut host, _) = server.join("rec", "host").await;
    let (mut ada, a) = server.join("rec", "ada").await;
    assert_eq!(a["recording_allowed"], true);
    assert_eq!(host.recv().await["type"], "peer-joined");

    // Ada asks to record: the host hears it, and so does Ada (her go-ahead).
    ada.send(json!({"type":"update","recording":true})).await;
    for c in [&mut host, &mut ada] {
        let upd = c.recv().await;
        assert_eq!(upd["type"], "peer-updated", "{upd}");
        assert_eq!(upd["peer"]["id"], a["you"]);
        assert_eq!(upd["peer"]["recording"], true);
    }
    // A late joiner sees who records in its peer list.
    let (mut cy, c) = server.join("rec", "cy").await;
    let ada_seen = c["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == a["you"])
        .cloned()
        .unwrap();
    assert_eq!(ada_seen["recording"], true);
    for p in [&mut host, &mut ada] {
        assert_eq!(p.recv().await["type"], "peer-joined");
    }

    // Only the host may turn it off.
    cy.send(json!({"type":"allow-recording","allowed":false}))
        .await;
    assert_eq!(cy.recv().await["code"], "not_host");

    // Off: Ada's recording ends for everyone (Ada too), then the room says it.
    host.send(json!({"type":"allow-recording","allowed":false}))
        .await;
    for p in [&mut host, &mut ada, &mut cy] {
        let upd = p.recv().await;
        assert_eq!(upd["type"], "peer-updated", "{upd}");
        assert_eq!(upd["peer"]["id"], a["you"]);
        assert_eq!(upd["peer"]["recording"], false);
        let room = p.recv().await;
        assert_eq!(room["type"], "room-updated");
        assert_eq!(room["recording_allowed"], false);
    }
    // Asking again is refused, with a code the client translates; the socket stays.
    ada.send(json!({"type":"update","recording":true})).await;
    let refused = ada.recv().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "recording_off");
    ada.send(json!({"type":"update","hand":true})).await;
    assert_eq!(cy.recv().await["peer"]["hand"], true, "the socket stayed");
    let (_dee, d) = server.join("rec", "dee").await;
    assert_eq!(d["recording_allowed"], false);
    server.shutdown().await;
}
