//! Incomplete multipart uploads, as writers killed in the middle of a large
//! write leave them, found and removed by `Store::clean_up` on a real S3 server.
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

#[tokio::test]
#[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]
async fn incomplete_uploads_are_found_and_aborted() {
    let root = format!("leftovers-{}", std::process::id());
    // A writer that started an upload, sent a part and died.
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

    let config = S3Config {
        bucket: env("DRS_TEST_S3_BUCKET"),
        endpoint: Some(env("DRS_TEST_S3_ENDPOINT")),
        region: Some(env("DRS_TEST_S3_REGION")),
        access_key_id: Some(env("DRS_TEST_S3_KEY")),
        secret_access_key: Some(env("DRS_TEST_S3_SECRET")),
        client: ClientConfig { allow_http: true, ..Default::default() },
        ..Default::default()
    };
    let store = Store::new(S3Backend::new(config).unwrap()).child(&root.parse().unwrap());
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
