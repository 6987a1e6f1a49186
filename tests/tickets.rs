//! Support tickets over real sockets, with a user and two agents, in both encodings, on every
//! backend: the lifecycle, authorisation, idempotent sends, history, receipts and typing, the queue,
//! bad input, and exactly-once delivery across dropped sockets.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, Client, TestHub};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::MsgPack];

async fn open_ticket(c: &mut Client, subject: &str, body: &str) -> Value {
    let r = c
        .request(json!({"type": "ticket.open", "subject": subject, "body": body, "client_msg_id": uuid::Uuid::new_v4().to_string()}))
        .await;
    assert_eq!(r["type"], "ticket.open.ok", "{r}");
    r["ticket"].clone()
}

async fn send(c: &mut Client, ticket: &str, cmid: &str, body: &str) -> Value {
    c.request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": body})).await
}

#[tokio::test]
async fn lifecycle_with_a_user_and_two_agents() {
    for hub in hubs(|_| {}).await {
        for (ue, ae) in [(Encoding::Json, Encoding::MsgPack), (Encoding::MsgPack, Encoding::Json)] {
            let label = hub.label();
            let user_token = hub.token(&phone()).await;
            let mut user = hub.connect_as(ue, &user_token).await;
            let (a_token, a_id) = hub.agent("Sara").await;
            let (b_token, b_id) = hub.agent("Reza").await;
            let mut a = hub.connect_agent(ae, &a_token).await;
            let mut b = hub.connect_agent(ue, &b_token).await;
            assert_eq!(a.request(json!({"type": "queue.subscribe"})).await["type"], "queue.subscribe.ok");
            assert_eq!(b.request(json!({"type": "queue.subscribe"})).await["type"], "queue.subscribe.ok");

            let ticket = open_ticket(&mut user, "Payment failed", "My card was charged twice").await;
            let tid = ticket["id"].as_str().unwrap().to_owned();
            assert_eq!(ticket["status"], "open");
            assert_eq!(ticket["last_seq"], 2, "opened + first message");
            let seen = a.event_where("ticket.updated", |f| f["ticket"]["id"] == tid.as_str()).await;
            assert_eq!(seen["ticket"]["status"], "open", "{label} the queue is live for agents");
            let queued = user.event_where("ticket.queue", |f| f["ticket_id"] == tid.as_str()).await;
            assert!(queued["position"].as_u64().unwrap() >= 1, "{label} {queued}");

            let sub = user.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 2})).await;
            assert_eq!(sub["type"], "ticket.subscribe.ok", "{label} {sub}");
            let claimed = a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
            assert_eq!(claimed["ticket"]["status"], "assigned", "{label} {claimed}");
            assert_eq!(claimed["ticket"]["agent_id"], a_id.as_str());
            let again = b.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
            assert_eq!(again["code"], "wrong_state", "{label} {again}");
            let ev = user.event("ticket.event").await;
            assert_eq!((ev["event"]["kind"].as_str(), ev["event"]["seq"].as_u64()), (Some("claimed"), Some(3)));

            let sub = a.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 0})).await;
            assert_eq!(sub["ticket"]["last_seq"], 3);
            let history: Vec<Value> = a.seen.iter().filter(|f| f["type"] == "ticket.event").cloned().collect();
            let kinds: Vec<&str> = history.iter().map(|f| f["event"]["kind"].as_str().unwrap()).collect();
            assert_eq!(kinds, ["opened", "message", "claimed"], "{label} the agent gets the whole history");
            assert_eq!(history[1]["event"]["body"], "My card was charged twice");
            a.clear_pending();

            let ack = send(&mut a, &tid, "a-1", "Sorry about that, refunding now").await;
            assert_eq!((ack["type"].as_str(), ack["seq"].as_u64()), (Some("ticket.send.ok"), Some(4)), "{label} {ack}");
            let ev = user.event("ticket.event").await;
            assert_eq!(ev["event"]["body"], "Sorry about that, refunding now");
            assert_eq!(ev["event"]["author"], json!({"kind": "agent", "id": a_id}));
            let ack = send(&mut user, &tid, "u-1", "Thanks!").await;
            assert_eq!(ack["seq"], 5);
            let own = a.event("ticket.event").await;
            assert_eq!(own["event"]["seq"], 4, "{label} the sender's own subscribed socket sees its message too");
            let ev = a.event("ticket.event").await;
            assert_eq!((ev["event"]["seq"].as_u64(), ev["event"]["body"].as_str()), (Some(5), Some("Thanks!")));

            let moved = a.request(json!({"type": "ticket.transfer", "ticket_id": tid, "agent_id": b_id})).await;
            assert_eq!(moved["ticket"]["agent_id"], b_id.as_str(), "{label} {moved}");
            let not_yours = send(&mut a, &tid, "a-2", "still here?").await;
            assert_eq!(not_yours["code"], "forbidden", "{label} the old agent may no longer write");
            let resolved = b.request(json!({"type": "ticket.resolve", "ticket_id": tid})).await;
            assert_eq!(resolved["ticket"]["status"], "resolved", "{label} {resolved}");
            let claim_resolved = a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
            assert_eq!(claim_resolved["code"], "wrong_state");
            let agent_to_resolved = send(&mut b, &tid, "b-1", "hello?").await;
            assert_eq!(agent_to_resolved["code"], "wrong_state");

            let reopen = send(&mut user, &tid, "u-2", "It happened again").await;
            assert_eq!(reopen["seq"], 9, "{label} reopened (8) then the message (9): {reopen}");
            let kinds: Vec<String> = {
                let mut k = Vec::new();
                while k.len() < 5 {
                    let ev = user.event("ticket.event").await;
                    k.push(ev["event"]["kind"].as_str().unwrap().to_owned());
                }
                k
            };
            assert_eq!(kinds, ["message", "transferred", "resolved", "reopened", "message"], "{label} 5 to 9 in order");
            let back = b
                .event_where("ticket.updated", |f| f["ticket"]["id"] == tid.as_str() && f["ticket"]["status"] == "open")
                .await;
            assert!(back["ticket"]["agent_id"].is_null(), "{label} a reopened ticket waits in the queue again");
        }
    }
}

