//! Rows of `agents` and `canned_replies`.

use crate::adapters::sql::rows::{count, internal};
use crate::error::Result;
use crate::model::agent::{Agent, AgentStatus, CannedReply};
use crate::model::ids::{AgentId, CannedReplyId};
use crate::model::time::Millis;
use uuid::Uuid;

/// An operator's change to agent `?1`: name `?2`, capacity `?3`, password hash `?4` (each kept
/// when null), enabled again when `?5` (both backends; Postgres spells the placeholders `$N`).
pub(in crate::adapters::sql) const CHANGE: &str = "UPDATE agents SET name = COALESCE(?2, name), \
     capacity = COALESCE(?3, capacity), password_hash = COALESCE(?4, password_hash), \
     disabled_at = CASE WHEN ?5 THEN NULL ELSE disabled_at END WHERE id = ?1";

/// Revokes every live session of agent `?1` at `?2`.
pub(in crate::adapters::sql) const REVOKE_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = ?2 WHERE agent_id = ?1 AND revoked_at IS NULL AND expires_at > ?2";

/// `agents`: `id, email, name, password_hash, created_at, disabled_at, status, capacity, supervisor`.
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
    supervisor: bool,
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
            supervisor: row.supervisor,
        })
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
