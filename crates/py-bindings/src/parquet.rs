//! The `"parquet"` serializer: tables from polars, pandas, pyarrow or anything
//! exporting the Arrow PyCapsule stream interface (`__arrow_c_stream__`), encoded
//! and decoded in Rust with the GIL released. Reading gives back the library the
//! table was written with, recorded in the file's key-value metadata.

use std::any::Any;
use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use bytes::Bytes;
use io_manager::integrity::Written;
use io_manager::tables::Fetched;
use io_manager::upload::Upload;
use io_manager::{IoManager, OutputMetadata, Owner};
use pyo3::exceptions::{PyImportError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyDict, PyIterator};
use pyo3_arrow::{PyChunkedArray, PyRecordBatchReader, PyTable};
use serializers::parquet::{self, ArrivingFile, Compression, ParquetOptions};
use serializers::{SerializeError, Serializer};
use store_core::{ErrorKind, StorePath};

use crate::builtin::BuiltinSerializer;
use crate::errors::{StoreResultExt, guard, serialize_error};
use crate::frame::{FrameBlock, pyarrow_schema};
use crate::output;
use crate::owner::{PyOwner, to_owner};
use crate::runtime::{self, block_on};
use crate::store::{Store, parse_path};
use crate::value::PyValue;

/// Key-value metadata key naming the library that wrote the table.
const LIBRARY_KEY: &str = "dagster_remote_store.library";

/// What `into=` accepts besides `None`.
const TARGETS: [&str; 4] = ["polars", "polars_lazy", "pandas", "pyarrow"];

/// Parquet with a fixed compression; the writing library is added per table.
pub struct Parquet {
    compression: Compression,
}

impl Parquet {
    /// A serializer compressing with `compression`.
    pub fn new(compression: Compression) -> Self {
        Self { compression }
    }

    /// `obj` as Parquet bytes (see [`write_table`]).
    fn encode(&self, obj: &Bound<'_, PyAny>) -> Result<Bytes, SerializeError> {
        let table = open_table(obj)?;
        write_table(obj.py(), table, self.compression, Vec::new()).map(|(file, _)| Bytes::from(file))
    }
}

impl Serializer<PyValue> for Parquet {
    fn name(&self) -> &str {
        parquet::NAME
    }
    fn extension(&self) -> &str {
        parquet::EXTENSION
    }
    fn serialize(&self, value: &PyValue) -> Result<Bytes, SerializeError> {
        Python::attach(|py| self.encode(value.0.bind(py)))
    }
    fn deserialize(&self, data: Bytes) -> Result<PyValue, SerializeError> {
        // The IO manager calls this with the GIL released: decode first, then attach.
        let (schema, batches, metadata) = parquet::decode(data)?;
        Python::attach(|py| {
            to_python(py, schema, batches, Target::recorded(&metadata)).map(|obj| PyValue(obj.unbind()))
        })
        .map_err(|e| SerializeError::decode(parquet::NAME, e))
    }
}

/// The top-level package of `obj`'s type: `"polars"` for a `polars.dataframe.frame.DataFrame`.
fn library(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let module = obj.get_type().module()?.to_cow()?.into_owned();
    Ok(module.split('.').next().unwrap_or_default().to_owned())
}

/// Imports `module`, or says what to install (`package`) to read or write `what`.
fn import<'py>(py: Python<'py>, module: &str, package: &str, what: &str) -> PyResult<Bound<'py, PyModule>> {
    py.import(module).map_err(|cause| {
        let err =
            PyImportError::new_err(format!("the parquet serializer needs {module} for {what}: pip install {package}"));
        err.set_cause(py, Some(cause));
        err
    })
}

/// A table about to be written: its Arrow stream, the library it came from, and the
/// object itself (a polars LazyFrame collected, or as it is when streamed).
struct Table<'py> {
    reader: Box<dyn RecordBatchReader + Send>,
    library: String,
    object: Bound<'py, PyAny>,
}

