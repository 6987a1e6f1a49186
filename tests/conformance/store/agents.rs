//! Checks of [`Agents`](anapars_hub::ports::store::agents::Agents): accounts, status, canned replies,
//! and agents' sessions in [`Sessions`](anapars_hub::ports::store::Sessions).

use super::{agent, new_agent, new_agent_session, race, token, HOUR, MINUTE, RACERS};
use anapars_hub::error::{Error, Result};
use anapars_hub::model::account::{NewSession, Session, TokenHash};
use anapars_hub::model::agent::{Agent, AgentStatus, CannedReply, NewAgent};
use anapars_hub::model::ids::{AgentId, CannedReplyId, SessionId};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::Store;
use std::sync::Arc;
use uuid::Uuid;

/// Creates an agent session and returns it with the hash of its token.
async fn session(
    store: &dyn Store,
    agent: AgentId,
    created_at: Millis,
    expires_at: Millis,
) -> Result<(Session, TokenHash)> {
    let new = new_agent_session(agent, created_at, expires_at);
    Ok((store.create_session(&new).await?, new.token_hash))
}

/// An email is stored lowercase and found in any case; a second agent with the same email in other
/// letters is refused. A new agent is enabled, away, with a capacity of 5. Agents list by email.
pub async fn create_agent_refuses_a_taken_email_in_any_case(store: Arc<dyn Store>) -> Result<()> {
    let local = Uuid::new_v4().simple();
    let new = NewAgent { email: format!("Sam.{local}@Example.TEST"), ..new_agent() };
    let expected = Agent {
        id: new.id,
        email: format!("sam.{local}@example.test"),
        name: new.name.clone(),
        password_hash: new.password_hash.clone(),
        created_at: new.created_at,
        disabled_at: None,
        status: AgentStatus::Away,
        capacity: 5,
        supervisor: false,
    };
    assert_eq!(store.create_agent(&new).await?, Some(expected.clone()));
    assert!(store.set_supervisor(new.id, true).await?);
    assert!(store.agent(new.id).await?.expect("agent").supervisor, "made a supervisor");
    assert!(store.set_supervisor(new.id, false).await?);
    assert!(!store.set_supervisor(AgentId::generate(), true).await?, "no such agent");
    assert_eq!(store.agent(new.id).await?, Some(expected.clone()));
    assert_eq!(store.agent_by_email(&format!("SAM.{local}@example.test")).await?, Some(expected.clone()));

    let twin = NewAgent { email: format!("sam.{local}@EXAMPLE.test"), ..new_agent() };
    assert_eq!(store.create_agent(&twin).await?, None, "the same email in other letters must be refused");
    assert_eq!(store.agent(twin.id).await?, None);
    assert_eq!(store.agent_by_email(&format!("nobody.{local}@example.test")).await?, None);
    assert_eq!(store.agent(AgentId::generate()).await?, None);

    let earlier = NewAgent { email: format!("alex.{local}@example.test"), ..new_agent() };
    let earlier = store.create_agent(&earlier).await?;
    let listed: Vec<Agent> =
        store.agents().await?.into_iter().filter(|a| a.email.contains(&local.to_string())).collect();
    assert_eq!(Some(listed), earlier.map(|first| vec![first, expected]));
    Ok(())
}

/// Concurrent creations of one email, in different letters, create exactly one agent.
pub async fn create_agent_races_have_one_winner(store: Arc<dyn Store>) -> Result<()> {
    let local = Uuid::new_v4().simple();
    let created = race(|i| {
        let store = Arc::clone(&store);
        // Every other racer shouts.
        let email =
            if i % 2 == 0 { format!("racer.{local}@example.test") } else { format!("RACER.{local}@example.test") };
        async move { store.create_agent(&NewAgent { email, ..new_agent() }).await }
    })
    .await?;
    let winners: Vec<Agent> = created.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one racer may create the agent");
    assert_eq!(store.agent_by_email(&format!("racer.{local}@example.test")).await?.as_ref(), winners.first());
    Ok(())
}