#[tokio::test]
async fn every_cross_access_is_refused() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let owner_token = hub.token(&phone()).await;
        let other_token = hub.token(&phone()).await;
        let mut owner = hub.connect_as(Encoding::Json, &owner_token).await;
        let mut other = hub.connect_as(Encoding::MsgPack, &other_token).await;
        let (a_token, _) = hub.agent("A").await;
        let (b_token, _) = hub.agent("B").await;
        let mut a = hub.connect_agent(Encoding::Json, &a_token).await;
        let mut b = hub.connect_agent(Encoding::MsgPack, &b_token).await;
        let tid = open_ticket(&mut owner, "mine", "private").await["id"].as_str().unwrap().to_owned();

        let attempts = [
            json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 0}),
            json!({"type": "ticket.history", "ticket_id": tid}),
            json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "x", "body": "hi"}),
            json!({"type": "ticket.read", "ticket_id": tid, "seq": 1}),
            json!({"type": "ticket.typing", "ticket_id": tid}),
            json!({"type": "ticket.claim", "ticket_id": tid}),
            json!({"type": "ticket.resolve", "ticket_id": tid}),
        ];
        for frame in &attempts {
            let r = other.request(frame.clone()).await;
            assert_eq!(r["code"], "forbidden", "{label} another user: {frame} -> {r}");
        }
        assert!(other.seen.iter().all(|f| f["type"] != "ticket.event"), "{label} nothing leaked");
        let listed = other.request(json!({"type": "ticket.list"})).await;
        assert_eq!(listed["tickets"], json!([]), "{label} another user's list is empty");
        for frame in [
            json!({"type": "ticket.claim", "ticket_id": tid}),
            json!({"type": "queue.subscribe"}),
            json!({"type": "agent.list"}),
            json!({"type": "canned.list"}),
        ] {
            let r = owner.request(frame.clone()).await;
            assert_eq!(r["code"], "forbidden", "{label} a user acting as an agent: {frame} -> {r}");
        }
        let r = a.request(json!({"type": "ticket.open", "subject": "s", "body": "b", "client_msg_id": "c"})).await;
        assert_eq!(r["code"], "forbidden", "{label} agents do not open tickets");
        let r = a.request(json!({"type": "me"})).await;
        assert_eq!(r["code"], "forbidden", "{label}");
        let r = send(&mut a, &tid, "a1", "before claiming").await;
        assert_eq!(r["code"], "wrong_state", "{label} claim first");
        a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
        for frame in [
            json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "b1", "body": "mine now"}),
            json!({"type": "ticket.resolve", "ticket_id": tid}),
            json!({"type": "ticket.transfer", "ticket_id": tid, "agent_id": uuid::Uuid::now_v7()}),
        ] {
            let r = b.request(frame.clone()).await;
            assert!(
                r["code"] == "forbidden" || r["code"] == "not_found",
                "{label} another agent's ticket: {frame} -> {r}"
            );
        }
        let r = b.request(json!({"type": "ticket.resolve", "ticket_id": tid})).await;
        assert_eq!(r["code"], "forbidden");
    }
}

#[tokio::test]
async fn resending_a_message_or_opening_twice_stores_once() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        for encoding in ENCODINGS {
            let mut c = hub.connect_as(encoding, &token).await;
            let open = json!({"type": "ticket.open", "subject": "s", "body": "b", "client_msg_id": format!("open-{encoding:?}")});
            let first = c.request(open.clone()).await;
            let second = c.request(open).await;
            assert_eq!(first["ticket"]["id"], second["ticket"]["id"], "{} same ticket", hub.label());
            let tid = first["ticket"]["id"].as_str().unwrap().to_owned();
            let a = send(&mut c, &tid, "m-1", "hello").await;
            let b = send(&mut c, &tid, "m-1", "hello").await;
            assert_eq!((a["seq"].as_u64(), a["duplicate"].as_bool()), (Some(3), Some(false)));
            assert_eq!((b["seq"].as_u64(), b["duplicate"].as_bool()), (Some(3), Some(true)), "{}", hub.label());
            let h = c.request(json!({"type": "ticket.history", "ticket_id": tid})).await;
            assert_eq!(h["events"].as_array().unwrap().len(), 3, "{} stored once", hub.label());
        }
    }
}

/// PROTOCOL.md: a `duplicate` send publishes nothing. The owner, the holding agent, a queue watcher
/// and a follower of the ticket each see the original message's `ticket.updated` (and the follower
/// its `ticket.event`) once, and nothing for the resend, whose reply is the original's ack.
#[tokio::test]
async fn a_duplicate_send_publishes_nothing() {
    for hub in hubs(|_| {}).await {
        for (ue, ae) in [(Encoding::Json, Encoding::MsgPack), (Encoding::MsgPack, Encoding::Json)] {
            let label = format!("{} user {ue:?}, agents {ae:?}", hub.label());
            let user_token = hub.token(&phone()).await;
            let mut owner = hub.connect_as(ue, &user_token).await;
            let mut follower = hub.connect_as(ae, &user_token).await;
            let (a_token, _) = hub.agent("Holder").await;
            let (b_token, _) = hub.agent("Watcher").await;
            let mut holder = hub.connect_agent(ae, &a_token).await;
            let mut watcher = hub.connect_agent(ue, &b_token).await;
            assert_eq!(watcher.request(json!({"type": "queue.subscribe"})).await["type"], "queue.subscribe.ok");
            let tid = open_ticket(&mut owner, "dup", "first").await["id"].as_str().unwrap().to_owned();
            let claimed = holder.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
            assert_eq!(claimed["ticket"]["status"], "assigned", "{label} {claimed}");
            let sub = follower.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 3})).await;
            assert_eq!(sub["type"], "ticket.subscribe.ok", "{label} {sub}");

            let first = send(&mut holder, &tid, "m-1", "hello").await;
            assert_eq!((first["seq"].as_u64(), first["duplicate"].as_bool()), (Some(4), Some(false)), "{label}");
            let again = send(&mut holder, &tid, "m-1", "hello").await;
            let mut expected = first.clone();
            expected["id"] = again["id"].clone();
            expected["duplicate"] = json!(true);
            assert_eq!(again, expected, "{label} the resend's reply is the original's ack");
            // A later change as a barrier: whatever the resend published would have arrived before it.
            let next = send(&mut holder, &tid, "m-2", "next").await;
            assert_eq!(next["seq"], 5, "{label} {next}");

            for (who, c) in
                [("owner", &mut owner), ("holder", &mut holder), ("watcher", &mut watcher), ("follower", &mut follower)]
            {
                c.event_where("ticket.updated", |f| f["ticket"]["id"] == tid.as_str() && f["ticket"]["last_seq"] == 5)
                    .await;
                let count = |kind: &str, seq_of: &dyn Fn(&Value) -> &Value| {
                    c.seen
                        .iter()
                        .filter(|f| f["type"] == kind && f.get("id").is_none() && seq_of(f) == &json!(4))
                        .count()
                };
                let updated = count("ticket.updated", &|f| &f["ticket"]["last_seq"]);
                assert_eq!(updated, 1, "{label} {who}: one ticket.updated for seq 4, none for the resend");
                let events = count("ticket.event", &|f| &f["event"]["seq"]);
                assert_eq!(events, usize::from(who == "follower"), "{label} {who}: ticket.event of seq 4");
            }
        }
    }
}

/// A sender reads each send's `ticket.send.ok` before the event of the message it sent, with many
/// sends to several tickets in flight at once (an agent's console).
#[tokio::test]
async fn a_sender_reads_each_ack_before_its_own_message() {
    const TICKETS: usize = 16;
    const SENDS: u64 = 320;
    // The sends leave back to back, past a console's usual frame budget, and are stored in small
    // batches by several writers at once (on Postgres), so that a later send is often stored before
    // an earlier one is answered: its event is then queued while its reply waits behind the earlier.
    let roomy = |c: &mut anapars_hub::Config| {
        c.max_frames_per_sec = 10_000;
        c.frame_burst = 10_000;
        c.message_batch = 2;
        c.message_writers = 4;
        c.message_spill_ms = 0;
    };
    for hub in hubs(roomy).await {
        let label = hub.label();
        let (token, _) = hub.agent("Pipeliner").await;
        let mut agent = hub.connect_agent(Encoding::Json, &token).await;
        let mut tickets = Vec::new();
        for _ in 0..TICKETS {
            let mut user = hub.connect_as(Encoding::Json, &hub.token(&phone()).await).await;
            let tid = open_ticket(&mut user, "order", "first").await["id"].as_str().unwrap().to_owned();
            let claimed = agent.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
            assert_eq!(claimed["ticket"]["status"], "assigned", "{label} {claimed}");
            let sub = agent.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 3})).await;
            assert_eq!(sub["type"], "ticket.subscribe.ok", "{label} {sub}");
            tickets.push(tid);
        }
        for i in 0..SENDS {
            let tid = &tickets[i as usize % TICKETS];
            let body = format!("message {i}");
            agent
                .send(json!({"id": 1_000 + i, "type": "ticket.send", "ticket_id": tid, "client_msg_id": format!("m-{i}"), "body": body}))
                .await;
        }
        let (mut acked, mut early) = (std::collections::BTreeSet::new(), Vec::new());
        let mut echoed = 0;
        while acked.len() < SENDS as usize || echoed < SENDS {
            let f = agent.recv().await;
            if f["type"] == "ticket.send.ok" {
                acked.insert(f["id"].as_u64().unwrap() - 1_000);
            } else if f["type"] == "ticket.event" && f["event"]["kind"] == "message" {
                let i: u64 = f["event"]["client_msg_id"].as_str().unwrap()["m-".len()..].parse().unwrap();
                if !acked.contains(&i) {
                    early.push(i);
                }
                echoed += 1;
            }
        }
        assert!(early.is_empty(), "{label}: these messages came back before their acks: {early:?}");
    }
}