/// The table `obj` holds, its Arrow stream opened. A Python exception (a `TypeError` for
/// anything but a table) is the error's source.
fn open_table<'py>(obj: &Bound<'py, PyAny>) -> Result<Table<'py>, SerializeError> {
    let encode_error = |e: PyErr| SerializeError::encode(parquet::NAME, e);
    let py = obj.py();
    let library = library(obj).map_err(encode_error)?;
    let type_name = obj.get_type().name().map_err(encode_error)?.to_string();
    if library == "polars" && type_name == "LazyFrame" {
        if let Some(reader) = lazy_batches(obj).map_err(encode_error)? {
            return Ok(Table { reader: Box::new(reader), library, object: obj.clone() });
        }
    }
    let not_a_table = |detail: String| {
        PyTypeError::new_err(format!(
            "parquet serializer needs a table (polars or pandas DataFrame, pyarrow Table, or any object with \
             __arrow_c_stream__ or to_arrow()), got {type_name}{detail}"
        ))
    };
    let exportable = (|| match library.as_str() {
        // pandas exports the stream through pyarrow: say so before pandas fails on its own.
        "pandas" if type_name == "DataFrame" => {
            let pyarrow = import(py, "pyarrow", "pyarrow", "pandas DataFrames")?;
            if obj.hasattr("__arrow_c_stream__")? {
                Ok(obj.clone())
            } else {
                // pandas < 2.2 has no __arrow_c_stream__.
                pyarrow.getattr("Table")?.call_method1("from_pandas", (obj,))
            }
        }
        // A LazyFrame whose table only polars' own writer stores (see `lazy_batches`): run it.
        "polars" if type_name == "LazyFrame" => obj.call_method0("collect"),
        _ if obj.hasattr("__arrow_c_stream__")? => Ok(obj.clone()),
        // Table objects of other libraries (DuckDB relations, Ibis tables, ...) that convert to pyarrow.
        _ if obj.getattr("to_arrow").is_ok_and(|m| m.is_callable()) => obj.call_method0("to_arrow"),
        _ => Err(not_a_table(String::new())),
    })()
    .map_err(encode_error)?;
    let reader = match exportable.extract::<PyRecordBatchReader>() {
        Ok(reader) => reader,
        Err(e) if library == "polars" && exportable.hasattr("schema").unwrap_or(false) => {
            return Err(polars_column_error(&exportable, e));
        }
        // A stream that is not of record batches (a polars Series, a pyarrow ChunkedArray) fails here.
        Err(e) => return Err(encode_error(not_a_table(format!(" ({e})")))),
    };
    Ok(Table { reader: reader.into_reader().map_err(encode_error)?, library, object: exportable })
}

/// The batches of the polars LazyFrame `query`, run as a streaming query
/// (`LazyFrame.collect_batches`) and encoded as polars produces them, so that the table is
/// never whole in memory. None where the table is one that polars' own writer has to store
/// (see [`written_by_library`]), or whose empty frame polars cannot export: that query is
/// collected and written as a DataFrame.
fn lazy_batches(query: &Bound<'_, PyAny>) -> PyResult<Option<LazyBatches>> {
    let py = query.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("schema", query.call_method0("collect_schema")?)?;
    // The schema without running the query: an empty frame of it, exported as every batch is.
    let empty = py.import("polars")?.getattr("DataFrame")?.call((), Some(&kwargs))?;
    let Ok(empty) = empty.extract::<PyRecordBatchReader>() else { return Ok(None) };
    let schema = empty.into_reader()?.schema();
    let stored = parquet::prepare(RecordBatchIterator::new(std::iter::empty(), schema.clone()))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    if written_by_library(&stored.schema(), "polars") {
        return Ok(None);
    }
    let frames = query.call_method0("collect_batches")?.try_iter()?.unbind();
    Ok(Some(LazyBatches { frames, schema, current: None }))
}

/// A polars streaming query's batches (see [`lazy_batches`]): each DataFrame polars
/// yields is exported through its Arrow stream, with the GIL held only to take it.
struct LazyBatches {
    frames: Py<PyIterator>,
    schema: SchemaRef,
    /// The Arrow stream of the DataFrame being read.
    current: Option<Box<dyn RecordBatchReader + Send>>,
}

impl LazyBatches {
    /// The Arrow stream of the query's next DataFrame; None once the query is done.
    fn next_frame(&self) -> PyResult<Option<Box<dyn RecordBatchReader + Send>>> {
        Python::attach(|py| match self.frames.bind(py).clone().next() {
            Some(frame) => Ok(Some(frame?.extract::<PyRecordBatchReader>()?.into_reader()?)),
            None => Ok(None),
        })
    }
}

