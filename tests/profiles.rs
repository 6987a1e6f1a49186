//! Profiles, presence and moving an account to a new phone, over real sockets, on every backend.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, Client, TestHub};
use serde_json::{json, Value};
use std::time::Duration;

/// A ticket of `user` claimed by `agent`, with both subscribed.
async fn ticket_between(user: &mut Client, agent: &mut Client) -> String {
    let r =
        user.request(json!({"type": "ticket.open", "subject": "help", "body": "hello", "client_msg_id": "c1"})).await;
    let tid = r["ticket"]["id"].as_str().unwrap().to_owned();
    let claimed = agent.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
    assert_eq!(claimed["type"], "ticket.update.ok", "{claimed}");
    tid
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// A JPEG carrying an EXIF segment with a GPS marker, as phones write them.
fn jpeg_with_gps() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(40, 30, image::Rgb([10, 120, 240]));
    let mut plain = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut plain), image::ImageFormat::Jpeg).unwrap();
    let payload = b"Exif\0\0MM\0*\0\0\0\x08GPSLatitude=35.6892N;GPSLongitude=51.3890E";
    let len = (payload.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&plain[2..]);
    out
}

async fn upload(hub: &TestHub, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = hub.http.put(format!("{}/v1/me/image", hub.base)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn profile_edits_reach_the_users_other_sessions_and_their_agent() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let mut phone_socket = hub.connect_as(Encoding::Json, &token).await;
        let mut other_session = hub.connect_as(Encoding::MsgPack, &token).await;
        let (agent_token, _) = hub.agent("Prof").await;
        let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;
        ticket_between(&mut phone_socket, &mut agent).await;

        let r = phone_socket.request(json!({"type": "profile.update", "name": "Maryam"})).await;
        assert_eq!(
            (r["type"].as_str(), r["profile"]["name"].as_str()),
            (Some("profile.ok"), Some("Maryam")),
            "{label} {r}"
        );
        let uid = r["profile"]["user_id"].as_str().unwrap().to_owned();
        assert_eq!(other_session.event("profile.updated").await["profile"]["name"], "Maryam", "{label}");
        assert_eq!(agent.event("profile.updated").await["profile"]["name"], "Maryam", "{label}");
        let seen = agent.request(json!({"type": "profile.get", "user_id": uid})).await;
        assert_eq!(
            (seen["profile"]["name"].as_str(), seen["profile"]["online"].as_bool()),
            (Some("Maryam"), Some(true))
        );

        for bad in [json!(""), json!("x".repeat(65)), json!("bad\u{7}name")] {
            let r = phone_socket.request(json!({"type": "profile.update", "name": bad})).await;
            assert_eq!(r["code"], "bad_request", "{label} {bad}");
        }
        let cleared = phone_socket.request(json!({"type": "profile.update", "name": null})).await;
        assert!(cleared["profile"]["name"].is_null(), "{label} null clears the name: {cleared}");

        let stranger_token = hub.token(&phone()).await;
        let mut stranger = hub.connect_as(Encoding::Json, &stranger_token).await;
        let r = stranger.request(json!({"type": "profile.get", "user_id": uid})).await;
        assert_eq!(r["code"], "forbidden", "{label} users do not read other users' profiles");
        let r = agent.request(json!({"type": "profile.update", "name": "Agent"})).await;
        assert_eq!(r["code"], "forbidden");
    }
}

