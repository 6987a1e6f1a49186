//! The storage ports: narrow capability traits the domain calls, with two backends that implement
//! all of them: SQLite (the embedded, zero-setup default) and Postgres (production).
//!
//! Every backend passes the one conformance suite in `tests/conformance/store/`, run by
//! `tests/storage.rs` against SQLite always and against Postgres when `TEST_DATABASE_URL` is set.
//!
//! Times are [`Millis`]. Phone numbers appear only in [`Accounts`]; sign-in codes and lock-outs are
//! keyed by a [`PhoneKey`] (a keyed hash), so a database dump does not list the numbers that merely
//! asked for a code.
//!
//! The support side has two ports of its own: [`agents::Agents`] (staff accounts, their sessions and
//! canned replies) and [`tickets::Tickets`] (tickets and their gapless event streams). What a batch
//! of messages does is decided once for both backends, by the tickets domain's `stream`.
//!
//! [`notes::Notes`] keeps agents' private notes, a stream per ticket beside its events;
//! [`ratings::Ratings`] users' ratings of each resolution; [`reports::Reports`] reads what
//! supervisors' reports measure.
//!
//! [`history::EventMonths`] keeps tickets' events by month, so that old months can go whole.
//!
//! [`attachments::Attachments`] keeps the records of uploaded files (their bytes are in the object
//! store, [`crate::ports::objects`]).
//!
//! [`purchases::Purchases`] keeps what each user paid for, as the billing system reports it; what a
//! report does to a stored purchase is decided once for both backends, in the billing domain's rules.

pub mod account;
pub mod agents;
pub mod attachments;
pub mod audit;
pub mod history;
pub mod labels;
pub mod notes;
pub mod profiles;
pub mod purchases;
pub mod push;
pub mod ratings;
pub mod reports;
pub mod search;
pub mod telemetry;
pub mod tickets;

use crate::error::Result;
use crate::model::account::{Device, NewSession, PhoneGuard, PhoneKey, Session, SignInCode, TokenHash, User};
use crate::model::ids::{CodeId, DeviceId, SessionId, UserId};
use crate::model::phone::Phone;
use crate::model::time::Millis;
use agents::Agents;
use async_trait::async_trait;
use tickets::Tickets;

/// Users and their devices.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// The user with this id.
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// The user registered with this number.
    async fn user_by_phone(&self, phone: &Phone) -> Result<Option<User>>;
    /// Registers the number at `now` unless it is registered already. Race-free: concurrent calls
    /// for one number all get the same user. The flag is true for the call that created it.
    async fn register_user(&self, phone: &Phone, now: Millis) -> Result<(User, bool)>;
    /// Creates the device record `(user, client_device_id)`, or renames it and updates its last-seen time.
    async fn upsert_device(&self, user: UserId, client_device_id: &str, name: &str, now: Millis) -> Result<Device>;
    /// The user's devices, oldest first.
    async fn devices(&self, user: UserId) -> Result<Vec<Device>>;
    /// Moves the account to `phone`: from now on only `phone` signs in to it. `Conflict` when
    /// another account holds `phone`; false when the user does not exist.
    async fn change_phone(&self, user: UserId, phone: &Phone) -> Result<bool>;
}

/// Sessions of users and agents alike, found by the hash of their token.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a new session.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::error::Error::Forbidden) for an agent that does not exist or is
    /// disabled, also when [`Agents::disable_agent`] commits while this call runs: a disabled agent
    /// never ends up with a live session. A user's session must name a device of that user.
    async fn create_session(&self, new: &NewSession) -> Result<Session>;
    /// The session whose token hashes to `hash`, live or not (the caller checks [`Session::is_live`]).
    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<Session>>;
    /// The session with this id, live or not.
    async fn session(&self, id: SessionId) -> Result<Option<Session>>;
    /// Gives a live session (not revoked, not expired at `now`) a new token and expiry; the old token
    /// stops working. False if the session is not live.
    async fn rotate_session(
        &self,
        id: SessionId,
        new_hash: &TokenHash,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool>;
    /// Revokes the session at `now`. False if it does not exist or was revoked already.
    async fn revoke_session(&self, id: SessionId, now: Millis) -> Result<bool>;
    /// Revokes every live session of the user except `keep`, returning the ids it revoked.
    async fn revoke_user_sessions(&self, user: UserId, keep: Option<SessionId>, now: Millis) -> Result<Vec<SessionId>>;
    /// The user's sessions that are live at `now`, newest first.
    async fn live_sessions(&self, user: UserId, now: Millis) -> Result<Vec<Session>>;
    /// Revokes every live session of one of the user's devices; returns their ids.
    async fn revoke_device_sessions(&self, user: UserId, device: DeviceId, now: Millis) -> Result<Vec<SessionId>>;
    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    async fn purge_sessions(&self, before: Millis) -> Result<u64>;
    /// Of `ids`, those that are not live at `now`: revoked, expired or
    /// unknown. One query for many sockets, so that a node can re-check every session it serves
    /// after it may have missed revocations.
    async fn dead_sessions(&self, ids: &[SessionId], now: Millis) -> Result<Vec<SessionId>>;
}