#[tokio::test]
async fn history_pages_both_ways() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::MsgPack, &token).await;
        let tid = open_ticket(&mut c, "long", "m0").await["id"].as_str().unwrap().to_owned();
        for i in 1..=10 {
            send(&mut c, &tid, &format!("m{i}"), &format!("message {i}")).await;
        }
        let seqs =
            |r: &Value| r["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>();
        let newest = c.request(json!({"type": "ticket.history", "ticket_id": tid, "before_seq": 13, "limit": 4})).await;
        assert_eq!((seqs(&newest), newest["more"].as_bool()), (vec![9, 10, 11, 12], Some(true)), "{}", hub.label());
        let older = c.request(json!({"type": "ticket.history", "ticket_id": tid, "before_seq": 3, "limit": 4})).await;
        assert_eq!((seqs(&older), older["more"].as_bool()), (vec![1, 2], Some(false)));
        let after = c.request(json!({"type": "ticket.history", "ticket_id": tid, "after_seq": 10, "limit": 5})).await;
        assert_eq!((seqs(&after), after["more"].as_bool()), (vec![11, 12], Some(false)));
        let bad = c.request(json!({"type": "ticket.history", "ticket_id": tid, "limit": 1000})).await;
        assert_eq!(bad["code"], "bad_request");
    }
}

#[tokio::test]
async fn bad_input_gets_its_own_code_and_loses_nothing() {
    for hub in hubs(|c| c.max_body_chars = 1000).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        let tid = open_ticket(&mut c, "s", "first").await["id"].as_str().unwrap().to_owned();
        let cases = [
            (
                json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "1", "body": "x".repeat(1001)}),
                "too_large",
            ),
            (json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "2", "body": "   "}), "empty_body"),
            // No database text holds U+0000: refused alone rather than failing a batch.
            (json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "5", "body": "a\u{0}b"}), "bad_request"),
            (json!({"type": "ticket.open", "subject": "s\u{0}", "body": "x", "client_msg_id": "6"}), "bad_request"),
            (json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "", "body": "x"}), "bad_request"),
            (
                json!({"type": "ticket.send", "ticket_id": uuid::Uuid::now_v7(), "client_msg_id": "3", "body": "x"}),
                "not_found",
            ),
            (
                json!({"type": "ticket.send", "ticket_id": "not-a-uuid", "client_msg_id": "3", "body": "x"}),
                "bad_request",
            ),
            (json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 99}), "bad_request"),
            (json!({"type": "ticket.open", "subject": "", "body": "x", "client_msg_id": "4"}), "bad_request"),
            (json!({"type": "ticket.read", "ticket_id": tid, "seq": 50}), "bad_request"),
        ];
        for (frame, code) in cases {
            let r = c.request(frame.clone()).await;
            assert_eq!(r["code"], code, "{label} {frame} -> {r}");
        }
        let ok = send(&mut c, &tid, "after", "still works").await;
        assert_eq!(ok["seq"], 3, "{label} nothing was stored by the bad frames, the socket lives");
    }
}

#[tokio::test]
async fn receipts_and_typing_reach_the_other_side() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let mut user = hub.connect_as(Encoding::Json, &token).await;
        let (a_token, a_id) = hub.agent("A").await;
        let mut a = hub.connect_agent(Encoding::MsgPack, &a_token).await;
        let tid = open_ticket(&mut user, "s", "hello").await["id"].as_str().unwrap().to_owned();
        a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
        a.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 3})).await;
        user.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 3})).await;
        send(&mut a, &tid, "a1", "hi there").await;
        assert_eq!(user.event("ticket.event").await["event"]["seq"], 4);
        assert_eq!(user.request(json!({"type": "ticket.delivered", "ticket_id": tid, "seq": 4})).await["type"], "ok");
        let r = a.event("ticket.receipt").await;
        assert_eq!((r["delivered_seq"].as_u64(), r["read_seq"].as_u64()), (Some(4), Some(0)), "{label} {r}");
        user.request(json!({"type": "ticket.read", "ticket_id": tid, "seq": 4})).await;
        let r = a.event_where("ticket.receipt", |r| r["read_seq"] == 4).await;
        assert_eq!(r["participant"]["kind"], "user");
        // A console that comes back gets the marks with its subscription, without waiting for a change.
        let mut back = hub.connect_agent(Encoding::Json, &a_token).await;
        let ok = back.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 4})).await;
        let user_id = user.request(json!({"type": "me"})).await["user_id"].clone();
        let marks = ok["marks"].as_array().unwrap_or_else(|| panic!("{label} marks on subscribe: {ok}"));
        assert_eq!(
            marks,
            &vec![json!({"participant": {"kind": "user", "id": user_id}, "delivered_seq": 4, "read_seq": 4})],
            "{label}"
        );
        assert_eq!(user.request(json!({"type": "ticket.typing", "ticket_id": tid})).await["type"], "ok");
        let t = a.event("ticket.typing").await;
        assert_eq!(t["participant"]["kind"], "user", "{label}");
        let again = user.request(json!({"type": "ticket.typing", "ticket_id": tid})).await;
        assert_eq!(again["code"], "rate_limited", "{label} typing is rate-limited");
        a.request(json!({"type": "ticket.typing", "ticket_id": tid})).await;
        let t = user.event("ticket.typing").await;
        assert_eq!(t["participant"], json!({"kind": "agent", "id": a_id}));
    }
}

#[tokio::test]
async fn agents_keep_canned_replies_and_set_their_status() {
    for hub in hubs(|_| {}).await {
        let (token, _) = hub.agent("Canned").await;
        let mut a = hub.connect_agent(Encoding::Json, &token).await;
        let r = a.request(json!({"type": "canned.add", "title": "Refund", "body": "Your refund is on its way."})).await;
        assert_eq!(r["replies"].as_array().unwrap().len(), 1, "{} {r}", hub.label());
        let rid = r["replies"][0]["id"].as_str().unwrap().to_owned();
        let (other_token, _) = hub.agent("Other").await;
        let mut other = hub.connect_agent(Encoding::MsgPack, &other_token).await;
        let r = other.request(json!({"type": "canned.delete", "reply_id": rid})).await;
        assert_eq!(r["code"], "not_found", "an agent cannot delete another's reply");
        assert_eq!(a.request(json!({"type": "canned.delete", "reply_id": rid})).await["type"], "ok");
        assert_eq!(a.request(json!({"type": "canned.list"})).await["replies"], json!([]));
        let s = a.request(json!({"type": "agent.status", "status": "busy", "capacity": 3})).await;
        assert_eq!((s["agent"]["status"].as_str(), s["agent"]["capacity"].as_u64()), (Some("busy"), Some(3)));
        let bad = a.request(json!({"type": "agent.status", "status": "busy", "capacity": 0})).await;
        assert_eq!(bad["code"], "bad_request");
        let list = other.request(json!({"type": "agent.list"})).await;
        assert!(list["agents"].as_array().unwrap().iter().any(|x| x["name"] == "Canned" && x["online"] == true));
    }
}

