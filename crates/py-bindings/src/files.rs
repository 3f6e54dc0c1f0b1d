//! Files and streams as outputs: bytes written into an output as they come
//! (a local file, a file object, an iterable of chunks), and stored outputs
//! read lazily at any offset, verified block by block, or copied to a local file.

use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;
use io_manager::ranged::{self, RangedObject};
use io_manager::versions::VersionId;
use io_manager::{IoManager, Owner};
use pyo3::exceptions::{PyIOError, PyTypeError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};
use serializers::{SerializeError, Serializer};
use store_core::StorePath;

use crate::errors::{StoreResultExt, io_error};
use crate::output;
use crate::pickle_stream::SinkWriter;
use crate::runtime::block_on;
use crate::stream::byte_view;
use crate::value::PyValue;

/// An output being written as a stream: `write` bytes-like pieces, then
/// `close()` stores them (and publishes the version, when versioned) and returns
/// the output's metadata; `abort()` stores nothing.
#[pyclass(frozen, module = "dagster_remote_store._core")]
pub struct OutputWriter {
    sink: Py<SinkWriter>,
    io: IoManager<PyValue>,
    target: StorePath,
    path: StorePath,
    version: Option<(VersionId, String)>,
}

impl OutputWriter {
    /// A writer of the output at `target` (a new version of it, written by run
    /// `run_id`, if given), as `owner`'s.
    pub fn open(
        py: Python<'_>,
        io: &IoManager<PyValue>,
        target: StorePath,
        owner: Option<&Owner>,
        run_id: Option<String>,
    ) -> PyResult<Self> {
        let version = run_id.map(|run_id| (VersionId::new(&run_id), run_id));
        let path = version.as_ref().map_or_else(|| target.clone(), |(id, _)| io.version_path(&target, id));
        let sink = Py::new(py, SinkWriter::new(io.output_sink(&path, owner), &path))?;
        Ok(Self { sink, io: io.clone(), target, path, version })
    }
}

#[pymethods]
impl OutputWriter {
    /// Sends `data` (any bytes-like object) on; returns its length.
    fn write(&self, py: Python<'_>, data: Bound<'_, PyAny>) -> PyResult<usize> {
        let sink = self.sink.get();
        sink.write(py, data).map_err(|err| sink.take_failure().map_or(err, |failure| io_error(py, &failure)))
    }

    /// Stores what was written, atomically, and returns the output's metadata
    /// (`path`, `uri`, `size`, `checksum`, and `version` when versioned).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let written = self.sink.get().finish(py, false).into_py_result(py)?;
        let written = written.ok_or_else(|| PyIOError::new_err("the output was closed already"))?;
        let written = self.io.output_metadata(&self.path, &written);
        published(py, &self.io, &self.target, self.version.as_ref(), written)
    }

    /// Stores nothing; what was at the path stays.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.sink.get().finish(py, true).into_py_result(py).map(drop)
    }
}

/// The metadata of `written`, an output of `target`; given `version` (its name and the
/// run that wrote it), made the current version first, and named in the metadata.
pub fn published<'py>(
    py: Python<'py>,
    io: &IoManager<PyValue>,
    target: &StorePath,
    version: Option<&(VersionId, String)>,
    written: io_manager::OutputMetadata,
) -> PyResult<Bound<'py, PyDict>> {
    let pointer = match version {
        Some((id, run_id)) => Some(block_on(py, io.publish(target, id, &written, run_id)).into_py_result(py)?),
        None => None,
    };
    let out = output::metadata(py, written)?;
    if let Some(pointer) = pointer {
        out.set_item("version", pointer.version)?;
    }
    Ok(out)
}

/// A stored output opened for reads at any offset (see `io_manager::ranged`):
/// what the Python file object `ObjectFile` reads through.
#[pyclass(frozen, module = "dagster_remote_store._core")]
pub struct RangedReader {
    object: Mutex<RangedObject>,
    size: u64,
    name: String,
}

