//! The conformance suite against a real Azure Blob server (Azurite, started by `cargo xtask test`).
#![cfg(feature = "azure")]

use store_backends::{AzureBackend, AzureConfig, ClientConfig};
use store_core::Store;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the servers with `cargo xtask servers`"))
}

fn config() -> AzureConfig {
    AzureConfig {
        container: env("DRS_TEST_AZURE_CONTAINER"),
        account_name: Some(env("DRS_TEST_AZURE_ACCOUNT")),
        account_key: Some(env("DRS_TEST_AZURE_KEY").into()),
        account_url: Some(env("DRS_TEST_AZURE_ENDPOINT")),
        client: ClientConfig { allow_http: true, ..Default::default() },
        ..Default::default()
    }
}

async fn make_store() -> Store {
    Store::new(AzureBackend::new(config()).expect("azure backend"))
}

store_core::conformance_tests!(make_store, #[cfg_attr(not(test_azure), ignore = "no Azure test server: run `cargo xtask test`")]);

#[tokio::test]
#[cfg_attr(not(test_azure), ignore = "no Azure test server: run `cargo xtask test`")]
async fn a_connection_string_configures_the_same_store() {
    let connection_string = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        env("DRS_TEST_AZURE_ACCOUNT"),
        env("DRS_TEST_AZURE_KEY"),
        env("DRS_TEST_AZURE_ENDPOINT")
    );
    let from_parts = make_store().await;
    let from_string = Store::new(
        AzureBackend::new(AzureConfig {
            container: env("DRS_TEST_AZURE_CONTAINER"),
            connection_string: Some(connection_string.into()),
            client: ClientConfig { allow_http: true, ..Default::default() },
            ..Default::default()
        })
        .unwrap(),
    );
    let path = "connection-string/probe.txt".parse().unwrap();
    from_parts.write(&path, "same".into(), store_core::WriteMode::Overwrite).await.unwrap();
    assert_eq!(from_string.read(&path).await.unwrap(), "same");
}

#[tokio::test]
#[cfg_attr(not(test_azure), ignore = "no Azure test server: run `cargo xtask test`")]
async fn a_wrong_key_is_permission_denied_and_never_echoed() {
    let wrong = "V1JPTkctS0VZLVdST05HLUtFWS1XUk9ORy1LRVktV1JPTkctS0VZLVdST05HLUtFWQ==";
    let store = Store::new(AzureBackend::new(AzureConfig { account_key: Some(wrong.into()), ..config() }).unwrap());
    let err = store.read(&"any.txt".parse().unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::PermissionDenied, "{err}");
    assert!(!err.to_string().contains(wrong), "{err}");
}
