//! The storage port for profiles (name, image, last seen) and for the device view of sessions
//! (which devices hold live sessions, signing one device out).

use super::Session;
use crate::error::Result;
use crate::ids::{DeviceId, SessionId, UserId};
use crate::time::Millis;
use async_trait::async_trait;

/// What other people may see of a user (never the number), and the user's own presence setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The user.
    pub user_id: UserId,
    /// Display name, 1 to 64 characters, if set.
    pub name: Option<String>,
    /// Path of the profile image (`/v1/media/<sha256>.jpg`), if set.
    pub image: Option<String>,
    /// When true, others see only online/offline, never the last-seen time.
    pub hide_last_seen: bool,
    /// When the user was last seen online (their last socket closed).
    pub last_seen_at: Option<Millis>,
}

/// A change to a profile; `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// New name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New image path (`Some(None)` clears it).
    pub image: Option<Option<String>>,
    /// New last-seen setting.
    pub hide_last_seen: Option<bool>,
}

/// Profiles and the device view of sessions.
#[async_trait]
pub trait Profiles: Send + Sync {
    /// The user's profile; `None` if there is no such user.
    async fn profile(&self, user: UserId) -> Result<Option<Profile>>;
    /// Applies `update` and returns the profile after it; `None` if there is no such user.
    async fn update_profile(&self, user: UserId, update: &ProfileUpdate) -> Result<Option<Profile>>;
    /// Records when the user was last seen online.
    async fn set_last_seen(&self, user: UserId, at: Millis) -> Result<()>;
    /// The user's sessions that are live at `now`, newest first.
    async fn live_sessions(&self, user: UserId, now: Millis) -> Result<Vec<Session>>;
    /// Revokes every live session of one of the user's devices; returns their ids.
    async fn revoke_device_sessions(&self, user: UserId, device: DeviceId, now: Millis) -> Result<Vec<SessionId>>;
}
