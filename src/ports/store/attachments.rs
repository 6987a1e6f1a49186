//! The storage port for attachments: the records of uploads, their progress, their checked
//! content and the ticket that carries them. The bytes themselves are in the object store
//! ([`crate::ports::objects`]).

use crate::error::Result;
use crate::model::attachment::{Attachment, NewAttachment, StoredContent};
use crate::model::ids::{AttachmentId, Principal};
use crate::model::time::Millis;
use async_trait::async_trait;

/// The limits a new upload is checked against, atomically with its creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads of one uploader in the `uploading` state at once.
    pub max_in_progress: u32,
    /// Bytes (announced lengths) of one uploader's uploads created since `day_start`.
    pub max_bytes_per_day: u64,
    /// Start of the current day's window.
    pub day_start: Millis,
}

impl UploadLimits {
    /// Why a new upload of `length` bytes is refused, for an uploader with `running` uploads in
    /// progress and `used` bytes of the day; `None` when it may start. Decided here once for every
    /// backend, which reads the two counts and inserts in one atomic step around it.
    pub fn refusal(&self, running: u64, used: u64, length: u64) -> Option<Created> {
        if running >= u64::from(self.max_in_progress) {
            Some(Created::TooManyInProgress)
        } else if used.saturating_add(length) > self.max_bytes_per_day {
            Some(Created::DailyBytesSpent { used })
        } else {
            None
        }
    }
}

/// The outcome of [`Attachments::create_attachment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The upload was created.
    Created(Attachment),
    /// The uploader has `max_in_progress` uploads running already; nothing was created.
    TooManyInProgress,
    /// This upload would take the uploader's bytes of the day over the limit; nothing was created.
    DailyBytesSpent {
        /// Bytes of the day used before this upload.
        used: u64,
    },
}

/// Attachments.
#[async_trait]
pub trait Attachments: Send + Sync {
    /// Creates an upload in the `uploading` state with nothing received, unless it breaks
    /// `limits`. The check and the insert are one atomic step: concurrent creations by one
    /// uploader never get past `max_in_progress` together. The day's bytes count the uploads that
    /// still exist, whatever their state.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the uploader does not exist.
    async fn create_attachment(&self, new: &NewAttachment, limits: &UploadLimits) -> Result<Created>;

    /// The attachment with this id.
    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>>;

    /// Moves an upload's received count from `from` to `to` (at most its length). `None` when it
    /// is not uploading or did not have exactly `from` bytes: of two writers at one offset, one
    /// wins.
    async fn advance_upload(&self, id: AttachmentId, from: u64, to: u64) -> Result<Option<Attachment>>;

    /// Records the checked content of a complete upload and makes it `stored`. `None` when it is
    /// not uploading or not complete.
    async fn finish_upload(&self, id: AttachmentId, content: &StoredContent) -> Result<Option<Attachment>>;

    /// Deletes the record and returns it (so that its objects can be deleted); `None` when there
    /// is no such attachment.
    async fn delete_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>>;

    /// Up to `limit` attachments that are not attached and whose `expires_at` is before `now`,
    /// oldest expiry first.
    async fn expired_attachments(&self, now: Millis, limit: u32) -> Result<Vec<Attachment>>;

    /// Every attachment `uploader` uploaded, oldest first.
    async fn uploaded_by(&self, uploader: Principal) -> Result<Vec<Attachment>>;
}
