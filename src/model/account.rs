//! Accounts: the phone user, their devices and sessions, sign-in codes and lock-outs.

use crate::model::ids::{AgentId, CodeId, DeviceId, Principal, SessionId, UserId};
use crate::model::phone::Phone;
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

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

/// Who holds a session: a user on one of their devices, or a support agent. Users' and agents'
/// sessions are one kind of thing (one table, one token lifecycle); only what they are bound to differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// An app user, on the device the session was issued to.
    User {
        /// The signed-in user.
        user: UserId,
        /// The device the session was issued to.
        device: DeviceId,
    },
    /// A support agent (console sessions are not bound to a device).
    Agent(AgentId),
}

impl Holder {
    /// The user or agent behind the session.
    pub fn principal(self) -> Principal {
        match self {
            Self::User { user, .. } => Principal::User(user),
            Self::Agent(agent) => Principal::Agent(agent),
        }
    }

    /// The device of a user's session; `None` for an agent's.
    pub fn device(self) -> Option<DeviceId> {
        match self {
            Self::User { device, .. } => Some(device),
            Self::Agent(_) => None,
        }
    }
}

/// A signed-in session of a user or an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// Who it signs in.
    pub holder: Holder,
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

    /// Who the session's token stands for, as a socket or request is told.
    pub fn identity(&self) -> Identity {
        Identity {
            who: self.holder.principal(),
            device: self.holder.device(),
            session: self.id,
            expires_at: self.expires_at,
        }
    }
}

/// A session to create.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// Who it signs in.
    pub holder: Holder,
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

/// Why a session was revoked, as told to its sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The session signed out (from one of its sockets or over HTTP).
    SignedOut,
    /// The operator disabled the agent account.
    AgentDisabled,
    /// The number signed in on another device, which now holds the account (`max_devices`).
    SignedInElsewhere,
    /// The same device signed in again; its older session ended.
    Replaced,
    /// The user deleted their account: every session ended with it.
    AccountDeleted,
}

/// Who a valid token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user or agent.
    pub who: Principal,
    /// The user's device the session is bound to; `None` for an agent.
    pub device: Option<DeviceId>,
    /// Their session.
    pub session: SessionId,
    /// When the session's token expires.
    pub expires_at: Millis,
}