/// A user who opens the app again while their ticket waits hears its place right after `auth.ok`,
/// not only when the queue next moves; nobody else hears it.
#[tokio::test]
async fn a_waiting_user_who_connects_again_hears_their_place_at_once() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let mut first = hub.connect_as(Encoding::Json, &token).await;
        let ticket = open_ticket(&mut first, "Where is my order", "Order 1234").await;
        let tid = ticket["id"].as_str().unwrap().to_owned();
        let told = first.event_where("ticket.queue", |f| f["ticket_id"] == tid.as_str()).await;
        drop(first);

        let mut again = hub.connect_as(Encoding::MsgPack, &token).await;
        let place = again.event_where("ticket.queue", |f| f["ticket_id"] == tid.as_str()).await;
        assert_eq!(place["position"], told["position"], "{label} the place as last told: {place}");
        assert!(place.get("estimated_wait_ms").is_some(), "{label} {place}");

        let stranger_token = hub.token(&phone()).await;
        let mut stranger = hub.connect_as(Encoding::Json, &stranger_token).await;
        stranger.request(json!({"type": "ping"})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stranger.request(json!({"type": "ping"})).await;
        assert!(
            !stranger.seen.iter().any(|f| f["type"] == "ticket.queue"),
            "{label} another user hears nothing of this queue: {:?}",
            stranger.seen
        );
    }
}

#[tokio::test]
async fn auto_assignment_gives_the_oldest_ticket_to_the_freest_agent() {
    for hub in hubs(|c| c.auto_assign = true).await {
        let (token, agent_id) = hub.agent("Auto").await;
        let mut a = hub.connect_agent(Encoding::Json, &token).await;
        a.request(json!({"type": "agent.status", "status": "available", "capacity": 1})).await;
        let user_token = hub.token(&phone()).await;
        let mut user = hub.connect_as(Encoding::MsgPack, &user_token).await;
        let first = open_ticket(&mut user, "first", "one").await["id"].as_str().unwrap().to_owned();
        let second = open_ticket(&mut user, "second", "two").await["id"].as_str().unwrap().to_owned();
        let got = a.event_where("ticket.updated", |f| f["ticket"]["status"] == "assigned").await;
        assert_eq!(got["ticket"]["id"], first.as_str(), "{} oldest first", hub.label());
        assert_eq!(got["ticket"]["agent_id"], agent_id.as_str());
        // Capacity 1: the second waits until the first is resolved.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listed = a.request(json!({"type": "ticket.list", "mine": true})).await;
        assert_eq!(listed["tickets"].as_array().unwrap().len(), 1, "{}", hub.label());
        a.request(json!({"type": "ticket.resolve", "ticket_id": first})).await;
        let got = a
            .event_where("ticket.updated", |f| {
                f["ticket"]["id"] == second.as_str() && f["ticket"]["status"] == "assigned"
            })
            .await;
        assert_eq!(got["ticket"]["agent_id"], agent_id.as_str());
    }
}

#[tokio::test]
async fn a_disabled_agent_is_cut_off_and_cannot_sign_in() {
    for hub in hubs(|_| {}).await {
        let running = &hub.running.as_ref().unwrap().hub;
        let email = format!("gone-{}@anapars.test", uuid::Uuid::new_v4().simple());
        let (_, password) = running.agents.add(&email, "Gone").await.unwrap();
        let (_, body) = hub.post("/v1/agent/login", json!({"email": email, "password": password})).await;
        let token = body["token"].as_str().unwrap().to_owned();
        let mut a = hub.connect_agent(Encoding::Json, &token).await;
        let (status, _) = hub.post("/v1/agent/login", json!({"email": email, "password": "wrong"})).await;
        assert_eq!(status, 401);
        running.agents.disable(&email).await.unwrap();
        assert_eq!(a.closed().await, Some(4003), "{}", hub.label());
        assert_eq!(a.seen.last().unwrap()["reason"], "agent_disabled");
        let (status, body) = hub.post("/v1/agent/login", json!({"email": email, "password": password})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
        let mut c = hub.connect(Encoding::Json).await;
        assert_eq!(c.request(json!({"type": "auth", "token": token})).await["code"], "unauthorized");
    }
}

/// One side of a conversation that keeps its own cursor, reconnects when told to, and records
/// every event it receives.
struct Side {
    token: String,
    agent: bool,
    encoding: Encoding,
    client: Option<Client>,
    events: Vec<(u64, String)>,
}

impl Side {
    fn last(&self) -> u64 {
        self.events.last().map_or(0, |e| e.0)
    }

    async fn connect(&mut self, hub: &TestHub, tid: &str) {
        let mut c = if self.agent {
            hub.connect_agent(self.encoding, &self.token).await
        } else {
            hub.connect_as(self.encoding, &self.token).await
        };
        let r = c.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": self.last()})).await;
        assert_eq!(r["type"], "ticket.subscribe.ok", "{r}");
        self.absorb(&mut c);
        self.client = Some(c);
    }

    fn absorb(&mut self, c: &mut Client) {
        for f in c.seen.drain(..) {
            if f["type"] == "ticket.event" {
                self.events
                    .push((f["event"]["seq"].as_u64().unwrap(), f["event"]["body"].as_str().unwrap_or("").to_owned()));
            }
        }
    }

    async fn send(&mut self, tid: &str, cmid: &str) -> u64 {
        let c = self.client.as_mut().unwrap();
        let r = send(c, tid, cmid, cmid).await;
        assert_eq!(r["type"], "ticket.send.ok", "{r}");
        let seq = r["seq"].as_u64().unwrap();
        let mut c = self.client.take().unwrap();
        self.absorb(&mut c);
        self.client = Some(c);
        seq
    }

    async fn drain_until(&mut self, seq: u64) {
        while self.last() < seq {
            let c = self.client.as_mut().unwrap();
            c.event("ticket.event").await;
            let mut c = self.client.take().unwrap();
            self.absorb(&mut c);
            self.client = Some(c);
        }
    }
}

#[tokio::test]
async fn dropped_sockets_resume_exactly_once_in_order() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let user_token = hub.token(&phone()).await;
        let (agent_token, _) = hub.agent("Resume").await;
        let mut opener = hub.connect_as(Encoding::Json, &user_token).await;
        let tid = open_ticket(&mut opener, "busy", "start").await["id"].as_str().unwrap().to_owned();
        let mut agent_setup = hub.connect_agent(Encoding::Json, &agent_token).await;
        agent_setup.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
        drop(opener);
        drop(agent_setup);

        let mut user =
            Side { token: user_token, agent: false, encoding: Encoding::MsgPack, client: None, events: vec![] };
        let mut agent =
            Side { token: agent_token, agent: true, encoding: Encoding::Json, client: None, events: vec![] };
        user.connect(&hub, &tid).await;
        agent.connect(&hub, &tid).await;
        // A third writer on another socket keeps the stream busy while the two sides drop and resume.
        let writer_token = user.token.clone();
        let ws_url = hub.ws_url.clone();
        let tid2 = tid.clone();
        let background = tokio::spawn(async move {
            let mut c = Client::connect(&ws_url, Some(Encoding::Json), None).await;
            c.request(json!({"type": "auth", "token": writer_token})).await;
            for i in 0..40 {
                let r = send(&mut c, &tid2, &format!("bg-{i}"), "background").await;
                assert_eq!(r["type"], "ticket.send.ok");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let mut last_seq = 0;
        for round in 0..12 {
            last_seq = last_seq.max(user.send(&tid, &format!("u-{round}")).await);
            last_seq = last_seq.max(agent.send(&tid, &format!("a-{round}")).await);
            if round % 3 == 0 {
                user.client = None; // dropped without a goodbye
                user.connect(&hub, &tid).await;
            }
            if round % 4 == 1 {
                agent.client = None;
                agent.connect(&hub, &tid).await;
            }
        }
        background.await.unwrap();
        let total = 3 + 24 + 40;
        let _ = last_seq;
        user.drain_until(total).await;
        agent.drain_until(total).await;
        for side in [&user, &agent] {
            let seqs: Vec<u64> = side.events.iter().map(|e| e.0).collect();
            assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "{label} every event once, in order");
        }
        assert_eq!(user.events, agent.events, "{label} both sides see the same stream");
        let bodies: BTreeMap<&str, usize> = user.events.iter().fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e.1.as_str()).or_default() += 1;
            m
        });
        assert_eq!(bodies.get("background"), Some(&40));
    }
}

