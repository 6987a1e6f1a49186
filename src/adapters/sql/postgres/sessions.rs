//! [`Accounts`] and [`Sessions`] on Postgres: users (one per phone number), their devices, and the
//! sessions of users and agents.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::sealed;
use crate::adapters::sql::rows::users::{self, UserRow};
use crate::adapters::sql::rows::{self, DeviceRow, SessionRow, SESSION_COLUMNS};
use crate::adapters::sql::statements::not_among;
use crate::adapters::sql::statements::postgres;
use crate::error::{Error, Result};
use crate::model::account::{Device, NewSession, Session, TokenHash, User};
use crate::model::ids::{DeviceId, SessionId, UserId};
use crate::model::phone::Phone;
use crate::model::time::Millis;
use crate::ports::store::{Accounts, Sessions};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl Accounts for PostgresStore {
    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let by_id = postgres(users::BY_ID);
        self.call(async |c| {
            let row = sqlx::query_as::<_, UserRow>(&by_id).bind(id.0).fetch_optional(c).await?;
            row.map(|r| r.open(&self.vault)).transpose()
        })
        .await
    }

    async fn user_by_phone(&self, phone: &Phone) -> Result<Option<User>> {
        let hashes = users::lookups(&self.vault, phone);
        self.call(async |c| {
            let found = users_by_hash(c, &hashes).await?;
            Ok(users::open_all(found, &self.vault)?.into_iter().next())
        })
        .await
    }

    async fn register_user(&self, phone: &Phone, now: Millis) -> Result<(User, bool)> {
        let hashes = users::lookups(&self.vault, phone);
        let id = UserId::generate();
        let number = users::stored_number(&self.vault, id, phone.e164());
        let insert = postgres(users::INSERT);
        self.call(async |c| {
            // A row sealed under an older key holds another hash: look under every key first.
            if let Some(existing) = users_by_hash(&mut *c, &hashes).await?.into_iter().next() {
                return Ok((existing.open(&self.vault)?, false));
            }
            // Exactly one concurrent insert wins the unique index; the others wait for it to commit
            // and do nothing. Their next statement gets a fresh snapshot and so sees the winner.
            let created = sqlx::query_as::<_, UserRow>(&insert)
                .bind(id.0)
                .bind(&number.sealed)
                .bind(&number.key_id)
                .bind(&number.hash)
                .bind(now)
                .fetch_optional(&mut *c)
                .await?;
            if let Some(row) = created {
                return Ok((row.open(&self.vault)?, true));
            }
            let existing = users_by_hash(&mut *c, &hashes).await?.into_iter().next();
            // Only a user deleted between the two statements gets here; the caller may retry.
            existing
                .map(|row| Ok((row.open(&self.vault)?, false)))
                .unwrap_or_else(|| Err(Error::Internal("user vanished while registering".into())))
        })
        .await
    }

    async fn upsert_device(&self, user: UserId, client_device_id: &str, name: &str, now: Millis) -> Result<Device> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, DeviceRow>(
                "INSERT INTO devices (id, user_id, client_device_id, name, created_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (user_id, client_device_id)
                 DO UPDATE SET name = EXCLUDED.name, last_seen_at = EXCLUDED.last_seen_at
                 RETURNING id, user_id, client_device_id, name, created_at, last_seen_at",
            )
            .bind(DeviceId::generate().0)
            .bind(user.0)
            .bind(client_device_id)
            .bind(name)
            .bind(now)
            .fetch_one(c)
            .await?;
            Ok(Device::from(row))
        })
        .await
    }

    async fn devices(&self, user: UserId) -> Result<Vec<Device>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, DeviceRow>(
                "SELECT id, user_id, client_device_id, name, created_at, last_seen_at
                 FROM devices WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user.0)
            .fetch_all(c)
            .await?;
            Ok(rows.into_iter().map(Device::from).collect())
        })
        .await
    }

    async fn change_phone(&self, user: UserId, phone: &Phone) -> Result<bool> {
        let hashes = users::lookups(&self.vault, phone);
        let number = users::stored_number(&self.vault, user, phone.e164());
        let set = postgres(users::SET_NUMBER);
        self.call(async |c| {
            // A row sealed under an older key holds another hash: look under every key first.
            let holders = users_by_hash(&mut *c, &hashes).await?;
            if holders.iter().any(|h| h.id() != user.0) {
                return Err(crate::adapters::sql::NUMBER_TAKEN);
            }
            let changed = sealed::bind_stored(sqlx::query(&set), user.0, &number)
                .execute(c)
                .await
                .map_err(crate::adapters::sql::number_taken_or)?;
            Ok(changed.rows_affected() > 0)
        })
        .await
    }
}

