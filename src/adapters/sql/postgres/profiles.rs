//! [`Profiles`] on Postgres.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::{ProfileRow, PROFILE_COLUMNS};
use crate::error::Result;
use crate::model::ids::UserId;
use crate::model::profile::{Profile, ProfileUpdate};
use crate::model::time::Millis;
use crate::ports::store::profiles::Profiles;
use async_trait::async_trait;

#[async_trait]
impl Profiles for PostgresStore {
    async fn profile(&self, user: UserId) -> Result<Option<Profile>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, ProfileRow>(&format!("SELECT {PROFILE_COLUMNS} FROM users WHERE id = $1"))
                .bind(user.0)
                .fetch_optional(c)
                .await?;
            Ok(row.map(Profile::from))
        })
        .await
    }

    async fn update_profile(&self, user: UserId, update: &ProfileUpdate) -> Result<Option<Profile>> {
        self.call(async |c| {
            // `$2`/`$4` say whether a field changes, so one statement serves every combination.
            let row = sqlx::query_as::<_, ProfileRow>(&format!(
                "UPDATE users SET
                    name = CASE WHEN $2 THEN $3 ELSE name END,
                    search_name = CASE WHEN $2 THEN $7 ELSE search_name END,
                    image = CASE WHEN $4 THEN $5 ELSE image END,
                    hide_last_seen = COALESCE($6, hide_last_seen)
                 WHERE id = $1
                 RETURNING {PROFILE_COLUMNS}"
            ))
            .bind(user.0)
            .bind(update.name.is_some())
            .bind(update.name.clone().flatten())
            .bind(update.image.is_some())
            .bind(update.image.clone().flatten())
            .bind(update.hide_last_seen)
            .bind(update.name.clone().flatten().map(|n| crate::model::text::fold(&n)))
            .fetch_optional(c)
            .await?;
            Ok(row.map(Profile::from))
        })
        .await
    }

    async fn set_last_seen(&self, user: UserId, at: Millis) -> Result<()> {
        self.call(async |c| {
            sqlx::query("UPDATE users SET last_seen_at = GREATEST(COALESCE(last_seen_at, 0), $2) WHERE id = $1")
                .bind(user.0)
                .bind(at)
                .execute(c)
                .await?;
            Ok(())
        })
        .await
    }

    async fn image_in_use(&self, image: &str) -> Result<bool> {
        self.call(async |c| {
            Ok(sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM users WHERE image = $1)")
                .bind(image)
                .fetch_one(c)
                .await?)
        })
        .await
    }
}
