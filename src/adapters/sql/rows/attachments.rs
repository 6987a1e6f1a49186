//! Rows of `attachments`, and the statements both backends run on them (`?N` placeholders;
//! Postgres spells them `$N`).

use crate::adapters::sql::rows::internal;
use crate::error::{Error, Result};
use crate::model::attachment::{Attachment, AttachmentState, Dimensions, MediaType, StoredContent};
use crate::model::ids::{AgentId, AttachmentId, Principal, TicketId, UserId};
use crate::model::object::ObjectKey;
use crate::model::time::Millis;
use uuid::Uuid;

/// The columns of `attachments` that [`AttachmentRow`] reads.
const COLUMNS: &str = "id, user_id, agent_id, ticket_id, state, name, length, received, media_type, size, width, \
     height, thumbnail_key, created_at, expires_at";

/// Binds `?1` as the user id, `?2` as the agent id of `uploader` (the other one NULL).
pub(in crate::adapters::sql) fn uploader_columns(uploader: Principal) -> (Option<Uuid>, Option<Uuid>) {
    match uploader {
        Principal::User(id) => (Some(id.0), None),
        Principal::Agent(id) => (None, Some(id.0)),
    }
}

/// The statement that reads the uploader's row (`?1` its id), to check that they exist (Postgres
/// appends `FOR UPDATE`, which also serialises one uploader's creations), the id, and what is not
/// found when it is missing.
pub(in crate::adapters::sql) fn uploader_row(uploader: Principal) -> (&'static str, Uuid, &'static str) {
    match uploader {
        Principal::User(id) => ("SELECT id FROM users WHERE id = ?1", id.0, "user"),
        Principal::Agent(id) => ("SELECT id FROM agents WHERE id = ?1", id.0, "agent"),
    }
}

/// The uploader's running uploads and bytes created since `?3`: `?1` user id, `?2` agent id.
pub(in crate::adapters::sql) const USAGE: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN state = 'uploading' THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN created_at >= ?3 THEN length ELSE 0 END), 0) AS BIGINT) \
     FROM attachments WHERE user_id = ?1 OR agent_id = ?2";

/// Creates an upload: `?1` id, `?2` user id, `?3` agent id, `?4` name, `?5` length, `?6`
/// created_at, `?7` expires_at.
pub(in crate::adapters::sql) fn insert() -> String {
    format!(
        "INSERT INTO attachments (id, user_id, agent_id, state, name, length, received, created_at, expires_at)
         VALUES (?1, ?2, ?3, 'uploading', ?4, ?5, 0, ?6, ?7) RETURNING {COLUMNS}"
    )
}

/// One attachment by id (`?1`).
pub(in crate::adapters::sql) fn by_id() -> String {
    format!("SELECT {COLUMNS} FROM attachments WHERE id = ?1")
}

/// Moves `received` of upload `?1` from `?2` to `?3`.
pub(in crate::adapters::sql) fn advance() -> String {
    format!(
        "UPDATE attachments SET received = ?3
         WHERE id = ?1 AND state = 'uploading' AND received = ?2 AND ?3 >= ?2 AND ?3 <= length
         RETURNING {COLUMNS}"
    )
}

/// Makes complete upload `?1` stored: `?2` media type, `?3` size, `?4` width, `?5` height, `?6`
/// thumbnail key.
pub(in crate::adapters::sql) fn finish() -> String {
    format!(
        "UPDATE attachments SET state = 'stored', media_type = ?2, size = ?3, width = ?4, height = ?5,
             thumbnail_key = ?6
         WHERE id = ?1 AND state = 'uploading' AND received = length
         RETURNING {COLUMNS}"
    )
}

/// Attaches stored attachment `?1` to ticket `?2` if `?3` (user id) or `?4` (agent id) uploaded it.
pub(in crate::adapters::sql) fn attach() -> String {
    format!(
        "UPDATE attachments SET state = 'attached', ticket_id = ?2, expires_at = NULL
         WHERE id = ?1 AND state = 'stored' AND (user_id = ?3 OR agent_id = ?4)
         RETURNING {COLUMNS}"
    )
}

/// Postgres: the attachments whose ids are in the array `?1`, locked in id order (so that two
/// writes naming the same uploads queue instead of deadlocking).
pub(in crate::adapters::sql) fn locked_any() -> String {
    format!("SELECT {COLUMNS} FROM attachments WHERE id = ANY(?1) ORDER BY id FOR UPDATE")
}

