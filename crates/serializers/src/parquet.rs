//! Parquet files from Arrow record batches, and back (cargo feature `parquet`).
//!
//! Unlike [`Json`](crate::Json) this is not a [`Serializer`](crate::Serializer):
//! the values are Arrow tables, and each host decides how its own table type
//! becomes a [`RecordBatchReader`] (the Python bindings go through the Arrow
//! PyCapsule interface). These functions do the Parquet part: [`encode`],
//! [`decode`] and [`describe`] (footer only).
//!
//! ```
//! use std::sync::Arc;
//!
//! use arrow::array::{Int64Array, RecordBatch, RecordBatchIterator, StringArray};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use store_serializers::parquet::{self, Compression, ParquetOptions};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::Utf8, true),
//! ]));
//! let batch = RecordBatch::try_new(
//!     schema.clone(),
//!     vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("ada"), None]))],
//! )?;
//! let reader = RecordBatchIterator::new([Ok(batch.clone())], schema.clone());
//!
//! let options = ParquetOptions {
//!     compression: Compression::Snappy,
//!     key_value_metadata: vec![("written_by".into(), "example".into())],
//! };
//! let data = parquet::encode(reader, &options)?;
//!
//! let summary = parquet::describe(&data)?;
//! assert_eq!(summary.row_count, 2);
//! assert_eq!(summary.compression.as_deref(), Some("snappy"));
//!
//! let (read_schema, batches, metadata) = parquet::decode(data)?;
//! assert_eq!(read_schema, schema);
//! assert_eq!(batches, [batch]);
//! assert_eq!(metadata, [("written_by".to_owned(), "example".to_owned())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use ::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use ::parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use ::parquet::arrow::{ArrowWriter, ProjectionMask, parquet_to_arrow_schema};
use ::parquet::basic::{Compression as Codec, ZstdLevel};
use ::parquet::errors::ParquetError;
use ::parquet::file::metadata::{KeyValue, ParquetMetaData};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::ChunkReader;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::ColumnPath;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use bytes::Bytes;

use crate::SerializeError;

mod arriving;
mod columns;
mod stored;

pub use arriving::{ArrivingFile, FOOTER_READ, RowGroup};
pub use columns::{Pieces, column_ranges, decode_columns};
pub use stored::{Stored, holds, prepare};

/// The serializer name used in errors, `"parquet"`.
pub const NAME: &str = "parquet";
/// The file extension, `".parquet"`.
pub const EXTENSION: &str = ".parquet";

/// The key under which the Arrow writer stores the Arrow schema in the footer;
/// [`decode`] uses it to restore the schema and leaves it out of the metadata it returns.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

/// How column chunks are compressed.
///
/// Parses from and displays as `"zstd"`, `"snappy"` and `"none"`:
///
/// ```
/// use store_serializers::parquet::Compression;
///
/// assert_eq!("snappy".parse::<Compression>()?, Compression::Snappy);
/// assert_eq!(Compression::default(), Compression::Zstd(3));
/// assert_eq!(Compression::default().to_string(), "zstd");
/// assert_eq!(
///     "gzip".parse::<Compression>().unwrap_err().to_string(),
///     r#"unknown parquet compression "gzip"; accepted: "zstd", "snappy", "none""#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Zstandard at the given level (1..=22); the default, at level 3.
    Zstd(i32),
    /// Snappy: faster, larger files.
    Snappy,
    /// Uncompressed.
    None,
}

impl Compression {
    /// The names [`FromStr`] accepts.
    pub const NAMES: [&'static str; 3] = ["zstd", "snappy", "none"];

    fn codec(self) -> Result<Codec, SerializeError> {
        Ok(match self {
            Compression::Zstd(level) => {
                Codec::ZSTD(ZstdLevel::try_new(level).map_err(|e| SerializeError::encode(NAME, e))?)
            }
            Compression::Snappy => Codec::SNAPPY,
            Compression::None => Codec::UNCOMPRESSED,
        })
    }
}

impl Default for Compression {
    /// Zstandard level 3: a good size/speed balance, and the level most writers use.
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Zstd(_) => "zstd",
            Compression::Snappy => "snappy",
            Compression::None => "none",
        })
    }
}

/// A compression name that is not one of [`Compression::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown parquet compression {0:?}; accepted: \"zstd\", \"snappy\", \"none\"")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    /// `"zstd"` (level 3), `"snappy"` or `"none"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zstd" => Ok(Compression::default()),
            "snappy" => Ok(Compression::Snappy),
            "none" => Ok(Compression::None),
            other => Err(UnknownCompression(other.to_owned())),
        }
    }
}

/// What [`encode`] writes besides the data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Codec for every column chunk.
    pub compression: Compression,
    /// Stored as the file's key-value metadata, in this order.
    pub key_value_metadata: Vec<(String, String)>,
}

/// Writes the batches of `reader` as one Parquet file.
///
/// Batches are encoded as they arrive (see [`encode_to`]); a row group holds a
/// million rows, or fewer where rows like the first batch's would take more than
/// 32 MiB in memory. The columns are stored with the types [`prepare`] gives,
/// and that Arrow schema in the footer, so [`decode`] gives back those types
/// (timestamps with their time zone, dictionaries, extension types, ...).
///
/// # Errors
///
/// An encode error if the reader yields an error or a batch whose schema
/// differs from `reader.schema()`, or if a type cannot be written to Parquet
/// (see [`prepare`]).
pub fn encode(reader: impl RecordBatchReader, options: &ParquetOptions) -> Result<Bytes, SerializeError> {
    encode_to(reader, options, Vec::new()).map(|(file, _)| Bytes::from(file))
}

/// What [`encode_to`] wrote.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Rows written.
    pub row_count: u64,
    /// The table's Arrow schema.
    pub schema: SchemaRef,
}

