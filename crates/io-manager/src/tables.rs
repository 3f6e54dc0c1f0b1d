//! Parquet tables loaded from a Store: fetched, verified against their
//! checksum and decoded, a large file's row groups while the rest of it is
//! still arriving. What a table becomes (Arrow batches, or rows written
//! straight into a frame the caller holds) is the caller's choice, through
//! [`RowGroupTarget`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use std::sync::Arc;
//! # use arrow::array::Int64Array;
//! # use arrow::datatypes::{DataType, Field, Schema};
//! # use arrow::record_batch::{RecordBatch, RecordBatchIterator};
//! use io_manager::integrity;
//! use io_manager::tables::{Fetched, Unfilled, fetch_tables};
//! use serializers::parquet::{self, ParquetOptions};
//! use store_core::{Store, StorePath, WriteMode};
//!
//! # let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
//! # let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let path: StorePath = "sales.parquet".parse()?;
//! let file = parquet::encode(RecordBatchIterator::new([Ok(batch)], schema), &ParquetOptions::default())?;
//! integrity::write(&store, &path, file, WriteMode::Overwrite, None).await?;
//!
//! let tables = fetch_tables(&store, &[(path, None)], 4, |_| None::<Unfilled>).await;
//! let Ok(Fetched::Decoded((_, batches, _))) = &tables[0] else { panic!("{:?}", tables[0].as_ref().err()) };
//! assert_eq!(batches[0].num_rows(), 3);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serializers::SerializeError;
use serializers::parquet::{self, ArrivingFile, Decoded, RowGroup};
use store_core::{Store, StorePath};

use crate::{Error, Owner, integrity};

/// Files larger than this are decoded row group by row group while the rest of them arrives.
pub const DECODE_WHILE_ARRIVING: u64 = 16 << 20;

/// Where the row groups of an arriving file go instead of into Arrow batches:
/// memory the caller laid out for the whole table (a pandas frame's block),
/// filled by several decoders at once, each with its own row group.
pub trait RowGroupTarget: Send + Sync + 'static {
    /// Decodes `group` into its rows of the target.
    fn fill(&self, group: RowGroup) -> Result<(), SerializeError>;
}

/// The target of callers that always want Arrow batches: it is never made.
#[derive(Debug)]
pub enum Unfilled {}

impl RowGroupTarget for Unfilled {
    fn fill(&self, _group: RowGroup) -> Result<(), SerializeError> {
        match *self {}
    }
}

/// A table as fetched.
#[derive(Debug)]
pub enum Fetched<T> {
    /// Decoded into Arrow batches, with the file's key-value metadata.
    Decoded(Decoded),
    /// Decoded into the target the caller chose for this file.
    Filled(T),
}

/// The tables stored at `objects` (each path with its owner), fetched, verified
/// and decoded at most `max_concurrency` at once, in order, each with its own
/// result (a missing table is an [`Error::Store`] of kind `NotFound`).
/// `target_for` may give a large file, from its footer, a [`RowGroupTarget`]
/// to decode into (see [`fetch_table`]).
pub async fn fetch_tables<T: RowGroupTarget>(
    store: &Store,
    objects: &[(StorePath, Option<Owner>)],
    max_concurrency: usize,
    target_for: impl Fn(&ArrivingFile) -> Option<T>,
) -> Vec<Result<Fetched<T>, Error>> {
    let target_for = &target_for;
    // Collected first, so that the futures' type names no closure: callers can then
    // await this from a future that must be `Send`.
    let fetches: Vec<_> =
        objects.iter().map(|(path, owner)| fetch_table(store, path, owner.as_ref(), target_for)).collect();
    stream::iter(fetches).buffered(max_concurrency.max(1)).collect().await
}