/// Deletes attachment `?1`.
pub(in crate::adapters::sql) fn delete() -> String {
    format!("DELETE FROM attachments WHERE id = ?1 RETURNING {COLUMNS}")
}

/// Unattached attachments expired before `?1`, at most `?2`.
pub(in crate::adapters::sql) fn expired() -> String {
    format!(
        "SELECT {COLUMNS} FROM attachments WHERE expires_at < ?1 AND state <> 'attached'
         ORDER BY expires_at, id LIMIT ?2"
    )
}

/// What deleting user `?1`'s account deletes: their uploads and whatever is on their tickets.
pub(in crate::adapters::sql) fn of_account() -> String {
    format!(
        "SELECT {COLUMNS} FROM attachments
         WHERE user_id = ?1 OR ticket_id IN (SELECT id FROM tickets WHERE user_id = ?1) ORDER BY created_at, id"
    )
}

/// Everything uploaded by user `?1` or agent `?2`, oldest first.
pub(in crate::adapters::sql) fn uploaded_by() -> String {
    format!("SELECT {COLUMNS} FROM attachments WHERE user_id = ?1 OR agent_id = ?2 ORDER BY created_at, id")
}

/// A count or size as the columns store it (`BIGINT`); the hub's sizes are far below `i64::MAX`.
pub(in crate::adapters::sql) fn stored_size(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `attachments`: [`COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct AttachmentRow {
    id: Uuid,
    user_id: Option<Uuid>,
    agent_id: Option<Uuid>,
    ticket_id: Option<Uuid>,
    state: String,
    name: String,
    length: i64,
    received: i64,
    media_type: Option<String>,
    size: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    thumbnail_key: Option<String>,
    created_at: Millis,
    expires_at: Option<Millis>,
}

impl AttachmentRow {
    /// A row of [`COLUMNS`], in their order, on the SQLite connection of message batches.
    pub(in crate::adapters::sql) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            user_id: row.get(1)?,
            agent_id: row.get(2)?,
            ticket_id: row.get(3)?,
            state: row.get(4)?,
            name: row.get(5)?,
            length: row.get(6)?,
            received: row.get(7)?,
            media_type: row.get(8)?,
            size: row.get(9)?,
            width: row.get(10)?,
            height: row.get(11)?,
            thumbnail_key: row.get(12)?,
            created_at: row.get(13)?,
            expires_at: row.get(14)?,
        })
    }
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = Error;

    fn try_from(r: AttachmentRow) -> Result<Self> {
        let uploader = match (r.user_id, r.agent_id) {
            (Some(user), None) => Principal::User(UserId(user)),
            (None, Some(agent)) => Principal::Agent(AgentId(agent)),
            _ => return Err(Error::Internal(format!("attachment {} has no single uploader", r.id))),
        };
        let unsigned = |column: &'static str, v: i64| u64::try_from(v).map_err(|_| internal(column, &v.to_string()));
        let content = match (r.media_type, r.size) {
            (Some(media_type), Some(size)) => Some(StoredContent {
                media_type: MediaType::parse(&media_type)
                    .ok_or_else(|| internal("attachments.media_type", &media_type))?,
                size: unsigned("attachments.size", size)?,
                dimensions: match (r.width, r.height) {
                    (Some(w), Some(h)) => Some(Dimensions {
                        width: u32::try_from(w).map_err(|_| internal("attachments.width", &w.to_string()))?,
                        height: u32::try_from(h).map_err(|_| internal("attachments.height", &h.to_string()))?,
                    }),
                    _ => None,
                },
                thumbnail_key: r
                    .thumbnail_key
                    .map(|k| ObjectKey::parse(&k).map_err(|_| internal("attachments.thumbnail_key", &k)))
                    .transpose()?,
            }),
            _ => None,
        };
        Ok(Self {
            id: AttachmentId(r.id),
            uploader,
            ticket_id: r.ticket_id.map(TicketId),
            state: AttachmentState::parse(&r.state).ok_or_else(|| internal("attachments.state", &r.state))?,
            name: r.name,
            length: unsigned("attachments.length", r.length)?,
            received: unsigned("attachments.received", r.received)?,
            content,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

/// Rows as attachments, in their order.
///
/// # Errors
/// [`Error::Internal`] for a row the model cannot hold.
pub(in crate::adapters::sql) fn to_attachments(rows: Vec<AttachmentRow>) -> Result<Vec<Attachment>> {
    rows.into_iter().map(Attachment::try_from).collect()
}
