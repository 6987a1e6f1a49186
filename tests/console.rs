//! The agent console, end to end: the hub serves `/console`, headless Chromium (driven by
//! `tests/e2e/console.mjs` through playwright-core) signs an agent in, and this test plays the
//! users over real WebSockets. The two sides take turns over the script's stdio: it prints
//! `STEP <name>`, this test acts as the users and answers `OK <name>`.
//!
//! The script works in Persian first (a browser that asks for Persian), then switches the console
//! to English: direction of what people wrote, the calendar and digits, canned replies, the customer
//! panel, unread counts, phone-size layout, in both languages. Files go both ways: a user's picture
//! shown in the console, the agent's picture and text file received and downloaded by the user, and
//! a disguised HTML file refused. Private notes: the agent writes one naming a second agent and one
//! while the hub is down; the user's socket never carries them, the user's export holds them; then
//! the second agent names the console's agent in a note, which alerts them. Labels and search: the
//! agent, a supervisor, creates a label in the console and puts it on a ticket, which another
//! agent's `ticket.list` finds by it; a word typed with Arabic letters finds the user's message
//! written with Persian ones. Ratings and reports: the console resolves Ali's ticket, Ali rates
//! it and the console shows the rating at once (and again, read from the hub, after a reload);
//! the agent opens Reports and sees the figures of this run, the first-response chart and the
//! CSV file; another agent, no supervisor, is refused the report.
//!
//! Needs Node, Chromium (`/usr/bin/chromium`, or `CHROMIUM_PATH`) and `npm ci` in `tests/e2e`.
//! Without them the test says so loudly and passes, unless `REQUIRE_BROWSER=1` (CI sets it).
//! `UPDATE_SCREENSHOT=1` writes the screenshots to `docs/` (`console.png` at desktop size,
//! `console-phone.png` at 390x844; the README shows them).

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{phone, Client, TestHub};
use common::TestDatabase;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The whole browser run, including Chromium's start.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// A message mixing Persian, Latin and digits: laid out right to left, its Latin and numbers
/// keep their own order inside.
const MIXED: &str = "تراکنش ref: TX-99812 ساعت 14:05 بود.";

/// The private note the agent writes in the console, after `@نسرین ` (tests/e2e/console.mjs).
const NOTE_FA: &str = "لطفاً تراکنش TX-99812 را در درگاه بانک بررسی کن.";
/// The private note the agent writes while the hub is down.
const OFFLINE_NOTE: &str = "کاربر دو بار شارژ شده؛ بازپرداخت دستی لازم است.";
/// The colleague the agent names in the note.
const NASRIN: &str = "نسرین";
/// The label the agent creates in the console and puts on the first ticket.
const LABEL: &str = "کارت بانکی";
/// What Ali says when he rates the resolution of his ticket (4 of 5).
const RATING_COMMENT: &str = "ممنون، سریع درست شد 👍";

/// The text file the agent attaches.
const NOTE: &str = "شماره پیگیری: TX-99812\nمبلغ: ۱٬۲۵۰٬۰۰۰ ریال\n";
/// The size of the picture the user sends.
const RECEIPT: (u32, u32) = (320, 200);
/// The size of the picture the agent attaches.
const CHART: (u32, u32) = (48, 36);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the browser run needs, or why it cannot run here.
fn browser_setup() -> Result<PathBuf, String> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".into());
    }
    let chromium = match std::env::var_os("CHROMIUM_PATH") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.exists()).ok_or("CHROMIUM_PATH names no file")?,
        None => ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .map(PathBuf::from)
            .into_iter()
            .find(|p| p.exists())
            .ok_or("chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH)")?,
    };
    if !repo().join("tests/e2e/node_modules/playwright-core").is_dir() {
        return Err("playwright-core is not installed: run `npm ci` in tests/e2e".into());
    }
    Ok(chromium)
}