/// The table stored at `path`, verified against its checksum (and `owner`).
///
/// A file above [`DECODE_WHILE_ARRIVING`] has its footer read first, from the
/// end, and its row groups decoded, on every core, while the rest of it is
/// still arriving; the bytes of the row groups already decoded are let go.
/// Into the target `target_for` gives it, if any, or else into Arrow batches.
/// A smaller file, or one that does not end in a Parquet footer, is decoded
/// whole once all of it is in and verified; that decode says what is wrong.
pub async fn fetch_table<T: RowGroupTarget>(
    store: &Store,
    path: &StorePath,
    owner: Option<&Owner>,
    target_for: impl FnOnce(&ArrivingFile) -> Option<T>,
) -> Result<Fetched<T>, Error> {
    let mut object = integrity::read_stream(store, path, owner).await?;
    let size = object.size.filter(|&size| size > DECODE_WHILE_ARRIVING);
    let arriving = match size {
        Some(size) => arriving_file(store, path, size).await?,
        None => None,
    };
    let Some(mut arriving) = arriving else {
        let chunks: Vec<Bytes> = (&mut object.chunks).try_collect().await?;
        object.verify().await?;
        return decode_whole(path, chunks).await.map(Fetched::Decoded);
    };
    // Shared with the decode tasks, which outlive this function if it returns early.
    let target = target_for(&arriving).map(Arc::new);
    let decoders = std::thread::available_parallelism().map_or(1, usize::from);
    let (mut running, mut decoded) = (VecDeque::new(), Vec::new());
    while let Some(chunk) = object.chunks.try_next().await? {
        for group in arriving.push(chunk) {
            if running.len() == decoders {
                decoded.push(join(running.pop_front().expect("as many as decoders")).await);
            }
            let target = target.clone();
            running.push_back(tokio::task::spawn_blocking(move || match target {
                Some(target) => target.fill(group).map(|()| Vec::new()),
                None => group.decode(),
            }));
        }
    }
    // A corrupt file is reported as such, whatever decoding made of it.
    object.verify().await?;
    for task in running {
        decoded.push(join(task).await);
    }
    match decoded.into_iter().collect::<Result<_, _>>().and_then(|decoded| arriving.finish(decoded)) {
        Ok(table) => Ok(match target {
            // Every decode task has finished, and let go of its share.
            Some(target) => Fetched::Filled(Arc::into_inner(target).expect("no decode task still running")),
            None => Fetched::Decoded(table),
        }),
        // A row group that would not decode, or a file replaced after its footer was read:
        // the object as it is now, verified, decoded whole, says what is wrong.
        Err(_) => decode_whole(path, vec![integrity::read(store, path, owner).await?]).await.map(Fetched::Decoded),
    }
}

/// The decoder for the Parquet file of `size` bytes at `path`, from its footer; `None` when
/// the file does not end in one.
async fn arriving_file(store: &Store, path: &StorePath, size: u64) -> Result<Option<ArrivingFile>, Error> {
    let tail = store.read_range(path, size - parquet::FOOTER_READ.min(size)..size).await?;
    Ok(match ArrivingFile::new(tail.clone(), size) {
        Ok(Some(file)) => Some(file),
        Ok(None) => match ArrivingFile::footer_length(&tail) {
            Ok(needed) if needed <= size => {
                let tail = store.read_range(path, size - needed..size).await?;
                ArrivingFile::new(tail, size).ok().flatten()
            }
            _ => None,
        },
        Err(_) => None,
    })
}

/// `chunks`, one whole file, decoded on a blocking thread.
async fn decode_whole(path: &StorePath, chunks: Vec<Bytes>) -> Result<Decoded, Error> {
    let data = match <[Bytes; 1]>::try_from(chunks) {
        Ok([data]) => data,
        Err(chunks) => Bytes::from(chunks.concat()),
    };
    join(tokio::task::spawn_blocking(move || parquet::decode(data)))
        .await
        .map_err(|source| Error::Serialize { path: path.clone(), source })
}

