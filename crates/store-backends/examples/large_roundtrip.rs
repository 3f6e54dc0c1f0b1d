//! Streams a large object to a backend and back, and reports throughput and
//! how much memory the process needed beyond its baseline.
//!
//! ```sh
//! cargo xtask servers   # in another terminal, then paste its exports here
//! cargo run --release -p store-backends --features s3 --example large_roundtrip -- s3 1024
//! ```
//!
//! Backends: `local` (a temporary folder) and `s3` (the `DRS_TEST_S3_*` server).
//! The size is in MiB; the data is generated on the fly, never held whole.

use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, stream};
use store_core::{Store, WriteMode};

const CHUNK: usize = 1 << 20;

/// Peak and current resident memory of this process, in MiB, from /proc.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; CHUNK])
}

fn store_for(kind: &str, dir: &std::path::Path) -> Store {
    match kind {
        "local" => Store::new(store_backends::LocalBackend::new(dir).expect("local backend")),
        #[cfg(feature = "s3")]
        "s3" => {
            let env =
                |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run `cargo xtask servers`"));
            Store::new(
                store_backends::S3Backend::new(store_backends::S3Config {
                    bucket: env("DRS_TEST_S3_BUCKET"),
                    endpoint: Some(env("DRS_TEST_S3_ENDPOINT")),
                    region: Some(env("DRS_TEST_S3_REGION")),
                    access_key_id: Some(env("DRS_TEST_S3_KEY")),
                    secret_access_key: Some(env("DRS_TEST_S3_SECRET").into()),
                    client: store_backends::ClientConfig { allow_http: true, ..Default::default() },
                    ..Default::default()
                })
                .expect("s3 backend"),
            )
        }
        other => panic!("unknown backend {other:?}: use local or s3"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map_or("local", String::as_str);
    let mib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_for(kind, dir.path());
    let path = "bench/large_roundtrip.bin".parse().expect("path");
    let (_, baseline) = memory_mib();

    let started = Instant::now();
    let data = stream::iter((0..mib).map(|i| Ok(chunk(i)))).boxed();
    store.write_stream(&path, data, WriteMode::Overwrite).await.expect("write");
    let write_secs = started.elapsed().as_secs_f64();
    let (write_peak, _) = memory_mib();

    let started = Instant::now();
    let mut pieces = store.read_stream(&path).await.expect("read");
    let (mut read, mut offset) = (0usize, 0usize);
    while let Some(piece) = pieces.next().await {
        let piece = piece.expect("chunk");
        for (j, byte) in piece.iter().enumerate() {
            assert_eq!(*byte, (((offset + j) / CHUNK) % 251) as u8, "corrupt data at {}", offset + j);
        }
        offset += piece.len();
        read += piece.len();
    }
    let read_secs = started.elapsed().as_secs_f64();
    assert_eq!(read, mib * CHUNK);
    let (peak, _) = memory_mib();
    store.delete(&path, true).await.expect("delete");

    println!("backend {kind}, object {mib} MiB");
    println!("write {:.0} MiB/s, read {:.0} MiB/s", mib as f64 / write_secs, mib as f64 / read_secs);
    println!(
        "baseline RSS {baseline:.0} MiB; peak above baseline: {:.0} MiB after writing, {:.0} MiB after reading ({:.1}% of the object)",
        write_peak - baseline,
        peak - baseline,
        100.0 * (peak - baseline) / mib as f64
    );
}
