//! Row shapes shared by both backends, and their conversion into the storage models.
//!
//! Each backend keeps its own SQL; what the columns mean lives only here, so that SQLite and Postgres
//! cannot drift apart in how they read a user or a session. The structs derive [`sqlx::FromRow`]
//! generically, so one definition decodes rows of either database; every query selects exactly the
//! columns of the struct it is read into, by these names.
//!
//! The agents', the tickets' and the purchases' rows live in [`agents`], [`tickets`] and [`purchases`].

mod account;
pub(super) mod agents;
pub(super) mod attachments;
pub(super) mod audit;
pub(super) mod labels;
pub(super) mod notes;
mod profiles;
mod purchases;
pub(super) mod push;
pub(super) mod ratings;
pub(super) mod reports;
pub(super) mod sealed;
pub(super) mod search;
mod telemetry;
mod tickets;
pub(super) mod users;

pub(super) use account::PagedViewRow;
pub(super) use agents::{stored_email, AgentRow, CannedReplyRow};
pub(super) use profiles::{ProfileRow, PROFILE_COLUMNS};
pub(super) use purchases::{to_purchases, unknown_user, PurchaseRow, PURCHASE_COLUMNS};
pub(super) use telemetry::{
    ConnectionRow, ConsentRow, DeviceInfoRow, ViewRow, CONNECTION_COLUMNS, CONSENT_COLUMNS, DEVICE_COLUMNS,
    VIEW_COLUMNS,
};
pub(super) use tickets::{
    assigned_counts, marks, search_text, seq, stored_attachments, stored_author, stored_participant, stored_seq,
    BatchRead, BatchReadRow, EventRow, MarkRow, TicketRow,
};

use crate::error::{Error, Result};
use crate::model::account::{Device, Holder, PhoneGuard, PhoneKey, Session, SignInCode};
use crate::model::ids::{AgentId, CodeId, DeviceId, SessionId, UserId};
use crate::model::time::Millis;
use uuid::Uuid;

/// `devices`: `id, user_id, client_device_id, name, created_at, last_seen_at`.
#[derive(sqlx::FromRow)]
pub(super) struct DeviceRow {
    id: Uuid,
    user_id: Uuid,
    client_device_id: String,
    name: String,
    created_at: Millis,
    last_seen_at: Millis,
}

impl From<DeviceRow> for Device {
    fn from(row: DeviceRow) -> Self {
        Self {
            id: DeviceId(row.id),
            user_id: UserId(row.user_id),
            client_device_id: row.client_device_id,
            name: row.name,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
        }
    }
}

/// The columns of [`SessionRow`], in its order.
pub(super) const SESSION_COLUMNS: &str = "id, user_id, device_id, agent_id, created_at, expires_at, revoked_at";

/// `sessions`: [`SESSION_COLUMNS`] (never the token hash, which is only ever compared inside the
/// database). A user's session has `user_id` and `device_id`, an agent's `agent_id`; a CHECK
/// constraint keeps every row one or the other.
#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id: Uuid,
    user_id: Option<Uuid>,
    device_id: Option<Uuid>,
    agent_id: Option<Uuid>,
    created_at: Millis,
    expires_at: Millis,
    revoked_at: Option<Millis>,
}

impl TryFrom<SessionRow> for Session {
    type Error = Error;

    fn try_from(row: SessionRow) -> Result<Self> {
        let holder = match (row.user_id, row.device_id, row.agent_id) {
            (Some(user), Some(device), None) => Holder::User { user: UserId(user), device: DeviceId(device) },
            (None, None, Some(agent)) => Holder::Agent(AgentId(agent)),
            _ => return Err(Error::Internal(format!("session {} has no single holder", row.id))),
        };
        Ok(Self {
            id: SessionId(row.id),
            holder,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// Binds a session's holder as `user_id, device_id, agent_id`, in that order.
pub(super) fn holder_columns(holder: Holder) -> (Option<Uuid>, Option<Uuid>, Option<Uuid>) {
    match holder {
        Holder::User { user, device } => (Some(user.0), Some(device.0), None),
        Holder::Agent(agent) => (None, None, Some(agent.0)),
    }
}

/// Sessions read from rows, in order.
pub(super) fn to_sessions(rows: Vec<SessionRow>) -> Result<Vec<Session>> {
    rows.into_iter().map(Session::try_from).collect()
}

/// `sign_in_codes`: `id, phone_key, code_hash, created_at, expires_at, attempts`.
#[derive(sqlx::FromRow)]
pub(super) struct CodeRow {
    id: Uuid,
    phone_key: String,
    code_hash: Vec<u8>,
    created_at: Millis,
    expires_at: Millis,
    attempts: i32,
}

impl TryFrom<CodeRow> for SignInCode {
    type Error = Error;

    fn try_from(row: CodeRow) -> Result<Self> {
        Ok(Self {
            id: CodeId(row.id),
            phone_key: PhoneKey(row.phone_key),
            code_hash: row.code_hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
            attempts: count(row.attempts, "sign_in_codes.attempts")?,
        })
    }
}

/// `phone_guards`: `failures, lockouts, locked_until`.
#[derive(sqlx::FromRow)]
pub(super) struct GuardRow {
    failures: i32,
    lockouts: i32,
    locked_until: Option<Millis>,
}

impl TryFrom<GuardRow> for PhoneGuard {
    type Error = Error;

    fn try_from(row: GuardRow) -> Result<Self> {
        Ok(Self {
            failures: count(row.failures, "phone_guards.failures")?,
            lockouts: count(row.lockouts, "phone_guards.lockouts")?,
            locked_until: row.locked_until,
        })
    }
}

/// A counter column as the models' `u32`. Both schemas forbid negative counters with a CHECK, so a
/// negative value means the database was edited by hand: report it rather than wrap it.
///
/// # Errors
/// [`Error::Internal`] for a negative value.
pub(super) fn count(value: i32, column: &'static str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Internal(format!("{column} is negative ({value})")))
}

/// The error for a text column holding a value the models have no variant for: the database was
/// edited by hand or by a newer version of the hub.
fn internal(column: &'static str, value: &str) -> Error {
    Error::Internal(format!("{column} holds an unknown value ({value:?})"))
}

/// A model's counter as the column stores it. Counters grow by one per wrong try, so they never get
/// near `i32::MAX`; saturating keeps the conversion total all the same.
pub(super) fn stored_count(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A `RETURNING id` column as the session ids it names.
pub(super) fn session_ids(ids: Vec<Uuid>) -> Vec<SessionId> {
    ids.into_iter().map(SessionId).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_refuse_negative_values_instead_of_wrapping() {
        assert_eq!(count(7, "x").ok(), Some(7));
        assert!(matches!(count(-1, "x"), Err(Error::Internal(detail)) if detail.contains("x is negative")));
    }

    #[test]
    fn code_rows_map_every_column() {
        let id = Uuid::now_v7();
        let row =
            CodeRow { id, phone_key: "k".into(), code_hash: vec![0, 255], created_at: 1, expires_at: 2, attempts: 3 };
        let code = SignInCode::try_from(row).ok();
        assert_eq!(
            code,
            Some(SignInCode {
                id: CodeId(id),
                phone_key: PhoneKey("k".into()),
                code_hash: vec![0, 255],
                created_at: 1,
                expires_at: 2,
                attempts: 3,
            })
        );
    }
}