#[tokio::test]
async fn images_are_decoded_reencoded_stripped_and_served_with_caching() {
    for hub in hubs(|c| c.max_image_bytes = 200_000).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let (status, body) = upload(&hub, Some(&token), png(1200, 600)).await;
        assert_eq!(status, 200, "{label} {body}");
        let path = body["profile"]["image"].as_str().unwrap().to_owned();
        assert!(path.starts_with("/v1/media/") && path.ends_with(".jpg"), "{path}");
        let resp = hub.http.get(format!("{}{path}", hub.base)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert!(resp.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let served = resp.bytes().await.unwrap();
        let img = image::load_from_memory(&served).unwrap();
        assert_eq!((img.width(), img.height()), (512, 256), "{label} scaled to fit 512");
        let again = hub.http.get(format!("{}{path}", hub.base)).header("if-none-match", etag).send().await.unwrap();
        assert_eq!(again.status(), 304);

        let (status, body) = upload(&hub, Some(&token), jpeg_with_gps()).await;
        assert_eq!(status, 200, "{label} {body}");
        let path = body["profile"]["image"].as_str().unwrap();
        let served = hub.http.get(format!("{}{path}", hub.base)).send().await.unwrap().bytes().await.unwrap();
        let text = String::from_utf8_lossy(&served);
        assert!(!text.contains("Exif") && !text.contains("GPSLatitude"), "{label} metadata must not survive");

        let (status, body) = upload(&hub, Some(&token), b"GIF89a but not really".to_vec()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_image")), "{label} {body}");
        let (status, body) = upload(&hub, Some(&token), vec![0x89; 250_000]).await;
        assert_eq!((status, body["error"]["code"].as_str()), (413, Some("too_large")), "{label} {body}");
        let (status, _) = upload(&hub, None, png(10, 10)).await;
        assert_eq!(status, 401);
        for bad in ["/v1/media/../hub.sqlite", "/v1/media/abc.jpg", "/v1/media/%2e%2e%2fhub.sqlite"] {
            let resp = hub.http.get(format!("{}{bad}", hub.base)).send().await.unwrap();
            assert_eq!(resp.status(), 404, "{label} {bad}");
        }
        let resp = hub.http.delete(format!("{}/v1/me/image", hub.base)).bearer_auth(&token).send().await.unwrap();
        let body: Value = resp.json().await.unwrap();
        assert!(body["profile"]["image"].is_null(), "{label} {body}");
    }
}

#[tokio::test]
async fn presence_counts_people_not_sockets_and_survives_flaps_and_hard_disconnects() {
    for hub in hubs(|c| c.presence_grace_ms = 400).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let (agent_token, agent_id) = hub.agent("Watcher").await;
        let mut agent = hub.connect_agent(Encoding::MsgPack, &agent_token).await;
        let mut first = hub.connect_as(Encoding::Json, &token).await;
        ticket_between(&mut first, &mut agent).await;
        let second = hub.connect_as(Encoding::MsgPack, &token).await;
        let user_presence = |f: &Value| f["participant"]["kind"] == "user";

        // Closing one of two sockets changes nothing.
        first.ws.close(None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        // A flap: the last socket drops and a new one comes within the grace period.
        drop(second);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = hub.connect_as(Encoding::Json, &token).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let ping = agent.request(json!({"type": "ping"})).await;
        assert_eq!(ping["type"], "ping.ok");
        assert!(
            !agent.seen.iter().any(|f| f["type"] == "presence" && user_presence(f) && f["online"] == false),
            "{label} no offline while a socket remains or within the grace: {:?}",
            agent.seen
        );

        // A hard disconnect (no close frame): offline after the grace, with the last-seen time.
        drop(third);
        let off = agent.event_where("presence", |f| user_presence(f) && f["online"] == false).await;
        assert!(off["last_seen_at"].as_i64().unwrap() > 0, "{label} {off}");
        let mut back = hub.connect_as(Encoding::Json, &token).await;
        let on = agent.event_where("presence", user_presence).await;
        assert_eq!(on["online"], true, "{label} {on}");

        // The user sees the agent on their ticket go away.
        drop(agent);
        let gone = back.event_where("presence", |f| f["participant"]["kind"] == "agent").await;
        assert_eq!(
            (gone["participant"]["id"].as_str(), gone["online"].as_bool()),
            (Some(agent_id.as_str()), Some(false))
        );

        // Hidden last-seen: offline says only offline.
        back.request(json!({"type": "profile.update", "hide_last_seen": true})).await;
        let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;
        drop(back);
        let off = agent.event_where("presence", |f| user_presence(f) && f["online"] == false).await;
        assert!(off.get("last_seen_at").is_none(), "{label} hidden: {off}");
    }
}

#[tokio::test]
async fn signing_in_on_a_new_phone_moves_the_account_there() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let number = phone();
        let a_token = hub.sign_in_on(&number, "phone-a").await["token"].as_str().unwrap().to_owned();
        let mut a = hub.connect_as(Encoding::Json, &a_token).await;
        let (agent_token, _) = hub.agent("Transfer").await;
        let mut agent = hub.connect_agent(Encoding::MsgPack, &agent_token).await;
        let tid = ticket_between(&mut a, &mut agent).await;
        for i in 0..3 {
            a.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": format!("a{i}"), "body": format!("from A {i}")})).await;
            agent.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": format!("g{i}"), "body": format!("agent {i}")})).await;
        }
        let b = hub.sign_in_on_after_cooldown(&number, "phone-b").await;
        let started = std::time::Instant::now();
        assert_eq!(a.closed().await, Some(4003), "{label}");
        assert!(started.elapsed() < Duration::from_secs(1), "{label} cut off within a second");
        let revoked = a.seen.iter().find(|f| f["type"] == "session.revoked").expect("told why");
        assert_eq!(revoked["reason"], "signed_in_elsewhere");
        assert_eq!(hub.get("/v1/me", Some(&a_token)).await.0, 401, "{label} the old phone's token is dead");

        let b_token = b["token"].as_str().unwrap();
        let mut bs = hub.connect_as(Encoding::MsgPack, b_token).await;
        let list = bs.request(json!({"type": "ticket.list"})).await;
        assert_eq!(list["tickets"][0]["id"], tid.as_str(), "{label} the new phone has the tickets");
        bs.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 0})).await;
        let bodies: Vec<String> = bs
            .seen
            .iter()
            .filter(|f| f["type"] == "ticket.event" && f["event"]["kind"] == "message")
            .map(|f| f["event"]["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bodies.len(), 7, "{label} the first message and six more: {bodies:?}");
        let devices = bs.request(json!({"type": "device.list"})).await;
        let devices = devices["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 2);
        let current: Vec<_> = devices.iter().filter(|d| d["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["live_sessions"], 1);
        assert!(devices.iter().any(|d| d["current"] == false && d["live_sessions"] == 0), "{label} A is signed out");
    }
}

#[tokio::test]
async fn more_devices_when_configured_and_signing_one_out() {
    for hub in hubs(|c| c.max_devices = 2).await {
        let number = phone();
        let a = hub.sign_in_on(&number, "tablet").await["token"].as_str().unwrap().to_owned();
        let b = hub.sign_in_on_after_cooldown(&number, "phone").await["token"].as_str().unwrap().to_owned();
        let mut sa = hub.connect_as(Encoding::Json, &a).await;
        let mut sb = hub.connect_as(Encoding::Json, &b).await;
        assert_eq!(sa.request(json!({"type": "ping"})).await["type"], "ping.ok", "{} both stay", hub.label());
        let devices = sb.request(json!({"type": "device.list"})).await;
        let tablet =
            devices["devices"].as_array().unwrap().iter().find(|d| d["current"] == false).unwrap()["id"].clone();
        assert_eq!(sb.request(json!({"type": "device.sign_out", "device_id": tablet})).await["type"], "ok");
        assert_eq!(sa.closed().await, Some(4003));
        let r = sb.request(json!({"type": "device.sign_out", "device_id": uuid::Uuid::now_v7()})).await;
        assert_eq!(r["code"], "not_found");
    }
}

#[tokio::test]
async fn no_frame_to_an_agent_or_another_user_ever_carries_a_number() {
    for hub in hubs(|c| c.presence_grace_ms = 100).await {
        let label = hub.label();
        let number = phone();
        let token = hub.token(&number).await;
        let mut owner = hub.connect_as(Encoding::MsgPack, &token).await;
        let (agent_token, _) = hub.agent("Privacy").await;
        let mut observers = Vec::new();
        for encoding in [Encoding::Json, Encoding::MsgPack] {
            let mut agent = hub.connect_agent(encoding, &agent_token).await;
            agent.request(json!({"type": "queue.subscribe"})).await;
            observers.push(agent);
        }
        let other_token = hub.token(&phone()).await;
        let mut other = hub.connect_as(Encoding::Json, &other_token).await;
        owner.request(json!({"type": "profile.update", "name": "Owner"})).await;
        let tid = ticket_between(&mut owner, &mut observers[0]).await;
        let uid = owner.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();
        for agent in observers.iter_mut() {
            agent.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 0})).await;
            agent.request(json!({"type": "profile.get", "user_id": uid})).await;
            agent.request(json!({"type": "customer.get", "user_id": uid})).await;
            agent.request(json!({"type": "ticket.list"})).await;
            agent.request(json!({"type": "ticket.history", "ticket_id": tid})).await;
        }
        owner.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "m", "body": "my order"})).await;
        owner.request(json!({"type": "ticket.typing", "ticket_id": tid})).await;
        owner.request(json!({"type": "ticket.read", "ticket_id": tid, "seq": 3})).await;
        other.request(json!({"type": "profile.get", "user_id": uid})).await;
        other.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 0})).await;
        drop(owner);
        observers[0].event_where("presence", |f| f["online"] == false).await;
        for agent in observers.iter_mut() {
            agent.request(json!({"type": "ping"})).await;
        }
        let digits = &number[3..];
        for (who, frames) in observers.iter().map(|c| ("agent", &c.seen)).chain([("other user", &other.seen)]) {
            assert!(frames.len() >= 3, "{label} the {who} saw frames");
            for f in frames {
                assert!(!f.to_string().contains(digits), "{label} the {who} received the number in {f}");
            }
        }
    }
}

