//! Rows of `audit_log`, and the statements both backends run on them (`?N` placeholders; Postgres
//! spells them `$N`); `detail` is JSON text.

use crate::error::{Error, Result};
use crate::model::audit::{ActorKind, AuditEntry};
use crate::model::time::Millis;
use uuid::Uuid;

/// The columns, in [`AuditRow`]'s order.
const COLUMNS: &str = "id, at, actor, actor_id, action, object_id, user_id, detail";

/// Entries at or after `?1` and before `?2`, after id `?3` (the nil id for the first page), at most `?4`.
pub(in crate::adapters::sql) fn page() -> String {
    format!("SELECT {COLUMNS} FROM audit_log WHERE at >= ?1 AND at < ?2 AND id > ?3 ORDER BY id LIMIT ?4")
}

/// The entries user `?1` made or that concern them.
pub(in crate::adapters::sql) fn of_user() -> String {
    format!("SELECT {COLUMNS} FROM audit_log WHERE actor_id = ?1 OR user_id = ?1 ORDER BY id")
}

/// Deletes the entries of user `?1`.
pub(in crate::adapters::sql) const FORGET_USER: &str = "DELETE FROM audit_log WHERE actor_id = ?1 OR user_id = ?1";

/// Deletes the entries before `?1`.
pub(in crate::adapters::sql) const PURGE: &str = "DELETE FROM audit_log WHERE at < ?1";

/// One stored entry: `detail` as JSON text.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct AuditRow {
    pub id: Uuid,
    pub at: Millis,
    pub actor: String,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub object_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub detail: Option<String>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = Error;

    fn try_from(r: AuditRow) -> Result<Self> {
        let actor =
            ActorKind::parse(&r.actor).ok_or_else(|| Error::Internal(format!("unknown audit actor {}", r.actor)))?;
        let detail = r
            .detail
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| Error::Internal(format!("audit detail: {e}")))?;
        Ok(Self {
            id: r.id,
            at: r.at,
            actor,
            actor_id: r.actor_id,
            object: crate::model::audit::object_of(&r.action).to_owned(),
            action: r.action,
            object_id: r.object_id,
            user_id: r.user_id,
            detail,
        })
    }
}

/// An entry's `detail` as stored.
pub(in crate::adapters::sql) fn detail_text(entry: &AuditEntry) -> Option<String> {
    entry.detail.as_ref().map(serde_json::Value::to_string)
}

/// Appends an entry: `?1` to `?8` in [`COLUMNS`]'s order.
pub(in crate::adapters::sql) const INSERT: &str = "INSERT INTO audit_log \
     (id, at, actor, actor_id, action, object_id, user_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
