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
//! let tables = fetch_tables(&store, &[(path, None)], None, 4, |_| None::<Unfilled>).await;
//! let Ok(Fetched::Decoded((_, batches, _))) = &tables[0] else { panic!("{:?}", tables[0].as_ref().err()) };
//! assert_eq!(batches[0].num_rows(), 3);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serializers::SerializeError;
use serializers::parquet::{self, ArrivingFile, Decoded, Pieces, RowGroup};
use store_core::{Store, StorePath};

use crate::{Error, Owner, blocks, integrity};

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
/// to decode into (see [`fetch_table`]). Given `columns`, only those columns
/// are fetched and decoded (see [`fetch_columns`]).
pub async fn fetch_tables<T: RowGroupTarget>(
    store: &Store,
    objects: &[(StorePath, Option<Owner>)],
    columns: Option<&[String]>,
    max_concurrency: usize,
    target_for: impl Fn(&ArrivingFile) -> Option<T>,
) -> Vec<Result<Fetched<T>, Error>> {
    let target_for = &target_for;
    // The ranged reads of projected loads share the bound with the tables loading at once.
    let reads_per_table = (max_concurrency / objects.len().clamp(1, max_concurrency.max(1))).max(1);
    // Collected first, so that the futures' type names no closure: callers can then
    // await this from a future that must be `Send`.
    let fetches: Vec<_> = objects
        .iter()
        .map(|(path, owner)| async move {
            match columns {
                Some(columns) => {
                    let fetched = fetch_columns(store, path, owner.as_ref(), columns, reads_per_table).await;
                    fetched.map(Fetched::Decoded)
                }
                None => fetch_table(store, path, owner.as_ref(), target_for).await,
            }
        })
        .collect();
    stream::iter(fetches).buffered(max_concurrency.max(1)).collect().await
}

/// Only the top-level columns `columns` names of the table stored at `path`, in
/// that order (see [`parquet::decode_columns`]), verified.
///
/// A file whose record lists its blocks (see [`blocks`]) has only its footer and
/// the blocks that hold those columns fetched, `max_concurrency` ranged reads at
/// once, each block verified. Any other file (its checksum in its metadata, or
/// written before block checksums) is read whole and verified, then decoded in part.
pub async fn fetch_columns(
    store: &Store,
    path: &StorePath,
    owner: Option<&Owner>,
    columns: &[String],
    max_concurrency: usize,
) -> Result<Decoded, Error> {
    let fetch = || async {
        let serialize_error = |source| Error::Serialize { path: path.clone(), source };
        let Some(mut object) = blocks::open(store, path, owner).await? else {
            let data = integrity::read(store, path, owner).await?;
            return decode_pieces(path, Pieces::new(data.len() as u64, vec![(0, data)]), columns.to_vec()).await;
        };
        let size = object.size();
        let tail = size.saturating_sub(parquet::FOOTER_READ)..size;
        let mut pieces = object.read(std::slice::from_ref(&tail), max_concurrency).await?;
        let (last_start, last) = pieces.last().cloned().unwrap_or_default();
        let footer = ArrivingFile::footer_length(&last).map_err(serialize_error)?;
        let footer_start = size.checked_sub(footer).ok_or_else(|| {
            serialize_error(SerializeError::decode(parquet::NAME, "the footer is longer than the file"))
        })?;
        if footer_start < last_start {
            pieces.extend(object.read(std::slice::from_ref(&(footer_start..size)), max_concurrency).await?);
        }
        let ranges = parquet::column_ranges(&Pieces::new(size, pieces.clone()), columns).map_err(serialize_error)?;
        pieces.extend(object.read(&ranges, max_concurrency).await?);
        decode_pieces(path, Pieces::new(size, pieces), columns.to_vec()).await
    };
    match fetch().await {
        // Replaced while it was read: read the new one.
        Err(Error::ChecksumMismatch { .. }) => fetch().await,
        fetched => fetched,
    }
}

