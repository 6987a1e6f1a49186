//! The [`Objects`] port over the `object_store` crate: a local folder (the embedded default) or an
//! S3-compatible bucket, chosen by the configuration ([`ObjectStoreSpec`]).

use crate::config::{Config, ObjectStoreSpec};
use crate::error::{Error, Result};
use crate::model::object::ObjectKey;
use crate::ports::objects::{ObjectRead, Objects};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Objects in a local folder or an S3-compatible bucket.
#[derive(Debug)]
pub struct StoredObjects {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
}

/// Opens the object store the configuration names: `attachments_dir` (created when missing) unless
/// `object_store_url` names a bucket.
///
/// # Errors
/// The folder cannot be created, or the bucket settings are not usable. Nothing is contacted
/// here: an unreachable bucket shows in readiness and in the calls that need it.
pub fn open(config: &Config) -> anyhow::Result<StoredObjects> {
    let spec = config.object_store_spec().map_err(|e| anyhow::anyhow!("object_store_url: {e}"))?;
    match spec {
        ObjectStoreSpec::Folder(dir) => StoredObjects::folder(&dir),
        ObjectStoreSpec::S3 { bucket, prefix } => {
            let timeout = Duration::from_millis(config.object_store_timeout_ms);
            // `from_env` reads the standard `AWS_*` variables; the hub's own settings win over them.
            // Client options first: `with_allow_http` below is one of them.
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(&bucket)
                .with_client_options(ClientOptions::new().with_timeout(timeout).with_connect_timeout(timeout));
            if let Some(endpoint) = &config.s3_endpoint {
                builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
            }
            if let Some(region) = &config.s3_region {
                builder = builder.with_region(region);
            }
            if let Some(id) = &config.s3_access_key_id {
                builder = builder.with_access_key_id(&id.0);
            }
            if let Some(secret) = &config.s3_secret_access_key {
                builder = builder.with_secret_access_key(&secret.0);
            }
            let retry = RetryConfig {
                backoff: BackoffConfig { max_backoff: timeout / 4, ..BackoffConfig::default() },
                max_retries: 3,
                retry_timeout: timeout,
            };
            let store = builder.with_retry(retry).build().map_err(|e| anyhow::anyhow!("object_store_url: {e}"))?;
            let inner: Arc<dyn ObjectStore> = match prefix {
                Some(prefix) => Arc::new(PrefixStore::new(store, prefix.as_str())),
                None => Arc::new(store),
            };
            Ok(StoredObjects { inner, backend: "s3" })
        }
    }
}

impl StoredObjects {
    /// Objects as files under `dir`, created when missing. Empty folders left by deletions are
    /// removed, so a deleted object leaves nothing behind.
    ///
    /// # Errors
    /// The folder cannot be created or read.
    pub fn folder(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("attachments_dir {}: {e}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| anyhow::anyhow!("attachments_dir {}: {e}", dir.display()))?
            .with_automatic_cleanup(true);
        Ok(Self { inner: Arc::new(store), backend: "file" })
    }

    fn failed(&self, op: &'static str, e: object_store::Error) -> Error {
        tracing::warn!(backend = self.backend, op, error = %e, "object store call failed");
        Error::Unavailable
    }
}

fn path(key: &ObjectKey) -> Path {
    Path::from(key.as_str())
}

#[async_trait]
impl Objects for StoredObjects {
    async fn put(&self, key: &ObjectKey, bytes: Bytes) -> Result<()> {
        self.inner.put(&path(key), PutPayload::from_bytes(bytes)).await.map_err(|e| self.failed("put", e))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>> {
        let read = async { self.inner.get(&path(key)).await?.bytes().await };
        match read.await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("get", e)),
        }
    }

    async fn read(&self, key: &ObjectKey, range: Option<std::ops::Range<u64>>) -> Result<Option<ObjectRead>> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        match self.inner.get_opts(&path(key), options).await {
            Ok(got) => {
                let (size, range) = (got.meta.size, got.range.clone());
                let backend = self.backend;
                let chunks = got
                    .into_stream()
                    .map(move |chunk| {
                        chunk.map_err(|e| {
                            tracing::warn!(backend, op = "read", error = %e, "object store read failed mid-way");
                            Error::Unavailable
                        })
                    })
                    .boxed();
                Ok(Some(ObjectRead { chunks, range, size }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("read", e)),
        }
    }

    async fn size(&self, key: &ObjectKey) -> Result<Option<u64>> {
        match self.inner.head(&path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("head", e)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match self.inner.delete(&path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("delete", e)),
        }
    }

    async fn list(&self, prefix: &ObjectKey) -> Result<Vec<ObjectKey>> {
        let metas: Vec<_> =
            self.inner.list(Some(&path(prefix))).try_collect().await.map_err(|e| self.failed("list", e))?;
        // A file the hub did not write (an editor's backup in the folder) has no valid key: skipped.
        Ok(metas.iter().filter_map(|m| ObjectKey::parse(m.location.as_ref()).ok()).collect())
    }

    async fn ping(&self) -> Result<()> {
        // Any answer but a failure will do: a key that is never written.
        self.size(&ObjectKey::parse("ping").map_err(Error::Internal)?).await.map(drop)
    }

    fn backend(&self) -> &'static str {
        self.backend
    }
}
