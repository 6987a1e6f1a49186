//! The conformance checks every [`Objects`] store passes, run by `tests/objects.rs` against a local
//! folder always and against a real S3-compatible server. Each check works under a key prefix of
//! its own, so checks can share one store.
//!
//! `run_all` takes a function that opens a new handle on the same store each time it is called:
//! two handles stand for two nodes of a cluster, which must see each other's objects.

use anapars_hub::error::Result;
use anapars_hub::model::object::ObjectKey;
use anapars_hub::ports::objects::Objects;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

/// Writers started at once by the concurrency checks.
const RACERS: usize = 16;

/// A prefix no other check uses.
fn prefix(check: &str) -> ObjectKey {
    key(&format!("conformance/{check}-{}", uuid::Uuid::new_v4().simple()))
}

/// `prefix/name`.
fn under(prefix: &ObjectKey, name: &str) -> ObjectKey {
    key(&format!("{prefix}/{name}"))
}

fn key(text: &str) -> ObjectKey {
    ObjectKey::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Bytes that differ from one position to the next, so that a truncated or shifted copy is noticed.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect::<Vec<u8>>().into()
}

/// An object comes back byte for byte with its size: empty, small, binary and several MiB.
pub async fn put_then_get_round_trips_the_bytes(objects: Arc<dyn Objects>) -> Result<()> {
    let p = prefix("round-trip");
    for (name, bytes) in [
        ("empty", Bytes::new()),
        ("small.txt", Bytes::from_static("سلام، hello\n".as_bytes())),
        ("binary", pattern(70_000, 7)),
        ("photo.jpg", pattern(6 << 20, 3)),
    ] {
        let k = under(&p, name);
        objects.put(&k, bytes.clone()).await?;
        assert_eq!(objects.size(&k).await?, Some(bytes.len() as u64), "{name}: size");
        let back = objects.get(&k).await?.unwrap_or_else(|| panic!("{name}: stored, then not found"));
        assert!(back == bytes, "{name}: {} bytes stored, {} different bytes read back", bytes.len(), back.len());
    }
    Ok(())
}

/// Reading streams the bytes, whole or a range of them, with the object's size; a missing key is
/// `None`.
pub async fn reads_stream_the_whole_or_a_range(objects: Arc<dyn Objects>) -> Result<()> {
    use futures_util::TryStreamExt;
    let k = under(&prefix("read"), "photo.jpg");
    let bytes = pattern(3 << 20, 5);
    objects.put(&k, bytes.clone()).await?;
    let whole = objects.read(&k, None).await?.expect("stored");
    assert_eq!((whole.size, whole.range.clone()), (bytes.len() as u64, 0..bytes.len() as u64));
    let chunks: Vec<Bytes> = whole.chunks.try_collect().await?;
    assert!(chunks.concat() == bytes, "the stream holds the object's bytes");
    let part = objects.read(&k, Some(1_000..2_000_000)).await?.expect("stored");
    assert_eq!((part.size, part.range.clone()), (bytes.len() as u64, 1_000..2_000_000));
    let chunks: Vec<Bytes> = part.chunks.try_collect().await?;
    assert!(chunks.concat() == bytes[1_000..2_000_000], "the range holds those bytes");
    assert!(objects.read(&under(&prefix("read"), "never-written"), None).await?.is_none());
    Ok(())
}

/// A key that was never written is absent for `get` and `size`, and deleting it succeeds.
pub async fn a_missing_object_is_none_and_deleting_it_succeeds(objects: Arc<dyn Objects>) -> Result<()> {
    let k = under(&prefix("missing"), "never-written");
    assert!(objects.get(&k).await?.is_none());
    assert_eq!(objects.size(&k).await?, None);
    objects.delete(&k).await?;
    Ok(())
}

/// A second write replaces the object whole: a shorter object leaves no tail of the longer one.
pub async fn put_replaces_the_whole_object(objects: Arc<dyn Objects>) -> Result<()> {
    let k = under(&prefix("replace"), "file");
    objects.put(&k, pattern(100_000, 1)).await?;
    objects.put(&k, Bytes::from_static(b"short")).await?;
    assert_eq!(objects.get(&k).await?.as_deref(), Some(&b"short"[..]));
    assert_eq!(objects.size(&k).await?, Some(5));
    Ok(())
}

/// A deleted object is gone for every call, and deleting it again succeeds.
pub async fn delete_removes_the_object(objects: Arc<dyn Objects>) -> Result<()> {
    let p = prefix("delete");
    let (gone, kept) = (under(&p, "gone"), under(&p, "kept"));
    objects.put(&gone, pattern(1000, 2)).await?;
    objects.put(&kept, pattern(1000, 4)).await?;
    objects.delete(&gone).await?;
    assert!(objects.get(&gone).await?.is_none());
    assert_eq!(objects.size(&gone).await?, None);
    assert_eq!(objects.list(&p).await?, vec![kept.clone()], "only the other object is left");
    objects.delete(&gone).await?;
    assert_eq!(objects.get(&kept).await?, Some(pattern(1000, 4)), "the neighbour is untouched");
    Ok(())
}

