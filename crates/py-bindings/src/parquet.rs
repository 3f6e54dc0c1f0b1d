//! The `"parquet"` serializer: tables from polars, pandas, pyarrow or anything
//! exporting the Arrow PyCapsule stream interface (`__arrow_c_stream__`), encoded
//! and decoded in Rust with the GIL released. Reading gives back the library the
//! table was written with, recorded in the file's key-value metadata.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use io_manager::integrity;
use pyo3::exceptions::{PyImportError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyDict;
use pyo3_arrow::{PyChunkedArray, PyRecordBatchReader, PySchema, PyTable};
use serializers::parquet::{self, ArrivingFile, Compression, ParquetOptions};
use serializers::{SerializeError, Serializer};
use store_core::{ErrorKind, StorePath};

use crate::errors::{StoreResultExt, serialize_error};
use crate::frame::FrameBlock;
use crate::runtime::block_on;
use crate::serializers::BuiltinSerializer;
use crate::store::{Store, parse_path};
use crate::stream::{Upload, is_aborted};
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

    /// `obj` as Parquet bytes; the GIL is held only to open the Arrow stream,
    /// unless the stream's producer takes it back to make batches.
    fn encode(&self, obj: &Bound<'_, PyAny>) -> PyResult<Result<Bytes, SerializeError>> {
        let (reader, library) = table_reader(obj)?;
        let options =
            ParquetOptions { compression: self.compression, key_value_metadata: vec![(LIBRARY_KEY.into(), library)] };
        Ok(obj.py().detach(|| parquet::encode(reader, &options)))
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
        Python::attach(|py| self.encode(value.0.bind(py))).map_err(|e| SerializeError::encode(parquet::NAME, e))?
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

/// Hands the encoder's output to an upload in chunks of about 1 MiB.
struct ChunkSink {
    sender: tokio::sync::mpsc::Sender<store_core::Result<Bytes>>,
    pending: Vec<u8>,
}

impl ChunkSink {
    const CHUNK: usize = 1 << 20;

    fn send(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::take(&mut self.pending));
        // Blocks while the upload is behind; runs on a Python thread, never on the runtime.
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Sends what is left.
    fn finish(mut self) -> std::io::Result<()> {
        if self.pending.is_empty() { Ok(()) } else { self.send() }
    }
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The Arrow stream of a table, and the library it came from.
fn table_reader(obj: &Bound<'_, PyAny>) -> PyResult<(Box<dyn RecordBatchReader + Send>, String)> {
    let py = obj.py();
    let library = library(obj)?;
    let type_name = obj.get_type().name()?.to_string();
    let not_a_table = |detail: String| {
        PyTypeError::new_err(format!(
            "parquet serializer needs a table (polars or pandas DataFrame, pyarrow Table, or any object with \
             __arrow_c_stream__), got {type_name}{detail}"
        ))
    };
    let exportable = match library.as_str() {
        // pandas exports the stream through pyarrow: say so before pandas fails on its own.
        "pandas" if type_name == "DataFrame" => {
            let pyarrow = import(py, "pyarrow", "pyarrow", "pandas DataFrames")?;
            if obj.hasattr("__arrow_c_stream__")? {
                obj.clone()
            } else {
                // pandas < 2.2 has no __arrow_c_stream__.
                pyarrow.getattr("Table")?.call_method1("from_pandas", (obj,))?
            }
        }
        // A LazyFrame is a query, not a table: run it.
        "polars" if type_name == "LazyFrame" => obj.call_method0("collect")?,
        _ if obj.hasattr("__arrow_c_stream__")? => obj.clone(),
        _ => return Err(not_a_table(String::new())),
    };
    // A stream that is not of record batches (a polars Series, a pyarrow ChunkedArray) fails here.
    let reader: PyRecordBatchReader = exportable.extract().map_err(|e: PyErr| not_a_table(format!(" ({e})")))?;
    Ok((reader.into_reader()?, library))
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

/// Files larger than this are decoded row group by row group while the rest of them arrives.
const DECODE_WHILE_ARRIVING: u64 = 16 << 20;

/// The tables stored at `paths`, fetched and verified at most `max_concurrency` at once and
/// decoded as they arrive with the GIL released, as `into` asks (see
/// `ParquetSerializer.deserialize`); with `missing` given, a missing object is `missing`.
pub fn load_tables(
    py: Python<'_>,
    store: &store_core::Store,
    paths: &[StorePath],
    into: Option<&str>,
    missing: Option<Py<PyAny>>,
    max_concurrency: usize,
) -> PyResult<Vec<Py<PyAny>>> {
    let target = into.map(Target::parse).transpose()?;
    let fetches = paths.iter().map(|path| fetch_table(store, path, target));
    let fetched: Vec<_> = block_on(py, stream::iter(fetches).buffered(max_concurrency).collect());
    fetched
        .into_iter()
        .map(|table| match (table, &missing) {
            (Ok(Fetched::Table((schema, batches, metadata))), _) => {
                let target = target.unwrap_or_else(|| Target::recorded(&metadata));
                to_python(py, schema, batches, target).map(Bound::unbind)
            }
            (Ok(Fetched::Frame(frame)), _) => frame.into_frame(py).map(Bound::unbind),
            (Err(io_manager::Error::Store(e)), Some(missing)) if e.kind() == ErrorKind::NotFound => {
                Ok(missing.clone_ref(py))
            }
            (Err(e), _) => Err(e).into_py_result(py),
        })
        .collect()
}

/// A table as fetched: decoded, or already a pandas frame's block (see `frame.rs`).
enum Fetched {
    Table(parquet::Decoded),
    Frame(FrameBlock),
}

/// The table stored at `path`, verified against its checksum. A large file's row groups
/// are decoded, on every core, while the rest of the file is still arriving; its footer is
/// read first, from the end, and the bytes of the row groups already decoded are let go.
/// Read into pandas (`target`, or the library recorded), a table that pandas holds in one
/// block is decoded into that block.
async fn fetch_table(
    store: &store_core::Store,
    path: &StorePath,
    target: Option<Target>,
) -> Result<Fetched, io_manager::Error> {
    let mut object = integrity::read_stream(store, path).await?;
    let size = object.size.filter(|&size| size > DECODE_WHILE_ARRIVING);
    let arriving = match size {
        Some(size) => arriving_file(store, path, size).await?,
        None => None,
    };
    let Some(mut arriving) = arriving else {
        // Small, or with an end that is not a Parquet footer: decoded whole, which says what is wrong.
        let chunks: Vec<Bytes> = (&mut object.chunks).try_collect().await?;
        object.verify().await?;
        return decode_whole(path, chunks).await.map(Fetched::Table);
    };
    let read_as = target.unwrap_or_else(|| Target::recorded(&arriving.key_value_metadata()));
    // Shared with the decode tasks, which outlive this function if it returns early.
    let frame = matches!(read_as, Target::Pandas).then(|| FrameBlock::for_file(&arriving)).flatten().map(Arc::new);
    let decoders = std::thread::available_parallelism().map_or(1, usize::from);
    let (mut running, mut decoded) = (VecDeque::new(), Vec::new());
    while let Some(chunk) = object.chunks.try_next().await? {
        for group in arriving.push(chunk) {
            if running.len() == decoders {
                decoded.push(join(running.pop_front().expect("as many as decoders")).await);
            }
            let frame = frame.clone();
            running.push_back(tokio::task::spawn_blocking(move || match frame {
                Some(frame) => frame.fill(group).map(|()| Vec::new()),
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
        Ok(table) => Ok(match frame {
            // Every decode task has finished, and let go of its share.
            Some(frame) => Fetched::Frame(Arc::into_inner(frame).expect("no decode task still running")),
            None => Fetched::Table(table),
        }),
        // A row group that would not decode, or a file replaced after its footer was read:
        // the object as it is now, verified, decoded whole, says what is wrong.
        Err(_) => decode_whole(path, vec![integrity::read(store, path).await?]).await.map(Fetched::Table),
    }
}

/// The decoder for the Parquet file of `size` bytes at `path`, from its footer; `None` when
/// the file does not end in one.
async fn arriving_file(
    store: &store_core::Store,
    path: &StorePath,
    size: u64,
) -> Result<Option<ArrivingFile>, io_manager::Error> {
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
async fn decode_whole(path: &StorePath, chunks: Vec<Bytes>) -> Result<parquet::Decoded, io_manager::Error> {
    let data = match <[Bytes; 1]>::try_from(chunks) {
        Ok([data]) => data,
        Err(chunks) => Bytes::from(chunks.concat()),
    };
    join(tokio::task::spawn_blocking(move || parquet::decode(data)))
        .await
        .map_err(|source| io_manager::Error::Serialize { path: path.clone(), source })
}

/// A decode task's result; one that panicked panics here too.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
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
fn to_python<'py>(
    py: Python<'py>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    target: Target,
) -> PyResult<Bound<'py, PyAny>> {
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

/// `schema` as a `pyarrow.Schema`, its metadata included.
pub fn pyarrow_schema<'py>(pyarrow: &Bound<'py, PyModule>, schema: SchemaRef) -> PyResult<Bound<'py, PyAny>> {
    pyarrow.call_method1("schema", (PySchema::new(schema),))
}

/// Parquet (`.parquet`), encoded and decoded in Rust: polars and pandas
/// DataFrames, pyarrow Tables and RecordBatchReaders, and any object with
/// `__arrow_c_stream__`.
#[pyclass(extends = BuiltinSerializer, frozen, module = "dagster_remote_store")]
pub struct ParquetSerializer {
    compression: Compression,
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
    /// checksum is stored with it, as for every IO-manager output. Returns
    /// `path`, `uri`, `size`, `checksum`, `row_count`, `columns` (name and
    /// Arrow type) and `compression`.
    fn write_to<'py>(
        &self,
        py: Python<'py>,
        store: PyRef<'_, Store>,
        path: &str,
        obj: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (reader, library) = table_reader(&obj)?;
        let options =
            ParquetOptions { compression: self.compression, key_value_metadata: vec![(LIBRARY_KEY.into(), library)] };
        let path = parse_path(py, path)?;
        let upload = Upload::start_checked(&store.inner, path.clone());
        let sink = ChunkSink { sender: upload.sender(), pending: Vec::new() };
        let encoded = py.detach(|| {
            parquet::encode_to(reader, &options, sink).and_then(|(sink, encoded)| {
                sink.finish().map_err(|e| SerializeError::encode(parquet::NAME, e))?;
                Ok(encoded)
            })
        });
        let uploaded = block_on(py, upload.finish(encoded.is_err()));
        // When the upload failed first, encoding only saw the channel close: report the upload's error.
        let (written, encoded) = match (encoded, uploaded) {
            (Ok(encoded), Ok(written)) => (written, encoded),
            (Ok(_), Err(e)) => return Err(e).into_py_result(py),
            (Err(_), Err(upload)) if !is_aborted(&upload) => return Err(upload).into_py_result(py),
            (Err(e), _) => return Err(serialize_error(py, &e, Some(path.as_str()))),
        };
        let columns: Vec<(String, String)> =
            encoded.schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect();
        let out = PyDict::new(py);
        out.set_item("path", path.as_str())?;
        out.set_item("uri", store.inner.uri(&path))?;
        out.set_item("size", written.size)?;
        out.set_item("checksum", written.checksum.to_string())?;
        out.set_item("row_count", encoded.row_count)?;
        out.set_item("columns", columns)?;
        out.set_item("compression", self.compression.to_string())?;
        Ok(out)
    }

    /// From the footer only: `row_count`, `columns` (name and Arrow type),
    /// `compression` (`None` for a file with no rows) and `library` (the writer,
    /// `None` if not recorded).
    #[staticmethod]
    fn describe<'py>(py: Python<'py>, data: PyBackedBytes) -> PyResult<Bound<'py, PyDict>> {
        let summary = parquet::describe(&Bytes::from_owner(data)).map_err(|e| serialize_error(py, &e, None))?;
        let columns: Vec<(String, String)> =
            summary.schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect();
        let library = summary.key_value_metadata.iter().find(|(k, _)| k == LIBRARY_KEY).map(|(_, v)| v.clone());
        let out = PyDict::new(py);
        out.set_item("row_count", summary.row_count)?;
        out.set_item("columns", columns)?;
        out.set_item("compression", summary.compression)?;
        out.set_item("library", library)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("ParquetSerializer(compression='{}')", self.compression)
    }
}
