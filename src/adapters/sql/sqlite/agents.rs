//! [`Agents`] on SQLite.

use crate::adapters::sql::rows::{self, AgentRow, CannedReplyRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::agent::{Agent, AgentChange, AgentStatus, CannedReply, NewAgent};
use crate::model::ids::{AgentId, CannedReplyId};
use crate::model::time::Millis;
use crate::ports::store::agents::Agents;
use async_trait::async_trait;

#[async_trait]
impl Agents for SqliteStore {
    async fn create_agent(&self, new: &NewAgent) -> Result<Option<Agent>> {
        let row = sqlx::query_as::<_, AgentRow>(
            "INSERT INTO agents (id, email, name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (email) DO NOTHING
             RETURNING id, email, name, password_hash, created_at, disabled_at, status, capacity, supervisor",
        )
        .bind(new.id.0)
        .bind(rows::stored_email(&new.email))
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(new.created_at)
        .fetch_optional(&self.writer)
        .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        let row = sqlx::query_as::<_, AgentRow>(
            "SELECT id, email, name, password_hash, created_at, disabled_at, status, capacity, supervisor
             FROM agents WHERE id = ?1",
        )
        .bind(id.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>> {
        let row = sqlx::query_as::<_, AgentRow>(
            "SELECT id, email, name, password_hash, created_at, disabled_at, status, capacity, supervisor
             FROM agents WHERE email = ?1",
        )
        .bind(rows::stored_email(email))
        .fetch_optional(&self.readers)
        .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        let rows = sqlx::query_as::<_, AgentRow>(
            "SELECT id, email, name, password_hash, created_at, disabled_at, status, capacity, supervisor
             FROM agents ORDER BY email",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    async fn disable_agent(&self, id: AgentId, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("UPDATE agents SET disabled_at = ?2 WHERE id = ?1 AND disabled_at IS NULL")
            .bind(id.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        revoke_sessions(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_agent_status(&self, id: AgentId, status: AgentStatus, capacity: u32) -> Result<bool> {
        let done = sqlx::query("UPDATE agents SET status = ?2, capacity = ?3 WHERE id = ?1")
            .bind(id.0)
            .bind(status.as_str())
            .bind(rows::stored_count(capacity))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn change_agent(&self, id: AgentId, change: &AgentChange, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(rows::agents::CHANGE)
            .bind(id.0)
            .bind(change.name.as_deref())
            .bind(change.capacity.map(rows::stored_count))
            .bind(change.password_hash.as_deref())
            .bind(change.enable)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if change.password_hash.is_some() {
            revoke_sessions(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn set_supervisor(&self, id: AgentId, supervisor: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE agents SET supervisor = ?2 WHERE id = ?1")
            .bind(id.0)
            .bind(supervisor)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_canned_reply(&self, reply: &CannedReply) -> Result<()> {
        sqlx::query("INSERT INTO canned_replies (id, agent_id, title, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(reply.id.0)
            .bind(reply.agent_id.0)
            .bind(&reply.title)
            .bind(&reply.body)
            .bind(reply.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn canned_replies(&self, agent: AgentId) -> Result<Vec<CannedReply>> {
        let rows = sqlx::query_as::<_, CannedReplyRow>(
            "SELECT id, agent_id, title, body, created_at FROM canned_replies
             WHERE agent_id = ?1 ORDER BY created_at, id",
        )
        .bind(agent.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(CannedReply::from).collect())
    }

    async fn delete_canned_reply(&self, agent: AgentId, id: CannedReplyId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM canned_replies WHERE id = ?1 AND agent_id = ?2")
            .bind(id.0)
            .bind(agent.0)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Revokes every live session of the agent, inside the caller's transaction.
async fn revoke_sessions(tx: &mut sqlx::SqliteConnection, id: AgentId, now: Millis) -> Result<()> {
    sqlx::query(rows::agents::REVOKE_SESSIONS).bind(id.0).bind(now).execute(tx).await?;
    Ok(())
}
