//! Attachments: uploads in resumable pieces, the check of a complete upload's content, who may read
//! an attachment, and the removal of uploads that never reached a message.
//!
//! An upload arrives as pieces (each HTTP request's body is one piece, stored as its own object
//! under the upload's prefix), so any node can take the next piece of an upload another node
//! started, and a connection that drops mid-body keeps what arrived. When the last byte is in, the
//! pieces are put together (bounded by `attachment_max_bytes`), the content is told from the bytes
//! ([`media::sniff`]), an image is decoded and re-encoded without its metadata with a thumbnail (the
//! one image pipeline, [`media::image`]), and the result replaces the pieces. Attaching to a message
//! happens in the message's own write (see [`crate::domain::tickets`]).

use crate::domain::media::{self, image::DecodeLimits};
use crate::error::{Error, Result, SizeUnit};
use crate::model::attachment::{
    piece_key, piece_offset, sanitise_name, Attachment, AttachmentKind, AttachmentState, NewAttachment, StoredContent,
};
use crate::model::ids::{AttachmentId, Principal};
use crate::model::object::ObjectKey;
use crate::model::time::{ms, now_ms, Millis};
use crate::ports::objects::Objects;
use crate::ports::store::attachments::{Attachments, Created, UploadLimits};
use crate::ports::store::tickets::Tickets;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Side of the square a thumbnail fits in, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Smallest piece that does not finish an upload: smaller ones are refused, so that an upload is
/// at most `attachment_max_bytes / MIN_PIECE` objects until it completes.
pub const MIN_PIECE: u64 = 16 * 1024;
/// Largest width or height of an image attachment.
const MAX_SIDE: u32 = 16_384;
/// How long to wait before starting another upload when too many are in progress.
const IN_PROGRESS_RETRY: Duration = Duration::from_secs(5);
const DAY_MS: Millis = 24 * 3600 * 1000;

/// The limits uploads are held to.
#[derive(Clone, Copy, Debug)]
pub struct UploadPolicy {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Bytes one person may upload per UTC day.
    pub bytes_per_day: u64,
    /// Uploads one person may have in progress.
    pub in_progress: u32,
    /// How long an upload that is on no message is kept.
    pub expiry: Duration,
    /// Largest image, in pixels.
    pub max_pixels: u64,
}

/// Which of an attachment's objects to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendition {
    /// The file as stored (an image after re-encoding).
    Original,
    /// An image's thumbnail (JPEG).
    Thumbnail,
}

/// Uploads, their content checks, and reads.
pub struct AttachmentDesk {
    store: Arc<dyn Attachments>,
    tickets: Arc<dyn Tickets>,
    objects: Arc<dyn Objects>,
    policy: UploadPolicy,
    /// Content checks running at once: each holds one file (and, for an image, its pixels) in
    /// memory, so their number bounds the memory uploads take.
    checks: Arc<Semaphore>,
}

impl AttachmentDesk {
    /// The desk over these ports. At most `concurrent_checks` content checks run at once.
    pub fn new(
        store: Arc<dyn Attachments>,
        tickets: Arc<dyn Tickets>,
        objects: Arc<dyn Objects>,
        policy: UploadPolicy,
        concurrent_checks: usize,
    ) -> Self {
        Self { store, tickets, objects, policy, checks: Arc::new(Semaphore::new(concurrent_checks.max(1))) }
    }

    /// The limits in force.
    pub fn policy(&self) -> UploadPolicy {
        self.policy
    }

