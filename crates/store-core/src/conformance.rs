//! The conformance suite every backend runs, unchanged.
//!
//! Each check takes a [`Store`] it may fill freely; [`conformance_tests!`](crate::conformance_tests)
//! gives every check its own unique child folder, so the suite can share one
//! server or bucket with other runs. A backend's test module says:
//!
//! ```ignore
//! async fn make_store() -> store_core::Store { /* connect to the backend */ }
//! store_core::conformance_tests!(make_store);
//! ```
//!
//! and gets one `#[tokio::test]` per check. Attributes after the function apply
//! to every generated test, e.g. to ignore them, with the reason, when the
//! backend's test server is not running:
//!
//! ```ignore
//! store_core::conformance_tests!(make_store, #[cfg_attr(not(test_s3), ignore = "no S3 test server")]);
//! ```

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

use crate::{ErrorKind, ListEntry, Metadata, Store, StorePath, UpdateVersion, WriteMode};

/// Generates one `#[tokio::test]` per conformance check, each on a fresh
/// child folder of the Store that the async function `$make_store` returns.
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:path $(, #[$attr:meta])* $(,)?) => {
        $crate::conformance_tests!(@each $make_store; [$(#[$attr])*];
            put_get, range_reads, head_metadata, exists_and_delete, list_recursive_and_one_level,
            object_metadata, copy, rename, create_only, large_object, streamed_large_object, failed_stream_leaves_nothing,
            unicode_names, concurrent_writers,
            concurrent_create_only, conditional_update, concurrent_conditional_updates, child_store_scoping,
            errors_name_operation_path_and_backend);
    };
    (@each $make_store:path; $attrs:tt; $($check:ident),* $(,)?) => {
        $( $crate::conformance_tests!(@one $make_store; $attrs; $check); )*
    };
    (@one $make_store:path; [$(#[$attr:meta])*]; $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $check() {
            let store = $crate::conformance::isolated(&$make_store().await, stringify!($check));
            $crate::conformance::$check(&store).await;
        }
    };
}

/// A child of `store` under a folder no other run uses.
pub fn isolated(store: &Store, check: &str) -> Store {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    store.child(&p(&format!("conformance/{check}-{nanos}-{}", std::process::id())))
}

fn p(path: &str) -> StorePath {
    StorePath::parse(path).expect("valid test path")
}

async fn put(store: &Store, path: &str, data: impl Into<Bytes>) {
    store.write(&p(path), data.into(), WriteMode::Overwrite).await.unwrap_or_else(|e| panic!("write {path}: {e}"));
}

async fn get(store: &Store, path: &str) -> Bytes {
    store.read(&p(path)).await.unwrap_or_else(|e| panic!("read {path}: {e}"))
}

async fn listed(store: &Store, prefix: Option<&str>, recursive: bool) -> BTreeSet<String> {
    store
        .list(prefix.map(p).as_ref(), recursive)
        .map_ok(|entry| match entry {
            ListEntry::Object(meta) => meta.path.to_string(),
            ListEntry::Prefix(prefix) => format!("{prefix}/"),
        })
        .try_collect()
        .await
        .expect("list")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A deterministic payload of `len` bytes.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<_>>().into()
}

/// Write, read back, overwrite, empty objects, and reading what is not there.
pub async fn put_get(store: &Store) {
    put(store, "a.txt", "hello").await;
    assert_eq!(get(store, "a.txt").await, "hello");
    put(store, "a.txt", "replaced").await;
    assert_eq!(get(store, "a.txt").await, "replaced");
    put(store, "nested/deeper/b.bin", Bytes::new()).await;
    assert_eq!(get(store, "nested/deeper/b.bin").await.len(), 0);
    let err = store.read(&p("missing.txt")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Byte ranges, including one that runs past the end.
pub async fn range_reads(store: &Store) {
    put(store, "r.bin", "0123456789").await;
    assert_eq!(store.read_range(&p("r.bin"), 0..4).await.unwrap(), "0123");
    assert_eq!(store.read_range(&p("r.bin"), 3..7).await.unwrap(), "3456");
    assert_eq!(store.read_range(&p("r.bin"), 8..100).await.unwrap(), "89");
    let missing = store.read_range(&p("nope.bin"), 0..1).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    assert!(store.read_range(&p("r.bin"), 5..5).await.is_err());
}

/// Size, modification time and store-relative path from `head`.
pub async fn head_metadata(store: &Store) {
    put(store, "h/meta.json", "{\"k\": 1}").await;
    let meta = store.head(&p("h/meta.json")).await.unwrap();
    assert_eq!(meta.size, 8);
    assert_eq!(meta.path.as_str(), "h/meta.json");
    assert!(meta.last_modified.is_some(), "backends record a modification time");
    let err = store.head(&p("h/none.json")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Metadata written with an object comes back with it, also for a multipart-sized
/// object, and is replaced with the object; backends that keep no metadata
/// refuse it and store nothing.
pub async fn object_metadata(store: &Store) {
    let metadata = Metadata::from([("crc32c".into(), "0a1b2c3d".into()), ("owner_team".into(), "data".into())]);
    let (path, big) = (p("m/with.bin"), p("m/big.bin"));
    let written = store.write_with_metadata(&path, "v1".into(), WriteMode::Overwrite, &metadata).await;
    if !store.stores_metadata() {
        assert!(written.is_err(), "a backend without metadata refuses it");
        assert!(!store.exists(&path).await.unwrap(), "a refused write stored nothing");
        assert_eq!(store.read_with_metadata(&p("m/none.bin")).await.unwrap_err().kind(), ErrorKind::NotFound);
        put(store, "m/plain.bin", "x").await;
        assert_eq!(store.read_with_metadata(&p("m/plain.bin")).await.unwrap(), (Bytes::from("x"), Metadata::new()));
        assert_eq!(streamed(store, "m/plain.bin").await, (Bytes::from("x"), Metadata::new()));
        assert_eq!(store.head_with_metadata(&p("m/plain.bin")).await.unwrap().1, Metadata::new());
        return;
    }
    written.expect("write with metadata");
    assert_eq!(store.read_with_metadata(&path).await.unwrap(), (Bytes::from("v1"), metadata.clone()));
    let (meta, head_metadata) = store.head_with_metadata(&path).await.unwrap();
    assert_eq!((meta.path.as_str(), meta.size, head_metadata), ("m/with.bin", 2, metadata.clone()));
    let data = pattern(9 << 20, 5);
    store.write_with_metadata(&big, data.clone(), WriteMode::Overwrite, &metadata).await.expect("large write");
    let (back, back_metadata) = store.read_with_metadata(&big).await.unwrap();
    assert!(back == data, "9 MiB object with metadata came back different");
    assert_eq!(back_metadata, metadata);
    let (back, back_metadata) = streamed(store, "m/big.bin").await;
    assert!(back == data, "9 MiB object with metadata streamed back different");
    assert_eq!(back_metadata, metadata);
    assert_eq!(streamed(store, "m/with.bin").await, (Bytes::from("v1"), metadata.clone()));
    put(store, "m/with.bin", "v2").await;
    assert_eq!(store.read_with_metadata(&path).await.unwrap(), (Bytes::from("v2"), Metadata::new()), "replaced");
    assert_eq!(store.head_with_metadata(&path).await.unwrap().1, Metadata::new(), "replaced");
    let err = store.read_with_metadata(&p("m/none.bin")).await.unwrap_err();
    assert_eq!((err.kind(), err.path()), (ErrorKind::NotFound, Some("m/none.bin")));
    let err = store.head_with_metadata(&p("m/none.bin")).await.unwrap_err();
    assert_eq!((err.kind(), err.path()), (ErrorKind::NotFound, Some("m/none.bin")));
}

/// An object read through `read_stream_with_metadata`, its size checked where given.
async fn streamed(store: &Store, path: &str) -> (Bytes, Metadata) {
    let object = store.read_stream_with_metadata(&p(path)).await.expect("streamed read with metadata");
    let chunks: Vec<Bytes> = object.chunks.try_collect().await.expect("stream");
    let data = Bytes::from(chunks.concat());
    if let Some(size) = object.size {
        assert_eq!(size, data.len() as u64, "size given up front");
    }
    (data, object.metadata)
}

/// `exists`, `delete`, and the missing-ok choice.
pub async fn exists_and_delete(store: &Store) {
    put(store, "d.txt", "x").await;
    assert!(store.exists(&p("d.txt")).await.unwrap());
    store.delete(&p("d.txt"), false).await.unwrap();
    assert!(!store.exists(&p("d.txt")).await.unwrap());
    let err = store.delete(&p("d.txt"), false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    store.delete(&p("d.txt"), true).await.unwrap();
}

/// Recursive and one-level listings, prefixes matched segment-wise.
pub async fn list_recursive_and_one_level(store: &Store) {
    for path in ["l/a.txt", "l/sub/b.txt", "l/sub/deep/c.txt", "lx/d.txt", "top.txt"] {
        put(store, path, "x").await;
    }
    assert_eq!(listed(store, Some("l"), true).await, set(&["l/a.txt", "l/sub/b.txt", "l/sub/deep/c.txt"]));
    assert_eq!(listed(store, Some("l"), false).await, set(&["l/a.txt", "l/sub/"]));
    assert_eq!(listed(store, None, false).await, set(&["l/", "lx/", "top.txt"]));
    assert_eq!(listed(store, None, true).await.len(), 5);
    assert!(listed(store, Some("nothing/here"), true).await.is_empty());
    let meta = store.list(Some(&p("lx")), true).try_collect::<Vec<_>>().await.unwrap();
    assert!(matches!(&meta[..], [ListEntry::Object(m)] if m.size == 1));
}

/// Copy, with and without overwrite.
pub async fn copy(store: &Store) {
    put(store, "c/src.txt", "source").await;
    store.copy(&p("c/src.txt"), &p("c/dst.txt"), false).await.unwrap();
    assert_eq!(get(store, "c/dst.txt").await, "source");
    assert_eq!(get(store, "c/src.txt").await, "source");
    put(store, "c/other.txt", "other").await;
    let err = store.copy(&p("c/other.txt"), &p("c/dst.txt"), false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(get(store, "c/dst.txt").await, "source");
    store.copy(&p("c/other.txt"), &p("c/dst.txt"), true).await.unwrap();
    assert_eq!(get(store, "c/dst.txt").await, "other");
    let err = store.copy(&p("c/none.txt"), &p("c/x.txt"), true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Rename, with and without overwrite.
pub async fn rename(store: &Store) {
    put(store, "m/a.txt", "a").await;
    store.rename(&p("m/a.txt"), &p("m/moved/b.txt"), false).await.unwrap();
    assert!(!store.exists(&p("m/a.txt")).await.unwrap());
    assert_eq!(get(store, "m/moved/b.txt").await, "a");
    put(store, "m/c.txt", "c").await;
    let err = store.rename(&p("m/c.txt"), &p("m/moved/b.txt"), false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(get(store, "m/c.txt").await, "c");
    store.rename(&p("m/c.txt"), &p("m/moved/b.txt"), true).await.unwrap();
    assert_eq!(get(store, "m/moved/b.txt").await, "c");
    assert!(!store.exists(&p("m/c.txt")).await.unwrap());
}

/// Create-only writes refuse an existing object and leave it untouched.
pub async fn create_only(store: &Store) {
    let path = p("once.txt");
    store.write(&path, "first".into(), WriteMode::CreateNew).await.unwrap();
    let err = store.write(&path, "second".into(), WriteMode::CreateNew).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.path(), Some("once.txt"));
    assert_eq!(get(store, "once.txt").await, "first");
}

/// A 24 MiB object round trip and a range from its middle.
pub async fn large_object(store: &Store) {
    let data = pattern(24 << 20, 7);
    put(store, "big.bin", data.clone()).await;
    let back = get(store, "big.bin").await;
    assert!(back == data, "24 MiB object came back different");
    let mid = (12 << 20) as u64;
    assert_eq!(
        store.read_range(&p("big.bin"), mid..mid + 4096).await.unwrap(),
        data.slice(12 << 20..(12 << 20) + 4096)
    );
    assert_eq!(store.head(&p("big.bin")).await.unwrap().size, 24 << 20);
}

/// A 40 MiB object written as a stream of 1 MiB chunks (multipart where the
/// backend has it) and read back as a stream, which stays ended once drained;
/// create-only streams refuse an existing object.
pub async fn streamed_large_object(store: &Store) {
    let data = pattern(40 << 20, 3);
    let chunks: Vec<crate::Result<Bytes>> = data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let path = p("streamed/big.bin");
    store.write_stream(&path, stream::iter(chunks).boxed(), WriteMode::Overwrite).await.expect("stream write");
    assert_eq!(store.head(&path).await.unwrap().size, data.len() as u64);
    let mut read = Vec::with_capacity(data.len());
    let mut pieces = store.read_stream(&path).await.expect("stream read");
    while let Some(piece) = pieces.next().await {
        read.extend_from_slice(&piece.expect("chunk"));
    }
    assert!(read == data, "streamed object came back different");
    assert!(pieces.next().await.is_none(), "a drained stream stays ended");
    let again = stream::iter(vec![Ok(Bytes::from_static(b"small"))]).boxed();
    let err = store.write_stream(&path, again, WriteMode::CreateNew).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let small = stream::iter(vec![Ok(Bytes::from_static(b"sm")), Ok(Bytes::from_static(b"all"))]).boxed();
    store.write_stream(&p("streamed/small.txt"), small, WriteMode::CreateNew).await.unwrap();
    assert_eq!(get(store, "streamed/small.txt").await, "small");
    let missing = store.read_stream(&p("streamed/none.bin")).await.err().expect("missing object");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
}

/// A stream that fails after several parts leaves no object, and keeps an old one as it was.
pub async fn failed_stream_leaves_nothing(store: &Store) {
    let failing = || {
        let parts = (0..12).map(|i| match i {
            11 => Err(crate::Error::new(ErrorKind::Other, "the producer failed")),
            _ => Ok(pattern(1 << 20, i as u8)),
        });
        stream::iter(parts.collect::<Vec<_>>()).boxed()
    };
    let err = store.write_stream(&p("half/new.bin"), failing(), WriteMode::Overwrite).await.unwrap_err();
    assert!(err.to_string().contains("the producer failed"), "{err}");
    assert!(!store.exists(&p("half/new.bin")).await.unwrap(), "a failed stream left an object");
    put(store, "half/old.bin", "old").await;
    assert!(store.write_stream(&p("half/old.bin"), failing(), WriteMode::Overwrite).await.is_err());
    assert_eq!(get(store, "half/old.bin").await, "old");
    assert_eq!(listed(store, Some("half"), true).await, set(&["half/old.bin"]), "no temporary is visible");
}

/// Non-ASCII and punctuation-heavy names survive write, read and list.
pub async fn unicode_names(store: &Store) {
    let names = [
        "ünï/cödé ✓.json",
        "spaces in/name with spaces.txt",
        "punct/a+b=c&d;e,f@g!h~i.txt",
        "per%cent/100%.txt",
        "日本/データ.bin",
    ];
    for (i, name) in names.iter().enumerate() {
        put(store, name, format!("n{i}")).await;
    }
    for (i, name) in names.iter().enumerate() {
        assert_eq!(get(store, name).await, format!("n{i}"), "{name}");
    }
    assert_eq!(listed(store, None, true).await, set(&names));
}

/// Writers racing on one path: every read sees exactly one writer's object, never a mix.
pub async fn concurrent_writers(store: &Store) {
    const WRITERS: u8 = 8;
    const SIZE: usize = 256 << 10;
    let path = p("race.bin");
    put(store, "race.bin", vec![0u8; SIZE]).await;
    let mut tasks = Vec::new();
    for id in 1..=WRITERS {
        let (writer, target) = (store.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            writer.write(&target, vec![id; SIZE].into(), WriteMode::Overwrite).await.map(|_| ())
        }));
        let (reader, target) = (store.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let seen = reader.read(&target).await?;
            assert_eq!(seen.len(), SIZE, "a reader saw a partial object");
            assert!(seen.iter().all(|b| *b == seen[0]), "a reader saw a mix of two writes");
            Ok(())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("concurrent op");
    }
    let last = get(store, "race.bin").await;
    assert!(last.len() == SIZE && (1..=WRITERS).contains(&last[0]) && last.iter().all(|b| *b == last[0]));
}

/// Create-only writers racing on one path: exactly one wins.
pub async fn concurrent_create_only(store: &Store) {
    let path = p("claim.txt");
    let tasks: Vec<_> = (0..8u8)
        .map(|id| {
            let (store, path) = (store.clone(), path.clone());
            tokio::spawn(async move { store.write(&path, vec![id].into(), WriteMode::CreateNew).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => winners += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}"),
        }
    }
    assert_eq!(winners, 1);
}

/// Compare-and-swap: a write at the version read succeeds and reports the next version; one at a
/// stale version, or of an object that is gone, fails with `Precondition` and changes nothing.
pub async fn conditional_update(store: &Store) {
    let path = p("cas/pointer.json");
    put(store, "cas/pointer.json", "v1").await;
    let (data, v1) = store.read_for_update(&path).await.expect("read for update");
    assert_eq!(data, "v1");
    assert_eq!(store.read_for_update(&path).await.unwrap().1, v1, "an unchanged object keeps its version");
    let written =
        store.write(&path, "v2".into(), WriteMode::IfMatch(v1.clone())).await.expect("IfMatch at the version read");
    assert_eq!(get(store, "cas/pointer.json").await, "v2");
    let (_, v2) = store.read_for_update(&path).await.unwrap();
    assert_ne!(v2, v1, "a replaced object has a new version");

    let err = store.write(&path, "stale".into(), WriteMode::IfMatch(v1.clone())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert_eq!(
        (err.operation(), err.path(), err.backend()),
        (Some("write"), Some("cas/pointer.json"), Some(store.backend_kind()))
    );
    assert_eq!(get(store, "cas/pointer.json").await, "v2", "a stale IfMatch changed the object");

    // What the write reported is what the next IfMatch accepts, without reading again.
    let written = store.write(&path, "v3".into(), WriteMode::IfMatch(UpdateVersion::from(written))).await;
    let written = written.expect("IfMatch at the version a write reported");
    assert_eq!(get(store, "cas/pointer.json").await, "v3");
    store.write(&path, "v4".into(), WriteMode::IfMatch(written.into())).await.expect("and again");
    assert_eq!(store.read_for_update(&path).await.unwrap().0, "v4");

    // An overwrite in between makes the version read stale too.
    let (_, before) = store.read_for_update(&path).await.unwrap();
    put(store, "cas/pointer.json", "plain").await;
    let err = store.write(&path, "late".into(), WriteMode::IfMatch(before)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert_eq!(get(store, "cas/pointer.json").await, "plain");

    // A deleted object, or one never written: nothing to replace, and nothing is created.
    let (_, last) = store.read_for_update(&path).await.unwrap();
    store.delete(&path, false).await.unwrap();
    let err = store.write(&path, "revived".into(), WriteMode::IfMatch(last)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert!(!store.exists(&path).await.unwrap(), "an IfMatch of a deleted object created it");
    let err = store.write(&p("cas/never.json"), "x".into(), WriteMode::IfMatch(v2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert!(!store.exists(&p("cas/never.json")).await.unwrap());
    let err = store.read_for_update(&p("cas/never.json")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // Conditional writes leave nothing else behind.
    assert_eq!(listed(store, Some("cas"), true).await, set(&[]));
    assert_eq!(store.leftovers(Some(&p("cas"))).await.unwrap(), []);
}

/// Read-modify-write loops racing on one counter, each retrying on `Precondition`: no update is lost.
pub async fn concurrent_conditional_updates(store: &Store) {
    const TASKS: u64 = 8;
    const INCREMENTS: u64 = 5;
    let path = p("cas/counter.txt");
    put(store, "cas/counter.txt", "0").await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, path) = (store.clone(), path.clone());
            tokio::spawn(async move {
                let mut conflicts = 0u64;
                for _ in 0..INCREMENTS {
                    loop {
                        let (data, version) = store.read_for_update(&path).await?;
                        let value: u64 = std::str::from_utf8(&data).expect("utf-8").parse().expect("a number");
                        let next = Bytes::from((value + 1).to_string());
                        match store.write(&path, next, WriteMode::IfMatch(version)).await {
                            Ok(_) => break,
                            Err(e) if e.kind() == ErrorKind::Precondition => conflicts += 1,
                            Err(e) => return Err(e),
                        }
                        assert!(conflicts < 10_000, "a writer made no progress");
                    }
                }
                Ok::<_, crate::Error>(conflicts)
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("conditional increments");
    }
    assert_eq!(get(store, "cas/counter.txt").await, (TASKS * INCREMENTS).to_string(), "an update was lost");
    assert_eq!(listed(store, Some("cas"), true).await, set(&["cas/counter.txt"]));
}

/// A child Store sees only its folder and speaks in paths relative to it.
pub async fn child_store_scoping(store: &Store) {
    let child = store.child(&p("team/a"));
    put(&child, "x/obj.txt", "child").await;
    assert_eq!(get(store, "team/a/x/obj.txt").await, "child");
    assert_eq!(listed(&child, None, true).await, set(&["x/obj.txt"]));
    put(store, "team/b/other.txt", "other").await;
    assert_eq!(listed(&child, None, true).await, set(&["x/obj.txt"]));
    assert_eq!(child.head(&p("x/obj.txt")).await.unwrap().path.as_str(), "x/obj.txt");
    assert!(child.uri(&p("x/obj.txt")).ends_with("team/a/x/obj.txt"), "{}", child.uri(&p("x/obj.txt")));
}

/// Errors carry the operation, the store-relative path and the backend kind.
pub async fn errors_name_operation_path_and_backend(store: &Store) {
    let err = store.read(&p("no/such/object.pkl")).await.unwrap_err();
    assert_eq!(err.operation(), Some("read"));
    assert_eq!(err.path(), Some("no/such/object.pkl"));
    assert_eq!(err.backend(), Some(store.backend_kind()));
    let text = err.to_string();
    assert!(text.contains("\"no/such/object.pkl\"") && text.contains(store.backend_kind()), "{text}");
    assert!(!text.contains("conformance/"), "errors must not leak the store root: {text}");
}