/// Listing goes by whole segments: `p` lists `p/a` and `p/b/c`, not a sibling `px/...`, nor
/// anything above.
pub async fn list_goes_by_whole_segments(objects: Arc<dyn Objects>) -> Result<()> {
    let p = prefix("list");
    let sibling = key(&format!("{p}x/other"));
    let inside = [key(&format!("{p}/a")), key(&format!("{p}/b/c")), key(&format!("{p}/b/d.jpg"))];
    for k in inside.iter().chain([&sibling]) {
        objects.put(k, Bytes::from_static(b"x")).await?;
    }
    let listed: BTreeSet<_> = objects.list(&p).await?.into_iter().collect();
    assert_eq!(listed, inside.iter().cloned().collect::<BTreeSet<_>>());
    let below: BTreeSet<_> = objects.list(&under(&p, "b")).await?.into_iter().collect();
    assert_eq!(below, inside[1..].iter().cloned().collect::<BTreeSet<_>>());
    assert!(objects.list(&under(&p, "none")).await?.is_empty());
    objects.delete(&sibling).await?;
    Ok(())
}

/// Deleting everything listed under a prefix leaves nothing under it (what an account deletion
/// relies on).
pub async fn deleting_what_is_listed_leaves_nothing(objects: Arc<dyn Objects>) -> Result<()> {
    let p = prefix("erase");
    for i in 0..5 {
        objects.put(&key(&format!("{p}/upload-{i}/original")), pattern(5000, i)).await?;
        objects.put(&key(&format!("{p}/upload-{i}/thumb.jpg")), pattern(500, i)).await?;
    }
    let listed = objects.list(&p).await?;
    assert_eq!(listed.len(), 10);
    for k in &listed {
        objects.delete(k).await?;
    }
    assert!(objects.list(&p).await?.is_empty());
    for k in &listed {
        assert!(objects.get(k).await?.is_none(), "{k} survived its deletion");
    }
    Ok(())
}

/// Concurrent writes of different keys all land; concurrent writes of one key leave exactly one
/// writer's bytes, whole.
pub async fn concurrent_writes_land_whole(objects: Arc<dyn Objects>) -> Result<()> {
    let p = prefix("concurrent");
    let shared = under(&p, "shared");
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (objects, own, shared) = (objects.clone(), key(&format!("{p}/own-{i}")), shared.clone());
            tokio::spawn(async move {
                objects.put(&own, pattern(200_000, i as u8)).await?;
                objects.put(&shared, pattern(300_000 + i * 1000, i as u8)).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer task panicked")?;
    }
    for i in 0..RACERS {
        let own = objects.get(&key(&format!("{p}/own-{i}"))).await?;
        assert!(own == Some(pattern(200_000, i as u8)), "own-{i} is not what its writer wrote");
    }
    let last = objects.get(&shared).await?.expect("the shared key holds an object");
    let writer = (last.len() - 300_000) / 1000;
    assert!(writer < RACERS && last == pattern(300_000 + writer * 1000, writer as u8), "a mix of writers' bytes");
    Ok(())
}

/// What one handle (node) stores, another reads, lists and deletes; the first then sees it gone.
pub async fn another_node_sees_the_same_objects(a: Arc<dyn Objects>, b: Arc<dyn Objects>) -> Result<()> {
    let p = prefix("nodes");
    let k = under(&p, "from-a");
    a.put(&k, pattern(12_345, 9)).await?;
    assert_eq!(b.get(&k).await?, Some(pattern(12_345, 9)));
    assert_eq!(b.list(&p).await?, vec![k.clone()]);
    b.delete(&k).await?;
    assert!(a.get(&k).await?.is_none());
    Ok(())
}

/// The store answers a ping and names its backend.
pub async fn ping_answers_and_backend_is_named(objects: Arc<dyn Objects>) -> Result<()> {
    objects.ping().await?;
    assert!(matches!(objects.backend(), "file" | "s3"), "{}", objects.backend());
    Ok(())
}

/// Runs every check against handles from `open`; panics naming each check that failed.
pub async fn run_all<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Objects>>,
{
    type Check = fn(Arc<dyn Objects>) -> futures_util::future::BoxFuture<'static, Result<()>>;
    let checks: [(&str, Check); 9] = [
        ("put_then_get_round_trips_the_bytes", |o| Box::pin(put_then_get_round_trips_the_bytes(o))),
        ("a_missing_object_is_none_and_deleting_it_succeeds", |o| {
            Box::pin(a_missing_object_is_none_and_deleting_it_succeeds(o))
        }),
        ("reads_stream_the_whole_or_a_range", |o| Box::pin(reads_stream_the_whole_or_a_range(o))),
        ("put_replaces_the_whole_object", |o| Box::pin(put_replaces_the_whole_object(o))),
        ("delete_removes_the_object", |o| Box::pin(delete_removes_the_object(o))),
        ("list_goes_by_whole_segments", |o| Box::pin(list_goes_by_whole_segments(o))),
        ("deleting_what_is_listed_leaves_nothing", |o| Box::pin(deleting_what_is_listed_leaves_nothing(o))),
        ("concurrent_writes_land_whole", |o| Box::pin(concurrent_writes_land_whole(o))),
        ("ping_answers_and_backend_is_named", |o| Box::pin(ping_answers_and_backend_is_named(o))),
    ];
    let mut failed = Vec::new();
    let store = open().await;
    let backend = store.backend();
    for (name, check) in checks {
        match tokio::spawn(check(store.clone())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(format!("{name}: {e:?}")),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    let other = open().await;
    match tokio::spawn(another_node_sees_the_same_objects(store, other)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failed.push(format!("another_node_sees_the_same_objects: {e:?}")),
        Err(e) => failed.push(format!("another_node_sees_the_same_objects: {e}")),
    }
    assert!(failed.is_empty(), "{backend}: conformance checks failed:\n{}", failed.join("\n"));
    eprintln!("{backend}: all 9 object store conformance checks passed");
}