    /// Starts an upload of `length` bytes named `name` (sanitised; `file` when absent).
    ///
    /// # Errors
    /// `bad_request` for a length of 0, `too_large` over the file limit, `upload_limit` when the
    /// person has too many uploads in progress or the day's bytes would go over the limit,
    /// `unavailable`.
    pub async fn start(&self, who: Principal, name: Option<&str>, length: u64) -> Result<Attachment> {
        if length == 0 {
            return Err(Error::BadRequest("an upload has at least 1 byte".into()));
        }
        self.check_length(length)?;
        let now = now_ms();
        let day_start = now - now.rem_euclid(DAY_MS);
        let limits = UploadLimits {
            max_in_progress: self.policy.in_progress,
            max_bytes_per_day: self.policy.bytes_per_day,
            day_start,
        };
        let new = NewAttachment {
            id: AttachmentId::generate(),
            uploader: who,
            name: sanitise_name(name.unwrap_or("")),
            length,
            created_at: now,
            expires_at: now.saturating_add(ms(self.policy.expiry)),
        };
        match self.store.create_attachment(&new, &limits).await? {
            Created::Created(attachment) => Ok(attachment),
            Created::TooManyInProgress => Err(Error::UploadLimit {
                reason: "too many uploads in progress: finish or cancel one first",
                retry_after: IN_PROGRESS_RETRY,
            }),
            Created::DailyBytesSpent { .. } => Err(Error::UploadLimit {
                reason: "the uploads of today are over the daily limit",
                retry_after: Duration::from_millis(u64::try_from(day_start + DAY_MS - now).unwrap_or(0)),
            }),
        }
    }

    fn check_length(&self, length: u64) -> Result<()> {
        if length > self.policy.max_bytes {
            return Err(Error::TooLarge {
                what: "attachment",
                size: usize::try_from(length).ok(),
                limit: usize::try_from(self.policy.max_bytes).unwrap_or(usize::MAX),
                unit: SizeUnit::Bytes,
            });
        }
        Ok(())
    }

    /// The upload as its uploader sees it.
    ///
    /// # Errors
    /// `not_found` when it does not exist or is someone else's; `unavailable`.
    pub async fn upload(&self, who: Principal, id: AttachmentId) -> Result<Attachment> {
        self.store.attachment(id).await?.filter(|a| a.uploader == who).ok_or(Error::NotFound("attachment"))
    }

    /// Adds the piece of the upload that starts at `offset`. The piece that completes the upload
    /// has its content checked before this returns: the attachment is then `stored`, or refused
    /// and removed.
    ///
    /// # Errors
    /// `not_found`; `conflict` when `offset` is not where the upload is (or it is complete);
    /// `too_large` for bytes beyond its length; `bad_request` for a piece under [`MIN_PIECE`] that
    /// does not complete it; for the completing piece, `unsupported_media` or `bad_image`;
    /// `unavailable`.
    pub async fn add_piece(&self, who: Principal, id: AttachmentId, offset: u64, piece: Bytes) -> Result<Attachment> {
        let upload = self.upload(who, id).await?;
        if upload.state != AttachmentState::Uploading || offset != upload.received {
            return Err(Error::Conflict("the upload offset is not where the upload is: ask for it (HEAD)"));
        }
        let len = piece.len() as u64;
        let end = offset.saturating_add(len);
        if end > upload.length {
            return Err(Error::TooLarge {
                what: "upload",
                size: usize::try_from(end).ok(),
                limit: usize::try_from(upload.length).unwrap_or(usize::MAX),
                unit: SizeUnit::Bytes,
            });
        }
        if len == 0 {
            return Ok(upload);
        }
        if len < MIN_PIECE && end < upload.length {
            return Err(Error::BadRequest(format!(
                "a piece that does not finish the upload has at least {MIN_PIECE} bytes"
            )));
        }
        self.objects.put(&piece_key(who, id, offset), piece).await?;
        metrics::counter!(crate::metrics::UPLOAD_BYTES).increment(len);
        // Two writers at one offset: one advances, the other is told where the upload is.
        let advanced = self
            .store
            .advance_upload(id, offset, end)
            .await?
            .ok_or(Error::Conflict("the upload offset is not where the upload is: ask for it (HEAD)"))?;
        if advanced.received < advanced.length {
            return Ok(advanced);
        }
        self.finish(advanced).await
    }