#[tokio::test]
async fn agents_see_a_customer_with_their_device_and_tickets_but_never_the_number() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let number = phone();
        let token = hub.token(&number).await;
        let mut user = hub.connect_as(Encoding::MsgPack, &token).await;
        user.request(json!({"type": "profile.update", "name": "مریم کریمی"})).await;
        let uid = user.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();
        let (agent_token, _) = hub.agent("Panel").await;
        let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;

        let r = agent.request(json!({"type": "customer.get", "user_id": uid})).await;
        assert_eq!(r["type"], "customer.get.ok", "{label} {r}");
        assert!(r["customer"].get("device").is_none(), "{label} nothing reported yet: {r}");
        assert_eq!(r["customer"]["tickets"], json!([]), "{label}");

        // An earlier ticket, answered and resolved, then a new one.
        let earlier = ticket_between(&mut user, &mut agent).await;
        let r = agent.request(json!({"type": "ticket.resolve", "ticket_id": earlier})).await;
        assert_eq!(r["type"], "ticket.update.ok", "{label} {r}");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = user
            .request(json!({"type": "ticket.open", "subject": "پرداخت ناموفق", "body": "سلام", "client_msg_id": "c2"}))
            .await;
        let current = r["ticket"]["id"].as_str().unwrap().to_owned();
        let device = json!({"os": "android", "os_version": "14", "model": "Pixel 8", "manufacturer": "Google",
            "app_version": "3.2.1", "locale": "fa-IR", "memory_mb": 8192, "screen_width": 1080});
        let r = user.request(json!({"type": "telemetry.device", "device": device})).await;
        assert_eq!(r["type"], "ok", "{label} {r}");

        for encoding in [Encoding::Json, Encoding::MsgPack] {
            let mut agent = hub.connect_agent(encoding, &agent_token).await;
            let r = agent.request(json!({"type": "customer.get", "user_id": uid})).await;
            assert_eq!(r["type"], "customer.get.ok", "{label} {encoding:?} {r}");
            let c = &r["customer"];
            assert_eq!(
                (c["profile"]["user_id"].as_str(), c["profile"]["name"].as_str(), c["profile"]["online"].as_bool()),
                (Some(uid.as_str()), Some("مریم کریمی"), Some(true)),
                "{label} {encoding:?} the profile as in profile.ok: {r}"
            );
            let d = &c["device"];
            assert_eq!(
                (d["os"].as_str(), d["os_version"].as_str(), d["model"].as_str(), d["manufacturer"].as_str()),
                (Some("android"), Some("14"), Some("Pixel 8"), Some("Google")),
                "{label} {encoding:?} {r}"
            );
            assert_eq!((d["app_version"].as_str(), d["locale"].as_str()), (Some("3.2.1"), Some("fa-IR")), "{label}");
            assert!(d["reported_at"].as_i64().is_some_and(|t| t > 0), "{label} {r}");
            assert!(d.get("memory_mb").is_none() && d.get("screen_width").is_none(), "{label} only what agents need");
            let tickets: Vec<_> = c["tickets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
            assert_eq!(tickets, [current.as_str(), earlier.as_str()], "{label} most recently updated first");
            assert_eq!(c["tickets"][0]["status"], "open", "{label}");
            assert!(c["tickets"][0]["queued_at"].as_i64().is_some(), "{label} an open ticket says since when it waits");
            assert_eq!(c["tickets"][1]["status"], "resolved", "{label}");
            assert!(c["tickets"][1].get("queued_at").is_none(), "{label} a resolved one does not");
            assert!(!r.to_string().contains(&number[3..]), "{label} {encoding:?} the number reached an agent: {r}");
        }

        // Analytics consent off: the device report is no longer shown; on again: it is.
        let r = user.request(json!({"type": "consent.set", "analytics": false})).await;
        assert_eq!(r["type"], "consent.ok", "{label} {r}");
        let r = agent.request(json!({"type": "customer.get", "user_id": uid})).await;
        assert_eq!(r["type"], "customer.get.ok", "{label} {r}");
        assert!(r["customer"].get("device").is_none(), "{label} consent is off: {r}");
        assert_eq!(r["customer"]["tickets"].as_array().map(Vec::len), Some(2), "{label}");
        user.request(json!({"type": "consent.set", "analytics": true})).await;
        let r = agent.request(json!({"type": "customer.get", "user_id": uid})).await;
        assert_eq!(r["customer"]["device"]["os"], "android", "{label} {r}");

        let r = user.request(json!({"type": "customer.get", "user_id": uid})).await;
        assert_eq!(r["code"], "forbidden", "{label} users do not get customer panels, not even their own");
        let unknown = uuid::Uuid::new_v4().to_string();
        let r = agent.request(json!({"type": "customer.get", "user_id": unknown})).await;
        assert_eq!(r["code"], "not_found", "{label} {r}");
        let r = agent.request(json!({"type": "customer.get", "user_id": "nope"})).await;
        assert_eq!(r["code"], "bad_request", "{label} {r}");
    }
}
