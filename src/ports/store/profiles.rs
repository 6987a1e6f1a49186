//! The storage port for profiles (name, image, last seen) and for the device view of sessions
//! (which devices hold live sessions, signing one device out).

use crate::error::Result;
use crate::model::account::Session;
use crate::model::ids::{DeviceId, SessionId, UserId};
use crate::model::profile::{Profile, ProfileUpdate};
use crate::model::time::Millis;
use async_trait::async_trait;

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
    /// Whether any account's profile names this image path.
    async fn image_in_use(&self, image: &str) -> Result<bool>;
}