/// Writes the batches of `reader` as Parquet into `sink` as they arrive, so
/// only the row group being built is held in memory; returns the sink and what
/// was written.
///
/// The columns of a row group are encoded and compressed on every core, each
/// core a share of the columns, and the file is the same, byte for byte, as
/// `parquet`'s own `ArrowWriter` writes with the same properties, given the
/// batches [`prepare`] makes of `reader`'s. The properties are the
/// writer's defaults, with `options`, except that a column of numbers whose first
/// batch shows too few repeats for a dictionary to pay is written without one.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::Int64Array;
/// # use arrow::datatypes::{DataType, Field, Schema};
/// # use arrow::record_batch::{RecordBatch, RecordBatchIterator};
/// use store_serializers::parquet::{ParquetOptions, encode_to};
/// let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
/// let (file, written) = encode_to(RecordBatchIterator::new([Ok(batch)], schema), &ParquetOptions::default(), Vec::new())?;
/// assert_eq!(written.row_count, 3);
/// assert_eq!(&file[..4], b"PAR1");
/// # Ok::<(), store_serializers::SerializeError>(())
/// ```
///
/// # Errors
///
/// An encode error if a batch fails to arrive, does not fit the schema, or the
/// sink refuses bytes.
pub fn encode_to<W: std::io::Write + Send>(
    reader: impl RecordBatchReader,
    options: &ParquetOptions,
    sink: W,
) -> Result<(W, Encoded), SerializeError> {
    caught(SerializeError::encode, || {
        let reader = prepare(reader)?;
        let metadata = options.key_value_metadata.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
        let mut properties = WriterProperties::builder()
            .set_compression(options.compression.codec()?)
            .set_key_value_metadata(Some(metadata));
        let schema = reader.schema();
        let mut batches = reader.peekable();
        if let Some(Ok(first)) = batches.peek() {
            for column in columns_without_dictionary(&schema, first) {
                properties = properties.set_column_dictionary_enabled(column, false);
            }
        }
        write_row_groups(RecordBatchIterator::new(batches, schema), properties.build(), sink)
    })
}

/// What `work` returns, or an error (made by `error`, as [`SerializeError::encode`] or
/// [`SerializeError::decode`] make them) if the Parquet or Arrow crates panic in it: they do
/// on some types and files (128-bit integers, for one) rather than return an error.
fn caught<T>(
    error: fn(&str, String) -> SerializeError,
    work: impl FnOnce() -> Result<T, SerializeError>,
) -> Result<T, SerializeError> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = (panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(error(NAME, format!("the Parquet library failed: {message}")))
    })
}

/// How many of a column's first values [`columns_without_dictionary`] looks at, at most
/// and at least: fewer say too little about the rest, and the column keeps its dictionary.
const DICTIONARY_SAMPLE: usize = 1 << 16;
const DICTIONARY_SAMPLE_MIN: usize = 1 << 10;

/// The top-level columns of 4- or 8-byte values whose first values in `batch` are so
/// varied that a dictionary would be larger than the values themselves. The writer
/// would otherwise hash every value into a dictionary until it outgrows its page
/// (1 MiB) and only then fall back to plain values, having written the dictionary
/// and its indices for nothing: for random floats that costs about 3% more bytes
/// and a quarter of the encoding time. The columns are named as in `schema`, the one
/// the file is written with.
fn columns_without_dictionary(schema: &SchemaRef, batch: &RecordBatch) -> Vec<ColumnPath> {
    schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(field, column)| {
            let Some(width) = plain_width(field.data_type()) else { return false };
            let data = column.to_data();
            let valid = |i: &usize| data.is_valid(*i);
            let first = 0..data.len().min(DICTIONARY_SAMPLE);
            let mut sample: Vec<u64> = if width == 4 {
                let values = data.buffer::<u32>(0);
                first.filter(valid).map(|i| u64::from(values[i])).collect()
            } else {
                let values = data.buffer::<u64>(0);
                first.filter(valid).map(|i| values[i]).collect()
            };
            let count = sample.len();
            if count < DICTIONARY_SAMPLE_MIN {
                return false;
            }
            sample.sort_unstable();
            sample.dedup();
            let distinct = sample.len();
            let index_bits = usize::BITS - distinct.saturating_sub(1).leading_zeros();
            distinct * width + (count * index_bits as usize).div_ceil(8) >= count * width
        })
        .map(|(field, _)| ColumnPath::new(vec![field.name().clone()]))
        .collect()
}

/// The bytes a value of `data_type` takes, for the types whose Arrow values are written
/// to Parquet as they are, 4- or 8-byte numbers. (Date64 is left out: the writer may
/// store it as 4-byte days.)
fn plain_width(data_type: &DataType) -> Option<usize> {
    match data_type {
        DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date32 | DataType::Time32(_) => Some(4),
        DataType::Int64
        | DataType::UInt64
        | DataType::Float64
        | DataType::Time64(_)
        | DataType::Timestamp(..)
        | DataType::Duration(_) => Some(8),
        _ => None,
    }
}