/// Replies to the frames of a burst, in arrival order, skipping events: (id, reply).
async fn replies(c: &mut Client, n: usize) -> Vec<(u64, Value)> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = c.recv().await;
        if let Some(id) = f.get("id").and_then(Value::as_u64) {
            out.push((id, f));
        }
    }
    out
}

#[tokio::test]
async fn an_agents_sends_are_pipelined_but_replies_and_each_tickets_order_are_kept() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            let label = format!("{} {encoding:?}", hub.label());
            let (token, _) = hub.agent("Sara").await;
            let mut agent = hub.connect_agent(encoding, &token).await;
            let mut tickets = Vec::new();
            for i in 0..3 {
                let user_token = hub.token(&phone()).await;
                let mut user = hub.connect_as(Encoding::Json, &user_token).await;
                let t = open_ticket(&mut user, &format!("ticket {i}"), "hello").await;
                let tid = t["id"].as_str().unwrap().to_owned();
                let r = agent.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
                assert_eq!(r["type"], "ticket.update.ok", "{label} {r}");
                tickets.push(tid);
            }
            // Everything written at once, without waiting for any reply: sends to three tickets
            // (two to the first and second), a refused one, a ping in the middle.
            let (a, b, c) = (&tickets[0], &tickets[1], &tickets[2]);
            let frames = [
                json!({"id": 101, "type": "ticket.send", "ticket_id": a, "client_msg_id": "a1", "body": "a one"}),
                json!({"id": 102, "type": "ticket.send", "ticket_id": b, "client_msg_id": "b1", "body": "b one"}),
                json!({"id": 103, "type": "ticket.send", "ticket_id": a, "client_msg_id": "a2", "body": "a two"}),
                json!({"id": 104, "type": "ticket.send", "ticket_id": c, "client_msg_id": "c1", "body": "   "}),
                json!({"id": 105, "type": "ping"}),
                json!({"id": 106, "type": "ticket.send", "ticket_id": c, "client_msg_id": "c1", "body": "c one"}),
                json!({"id": 107, "type": "ticket.send", "ticket_id": b, "client_msg_id": "b2", "body": "b two"}),
                json!({"id": 108, "type": "ticket.send", "ticket_id": a, "client_msg_id": "a3", "body": "a three"}),
            ];
            for f in frames {
                agent.send(f).await;
            }
            let got = replies(&mut agent, 8).await;
            let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, (101..=108).collect::<Vec<_>>(), "{label} replies leave in request order");
            let kinds: Vec<&str> = got.iter().map(|(_, f)| f["type"].as_str().unwrap()).collect();
            assert_eq!(
                kinds,
                [
                    "ticket.send.ok",
                    "ticket.send.ok",
                    "ticket.send.ok",
                    "error",
                    "ping.ok",
                    "ticket.send.ok",
                    "ticket.send.ok",
                    "ticket.send.ok"
                ],
                "{label} {got:?}"
            );
            assert_eq!(got[3].1["code"], "empty_body", "{label}");
            let seq = |i: usize| got[i].1["seq"].as_u64().unwrap();
            // Opened (1), first message (2), claimed (3): the agent's messages follow in send order.
            assert_eq!((seq(0), seq(2), seq(7)), (4, 5, 6), "{label} a sender's messages to a ticket keep their order");
            assert_eq!((seq(1), seq(6)), (4, 5), "{label}");
            assert_eq!(seq(5), 4, "{label}");
            for (tid, bodies) in
                [(a, vec!["a one", "a two", "a three"]), (b, vec!["b one", "b two"]), (c, vec!["c one"])]
            {
                let h = agent.request(json!({"type": "ticket.history", "ticket_id": tid, "after_seq": 3})).await;
                let stored: Vec<&str> =
                    h["events"].as_array().unwrap().iter().filter_map(|e| e["body"].as_str()).collect();
                assert_eq!(stored, bodies, "{label} stored in the order sent");
            }
        }
    }
}

/// Private notes reach every agent's console, with the agents they name, and nothing of the user's:
/// not their sockets (subscribed to the ticket), their history or their requests; the user's export
/// holds them. A resend answers the stored note and tells nobody again.
#[tokio::test]
async fn notes_reach_agents_only_and_the_customers_export() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            let label = format!("{} {encoding:?}", hub.label());
            let user_token = hub.token(&phone()).await;
            let mut user = hub.connect_as(encoding, &user_token).await;
            let (a_token, a_id) = hub.agent("Sara").await;
            let (b_token, b_id) = hub.agent("Reza").await;
            let mut a = hub.connect_agent(encoding, &a_token).await;
            let mut b = hub.connect_agent(encoding, &b_token).await;
            let ticket = open_ticket(&mut user, "Refund", "پول دو بار کم شد").await;
            let tid = ticket["id"].as_str().unwrap().to_owned();
            let sub = user.request(json!({"type": "ticket.subscribe", "ticket_id": tid, "after_seq": 0})).await;
            assert_eq!(sub["type"], "ticket.subscribe.ok", "{label} {sub}");

            let text = "کارت مشتری مسدود است؛ @Reza لطفاً بازپرداخت را بررسی کن";
            let add =
                json!({"type": "note.add", "ticket_id": tid, "client_msg_id": "n-1", "body": text, "mentions": [b_id]});
            let ok = a.request(add.clone()).await;
            assert_eq!(ok["type"], "note.add.ok", "{label} {ok}");
            let note = ok["note"].clone();
            assert_eq!((note["body"].as_str(), note["agent_id"].as_str()), (Some(text), Some(a_id.as_str())));
            assert_eq!(note["mentions"], json!([b_id]));
            let heard = b.event("ticket.note").await;
            assert_eq!(heard["note"], note, "{label} the named agent hears of it");
            assert_eq!(
                a.event("ticket.note").await["note"]["id"],
                note["id"],
                "{label} every console, the writer's too"
            );
            let again = a.request(add).await;
            assert_eq!(again["note"]["id"], note["id"], "{label} a resend answers the stored note");

            let bad = a
                .request(json!({"type": "note.add", "ticket_id": tid, "client_msg_id": "n-2", "body": "x", "mentions": [uuid::Uuid::now_v7()]}))
                .await;
            assert_eq!(bad["code"], "bad_request", "{label} {bad}");
            let empty =
                a.request(json!({"type": "note.add", "ticket_id": tid, "client_msg_id": "n-3", "body": "  "})).await;
            assert_eq!(empty["code"], "empty_body", "{label} {empty}");
            let listed = b.request(json!({"type": "note.list", "ticket_id": tid})).await;
            assert_eq!(
                (listed["notes"].as_array().unwrap().len(), &listed["more"]),
                (1, &json!(false)),
                "{label} {listed}"
            );

            // The user: refused, and nothing of the note on the socket or in the history.
            for frame in [
                json!({"type": "note.list", "ticket_id": tid}),
                json!({"type": "note.add", "ticket_id": tid, "client_msg_id": "u-1", "body": "x"}),
            ] {
                assert_eq!(user.request(frame).await["code"], "forbidden", "{label}");
            }
            let history = user.request(json!({"type": "ticket.history", "ticket_id": tid})).await;
            assert_eq!(history["events"].as_array().unwrap().len(), 2, "{label} {history}");
            assert!(!user.seen.iter().any(|f| f.to_string().contains("مسدود")), "{label} a note reached the user");
            assert!(!user.seen.iter().any(|f| f["type"] == "ticket.note"), "{label}");

            let (status, export) = hub.get("/v1/me/export", Some(&user_token)).await;
            assert_eq!(status, 200);
            let exported = &export["tickets"][0]["notes"];
            assert_eq!(exported[0]["body"], text, "{label} the export holds the notes about the customer: {exported}");
        }
    }
}

