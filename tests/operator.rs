//! The operator's `agent` commands, run as the binary against each test database while a hub
//! serves it: what an operator does to a support team's accounts takes effect at sign-in and on
//! the agent's open sockets.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, TestHub};
use serde_json::json;

/// Runs `anapars-hub <args>` on the hub's database: success, and what it printed. The test's own
/// runtime goes on meanwhile: the hub it runs may hold SQLite's write lock across an `await` (a
/// transaction half done), and the command would wait on that lock for as long as the test waited on
/// the command.
async fn cli(hub: &TestHub, args: &[&str]) -> (bool, String) {
    cli_with(hub, &[], args).await
}

/// The command, with the hub's database settings and `env`.
fn command(hub: &TestHub, env: &[(&str, &str)], args: &[&str]) -> std::process::Command {
    let config = &hub.database().config;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_anapars-hub"));
    cmd.env_clear().env("RUST_LOG", "warn").env("HUB_SQLITE_PATH", &config.sqlite_path).envs(env.iter().copied());
    if let Some(url) = &config.database_url {
        cmd.env("DATABASE_URL", &url.0);
    }
    if let Some(keys) = &config.data_keys {
        cmd.env("HUB_DATA_KEYS", &keys.0);
    }
    cmd.args(args);
    cmd
}

fn printed(out: &std::process::Output) -> (bool, String) {
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// [`cli`] with more environment.
async fn cli_with(hub: &TestHub, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut cmd = tokio::process::Command::from(command(hub, env, args));
    printed(&cmd.output().await.expect("the binary runs"))
}

/// The password a command printed once.
fn password(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once, store it now): "))
        .unwrap_or_else(|| panic!("no password in {printed}"))
        .trim()
        .to_owned()
}

async fn login(hub: &TestHub, email: &str, password: &str) -> (u16, serde_json::Value) {
    hub.post("/v1/agent/login", json!({"email": email, "password": password})).await
}