impl Iterator for LazyBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.current.as_mut().and_then(Iterator::next) {
                return Some(batch.and_then(|batch| {
                    let fields = batch.schema().fields().clone();
                    if fields.iter().map(|f| f.data_type()).eq(self.schema.fields().iter().map(|f| f.data_type())) {
                        Ok(batch)
                    } else {
                        Err(ArrowError::SchemaError(format!(
                            "the LazyFrame's batches changed schema, from {} to {}",
                            self.schema,
                            batch.schema()
                        )))
                    }
                }));
            }
            match self.next_frame() {
                Ok(Some(frame)) => self.current = Some(frame),
                Ok(None) => return None,
                Err(e) => return Some(Err(ArrowError::ExternalError(Box::new(e)))),
            }
        }
    }
}

impl RecordBatchReader for LazyBatches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Whether a table of `library`'s with the stored `schema` (see `parquet::prepare`) goes to
/// its library's own writer (see [`write_table`]).
fn written_by_library(schema: &SchemaRef, library: &str) -> bool {
    let holds = |found: &dyn Fn(&DataType) -> bool| {
        schema.fields().iter().any(|field| parquet::holds(field.data_type(), &found))
    };
    holds(&|t| matches!(t, DataType::Dictionary(..))) || (library == "polars" && holds(&|t| t == &DataType::Null))
}

/// Why the Arrow stream of a polars `frame` would not open (`cause`): the first column
/// whose own stream does not, and its polars type (a 128-bit integer, for one).
fn polars_column_error(frame: &Bound<'_, PyAny>, cause: PyErr) -> SerializeError {
    let failing = || -> PyResult<Option<String>> {
        for item in frame.getattr("schema")?.call_method0("items")?.try_iter()? {
            let (name, dtype): (String, Bound<'_, PyAny>) = item?.extract()?;
            if let Err(e) = frame.call_method1("select", (&name,))?.extract::<PyRecordBatchReader>() {
                let dtype = dtype.str()?;
                return Ok(Some(format!(
                    "column {name:?} is {dtype}, which the parquet serializer cannot store ({e})"
                )));
            }
        }
        Ok(None)
    };
    match failing() {
        Ok(Some(message)) => SerializeError::encode(parquet::NAME, message),
        _ => SerializeError::encode(parquet::NAME, cause),
    }
}

/// Writes `table` as Parquet into `sink`, with the types it is stored as (see
/// `parquet::prepare`): with our encoder, the GIL released, unless the table has
/// dictionaries (pandas categoricals, polars `Enum`s and `Categorical`s). Only the
/// library's own writer stores a dictionary's categories as they are, unused ones and
/// their order included, so such a table goes to it (see [`library_writer`]), as does
/// a polars frame with a column of nulls, whose batches polars exports in a form the
/// Arrow C interface rejects.
fn write_table<W: Write + Send + 'static>(
    py: Python<'_>,
    table: Table<'_>,
    compression: Compression,
    sink: W,
) -> Result<(W, parquet::Encoded), SerializeError> {
    let Table { reader, library, object } = table;
    let reader = parquet::prepare(reader)?;
    if written_by_library(&reader.schema(), &library) {
        return library_writer(py, reader, &library, &object, compression, sink)
            .map_err(|e| SerializeError::encode(parquet::NAME, e));
    }
    let options = ParquetOptions { compression, key_value_metadata: vec![(LIBRARY_KEY.into(), library)] };
    py.detach(|| parquet::encode_to(reader, &options, sink))
}