    /// Puts a complete upload's pieces together, checks the content and stores the result; a
    /// refused upload is removed with its pieces.
    async fn finish(&self, upload: Attachment) -> Result<Attachment> {
        let _permit = self.checks.acquire().await.map_err(|_| Error::Unavailable)?;
        let whole = self.assemble(&upload).await?;
        let checked = match check_content(whole, self.policy.max_pixels).await {
            Ok(checked) => checked,
            Err(refused) => {
                self.remove(&upload).await;
                return Err(refused);
            }
        };
        let thumbnail_key = match checked.thumbnail {
            Some(thumbnail) => {
                let key = upload.thumbnail_key();
                self.objects.put(&key, thumbnail).await?;
                Some(key)
            }
            None => None,
        };
        self.objects.put(&upload.object_key(), checked.bytes.clone()).await?;
        let content = StoredContent {
            media_type: checked.media_type,
            size: checked.bytes.len() as u64,
            dimensions: checked.dimensions,
            thumbnail_key,
        };
        let stored = self.store.finish_upload(upload.id, &content).await?.ok_or(Error::NotFound("attachment"))?;
        self.delete_pieces(&upload).await;
        metrics::counter!(crate::metrics::ATTACHMENTS_STORED, "kind" => content.media_type.kind().as_str())
            .increment(1);
        Ok(stored)
    }

    /// The upload's bytes from its pieces, in order.
    async fn assemble(&self, upload: &Attachment) -> Result<Bytes> {
        let mut pieces: Vec<(u64, ObjectKey)> = self
            .objects
            .list(&upload.prefix())
            .await?
            .into_iter()
            .filter_map(|key| piece_offset(&key).map(|offset| (offset, key)))
            .collect();
        pieces.sort_unstable_by_key(|(offset, _)| *offset);
        let mut whole = BytesMut::with_capacity(usize::try_from(upload.length).unwrap_or(0));
        for (offset, key) in pieces {
            // A piece left by a writer that lost the race for its offset lies inside the bytes.
            if offset != whole.len() as u64 {
                continue;
            }
            let piece = self.objects.get(&key).await?.ok_or(Error::Unavailable)?;
            whole.extend_from_slice(&piece);
        }
        if whole.len() as u64 != upload.length {
            return Err(Error::Internal(format!(
                "upload {} has {} of {} bytes in its pieces",
                upload.id,
                whole.len(),
                upload.length
            )));
        }
        Ok(whole.freeze())
    }

    /// Uploads a whole file in one request.
    ///
    /// # Errors
    /// As [`AttachmentDesk::start`] and the completing piece of [`AttachmentDesk::add_piece`].
    pub async fn upload_whole(&self, who: Principal, name: Option<&str>, bytes: Bytes) -> Result<Attachment> {
        let upload = self.start(who, name, bytes.len() as u64).await?;
        self.add_piece(who, upload.id, 0, bytes).await
    }

    /// Cancels an upload, or removes a stored attachment that is on no message.
    ///
    /// # Errors
    /// `not_found`; `wrong_state` for an attachment on a message; `unavailable`.
    pub async fn cancel(&self, who: Principal, id: AttachmentId) -> Result<()> {
        let upload = self.upload(who, id).await?;
        if upload.state == AttachmentState::Attached {
            return Err(Error::WrongState("the attachment is on a message"));
        }
        self.remove(&upload).await;
        Ok(())
    }

    /// An attachment's bytes for someone allowed to read it: its uploader, and once it is on a
    /// message, the ticket's user and every agent (who may read every ticket's messages). Anyone
    /// else learns nothing, not even that it exists.
    ///
    /// # Errors
    /// `not_found` (also for an upload still in progress, and a thumbnail of a file that is no
    /// image); `unavailable`.
    pub async fn read(&self, who: Principal, id: AttachmentId, rendition: Rendition) -> Result<(Attachment, Bytes)> {
        let missing = Error::NotFound("attachment");
        let attachment = self.store.attachment(id).await?.ok_or(Error::NotFound("attachment"))?;
        if !self.may_read(who, &attachment).await? {
            return Err(missing);
        }
        let content = attachment.content.as_ref().ok_or(Error::NotFound("attachment"))?;
        let key = match rendition {
            Rendition::Original => attachment.object_key(),
            Rendition::Thumbnail if content.media_type.kind() == AttachmentKind::Image => {
                content.thumbnail_key.clone().ok_or(Error::NotFound("attachment"))?
            }
            Rendition::Thumbnail => return Err(missing),
        };
        let bytes = self.objects.get(&key).await?.ok_or(Error::NotFound("attachment"))?;
        Ok((attachment, bytes))
    }