#[tokio::test]
async fn an_agent_answers_users_in_the_browser_console_in_persian_and_english() {
    let chromium = match browser_setup() {
        Ok(c) => c,
        Err(why) if std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("REQUIRE_BROWSER=1 but the console's browser test cannot run: {why}")
        }
        Err(why) => {
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let bar = "!".repeat(72);
            let _ =
                writeln!(std::io::stderr(), "\n{bar}\nSKIPPED: the console's browser test did not run: {why}\n{bar}\n");
            return;
        }
    };
    // One backend is enough here: the console only sees the protocol, which every suite checks on
    // every backend.
    let mut hub = TestHub::start(TestDatabase::sqlite(), None, |c| c.presence_grace_ms = 200).await;
    let running = hub.running.as_ref().unwrap();
    let email = format!("sara-{}@anapars.test", uuid::Uuid::new_v4().simple());
    let (sara, password) = running.hub.agents.add(&email, "Sara").await.unwrap();
    let sara_id = sara.id.to_string();
    // Sara keeps the team's labels.
    assert!(running.hub.store.set_supervisor(sara.id, true).await.unwrap());
    let (reza_token, reza_id) = hub.agent("Reza").await;
    // The colleague named in notes, with a Persian name.
    let (nasrin_token, nasrin_id) = hub.agent(NASRIN).await;

    // Maryam's app reported her phone, and she had a ticket before, answered and resolved by Reza:
    // the console has never seen it, the hub has.
    let mut user = User::new(&hub, "مریم کریمی", Some(avatar())).await;
    user.report_device().await;
    let earlier = user.open("سؤال درباره اشتراک", "اشتراکم تمدید نشد", "old-1").await;
    let mut reza = hub.connect_agent(Encoding::Json, &reza_token).await;
    for kind in ["ticket.claim", "ticket.resolve"] {
        let r = reza.request(json!({"type": kind, "ticket_id": earlier})).await;
        assert_eq!(r["type"], "ticket.update.ok", "{r}");
    }
    drop(reza);
    // Ali's app reported too, but he turned analytics off: agents see no device of his.
    let mut ali = User::new(&hub, "Ali Rezaei", None).await;
    ali.report_device().await;
    let r = ali.socket.request(json!({"type": "consent.set", "analytics": false})).await;
    assert_eq!(r["type"], "consent.ok", "{r}");
    let mut neda = User::new(&hub, "Neda Ahmadi", None).await;

    let shots = if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        repo().join("docs")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    let chart = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chart-{}.png", uuid::Uuid::new_v4().simple()));
    std::fs::write(&chart, picture(CHART)).expect("write the agent's picture");
    let mut node = Command::new("node")
        .arg("console.mjs")
        .current_dir(repo().join("tests/e2e"))
        .env("HUB_URL", &hub.base)
        .env("AGENT_EMAIL", &email)
        .env("AGENT_PASSWORD", &password)
        .env("CHROMIUM_PATH", &chromium)
        .env("SCREENSHOT_DIR", &shots)
        .env("REZA_ID", &reza_id)
        .env("HIDDEN_NUMBERS", format!("{},{}", &user.phone[3..], &ali.phone[3..]))
        .env("RECEIPT_WIDTH", RECEIPT.0.to_string())
        .env("CHART_PNG", &chart)
        .env("NOTE_TEXT", NOTE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut to_node = node.stdin.take().unwrap();
    let mut from_node = BufReader::new(node.stdout.take().unwrap()).lines();

    let turns = async {
        let mut ticket = String::new();
        let mut alis = String::new();
        let mut english = String::new();
        let mut stopped = None;
        let mut typing_seen = 0;
        // The colleague's socket, which hears every note (opened just before it is needed: a socket
        // nobody reads misses the hub's pings).
        let mut nasrin = None;
        while let Some(line) = from_node.next_line().await.expect("read the script's output") {
            let Some(step) = line.strip_prefix("STEP ") else {
                assert!(!line.starts_with("FAIL"), "the browser side failed: {line}");
                if line == "DONE" {
                    return;
                }
                continue;
            };
            match step {
                "open-tickets" => {
                    ticket = user.open("پرداخت ناموفق بود", "کارتم دو بار شارژ شد!", "open-1").await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    alis = ali.open("Wrong name on my receipt", "It says Ali Rezai", "open-2").await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    neda.open("App crashes on login", "Since the last update", "open-3").await;
                }
                "claimed" => {
                    let updated = user
                        .socket
                        .event_where("ticket.updated", |f| {
                            f["ticket"]["id"] == ticket.as_str() && f["ticket"]["status"] == "assigned"
                        })
                        .await;
                    assert_eq!(updated["ticket"]["id"], ticket.as_str());
                    user.follow(&ticket, 2).await;
                }
                "user-types" => {
                    let r = user.socket.request(json!({"type": "ticket.typing", "ticket_id": ticket})).await;
                    assert_eq!(r["type"], "ok", "{r}");
                }
                "user-writes" => {
                    user.send(&ticket, MIXED, "m-1").await;
                    user.send(&ticket, "It was 12.50 EUR, on Monday", "m-2").await;
                }
                "agent-replied" => {
                    // The console said it was typing, then sent the canned reply and a second line
                    // as one message.
                    let reply = user
                        .socket
                        .event_where("ticket.event", |f| {
                            f["event"]["author"]["kind"] == "agent" && f["event"]["kind"] == "message"
                        })
                        .await;
                    assert_eq!(
                        reply["event"]["body"], "مبلغ تا ۷۲ ساعت دیگر به کارت شما برمی‌گردد.\nRef: TX-99812",
                        "the canned reply, then the agent's own line"
                    );
                    assert!(
                        user.socket
                            .seen
                            .iter()
                            .any(|f| f["type"] == "ticket.typing" && f["participant"]["kind"] == "agent"),
                        "the console sent no typing indicator"
                    );
                    let seq = reply["event"]["seq"].as_u64().unwrap();
                    user.cursor = seq;
                    user.read(&ticket, seq).await;
                    typing_seen = agent_typing(&user.socket.seen);
                    nasrin = Some(hub.connect_agent(Encoding::Json, &nasrin_token).await);
                }
                "note-written" => {
                    // The named colleague hears of it, as the console wrote it.
                    let heard = nasrin
                        .as_mut()
                        .expect("the colleague's socket")
                        .event_where("ticket.note", |f| f["note"]["ticket_id"] == ticket.as_str())
                        .await;
                    let note = &heard["note"];
                    assert_eq!(note["body"], format!("@{NASRIN} {NOTE_FA}"), "{heard}");
                    assert_eq!(note["agent_id"], sara_id.as_str(), "{heard}");
                    assert_eq!(note["mentions"], json!([nasrin_id]), "{heard}");
                    // The user: nothing of it on their socket, not even that the agent was typing.
                    user.assert_no_note(NOTE_FA).await;
                    assert_eq!(
                        agent_typing(&user.socket.seen),
                        typing_seen,
                        "writing a note told the user that the agent was typing"
                    );
                    // Their export holds it under the ticket.
                    let notes = user.exported_notes(&hub, &ticket).await;
                    let exported = notes.iter().find(|n| n["id"] == note["id"]).expect("the note in the export");
                    assert_eq!(exported["body"], note["body"], "{exported}");
                    assert_eq!(exported["mentions"], json!([nasrin_id]), "{exported}");
                }
                "labelled" => {
                    // Another agent lists the tickets with the label the console created: the first.
                    let mut reza = hub.connect_agent(Encoding::Json, &reza_token).await;
                    let r = reza.request(json!({"type": "label.list"})).await;
                    assert_eq!(r["type"], "label.list.ok", "{r}");
                    let label = r["labels"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|l| l["name"] == LABEL)
                        .unwrap_or_else(|| panic!("the console's label is not in the team's list: {r}"))
                        .clone();
                    assert_eq!(label["color"], "#aa3300", "{label}");
                    assert_eq!(
                        r["labels"].as_array().unwrap().len(),
                        1,
                        "the same name in Arabic letters was stored: {r}"
                    );
                    let r = reza.request(json!({"type": "ticket.list", "label_id": label["id"]})).await;
                    assert_eq!(r["type"], "ticket.list.ok", "{r}");
                    let ids: Vec<_> = r["tickets"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
                    assert_eq!(ids, [json!(ticket)], "{r}");
                    assert_eq!(r["labels"], json!([{"ticket_id": ticket, "label_ids": [label["id"]]}]), "{r}");
                    // Reza takes it off; the console hears of it (and puts it on again).
                    let r = reza
                        .request(
                            json!({"type": "ticket.label", "ticket_id": ticket, "label_id": label["id"], "on": false}),
                        )
                        .await;
                    assert_eq!(r["labels"], json!({"ticket_id": ticket, "label_ids": []}), "{r}");
                    // The user hears nothing of labels.
                    let pong = user.socket.request(json!({"type": "ping"})).await;
                    assert_eq!(pong["type"], "ping.ok", "{pong}");
                    for f in &user.socket.seen {
                        assert!(!f.to_string().contains(LABEL), "a label reached the user: {f}");
                    }
                }
                "user-writes-again" => user.send(&ticket, "هنوز منتظرم", "m-3").await,
                "stop-hub" => {
                    // As an operator's restart: every socket gets 1012.
                    let running = hub.running.take().unwrap();
                    let mut config = running.hub.config.clone();
                    config.listen = running.addr;
                    running.shutdown().await;
                    stopped = Some(config);
                }
                "start-hub" => {
                    let config = stopped.take().expect("the hub was stopped");
                    hub.running = Some(anapars_hub::server::start(config).await.expect("the hub starts again"));
                    user.reconnect(&hub).await;
                    user.follow(&ticket, user.cursor).await;
                }
                "offline-message-arrived" => {
                    // The message written while the hub was down arrives exactly once.
                    let m = user
                        .socket
                        .event_where("ticket.event", |f| {
                            f["event"]["kind"] == "message" && f["event"]["author"]["kind"] == "agent"
                        })
                        .await;
                    assert_eq!(m["event"]["body"], "هنوز آنجا هستید؟");
                    let seq = m["event"]["seq"].as_u64().unwrap();
                    user.read(&ticket, seq).await;
                    user.send(&ticket, "بله، هستم", "m-4").await;
                    let copies = user
                        .socket
                        .seen
                        .iter()
                        .filter(|f| f["type"] == "ticket.event" && f["event"]["body"] == "هنوز آنجا هستید؟")
                        .count();
                    assert_eq!(copies, 1, "the message written offline reached the user {copies} times");
                    // The note written offline was stored once, for agents and the export only.
                    user.assert_no_note(OFFLINE_NOTE).await;
                    let notes = user.exported_notes(&hub, &ticket).await;
                    let bodies: Vec<_> = notes.iter().map(|n| n["body"].as_str().unwrap_or_default()).collect();
                    assert_eq!(bodies.iter().filter(|b| **b == OFFLINE_NOTE).count(), 1, "{bodies:?}");
                    assert_eq!(bodies.len(), 2, "{bodies:?}");
                }
                "user-sends-image" => {
                    let receipt = user.upload(&hub, "رسید پرداخت.png", picture(RECEIPT)).await;
                    assert_eq!(receipt["kind"], "image", "{receipt}");
                    user.send_files(&ticket, "این هم رسید", &[&receipt["id"]], "m-5").await;
                }
                "agent-sent-files" => {
                    // The reply the console sent carries the picture and the text file, and the
                    // user reads them with their own token.
                    let m = user
                        .socket
                        .event_where("ticket.event", |f| {
                            f["event"]["author"]["kind"] == "agent" && f["event"]["attachments"].is_array()
                        })
                        .await;
                    assert_eq!(m["event"]["body"], "رسید و یادداشت را فرستادم", "{m}");
                    let files = m["event"]["attachments"].as_array().unwrap();
                    assert_eq!(files.len(), 2, "the removed file went too, or one is missing: {m}");
                    let image = files.iter().find(|a| a["kind"] == "image").expect("the picture");
                    assert_eq!(image["media_type"], "image/png", "{image}");
                    assert_eq!(
                        (image["width"].as_u64(), image["height"].as_u64()),
                        (Some(CHART.0.into()), Some(CHART.1.into())),
                        "{image}"
                    );
                    let note = files.iter().find(|a| a["kind"] == "file").expect("the text file");
                    assert_eq!(note["media_type"], "text/plain", "{note}");
                    assert_eq!(note["name"], "یادداشت پرداخت.txt", "{note}");
                    assert_eq!(note["size"], NOTE.len(), "{note}");
                    assert_eq!(user.download(&hub, &note["url"]).await, NOTE.as_bytes(), "the text file's bytes");
                    let picture =
                        image::load_from_memory(&user.download(&hub, &image["url"]).await).expect("a picture");
                    assert_eq!((picture.width(), picture.height()), CHART);
                }
                "user-leaves" => user.socket.ws.close(None).await.expect("close the user's socket"),
                "rated" => {
                    // The console resolved Ali's ticket. His socket closed with the hub's restart: his
                    // app, started again, asks what it may rate, and rates it.
                    ali.reconnect(&hub).await;
                    let r = ali.socket.request(json!({"type": "rating.pending"})).await;
                    assert_eq!(r["type"], "rating.pending.ok", "{r}");
                    let request = r["requests"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|q| q["ticket_id"] == alis.as_str())
                        .unwrap_or_else(|| panic!("no rating asked for the resolved ticket: {r}"))
                        .clone();
                    let r = ali
                        .socket
                        .request(json!({"type": "rating.submit", "ticket_id": alis,
                            "resolution_seq": request["resolution_seq"], "score": 4, "comment": RATING_COMMENT}))
                        .await;
                    assert_eq!(r["type"], "rating.submit.ok", "{r}");
                    assert_eq!(r["rating"]["agent_id"], sara_id.as_str(), "credited to the console's agent: {r}");
                }
                "reports" => {
                    // Only supervisors read reports: Reza is refused, with the documented code.
                    let now = now_ms();
                    let (status, body) =
                        hub.get(&format!("/v1/reports?from={}&to={}", now - 86_400_000, now), Some(&reza_token)).await;
                    assert_eq!(status, 403, "{body}");
                    assert_eq!(body["error"]["code"], "forbidden", "{body}");
                }
                "transferred" => {}
                "account-deleted" => neda.delete_account(&hub).await,
                "english-ticket" => {
                    user.reconnect(&hub).await;
                    english = user.open("Refund still missing", "سلام، هنوز پولم برنگشته", "open-4").await;
                }
                "claimed-en" => {
                    user.follow(&english, 2).await;
                    user.send(&english, "شماره پیگیری TX-77120 است.", "e-1").await;
                    user.send(&english, "Thanks!", "e-2").await;
                }
                "user-writes-en" => user.send(&english, "Any news?", "e-3").await,
                "colleague-mentions" => {
                    // The colleague (her socket closed with the hub's restart) names Sara in a note on
                    // the first ticket, while Sara looks at another one.
                    let colleague = nasrin.insert(hub.connect_agent(Encoding::Json, &nasrin_token).await);
                    let body = "@Sara کاربر دوباره پیام داد؛ لطفاً پیگیری کن.";
                    let r = colleague
                        .request(json!({"type": "note.add", "ticket_id": ticket, "client_msg_id": "n-1",
                            "body": body, "mentions": [sara_id]}))
                        .await;
                    assert_eq!(r["type"], "note.add.ok", "{r}");
                    assert_eq!(r["note"]["mentions"], json!([sara_id]), "{r}");
                }
                other => panic!("unknown step {other}"),
            }
            to_node.write_all(format!("OK {step}\n").as_bytes()).await.unwrap();
            to_node.flush().await.unwrap();
        }
        panic!("the browser script ended without DONE");
    };
    tokio::time::timeout(RUN_TIMEOUT, turns).await.expect("the browser run finished in time");
    let status = tokio::time::timeout(Duration::from_secs(10), node.wait()).await.expect("node exits").unwrap();
    assert!(status.success(), "the browser script failed: {status}");
    for name in ["console.png", "console-phone.png"] {
        let shot = shots.join(name);
        assert!(Path::new(&shot).exists(), "no screenshot at {}", shot.display());
        eprintln!("console screenshot: {}", shot.display());
    }
}

/// Now, in Unix ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// How many times the agent's typing reached a user, of the frames `seen`.
fn agent_typing(seen: &[serde_json::Value]) -> usize {
    seen.iter().filter(|f| f["type"] == "ticket.typing" && f["participant"]["kind"] == "agent").count()
}

/// A user of the apps: signed in, named, with one JSON socket.
struct User {
    phone: String,
    token: String,
    socket: Client,
    cursor: u64,
}

impl User {
    async fn new(hub: &TestHub, name: &str, image: Option<Vec<u8>>) -> Self {
        let phone = phone();
        let token = hub.sign_in_on(&phone, "phone-1").await["token"].as_str().unwrap().to_owned();
        let mut socket = hub.connect_as(Encoding::Json, &token).await;
        let r = socket.request(json!({"type": "profile.update", "name": name})).await;
        assert_eq!(r["type"], "profile.ok", "{r}");
        if let Some(bytes) = image {
            let resp = hub.http.put(format!("{}/v1/me/image", hub.base)).bearer_auth(&token).body(bytes).send().await;
            assert_eq!(resp.unwrap().status(), 200, "image upload");
        }
        Self { phone, token, socket, cursor: 0 }
    }

    /// What the app says about the phone it runs on.
    async fn report_device(&mut self) {
        let device = json!({"os": "android", "os_version": "14", "model": "Pixel 8", "manufacturer": "Google",
            "app_version": "3.2.1", "locale": "fa-IR"});
        let r = self.socket.request(json!({"type": "telemetry.device", "device": device})).await;
        assert_eq!(r["type"], "ok", "{r}");
    }

    async fn read(&mut self, ticket: &str, seq: u64) {
        let r = self.socket.request(json!({"type": "ticket.read", "ticket_id": ticket, "seq": seq})).await;
        assert_eq!(r["type"], "ok", "{r}");
    }

    async fn open(&mut self, subject: &str, body: &str, client_msg_id: &str) -> String {
        let r = self
            .socket
            .request(json!({"type": "ticket.open", "subject": subject, "body": body, "client_msg_id": client_msg_id}))
            .await;
        assert_eq!(r["type"], "ticket.open.ok", "{r}");
        r["ticket"]["id"].as_str().unwrap().to_owned()
    }

    /// Deletes the account in the two documented steps.
    async fn delete_account(&mut self, hub: &TestHub) {
        let url = |path: &str| format!("{}{path}", hub.base);
        let notice: serde_json::Value =
            hub.http.post(url("/v1/me/deletion")).bearer_auth(&self.token).send().await.unwrap().json().await.unwrap();
        let resp = hub
            .http
            .post(url("/v1/me/deletion/confirm"))
            .bearer_auth(&self.token)
            .json(&json!({"confirmation": notice["confirmation"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "account deletion");
    }

    async fn follow(&mut self, ticket: &str, after_seq: u64) {
        let r =
            self.socket.request(json!({"type": "ticket.subscribe", "ticket_id": ticket, "after_seq": after_seq})).await;
        assert_eq!(r["type"], "ticket.subscribe.ok", "{r}");
    }

    async fn send(&mut self, ticket: &str, body: &str, client_msg_id: &str) {
        let r = self
            .socket
            .request(json!({"type": "ticket.send", "ticket_id": ticket, "body": body, "client_msg_id": client_msg_id}))
            .await;
        assert_eq!(r["type"], "ticket.send.ok", "{r}");
        // What this user wrote is not news to them after a reconnect.
        self.cursor = self.cursor.max(r["seq"].as_u64().unwrap());
    }

    /// Uploads a file in one request; returns the stored attachment.
    async fn upload(&self, hub: &TestHub, name: &str, bytes: Vec<u8>) -> serde_json::Value {
        let resp = hub
            .http
            .post(format!("{}/v1/attachments", hub.base))
            .query(&[("name", name)])
            .bearer_auth(&self.token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "upload of {name}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["attachment"]["state"], "stored", "{body}");
        body["attachment"].clone()
    }

    /// A message carrying uploads.
    async fn send_files(&mut self, ticket: &str, body: &str, ids: &[&serde_json::Value], client_msg_id: &str) {
        let r = self
            .socket
            .request(json!({"type": "ticket.send", "ticket_id": ticket, "body": body, "attachments": ids,
                "client_msg_id": client_msg_id}))
            .await;
        assert_eq!(r["type"], "ticket.send.ok", "{r}");
        self.cursor = self.cursor.max(r["seq"].as_u64().unwrap());
    }

    /// An attachment's bytes, read with this user's token.
    async fn download(&self, hub: &TestHub, url: &serde_json::Value) -> Vec<u8> {
        let url = url.as_str().expect("an attachment url");
        let resp = hub.http.get(format!("{}{url}", hub.base)).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(resp.status(), 200, "download of {url}");
        resp.bytes().await.unwrap().to_vec()
    }

    /// Checks that nothing of a private note reached this user's socket: no `ticket.note`, and its
    /// text in no frame. A ping first, so that every frame the hub sent before it has been read.
    async fn assert_no_note(&mut self, text: &str) {
        let r = self.socket.request(json!({"type": "ping"})).await;
        assert_eq!(r["type"], "ping.ok", "{r}");
        assert!(!self.socket.seen.is_empty());
        for f in &self.socket.seen {
            assert_ne!(f["type"], "ticket.note", "a note reached the user: {f}");
            assert!(!f.to_string().contains(text), "a note's text reached the user: {f}");
        }
    }

    /// The notes of `ticket` in this user's data export (`GET /v1/me/export`).
    async fn exported_notes(&self, hub: &TestHub, ticket: &str) -> Vec<serde_json::Value> {
        let (status, export) = hub.get("/v1/me/export", Some(&self.token)).await;
        assert_eq!(status, 200, "{export}");
        let tickets = export["tickets"].as_array().expect("tickets in the export");
        let entry = tickets.iter().find(|t| t["ticket"]["id"] == ticket).expect("the ticket in the export");
        entry["notes"].as_array().expect("notes beside the events").clone()
    }

    async fn reconnect(&mut self, hub: &TestHub) {
        self.socket = hub.connect_as(Encoding::Json, &self.token).await;
    }
}

/// A picture of `(width, height)`: a gradient with a stripe, as a PNG.
fn picture((width, height): (u32, u32)) -> Vec<u8> {
    png(image::RgbImage::from_fn(width, height, |x, y| {
        if (x / 8) % 4 == 0 {
            image::Rgb([200, 40, 40])
        } else {
            image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 160])
        }
    }))
}

fn png(img: image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A small round picture for the user's profile.
fn avatar() -> Vec<u8> {
    png(image::RgbImage::from_fn(96, 96, |x, y| {
        let (dx, dy) = (x as i32 - 48, y as i32 - 48);
        if dx * dx + dy * dy < 40 * 40 {
            image::Rgb([(120 + x) as u8, 90, (160 + y / 2) as u8])
        } else {
            image::Rgb([240, 236, 228])
        }
    }))
}