/// [`encode_to`] with the writer's `properties` as given.
fn write_row_groups<W: std::io::Write + Send>(
    reader: impl RecordBatchReader,
    properties: WriterProperties,
    sink: W,
) -> Result<(W, Encoded), SerializeError> {
    let encode_error = |e: ParquetError| SerializeError::encode(NAME, e);
    let schema = reader.schema();
    // The Arrow writer sets the file up (the Parquet schema, the Arrow schema in the footer);
    // the row groups are encoded here.
    let (mut file, factory) = ArrowWriter::try_new(sink, schema.clone(), Some(properties))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(encode_error)?;
    let max_rows_per_group = file.properties().max_row_group_row_count().unwrap_or(usize::MAX);
    let mut rows_per_group = None;
    let workers = cores().min(schema.fields().len()).max(1);
    // Each row group is appended to the file as soon as it is full, before the next one
    // starts: encoding ahead while it is written out held a second row group's pages and
    // was no faster, since the appending competes for the same cores.
    let mut filling: Option<RowGroupEncoder> = None;
    let mut row_count = 0;
    for batch in reader {
        let mut batch = batch.map_err(|e| SerializeError::encode(NAME, e))?;
        if batch.num_columns() != schema.fields().len() {
            return Err(encode_error(ParquetError::General(format!(
                "a batch has {} columns, the table's schema {}",
                batch.num_columns(),
                schema.fields().len()
            ))));
        }
        row_count += batch.num_rows() as u64;
        let rows_per_group = *rows_per_group.get_or_insert_with(|| max_rows_per_group.min(rows_in(&batch)));
        while batch.num_rows() > 0 {
            let encoder = match &mut filling {
                Some(encoder) => encoder,
                None => {
                    let index = file.flushed_row_groups().len();
                    let started = RowGroupEncoder::start(&factory, &file, index, &schema, workers);
                    filling.insert(started.map_err(encode_error)?)
                }
            };
            let rows = (rows_per_group - encoder.rows).min(batch.num_rows());
            encoder.rows += rows;
            let sent = encoder.send(batch.slice(0, rows));
            if !sent {
                // A worker stops early only on an error, which finishing its row group reports.
                let failed = filling.take().expect("started above").finish(&mut file);
                return Err(encode_error(failed.err().unwrap_or_else(|| {
                    ParquetError::General("a column encoder stopped before its row group was complete".into())
                })));
            }
            if encoder.rows == rows_per_group {
                filling.take().expect("started above").finish(&mut file).map_err(encode_error)?;
            }
            batch = batch.slice(rows, batch.num_rows() - rows);
        }
    }
    if let Some(encoder) = filling {
        encoder.finish(&mut file).map_err(encode_error)?;
    }
    let sink = file.into_inner().map_err(encode_error)?;
    Ok((sink, Encoded { row_count, schema }))
}

/// A row group's size in memory, before encoding, at most: its pages are held until it is
/// complete, and a reader needs all of its bytes before it decodes it, so rows of a wide
/// table make smaller row groups.
const ROW_GROUP_BYTES: usize = 32 << 20;

/// How many rows like those of `batch` fill [`ROW_GROUP_BYTES`]; at least 1024.
fn rows_in(batch: &RecordBatch) -> usize {
    let bytes: usize = batch.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0)).sum();
    let bytes_per_row = bytes.div_ceil(batch.num_rows().max(1)).max(1);
    (ROW_GROUP_BYTES / bytes_per_row).max(1024)
}

/// The cores to encode and decode on, asked once: the answer reads cgroup files.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// A row group being encoded. Each worker thread owns the column writers of a
/// share of the table's columns and encodes each batch's part of them as the
/// batch arrives, so the row group's input is never held whole.
struct RowGroupEncoder {
    workers: Vec<ColumnWorker>,
    /// Rows sent so far.
    rows: usize,
}

/// A thread encoding some of a row group's leaf columns.
struct ColumnWorker {
    batches: SyncSender<RecordBatch>,
    /// The file-wide indices of its leaf columns, in the order it encodes them.
    leaves: Vec<usize>,
    encoded: JoinHandle<Result<Vec<ArrowColumnChunk>, ParquetError>>,
}

impl RowGroupEncoder {
    /// Column writers for row group `index` of `file`, shared out over `workers` threads,
    /// whole columns each (a nested column's leaves stay together).
    fn start<W: std::io::Write + Send>(
        factory: &ArrowRowGroupWriterFactory,
        file: &SerializedFileWriter<W>,
        index: usize,
        schema: &SchemaRef,
        workers: usize,
    ) -> Result<Self, ParquetError> {
        let writers = factory.create_column_writers(index)?;
        let mut shares: Vec<(Vec<usize>, Vec<usize>, Vec<ArrowColumnWriter>)> =
            (0..workers).map(|_| Default::default()).collect();
        for (leaf, writer) in writers.into_iter().enumerate() {
            let column = file.schema_descr().get_column_root_idx(leaf);
            let (columns, leaves, writers) = &mut shares[column % workers];
            if columns.last() != Some(&column) {
                columns.push(column);
            }
            leaves.push(leaf);
            writers.push(writer);
        }
        let workers = shares
            .into_iter()
            .map(|(columns, leaves, writers)| {
                // One batch queued per worker: the reader runs at most a batch ahead of the encoding.
                let (batches, queue) = sync_channel::<RecordBatch>(1);
                let schema = schema.clone();
                let encoded = std::thread::spawn(move || encode_columns(&schema, &columns, writers, queue));
                ColumnWorker { batches, leaves, encoded }
            })
            .collect();
        Ok(Self { workers, rows: 0 })
    }

    /// Hands `batch` to every worker; false if one has stopped.
    fn send(&self, batch: RecordBatch) -> bool {
        self.workers.iter().all(|worker| worker.batches.send(batch.clone()).is_ok())
    }

    /// Waits for the workers and appends the encoded columns to `file` as one row group, in schema order.
    fn finish<W: std::io::Write + Send>(self, file: &mut SerializedFileWriter<W>) -> Result<(), ParquetError> {
        let mut chunks = Vec::new();
        for ColumnWorker { batches, leaves, encoded } in self.workers {
            drop(batches);
            let encoded = encoded.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            chunks.extend(leaves.into_iter().zip(encoded));
        }
        chunks.sort_unstable_by_key(|(leaf, _)| *leaf);
        let mut row_group = file.next_row_group()?;
        for (_, chunk) in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }
}

/// A worker's loop: `columns` of every batch from `queue` into their leaf `writers`, then the encoded chunks.
fn encode_columns(
    schema: &SchemaRef,
    columns: &[usize],
    mut writers: Vec<ArrowColumnWriter>,
    queue: std::sync::mpsc::Receiver<RecordBatch>,
) -> Result<Vec<ArrowColumnChunk>, ParquetError> {
    for batch in queue {
        let mut leaf_writers = writers.iter_mut();
        for &column in columns {
            for leaf in compute_leaves(schema.field(column), batch.column(column))? {
                leaf_writers.next().expect("a writer for every leaf").write(&leaf)?;
            }
        }
    }
    writers.into_iter().map(ArrowColumnWriter::close).collect()
}