impl RangedReader {
    /// The object at `path`, of `owner`, opened.
    pub fn open(py: Python<'_>, io: &IoManager<PyValue>, path: &StorePath, owner: Option<&Owner>) -> PyResult<Self> {
        let object = block_on(py, ranged::open(io.store(), path, owner)).into_py_result(py)?;
        Ok(Self { size: object.size(), name: path.to_string(), object: Mutex::new(object) })
    }
}

#[pymethods]
impl RangedReader {
    /// The object's size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.size
    }

    /// The object's store path.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// How many bytes were fetched from the store so far.
    #[getter]
    fn fetched(&self) -> u64 {
        self.object.lock().unwrap_or_else(|e| e.into_inner()).fetched()
    }

    /// Up to `size` bytes from `offset`, verified (fewer at the end).
    fn read_at<'py>(&self, py: Python<'py>, offset: u64, size: usize) -> PyResult<Bound<'py, PyBytes>> {
        // Locked for the read, with the GIL released: the read runs on this thread.
        let runtime = crate::runtime::handle();
        let data = py.detach(|| {
            let mut object = self.object.lock().unwrap_or_else(|e| e.into_inner());
            runtime.block_on(object.read_at(offset, size))
        });
        Ok(PyBytes::new(py, &data.into_py_result(py)?))
    }
}

/// Copies the output at `path` (of `owner`) to the local file `local`: written
/// to `<local>.part` as it arrives, verified, then renamed; on any failure no
/// file is left. Returns the size.
pub fn download(
    py: Python<'_>,
    io: &IoManager<PyValue>,
    path: &StorePath,
    owner: Option<&Owner>,
    local: &str,
) -> PyResult<u64> {
    let part = format!("{local}.part");
    let copied = block_on(py, async {
        let mut object = io.input_stream(path, owner).await?;
        let mut file = std::fs::File::create(&part).map_err(|e| local_error(&part, e))?;
        let mut size = 0;
        while let Some(chunk) = object.chunks.next().await {
            let chunk = chunk.map_err(io_manager::Error::from)?;
            file.write_all(&chunk).map_err(|e| local_error(&part, e))?;
            size += chunk.len() as u64;
        }
        object.verify().await?;
        file.sync_all().map_err(|e| local_error(&part, e))?;
        std::fs::rename(&part, local).map_err(|e| local_error(local, e))?;
        Ok::<u64, io_manager::Error>(size)
    });
    if copied.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    copied.into_py_result(py)
}

fn local_error(file: &str, err: std::io::Error) -> io_manager::Error {
    let kind = store_core::ErrorKind::Other;
    io_manager::Error::Store(store_core::Error::new(kind, format!("local file {file:?}: {err}")))
}

/// Bytes as they are: the `bytes` serializer, for files and other binary
/// objects (extension none). Any bytes-like object is stored; loads are `bytes`.
pub struct Raw;

impl Raw {
    pub const NAME: &'static str = "bytes";
}

impl Serializer<PyValue> for Raw {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn extension(&self) -> &'static str {
        ""
    }

    fn serialize(&self, value: &PyValue) -> Result<Bytes, SerializeError> {
        Python::attach(|py| {
            let obj = value.0.bind(py);
            if let Ok(bytes) = obj.cast::<PyBytes>() {
                return Ok(Bytes::from_owner(PyBackedBytes::from(bytes.clone())));
            }
            let view = byte_view(obj).map_err(|_| {
                let kind = obj.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string());
                let err = PyTypeError::new_err(format!(
                    "the bytes serializer stores bytes-like objects (or a file, a path, an iterable of bytes), not {kind}"
                ));
                SerializeError::encode(Self::NAME, err)
            })?;
            let data: Vec<u8> = view
                .call_method0("tobytes")
                .and_then(|b| b.extract())
                .map_err(|e| SerializeError::encode(Self::NAME, e))?;
            Ok(Bytes::from(data))
        })
    }

    fn deserialize(&self, data: Bytes) -> Result<PyValue, SerializeError> {
        Python::attach(|py| Ok(PyValue(PyBytes::new(py, &data).into_any().unbind())))
    }
}