#[tokio::test]
async fn the_agent_commands_change_sign_in_and_close_sockets() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let (ok, out) = cli(&hub, &["agent", "add", "--email", "sara@anapars.ir", "--name", "Sara"]).await;
        assert!(ok, "{label} {out}");
        let first = password(&out);
        let (status, signed_in) = login(&hub, "sara@anapars.ir", &first).await;
        assert_eq!(status, 200, "{label} {signed_in}");
        let old_token = signed_in["token"].as_str().unwrap().to_owned();

        // Name (in Persian) and capacity; the email in any case.
        let (ok, out) =
            cli(&hub, &["agent", "set", "--email", "SARA@anapars.ir", "--name", " سارا کریمی ", "--capacity", "7"])
                .await;
        assert!(ok, "{label} {out}");
        let (_, again) = login(&hub, "sara@anapars.ir", &first).await;
        assert_eq!(
            (again["agent"]["name"].as_str(), again["agent"]["capacity"].as_u64()),
            (Some("سارا کریمی"), Some(7)),
            "{label}"
        );
        for (args, refusal) in [
            (vec!["--capacity", "0"], "capacity must be 1 to 100"),
            (vec!["--capacity", "101"], "capacity must be 1 to 100"),
            (vec!["--name", "  "], "name must be 1 to 64 characters"),
            (vec![], "nothing to change"),
        ] {
            let (ok, out) = cli(&hub, &[&["agent", "set", "--email", "sara@anapars.ir"][..], &args].concat()).await;
            assert!(!ok && out.contains(refusal), "{label} {args:?}: {out}");
        }

        // A new password: the old one and every session of the old one stop working, and the
        // agent's open socket is told within the watch interval.
        let mut socket = hub.connect_agent(Encoding::Json, &old_token).await;
        let (ok, out) = cli(&hub, &["agent", "reset-password", "--email", "sara@anapars.ir"]).await;
        assert!(ok, "{label} {out}");
        let second = password(&out);
        assert_ne!(first, second);
        assert_eq!(login(&hub, "sara@anapars.ir", &first).await.0, 401, "{label}: the old password");
        assert_eq!(login(&hub, "sara@anapars.ir", &second).await.0, 200, "{label}: the new password");
        let closed = tokio::time::timeout(std::time::Duration::from_secs(15), async {
            loop {
                if let Some(code) = socket.closed().await {
                    return code;
                }
            }
        })
        .await
        .expect("the socket closes within 15 s");
        assert_eq!(closed, 4003, "{label}");
        assert!(
            socket.seen.iter().any(|f| f["type"] == "session.revoked" && f["reason"] == "signed_out"),
            "{label} {:?}",
            socket.seen
        );
        let mut fresh = hub.connect(Encoding::Json).await;
        let refused = fresh.request(json!({"type": "auth", "token": old_token})).await;
        assert_eq!(refused["code"], "unauthorized", "{label}: a session of the old password: {refused}");

        // Disabled, then enabled again.
        let (ok, out) = cli(&hub, &["agent", "disable", "--email", "sara@anapars.ir"]).await;
        assert!(ok, "{label} {out}");
        assert_eq!(login(&hub, "sara@anapars.ir", &second).await.0, 401, "{label}: disabled");
        let (ok, out) = cli(&hub, &["agent", "list"]).await;
        assert!(ok && out.lines().any(|l| l.contains("sara@anapars.ir") && l.ends_with("disabled")), "{label} {out}");
        let (ok, out) = cli(&hub, &["agent", "enable", "--email", "sara@anapars.ir"]).await;
        assert!(ok, "{label} {out}");
        assert_eq!(login(&hub, "sara@anapars.ir", &second).await.0, 200, "{label}: enabled again");
        let (ok, out) = cli(&hub, &["agent", "list"]).await;
        assert!(ok && out.lines().any(|l| l.contains("سارا کریمی") && l.ends_with("enabled")), "{label} {out}");

        // The supervisor role, given and taken back.
        let (ok, out) = cli(&hub, &["agent", "supervisor", "--email", "sara@anapars.ir"]).await;
        assert!(ok && out.contains("is now a supervisor"), "{label} {out}");
        let (ok, out) = cli(&hub, &["agent", "supervisor", "--email", "sara@anapars.ir", "--off"]).await;
        assert!(ok && out.contains("is no longer a supervisor"), "{label} {out}");

        for command in ["enable", "reset-password", "disable"] {
            let (ok, out) = cli(&hub, &["agent", command, "--email", "nobody@anapars.ir"]).await;
            assert!(!ok && out.contains("agent not found"), "{label} {command}: {out}");
        }

        // Each action is in the audit log, as the operator's, with the agent's id and no name,
        // email or password; a supervisor reads it, a plain agent may not.
        let sara = again["agent"]["id"].as_str().unwrap().to_owned();
        let (lead, _) = hub.supervisor("Lead").await;
        let url = format!("/v1/audit?from=0&to={}", i64::MAX);
        let (status, page) = hub.get(&url, Some(&lead)).await;
        assert_eq!(status, 200, "{label} {page}");
        let about_sara: Vec<&serde_json::Value> =
            page["entries"].as_array().unwrap().iter().filter(|e| e["object_id"] == sara.as_str()).collect();
        let actions: Vec<&str> = about_sara.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(
            actions,
            [
                "agent.added",
                "agent.changed",
                "agent.password_reset",
                "agent.disabled",
                "agent.enabled",
                "agent.supervisor",
                "agent.supervisor"
            ],
            "{label}"
        );
        assert!(
            about_sara.iter().all(|e| e["actor"] == "operator" && e["actor_id"].is_null()),
            "{label} {about_sara:?}"
        );
        assert_eq!(about_sara[1]["detail"], json!({"capacity": 7, "name_changed": true}), "{label}");
        assert_eq!(
            (&about_sara[5]["detail"], &about_sara[6]["detail"]),
            (&json!({"supervisor": true}), &json!({"supervisor": false})),
            "{label}"
        );
        let text = page.to_string();
        for secret in ["sara@", "سارا", "Sara", &first, &second] {
            assert!(!text.contains(secret), "{label}: the audit log holds {secret:?}: {text}");
        }
        let sara_token = login(&hub, "sara@anapars.ir", &second).await.1["token"].as_str().unwrap().to_owned();
        assert_eq!(hub.get(&url, Some(&sara_token)).await.0, 403, "{label}: not a supervisor");
        let (status, csv) = {
            let r =
                hub.http.get(format!("{}{url}&format=csv&limit=2", hub.base)).bearer_auth(&lead).send().await.unwrap();
            let next = r.headers().get("audit-next").map(|v| v.to_str().unwrap().to_owned());
            assert!(next.is_some(), "{label}: a full page names the next");
            (r.status().as_u16(), r.text().await.unwrap())
        };
        assert_eq!(status, 200, "{label}");
        assert!(
            csv.starts_with("id,at,actor,actor_id,action,object,object_id,detail\n") && csv.lines().count() == 3,
            "{label} {csv}"
        );
    }
}