/// What [`decode`] returns: the Arrow schema, the batches, and the key-value metadata.
pub type Decoded = (SchemaRef, Vec<RecordBatch>, Vec<(String, String)>);

/// Reads a whole Parquet file: its Arrow schema, its batches and its
/// key-value metadata (without the Arrow writer's own `ARROW:schema` entry;
/// keys stored without a value come back with `""`).
///
/// # Errors
///
/// A decode error if `data` is not a Parquet file or cannot be read as Arrow.
pub fn decode(data: Bytes) -> Result<Decoded, SerializeError> {
    decode_from(data, None)
}

/// [`decode`] from any reader of the file, only the top-level columns `columns`
/// names if given (see [`columns::chosen`]).
fn decode_from<T: ChunkReader + Clone + 'static>(
    data: T,
    columns: Option<&[String]>,
) -> Result<Decoded, SerializeError> {
    caught(SerializeError::decode, || {
        let decode_error = |e| SerializeError::decode(NAME, e);
        let footer = ArrowReaderMetadata::load(&data, Default::default()).map_err(decode_error)?;
        let metadata = key_value_metadata(footer.metadata());
        let (footer, schema) = reader_footer(footer)?;
        let (mask, schema, order) = match columns {
            None => (ProjectionMask::all(), schema, None),
            Some(columns) => {
                let (mask, read, order) = columns::projection(&footer, &schema, columns)?;
                (mask, read, Some(order))
            }
        };
        let groups = footer.metadata().num_row_groups();
        // Row groups are decoded on every core, a contiguous run of them each, in file order.
        let threads = cores().min(groups.max(1));
        let runs: Vec<Vec<usize>> =
            (0..threads).map(|t| (groups * t / threads..groups * (t + 1) / threads).collect()).collect();
        let decode_run = |groups: Vec<usize>| decode_row_groups(data.clone(), footer.clone(), groups, &mask, &schema);
        let decoded: Vec<Result<Vec<RecordBatch>, SerializeError>> = if threads == 1 {
            runs.into_iter().map(decode_run).collect()
        } else {
            std::thread::scope(|scope| {
                let running: Vec<_> = runs.into_iter().map(|run| scope.spawn(|| decode_run(run))).collect();
                running
                    .into_iter()
                    .map(|thread| thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                    .collect()
            })
        };
        let mut batches = Vec::new();
        for run in decoded {
            batches.extend(run?);
        }
        match order {
            None => Ok((schema, batches, metadata)),
            Some(order) => {
                columns::reorder(&schema, batches, &order).map(|(schema, batches)| (schema, batches, metadata))
            }
        }
    })
}

/// The batches of some row groups, one per group, with the schema as written.
fn decode_row_groups<T: ChunkReader + 'static>(
    data: T,
    footer: ArrowReaderMetadata,
    groups: Vec<usize>,
    mask: &ProjectionMask,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, SerializeError> {
    // Batches as large as the largest row group: the default 1024 rows would cut a large
    // table into thousands of chunks that every consumer (pandas above all) has to stitch together.
    let rows = groups.iter().map(|&g| footer.metadata().row_group(g).num_rows()).max().unwrap_or(0);
    row_group_batches(data, footer, groups, mask, schema, (rows as usize).max(1024))?.collect()
}

/// The batches of some row groups, `batch_rows` rows at most each, decoded as they are
/// taken, with the schema as written (the columns `mask` picks of it).
fn row_group_batches<T: ChunkReader + 'static>(
    data: T,
    footer: ArrowReaderMetadata,
    groups: Vec<usize>,
    mask: &ProjectionMask,
    schema: &SchemaRef,
    batch_rows: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, SerializeError>> + use<T>, SerializeError> {
    let decode_error = |e: ParquetError| SerializeError::decode(NAME, e);
    let mut batches = caught(SerializeError::decode, || {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(data, footer);
        let builder = builder.with_row_groups(groups).with_projection(mask.clone());
        builder.with_batch_size(batch_rows).build().map_err(decode_error)
    })?;
    let schema = schema.clone();
    Ok(std::iter::from_fn(move || {
        let batch = match caught(SerializeError::decode, || Ok(batches.next())) {
            Ok(batch) => batch?,
            Err(e) => return Some(Err(e)),
        };
        let batch = batch.and_then(|batch| RecordBatch::try_new(schema.clone(), batch.columns().to_vec()));
        Some(batch.map_err(|e| SerializeError::decode(NAME, e)))
    }))
}

/// The Arrow schema as it was written, with the types pyarrow reads it as (see
/// [`stored::read_type`]). The reader's own schema also carries every key-value
/// entry as schema metadata; going from the `ARROW:schema` entry alone keeps the
/// file's key-value metadata out of the table.
fn arrow_schema(metadata: &ParquetMetaData) -> Result<SchemaRef, SerializeError> {
    let file = metadata.file_metadata();
    let entries = file.key_value_metadata().map(Vec::as_slice).unwrap_or_default();
    let arrow_entry: Vec<KeyValue> = entries.iter().filter(|kv| kv.key == ARROW_SCHEMA_KEY).cloned().collect();
    let schema = parquet_to_arrow_schema(file.schema_descr(), Some(&arrow_entry))
        .map_err(|e| SerializeError::decode(NAME, e))?;
    let fields: Vec<_> = (schema.fields().iter())
        .map(|field| field.as_ref().clone().with_data_type(stored::read_type(field.data_type())))
        .collect();
    Ok(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())))
}

