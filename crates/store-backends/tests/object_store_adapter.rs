//! `ObjectStoreAdapter` against object_store's own tests of `ObjectStore` implementations (its
//! `integration` module), and against what those leave out, on the memory and local backends and on
//! the SFTP test server that `cargo xtask test` (or `cargo xtask servers`) starts.
//!
//! Of the module's public functions, five are not called; docs/object-store.md says why, one by one:
//! - `multipart`, `multipart_with_opts` and `multipart_put_part_out_of_order` take a `MultipartStore`
//!   (parts put by index, in any order, and stitched at the end). The adapter does not implement it: a
//!   Store writes an object in one pass, front to back, so parts by index would have to wait somewhere
//!   until the parts before them came, in memory without bound or as objects the listings show.
//! - `list_paginated` takes a `PaginatedListStore` (pages of at most so many keys, from a token, with
//!   partial-name prefixes). The adapter does not implement it: a Store lists a folder whole, so every
//!   page would walk the whole listing again.
//! - `response_extensions` (object_store's `reqwest` feature) checks that the extensions of HTTP
//!   responses reach the results. It needs a store built on object_store's HTTP client; the adapter
//!   makes no HTTP requests of its own.
#![cfg(feature = "object-store-adapter")]

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::integration;
use object_store::path::Path;
use object_store::{Error, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
use store_backends::ObjectStoreAdapter;
use store_core::Store;

/// An adapter for one test, and what must live as long as it. Each backend's `fresh(test name)` makes one,
/// on an empty store of its own.
struct Fixture {
    adapter: ObjectStoreAdapter,
    _dir: Option<tempfile::TempDir>,
}

/// One `#[tokio::test]` per function of object_store's `integration` module that the adapter passes,
/// each on the fresh, empty store `$make(test name)` returns, with the attributes given (e.g. to ignore
/// them when a server is not running).
macro_rules! integration_tests {
    ($make:path $(, #[$attr:meta])*) => {
        integration_tests! { @tests $make; [$(#[$attr])*];
            put_get_delete_list(store) { integration::put_get_delete_list(store).await }
            put_get_attributes(store) { integration::put_get_attributes(store).await }
            get_opts(store) { integration::get_opts(store).await }
            // Conditional writes (`PutMode::Update`) work on every backend: the Store's `WriteMode::IfMatch`.
            put_opts(store) { integration::put_opts(store, true).await }
            stream_get(store) { integration::stream_get(store).await }
            list_uses_directories_correctly(store) { integration::list_uses_directories_correctly(store).await }
            list_with_delimiter(store) { integration::list_with_delimiter(store).await }
            list_with_offset_exclusivity(store) { integration::list_with_offset_exclusivity(store).await }
            get_nonexistent_object(store) {
                let err = integration::get_nonexistent_object(store, None).await.unwrap_err();
                assert!(matches!(err, Error::NotFound { .. }), "{err}");
            }
            rename_and_copy(store) { integration::rename_and_copy(store).await }
            copy_if_not_exists(store) { integration::copy_if_not_exists(store).await }
            copy_rename_nonexistent_object(store) { integration::copy_rename_nonexistent_object(store).await }
            multipart_out_of_order(store) { integration::multipart_out_of_order(store).await }
            // Of two uploads to one path, the one completed last wins (`false` would ask that it fail).
            multipart_race_condition(store) { integration::multipart_race_condition(store, true).await }
        }
        adapter_tests!($make $(, #[$attr])*);
    };
    (@tests $make:path; $attrs:tt; $($name:ident($store:ident) $body:block)*) => {
        $( integration_tests!(@one $make; $attrs; $name($store) $body); )*
    };
    (@one $make:path; [$(#[$attr:meta])*]; $name:ident($store:ident) $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() {
            let fixture = $make(stringify!($name)).await;
            let $store = &fixture.adapter;
            $body
        }
    };
}

/// One `#[tokio::test]` per check of this file that object_store's module leaves out, as
/// `integration_tests!` makes them.
macro_rules! adapter_tests {
    ($make:path $(, #[$attr:meta])*) => {
        adapter_tests!(@each $make; [$(#[$attr])*];
            renames_never_replace_unless_asked, an_upload_dropped_or_refused_stores_nothing,
            reads_agree_with_their_metadata, heads_and_empty_ranges_read_no_bytes,
            attributes_and_versions_are_not_implemented, errors_name_the_path_and_keep_the_cause);
    };
    (@each $make:path; $attrs:tt; $($check:ident),*) => {
        $( adapter_tests!(@one $make; $attrs; $check); )*
    };
    (@one $make:path; [$(#[$attr:meta])*]; $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $check() {
            let fixture = $make(stringify!($check)).await;
            crate::$check(&fixture.adapter).await;
        }
    };
}

async fn read(store: &ObjectStoreAdapter, path: &str) -> Bytes {
    store.get(&Path::from(path)).await.unwrap().bytes().await.unwrap()
}

/// `rename_if_not_exists` (which object_store's module does not test) leaves an existing target alone;
/// both renames move the object, in one call.
async fn renames_never_replace_unless_asked(store: &ObjectStoreAdapter) {
    let (a, b, nested) = (Path::from("a.txt"), Path::from("b.txt"), Path::from("new/folder/c.txt"));
    store.put(&a, "a".into()).await.unwrap();
    store.put(&b, "b".into()).await.unwrap();
    let err = store.rename_if_not_exists(&a, &b).await.unwrap_err();
    assert!(matches!(&err, Error::AlreadyExists { path, .. } if path == "b.txt"), "{err}");
    assert_eq!((read(store, "a.txt").await, read(store, "b.txt").await), ("a".into(), "b".into()));
    store.rename_if_not_exists(&a, &nested).await.unwrap();
    assert!(matches!(store.head(&a).await.unwrap_err(), Error::NotFound { .. }));
    store.rename(&nested, &b).await.unwrap();
    assert_eq!(read(store, "b.txt").await, "a");
    assert!(matches!(store.head(&nested).await.unwrap_err(), Error::NotFound { .. }));
}

/// An upload dropped before `complete` stores nothing and leaves nothing behind; one that is finished
/// refuses more parts and a second `complete`.
async fn an_upload_dropped_or_refused_stores_nothing(store: &ObjectStoreAdapter) {
    let path = Path::from("dropped.bin");
    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part(PutPayload::from(vec![1u8; 1 << 20])).await.unwrap();
    drop(upload);
    let mut left = Vec::new();
    for _ in 0..100 {
        left = store.store().leftovers(None).await.unwrap();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, [], "the dropped upload's write cleaned up after itself");
    assert!(matches!(store.head(&path).await.unwrap_err(), Error::NotFound { .. }));
    assert_eq!(store.list(None).try_collect::<Vec<_>>().await.unwrap(), []);

    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part("ab".into()).await.unwrap();
    upload.put_part("cd".into()).await.unwrap();
    let written = upload.complete().await.unwrap();
    assert_eq!(store.head(&path).await.unwrap().e_tag, written.e_tag);
    assert!(matches!(upload.put_part("late".into()).await.unwrap_err(), Error::Generic { .. }));
    assert!(matches!(upload.complete().await.unwrap_err(), Error::Generic { .. }));
    assert_eq!(read(store, "dropped.bin").await, "abcd");
}

/// A read's metadata describes the bytes it returns, even while the object is being replaced:
/// objects of `n` bytes, each byte `n`, are written over one another, a millisecond apart, as it is read.
async fn reads_agree_with_their_metadata(store: &ObjectStoreAdapter) {
    let path = Path::from("changing.bin");
    store.put(&path, vec![1u8].into()).await.unwrap();
    let writer = {
        let (store, path) = (store.clone(), path.clone());
        tokio::spawn(async move {
            for n in (2..=40u8).cycle().take(120) {
                store.put(&path, vec![n; usize::from(n)].into()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    while !writer.is_finished() {
        let got = store.get(&path).await.unwrap();
        let (size, e_tag) = (got.meta.size, got.meta.e_tag.clone());
        let data = got.bytes().await.unwrap();
        assert_eq!(data.len() as u64, size, "{e_tag:?}: the bytes of another version than the metadata's");
        assert!(data.iter().all(|b| u64::from(*b) == size), "{e_tag:?}: a mix of versions");
    }
    writer.await.unwrap();
}

/// A `head` request, and a range that holds no bytes (of an empty object), read nothing.
async fn heads_and_empty_ranges_read_no_bytes(store: &ObjectStoreAdapter) {
    let (path, empty) = (Path::from("data.bin"), Path::from("empty.bin"));
    store.put(&path, "0123456789".into()).await.unwrap();
    let head = store.get_opts(&path, GetOptions { head: true, ..GetOptions::default() }).await.unwrap();
    assert_eq!((head.meta.size, head.range.clone()), (10, 0..10));
    assert_eq!(head.bytes().await.unwrap(), "");
    store.put(&empty, PutPayload::default()).await.unwrap();
    let options = GetOptions::new().with_range(Some(object_store::GetRange::Suffix(4)));
    let tail = store.get_opts(&empty, options).await.unwrap();
    assert_eq!((tail.meta.size, tail.range.clone()), (0, 0..0));
    assert_eq!(tail.bytes().await.unwrap(), "");
    let ranges = store.get_ranges(&path, &[0..2, 8..10, 3..4]).await.unwrap();
    assert_eq!(ranges, ["01", "89", "3"]);
}

/// Attributes and versioned reads fail with `NotImplemented`, storing nothing; tags are ignored.
async fn attributes_and_versions_are_not_implemented(store: &ObjectStoreAdapter) {
    use object_store::{Attribute, Attributes, PutMultipartOptions, PutOptions, TagSet};

    let path = Path::from("typed.json");
    let attributes = Attributes::from_iter([(Attribute::ContentType, "application/json")]);
    let options = PutOptions { attributes: attributes.clone(), ..PutOptions::default() };
    let err = store.put_opts(&path, "{}".into(), options).await.unwrap_err();
    assert!(matches!(err, Error::NotImplemented { .. }), "{err}");
    let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
    let err = store.put_multipart_opts(&path, options).await.unwrap_err();
    assert!(matches!(err, Error::NotImplemented { .. }), "{err}");
    assert!(matches!(store.head(&path).await.unwrap_err(), Error::NotFound { .. }));

    let mut tags = TagSet::default();
    tags.push("team", "finance");
    store.put_opts(&path, "{}".into(), PutOptions { tags, ..PutOptions::default() }).await.unwrap();
    let options = GetOptions { version: Some("1".into()), ..GetOptions::default() };
    let err = store.get_opts(&path, options).await.unwrap_err();
    assert!(matches!(err, Error::NotImplemented { .. }), "{err}");
}

/// Errors name the location and keep the Store's error, with its kind, as their source; what the Store
/// cannot hold is `Generic`, naming the backend.
async fn errors_name_the_path_and_keep_the_cause(store: &ObjectStoreAdapter) {
    let err = store.get(&Path::from("no/such.txt")).await.unwrap_err();
    let Error::NotFound { path, source } = &err else { panic!("{err}") };
    assert_eq!(path, "no/such.txt");
    let cause = source.downcast_ref::<store_core::Error>().expect("the Store's error");
    assert_eq!(cause.kind(), store_core::ErrorKind::NotFound, "{cause}");

    // A backslash is no separator for object_store, and no part of a Store path.
    let err = store.put(&Path::parse("a\\b.txt").unwrap(), "x".into()).await.unwrap_err();
    let Error::Generic { store: backend, source } = &err else { panic!("{err}") };
    assert_eq!(*backend, store.store().backend_kind());
    let cause = source.downcast_ref::<store_core::Error>().expect("the Store's error");
    assert_eq!(cause.kind(), store_core::ErrorKind::InvalidPath, "{cause}");
}

#[cfg(feature = "memory")]
mod memory {
    use std::future::{Ready, ready};

    use store_backends::MemoryBackend;

    use super::*;

    fn fresh(_: &str) -> Ready<Fixture> {
        ready(Fixture { adapter: ObjectStoreAdapter::new(Store::new(MemoryBackend::new())), _dir: None })
    }

    integration_tests!(fresh);
}

#[cfg(feature = "local")]
mod local {
    use std::future::{Ready, ready};

    use store_backends::LocalBackend;

    use super::*;

    /// Below a root folder (`lake`), in a folder of its own.
    fn fresh(_: &str) -> Ready<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap()).child(&"lake".parse().unwrap());
        ready(Fixture { adapter: ObjectStoreAdapter::new(store), _dir: Some(dir) })
    }

    integration_tests!(fresh);
}

#[cfg(feature = "sftp")]
mod sftp {
    use store_backends::{SftpAuth, SftpBackend, SftpConfig, SftpHostKey};

    use super::*;

    fn env(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `cargo xtask servers` or export it"))
    }

    fn config(auth: SftpAuth) -> SftpConfig {
        SftpConfig {
            port: env("DRS_TEST_SFTP_PORT").parse().expect("DRS_TEST_SFTP_PORT is a port number"),
            host_key: SftpHostKey::KnownHosts(env("DRS_TEST_SFTP_KNOWN_HOSTS").into()),
            ..SftpConfig::new(env("DRS_TEST_SFTP_HOST"), env("DRS_TEST_SFTP_USER"), auth, env("DRS_TEST_SFTP_ROOT"))
        }
    }

    /// On the test server, logged in with its key, in a folder no other test uses.
    async fn fresh(name: &str) -> Fixture {
        let auth = SftpAuth::PrivateKey { path: env("DRS_TEST_SFTP_KEY").into(), passphrase: None };
        let backend = SftpBackend::connect(config(auth)).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let store = store_core::conformance::isolated(&Store::new(backend), &format!("object-store-{name}"));
        Fixture { adapter: ObjectStoreAdapter::new(store), _dir: None }
    }

    integration_tests!(
        fresh,
        #[cfg_attr(not(test_sftp), ignore = "no SFTP test server: run `cargo xtask test` (or `cargo xtask servers`)")]
    );

    #[tokio::test]
    #[cfg_attr(not(test_sftp), ignore = "no SFTP test server: run `cargo xtask test` (or `cargo xtask servers`)")]
    async fn display_and_debug_show_no_password() {
        let password = env("DRS_TEST_SFTP_PASSWORD");
        let backend = SftpBackend::connect(config(SftpAuth::Password(password.as_str().into()))).await.unwrap();
        let adapter = ObjectStoreAdapter::new(Store::new(backend).child(&"lake".parse().unwrap()));
        assert_eq!(adapter.to_string(), "ObjectStoreAdapter(sftp, root \"lake\")");
        let debug = format!("{adapter:?}");
        assert!(debug.contains(&env("DRS_TEST_SFTP_HOST")) && !debug.contains(&password), "{debug}");
    }
}