/// Supervisors keep the team's labels (names unique across Arabic and Persian letter forms); any
/// agent labels tickets and lists by a label; every agent hears of changes, no user ever sees one.
#[tokio::test]
async fn supervisors_keep_labels_and_agents_label_tickets() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let user_token = hub.token(&phone()).await;
        let mut user = hub.connect_as(Encoding::Json, &user_token).await;
        let (boss_token, _) = hub.supervisor("Mina").await;
        let (a_token, _) = hub.agent("Sara").await;
        let mut boss = hub.connect_agent(Encoding::Json, &boss_token).await;
        let mut a = hub.connect_agent(Encoding::MsgPack, &a_token).await;
        let ticket = open_ticket(&mut user, "کارت", "کارتم بسته شد").await;
        let tid = ticket["id"].as_str().unwrap().to_owned();
        let other = open_ticket(&mut user, "Other", "another").await;

        let name = format!("کارت {}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let refused = a.request(json!({"type": "label.create", "name": name, "color": "#1F7A8C"})).await;
        assert_eq!(refused["code"], "forbidden", "{label} only supervisors keep the list: {refused}");
        let created =
            boss.request(json!({"type": "label.create", "name": format!("  {name} "), "color": "#1F7A8C"})).await;
        assert_eq!(created["type"], "label.list.ok", "{label} {created}");
        let made = created["labels"].as_array().unwrap().iter().find(|l| l["name"] == name.as_str()).unwrap().clone();
        assert_eq!(made["color"], "#1f7a8c");
        let lid = made["id"].as_str().unwrap().to_owned();
        assert!(a.event("labels.updated").await["labels"].as_array().unwrap().contains(&made), "{label}");
        let arabic = name.replace('ک', "ك");
        let twin = boss.request(json!({"type": "label.create", "name": arabic, "color": "#000000"})).await;
        assert_eq!(twin["code"], "conflict", "{label} the same name in Arabic letters: {twin}");
        let bad = boss.request(json!({"type": "label.create", "name": "x", "color": "red"})).await;
        assert_eq!(bad["code"], "bad_request", "{label}");

        let on = a.request(json!({"type": "ticket.label", "ticket_id": tid, "label_id": lid, "on": true})).await;
        assert_eq!(on["labels"], json!({"ticket_id": tid, "label_ids": [lid]}), "{label} {on}");
        assert_eq!(boss.event("ticket.labels").await["labels"], on["labels"], "{label} every agent hears of it");
        let listed = boss.request(json!({"type": "ticket.list", "label_id": lid})).await;
        let ids: Vec<&str> = listed["tickets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [tid.as_str()], "{label} only the labelled ticket: {listed}");
        assert_eq!(listed["labels"], json!([{"ticket_id": tid, "label_ids": [lid]}]));
        assert_ne!(other["id"], tid.as_str());

        let mine = user.request(json!({"type": "ticket.list"})).await;
        assert!(mine.get("labels").is_none(), "{label} a user's list carries no labels: {mine}");
        let filtered = user.request(json!({"type": "ticket.list", "label_id": lid})).await;
        assert_eq!(filtered["code"], "forbidden", "{label}");
        assert_eq!(user.request(json!({"type": "label.list"})).await["code"], "forbidden");
        assert!(!user.seen.iter().any(|f| f.to_string().contains(&lid)), "{label} a label reached the user");

        let gone = boss.request(json!({"type": "label.delete", "label_id": lid})).await;
        assert_eq!(gone["type"], "label.list.ok", "{label} {gone}");
        let listed = a.request(json!({"type": "ticket.list", "label_id": lid})).await;
        assert_eq!(listed["tickets"], json!([]), "{label} a deleted label leaves its tickets");
        let again = a.request(json!({"type": "ticket.label", "ticket_id": tid, "label_id": lid, "on": true})).await;
        assert_eq!(again["code"], "not_found", "{label}");
    }
}

/// A ticket's id finds the ticket however many of its later texts hold its subject's words, as
/// many as a search of words ranks and more, ranked as well as the subject or better.
#[tokio::test]
async fn a_ticket_id_finds_its_ticket_however_many_texts_repeat_its_subject() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let tag = format!("q{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut user = hub.connect_as(Encoding::Json, &hub.token(&phone()).await).await;
        let ticket = open_ticket(&mut user, &format!("کارت {tag}"), "سلام").await;
        let id: uuid::Uuid = ticket["id"].as_str().unwrap().parse().unwrap();
        let user_id: uuid::Uuid = ticket["user_id"].as_str().unwrap().parse().unwrap();
        // As another node would store them.
        let store = anapars_hub::adapters::sql::connect(&hub.database().config).await.expect("open the store");
        let now = anapars_hub::model::time::now_ms();
        let repeats: Vec<_> = (0..anapars_hub::model::search::RANKED_MATCHES as i64 + 5)
            .map(|i| anapars_hub::model::ticket::NewMessage {
                ticket_id: anapars_hub::model::ids::TicketId(id),
                author: anapars_hub::model::ticket::Author::User(anapars_hub::model::ids::UserId(user_id)),
                client_msg_id: format!("repeat-{i}"),
                body: format!("کارت {tag} {i}"),
                attachments: Vec::new(),
                created_at: now + i,
            })
            .collect();
        for batch in repeats.chunks(256) {
            store.append_messages(batch).await.expect("store the repeats");
        }
        let (a_token, _) = hub.agent("Sara").await;
        let mut a = hub.connect_agent(Encoding::Json, &a_token).await;
        let words = a.request(json!({"type": "ticket.search", "query": format!("کارت {tag}")})).await;
        assert_ne!(words["results"][0]["seq"], 1, "{label} the subject is not among the newest matches: {words}");
        let by_id = a.request(json!({"type": "ticket.search", "query": ticket["id"]})).await;
        let found: Vec<_> = by_id["results"].as_array().unwrap().iter().map(|r| r["seq"].clone()).collect();
        assert_eq!(found, [json!(1)], "{label} {by_id}");
    }
}

