//! The conformance suite against a real S3 server (moto, started by `cargo xtask test`).
#![cfg(feature = "s3")]

use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use store_backends::{ClientConfig, S3Backend, S3Config};
use store_core::Store;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the servers with `cargo xtask servers`"))
}

fn config() -> S3Config {
    S3Config {
        bucket: env("DRS_TEST_S3_BUCKET"),
        endpoint: Some(env("DRS_TEST_S3_ENDPOINT")),
        region: Some(env("DRS_TEST_S3_REGION")),
        access_key_id: Some(env("DRS_TEST_S3_KEY")),
        secret_access_key: Some(env("DRS_TEST_S3_SECRET").into()),
        client: ClientConfig { allow_http: true, ..Default::default() },
        ..Default::default()
    }
}

async fn make_store() -> Store {
    Store::new(S3Backend::new(config()).expect("s3 backend"))
}

store_core::conformance_tests!(make_store, #[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]);

#[test]
fn secrets_stay_out_of_debug_and_uris() {
    let config = S3Config {
        access_key_id: Some("AKID".into()),
        secret_access_key: Some("S3-SECRET".into()),
        session_token: Some("TOKEN".into()),
        endpoint: Some("https://user:URL-SECRET@s3.example.org/?X-Amz-Signature=URL-SECRET".into()),
        ..config_without_env()
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("S3-SECRET") && !debug.contains("TOKEN") && !debug.contains("URL-SECRET"), "{debug}");
    assert!(debug.contains(r#"endpoint: Some("https://<redacted>@s3.example.org/?<redacted>")"#), "{debug}");
    let store = Store::new(S3Backend::new(config).unwrap());
    assert!(!format!("{store:?}").contains("S3-SECRET"));
    assert_eq!(store.uri(&"a b/c.pkl".parse().unwrap()), "s3://bucket/a%20b/c.pkl");
}

fn config_without_env() -> S3Config {
    S3Config { bucket: "bucket".into(), region: Some("us-east-1".into()), ..Default::default() }
}

#[tokio::test]
#[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]
async fn plain_http_must_be_asked_for() {
    let config = S3Config { client: ClientConfig::default(), ..config() };
    let store = Store::new(S3Backend::new(config).expect("builds"));
    let err = store.read(&"x".parse().unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("http"), "{err}");
}

#[tokio::test]
#[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]
async fn an_unreachable_server_is_unavailable_after_bounded_retries() {
    let client = ClientConfig {
        allow_http: true,
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    // Port 9 (discard) is closed on loopback: every attempt is refused.
    let config = S3Config { endpoint: Some("http://127.0.0.1:9".into()), client, ..config() };
    let store = Store::new(S3Backend::new(config).unwrap());
    let err = store.read(&"x".parse().unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
#[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]
async fn a_write_to_a_missing_bucket_names_the_bucket() {
    use futures::StreamExt;
    use store_core::{ErrorKind, WriteMode};

    let bucket = format!("no-such-bucket-{}", std::process::id());
    let backend = S3Backend::new(S3Config { bucket: bucket.clone(), ..config() }).unwrap().with_multipart(5 << 20, 2);
    let store = Store::new(backend);
    let path = "a/b.bin".parse().unwrap();
    let chunks = || futures::stream::iter((0..3).map(|_| Ok(bytes::Bytes::from(vec![1u8; 4 << 20])))).boxed();
    let failures = [
        ("write", store.write(&path, "x".into(), WriteMode::Overwrite).await),
        ("create-only write", store.write(&path, "x".into(), WriteMode::CreateNew).await),
        ("multipart write", store.write_stream(&path, chunks(), WriteMode::Overwrite).await),
        ("create-only multipart write", store.write_stream(&path, chunks(), WriteMode::CreateNew).await),
    ];
    for (what, result) in failures {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: {err}");
        assert!(err.message().contains(&format!("the bucket {bucket:?} does not exist")), "{what}: {err}");
    }
}

#[tokio::test]
#[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]
async fn incomplete_uploads_killed_writers_leave_are_found_and_aborted() {
    let root = format!("leftovers-{}", std::process::id());
    // A writer that started an upload, sent a part and was killed.
    let raw = AmazonS3Builder::new()
        .with_bucket_name(env("DRS_TEST_S3_BUCKET"))
        .with_endpoint(env("DRS_TEST_S3_ENDPOINT"))
        .with_region(env("DRS_TEST_S3_REGION"))
        .with_access_key_id(env("DRS_TEST_S3_KEY"))
        .with_secret_access_key(env("DRS_TEST_S3_SECRET"))
        .with_allow_http(true)
        .build()
        .unwrap();
    let key = Path::from(format!("{root}/asset/x.pkl"));
    let upload = raw.create_multipart(&key).await.unwrap();
    raw.put_part(&key, &upload, 0, vec![7u8; 5 << 20].into()).await.unwrap();
    let outside = Path::from(format!("{root}-other/y.pkl"));
    let other = raw.create_multipart(&outside).await.unwrap();

    let store = Store::new(S3Backend::new(config()).unwrap()).child(&root.parse().unwrap());
    let found = store.leftovers(None).await.unwrap();
    assert_eq!(found.len(), 1, "only the upload under the store's root: {found:?}");
    assert_eq!((found[0].path.as_str(), found[0].id.as_str()), ("asset/x.pkl", upload.as_str()));
    let started = found[0].started.expect("S3 says when an upload was initiated");
    // moto reports one fixed time (2010-11-10) for every upload; real servers the real one.
    if started.elapsed().is_ok_and(|age| age < Duration::from_secs(600)) {
        assert_eq!(store.clean_up(None, Duration::from_secs(3600)).await.unwrap(), [], "too young to remove");
    }
    assert_eq!(store.clean_up(None, Duration::ZERO).await.unwrap(), found);
    assert_eq!(store.leftovers(None).await.unwrap(), []);
    let err = raw.complete_multipart(&key, &upload, vec![]).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. } | object_store::Error::Generic { .. }), "{err}");
    raw.abort_multipart(&outside, &other).await.unwrap();
}
