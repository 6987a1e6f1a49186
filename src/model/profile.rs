//! Profiles: a user's name, image and last-seen time.

use crate::model::ids::UserId;
use crate::model::telemetry::DeviceRecord;
use crate::model::ticket::Ticket;
use crate::model::time::Millis;

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

/// A profile as others may see it now: the name and image, whether the user is online, and the
/// last-seen time unless the user hides it or is online.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicProfile {
    /// The user.
    pub user_id: UserId,
    /// Display name, if set.
    pub name: Option<String>,
    /// Path of the profile image, if set.
    pub image: Option<String>,
    /// Whether the user has a live socket.
    pub online: bool,
    /// When the user was last online; `None` while online or when the user hides it.
    pub last_seen_at: Option<Millis>,
}

/// A user as agents see them beside a conversation: the public profile, the device they last
/// reported, and their tickets. Never the number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The profile, with presence.
    pub profile: PublicProfile,
    /// The newest device report of any of the user's devices; `None` when the user's analytics
    /// consent is off or nothing was reported.
    pub device: Option<DeviceRecord>,
    /// The user's tickets, most recently updated first (at most [`CUSTOMER_TICKETS`]).
    pub tickets: Vec<Ticket>,
}

/// The most tickets a [`Customer`] lists.
pub const CUSTOMER_TICKETS: u32 = 50;
