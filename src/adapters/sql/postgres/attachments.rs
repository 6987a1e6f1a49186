//! [`Attachments`] on Postgres: creating an upload locks the uploader's row (`FOR UPDATE`) before
//! the limits' check, so one uploader's creations run one after another; attaching is one
//! transaction, all or none.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::attachments::{
    self as sql, stored_size, to_attachments, uploader_columns, AttachmentRow,
};
use crate::adapters::sql::statements::postgres;
use crate::error::{Error, Result};
use crate::model::attachment::{Attachment, NewAttachment, StoredContent};
use crate::model::ids::{AttachmentId, Principal};
use crate::model::time::Millis;
use crate::ports::store::attachments::{Attachments, Created, UploadLimits};
use async_trait::async_trait;
use sqlx::Connection as _;

#[async_trait]
impl Attachments for PostgresStore {
    async fn create_attachment(&self, new: &NewAttachment, limits: &UploadLimits) -> Result<Created> {
        let (user, agent) = uploader_columns(new.uploader);
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let (statement, id, missing) = sql::uploader_row(new.uploader);
            let lock = format!("{} FOR UPDATE", postgres(statement));
            if sqlx::query(&lock).bind(id).fetch_optional(&mut *tx).await?.is_none() {
                return Err(Error::NotFound(missing));
            }
            let (running, bytes): (i64, i64) = sqlx::query_as(&postgres(sql::USAGE))
                .bind(user)
                .bind(agent)
                .bind(limits.day_start)
                .fetch_one(&mut *tx)
                .await?;
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            if let Some(refused) = limits.refusal(count(running), count(bytes), new.length) {
                return Ok(refused);
            }
            let row = sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::insert()))
                .bind(new.id.0)
                .bind(user)
                .bind(agent)
                .bind(&new.name)
                .bind(stored_size(new.length))
                .bind(new.created_at)
                .bind(new.expires_at)
                .fetch_one(&mut *tx)
                .await?;
            let created = Attachment::try_from(row)?;
            tx.commit().await?;
            Ok(Created::Created(created))
        })
        .await
    }

    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::by_id())).bind(id.0).fetch_optional(c).await?;
            row.map(Attachment::try_from).transpose()
        })
        .await
    }

    async fn advance_upload(&self, id: AttachmentId, from: u64, to: u64) -> Result<Option<Attachment>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::advance()))
                .bind(id.0)
                .bind(stored_size(from))
                .bind(stored_size(to))
                .fetch_optional(c)
                .await?;
            row.map(Attachment::try_from).transpose()
        })
        .await
    }

    async fn finish_upload(&self, id: AttachmentId, content: &StoredContent) -> Result<Option<Attachment>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::finish()))
                .bind(id.0)
                .bind(content.media_type.as_str())
                .bind(stored_size(content.size))
                .bind(content.dimensions.map(|d| i64::from(d.width)))
                .bind(content.dimensions.map(|d| i64::from(d.height)))
                .bind(content.thumbnail_key.as_ref().map(|k| k.as_str().to_owned()))
                .fetch_optional(c)
                .await?;
            row.map(Attachment::try_from).transpose()
        })
        .await
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        self.call(async |c| {
            let row =
                sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::delete())).bind(id.0).fetch_optional(c).await?;
            row.map(Attachment::try_from).transpose()
        })
        .await
    }

    async fn expired_attachments(&self, now: Millis, limit: u32) -> Result<Vec<Attachment>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::expired()))
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?;
            to_attachments(rows)
        })
        .await
    }

    async fn uploaded_by(&self, uploader: Principal) -> Result<Vec<Attachment>> {
        let (user, agent) = uploader_columns(uploader);
        self.call(async |c| {
            let rows = sqlx::query_as::<_, AttachmentRow>(&postgres(&sql::uploaded_by()))
                .bind(user)
                .bind(agent)
                .fetch_all(c)
                .await?;
            to_attachments(rows)
        })
        .await
    }
}