    async fn may_read(&self, who: Principal, attachment: &Attachment) -> Result<bool> {
        if attachment.uploader == who {
            return Ok(true);
        }
        let Some(ticket) = attachment.ticket_id else { return Ok(false) };
        Ok(match who {
            Principal::Agent(_) => true,
            Principal::User(user) => self.tickets.ticket(ticket).await?.is_some_and(|t| t.user_id == user),
        })
    }

    /// Removes up to `limit` uploads that expired before `now` without reaching a message, with
    /// their objects. Returns how many went.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn purge_expired(&self, now: Millis, limit: u32) -> Result<usize> {
        let expired = self.store.expired_attachments(now, limit).await?;
        for upload in &expired {
            self.remove(upload).await;
        }
        if !expired.is_empty() {
            metrics::counter!(crate::metrics::ATTACHMENTS_EXPIRED).increment(expired.len() as u64);
        }
        Ok(expired.len())
    }

    /// Deletes an attachment's record, then every object under its prefix. An object left by a
    /// failed delete is only bytes without a record: nothing reads it, and the account's deletion
    /// empties the whole uploader prefix.
    async fn remove(&self, upload: &Attachment) {
        if let Err(e) = self.store.delete_attachment(upload.id).await {
            tracing::warn!(attachment_id = %upload.id, error = %e, "could not delete an attachment's record");
            return;
        }
        self.delete_objects(&upload.prefix(), |_| true).await;
    }

    async fn delete_pieces(&self, upload: &Attachment) {
        self.delete_objects(&upload.prefix(), |key| piece_offset(key).is_some()).await;
    }

    async fn delete_objects(&self, prefix: &ObjectKey, which: impl Fn(&ObjectKey) -> bool) {
        let keys = match self.objects.list(prefix).await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(error = %e, "could not list an attachment's objects");
                return;
            }
        };
        for key in keys.iter().filter(|k| which(k)) {
            if let Err(e) = self.objects.delete(key).await {
                tracing::warn!(error = %e, "could not delete an attachment's object");
            }
        }
    }
}

/// What a complete upload turned out to be.
struct Checked {
    media_type: crate::model::attachment::MediaType,
    bytes: Bytes,
    dimensions: Option<crate::model::attachment::Dimensions>,
    thumbnail: Option<Bytes>,
}

/// Tells the content from the bytes; an image is decoded (within the pixel limit) and re-encoded
/// without metadata, with a thumbnail, on a blocking thread.
async fn check_content(whole: Bytes, max_pixels: u64) -> Result<Checked> {
    let media_type = media::sniff(&whole).ok_or(Error::UnsupportedMedia(
        "the file is not of an accepted type: JPEG, PNG, WebP, PDF or plain text (told by its content)",
    ))?;
    if media_type.kind() != AttachmentKind::Image {
        return Ok(Checked { media_type, bytes: whole, dimensions: None, thumbnail: None });
    }
    let limits = DecodeLimits { max_side: MAX_SIDE, max_pixels };
    let reencoded = tokio::task::spawn_blocking(move || media::image::reencode(&whole, limits, THUMBNAIL_SIDE))
        .await
        .map_err(|e| Error::Internal(format!("image task: {e}")))??;
    Ok(Checked {
        media_type: reencoded.media_type,
        bytes: Bytes::from(reencoded.bytes),
        dimensions: Some(reencoded.dimensions),
        thumbnail: Some(Bytes::from(reencoded.thumbnail)),
    })
}