/// The columns `columns` names, decoded from `pieces` on a blocking thread.
async fn decode_pieces(path: &StorePath, pieces: Pieces, columns: Vec<String>) -> Result<Decoded, Error> {
    join(tokio::task::spawn_blocking(move || parquet::decode_columns(pieces, &columns)))
        .await
        .map_err(|source| Error::Serialize { path: path.clone(), source })
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
    use std::sync::atomic::Ordering;

    use store_backends::{LocalBackend, MemoryBackend};
    use store_core::{ErrorKind, WriteMode};

    use super::*;
    use crate::test_backend::{Hooked, PlainReads};

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
            let fetched = fetch_tables(&store, &objects, None, 2, |_| None::<Unfilled>).await;
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

    fn column(batches: &[RecordBatch], name: &str) -> Vec<f64> {
        let index = batches[0].schema().index_of(name).unwrap();
        let values = batches.iter().map(|b| b.column(index).as_any().downcast_ref::<Float64Array>().unwrap().clone());
        values.flat_map(|array| array.values().to_vec()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chosen_columns_of_a_large_table_fetch_only_their_blocks_each_verified() {
        let (large, rows) = table(1_500_000); // 24 MB, half of it column x
        let backend = Hooked::<PlainReads>::new(false); // checksums in records, blocks listed
        let bytes_read = backend.bytes_read.clone();
        let store = Store::new(backend);
        let path = stored(&store, "large.parquet", large.clone()).await;
        bytes_read.store(0, Ordering::SeqCst);
        let columns = ["x".to_owned()];
        let (schema, batches, _) = fetch_columns(&store, &path, None, &columns, 4).await.unwrap();
        assert_eq!(schema.fields().len(), 1);
        assert_eq!(column(&batches, "x"), column(&rows, "x"));
        let read = bytes_read.load(Ordering::SeqCst);
        assert!(read < large.len() as u64 * 6 / 10, "{read} of {} bytes read", large.len());

        // A byte of x changed behind the IO manager's back, its record kept: refused.
        let whole = Pieces::new(large.len() as u64, vec![(0, large.clone())]);
        let x = parquet::column_ranges(&whole, &columns).unwrap()[0].clone();
        let at = u64::midpoint(x.start, x.end);
        let mut changed = large.to_vec();
        changed[at as usize] ^= 1;
        store.write(&path, changed.into(), WriteMode::Overwrite).await.unwrap();
        let err = fetch_columns(&store, &path, None, &columns, 4).await.unwrap_err();
        let block = format!("block {} ", at / blocks::BLOCK_SIZE);
        assert!(matches!(&err, Error::ChecksumMismatch { stored, .. } if stored.contains(&block)), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chosen_columns_of_any_table_come_back_as_written_on_memory_and_local() {
        let (large, large_rows) = table(1_500_000);
        let (small, small_rows) = table(1000);
        for (store, _dir) in stores() {
            for (name, file, rows) in [("large", &large, &large_rows), ("small", &small, &small_rows)] {
                let path: StorePath = format!("{name}.parquet").parse().unwrap();
                // Streamed as an output is: the large file's checksum goes in a record with its blocks.
                let pieces: Vec<_> = file.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
                let chunks = stream::iter(pieces).boxed();
                integrity::write_stream(&store, &path, chunks, WriteMode::Overwrite, None).await.unwrap();
                let columns = ["x".to_owned(), "n".to_owned()];
                let objects = [(path, None)];
                let fetched = fetch_tables(&store, &objects, Some(&columns), 2, |_| None::<Unfilled>).await;
                let [Ok(Fetched::Decoded((schema, batches, _)))] = &fetched[..] else { panic!("{fetched:?}") };
                let names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
                assert_eq!(names, ["x", "n"], "{store:?} {name}");
                assert_eq!(column(batches, "x"), column(rows, "x"), "{store:?} {name}");
            }
            let columns = ["y".to_owned()];
            let err = fetch_columns(&store, &"small.parquet".parse().unwrap(), None, &columns, 2).await.unwrap_err();
            assert!(err.to_string().contains("no column \"y\"") && err.to_string().contains("small.parquet"), "{err}");
        }
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
