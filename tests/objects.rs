//! The object store (attachments' bytes): the conformance suite against a local folder always and
//! against a real S3-compatible server (see `tests/common/s3.rs`; skipped with a message when none
//! can be started, unless `REQUIRE_S3` is set), plus what only one backend shows: a folder keeps
//! nothing of deleted objects, and an unreachable bucket is `unavailable` in time and in readiness.

mod common;
// The suite's checks are `pub` for the runner in this file, not a library API.
#[allow(unreachable_pub)]
#[path = "conformance/objects.rs"]
mod conformance;

use anapars_hub::adapters::objects::{open, StoredObjects};
use anapars_hub::model::object::ObjectKey;
use anapars_hub::ports::objects::Objects;
use anapars_hub::{Config, Error};
use bytes::Bytes;
use common::hub::TestHub;
use common::s3::TestS3;
use common::TestDatabase;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn key(text: &str) -> ObjectKey {
    ObjectKey::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_folder_conforms() {
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: opening creates it.
    let root = dir.path().join("data").join("attachments");
    conformance::run_all(|| {
        let root = root.clone();
        async move { Arc::new(StoredObjects::folder(&root).expect("open the folder")) as Arc<dyn Objects> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_bucket_conforms() {
    let Some(s3) = TestS3::start().await else { return };
    let mut config = Config::default();
    // Under a prefix, as a deployment sharing a bucket would; every check must hold there too.
    s3.configure(&mut config, Some("hub/node-objects"));
    conformance::run_all(|| {
        let config = config.clone();
        async move { Arc::new(open(&config).expect("open the bucket")) as Arc<dyn Objects> }
    })
    .await;
    // The prefix is honoured: the bucket holds nothing outside it.
    let mut bare = Config::default();
    s3.configure(&mut bare, None);
    let bucket = open(&bare).unwrap();
    let outside = bucket.list(&key("conformance")).await.unwrap();
    assert!(outside.is_empty(), "objects written outside the prefix: {outside:?}");
    assert!(!bucket.list(&key("hub/node-objects/conformance")).await.unwrap().is_empty());
}

/// A deleted object leaves no file and no emptied folder behind in the local folder: nothing of a
/// deleted upload stays on the disk.
#[tokio::test]
async fn a_folder_keeps_nothing_of_deleted_objects() {
    let dir = tempfile::tempdir().unwrap();
    let objects = StoredObjects::folder(dir.path()).unwrap();
    let keys = [key("users/u1/a1/original"), key("users/u1/a1/thumb.jpg"), key("users/u1/a2/original")];
    for k in &keys {
        objects.put(k, Bytes::from_static(b"bytes")).await.unwrap();
    }
    assert!(dir.path().join("users/u1/a1/original").is_file(), "objects are plain files under their keys");
    for k in objects.list(&key("users/u1")).await.unwrap() {
        objects.delete(&k).await.unwrap();
    }
    let left: Vec<_> = walk(dir.path());
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(entry.path());
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

/// A bucket whose service does not answer: calls fail with `unavailable` within the configured
/// timeout (not after the object store's default minutes of retries), and the hub reports itself
/// not ready, naming the object store.
#[tokio::test]
async fn an_unreachable_bucket_is_unavailable_in_time_and_not_ready() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let point = |config: &mut Config| {
        config.object_store_url = Some("s3://nowhere-bucket".into());
        config.s3_endpoint = Some(endpoint.clone());
        config.s3_access_key_id = Some(anapars_hub::config::Secret("k".into()));
        config.s3_secret_access_key = Some(anapars_hub::config::Secret("s".into()));
        config.object_store_timeout_ms = 500;
    };
    let mut config = Config::default();
    point(&mut config);
    let objects = open(&config).unwrap();
    let started = Instant::now();
    let outcome = objects.put(&key("a/b"), Bytes::from_static(b"x")).await;
    assert!(matches!(outcome, Err(Error::Unavailable)), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(objects.get(&key("a/b")).await, Err(Error::Unavailable)));

    let hub = TestHub::start(TestDatabase::sqlite(), None, point).await;
    assert_eq!(hub.get("/readyz", None).await, (503, json!({"status": "unavailable", "down": "objects"})));
}
