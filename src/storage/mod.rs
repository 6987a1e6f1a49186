//! The storage ports: narrow capability traits the domain calls, with two backends that implement
//! all of them: SQLite (the embedded, zero-setup default) and Postgres (production).
//!
//! Every backend passes the one conformance suite in [`conformance`], run by `tests/storage.rs`
//! against SQLite always and against Postgres when `TEST_DATABASE_URL` is set.
//!
//! Times are [`Millis`]. Phone numbers appear only in [`Accounts`]; sign-in codes and lock-outs are
//! keyed by a [`PhoneKey`] (a keyed hash), so a database dump does not list the numbers that merely
//! asked for a code.
//!
//! The support side has two ports of its own: [`agents::Agents`] (staff accounts, their sessions and
//! canned replies) and [`tickets::Tickets`] (tickets and their gapless event streams). What a batch
//! of messages does is decided once for both backends, in `stream`.
//!
//! [`purchases::Purchases`] keeps what each user paid for, as the billing system reports it; what a
//! report does to a stored purchase is decided once for both backends, in `purchases::decide`.

pub mod account;
pub mod agents;
pub mod conformance;
pub mod postgres;
pub mod profiles;
pub mod purchases;
mod rows;
pub mod sqlite;
mod stream;
pub mod tickets;
pub mod usage;

use crate::config::Config;
use crate::error::Result;
use crate::ids::{CodeId, DeviceId, SessionId, UserId};
use crate::phone::Phone;
use crate::time::Millis;
use agents::Agents;
use async_trait::async_trait;
use std::sync::Arc;
use tickets::Tickets;

/// A registered phone user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The number the user signs in with. Seen only by the user and the hub.
    pub phone: Phone,
    /// When the number first signed in successfully.
    pub registered_at: Millis,
}

/// One app installation of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The hub's id for the device record.
    pub id: DeviceId,
    /// Owner.
    pub user_id: UserId,
    /// The app's own stable id for the installation (at most 64 characters).
    pub client_device_id: String,
    /// A human name for the device ("Pixel 8"), at most 64 characters.
    pub name: String,
    /// First sign-in on this device.
    pub created_at: Millis,
    /// Last sign-in on this device.
    pub last_seen_at: Millis,
}

/// SHA-256 of a session token: the only form in which tokens are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

/// A signed-in session, bound to one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// The signed-in user.
    pub user_id: UserId,
    /// The device the session was issued to.
    pub device_id: DeviceId,
    /// When it was issued.
    pub created_at: Millis,
    /// When the current token stops working.
    pub expires_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
}

impl Session {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A session to create.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// The signed-in user.
    pub user_id: UserId,
    /// The device it is bound to.
    pub device_id: DeviceId,
    /// Hash of its token.
    pub token_hash: TokenHash,
    /// Issue time.
    pub created_at: Millis,
    /// Expiry of the token.
    pub expires_at: Millis,
}

/// A keyed hash (hex HMAC-SHA256) of a phone number, used where the number itself need not be kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneKey(pub String);

/// A sign-in code that was sent. Only its keyed hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInCode {
    /// Its id.
    pub id: CodeId,
    /// Whose number it was sent to.
    pub phone_key: PhoneKey,
    /// HMAC-SHA256 of the code.
    pub code_hash: Vec<u8>,
    /// When it was sent.
    pub created_at: Millis,
    /// When it stops working.
    pub expires_at: Millis,
    /// Tries made with it so far.
    pub attempts: u32,
}

/// Wrong tries and lock-outs of one number, across all the codes sent to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhoneGuard {
    /// Wrong codes since the last lock-out or successful sign-in.
    pub failures: u32,
    /// Lock-outs so far (each one lasts twice as long as the one before).
    pub lockouts: u32,
    /// The number may not sign in before this time.
    pub locked_until: Option<Millis>,
}

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
}

/// Session tokens (by hash).
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a new session.
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
    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    async fn purge_sessions(&self, before: Millis) -> Result<u64>;
    /// Of `ids` (user or agent sessions alike), those that are not live at `now`: revoked, expired or
    /// unknown. One query for many sockets, so that a node can re-check every session it serves
    /// after it may have missed revocations.
    async fn dead_sessions(&self, ids: &[SessionId], now: Millis) -> Result<Vec<SessionId>>;
}

/// The ids of `ids` that are not in `live`, in their order.
fn not_among(ids: &[SessionId], live: Vec<uuid::Uuid>) -> Vec<SessionId> {
    let live: std::collections::HashSet<uuid::Uuid> = live.into_iter().collect();
    ids.iter().copied().filter(|id| !live.contains(&id.0)).collect()
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
    + Health
    + Agents
    + Tickets
    + profiles::Profiles
    + usage::Usage
    + account::AccountRecords
    + purchases::Purchases
{
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;
}

/// Connects to the configured backend (Postgres when `database_url` is set, else SQLite at
/// `sqlite_path`, creating the file and its folder) and runs pending migrations.
///
/// # Errors
/// The backend is unreachable, or a migration fails.
pub async fn connect(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match &config.database_url {
        Some(url) => Ok(Arc::new(postgres::PostgresStore::connect(&url.0, config).await?)),
        None => Ok(Arc::new(sqlite::SqliteStore::connect(&config.sqlite_path, config).await?)),
    }
}
