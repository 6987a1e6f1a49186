//! [`SignInCodes`] on SQLite: one live code per phone number, and the number's failure guard.

use crate::adapters::sql::rows::{self, CodeRow, GuardRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::account::{PhoneGuard, PhoneKey, SignInCode};
use crate::model::ids::CodeId;
use crate::model::time::Millis;
use crate::ports::store::SignInCodes;
use async_trait::async_trait;

#[async_trait]
impl SignInCodes for SqliteStore {
    async fn put_code(&self, code: &SignInCode) -> Result<()> {
        // The number's previous code, used or not, is overwritten in the same statement.
        sqlx::query(
            "INSERT INTO sign_in_codes (id, phone_key, code_hash, created_at, expires_at, attempts, consumed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
             ON CONFLICT (phone_key) DO UPDATE SET
                 id = excluded.id, code_hash = excluded.code_hash, created_at = excluded.created_at,
                 expires_at = excluded.expires_at, attempts = excluded.attempts, consumed = 0",
        )
        .bind(code.id.0)
        .bind(&code.phone_key.0)
        .bind(&code.code_hash)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(rows::stored_count(code.attempts))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn current_code(&self, phone: &PhoneKey) -> Result<Option<SignInCode>> {
        let row = sqlx::query_as::<_, CodeRow>(
            "SELECT id, phone_key, code_hash, created_at, expires_at, attempts FROM sign_in_codes
             WHERE phone_key = ?1 AND consumed = 0
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(&phone.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map(SignInCode::try_from).transpose()
    }

    async fn count_attempt(&self, id: CodeId) -> Result<Option<u32>> {
        let attempts = sqlx::query_scalar::<_, i32>(
            "UPDATE sign_in_codes SET attempts = attempts + 1 WHERE id = ?1 AND consumed = 0 RETURNING attempts",
        )
        .bind(id.0)
        .fetch_optional(&self.writer)
        .await?;
        attempts.map(|n| rows::count(n, "sign_in_codes.attempts")).transpose()
    }

    async fn consume_code(&self, id: CodeId) -> Result<bool> {
        let done = sqlx::query("UPDATE sign_in_codes SET consumed = 1 WHERE id = ?1 AND consumed = 0")
            .bind(id.0)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_codes(&self, before: Millis) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM sign_in_codes WHERE expires_at < ?1").bind(before).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }

    async fn phone_guard(&self, phone: &PhoneKey) -> Result<PhoneGuard> {
        let row = sqlx::query_as::<_, GuardRow>(
            "SELECT failures, lockouts, locked_until FROM phone_guards WHERE phone_key = ?1",
        )
        .bind(&phone.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map_or(Ok(PhoneGuard::default()), PhoneGuard::try_from)
    }

    // The time is not stored: a guard needs none of its own (a lock-out carries its end).
    async fn add_failure(&self, phone: &PhoneKey, _now: Millis) -> Result<PhoneGuard> {
        let row = sqlx::query_as::<_, GuardRow>(
            "INSERT INTO phone_guards (phone_key, failures) VALUES (?1, 1)
             ON CONFLICT (phone_key) DO UPDATE SET failures = failures + 1
             RETURNING failures, lockouts, locked_until",
        )
        .bind(&phone.0)
        .fetch_one(&self.writer)
        .await?;
        PhoneGuard::try_from(row)
    }

    async fn lock_phone(&self, phone: &PhoneKey, until: Millis) -> Result<PhoneGuard> {
        let row = sqlx::query_as::<_, GuardRow>(
            "INSERT INTO phone_guards (phone_key, failures, lockouts, locked_until) VALUES (?1, 0, 1, ?2)
             ON CONFLICT (phone_key) DO UPDATE SET
                 failures = 0, lockouts = lockouts + 1, locked_until = excluded.locked_until
             RETURNING failures, lockouts, locked_until",
        )
        .bind(&phone.0)
        .bind(until)
        .fetch_one(&self.writer)
        .await?;
        PhoneGuard::try_from(row)
    }

    async fn clear_guard(&self, phone: &PhoneKey) -> Result<()> {
        sqlx::query("DELETE FROM phone_guards WHERE phone_key = ?1").bind(&phone.0).execute(&self.writer).await?;
        Ok(())
    }
}