/// `footer` set to decode to the file's [`arrow_schema`], and that schema.
fn reader_footer(footer: ArrowReaderMetadata) -> Result<(ArrowReaderMetadata, SchemaRef), SerializeError> {
    let schema = arrow_schema(footer.metadata())?;
    let types = |schema: &SchemaRef| schema.fields().iter().map(|f| f.data_type().clone()).collect::<Vec<_>>();
    if types(footer.schema()) == types(&schema) {
        return Ok((footer, schema));
    }
    let options = ArrowReaderOptions::new().with_schema(schema.clone());
    let footer = ArrowReaderMetadata::try_new(footer.metadata().clone(), options);
    Ok((footer.map_err(|e| SerializeError::decode(NAME, e))?, schema))
}

/// What the footer of a Parquet file says, without reading the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetSummary {
    /// Rows in all row groups.
    pub row_count: u64,
    /// The Arrow schema the file decodes to.
    pub schema: SchemaRef,
    /// Codec of the first column chunk, lower case (`"zstd"`, `"snappy"`,
    /// `"none"`, or another Parquet codec such as `"gzip"` for files written
    /// elsewhere); `None` when the file has no column chunks (no rows).
    pub compression: Option<String>,
    /// Key-value metadata, as [`decode`] returns it.
    pub key_value_metadata: Vec<(String, String)>,
}

/// Reads only the footer of a Parquet file: row count, schema, compression and
/// key-value metadata.
///
/// # Errors
///
/// A decode error if `data` does not end in a valid Parquet footer.
pub fn describe(data: &Bytes) -> Result<ParquetSummary, SerializeError> {
    caught(SerializeError::decode, || {
        let metadata =
            ArrowReaderMetadata::load(data, Default::default()).map_err(|e| SerializeError::decode(NAME, e))?;
        let parquet = metadata.metadata();
        let compression =
            parquet.row_groups().iter().flat_map(|group| group.columns()).next().map(|column| {
                match column.compression() {
                    Codec::UNCOMPRESSED => "none".to_owned(),
                    Codec::ZSTD(_) => "zstd".to_owned(),
                    Codec::GZIP(_) => "gzip".to_owned(),
                    Codec::BROTLI(_) => "brotli".to_owned(),
                    other => other.to_string().to_lowercase(),
                }
            });
        Ok(ParquetSummary {
            row_count: u64::try_from(parquet.file_metadata().num_rows()).unwrap_or(0),
            schema: arrow_schema(parquet)?,
            compression,
            key_value_metadata: key_value_metadata(parquet),
        })
    })
}