/// Status and capacity change together; false for an agent that does not exist.
pub async fn set_agent_status_changes_status_and_capacity(store: Arc<dyn Store>) -> Result<()> {
    let (mine, other) = (agent(&*store).await?, agent(&*store).await?);
    assert!(store.set_agent_status(mine.id, AgentStatus::Available, 12).await?);
    let expected = Agent { status: AgentStatus::Available, capacity: 12, ..mine.clone() };
    assert_eq!(store.agent(mine.id).await?, Some(expected));
    assert!(store.set_agent_status(mine.id, AgentStatus::Busy, 0).await?);
    assert_eq!(store.agent(mine.id).await?.map(|a| (a.status, a.capacity)), Some((AgentStatus::Busy, 0)));
    assert_eq!(store.agent(other.id).await?, Some(other), "another agent was changed");
    assert!(!store.set_agent_status(AgentId::generate(), AgentStatus::Away, 1).await?);
    Ok(())
}

/// Disabling revokes every live session of the agent in the same step, leaves ended sessions and
/// other agents' sessions alone, succeeds once, and keeps the agent from getting a new session.
pub async fn disable_agent_revokes_every_live_session(store: Arc<dyn Store>) -> Result<()> {
    let (mine, other) = (agent(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let (first, _) = session(&*store, mine.id, now, now + HOUR).await?;
    let (second, _) = session(&*store, mine.id, now, now + 2 * HOUR).await?;
    let (revoked, _) = session(&*store, mine.id, now, now + HOUR).await?;
    assert!(store.revoke_session(revoked.id, now + 1).await?);
    let (expired, _) = session(&*store, mine.id, now - HOUR, now).await?;
    let (theirs, _) = session(&*store, other.id, now, now + HOUR).await?;

    assert!(store.disable_agent(mine.id, now + 5).await?);
    assert_eq!(store.agent(mine.id).await?.and_then(|a| a.disabled_at), Some(now + 5));
    for live in [&first, &second] {
        let after = store.session(live.id).await?;
        assert_eq!(after, Some(Session { revoked_at: Some(now + 5), ..live.clone() }));
    }
    assert_eq!(store.session(revoked.id).await?.and_then(|s| s.revoked_at), Some(now + 1));
    assert_eq!(store.session(expired.id).await?, Some(expired), "an ended session was touched");
    assert_eq!(store.session(theirs.id).await?, Some(theirs), "another agent's session was revoked");
    assert_eq!(store.agent(other.id).await?, Some(other));

    assert!(!store.disable_agent(mine.id, now + 6).await?, "a second disabling must report false");
    assert_eq!(store.agent(mine.id).await?.and_then(|a| a.disabled_at), Some(now + 5));
    assert!(!store.disable_agent(AgentId::generate(), now).await?);

    let late = new_agent_session(mine.id, now + 7, now + HOUR);
    assert!(matches!(store.create_session(&late).await, Err(Error::Forbidden)), "a disabled agent got a session");
    assert_eq!(store.session(late.id).await?, None);
    let orphan = new_agent_session(AgentId::generate(), now, now + HOUR);
    assert!(matches!(store.create_session(&orphan).await, Err(Error::Forbidden)), "a missing agent got a session");
    Ok(())
}

/// Sign-ins racing the disabling of their agent: every session that was stored ends up revoked.
pub async fn disable_agent_races_with_new_sessions_leave_none_live(store: Arc<dyn Store>) -> Result<()> {
    let mine = agent(&*store).await?;
    let now = now_ms();
    let sessions: Vec<NewSession> = (0..RACERS).map(|_| new_agent_session(mine.id, now, now + HOUR)).collect();
    let outcomes = race(|i| {
        let (store, new) = (Arc::clone(&store), sessions[i].clone());
        async move {
            if i == RACERS / 2 {
                assert!(store.disable_agent(mine.id, now + 1).await?);
                return Ok(true);
            }
            // Refused once the agent is disabled: not an error of the check.
            Ok(store.create_session(&new).await.is_ok())
        }
    })
    .await?;
    for (i, new) in sessions.iter().enumerate().filter(|(i, _)| *i != RACERS / 2) {
        match store.session(new.id).await? {
            Some(stored) => {
                assert!(outcomes[i], "a session was stored but its creation reported an error");
                assert!(!stored.is_live(now + 2), "a session of the disabled agent is live: {stored:?}");
            }
            None => assert!(!outcomes[i], "a session reported as created is missing"),
        }
    }
    Ok(())
}

/// Agent sessions come back by id and by token; rotating a live one replaces its token; only live
/// sessions rotate; revoking works once.
pub async fn agent_sessions_rotate_and_revoke(store: Arc<dyn Store>) -> Result<()> {
    let mine = agent(&*store).await?;
    let now = now_ms();
    let (live, old_hash) = session(&*store, mine.id, now, now + HOUR).await?;
    assert_eq!(store.session_by_token(&old_hash).await?, Some(live.clone()));
    assert_eq!(store.session(live.id).await?, Some(live.clone()));
    assert_eq!(store.session_by_token(&token()).await?, None);
    let same_token = NewSession { token_hash: old_hash, ..new_agent_session(mine.id, now, now + HOUR) };
    assert!(store.create_session(&same_token).await.is_err(), "a second session with the same token hash was stored");

    let new_hash = token();
    assert!(store.rotate_session(live.id, &new_hash, now + 2 * HOUR, now + 1).await?);
    let rotated = Session { expires_at: now + 2 * HOUR, ..live.clone() };
    assert_eq!(store.session_by_token(&old_hash).await?, None, "the old token must stop working");
    assert_eq!(store.session_by_token(&new_hash).await?, Some(rotated.clone()));

    let (expired, _) = session(&*store, mine.id, now - HOUR, now).await?;
    let attempt = token();
    assert!(!store.rotate_session(expired.id, &attempt, now + HOUR, now).await?);
    assert_eq!(store.session_by_token(&attempt).await?, None);

    assert!(store.revoke_session(live.id, now + 2).await?);
    assert!(!store.revoke_session(live.id, now + 3).await?, "a second revocation must report false");
    assert_eq!(store.session(live.id).await?, Some(Session { revoked_at: Some(now + 2), ..rotated }));
    assert!(!store.rotate_session(live.id, &token(), now + 3 * HOUR, now + 4).await?);
    assert!(!store.revoke_session(SessionId::generate(), now).await?);
    Ok(())
}

/// Canned replies list oldest first, per agent; only their owner can delete one.
pub async fn canned_replies_belong_to_their_agent(store: Arc<dyn Store>) -> Result<()> {
    let (mine, other) = (agent(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let reply = |agent: AgentId, title: &str, at: Millis| CannedReply {
        id: CannedReplyId::generate(),
        agent_id: agent,
        title: title.into(),
        body: format!("{title}: سلام، ممنون از صبر شما"),
        created_at: at,
    };
    let (later, earlier) = (reply(mine.id, "Refunds", now + MINUTE), reply(mine.id, "Greeting", now));
    let theirs = reply(other.id, "Theirs", now);
    for r in [&later, &earlier, &theirs] {
        store.add_canned_reply(r).await?;
    }
    assert_eq!(store.canned_replies(mine.id).await?, vec![earlier.clone(), later.clone()]);
    assert_eq!(store.canned_replies(other.id).await?, vec![theirs.clone()]);

    assert!(!store.delete_canned_reply(other.id, earlier.id).await?, "an agent deleted another agent's reply");
    assert_eq!(store.canned_replies(mine.id).await?, vec![earlier.clone(), later.clone()]);
    assert!(store.delete_canned_reply(mine.id, earlier.id).await?);
    assert!(!store.delete_canned_reply(mine.id, earlier.id).await?, "a reply was deleted twice");
    assert_eq!(store.canned_replies(mine.id).await?, vec![later]);
    assert_eq!(store.canned_replies(other.id).await?, vec![theirs]);
    assert_eq!(store.canned_replies(AgentId::generate()).await?, vec![]);
    Ok(())
}
