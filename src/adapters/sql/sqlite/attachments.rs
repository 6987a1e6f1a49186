//! [`Attachments`] on SQLite: creating an upload (the limits' check and the insert) and attaching
//! (all or none) are each one `BEGIN IMMEDIATE` transaction on the writer; the other calls are
//! single statements.

use crate::adapters::sql::rows::attachments::{
    self as sql, stored_size, to_attachments, uploader_columns, AttachmentRow,
};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::{Error, Result};
use crate::model::attachment::{Attachment, NewAttachment, StoredContent};
use crate::model::ids::{AttachmentId, Principal};
use crate::model::time::Millis;
use crate::ports::store::attachments::{Attachments, Created, UploadLimits};
use async_trait::async_trait;

#[async_trait]
impl Attachments for SqliteStore {
    async fn create_attachment(&self, new: &NewAttachment, limits: &UploadLimits) -> Result<Created> {
        let (user, agent) = uploader_columns(new.uploader);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let (statement, id, missing) = sql::uploader_row(new.uploader);
        if sqlx::query(statement).bind(id).fetch_optional(&mut *tx).await?.is_none() {
            return Err(Error::NotFound(missing));
        }
        let (running, bytes): (i64, i64) =
            sqlx::query_as(sql::USAGE).bind(user).bind(agent).bind(limits.day_start).fetch_one(&mut *tx).await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        if let Some(refused) = limits.refusal(count(running), count(bytes), new.length) {
            return Ok(refused);
        }
        let row = sqlx::query_as::<_, AttachmentRow>(&sql::insert())
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
    }

    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        let row = sqlx::query_as::<_, AttachmentRow>(&sql::by_id()).bind(id.0).fetch_optional(&self.readers).await?;
        row.map(Attachment::try_from).transpose()
    }

    async fn advance_upload(&self, id: AttachmentId, from: u64, to: u64) -> Result<Option<Attachment>> {
        let row = sqlx::query_as::<_, AttachmentRow>(&sql::advance())
            .bind(id.0)
            .bind(stored_size(from))
            .bind(stored_size(to))
            .fetch_optional(&self.writer)
            .await?;
        row.map(Attachment::try_from).transpose()
    }

    async fn finish_upload(&self, id: AttachmentId, content: &StoredContent) -> Result<Option<Attachment>> {
        let row = sqlx::query_as::<_, AttachmentRow>(&sql::finish())
            .bind(id.0)
            .bind(content.media_type.as_str())
            .bind(stored_size(content.size))
            .bind(content.dimensions.map(|d| i64::from(d.width)))
            .bind(content.dimensions.map(|d| i64::from(d.height)))
            .bind(content.thumbnail_key.as_ref().map(|k| k.as_str().to_owned()))
            .fetch_optional(&self.writer)
            .await?;
        row.map(Attachment::try_from).transpose()
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        let row = sqlx::query_as::<_, AttachmentRow>(&sql::delete()).bind(id.0).fetch_optional(&self.writer).await?;
        row.map(Attachment::try_from).transpose()
    }

    async fn expired_attachments(&self, now: Millis, limit: u32) -> Result<Vec<Attachment>> {
        let rows = sqlx::query_as::<_, AttachmentRow>(&sql::expired())
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        to_attachments(rows)
    }

    async fn uploaded_by(&self, uploader: Principal) -> Result<Vec<Attachment>> {
        let (user, agent) = uploader_columns(uploader);
        let rows = sqlx::query_as::<_, AttachmentRow>(&sql::uploaded_by())
            .bind(user)
            .bind(agent)
            .fetch_all(&self.readers)
            .await?;
        to_attachments(rows)
    }
}