fn key_value_metadata(metadata: &ParquetMetaData) -> Vec<(String, String)> {
    let entries = metadata.file_metadata().key_value_metadata().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter(|kv| kv.key != ARROW_SCHEMA_KEY)
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatchIterator,
        StringArray, StructArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, TimeUnit};
    use arrow::error::ArrowError;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("small", DataType::Int32, true),
            Field::new("price", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("active", DataType::Boolean, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ]))
    }

    /// Batch `n` of a table: three rows, with nulls in every nullable column.
    fn batch(n: i64) -> RecordBatch {
        let base = n * 3;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![base, base + 1, base + 2])),
            Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(Float64Array::from(vec![Some(1.5), Some(f64::NAN), None])),
            Arc::new(StringArray::from(vec![Some("ada"), None, Some("grâce")])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_767_225_600_000_000), None, Some(0)]).with_timezone("UTC"),
            ),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    fn reader(batches: Vec<RecordBatch>) -> impl RecordBatchReader {
        RecordBatchIterator::new(batches.into_iter().map(Ok), schema())
    }

    fn concat(batches: &[RecordBatch]) -> RecordBatch {
        arrow::compute::concat_batches(&batches.first().map_or_else(schema, RecordBatch::schema), batches).unwrap()
    }

    /// The same rows, however they are split into batches. NaN != NaN in
    /// `PartialEq`, so float columns are compared by bits and nulls.
    fn assert_same_rows(expected: &[RecordBatch], actual: &[RecordBatch]) {
        let (expected, actual) = (concat(expected), concat(actual));
        assert_eq!(expected.schema(), actual.schema());
        for (i, (e, a)) in expected.columns().iter().zip(actual.columns()).enumerate() {
            if let (Some(e), Some(a)) =
                (e.as_any().downcast_ref::<Float64Array>(), a.as_any().downcast_ref::<Float64Array>())
            {
                let bits = |x: &Float64Array| x.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>();
                assert_eq!(bits(e), bits(a), "column {i}");
            } else {
                assert_eq!(e, a, "column {i}");
            }
        }
    }

    #[test]
    fn roundtrips_multi_batch_table() {
        let batches: Vec<_> = (0..4).map(batch).collect();
        let data = encode(reader(batches.clone()), &ParquetOptions::default()).unwrap();
        assert_eq!(&data[..4], b"PAR1");

        let (read_schema, read, metadata) = decode(data).unwrap();
        assert_eq!(read_schema, schema());
        assert!(metadata.is_empty(), "{metadata:?}");
        assert_same_rows(&batches, &read);
        assert_eq!(concat(&read).num_rows(), 12);
        assert_eq!(concat(&read).column(3).null_count(), 4);
    }

    /// A table of `columns` Int64 columns and `rows` rows.
    fn wide(columns: usize, rows: usize) -> RecordBatch {
        let fields: Vec<Field> = (0..columns).map(|c| Field::new(format!("c{c}"), DataType::Int64, false)).collect();
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), vec![values; columns]).unwrap()
    }

    #[test]
    fn row_groups_hold_rows_for_a_few_mib_whatever_the_width() {
        assert_eq!(rows_in(&wide(256, 10)), ROW_GROUP_BYTES / 2048);
        assert_eq!(rows_in(&wide(256, 100_000).slice(5, 10)), ROW_GROUP_BYTES / 2048, "a slice counts its rows only");
        assert_eq!(rows_in(&wide(1 << 16, 1)), 1024, "never fewer than 1024 rows");
        let table = wide(256, 20_000); // 2048 bytes a row
        let options = ParquetOptions { compression: Compression::None, ..Default::default() };
        let file = encode(RecordBatchIterator::new([Ok(table.clone())], table.schema()), &options).unwrap();
        let footer = ArrowReaderMetadata::load(&file, Default::default()).unwrap();
        let rows: Vec<i64> = footer.metadata().row_groups().iter().map(|group| group.num_rows()).collect();
        let full = (ROW_GROUP_BYTES / 2048) as i64;
        assert_eq!(rows, [full, 20_000 - full]);
        let read = arrow::compute::concat_batches(&table.schema(), &decode(file).unwrap().1).unwrap();
        assert!(read == table);
    }

    #[test]
    fn decodes_one_batch_per_row_group() {
        let batches: Vec<_> = (0..1000).map(batch).collect(); // 3000 rows, in one row group
        let (_, read, _) = decode(encode(reader(batches.clone()), &ParquetOptions::default()).unwrap()).unwrap();
        assert_eq!(read.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [3000], "not 1024-row slices");
        assert_same_rows(&batches, &read);
    }

    #[test]
    fn decodes_many_row_groups_in_file_order() {
        // Row groups of 3 rows, decoded a run of groups per core: the rows come back in order.
        let batches: Vec<_> = (0..7).map(batch).collect();
        let properties = WriterProperties::builder().set_max_row_group_row_count(Some(3)).build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema(), Some(properties)).unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        let data = Bytes::from(writer.into_inner().unwrap());
        let (_, read, _) = decode(data).unwrap();
        assert_same_rows(&batches, &read);
    }

    #[test]
    fn columns_of_varied_numbers_are_written_without_a_dictionary() {
        // 70,000 rows that all repeat, then 100,000 that mostly do not; the batch written
        // is a slice of the second part, so only values from its offset may be looked at.
        let (skipped, rows) = (70_000, 100_000);
        let schema = Arc::new(Schema::new(vec![
            Field::new("varied", DataType::Float64, false),
            Field::new("repeated", DataType::Float64, false),
            Field::new("ids", DataType::Int32, true),
            Field::new("names", DataType::Utf8, false),
        ]));
        let all = 0..skipped + rows;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from_iter_values(
                all.clone().map(|i| if i < skipped { 1.0 } else { f64::from(i).sqrt() }),
            )),
            Arc::new(Float64Array::from_iter_values(all.clone().map(|i| f64::from(i % 100)))),
            Arc::new(all.clone().map(|i| (i >= skipped && i % 7 != 0).then_some(i)).collect::<Int32Array>()),
            Arc::new(StringArray::from_iter_values(all.map(|i| format!("n{}", i % 3)))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap().slice(skipped as usize, rows as usize);
        let plain = ParquetOptions { compression: Compression::None, ..Default::default() };
        let ours = encode(RecordBatchIterator::new([Ok(batch.clone())], schema.clone()), &plain).unwrap();

        let footer = ArrowReaderMetadata::load(&ours, Default::default()).unwrap();
        let with_dictionary: Vec<bool> =
            footer.metadata().row_group(0).columns().iter().map(|c| c.dictionary_page_offset().is_some()).collect();
        assert_eq!(with_dictionary, [false, true, false, true]);
        let (_, read, _) = decode(ours.clone()).unwrap();
        assert_same_rows(std::slice::from_ref(&batch), &read);

        // The same rows with every dictionary the writer starts, and the same (no) compression.
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(WriterProperties::default())).unwrap();
        writer.write(&batch).unwrap();
        let with_every_dictionary = writer.into_inner().unwrap();
        assert!(ours.len() < with_every_dictionary.len(), "{} against {}", ours.len(), with_every_dictionary.len());

        // A first batch of a few hundred values says too little: every column keeps its dictionary.
        let short = batch.slice(0, 500);
        let file = encode(RecordBatchIterator::new([Ok(short.clone()), Ok(batch)], short.schema()), &plain);
        let footer = ArrowReaderMetadata::load(&file.unwrap(), Default::default()).unwrap();
        assert!(footer.metadata().row_group(0).columns().iter().all(|c| c.dictionary_page_offset().is_some()));
    }

    #[test]
    fn row_groups_encoded_on_every_core_are_the_files_arrow_writer_writes() {
        // Nested columns (several leaves each), batches that straddle row groups, a last group part full.
        let item = Arc::new(Field::new("item", DataType::Int32, true));
        let point =
            Fields::from(vec![Field::new("x", DataType::Float64, false), Field::new("y", DataType::Utf8, true)]);
        let nested = Arc::new(Schema::new(
            schema()
                .fields()
                .iter()
                .cloned()
                .chain([
                    Arc::new(Field::new("tags", DataType::List(item), true)),
                    Arc::new(Field::new("point", DataType::Struct(point.clone()), true)),
                ])
                .collect::<Vec<_>>(),
        ));
        let batches: Vec<_> = (0..7)
            .map(|n| {
                let mut columns = batch(n).columns().to_vec();
                let tags = ListArray::from_iter_primitive::<Int32Type, _, _>([
                    Some(vec![Some(n as i32), None]),
                    None,
                    Some(vec![]),
                ]);
                let point = StructArray::new(
                    point.clone(),
                    vec![
                        Arc::new(Float64Array::from(vec![n as f64, 0.5, -1.0])),
                        Arc::new(StringArray::from(vec![None, Some("b"), Some("c")])),
                    ],
                    None,
                );
                columns.extend([Arc::new(tags) as ArrayRef, Arc::new(point)]);
                RecordBatch::try_new(nested.clone(), columns).unwrap()
            })
            .collect();
        let properties = || WriterProperties::builder().set_max_row_group_row_count(Some(5)).build();

        let mut writer = ArrowWriter::try_new(Vec::new(), nested.clone(), Some(properties())).unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        let expected = writer.into_inner().unwrap();
        let iterator = RecordBatchIterator::new(batches.clone().into_iter().map(Ok), nested.clone());
        let (ours, written) = write_row_groups(iterator, properties(), Vec::new()).unwrap();

        assert_eq!(written.row_count, 21);
        assert_eq!(ours, expected);
        let footer = ArrowReaderMetadata::load(&Bytes::from(ours), Default::default()).unwrap();
        let rows: Vec<i64> = footer.metadata().row_groups().iter().map(|group| group.num_rows()).collect();
        assert_eq!(rows, [5, 5, 5, 5, 1]);
    }

    #[test]
    fn a_batch_that_does_not_fit_the_schema_is_an_encode_error() {
        let short = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let err = encode(RecordBatchIterator::new([Ok(short)], schema()), &ParquetOptions::default()).unwrap_err();
        assert!(!err.is_decode());
        assert!(err.to_string().contains("a batch has 1 columns, the table's schema 6"), "{err}");
    }

    #[test]
    fn a_column_of_another_type_is_an_encode_error() {
        // Found by a column worker, which stops; the error still reaches the caller.
        let mut columns = batch(0).columns().to_vec();
        columns[0] = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        let fields: Vec<_> = schema().fields().iter().skip(1).cloned().collect();
        let other = Arc::new(Schema::new(
            [Arc::new(Field::new("id", DataType::Utf8, false))].into_iter().chain(fields).collect::<Vec<_>>(),
        ));
        let wrong = RecordBatch::try_new(other, columns).unwrap();
        let batches = [Ok(batch(0)), Ok(wrong), Ok(batch(1))];
        let err = encode(RecordBatchIterator::new(batches, schema()), &ParquetOptions::default()).unwrap_err();
        assert!(!err.is_decode());
        assert!(err.to_string().contains("Field 'id' has type Int64, array has type Utf8"), "{err}");
    }

    /// A file of 3-row row groups, one per batch.
    fn file_of_row_groups(batches: &[RecordBatch]) -> Bytes {
        let properties = WriterProperties::builder().set_max_row_group_row_count(Some(3)).build();
        let iterator = RecordBatchIterator::new(batches.iter().cloned().map(Ok), schema());
        Bytes::from(write_row_groups(iterator, properties, Vec::new()).unwrap().0)
    }

    fn tail_of(file: &Bytes, length: u64) -> Bytes {
        file.slice(file.len().saturating_sub(length as usize)..)
    }

    #[test]
    fn a_file_arriving_in_pieces_decodes_row_group_by_row_group() {
        let batches: Vec<_> = (0..6).map(batch).collect();
        let file = file_of_row_groups(&batches);
        let footer = ArrivingFile::footer_length(&file).unwrap();
        let mut arriving = ArrivingFile::new(tail_of(&file, footer), file.len() as u64).unwrap().unwrap();
        let (mut decoded, mut ready_early) = (Vec::new(), 0);
        let pieces: Vec<&[u8]> = file.chunks(97).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let ready = arriving.push(Bytes::copy_from_slice(piece));
            if i + 1 < pieces.len() {
                ready_early += ready.len();
            }
            decoded.extend(ready.into_iter().map(|group| group.decode().unwrap()));
        }
        assert_eq!(ready_early, 6, "every row group is complete before the footer arrives");
        assert!(arriving.held() < footer + 97, "only the footer is still held, not the row groups' bytes");
        let (read_schema, read, metadata) = arriving.finish(decoded).unwrap();
        let (whole_schema, whole, whole_metadata) = decode(file).unwrap();
        assert_eq!((read_schema, metadata), (whole_schema, whole_metadata));
        assert_eq!(read.len(), 6, "a batch per row group");
        assert_same_rows(&whole, &read);
        assert_same_rows(&batches, &read);
    }

    #[test]
    fn a_row_group_decodes_in_batches_and_knows_its_first_row() {
        let batches: Vec<_> = (0..4).map(batch).collect();
        let file = file_of_row_groups(&batches);
        let mut arriving = ArrivingFile::new(file.clone(), file.len() as u64).unwrap().unwrap();
        assert_eq!(arriving.row_count(), 12);
        assert!(!arriving.has_no_nulls(), "every batch has nulls");
        let groups = arriving.push(file.clone());
        assert_eq!(groups.iter().map(RowGroup::first_row).collect::<Vec<_>>(), [0, 3, 6, 9]);
        let third = groups.into_iter().nth(2).unwrap();
        let pieces: Vec<_> = third.decode_in_batches(2).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(pieces.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [2, 1]);
        assert_same_rows(&batches[2..3], &pieces);

        let ids = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let ids = RecordBatch::try_new(ids, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let file =
            encode(RecordBatchIterator::new([Ok(ids.clone())], ids.schema()), &ParquetOptions::default()).unwrap();
        let arriving = ArrivingFile::new(file.clone(), file.len() as u64).unwrap().unwrap();
        assert!(arriving.has_no_nulls(), "a nullable column without nulls");
    }

    #[test]
    fn a_footer_longer_than_the_tail_asks_for_more() {
        let file = file_of_row_groups(&[batch(0), batch(1)]);
        let needed = ArrivingFile::footer_length(&file).unwrap();
        let size = file.len() as u64;
        assert!(ArrivingFile::new(tail_of(&file, needed - 1), size).unwrap().is_none());
        let mut arriving = ArrivingFile::new(tail_of(&file, needed), size).unwrap().unwrap();
        let groups = arriving.push(file.clone());
        let decoded = groups.into_iter().map(|group| group.decode().unwrap()).collect();
        assert_same_rows(&[batch(0), batch(1)], &arriving.finish(decoded).unwrap().1);
    }

    #[test]
    fn a_file_that_is_cut_short_or_changed_is_a_decode_error() {
        let file = file_of_row_groups(&[batch(0), batch(1)]);
        let size = file.len() as u64;
        let tail = tail_of(&file, FOOTER_READ);

        let mut short = ArrivingFile::new(tail.clone(), size).unwrap().unwrap();
        let decoded: Vec<_> =
            short.push(file.slice(..file.len() - 1)).into_iter().map(|g| g.decode().unwrap()).collect();
        let err = short.finish(decoded).unwrap_err();
        assert!(err.is_decode());
        assert!(err.to_string().contains(&format!("{} of the file's {size} bytes arrived", size - 1)), "{err}");

        let mut changed_file = file.to_vec();
        changed_file[file.len() - 20] ^= 1;
        let mut changed = ArrivingFile::new(tail, size).unwrap().unwrap();
        let decoded = changed.push(Bytes::from(changed_file)).into_iter().map(|g| g.decode().unwrap()).collect();
        let err = changed.finish(decoded).unwrap_err();
        assert!(err.to_string().contains("the file's footer changed while it was read"), "{err}");
    }

    #[test]
    fn a_tail_that_is_not_parquet_is_a_decode_error() {
        for tail in [&b"PAR"[..], b"not a parquet file at all"] {
            let err = ArrivingFile::new(Bytes::from_static(tail), 100).err().expect("an error");
            assert!(err.is_decode(), "{err}");
        }
    }

    #[test]
    fn empty_table_keeps_its_schema() {
        let data = encode(reader(vec![]), &ParquetOptions::default()).unwrap();
        let (read_schema, batches, _) = decode(data.clone()).unwrap();
        assert_eq!(read_schema, schema());
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
        let summary = describe(&data).unwrap();
        assert_eq!(summary.row_count, 0);
        assert_eq!(summary.compression, None);
    }

    #[test]
    fn compression_choices_are_recorded_and_read_back() {
        // Repetitive data, so the codecs visibly shrink it.
        let batches: Vec<_> = (0..200).map(|_| batch(0)).collect();
        let mut sizes = Vec::new();
        for (compression, name) in
            [(Compression::None, "none"), (Compression::Snappy, "snappy"), (Compression::Zstd(3), "zstd")]
        {
            let options = ParquetOptions { compression, ..Default::default() };
            let data = encode(reader(batches.clone()), &options).unwrap();
            let summary = describe(&data).unwrap();
            assert_eq!(summary.compression.as_deref(), Some(name));
            assert_eq!(summary.row_count, 600);
            assert_same_rows(&batches, &decode(data.clone()).unwrap().1);
            sizes.push(data.len());
        }
        assert!(sizes[1] < sizes[0] && sizes[2] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn bad_zstd_level_is_an_encode_error() {
        let options = ParquetOptions { compression: Compression::Zstd(99), ..Default::default() };
        let err = encode(reader(vec![batch(0)]), &options).unwrap_err();
        assert!(!err.is_decode());
        assert_eq!(err.serializer(), "parquet");
    }

    #[test]
    fn key_value_metadata_roundtrips_in_order() {
        let key_value_metadata =
            vec![("dagster_remote_store.library".to_owned(), "polars".to_owned()), ("a".to_owned(), "ü".to_owned())];
        let options = ParquetOptions { key_value_metadata: key_value_metadata.clone(), ..Default::default() };
        let data = encode(reader(vec![batch(0)]), &options).unwrap();
        assert_eq!(describe(&data).unwrap().key_value_metadata, key_value_metadata);
        assert_eq!(decode(data).unwrap().2, key_value_metadata);
    }

    #[test]
    fn schema_metadata_roundtrips_without_the_key_value_metadata() {
        let with_metadata = Arc::new(schema().as_ref().clone().with_metadata([("pandas".into(), "{}".into())].into()));
        let batch = batch(0).with_schema(with_metadata.clone()).unwrap();
        let options =
            ParquetOptions { key_value_metadata: vec![("library".into(), "pandas".into())], ..Default::default() };
        let data = encode(RecordBatchIterator::new([Ok(batch)], with_metadata.clone()), &options).unwrap();
        let (read_schema, batches, metadata) = decode(data.clone()).unwrap();
        assert_eq!(read_schema, with_metadata);
        assert_eq!(batches[0].schema(), with_metadata);
        assert_eq!(metadata, [("library".to_owned(), "pandas".to_owned())]);
        assert_eq!(describe(&data).unwrap().schema, with_metadata);
    }

    #[test]
    fn describe_reads_the_footer() {
        let data = encode(reader(vec![batch(0), batch(1)]), &ParquetOptions::default()).unwrap();
        let summary = describe(&data).unwrap();
        assert_eq!(summary.row_count, 6);
        assert_eq!(summary.schema, schema());
        assert_eq!(summary.compression.as_deref(), Some("zstd"));
    }

    #[test]
    fn garbage_is_a_decode_error_naming_parquet() {
        for data in [Bytes::from_static(b"not a parquet file at all"), Bytes::new()] {
            let err = decode(data.clone()).unwrap_err();
            assert!(err.is_decode());
            assert!(err.to_string().starts_with("parquet serializer could not decode the data: "), "{err}");
            assert!(describe(&data).unwrap_err().is_decode());
        }
    }

    #[test]
    fn reader_errors_are_encode_errors() {
        let failing =
            RecordBatchIterator::new([Ok(batch(0)), Err(ArrowError::ComputeError("upstream broke".into()))], schema());
        let err = encode(failing, &ParquetOptions::default()).unwrap_err();
        assert!(!err.is_decode());
        assert!(err.to_string().contains("upstream broke"), "{err}");
    }

    #[test]
    fn compression_parses_and_displays() {
        for name in Compression::NAMES {
            assert_eq!(name.parse::<Compression>().unwrap().to_string(), name);
        }
        assert_eq!("ZSTD".parse::<Compression>(), Err(UnknownCompression("ZSTD".into())));
    }
}
