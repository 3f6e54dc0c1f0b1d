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
