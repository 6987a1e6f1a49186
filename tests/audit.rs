//! The audit log of support work and users' rights: claims, transfers and resolutions (by agents,
//! by auto-assignment), exports and deletions are recorded with ids only; a user's export holds the
//! entries about them, and deleting the account deletes them, leaving one entry that names nobody.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone};
use serde_json::{json, Value};

#[tokio::test]
async fn support_work_and_users_rights_are_audited_without_personal_content() {
    for hub in hubs(|c| c.auto_assign = true).await {
        let label = hub.label();
        let number = phone();
        let token = hub.token(&number).await;
        let mut user = hub.connect_as(Encoding::Json, &token).await;
        let user_id = user.request(json!({"type": "auth", "token": token})).await;
        let body = "کارت بانکی‌ام دو بار شارژ شد";
        let opened = user
            .request(json!({"type": "ticket.open", "subject": "پرداخت تکراری", "body": body, "client_msg_id": "m-1"}))
            .await;
        let ticket = opened["ticket"]["id"].as_str().expect("a ticket").to_owned();
        let me = opened["ticket"]["user_id"].as_str().unwrap().to_owned();
        drop(user_id);

        // Auto-assignment gives the ticket to the one available agent; she hands it on; he resolves.
        let (sara_token, sara) = hub.agent("Sara").await;
        let (reza_token, reza) = hub.agent("Reza").await;
        let mut sara_socket = hub.connect_agent(Encoding::Json, &sara_token).await;
        sara_socket.request(json!({"type": "agent.status", "status": "available"})).await;
        let held = loop {
            let frame = sara_socket.recv().await;
            if frame["type"] == "ticket.updated" && frame["ticket"]["agent_id"] == sara.as_str() {
                break frame;
            }
        };
        assert_eq!(held["ticket"]["id"], ticket.as_str(), "{label}");
        let moved =
            sara_socket.request(json!({"type": "ticket.transfer", "ticket_id": ticket, "agent_id": reza})).await;
        assert_eq!(moved["type"], "ticket.update.ok", "{label} {moved}");
        let mut reza_socket = hub.connect_agent(Encoding::Json, &reza_token).await;
        let resolved = reza_socket.request(json!({"type": "ticket.resolve", "ticket_id": ticket})).await;
        assert_eq!(resolved["type"], "ticket.update.ok", "{label} {resolved}");

        let (lead, _) = hub.supervisor("Lead").await;
        let url = format!("/v1/audit?from=0&to={}", i64::MAX);
        let (_, page) = hub.get(&url, Some(&lead)).await;
        let on_ticket: Vec<&Value> =
            page["entries"].as_array().unwrap().iter().filter(|e| e["object_id"] == ticket.as_str()).collect();
        let seen: Vec<(&str, &str, &Value)> = on_ticket
            .iter()
            .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap(), &e["actor_id"]))
            .collect();
        assert_eq!(
            seen,
            [
                ("ticket.claimed", "system", &Value::Null),
                ("ticket.transferred", "agent", &json!(sara)),
                ("ticket.resolved", "agent", &json!(reza)),
            ],
            "{label}"
        );
        assert_eq!(on_ticket[1]["detail"], json!({"agent_id": reza}), "{label}");

        // The user's export holds what concerns them, and the export itself.
        let export = hub.http.get(format!("{}/v1/me/export", hub.base)).bearer_auth(&token).send().await.unwrap();
        let export: Value = export.json().await.unwrap();
        let actions: Vec<&str> =
            export["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["ticket.claimed", "ticket.transferred", "ticket.resolved", "account.exported"], "{label}");
        let (_, page) = hub.get(&url, Some(&lead)).await;
        let text = page.to_string();
        let digits = number.trim_start_matches('+');
        for personal in [body, "پرداخت تکراری", &digits[digits.len() - 7..], "Sara", "Reza"] {
            assert!(!text.contains(personal), "{label}: the audit log holds {personal:?}");
        }

        // Deleting the account deletes every entry about it and records the deletion anonymously.
        assert_eq!(common::delete_account(&hub.http, &hub.base, &token).await, 200, "{label}");
        let (_, page) = hub.get(&url, Some(&lead)).await;
        let entries = page["entries"].as_array().unwrap();
        assert!(!page.to_string().contains(&me) && !page.to_string().contains(&ticket), "{label}: {page}");
        let deleted: Vec<&Value> = entries.iter().filter(|e| e["action"] == "account.deleted").collect();
        assert_eq!(deleted.len(), 1, "{label}");
        assert_eq!(
            (deleted[0]["actor"].as_str(), &deleted[0]["object_id"], &deleted[0]["detail"]),
            (Some("user"), &Value::Null, &json!({"tickets": 1})),
            "{label}"
        );
    }
}