/// Writes a table into `sink` with its library's own Parquet writer:
/// polars' `write_parquet` for a polars frame, pyarrow's `ParquetWriter` for any other
/// table (pandas' included), fed `reader`'s batches, a row group each at most a million
/// rows long, as `pyarrow.parquet.write_table` writes them. Both stream into `sink` as
/// they encode.
fn library_writer<W: Write + Send + 'static>(
    py: Python<'_>,
    reader: parquet::Stored<Box<dyn RecordBatchReader + Send>>,
    library: &str,
    object: &Bound<'_, PyAny>,
    compression: Compression,
    sink: W,
) -> PyResult<(W, parquet::Encoded)> {
    let schema = reader.schema();
    let file = Bound::new(py, SinkFile { sink: Mutex::new(Some(Box::new(sink))) })?;
    let (codec, level) = match compression {
        Compression::Zstd(level) => ("zstd", Some(level)),
        Compression::Snappy => ("snappy", None),
        Compression::None => ("uncompressed", None),
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("compression", codec)?;
    kwargs.set_item("compression_level", level)?;
    let metadata = PyDict::new(py);
    metadata.set_item(LIBRARY_KEY, library)?;
    let write = || -> PyResult<u64> {
        if library == "polars" && object.hasattr("write_parquet")? {
            kwargs.set_item("metadata", metadata)?;
            object.call_method("write_parquet", (&file,), Some(&kwargs))?;
            return object.getattr("height")?.extract();
        }
        let what = "tables with dictionary columns";
        let pyarrow = import(py, "pyarrow", "pyarrow", what)?;
        let writer = import(py, "pyarrow.parquet", "pyarrow", what)?.getattr("ParquetWriter")?;
        let batches = Bound::new(py, PyRecordBatchReader::new(Box::new(reader)))?;
        let batches = pyarrow.getattr("RecordBatchReader")?.call_method1("from_stream", (batches,))?;
        let writer = writer.call((&file, batches.getattr("schema")?), Some(&kwargs))?;
        let mut rows = 0;
        for batch in batches.try_iter()? {
            let batch = batch?;
            rows += batch.getattr("num_rows")?.extract::<u64>()?;
            writer.call_method1("write_batch", (batch,))?;
        }
        writer.call_method1("add_key_value_metadata", (metadata,))?;
        writer.call_method0("close")?;
        Ok(rows)
    };
    let written = write();
    // Taken back whatever happened: an exception's traceback may keep the file alive.
    let sink = file.get().sink.lock().unwrap_or_else(|e| e.into_inner()).take();
    let row_count = written?;
    let sink = sink.and_then(|sink| sink.into_any().downcast::<W>().ok());
    let sink = sink.ok_or_else(|| PyRuntimeError::new_err("the Parquet writer's sink was closed early"))?;
    Ok((*sink, parquet::Encoded { row_count, schema }))
}

/// A writer that can be taken back as its own type.
trait Sink: Write + Send {
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<W: Write + Send + 'static> Sink for W {
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A binary file for a Python Parquet writer to write into: the bytes go to a Rust
/// writer, with the GIL released (the writer blocks while an upload is behind).
#[pyclass(frozen, module = "dagster_remote_store._core")]
struct SinkFile {
    sink: Mutex<Option<Box<dyn Sink>>>,
}

#[pymethods]
impl SinkFile {
    fn write(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<usize> {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let sink = sink.as_mut().ok_or_else(|| PyValueError::new_err("I/O operation on closed file"))?;
        py.detach(|| sink.write_all(&data))?;
        Ok(data.len())
    }

    fn flush(&self) {}

    /// The writer's `close()` after the footer: the sink stays for [`library_writer`] to take.
    fn close(&self) {}

    #[getter]
    fn closed(&self) -> bool {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    fn writable(&self) -> bool {
        true
    }
}

/// The Python type a table is read into.
#[derive(Debug, Clone, Copy)]
enum Target {
    Polars,
    PolarsLazy,
    Pandas,
    PyArrow,
}

impl Target {
    /// `into=`: one of [`TARGETS`].
    fn parse(into: &str) -> PyResult<Self> {
        match into {
            "polars" => Ok(Self::Polars),
            "polars_lazy" => Ok(Self::PolarsLazy),
            "pandas" => Ok(Self::Pandas),
            "pyarrow" => Ok(Self::PyArrow),
            other => {
                let targets = TARGETS.map(|t| format!("'{t}'")).join(", ");
                Err(PyValueError::new_err(format!("into must be one of {targets} or None, not '{other}'")))
            }
        }
    }

    /// The library recorded at write time; a pyarrow Table for any other writer.
    fn recorded(metadata: &[(String, String)]) -> Self {
        match metadata.iter().find(|(k, _)| k == LIBRARY_KEY).map(|(_, v)| v.as_str()) {
            Some("polars") => Self::Polars,
            Some("pandas") => Self::Pandas,
            _ => Self::PyArrow,
        }
    }
}

/// The tables stored at `paths`, fetched and verified at most `max_concurrency` at once and
/// decoded as they arrive with the GIL released (see [`io_manager::tables::fetch_table`]), as `into` asks
/// (see `ParquetSerializer.deserialize`); with `missing` given, a missing object is `missing`.
/// Read into pandas (`into`, or the library recorded), a large table that pandas holds in one
/// block is decoded into that block. Given `columns`, only those (see
/// [`io_manager::tables::fetch_columns`]).
pub fn load_tables(
    py: Python<'_>,
    io: &IoManager<PyValue>,
    paths: &[(StorePath, Option<Owner>)],
    into: Option<&str>,
    missing: Option<Py<PyAny>>,
    columns: Option<&[String]>,
) -> PyResult<Vec<Py<PyAny>>> {
    let target = into.map(Target::parse).transpose()?;
    let frame_for = |file: &ArrivingFile| {
        let read_as = target.unwrap_or_else(|| Target::recorded(&file.key_value_metadata()));
        matches!(read_as, Target::Pandas).then(|| FrameBlock::for_file(file)).flatten()
    };
    let fetched = block_on(py, io.fetch_tables(paths, columns, frame_for));
    fetched
        .into_iter()
        .map(|table| match (table, &missing) {
            (Ok(Fetched::Decoded((schema, batches, metadata))), _) => {
                let target = target.unwrap_or_else(|| Target::recorded(&metadata));
                to_python(py, schema, batches, target).map(Bound::unbind)
            }
            (Ok(Fetched::Filled(frame)), _) => frame.into_frame(py).map(Bound::unbind),
            (Err(io_manager::Error::Store(e)), Some(missing)) if e.kind() == ErrorKind::NotFound => {
                Ok(missing.clone_ref(py))
            }
            (Err(e), _) => Err(e).into_py_result(py),
        })
        .collect()
}

/// Encodes the table `obj` into `upload` on this thread, row groups going out
/// as they are encoded, and commits the upload if encoding succeeded (else
/// nothing is stored); says what was written and what was encoded.
pub fn store_table(
    py: Python<'_>,
    upload: Upload<Written>,
    path: &StorePath,
    obj: &Bound<'_, PyAny>,
    compression: Compression,
) -> PyResult<(Written, parquet::Encoded)> {
    let table = open_table(obj).map_err(|e| serialize_error(py, &e, Some(path.as_str())))?;
    let encoded = write_table(py, table, compression, upload.writer()).and_then(|(sink, encoded)| {
        py.detach(|| sink.finish()).map_err(|e| SerializeError::encode(parquet::NAME, e))?;
        Ok(encoded)
    });
    let encode_failed = |source| io_manager::Error::Serialize { path: path.clone(), source };
    block_on(py, upload.settle(encoded, encode_failed)).into_py_result(py)
}

/// The table Parquet `data` holds, as `into` asks (see `ParquetSerializer.deserialize`),
/// decoded with the GIL released; errors name `path` when given.
pub fn decode_table(py: Python<'_>, data: Bytes, into: Option<&str>, path: Option<&str>) -> PyResult<Py<PyAny>> {
    let target = into.map(Target::parse).transpose()?;
    let decoded = py.detach(|| parquet::decode(data));
    let (schema, batches, metadata) = decoded.map_err(|e| serialize_error(py, &e, path))?;
    let target = target.unwrap_or_else(|| Target::recorded(&metadata));
    to_python(py, schema, batches, target).map(Bound::unbind)
}

/// The decoded batches as a `target` object, handed over through the PyCapsule
/// interface (so polars needs no pyarrow).
fn to_python(
    py: Python<'_>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    target: Target,
) -> PyResult<Bound<'_, PyAny>> {
    let table = |batches, schema| Bound::new(py, PyTable::try_new(batches, schema)?);
    match target {
        Target::Polars | Target::PolarsLazy => {
            let polars = import(py, "polars", "polars", "polars DataFrames")?;
            let frame = polars.getattr("DataFrame")?.call1((table(batches, schema)?,))?;
            if matches!(target, Target::PolarsLazy) { frame.call_method0("lazy") } else { Ok(frame) }
        }
        Target::PyArrow => {
            let pyarrow = import(py, "pyarrow", "pyarrow", "pyarrow Tables")?;
            pyarrow.call_method1("table", (table(batches, schema)?,))
        }
        Target::Pandas => {
            import(py, "pandas", "pandas pyarrow", "pandas DataFrames")?;
            pandas_frame(py, &import(py, "pyarrow", "pyarrow", "pandas DataFrames")?, schema, batches)
        }
    }
}

/// The batches as a pandas DataFrame, by pyarrow's `to_pandas(self_destruct=True)`, which lets
/// go of each column as soon as it is copied into the frame, one column at a time (two at once
/// would hold two columns beside the frame). Each column's chunks are handed over on their own
/// for that: pyarrow frees a batch handed over whole only once all of its columns are copied,
/// so the table and the frame would both be whole at the end. The frame is the one pyarrow's
/// plain `to_pandas()` makes: consolidated and writable.
fn pandas_frame<'py>(
    py: Python<'py>,
    pyarrow: &Bound<'py, PyModule>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut columns = vec![Vec::with_capacity(batches.len()); schema.fields().len()];
    for batch in batches {
        for (column, array) in columns.iter_mut().zip(batch.columns()) {
            column.push(array.clone());
        }
    }
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(chunks, field)| {
            // Only pyarrow holds the arrays once this wrapper is gone.
            let chunks = Bound::new(py, PyChunkedArray::try_new(chunks, field.clone())?)?;
            pyarrow.call_method1("chunked_array", (chunks,))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("schema", pyarrow_schema(pyarrow, schema)?)?;
    let table = pyarrow.getattr("Table")?.call_method("from_arrays", (columns,), Some(&kwargs))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("self_destruct", true)?;
    kwargs.set_item("use_threads", false)?;
    table.call_method("to_pandas", (), Some(&kwargs))
}

/// Parquet (`.parquet`), encoded and decoded in Rust: polars and pandas
/// DataFrames, pyarrow Tables and RecordBatchReaders, and any object with
/// `__arrow_c_stream__`.
#[pyclass(extends = BuiltinSerializer, frozen, module = "dagster_remote_store")]
pub struct ParquetSerializer {
    pub(crate) compression: Compression,
}

#[pymethods]
impl ParquetSerializer {
    #[new]
    #[pyo3(signature = (compression = "zstd"))]
    fn new(compression: &str) -> PyResult<PyClassInitializer<Self>> {
        let compression: Compression = compression.parse().map_err(|e| PyValueError::new_err(format!("{e}")))?;
        let base = BuiltinSerializer::new(Arc::new(Parquet::new(compression)));
        Ok(PyClassInitializer::from(base).add_subclass(Self { compression }))
    }

    /// `"zstd"`, `"snappy"` or `"none"`.
    #[getter]
    fn compression(&self) -> String {
        self.compression.to_string()
    }

    /// The table `data` encodes, as `into` (`"polars"`, `"polars_lazy"`,
    /// `"pandas"`, `"pyarrow"`), or if `None` as the library that wrote it
    /// (a pyarrow Table when that was neither polars nor pandas).
    #[pyo3(signature = (data, into = None))]
    fn deserialize(&self, py: Python<'_>, data: PyBackedBytes, into: Option<&str>) -> PyResult<Py<PyAny>> {
        decode_table(py, Bytes::from_owner(data), into, None)
    }

    /// Streams `obj` as Parquet to `path` in `store`: row groups go out as
    /// multipart parts while the table is encoded, so the file is never whole
    /// in memory, and nothing is stored if encoding fails. The object's
    /// checksum and `owner` (`(asset_key, partition_keys)`) are stored with it,
    /// as for every IO-manager output. Returns `path`, `uri`, `size`,
    /// `checksum`, `row_count`, `columns` (name and Arrow type), `schema` (an
    /// Arrow schema, `pyarrow.schema(...)` takes it) and `compression`.
    #[pyo3(signature = (store, path, obj, *, owner = None))]
    fn write_to<'py>(
        &self,
        py: Python<'py>,
        store: PyRef<'_, Store>,
        path: &str,
        obj: Bound<'py, PyAny>,
        owner: PyOwner,
    ) -> PyResult<Bound<'py, PyDict>> {
        guard(py, "write", Some(path), || {
            let path = parse_path(py, path)?;
            let upload = Upload::start_checked(&runtime::handle(), &store.inner, path.clone(), to_owner(owner));
            let (written, encoded) = store_table(py, upload, &path, &obj, self.compression)?;
            let out = output::metadata(py, OutputMetadata::of(&store.inner, &path, &written))?;
            output::table_metadata(&out, &encoded, self.compression)?;
            Ok(out)
        })
    }

    /// From the footer only: `row_count`, `columns` (name and Arrow type),
    /// `compression` (`None` for a file with no rows) and `library` (the writer,
    /// `None` if not recorded).
    #[staticmethod]
    fn describe(py: Python<'_>, data: PyBackedBytes) -> PyResult<Bound<'_, PyDict>> {
        let summary = parquet::describe(&Bytes::from_owner(data)).map_err(|e| serialize_error(py, &e, None))?;
        let library = summary.key_value_metadata.iter().find(|(k, _)| k == LIBRARY_KEY).map(|(_, v)| v.clone());
        let out = PyDict::new(py);
        out.set_item("row_count", summary.row_count)?;
        out.set_item("columns", output::columns(&summary.schema))?;
        out.set_item("compression", summary.compression)?;
        out.set_item("library", library)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("ParquetSerializer(compression='{}')", self.compression)
    }
}