/// Agents search subjects and messages over the socket and HTTP, Persian folded (`كارت` finds
/// `کارت`), the match marked in its text; users cannot search, and a phone number is no query.
#[tokio::test]
async fn agents_search_tickets_with_persian_folding() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let tag = format!("q{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let user_token = hub.token(&phone()).await;
        let mut user = hub.connect_as(Encoding::Json, &user_token).await;
        let ticket = open_ticket(&mut user, &format!("کارت بانکی {tag}"), &format!("کارتم را بانک بست {tag}")).await;
        let (a_token, _) = hub.agent("Sara").await;
        let mut a = hub.connect_agent(Encoding::MsgPack, &a_token).await;

        let found = a.request(json!({"type": "ticket.search", "query": format!("كارت {tag}")})).await;
        assert_eq!(found["type"], "ticket.search.ok", "{label} {found}");
        let results = found["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{label} the subject and the message: {found}");
        assert!(results.iter().all(|r| r["ticket"]["id"] == ticket["id"]));
        let message = results.iter().find(|r| r["seq"] == 2).expect("the message");
        assert_eq!(message["snippet"][0], json!({"text": "کارتم", "match": true}), "{label} {message}");
        assert_eq!(found["more"], false);
        let paged = a.request(json!({"type": "ticket.search", "query": tag, "limit": 1})).await;
        assert_eq!((paged["results"].as_array().unwrap().len(), &paged["more"]), (1, &json!(true)), "{label}");
        let by_id = a.request(json!({"type": "ticket.search", "query": ticket["id"]})).await;
        assert_eq!(by_id["results"][0]["seq"], 1, "{label} a ticket's id finds the ticket: {by_id}");
        let resolved = a.request(json!({"type": "ticket.search", "query": tag, "status": "resolved"})).await;
        assert_eq!(resolved["results"], json!([]), "{label}");

        // The customer's name: their tickets first, on the first page only.
        let named = user.request(json!({"type": "profile.update", "name": format!("مريم {tag}")})).await;
        assert_eq!(named["type"], "profile.ok", "{label} {named}");
        let by_name = a.request(json!({"type": "ticket.search", "query": format!("مریم {tag}")})).await;
        let first = &by_name["results"][0];
        assert_eq!(
            (first["matched"].as_str(), &first["ticket"]["id"]),
            (Some("customer_name"), &ticket["id"]),
            "{label} {by_name}"
        );
        assert_eq!(first["snippet"][0], json!({"text": "مريم", "match": true}), "{label} the name as written");
        assert!(found["results"].as_array().unwrap().iter().all(|r| r["matched"] == "text"), "{label}");
        let page2 = a.request(json!({"type": "ticket.search", "query": tag, "offset": 1})).await;
        assert!(page2["results"].as_array().unwrap().iter().all(|r| r["matched"] == "text"), "{label} {page2}");

        let number = a.request(json!({"type": "ticket.search", "query": "0912 123 4567"})).await;
        assert_eq!(number["code"], "bad_request", "{label} {number}");
        assert_eq!(user.request(json!({"type": "ticket.search", "query": tag})).await["code"], "forbidden");

        let url =
            reqwest::Url::parse_with_params(&format!("{}/v1/search", hub.base), [("query", format!("كارت {tag}"))])
                .unwrap();
        let resp = hub.http.get(url.clone()).bearer_auth(&a_token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{label}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["results"].as_array().unwrap().len(), 2, "{label} over HTTP: {body}");
        let as_user = hub.http.get(url).bearer_auth(&user_token).send().await.unwrap();
        assert_eq!(as_user.status().as_u16(), 403, "{label}");
        let no_query = hub.http.get(format!("{}/v1/search", hub.base)).bearer_auth(&a_token).send().await.unwrap();
        assert_eq!(no_query.status().as_u16(), 400, "{label}");
    }
}

/// A resolution asks the user for a rating: once per resolution, seen by every agent, asked anew
/// after a reopen and another resolution, refused after it lapses, in the customer's export.
#[tokio::test]
async fn users_rate_each_resolution_once_and_agents_see_it() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            let label = format!("{} {encoding:?}", hub.label());
            let user_token = hub.token(&phone()).await;
            let mut user = hub.connect_as(encoding, &user_token).await;
            let mut phone2 = hub.connect_as(encoding, &user_token).await;
            let (a_token, a_id) = hub.agent("Sara").await;
            let (b_token, _) = hub.agent("Reza").await;
            let mut a = hub.connect_agent(encoding, &a_token).await;
            let mut b = hub.connect_agent(encoding, &b_token).await;
            let ticket = open_ticket(&mut user, "Refund", "پول دو بار کم شد").await;
            let tid = ticket["id"].as_str().unwrap().to_owned();
            let submit = |seq: u64, score: u64, comment: &str| json!({"type": "rating.submit", "ticket_id": tid, "resolution_seq": seq, "score": score, "comment": comment});
            assert_eq!(user.request(submit(2, 5, "")).await["code"], "wrong_state", "{label} open: nothing to rate");
            assert_eq!(a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await["type"], "ticket.update.ok");
            let resolved = a.request(json!({"type": "ticket.resolve", "ticket_id": tid})).await;
            let seq = resolved["ticket"]["last_seq"].as_u64().unwrap();
            let asked = user.event("rating.request").await;
            assert_eq!(
                (asked["ticket_id"].as_str(), asked["resolution_seq"].as_u64()),
                (Some(tid.as_str()), Some(seq))
            );
            let week = resolved["ticket"]["updated_at"].as_i64().unwrap() + 7 * 24 * 3600 * 1000;
            assert_eq!(asked["expires_at"], week, "{label} {asked}");
            assert_eq!(phone2.event("rating.request").await["resolution_seq"], seq, "{label} every app of the user");
            let pending = user.request(json!({"type": "rating.pending"})).await;
            assert_eq!(pending["requests"], json!([{"ticket_id": tid, "resolution_seq": seq, "expires_at": week}]));
            assert!(!a.seen.iter().any(|f| f["type"] == "rating.request"), "{label} agents are not asked");

            for (frame, code) in [
                (submit(seq, 0, ""), "bad_request"),
                (submit(seq, 6, ""), "bad_request"),
                (submit(seq, 5, &"خ".repeat(1001)), "too_large"),
                (submit(seq - 1, 5, ""), "wrong_state"),
            ] {
                assert_eq!(user.request(frame).await["code"], code, "{label}");
            }
            assert_eq!(a.request(submit(seq, 5, "")).await["code"], "forbidden", "{label} agents do not rate");
            assert_eq!(a.request(json!({"type": "rating.pending"})).await["code"], "forbidden", "{label}");
            let stranger_token = hub.token(&phone()).await;
            let mut stranger = hub.connect_as(encoding, &stranger_token).await;
            assert_eq!(stranger.request(submit(seq, 1, "")).await["code"], "forbidden", "{label}");

            let ok = user.request(submit(seq, 4, "  سریع بود، ممنون  ")).await;
            assert_eq!(ok["type"], "rating.submit.ok", "{label} {ok}");
            let rating = ok["rating"].clone();
            assert_eq!((rating["score"].as_u64(), rating["comment"].as_str()), (Some(4), Some("سریع بود، ممنون")));
            assert_eq!(rating["agent_id"], a_id.as_str(), "{label} credited to the resolving agent");
            assert_eq!(b.event("ticket.rated").await["rating"], rating, "{label} every agent sees it");
            assert_eq!(phone2.event("ticket.rated").await["rating"], rating, "{label} the user's other apps too");
            let again = user.request(submit(seq, 4, "سریع بود، ممنون")).await;
            assert_eq!(again["rating"], rating, "{label} the same rating again answers the stored one");
            assert_eq!(user.request(submit(seq, 1, "")).await["code"], "wrong_state", "{label} once per resolution");
            assert_eq!(user.request(json!({"type": "rating.pending"})).await["requests"], json!([]), "{label}");

            // Reopened: the request lapses; resolved again: a new one.
            assert_eq!(send(&mut user, &tid, "u-2", "دوباره کم شد").await["type"], "ticket.send.ok");
            assert_eq!(user.request(submit(seq, 4, "")).await["code"], "wrong_state", "{label} reopened");
            assert_eq!(b.request(json!({"type": "ticket.claim", "ticket_id": tid})).await["type"], "ticket.update.ok");
            let resolved = b.request(json!({"type": "ticket.resolve", "ticket_id": tid})).await;
            let seq2 = resolved["ticket"]["last_seq"].as_u64().unwrap();
            let asked = user.event_where("rating.request", |f| f["resolution_seq"] == seq2).await;
            assert_eq!(asked["ticket_id"], tid.as_str());
            assert_eq!(user.request(submit(seq2, 2, "")).await["rating"]["comment"], Value::Null, "{label} blank");
            let listed = a.request(json!({"type": "rating.list", "ticket_id": tid})).await;
            let scores: Vec<u64> =
                listed["ratings"].as_array().unwrap().iter().map(|r| r["score"].as_u64().unwrap()).collect();
            assert_eq!(scores, [4, 2], "{label} {listed}");
            assert_eq!(stranger.request(json!({"type": "rating.list", "ticket_id": tid})).await["code"], "forbidden");

            let (status, export) = hub.get("/v1/me/export", Some(&user_token)).await;
            assert_eq!(status, 200);
            assert_eq!(export["tickets"][0]["ratings"], listed["ratings"], "{label} ratings are the customer's data");
        }
    }
}

