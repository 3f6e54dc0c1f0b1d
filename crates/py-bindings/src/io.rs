//! The Rust half of the Dagster IO manager: paths, atomic writes and
//! concurrent loads. The Python half (`io_manager.py`) reads Dagster's context.

use io_manager::IoManager;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serializers::parquet::{self as parquet_format, Compression};

use crate::errors::{StoreResultExt, guard};
use crate::owner::{PyOwner, owned_paths, to_owner};
use crate::parquet::ParquetSerializer;
use crate::pickle::Pickle;
use crate::runtime::{self, block_on};
use crate::serializers::{PickleSerializer, resolve};
use crate::store::{Store, parse_path};
use crate::value::PyValue;
use crate::{output, parquet, pickle_stream};

/// A Store and a serializer composed; every call with the GIL released while
/// it waits on storage.
#[pyclass(frozen, module = "dagster_remote_store._core")]
pub struct IoManagerCore {
    inner: IoManager<PyValue>,
    format: Format,
}

/// How outputs go to the store.
#[derive(Clone, Copy)]
enum Format {
    /// Pickled straight into an output sink and unpickled from the arriving object, never whole as bytes.
    Pickle,
    /// Encoded a row group at a time into an upload.
    Parquet(Compression),
    /// Encoded whole by the serializer.
    Encoded,
}

impl Format {
    fn of(serializer: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(name) = serializer.cast::<PyString>() {
            return Ok(match &*name.to_cow()? {
                Pickle::NAME => Self::Pickle,
                parquet_format::NAME => Self::Parquet(Compression::default()),
                _ => Self::Encoded,
            });
        }
        if let Ok(parquet) = serializer.cast::<ParquetSerializer>() {
            return Ok(Self::Parquet(parquet.get().compression));
        }
        Ok(if serializer.is_instance_of::<PickleSerializer>() { Self::Pickle } else { Self::Encoded })
    }
}

#[pymethods]
impl IoManagerCore {
    #[new]
    #[pyo3(signature = (store, serializer, *, max_concurrency = io_manager::DEFAULT_MAX_CONCURRENCY, extension = None))]
    fn new(
        py: Python<'_>,
        store: PyRef<'_, Store>,
        serializer: &Bound<'_, PyAny>,
        max_concurrency: usize,
        extension: Option<String>,
    ) -> PyResult<Self> {
        let format = Format::of(serializer)?;
        let serializer = resolve(serializer)?;
        let inner = IoManager::new(store.inner.clone(), serializer).with_max_concurrency(max_concurrency);
        let inner = match extension {
            Some(extension) => inner.with_extension(extension).into_py_result(py)?,
            None => inner,
        };
        Ok(Self { inner, format })
    }

    /// The extension stored paths end with.
    #[getter]
    fn extension(&self) -> &str {
        self.inner.extension()
    }

    /// The serializer's name.
    #[getter]
    fn serializer_name(&self) -> &str {
        self.inner.serializer().name()
    }

    /// Store path of an asset (key segments) and partition (one key per dimension).
    fn path(&self, py: Python<'_>, asset_key: Vec<String>, partition: Vec<String>) -> PyResult<String> {
        self.inner.asset_path(&asset_key, &partition).into_py_result(py).map(|p| p.to_string())
    }

    /// Serializes `obj` and writes it atomically to `path`, with its checksum
    /// and `owner` (`(asset_key, partition_keys)`); returns `{"path", "uri",
    /// "size", "checksum"}`, and for a Parquet table also `row_count`,
    /// `columns` (name and Arrow type), `schema` (the stored Arrow schema) and
    /// `compression`.
    #[pyo3(signature = (path, obj, *, owner = None))]
    fn handle_output<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        obj: Py<PyAny>,
        owner: PyOwner,
    ) -> PyResult<Bound<'py, PyDict>> {
        guard(py, "handle_output", Some(path), || {
            let (path, owner) = (parse_path(py, path)?, to_owner(owner));
            match self.format {
                Format::Pickle => {
                    let output = self.inner.output_sink(&path, owner.as_ref());
                    let written = pickle_stream::dump(py, output, &path, obj.bind(py))?;
                    output::metadata(py, self.inner.output_metadata(&path, &written))
                }
                Format::Parquet(compression) => {
                    let upload = self.inner.output_upload(&runtime::handle(), &path, owner.as_ref());
                    let (written, encoded) = parquet::store_table(py, upload, &path, obj.bind(py), compression)?;
                    let out = output::metadata(py, self.inner.output_metadata(&path, &written))?;
                    output::table_metadata(&out, &encoded, compression)?;
                    Ok(out)
                }
                Format::Encoded => {
                    let value = PyValue(obj);
                    let written = self.inner.handle_output(&path, &value, owner.as_ref());
                    output::metadata(py, block_on(py, written).into_py_result(py)?)
                }
            }
        })
    }

    /// The Parquet tables stored at `paths`, fetched and verified concurrently
    /// and decoded in Rust (no copy of the file through Python; a large file's
    /// row groups while the rest of it arrives), as `into` asks (see
    /// `ParquetSerializer.deserialize`); with `missing` given, a missing object
    /// is `missing` instead of an error. Given `columns`, only those columns,
    /// fetched alone where the object's record lists its blocks.
    #[pyo3(signature = (paths, *, into = None, missing = None, owners = None, columns = None))]
    fn load_tables(
        &self,
        py: Python<'_>,
        paths: Vec<String>,
        into: Option<&str>,
        missing: Option<Py<PyAny>>,
        owners: Option<Vec<PyOwner>>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        guard(py, "load_tables", paths.first().map(String::as_str), || {
            let objects = owned_paths(py, &paths, owners)?;
            parquet::load_tables(py, &self.inner, &objects, into, missing, columns.as_deref())
        })
    }

    /// The object stored at `path`, verified against its checksum and owner.
    #[pyo3(signature = (path, *, owner = None))]
    fn load_input(&self, py: Python<'_>, path: &str, owner: PyOwner) -> PyResult<Py<PyAny>> {
        guard(py, "load_input", Some(path), || {
            let (path, owner) = (parse_path(py, path)?, to_owner(owner));
            if matches!(self.format, Format::Pickle) {
                let object = block_on(py, self.inner.input_stream(&path, owner.as_ref())).into_py_result(py)?;
                return pickle_stream::load(py, object, &path, &Pickle::default());
            }
            block_on(py, self.inner.load_input(&path, owner.as_ref())).into_py_result(py).map(|v| v.0)
        })
    }

    /// The objects at `paths` (of `owners`, one per path, if given), fetched
    /// concurrently, in the order given. With `missing` given, a missing object
    /// is `missing` instead of an error.
    #[pyo3(signature = (paths, *, missing = None, owners = None))]
    fn load_many(
        &self,
        py: Python<'_>,
        paths: Vec<String>,
        missing: Option<Py<PyAny>>,
        owners: Option<Vec<PyOwner>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        guard(py, "load_many", paths.first().map(String::as_str), || {
            let paths = owned_paths(py, &paths, owners)?;
            let Some(missing) = missing else {
                let values = block_on(py, self.inner.load_many(&paths)).into_py_result(py)?;
                return Ok(values.into_iter().map(|v| v.0).collect());
            };
            let values = block_on(py, self.inner.load_existing(&paths)).into_py_result(py)?;
            Ok(values.into_iter().map(|v| v.map_or_else(|| missing.clone_ref(py), |v| v.0)).collect())
        })
    }

    /// The Store's URI for `path`.
    fn uri(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        Ok(self.inner.store().uri(&parse_path(py, path)?))
    }
}
