//! The storage port for profiles: name, image, last seen.

use crate::error::Result;
use crate::model::ids::UserId;
use crate::model::profile::{Profile, ProfileUpdate};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Profiles.
#[async_trait]
pub trait Profiles: Send + Sync {
    /// The user's profile; `None` if there is no such user.
    async fn profile(&self, user: UserId) -> Result<Option<Profile>>;
    /// Applies `update` and returns the profile after it; `None` if there is no such user.
    async fn update_profile(&self, user: UserId, update: &ProfileUpdate) -> Result<Option<Profile>>;
    /// Records when the user was last seen online.
    async fn set_last_seen(&self, user: UserId, at: Millis) -> Result<()>;
    /// Whether any account's profile names this image path.
    async fn image_in_use(&self, image: &str) -> Result<bool>;
}