/// A decode task's result; one that panicked panics here too.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use arrow::array::{Array, Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::{RecordBatch, RecordBatchIterator};
    use serializers::parquet::{Compression, ParquetOptions};
    use store_backends::{LocalBackend, MemoryBackend};
    use store_core::{ErrorKind, WriteMode};

    use super::*;

    /// A table of `rows` rows in batches of 64 Ki, uncompressed so that its size is known:
    /// 16 bytes a row.
    fn table(rows: i64) -> (Bytes, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("x", DataType::Float64, false),
        ]));
        let batches: Vec<RecordBatch> = (0..rows)
            .step_by(1 << 16)
            .map(|start| {
                let n: Int64Array = (start..rows.min(start + (1 << 16))).collect();
                let x: Float64Array = n.values().iter().map(|&n| n as f64 * 0.5).collect();
                RecordBatch::try_new(schema.clone(), vec![Arc::new(n), Arc::new(x)]).unwrap()
            })
            .collect();
        let options = ParquetOptions { compression: Compression::None, ..Default::default() };
        let reader = RecordBatchIterator::new(batches.clone().into_iter().map(Ok), schema);
        (parquet::encode(reader, &options).unwrap(), batches)
    }

    fn rows_of(batches: &[RecordBatch]) -> Vec<(i64, f64)> {
        batches
            .iter()
            .flat_map(|batch| {
                let n = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
                let x = batch.column(1).as_any().downcast_ref::<Float64Array>().unwrap().clone();
                (0..batch.num_rows()).map(move |i| (n.value(i), x.value(i)))
            })
            .collect()
    }

    /// Rows of every row group filled, by first row.
    #[derive(Debug, Default)]
    struct Collected(Mutex<Vec<(u64, Vec<RecordBatch>)>>);

    impl RowGroupTarget for Collected {
        fn fill(&self, group: RowGroup) -> Result<(), SerializeError> {
            let first = group.first_row();
            let batches = group.decode()?;
            self.0.lock().unwrap().push((first, batches));
            Ok(())
        }
    }

    async fn stored(store: &Store, name: &str, file: Bytes) -> StorePath {
        let path: StorePath = name.parse().unwrap();
        integrity::write(store, &path, file, WriteMode::Overwrite, None).await.unwrap();
        path
    }

    fn stores() -> Vec<(Store, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let local = Store::new(LocalBackend::new(dir.path()).unwrap());
        vec![(Store::new(MemoryBackend::new()), tempfile::tempdir().unwrap()), (local, dir)]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_and_small_tables_decode_as_written_on_memory_and_local() {
        let (large, large_rows) = table(1_500_000); // 24 MB: decoded while arriving
        let (small, small_rows) = table(1000);
        assert!(large.len() as u64 > DECODE_WHILE_ARRIVING && (small.len() as u64) < DECODE_WHILE_ARRIVING);
        for (store, _dir) in stores() {
            let objects = [
                (stored(&store, "large.parquet", large.clone()).await, None),
                (stored(&store, "small.parquet", small.clone()).await, None),
            ];
            let fetched = fetch_tables(&store, &objects, 2, |_| None::<Unfilled>).await;
            let [Ok(Fetched::Decoded(l)), Ok(Fetched::Decoded(s))] = &fetched[..] else { panic!("{fetched:?}") };
            assert_eq!(rows_of(&l.1), rows_of(&large_rows), "{store:?}");
            assert_eq!(rows_of(&s.1), rows_of(&small_rows), "{store:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_file_fills_its_target_row_group_by_row_group() {
        let (large, rows) = table(1_500_000);
        let store = Store::new(MemoryBackend::new());
        let path = stored(&store, "large.parquet", large).await;
        let asked = Mutex::new(0);
        let fetched = fetch_table(&store, &path, None, |file: &ArrivingFile| {
            *asked.lock().unwrap() += 1;
            assert_eq!(file.row_count(), 1_500_000);
            Some(Collected::default())
        })
        .await
        .unwrap();
        let Fetched::Filled(collected) = fetched else { panic!("the target was given") };
        let mut groups = collected.0.into_inner().unwrap();
        assert!(groups.len() > 1, "more than one row group");
        groups.sort_by_key(|(first, _)| *first);
        let filled: Vec<RecordBatch> = groups.into_iter().flat_map(|(_, batches)| batches).collect();
        assert_eq!(rows_of(&filled), rows_of(&rows));
        assert_eq!(*asked.lock().unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_changed_large_file_is_a_checksum_mismatch_and_a_missing_one_not_found() {
        let (large, _) = table(1_500_000);
        let store = Store::new(MemoryBackend::new());
        let path = stored(&store, "large.parquet", large.clone()).await;
        let mut changed = large.to_vec();
        changed[100] ^= 1;
        // The checksum recorded for the old bytes stays.
        let (_, metadata) = store.read_with_metadata(&path).await.unwrap();
        store.write_with_metadata(&path, changed.into(), WriteMode::Overwrite, &metadata).await.unwrap();
        let err = fetch_table(&store, &path, None, |_| Some(Collected::default())).await.unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        let missing: StorePath = "missing.parquet".parse().unwrap();
        let err = fetch_table(&store, &missing, None, |_| None::<Unfilled>).await.unwrap_err();
        assert!(matches!(&err, Error::Store(e) if e.kind() == ErrorKind::NotFound), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_object_that_is_not_parquet_fails_to_decode_naming_its_path() {
        let store = Store::new(MemoryBackend::new());
        let path = stored(&store, "noise.parquet", Bytes::from(vec![7u8; 20 << 20])).await;
        let err = fetch_table(&store, &path, None, |_| None::<Unfilled>).await.unwrap_err();
        assert!(matches!(&err, Error::Serialize { source, .. } if source.is_decode()), "{err}");
        assert!(err.to_string().contains("noise.parquet"), "{err}");
    }
}
