//! DataFusion over SFTP, through store-backends' `ObjectStoreAdapter`: registers the adapter for
//! `sftp://HOST:PORT`, writes a Parquet table of trips there, reads it back with a SQL query, writes
//! the query's result there as Parquet, reads that back and checks it against what the trips add up to.
//!
//! It connects to the SFTP server that `cargo xtask servers` starts, from the `DRS_TEST_SFTP_*`
//! variables it prints (as the Rust tests do), and works in a folder of its own, which it empties
//! when it is done. `cargo xtask test` runs it; by hand, with the servers' `export` lines in the shell:
//!
//! ```text
//! cargo run --manifest-path examples/datafusion-sftp/Cargo.toml
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::TryStreamExt;
use store_backends::{ObjectStoreAdapter, SftpAuth, SftpBackend, SftpConfig, SftpHostKey};
use store_core::{ListEntry, ObjectMeta, Store, StorePath};

const CITIES: [&str; 4] = ["Lyon", "Nantes", "Porto", "Turin"];
const TRIPS: i64 = 200_000;
/// DataFusion's upload buffer (10 MiB by default): a file larger than this goes up as a multipart
/// upload, in parts of this size, so the trips' file does.
const UPLOAD_BUFFER: usize = 256 << 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let (config, server) = sftp_config()?;
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let folder: StorePath = format!("datafusion-sftp/run-{run}").parse()?;
    let store = Store::new(SftpBackend::connect(config).await?).child(&folder);

    let session = SessionConfig::new().set_usize("datafusion.execution.objectstore_writer_buffer_size", UPLOAD_BUFFER);
    let ctx = SessionContext::new_with_config(session);
    // DataFusion picks a store by scheme, host and port; the paths below them are the Store's.
    ctx.register_object_store(&url::Url::parse(&server)?, Arc::new(ObjectStoreAdapter::new(store.clone())));

    // A table, written to the server as Parquet.
    ctx.read_batch(trips()?)?.write_parquet(&format!("{server}/trips/"), DataFrameWriteOptions::new(), None).await?;

    // Read back with SQL, and the result written back as Parquet.
    ctx.register_parquet("trips", format!("{server}/trips/"), ParquetReadOptions::default()).await?;
    let per_city = "SELECT city, count(*) AS trips, sum(fare_cents) AS fares_cents FROM trips GROUP BY city";
    ctx.sql(per_city).await?.write_parquet(&format!("{server}/per_city/"), DataFrameWriteOptions::new(), None).await?;

    // The result, read back from the server.
    ctx.register_parquet("per_city", format!("{server}/per_city/"), ParquetReadOptions::default()).await?;
    let result = ctx.sql("SELECT city, trips, fares_cents FROM per_city ORDER BY city").await?;
    result.clone().show().await?;
    check(&result.collect().await?)?;

    // On the server, through the Store: the files DataFusion wrote.
    let files = objects(&store).await?;
    for file in &files {
        println!("{}: {} bytes", store.uri(&file.path), file.size);
    }
    let largest_trips = files.iter().filter(|f| f.path.as_str().starts_with("trips/")).map(|f| f.size).max();
    if largest_trips.is_none_or(|size| size <= UPLOAD_BUFFER as u64) {
        return Err(format!("the trips' file ({largest_trips:?} bytes) went up in one request, not in parts").into());
    }
    if !files.iter().any(|f| f.path.as_str().starts_with("per_city/") && f.path.as_str().ends_with(".parquet")) {
        return Err("no Parquet file under per_city/".into());
    }
    for file in &files {
        store.delete(&file.path, false).await?;
    }
    println!("DataFusion wrote and read {} Parquet files on {server}: the results check out", files.len());
    Ok(())
}

/// The test server's address and the backend's config, from the `DRS_TEST_SFTP_*` variables.
fn sftp_config() -> Result<(SftpConfig, String), Box<dyn Error>> {
    let env = |name: &str| {
        std::env::var(name)
            .map_err(|_| format!("{name} is not set: start `cargo xtask servers` and export its variables"))
    };
    let auth = SftpAuth::PrivateKey { path: env("DRS_TEST_SFTP_KEY")?.into(), passphrase: None };
    let (host, port) = (env("DRS_TEST_SFTP_HOST")?, env("DRS_TEST_SFTP_PORT")?.parse()?);
    let config = SftpConfig {
        port,
        host_key: SftpHostKey::KnownHosts(env("DRS_TEST_SFTP_KNOWN_HOSTS")?.into()),
        ..SftpConfig::new(host.as_str(), env("DRS_TEST_SFTP_USER")?, auth, env("DRS_TEST_SFTP_ROOT")?)
    };
    Ok((config, format!("sftp://{host}:{port}")))
}

/// `TRIPS` trips: id, city (round robin), and a fare and a distance that vary.
fn trips() -> Result<RecordBatch, Box<dyn Error>> {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("city", DataType::Utf8, false),
        Field::new("fare_cents", DataType::Int64, false),
        Field::new("distance_m", DataType::Int64, false),
    ]);
    let ids = Int64Array::from_iter_values(0..TRIPS);
    let cities = StringArray::from_iter_values((0..TRIPS).map(city));
    let fares = Int64Array::from_iter_values((0..TRIPS).map(fare_cents));
    let distances = Int64Array::from_iter_values((0..TRIPS).map(|id| (mix(id) >> 20) as i64 % 40_000));
    let columns = vec![Arc::new(ids) as _, Arc::new(cities) as _, Arc::new(fares) as _, Arc::new(distances) as _];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

fn city(id: i64) -> &'static str {
    CITIES[(id % CITIES.len() as i64) as usize]
}

fn fare_cents(id: i64) -> i64 {
    250 + (mix(id) % 9_750) as i64
}

/// splitmix64: numbers that look random, the same on every run.
fn mix(id: i64) -> u64 {
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The query's result, read back: one row per city, with its trips and the sum of their fares.
fn check(batches: &[RecordBatch]) -> Result<(), Box<dyn Error>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Result<Vec<String>, _> =
                batch.columns().iter().map(|column| array_value_to_string(column, row)).collect();
            rows.push(cells?);
        }
    }
    let expected: Vec<Vec<String>> = CITIES
        .iter()
        .map(|&name| {
            let ids: Vec<i64> = (0..TRIPS).filter(|&id| city(id) == name).collect();
            let fares: i64 = ids.iter().map(|&id| fare_cents(id)).sum();
            vec![name.to_owned(), ids.len().to_string(), fares.to_string()]
        })
        .collect();
    if rows != expected {
        return Err(format!("the result read back is {rows:?}, not {expected:?}").into());
    }
    Ok(())
}

/// Every object of `store`, in order.
async fn objects(store: &Store) -> Result<Vec<ObjectMeta>, Box<dyn Error>> {
    let mut files: Vec<ObjectMeta> = store
        .list(None, true)
        .try_filter_map(|entry| async move {
            Ok(match entry {
                ListEntry::Object(meta) => Some(meta),
                ListEntry::Prefix(_) => None,
            })
        })
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
