//! Rows of `agents`, `agent_sessions` and `canned_replies`.

use crate::adapters::sql::rows::{count, internal};
use crate::error::Result;
use crate::model::agent::{Agent, AgentSession, AgentStatus, CannedReply};
use crate::model::ids::{AgentId, CannedReplyId, SessionId};
use crate::model::time::Millis;
use uuid::Uuid;

/// `agents`: `id, email, name, password_hash, created_at, disabled_at, status, capacity`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct AgentRow {
    id: Uuid,
    email: String,
    name: String,
    password_hash: String,
    created_at: Millis,
    disabled_at: Option<Millis>,
    status: String,
    capacity: i32,
}

impl TryFrom<AgentRow> for Agent {
    type Error = crate::error::Error;

    fn try_from(row: AgentRow) -> Result<Self> {
        Ok(Self {
            id: AgentId(row.id),
            email: row.email,
            name: row.name,
            password_hash: row.password_hash,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
            status: AgentStatus::parse(&row.status).ok_or_else(|| internal("agents.status", &row.status))?,
            capacity: count(row.capacity, "agents.capacity")?,
        })
    }
}

/// `agent_sessions`: `id, agent_id, created_at, expires_at, revoked_at` (never the token hash).
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct AgentSessionRow {
    id: Uuid,
    agent_id: Uuid,
    created_at: Millis,
    expires_at: Millis,
    revoked_at: Option<Millis>,
}

impl From<AgentSessionRow> for AgentSession {
    fn from(row: AgentSessionRow) -> Self {
        Self {
            id: SessionId(row.id),
            agent_id: AgentId(row.agent_id),
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// `canned_replies`: `id, agent_id, title, body, created_at`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct CannedReplyRow {
    id: Uuid,
    agent_id: Uuid,
    title: String,
    body: String,
    created_at: Millis,
}

impl From<CannedReplyRow> for CannedReply {
    fn from(row: CannedReplyRow) -> Self {
        Self {
            id: CannedReplyId(row.id),
            agent_id: AgentId(row.agent_id),
            title: row.title,
            body: row.body,
            created_at: row.created_at,
        }
    }
}

/// An email as the `agents.email` column stores and compares it.
pub(in crate::adapters::sql) fn stored_email(email: &str) -> String {
    email.to_lowercase()
}
