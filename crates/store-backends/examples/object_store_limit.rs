//! The storage's own speed: one object put and got back by `object_store`
//! directly, with no Store, serializer or Python in between. `cargo xtask bench`
//! runs it against the same S3 server as the IO managers, so their throughput
//! can be read as a fraction of this limit.
//!
//! ```sh
//! cargo run --release -p store-backends --features s3 --example object_store_limit -- 256 3
//! ```
//!
//! Arguments: the size in MiB and the number of rounds. The server comes from
//! `BENCH_S3_ENDPOINT`, `BENCH_S3_BUCKET`, `BENCH_S3_KEY`, `BENCH_S3_SECRET` and
//! `BENCH_S3_REGION`. Prints one JSON object with each round's seconds: a
//! multipart put as the Store uploads large objects (and, of it, the time the
//! server took to complete the upload once every part was in), the same bytes in one
//! plain PUT (what the server takes without parts to assemble), one get, a get
//! the way the Store reads large objects (part-sized ranges, several at once),
//! and that ranged get copied into one new buffer of the object's size, as a
//! reader that keeps the bytes has to (a loaded frame is new memory too).

use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt, WriteMultipart};

/// Part size and parts in flight, as the Store's multipart uploads use.
const PART: usize = store_backends::DEFAULT_PART_SIZE;
const IN_FLIGHT: usize = store_backends::DEFAULT_PARTS_IN_FLIGHT;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    // Whole parts only, so that when every part is acknowledged nothing is left to send.
    assert!((mib << 20) % PART == 0, "the size must be a multiple of {} MiB", PART >> 20);
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run `cargo xtask bench`"));
    let store = AmazonS3Builder::new()
        .with_endpoint(env("BENCH_S3_ENDPOINT"))
        .with_bucket_name(env("BENCH_S3_BUCKET"))
        .with_access_key_id(env("BENCH_S3_KEY"))
        .with_secret_access_key(env("BENCH_S3_SECRET"))
        .with_region(env("BENCH_S3_REGION"))
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .build()
        .expect("S3 client");
    let store = std::sync::Arc::new(store);
    let data = Bytes::from((0..mib << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let path = Path::from("limit/object.bin");
    let (mut puts, mut completes, mut single_puts, mut gets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ranged_gets, mut kept_gets) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // One request with the whole object: what the server takes when it has no parts to put together.
        let started = Instant::now();
        store.put(&path, data.clone().into()).await.expect("put");
        single_puts.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(&path).await.expect("upload"), PART);
        for at in (0..data.len()).step_by(PART) {
            upload.wait_for_capacity(IN_FLIGHT).await.expect("part");
            upload.put(data.slice(at..(at + PART).min(data.len())));
        }
        // Every part acknowledged, what is left is the server's alone: it puts the parts
        // together, and no client can overlap anything with that.
        upload.wait_for_capacity(0).await.expect("part");
        let completing = Instant::now();
        upload.finish().await.expect("complete");
        completes.push(completing.elapsed().as_secs_f64());
        puts.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let back = store.get(&path).await.expect("get").bytes().await.expect("body");
        gets.push(started.elapsed().as_secs_f64());
        assert_eq!(back.len(), data.len());

        let size = data.len() as u64;
        // Each range a task of its own, as the Store reads them: a range keeps arriving while
        // the one before is copied out, rather than only while the reader waits.
        let ranges = || {
            let ranges = (0..size).step_by(PART).map(|at| {
                let (store, path) = (store.clone(), path.clone());
                tokio::spawn(async move { store.get_range(&path, at..(at + PART as u64).min(size)).await })
            });
            stream::iter(ranges).buffered(IN_FLIGHT).map(|joined| joined.expect("range task"))
        };
        let started = Instant::now();
        let got = ranges().try_fold(0, |got, part| async move { Ok(got + part.len()) });
        assert_eq!(got.await.expect("ranges"), data.len());
        ranged_gets.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let mut kept = store_core::buffer::with_capacity(data.len());
        let mut parts = ranges();
        while let Some(part) = parts.try_next().await.expect("ranges") {
            kept.extend_from_slice(&part);
        }
        kept_gets.push(started.elapsed().as_secs_f64());
        assert!(kept == data);
    }
    store.delete(&path).await.expect("delete");
    println!(
        r#"{{"mib": {mib}, "put_seconds": {puts:?}, "complete_seconds": {completes:?}, "single_put_seconds": {single_puts:?}, "get_seconds": {gets:?}, "ranged_get_seconds": {ranged_gets:?}, "kept_ranged_get_seconds": {kept_gets:?}}}"#
    );
}
