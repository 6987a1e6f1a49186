//! [`SignInCodes`] on Postgres: one live code per phone number, and the number's failure guard.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::{self, CodeRow, GuardRow};
use crate::error::Result;
use crate::model::account::{PhoneGuard, PhoneKey, SignInCode};
use crate::model::ids::CodeId;
use crate::model::time::Millis;
use crate::ports::store::SignInCodes;
use async_trait::async_trait;

#[async_trait]
impl SignInCodes for PostgresStore {
    async fn put_code(&self, code: &SignInCode) -> Result<()> {
        self.call(async |c| {
            // The number's previous code, used or not, is overwritten in the same statement: there is
            // never a moment with two codes, even when two resends race.
            sqlx::query(
                "INSERT INTO sign_in_codes (id, phone_key, code_hash, created_at, expires_at, attempts, consumed)
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE)
                 ON CONFLICT (phone_key) DO UPDATE SET
                     id = EXCLUDED.id, code_hash = EXCLUDED.code_hash, created_at = EXCLUDED.created_at,
                     expires_at = EXCLUDED.expires_at, attempts = EXCLUDED.attempts, consumed = FALSE",
            )
            .bind(code.id.0)
            .bind(&code.phone_key.0)
            .bind(&code.code_hash)
            .bind(code.created_at)
            .bind(code.expires_at)
            .bind(rows::stored_count(code.attempts))
            .execute(c)
            .await?;
            Ok(())
        })
        .await
    }

    async fn current_code(&self, phone: &PhoneKey) -> Result<Option<SignInCode>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, CodeRow>(
                "SELECT id, phone_key, code_hash, created_at, expires_at, attempts FROM sign_in_codes
                 WHERE phone_key = $1 AND NOT consumed
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(&phone.0)
            .fetch_optional(c)
            .await?;
            row.map(SignInCode::try_from).transpose()
        })
        .await
    }

    async fn count_attempt(&self, id: CodeId) -> Result<Option<u32>> {
        self.call(async |c| {
            let attempts = sqlx::query_scalar::<_, i32>(
                "UPDATE sign_in_codes SET attempts = attempts + 1 WHERE id = $1 AND NOT consumed RETURNING attempts",
            )
            .bind(id.0)
            .fetch_optional(c)
            .await?;
            attempts.map(|n| rows::count(n, "sign_in_codes.attempts")).transpose()
        })
        .await
    }

    async fn consume_code(&self, id: CodeId) -> Result<bool> {
        self.call(async |c| {
            // A racing second UPDATE waits for the first, re-reads the row, finds it consumed and
            // matches nothing: exactly one caller sees a row count of one.
            let done = sqlx::query("UPDATE sign_in_codes SET consumed = TRUE WHERE id = $1 AND NOT consumed")
                .bind(id.0)
                .execute(c)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn purge_codes(&self, before: Millis) -> Result<u64> {
        self.call(async |c| {
            let done = sqlx::query("DELETE FROM sign_in_codes WHERE expires_at < $1").bind(before).execute(c).await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn phone_guard(&self, phone: &PhoneKey) -> Result<PhoneGuard> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, GuardRow>(
                "SELECT failures, lockouts, locked_until FROM phone_guards WHERE phone_key = $1",
            )
            .bind(&phone.0)
            .fetch_optional(c)
            .await?;
            row.map_or(Ok(PhoneGuard::default()), PhoneGuard::try_from)
        })
        .await
    }

    // The time is not stored: a guard needs none of its own (a lock-out carries its end).
    async fn add_failure(&self, phone: &PhoneKey, _now: Millis) -> Result<PhoneGuard> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, GuardRow>(
                "INSERT INTO phone_guards (phone_key, failures) VALUES ($1, 1)
                 ON CONFLICT (phone_key) DO UPDATE SET failures = phone_guards.failures + 1
                 RETURNING failures, lockouts, locked_until",
            )
            .bind(&phone.0)
            .fetch_one(c)
            .await?;
            PhoneGuard::try_from(row)
        })
        .await
    }

    async fn lock_phone(&self, phone: &PhoneKey, until: Millis) -> Result<PhoneGuard> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, GuardRow>(
                "INSERT INTO phone_guards (phone_key, failures, lockouts, locked_until) VALUES ($1, 0, 1, $2)
                 ON CONFLICT (phone_key) DO UPDATE SET
                     failures = 0, lockouts = phone_guards.lockouts + 1, locked_until = EXCLUDED.locked_until
                 RETURNING failures, lockouts, locked_until",
            )
            .bind(&phone.0)
            .bind(until)
            .fetch_one(c)
            .await?;
            PhoneGuard::try_from(row)
        })
        .await
    }

    async fn clear_guard(&self, phone: &PhoneKey) -> Result<()> {
        self.call(async |c| {
            sqlx::query("DELETE FROM phone_guards WHERE phone_key = $1").bind(&phone.0).execute(c).await?;
            Ok(())
        })
        .await
    }
}