/// Sign-in codes and per-number lock-outs.
#[async_trait]
pub trait SignInCodes: Send + Sync {
    /// Stores a code, deleting every earlier code of the same number: only the newest code works.
    async fn put_code(&self, code: &SignInCode) -> Result<()>;
    /// The newest unused code of the number, expired or not (the caller checks).
    async fn current_code(&self, phone: &PhoneKey) -> Result<Option<SignInCode>>;
    /// Atomically counts one try of the code and returns the count including this try;
    /// `None` if the code no longer exists or was used.
    async fn count_attempt(&self, id: CodeId) -> Result<Option<u32>>;
    /// Marks the code used. True for exactly one caller per code, even under concurrency.
    async fn consume_code(&self, id: CodeId) -> Result<bool>;
    /// Deletes codes that expired before `before`; returns how many.
    async fn purge_codes(&self, before: Millis) -> Result<u64>;
    /// The number's wrong tries and lock-outs (all zero when it has none).
    async fn phone_guard(&self, phone: &PhoneKey) -> Result<PhoneGuard>;
    /// Atomically adds one wrong try to the number's count and returns the new state.
    async fn add_failure(&self, phone: &PhoneKey, now: Millis) -> Result<PhoneGuard>;
    /// Locks the number until `until`, counts one more lock-out and resets the wrong tries.
    async fn lock_phone(&self, phone: &PhoneKey, until: Millis) -> Result<PhoneGuard>;
    /// Forgets the number's wrong tries and lock-outs (after a successful sign-in).
    async fn clear_guard(&self, phone: &PhoneKey) -> Result<()>;
}

/// What is sealed under which data key, and sealing it again under the current one.
#[async_trait]
pub trait SealedData: Send + Sync {
    /// How many values of each kind each data key seals (per kind, most first).
    async fn sealed_counts(&self) -> Result<Vec<SealedCount>>;
    /// Seals up to `limit` values sealed under an older key again under the current one, from
    /// `from` on (each kind in turn, each in the order of its rows' ids, so a whole rotation reads
    /// every row once); how many it did and where the next call starts (`None`: nothing is left).
    /// A value changed meanwhile (a number moved) is left as it now is.
    async fn reseal(&self, from: ResealPosition, limit: u32) -> Result<(u64, Option<ResealPosition>)>;
}

/// How far a rotation has got: the kind of value (in the store's order) and the last row id done.
/// The default is the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResealPosition {
    /// The kind, by its place in the store's order.
    pub kind: usize,
    /// The last row done of that kind (nil: none yet).
    pub after: uuid::Uuid,
}

impl ResealPosition {
    /// The start of the next kind.
    pub fn next_kind(self) -> Self {
        Self { kind: self.kind + 1, after: uuid::Uuid::nil() }
    }
}

/// How many values of one kind (mobile numbers, push addresses, IP addresses) one data key seals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedCount {
    /// The kind, as an operator reads it.
    pub what: &'static str,
    /// The data key's id.
    pub key_id: String,
    /// How many values.
    pub values: u64,
}

/// The hub's own keys, shared by every node through the database.
#[async_trait]
pub trait HubKeys: Send + Sync {
    /// Stores `candidate` under `name` unless a key of that name exists, then returns the stored key.
    /// Every node that calls this concurrently ends up with the same key.
    async fn key_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>>;
}

/// Whether the store answers.
#[async_trait]
pub trait Health: Send + Sync {
    /// A cheap round trip to the backend.
    async fn ping(&self) -> Result<()>;
}

/// Everything the hub keeps, in one object.
pub trait Store:
    Accounts
    + Sessions
    + SignInCodes
    + HubKeys
    + SealedData
    + Health
    + Agents
    + Tickets
    + profiles::Profiles
    + telemetry::Telemetry
    + account::AccountRecords
    + purchases::Purchases
    + attachments::Attachments
    + push::Pushes
    + notes::Notes
    + labels::Labels
    + ratings::Ratings
    + reports::Reports
    + search::Search
    + audit::Audit
    + history::EventMonths
{
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;
}