/// An unanswered request lapses after `rating_expiry_secs`; with ratings off nothing is asked.
#[tokio::test]
async fn rating_requests_expire_and_can_be_turned_off() {
    for (expiry, hub) in [(1, hubs(|c| c.rating_expiry_secs = 1).await), (0, hubs(|c| c.rating_expiry_secs = 0).await)]
        .into_iter()
        .flat_map(|(e, hubs)| hubs.into_iter().map(move |h| (e, h)))
    {
        let label = format!("{} expiry {expiry}", hub.label());
        let user_token = hub.token(&phone()).await;
        let mut user = hub.connect_as(Encoding::Json, &user_token).await;
        let (a_token, _) = hub.agent("Sara").await;
        let mut a = hub.connect_agent(Encoding::Json, &a_token).await;
        let tid = open_ticket(&mut user, "Refund", "کم شد").await["id"].as_str().unwrap().to_owned();
        a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
        let seq = a.request(json!({"type": "ticket.resolve", "ticket_id": tid})).await["ticket"]["last_seq"].clone();
        let submit = json!({"type": "rating.submit", "ticket_id": tid, "resolution_seq": seq, "score": 5});
        if expiry == 0 {
            let refused = user.request(submit).await;
            assert_eq!(
                (refused["code"].as_str(), refused["message"].as_str()),
                (Some("wrong_state"), Some("ratings are off"))
            );
            assert_eq!(user.request(json!({"type": "rating.pending"})).await["requests"], json!([]), "{label}");
            assert!(!user.seen.iter().any(|f| f["type"] == "rating.request"), "{label} nothing asked");
            continue;
        }
        user.event("rating.request").await;
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(user.request(json!({"type": "rating.pending"})).await["requests"], json!([]), "{label} lapsed");
        let late = user.request(submit).await;
        assert_eq!(late["message"], "the rating request has expired", "{label} {late}");
    }
}

/// Supervisors read the team's report over HTTP, as JSON and as CSV; nobody else may; the
/// support-time histograms reach `/metrics`.
#[tokio::test]
async fn supervisors_read_reports_as_json_and_csv() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let user_token = hub.token(&phone()).await;
        let mut user = hub.connect_as(Encoding::Json, &user_token).await;
        let (boss_token, _) = hub.supervisor("Mina").await;
        let (a_token, a_id) = hub.agent("Sara").await;
        let mut a = hub.connect_agent(Encoding::Json, &a_token).await;

        let start = anapars_hub::model::time::now_ms();
        let tid = open_ticket(&mut user, "Refund", "کم شد").await["id"].as_str().unwrap().to_owned();
        a.request(json!({"type": "ticket.claim", "ticket_id": tid})).await;
        assert_eq!(send(&mut a, &tid, "a-1", "بررسی می‌کنم").await["type"], "ticket.send.ok");
        let resolved = a.request(json!({"type": "ticket.resolve", "ticket_id": tid})).await;
        let seq = resolved["ticket"]["last_seq"].clone();
        let rated =
            user.request(json!({"type": "rating.submit", "ticket_id": tid, "resolution_seq": seq, "score": 4})).await;
        assert_eq!(rated["type"], "rating.submit.ok", "{label} {rated}");
        let end = anapars_hub::model::time::now_ms() + 1;

        let path = format!("/v1/reports?from={start}&to={end}");
        let (status, report) = hub.get(&path, Some(&boss_token)).await;
        assert_eq!(status, 200, "{label} {report}");
        let overall = &report["overall"];
        assert_eq!(
            (overall["opened"].as_u64(), overall["claimed"].as_u64(), overall["resolved"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        for times in ["first_response", "queue_wait", "resolution"] {
            assert_eq!(overall[times]["count"], 1, "{label} {times}: {overall}");
            assert!(overall[times]["p50_ms"].as_i64().unwrap() >= 0, "{label} {times}");
        }
        assert_eq!(overall["ratings"]["distribution"], json!([0, 0, 0, 1, 0]), "{label}");
        assert_eq!(
            (overall["ratings"]["average"].as_f64(), overall["ratings"]["response_rate"].as_f64()),
            (Some(4.0), Some(1.0))
        );
        let agents = report["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 1, "{label} only Sara did anything: {report}");
        assert_eq!((agents[0]["agent_id"].as_str(), agents[0]["name"].as_str()), (Some(a_id.as_str()), Some("Sara")));
        assert_eq!(agents[0]["figures"]["first_response"]["count"], 1);

        let (status, later) = hub.get(&format!("/v1/reports?from={end}&to={}", end + 60_000), Some(&boss_token)).await;
        assert_eq!((status, later["overall"]["opened"].as_u64()), (200, Some(0)), "{label} nothing after it");

        let csv = hub.http.get(format!("{}{path}&format=csv", hub.base)).bearer_auth(&boss_token).send().await.unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let text = csv.text().await.unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert!(lines[0].starts_with("scope,id,name,opened,reopened,claimed,resolved,"), "{label} {text}");
        assert!(lines[1].starts_with("overall,,,1,0,1,1,1,"), "{label} {text}");
        assert!(lines[2].starts_with(&format!("agent,{a_id},Sara,0,0,1,1,1,")), "{label} {text}");

        for (token, status) in [(Some(a_token.as_str()), 403), (Some(user_token.as_str()), 403), (None, 401)] {
            assert_eq!(hub.get(&path, token).await.0, status, "{label} only supervisors");
        }
        for bad in
            [format!("from={end}&to={start}"), format!("from=0&to={}", 367 * 86_400_000_i64), "from=x&to=1".into()]
        {
            let (status, body) = hub.get(&format!("/v1/reports?{bad}"), Some(&boss_token)).await;
            assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{label} {bad}");
        }

        // The histograms are observed off the request's path: give them a moment.
        let mut metrics = String::new();
        for _ in 0..50 {
            metrics = hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap();
            if metrics.contains("hub_first_response_seconds_count") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for name in [
            "hub_first_response_seconds_count",
            "hub_queue_wait_seconds_count",
            "hub_resolution_seconds_count",
            "hub_ratings_total{score=\"4\"}",
        ] {
            assert!(metrics.contains(name), "{label} /metrics lacks {name}");
        }
    }
}
