//! Row type of [`Profile`].

use crate::model::ids::UserId;
use crate::model::profile::Profile;
use crate::model::time::Millis;
use uuid::Uuid;

/// `users` columns of a profile.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct ProfileRow {
    id: Uuid,
    name: Option<String>,
    image: Option<String>,
    hide_last_seen: bool,
    last_seen_at: Option<Millis>,
}

impl From<ProfileRow> for Profile {
    fn from(row: ProfileRow) -> Self {
        Self {
            user_id: UserId(row.id),
            name: row.name,
            image: row.image,
            hide_last_seen: row.hide_last_seen,
            last_seen_at: row.last_seen_at,
        }
    }
}

/// The columns [`ProfileRow`] reads.
pub(in crate::adapters::sql) const PROFILE_COLUMNS: &str = "id, name, image, hide_last_seen, last_seen_at";
