//! The conformance suite against a real GCS server (fake-gcs-server behind the
//! test-side XML-API adapter in tests/servers, started by `cargo xtask test`).
#![cfg(feature = "gcs")]

use store_backends::{ClientConfig, GcsBackend, GcsConfig};
use store_core::Store;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the servers with `cargo xtask servers`"))
}

async fn make_store() -> Store {
    let config = GcsConfig {
        bucket: env("DRS_TEST_GCS_BUCKET"),
        base_url: Some(env("DRS_TEST_GCS_URL")),
        anonymous: true,
        client: ClientConfig { allow_http: true, ..Default::default() },
        ..Default::default()
    };
    Store::new(GcsBackend::new(config).expect("gcs backend"))
}

store_core::conformance_tests!(make_store, #[cfg_attr(not(test_gcs), ignore = "no GCS test server: run `cargo xtask test`")]);

#[test]
fn the_service_account_stays_out_of_debug() {
    let config = GcsConfig {
        bucket: "b".into(),
        service_account: Some(r#"{"private_key": "GCS-SECRET"}"#.into()),
        base_url: Some("https://user:URL-SECRET@gcs.example.org/?sig=URL-SECRET".into()),
        ..Default::default()
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("GCS-SECRET") && !debug.contains("URL-SECRET"), "{debug}");
    assert!(debug.contains(r#"base_url: Some("https://<redacted>@gcs.example.org/?<redacted>")"#), "{debug}");
}

/// Conditional writes compare the generation, which reads and writes report (the test server's proxy passes
/// `x-goog-generation` on and honours `x-goog-if-generation-match`); a generation of the past fails them even
/// with the right e-tag.
#[tokio::test]
#[cfg_attr(not(test_gcs), ignore = "no GCS test server: run `cargo xtask test`")]
async fn conditional_writes_compare_the_generation() {
    use store_core::{ErrorKind, UpdateVersion, WriteMode};

    let store = store_core::conformance::isolated(&make_store().await, "generation");
    let path = "pointer.json".parse().unwrap();
    let first = store.write(&path, "1".into(), WriteMode::Overwrite).await.unwrap();
    let (_, read) = store.read_for_update(&path).await.unwrap();
    let generation = read.version.clone().expect("a generation");
    assert!(generation.parse::<u64>().is_ok(), "{generation}");
    assert_eq!(first.version, read.version, "the write reports the generation a read sees");
    let head = store.head(&path).await.unwrap();
    assert_eq!((head.e_tag, head.version), (read.e_tag.clone(), read.version.clone()));
    let second = store.write(&path, "2".into(), WriteMode::IfMatch(read.clone())).await.unwrap();
    assert_ne!(second.version, read.version);
    // The same bytes again: the e-tag (an MD5) comes back, the generation does not.
    let third = store.write(&path, "1".into(), WriteMode::IfMatch(second.into())).await.unwrap();
    assert_eq!(third.e_tag, read.e_tag);
    let stale = UpdateVersion { e_tag: third.e_tag.clone(), version: read.version };
    let err = store.write(&path, "x".into(), WriteMode::IfMatch(stale)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert_eq!(store.read(&path).await.unwrap(), "1");
}
