//! The agent console, end to end: the hub serves `/console`, headless Chromium (driven by
//! `tests/e2e/console.mjs` through playwright-core) signs an agent in, and this test plays the
//! user over a real WebSocket. The two sides take turns over the script's stdio: it prints
//! `STEP <name>`, this test acts as the user and answers `OK <name>`.
//!
//! Needs Node, Chromium (`/usr/bin/chromium`, or `CHROMIUM_PATH`) and `npm ci` in `tests/e2e`.
//! Without them the test says so loudly and passes, unless `REQUIRE_BROWSER=1` (CI sets it).
//! `UPDATE_SCREENSHOT=1` writes the screenshot to `docs/console.png` (the README shows it).

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
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

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
async fn an_agent_answers_a_user_in_the_browser_console() {
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
    let (_, password) = running.hub.agents.add(&email, "Sara").await.unwrap();
    running.hub.agents.add(&format!("reza-{}@anapars.test", uuid::Uuid::new_v4().simple()), "Reza").await.unwrap();

    let mut user = User::new(&hub, "Maryam Karimi", Some(avatar())).await;
    let mut others = Vec::new();
    for name in ["Ali Rezaei", "Neda Ahmadi"] {
        others.push(User::new(&hub, name, None).await);
    }

    let screenshot = if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        repo().join("docs/console.png")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png")
    };
    let mut node = Command::new("node")
        .arg("console.mjs")
        .current_dir(repo().join("tests/e2e"))
        .env("HUB_URL", &hub.base)
        .env("AGENT_EMAIL", &email)
        .env("AGENT_PASSWORD", &password)
        .env("CHROMIUM_PATH", &chromium)
        .env("SCREENSHOT", &screenshot)
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
        let mut stopped = None;
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
                    ticket = user.open("Payment failed", "My card was charged twice", "open-1").await;
                    others[0].open("Wrong name on my receipt", "It says Ali Rezai", "open-2").await;
                    others[1].open("App crashes on login", "Since the last update", "open-3").await;
                }
                "claimed" => {
                    let updated =
                        user.socket.event_where("ticket.updated", |f| f["ticket"]["status"] == "assigned").await;
                    assert_eq!(updated["ticket"]["id"], ticket.as_str());
                    user.follow(&ticket, 2).await;
                }
                "user-types" => {
                    let r = user.socket.request(json!({"type": "ticket.typing", "ticket_id": ticket})).await;
                    assert_eq!(r["type"], "ok", "{r}");
                }
                "user-writes" => user.send(&ticket, "It was 12.50 EUR, on Monday", "m-1").await,
                "agent-replied" => {
                    // The console said it was typing, then sent both lines as one message.
                    let reply = user
                        .socket
                        .event_where("ticket.event", |f| {
                            f["event"]["author"]["kind"] == "agent" && f["event"]["kind"] == "message"
                        })
                        .await;
                    assert_eq!(reply["event"]["body"], "Sorry about that.\nI am refunding it now.");
                    assert!(
                        user.socket
                            .seen
                            .iter()
                            .any(|f| f["type"] == "ticket.typing" && f["participant"]["kind"] == "agent"),
                        "the console sent no typing indicator"
                    );
                    let seq = reply["event"]["seq"].as_u64().unwrap();
                    user.cursor = seq;
                    let r = user.socket.request(json!({"type": "ticket.read", "ticket_id": ticket, "seq": seq})).await;
                    assert_eq!(r["type"], "ok", "{r}");
                }
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
                    let m = user.socket.event_where("ticket.event", |f| f["event"]["kind"] == "message").await;
                    assert_eq!(m["event"]["body"], "Are you still there?");
                    let seq = m["event"]["seq"].as_u64().unwrap();
                    let r = user.socket.request(json!({"type": "ticket.read", "ticket_id": ticket, "seq": seq})).await;
                    assert_eq!(r["type"], "ok", "{r}");
                    user.send(&ticket, "Yes, still here", "m-2").await;
                    let copies = user
                        .socket
                        .seen
                        .iter()
                        .filter(|f| f["type"] == "ticket.event" && f["event"]["body"] == "Are you still there?")
                        .count();
                    assert_eq!(copies, 1, "the message written offline reached the user {copies} times");
                }
                "user-leaves" => user.socket.ws.close(None).await.expect("close the user's socket"),
                "transferred" => {}
                "account-deleted" => others[1].delete_account(&hub).await,
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
    assert!(Path::new(&screenshot).exists(), "no screenshot at {}", screenshot.display());
    eprintln!("console screenshot: {}", screenshot.display());
}

/// A user of the apps: signed in, named, with one JSON socket.
struct User {
    token: String,
    socket: Client,
    cursor: u64,
}

impl User {
    async fn new(hub: &TestHub, name: &str, image: Option<Vec<u8>>) -> Self {
        let token = hub.sign_in_on(&phone(), "phone-1").await["token"].as_str().unwrap().to_owned();
        let mut socket = hub.connect_as(Encoding::Json, &token).await;
        let r = socket.request(json!({"type": "profile.update", "name": name})).await;
        assert_eq!(r["type"], "profile.ok", "{r}");
        if let Some(bytes) = image {
            let resp = hub.http.put(format!("{}/v1/me/image", hub.base)).bearer_auth(&token).body(bytes).send().await;
            assert_eq!(resp.unwrap().status(), 200, "image upload");
        }
        Self { token, socket, cursor: 0 }
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
    }

    async fn reconnect(&mut self, hub: &TestHub) {
        self.socket = hub.connect_as(Encoding::Json, &self.token).await;
    }
}

/// A small round picture for the user's profile.
fn avatar() -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 96, |x, y| {
        let (dx, dy) = (x as i32 - 48, y as i32 - 48);
        if dx * dx + dy * dy < 40 * 40 {
            image::Rgb([(120 + x) as u8, 90, (160 + y / 2) as u8])
        } else {
            image::Rgb([240, 236, 228])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
