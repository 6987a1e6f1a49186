//! Object storage: the bytes of attachments and their thumbnails, by [`ObjectKey`].
//!
//! Behind one narrow trait with one adapter over the `object_store` crate
//! ([`crate::adapters::objects`]), which holds either a local folder (the embedded default, for a
//! single node) or an S3-compatible bucket (for several nodes: every node reads what any node
//! stored). Both pass the conformance checks in `tests/conformance/objects.rs`.
//!
//! Keys are leaves: a key under which objects lie cannot hold an object itself (a folder is not a
//! file), and the hub's keys never ask it to.
//!
//! Whole objects only: a write replaces the object at once (readers see the old bytes or the new,
//! never a mix), and the hub's objects are bounded by its upload limits, so reading one into memory
//! is bounded too.

use crate::error::Result;
use crate::model::object::ObjectKey;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::ops::Range;

/// An object being read: its bytes as they arrive, so that serving a file holds a chunk at a
/// time, not the file.
pub struct ObjectRead {
    /// The bytes read, in order.
    pub chunks: BoxStream<'static, Result<Bytes>>,
    /// Which bytes of the object they are.
    pub range: Range<u64>,
    /// The whole object's size.
    pub size: u64,
}

/// A store of whole objects by key.
#[async_trait]
pub trait Objects: Send + Sync {
    /// Stores `bytes` under `key`, replacing any object there, atomically for readers.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer or fails to write.
    async fn put(&self, key: &ObjectKey, bytes: Bytes) -> Result<()>;

    /// The object's bytes; `None` when there is no object under `key`.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer.
    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>>;

    /// The object's bytes in `range` (all of them for `None`) as a stream; `None` when there is no
    /// object under `key`. The caller keeps `range` within the object (and not empty).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer (also when a chunk fails
    /// later, as the stream's item).
    async fn read(&self, key: &ObjectKey, range: Option<Range<u64>>) -> Result<Option<ObjectRead>>;

    /// The object's size in bytes, without reading it; `None` when there is no object under `key`.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer.
    async fn size(&self, key: &ObjectKey) -> Result<Option<u64>>;

    /// Deletes the object under `key`. Deleting what does not exist succeeds: the outcome is the
    /// same (S3 cannot tell the two apart either).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer.
    async fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// Every key under `prefix` by whole segments (`a/b` lists `a/b/c`, not `a/bc` nor `a/b`
    /// itself), in no particular order.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer.
    async fn list(&self, prefix: &ObjectKey) -> Result<Vec<ObjectKey>>;

    /// A cheap round trip to the store (for readiness).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the store does not answer.
    async fn ping(&self) -> Result<()>;

    /// `file` or `s3`, for logs and metrics.
    fn backend(&self) -> &'static str;
}
