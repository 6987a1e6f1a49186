//! [`Accounts`] and [`Sessions`] on SQLite: users (one per phone number), their devices, and the
//! sessions of users and agents.

use crate::adapters::sql::rows::sealed;
use crate::adapters::sql::rows::users::{self, UserRow};
use crate::adapters::sql::rows::{self, DeviceRow, SessionRow, SESSION_COLUMNS};
use crate::adapters::sql::sqlite::in_list;
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::{Error, Result};
use crate::model::account::{Device, NewSession, Session, TokenHash, User};
use crate::model::ids::{DeviceId, SessionId, UserId};
use crate::model::phone::Phone;
use crate::model::time::Millis;
use crate::ports::store::{Accounts, Sessions};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl Accounts for SqliteStore {
    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>(users::BY_ID).bind(id.0).fetch_optional(&self.readers).await?;
        row.map(|r| r.open(&self.vault)).transpose()
    }

    async fn user_by_phone(&self, phone: &Phone) -> Result<Option<User>> {
        let found = users_by_hash(&self.readers, &users::lookups(&self.vault, phone)).await?;
        Ok(users::open_all(found, &self.vault)?.into_iter().next())
    }

    async fn register_user(&self, phone: &Phone, now: Millis) -> Result<(User, bool)> {
        // Every statement runs on the one writer connection, so no other write can come between them.
        let mut conn = self.writer.acquire().await?;
        let hashes = users::lookups(&self.vault, phone);
        if let Some(existing) = users_by_hash(&mut *conn, &hashes).await?.into_iter().next() {
            return Ok((existing.open(&self.vault)?, false));
        }
        let id = UserId::generate();
        let number = users::stored_number(&self.vault, id, phone.e164());
        let created = sqlx::query_as::<_, UserRow>(users::INSERT)
            .bind(id.0)
            .bind(&number.sealed)
            .bind(&number.key_id)
            .bind(&number.hash)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
        match created {
            Some(row) => Ok((row.open(&self.vault)?, true)),
            None => Err(Error::Internal("user vanished while registering".into())),
        }
    }

    async fn upsert_device(&self, user: UserId, client_device_id: &str, name: &str, now: Millis) -> Result<Device> {
        let row = sqlx::query_as::<_, DeviceRow>(
            "INSERT INTO devices (id, user_id, client_device_id, name, created_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (user_id, client_device_id)
             DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at
             RETURNING id, user_id, client_device_id, name, created_at, last_seen_at",
        )
        .bind(DeviceId::generate().0)
        .bind(user.0)
        .bind(client_device_id)
        .bind(name)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        Ok(Device::from(row))
    }

    async fn devices(&self, user: UserId) -> Result<Vec<Device>> {
        let rows = sqlx::query_as::<_, DeviceRow>(
            "SELECT id, user_id, client_device_id, name, created_at, last_seen_at
             FROM devices WHERE user_id = ?1 ORDER BY created_at, id",
        )
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(Device::from).collect())
    }

    async fn change_phone(&self, user: UserId, phone: &Phone) -> Result<bool> {
        let mut conn = self.writer.acquire().await?;
        // A row sealed under an older key holds another hash: look under every key first.
        let holders = users_by_hash(&mut *conn, &users::lookups(&self.vault, phone)).await?;
        if holders.iter().any(|h| h.id() != user.0) {
            return Err(crate::adapters::sql::NUMBER_TAKEN);
        }
        let number = users::stored_number(&self.vault, user, phone.e164());
        let changed = sealed::bind_stored(sqlx::query(users::SET_NUMBER), user.0, &number)
            .execute(&mut *conn)
            .await
            .map_err(crate::adapters::sql::number_taken_or)?;
        Ok(changed.rows_affected() > 0)
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn create_session(&self, new: &NewSession) -> Result<Session> {
        // An agent's session only while the agent is enabled: the one writer connection orders this
        // against `disable_agent`, so a session is either revoked by the disabling or never stored.
        let (user, device, agent) = rows::holder_columns(new.holder);
        let row = sqlx::query_as::<_, SessionRow>(&format!(
            "INSERT INTO sessions (id, user_id, device_id, agent_id, token_hash, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE ?4 IS NULL OR EXISTS (SELECT 1 FROM agents WHERE id = ?4 AND disabled_at IS NULL)
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(new.id.0)
        .bind(user)
        .bind(device)
        .bind(agent)
        .bind(&new.token_hash.0[..])
        .bind(new.created_at)
        .bind(new.expires_at)
        .fetch_optional(&self.writer)
        .await?;
        row.map(Session::try_from).transpose()?.ok_or(Error::Forbidden)
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<Session>> {
        let row =
            sqlx::query_as::<_, SessionRow>(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"))
                .bind(&hash.0[..])
                .fetch_optional(&self.readers)
                .await?;
        row.map(Session::try_from).transpose()
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>> {
        let row = sqlx::query_as::<_, SessionRow>(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.map(Session::try_from).transpose()
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        new_hash: &TokenHash,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET token_hash = ?2, expires_at = ?3
             WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?4",
        )
        .bind(id.0)
        .bind(&new_hash.0[..])
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_session(&self, id: SessionId, now: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id.0)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_sessions(&self, user: UserId, keep: Option<SessionId>, now: Millis) -> Result<Vec<SessionId>> {
        // `IS NOT` is SQLite's null-safe inequality: with no session to keep, it matches every row.
        let ids = sqlx::query_scalar::<_, Uuid>(
            "UPDATE sessions SET revoked_at = ?3
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?3 AND id IS NOT ?2
             RETURNING id",
        )
        .bind(user.0)
        .bind(keep.map(|k| k.0))
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        Ok(rows::session_ids(ids))
    }

    async fn purge_sessions(&self, before: Millis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn dead_sessions(&self, ids: &[SessionId], now: Millis) -> Result<Vec<SessionId>> {
        // SQLite has no arrays: one statement per chunk, well under its bound-parameter limit.
        let mut live = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(400) {
            let mut query =
                sqlx::QueryBuilder::new("SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ");
            query.push_bind(now).push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            query.push(")");
            live.extend(query.build_query_scalar::<Uuid>().fetch_all(&self.readers).await?);
        }
        Ok(crate::adapters::sql::statements::not_among(ids, live))
    }

    async fn live_sessions(&self, user: UserId, now: Millis) -> Result<Vec<Session>> {
        let rows = sqlx::query_as::<_, SessionRow>(
            "SELECT id, user_id, device_id, agent_id, created_at, expires_at, revoked_at FROM sessions
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
             ORDER BY created_at DESC, id DESC",
        )
        .bind(user.0)
        .bind(now)
        .fetch_all(&self.readers)
        .await?;
        rows::to_sessions(rows)
    }

    async fn revoke_device_sessions(&self, user: UserId, device: DeviceId, now: Millis) -> Result<Vec<SessionId>> {
        let ids = sqlx::query_scalar::<_, Uuid>(
            "UPDATE sessions SET revoked_at = ?3
             WHERE user_id = ?1 AND device_id = ?2 AND revoked_at IS NULL AND expires_at > ?3
             RETURNING id",
        )
        .bind(user.0)
        .bind(device.0)
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        Ok(rows::session_ids(ids))
    }
}

/// The users stored under any of `hashes` (a number's lookup hashes under each data key).
async fn users_by_hash<'c, E>(executor: E, hashes: &[Vec<u8>]) -> Result<Vec<UserRow>>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let mut query = in_list(users::BY_HASH, hashes.iter().cloned(), "");
    Ok(query.build_query_as::<UserRow>().fetch_all(executor).await?)
}