#[async_trait]
impl Sessions for PostgresStore {
    async fn create_session(&self, new: &NewSession) -> Result<Session> {
        let (user, device, agent) = rows::holder_columns(new.holder);
        self.call(async |c| {
            // An agent's session only while the agent is enabled. FOR SHARE conflicts with
            // `disable_agent`'s update: if that commits first, this re-reads the row, finds it
            // disabled and stores nothing; if this commits first, the disabling revokes the session.
            let row = sqlx::query_as::<_, SessionRow>(&format!(
                "INSERT INTO sessions (id, user_id, device_id, agent_id, token_hash, created_at, expires_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE $4::uuid IS NULL
                    OR EXISTS (SELECT 1 FROM agents WHERE id = $4 AND disabled_at IS NULL FOR SHARE)
                 RETURNING {SESSION_COLUMNS}"
            ))
            .bind(new.id.0)
            .bind(user)
            .bind(device)
            .bind(agent)
            .bind(&new.token_hash.0[..])
            .bind(new.created_at)
            .bind(new.expires_at)
            .fetch_optional(c)
            .await?;
            row.map(Session::try_from).transpose()?.ok_or(Error::Forbidden)
        })
        .await
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<Session>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, SessionRow>(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"
            ))
            .bind(&hash.0[..])
            .fetch_optional(c)
            .await?;
            row.map(Session::try_from).transpose()
        })
        .await
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, SessionRow>(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(c)
                .await?;
            row.map(Session::try_from).transpose()
        })
        .await
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        new_hash: &TokenHash,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        self.call(async |c| {
            // Liveness is part of the WHERE, so a concurrent revoke either happens first (no row
            // matches) or after (it revokes the rotated session): a revoked session never gets a token.
            let done = sqlx::query(
                "UPDATE sessions SET token_hash = $2, expires_at = $3
                 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $4",
            )
            .bind(id.0)
            .bind(&new_hash.0[..])
            .bind(expires_at)
            .bind(now)
            .execute(c)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn revoke_session(&self, id: SessionId, now: Millis) -> Result<bool> {
        self.call(async |c| {
            let done = sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.0)
                .bind(now)
                .execute(c)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user: UserId, keep: Option<SessionId>, now: Millis) -> Result<Vec<SessionId>> {
        self.call(async |c| {
            let ids = sqlx::query_scalar::<_, Uuid>(
                "UPDATE sessions SET revoked_at = $3
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 AND id IS DISTINCT FROM $2
                 RETURNING id",
            )
            .bind(user.0)
            .bind(keep.map(|k| k.0))
            .bind(now)
            .fetch_all(c)
            .await?;
            Ok(rows::session_ids(ids))
        })
        .await
    }

    async fn purge_sessions(&self, before: Millis) -> Result<u64> {
        self.call(async |c| {
            let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
                .bind(before)
                .execute(c)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn dead_sessions(&self, ids: &[SessionId], now: Millis) -> Result<Vec<SessionId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let live = self
            .call(async |c| {
                Ok(sqlx::query_scalar::<_, Uuid>(
                    "SELECT id FROM sessions WHERE id = ANY($1) AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(&wanted)
                .bind(now)
                .fetch_all(c)
                .await?)
            })
            .await?;
        Ok(not_among(ids, live))
    }

    async fn live_sessions(&self, user: UserId, now: Millis) -> Result<Vec<Session>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, SessionRow>(
                "SELECT id, user_id, device_id, agent_id, created_at, expires_at, revoked_at FROM sessions
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
                 ORDER BY created_at DESC, id DESC",
            )
            .bind(user.0)
            .bind(now)
            .fetch_all(c)
            .await?;
            rows::to_sessions(rows)
        })
        .await
    }

    async fn revoke_device_sessions(&self, user: UserId, device: DeviceId, now: Millis) -> Result<Vec<SessionId>> {
        self.call(async |c| {
            let ids = sqlx::query_scalar::<_, Uuid>(
                "UPDATE sessions SET revoked_at = $3
                 WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL AND expires_at > $3
                 RETURNING id",
            )
            .bind(user.0)
            .bind(device.0)
            .bind(now)
            .fetch_all(c)
            .await?;
            Ok(rows::session_ids(ids))
        })
        .await
    }
}

/// The users stored under any of `hashes` (a number's lookup hashes under each data key).
async fn users_by_hash(c: &mut sqlx::PgConnection, hashes: &[Vec<u8>]) -> Result<Vec<UserRow>> {
    let statement = format!("{}= ANY($1)", users::BY_HASH);
    Ok(sqlx::query_as::<_, UserRow>(&statement).bind(hashes).fetch_all(c).await?)
}
