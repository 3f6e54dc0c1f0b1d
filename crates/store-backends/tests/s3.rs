//! The conformance suite against a real S3 server (moto, started by `cargo xtask test`).
#![cfg(feature = "s3")]

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
        secret_access_key: Some(env("DRS_TEST_S3_SECRET")),
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
        initial_backoff: std::time::Duration::from_millis(10),
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
