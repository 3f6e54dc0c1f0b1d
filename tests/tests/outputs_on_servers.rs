//! io-manager's streamed outputs and inputs on every backend, the remote ones
//! against the servers `cargo xtask test` starts: a short output held for one
//! checked write, a long one streamed as it is handed over, an encoder's upload,
//! an aborted output and another asset's object, each read back verified.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use io_manager::upload::Upload;
use io_manager::{Error, IoManager, Owner, integrity};
use store_backends::{
    AzureBackend, AzureConfig, ClientConfig, GcsBackend, GcsConfig, LocalBackend, MemoryBackend, S3Backend, S3Config,
    SftpAuth, SftpBackend, SftpConfig, SftpHostKey,
};
use store_core::{Store, StorePath};

const MIB: usize = 1 << 20;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the servers with `cargo xtask servers`"))
}

fn http() -> ClientConfig {
    ClientConfig { allow_http: true, ..ClientConfig::default() }
}

/// A folder of `store` no other run uses.
fn isolated(store: Store) -> Store {
    store_core::conformance::isolated(&store, "streamed-outputs")
}

/// What a run writes: a pattern whose every MiB differs, so a misplaced part shows.
fn data(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i / MIB + i) % 251) as u8).collect()
}

/// The object at `path` read as it arrives, then verified against its checksum.
async fn read_streamed(io: &IoManager<serde_json::Value>, path: &StorePath, owner: &Owner) -> Vec<u8> {
    let mut input = io.input_stream(path, Some(owner)).await.expect("input stream");
    let chunks: Vec<Bytes> = (&mut input.chunks).try_collect().await.expect("chunks");
    input.verify().await.expect("checksum verified");
    chunks.concat()
}

async fn streamed_outputs(store: Store) {
    let io = IoManager::<serde_json::Value>::new(isolated(store), Arc::new(serializers::Json));
    let path = io.asset_path(&["frames", "big"], &[] as &[&str]).unwrap();
    let owner = Owner::new(["frames", "big"], [] as [&str; 0]);

    // Short: held, one checked write at the end.
    let mut sink = io.output_sink(&path, Some(&owner));
    for piece in [&b"small "[..], b"output"] {
        sink.push(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert!(!sink.is_streaming());
    let written = sink.finish(false).await.unwrap().expect("finished once");
    assert_eq!(written.size, 12);
    assert_eq!(read_streamed(&io, &path, &owner).await, b"small output");

    // Long: streamed from the piece that passes the single-write limit, stored whole.
    let long = data(20 * MIB + 123);
    let mut sink = io.output_sink(&path, Some(&owner));
    for piece in long.chunks(MIB) {
        sink.push(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert!(sink.is_streaming());
    let written = sink.finish(false).await.unwrap().expect("finished once");
    assert_eq!(written.checksum, integrity::Checksum::of(&long));
    assert_eq!(read_streamed(&io, &path, &owner).await, long);

    // Aborted after 12 MiB went out: the long value stays.
    let mut sink = io.output_sink(&path, Some(&owner));
    for piece in data(12 * MIB).chunks(MIB) {
        sink.push(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert!(sink.finish(true).await.unwrap().is_none());
    assert_eq!(read_streamed(&io, &path, &owner).await, long, "the old value, verified");

    // An encoder writing on a thread of its own, as the Parquet encoder does.
    let encoded = data(17 * MIB);
    let upload =
        Upload::start_checked(&tokio::runtime::Handle::current(), io.store(), path.clone(), Some(owner.clone()));
    let mut writer = upload.writer();
    let source = encoded.clone();
    let produced = tokio::task::spawn_blocking(move || {
        source.chunks(100_000).try_for_each(|piece| writer.write_all(piece))?;
        writer.finish()
    })
    .await
    .unwrap();
    let (written, ()) = upload
        .settle(produced, |e| store_core::Error::new(store_core::ErrorKind::Other, e.to_string()).into())
        .await
        .unwrap();
    assert_eq!(written.size, encoded.len() as u64);
    assert_eq!(read_streamed(&io, &path, &owner).await, encoded);

    // Another asset mapped to the same path: refused, and the value stays.
    let other = Owner::new(["frames"], ["big"]);
    let mut sink = io.output_sink(&path, Some(&other));
    let mut refused = Ok(());
    for piece in data(12 * MIB).chunks(MIB) {
        refused = sink.push(Bytes::copy_from_slice(piece)).await;
        if refused.is_err() {
            break;
        }
    }
    let refused = match refused {
        Err(err) => err,
        Ok(()) => sink.finish(false).await.expect_err("another asset's object is not replaced"),
    };
    assert!(matches!(refused, Error::OwnedByAnother { .. }), "{refused:?}");
    assert_eq!(read_streamed(&io, &path, &owner).await, encoded);
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_outputs_on_memory() {
    streamed_outputs(Store::new(MemoryBackend::new())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_outputs_on_local_files() {
    let dir = tempfile::tempdir().unwrap();
    streamed_outputs(Store::new(LocalBackend::new(dir.path()).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(test_s3), ignore = "no S3 test server: run `cargo xtask test`")]
async fn streamed_outputs_on_s3() {
    let config = S3Config {
        bucket: env("DRS_TEST_S3_BUCKET"),
        endpoint: Some(env("DRS_TEST_S3_ENDPOINT")),
        region: Some(env("DRS_TEST_S3_REGION")),
        access_key_id: Some(env("DRS_TEST_S3_KEY")),
        secret_access_key: Some(env("DRS_TEST_S3_SECRET").into()),
        client: http(),
        ..S3Config::default()
    };
    streamed_outputs(Store::new(S3Backend::new(config).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(test_azure), ignore = "no Azure test server: run `cargo xtask test`")]
async fn streamed_outputs_on_azure() {
    let config = AzureConfig {
        container: env("DRS_TEST_AZURE_CONTAINER"),
        account_name: Some(env("DRS_TEST_AZURE_ACCOUNT")),
        account_key: Some(env("DRS_TEST_AZURE_KEY").into()),
        account_url: Some(env("DRS_TEST_AZURE_ENDPOINT")),
        client: http(),
        ..AzureConfig::default()
    };
    streamed_outputs(Store::new(AzureBackend::new(config).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(test_gcs), ignore = "no GCS test server: run `cargo xtask test`")]
async fn streamed_outputs_on_gcs() {
    let config = GcsConfig {
        bucket: env("DRS_TEST_GCS_BUCKET"),
        base_url: Some(env("DRS_TEST_GCS_URL")),
        anonymous: true,
        client: http(),
        ..GcsConfig::default()
    };
    streamed_outputs(Store::new(GcsBackend::new(config).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(not(test_sftp), ignore = "no SFTP test server: run `cargo xtask test`")]
async fn streamed_outputs_on_sftp() {
    let auth = SftpAuth::PrivateKey { path: env("DRS_TEST_SFTP_KEY").into(), passphrase: None };
    let config = SftpConfig {
        port: env("DRS_TEST_SFTP_PORT").parse().expect("DRS_TEST_SFTP_PORT is a port number"),
        host_key: SftpHostKey::KnownHosts(env("DRS_TEST_SFTP_KNOWN_HOSTS").into()),
        ..SftpConfig::new(env("DRS_TEST_SFTP_HOST"), env("DRS_TEST_SFTP_USER"), auth, env("DRS_TEST_SFTP_ROOT"))
    };
    streamed_outputs(Store::new(SftpBackend::connect(config).await.unwrap())).await;
}
