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

/// Deleting an account leaves nothing of its attachments in the object store, in a folder and in
/// a bucket: the user's uploads with their thumbnails, anything else under the user's prefix (a
/// half-finished upload's bytes), and an agent's attachment on the user's ticket. Another user's
/// objects stay.
#[tokio::test]
async fn deleting_an_account_deletes_its_objects_on_every_backend() {
    use anapars_hub::model::attachment::{object_key, uploader_prefix, NewAttachment, StoredContent};
    use anapars_hub::model::attachment::{Dimensions, MediaType};
    use anapars_hub::model::ids::{AgentId, AttachmentId, Principal, TicketId, UserId};
    use anapars_hub::model::ticket::NewTicket;
    use anapars_hub::model::time::now_ms;
    use anapars_hub::ports::store::attachments::{Created, UploadLimits};

    let s3 = TestS3::start().await;
    let mut setups = vec![None];
    if let Some(s3) = &s3 {
        setups.push(Some(s3));
    }
    for s3 in setups {
        let backend = if s3.is_some() { "s3" } else { "file" };
        let hub = TestHub::start(TestDatabase::sqlite(), None, |c| {
            if let Some(s3) = s3 {
                s3.configure(c, Some("deletion"));
            }
        })
        .await;
        let services = hub.running.as_ref().unwrap().hub.clone();
        assert_eq!(services.objects.backend(), backend);
        let (store, objects) = (services.store.clone(), services.objects.clone());
        let token = hub.token(&common::hub::phone()).await;
        let (_, me) = hub.get("/v1/me", Some(&token)).await;
        let user = UserId(me["user_id"].as_str().unwrap().parse().unwrap());
        let (_, agent_id) = hub.agent("Sara").await;
        let agent = AgentId(agent_id.parse().unwrap());
        let other = UserId(
            hub.get("/v1/me", Some(&hub.token(&common::hub::phone()).await)).await.1["user_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        );
        let now = now_ms();
        let ticket = TicketId::generate();
        let new_ticket = NewTicket {
            id: ticket,
            user_id: user,
            subject: "the receipt".into(),
            body: "here it is".into(),
            attachments: Vec::new(),
            client_msg_id: "m-1".into(),
            created_at: now,
        };
        store.open_ticket(&new_ticket).await.unwrap();
        let limits = UploadLimits { max_in_progress: 10, max_bytes_per_day: u64::MAX, day_start: 0 };
        // Stores an attachment of `who` with its object and thumbnail; attaches it to the ticket
        // when asked. Returns the keys written.
        let upload = |who: Principal, attach: bool| {
            let (store, objects) = (store.clone(), objects.clone());
            async move {
                let id = AttachmentId::generate();
                let new = NewAttachment {
                    id,
                    uploader: who,
                    name: "a.jpg".into(),
                    length: 5,
                    created_at: now,
                    expires_at: now + 60_000,
                };
                let Created::Created(a) = store.create_attachment(&new, &limits).await.unwrap() else {
                    panic!("refused")
                };
                store.advance_upload(a.id, 0, 5).await.unwrap().unwrap();
                let thumb = a.thumbnail_key();
                let content = StoredContent {
                    media_type: MediaType::Jpeg,
                    size: 5,
                    dimensions: Some(Dimensions { width: 1, height: 1 }),
                    thumbnail_key: Some(thumb.clone()),
                };
                store.finish_upload(a.id, &content).await.unwrap().unwrap();
                if attach {
                    store.attach(&[a.id], ticket, who).await.unwrap().unwrap();
                }
                for key in [object_key(who, id), thumb.clone()] {
                    objects.put(&key, Bytes::from_static(b"bytes")).await.unwrap();
                }
                vec![object_key(who, id), thumb]
            }
        };
        let mut doomed = upload(Principal::User(user), true).await;
        doomed.extend(upload(Principal::User(user), false).await);
        doomed.extend(upload(Principal::Agent(agent), true).await);
        let half_finished = uploader_prefix(Principal::User(user)).join("part-0").unwrap();
        objects.put(&half_finished, Bytes::from_static(b"half")).await.unwrap();
        doomed.push(half_finished);
        let kept = upload(Principal::User(other), false).await;

        let (status, notice) = hub.post_as(&token, "/v1/me/deletion", json!({})).await;
        assert_eq!(status, 200, "{backend} {notice}");
        let confirm = json!({"confirmation": notice["confirmation"]});
        let (status, body) = hub.post_as(&token, "/v1/me/deletion/confirm", confirm).await;
        assert_eq!(status, 200, "{backend} {body}");

        for key in &doomed {
            assert!(objects.get(key).await.unwrap().is_none(), "{backend}: {key} outlived the account");
        }
        assert!(objects.list(&uploader_prefix(Principal::User(user))).await.unwrap().is_empty(), "{backend}");
        for key in &kept {
            assert!(objects.get(key).await.unwrap().is_some(), "{backend}: another user's {key} was deleted");
        }
    }
}