/// A user's rights exercised by an operator for them (`anapars-hub user`), through the running
/// hub's admin routes: the account found from the number as typed (never printed), exported to a
/// file, then deleted in two steps; each written to the audit log as the operator's.
#[tokio::test]
async fn an_operator_finds_exports_and_deletes_an_account_on_request() {
    const ADMIN: &str = "admin-token-for-the-test-0123456789";
    for hub in hubs(|c| c.admin_token = Some(anapars_hub::config::Secret(ADMIN.into()))).await {
        let label = hub.label();
        let number = common::hub::phone();
        let token = hub.token(&number).await;
        let mut user = hub.connect_as(Encoding::Json, &token).await;
        let opened = user
            .request(json!({"type": "ticket.open", "subject": "حذف حساب", "body": "لطفاً حسابم را حذف کنید", "client_msg_id": "m-1"}))
            .await;
        assert_eq!(opened["type"], "ticket.open.ok", "{label} {opened}");
        let user_id = opened["ticket"]["user_id"].as_str().unwrap().to_owned();
        let env = [("HUB_ADMIN_TOKEN", ADMIN)];
        let base = hub.base.clone();

        // The number as the person wrote it in their email: Persian digits, a leading 0, spaces.
        let local: Vec<char> = number
            .trim_start_matches("+98")
            .chars()
            .map(|c| char::from_u32(c as u32 - '0' as u32 + 0x06F0).unwrap())
            .collect();
        let part = |r: std::ops::Range<usize>| local[r].iter().collect::<String>();
        let typed = format!("۰{} {} {}", part(0..3), part(3..6), part(6..local.len()));
        let local: String = local.iter().collect();
        let (ok, out) = cli_with(&hub, &env, &["user", "--hub", &base, "find", "--phone", &typed]).await;
        assert!(ok && out.contains(&user_id) && out.contains("1 tickets"), "{label} {out}");
        assert!(!out.contains(&number[3..]) && !out.contains(&local), "{label}: the number is printed: {out}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.json");
        let file_arg = file.display().to_string();
        let (ok, out) =
            cli_with(&hub, &env, &["user", "--hub", &base, "export", "--user", &user_id, "--out", &file_arg]).await;
        assert!(ok, "{label} {out}");
        let export: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            (export["account"]["user_id"].as_str(), &export["complete"]),
            (Some(user_id.as_str()), &json!(true)),
            "{label}"
        );
        let (ok, out) =
            cli_with(&hub, &env, &["user", "--hub", &base, "export", "--user", &user_id, "--out", &file_arg]).await;
        assert!(!ok && out.contains("exists"), "{label}: an existing file is kept: {out}");

        let (ok, notice) = cli_with(&hub, &env, &["user", "--hub", &base, "delete", "--user", &user_id]).await;
        assert!(ok && notice.contains("deletes 1 tickets"), "{label} {notice}");
        assert_eq!(hub.get("/v1/me", Some(&token)).await.0, 200, "{label}: the first step deletes nothing");
        let confirmation = notice.split("--confirm ").nth(1).unwrap().trim().to_owned();
        let (ok, out) =
            cli_with(&hub, &env, &["user", "--hub", &base, "delete", "--user", &user_id, "--confirm", "wrong"]).await;
        assert!(!ok, "{label}: a wrong confirmation: {out}");
        let (ok, out) =
            cli_with(&hub, &env, &["user", "--hub", &base, "delete", "--user", &user_id, "--confirm", &confirmation])
                .await;
        assert!(ok && out.contains("deleted"), "{label} {out}");
        assert_eq!(user.closed().await, Some(4003), "{label}: the user's socket ends with the account");
        assert_eq!(hub.get("/v1/me", Some(&token)).await.0, 401, "{label}");
        let (ok, out) = cli_with(&hub, &env, &["user", "--hub", &base, "find", "--phone", &number]).await;
        assert!(!ok && out.contains("not_found"), "{label} {out}");

        let (lead, _) = hub.supervisor("Lead").await;
        let (_, page) = hub.get(&format!("/v1/audit?from=0&to={}", i64::MAX), Some(&lead)).await;
        let by_operator: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == "operator" && e["object"] == "account")
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(by_operator, ["account.deleted"], "{label}: the export's entry went with the account");

        let (ok, out) = cli(&hub, &["user", "--hub", &base, "find", "--phone", &number]).await;
        assert!(!ok && out.contains("admin_token"), "{label}: without the admin token: {out}");
    }
}
