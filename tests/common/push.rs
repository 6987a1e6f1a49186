//! The push tests' scene: a user whose app is closed, with a ticket an agent holds on a live
//! socket, so that the agent's replies are pushed to the user's registration.

use super::hub::{phone, Client, TestHub};
use anapars_hub::model::ids::{Principal, UserId};
use anapars_hub::protocol::Encoding;
use anapars_hub::Config;
use serde_json::json;
use std::time::{Duration, Instant};

/// The settings every push test shares: a short collapse window, and a presence grace short
/// enough that a closed app counts as closed at once.
pub fn quick(c: &mut Config) {
    c.push_collapse_ms = 400;
    c.presence_grace_ms = 50;
}

/// A user with a ticket and no open app, and an agent holding that ticket on a live socket.
pub struct Scene {
    pub user_token: String,
    pub phone: String,
    pub ticket: String,
    pub agent: Client,
}

/// A new user (the app closed after opening a ticket) and a new agent "Sara" who claimed it.
pub async fn scene(hub: &TestHub) -> Scene {
    let phone = phone();
    let user_token = hub.token(&phone).await;
    let mut app = hub.connect_as(Encoding::Json, &user_token).await;
    let opened = app
        .request(
            json!({"type": "ticket.open", "subject": "کارت دو بار شارژ شد", "body": "سلام", "client_msg_id": "o-1"}),
        )
        .await;
    let ticket = opened["ticket"]["id"].as_str().unwrap().to_owned();
    drop(app);
    let (agent_token, _) = hub.agent("Sara").await;
    let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;
    let claimed = agent.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await;
    assert_eq!(claimed["type"], "ticket.update.ok", "{claimed}");
    // The user's app has been closed for longer than the presence grace period.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Scene { user_token, phone, ticket, agent }
}

/// The agent's reply in the ticket, stored.
pub async fn reply(agent: &mut Client, ticket: &str, body: &str, cmid: &str) {
    let sent =
        agent.request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": body})).await;
    assert_eq!(sent["type"], "ticket.send.ok", "{sent}");
}

/// The user a token signs in.
pub async fn user_of(hub: &TestHub, token: &str) -> Principal {
    let (_, me) = hub.get("/v1/me", Some(token)).await;
    Principal::User(UserId(me["user_id"].as_str().unwrap().parse().unwrap()))
}

/// Whether `who` has any push registration left.
pub async fn registered(hub: &TestHub, who: Principal) -> bool {
    let services = &hub.running.as_ref().unwrap().hub;
    !services.store.push_registrations(&[who], anapars_hub::model::time::now_ms()).await.unwrap().is_empty()
}

/// Waits until `received` gives `n` items (then a little longer, to catch more) and returns what
/// it gives then.
pub async fn arrivals<T>(n: usize, received: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while received().len() < n {
        assert!(Instant::now() < deadline, "{} of {n} pushes arrived", received().len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    received()
}
