//! The Rust half of the Dagster IO manager: paths, atomic writes and
//! concurrent loads. The Python half (`io_manager.py`) reads Dagster's context.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use io_manager::IoManager;
use io_manager::versions::{self, Guard, Plan, Retention, VersionId};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serializers::parquet::{self as parquet_format, Compression};

use crate::errors::{StoreResultExt, guard};
use crate::files::{self, OutputWriter, RangedReader};
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
    /// `compression`. Given `run_id`, writes a new version of the output at
    /// `path` instead and makes it current (see `io_manager::versions`): `path`
    /// and `uri` are then the version's, and `version` names it.
    #[pyo3(signature = (path, obj, *, owner = None, run_id = None))]
    fn handle_output<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        obj: Py<PyAny>,
        owner: PyOwner,
        run_id: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        guard(py, "handle_output", Some(path), || {
            let (target, owner) = (parse_path(py, path)?, to_owner(owner));
            let version = run_id.map(|run_id| (VersionId::new(&run_id), run_id));
            let path = version.as_ref().map_or_else(|| target.clone(), |(id, _)| self.inner.version_path(&target, id));
            let (written, table) = match self.format {
                Format::Pickle => {
                    let output = self.inner.output_sink(&path, owner.as_ref());
                    let written = pickle_stream::dump(py, output, &path, obj.bind(py))?;
                    (self.inner.output_metadata(&path, &written), None)
                }
                Format::Parquet(compression) => {
                    let upload = self.inner.output_upload(&runtime::handle(), &path, owner.as_ref());
                    let (written, encoded) = parquet::store_table(py, upload, &path, obj.bind(py), compression)?;
                    (self.inner.output_metadata(&path, &written), Some((encoded, compression)))
                }
                Format::Encoded => {
                    let value = PyValue(obj);
                    let written = self.inner.handle_output(&path, &value, owner.as_ref());
                    (block_on(py, written).into_py_result(py)?, None)
                }
            };
            let out = files::published(py, &self.inner, &target, version.as_ref(), written)?;
            if let Some((encoded, compression)) = table {
                output::table_metadata(&out, &encoded, compression)?;
            }
            Ok(out)
        })
    }

    /// Where each output of `paths` loads from: the version `pins` names for it,
    /// else its current version, else (never versioned) the path itself.
    #[pyo3(signature = (paths, *, pins = None))]
    fn resolve(&self, py: Python<'_>, paths: Vec<String>, pins: Option<Vec<Option<String>>>) -> PyResult<Vec<String>> {
        guard(py, "resolve", paths.first().map(String::as_str), || {
            let pins = pins.unwrap_or_else(|| vec![None; paths.len()]);
            if pins.len() != paths.len() {
                return Err(PyValueError::new_err(format!("{} pins for {} paths", pins.len(), paths.len())));
            }
            let targets = paths.iter().map(|path| parse_path(py, path)).zip(pins).map(|(p, pin)| p.map(|p| (p, pin)));
            let targets = targets.collect::<PyResult<Vec<_>>>()?;
            let resolved = block_on(py, self.inner.resolve_many(&targets)).into_py_result(py)?;
            Ok(resolved.into_iter().map(|path| path.to_string()).collect())
        })
    }

    /// What to delete of the output at `path` under a retention rule (keep the
    /// last `keep_last` versions, and those younger than `keep_for` seconds),
    /// never the current version nor what the guard protects:
    /// `{"deletions": [{"target", "version", "paths", "reason"}], "kept": [{"target", "version", "reason", "deferred"}]}`.
    #[pyo3(signature = (path, *, keep_last = None, keep_for = None, unfinished_runs = vec![], readers_since = None, pinned = vec![], grace = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn plan_retention<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        keep_last: Option<usize>,
        keep_for: Option<f64>,
        unfinished_runs: Vec<String>,
        readers_since: Option<f64>,
        pinned: Vec<String>,
        grace: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        guard(py, "plan_retention", Some(path), || {
            let target = parse_path(py, path)?;
            let retention = Retention { keep_last, keep_for: keep_for.map(seconds).transpose()? };
            let guard = versions_guard(unfinished_runs, readers_since, pinned, grace)?;
            let plan = versions::plan_retention(self.inner.store(), &target, retention, &guard, SystemTime::now());
            plan_dict(py, block_on(py, plan).into_py_result(py)?)
        })
    }

    /// What to delete of the output at `path` (of `owner`), whose asset or
    /// partition was wiped at `wiped_at` (seconds since the epoch): what was
    /// stored before then, but not what the guard protects; as `plan_retention`.
    #[pyo3(signature = (path, *, wiped_at, owner = None, unfinished_runs = vec![], readers_since = None, pinned = vec![], grace = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn plan_wipe<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        wiped_at: f64,
        owner: PyOwner,
        unfinished_runs: Vec<String>,
        readers_since: Option<f64>,
        pinned: Vec<String>,
        grace: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        guard(py, "plan_wipe", Some(path), || {
            let (target, owner) = (parse_path(py, path)?, to_owner(owner));
            let wiped_at = UNIX_EPOCH + seconds(wiped_at)?;
            let guard = versions_guard(unfinished_runs, readers_since, pinned, grace)?;
            let store = self.inner.store();
            let plan = versions::plan_wipe(store, &target, owner.as_ref(), wiped_at, &guard, SystemTime::now());
            plan_dict(py, block_on(py, plan).into_py_result(py)?)
        })
    }

    /// Deletes the objects at `paths`, in order (one already gone is no error);
    /// returns how many.
    fn delete_paths(&self, py: Python<'_>, paths: Vec<String>) -> PyResult<usize> {
        guard(py, "delete_paths", paths.first().map(String::as_str), || {
            let paths = paths.iter().map(|path| parse_path(py, path)).collect::<PyResult<Vec<_>>>()?;
            block_on(py, versions::delete_all(self.inner.store(), &paths)).into_py_result(py)
        })
    }

    /// A writer of the output at `path`, as `owner`'s, for bytes that come in
    /// pieces (a file, a stream); given `run_id`, of a new version of it, which
    /// `close()` makes current.
    #[pyo3(signature = (path, *, owner = None, run_id = None))]
    fn open_output(
        &self,
        py: Python<'_>,
        path: &str,
        owner: PyOwner,
        run_id: Option<String>,
    ) -> PyResult<OutputWriter> {
        guard(py, "open_output", Some(path), || {
            OutputWriter::open(py, &self.inner, parse_path(py, path)?, to_owner(owner).as_ref(), run_id)
        })
    }

    /// The object at `path` (of `owner`), opened for verified reads at any offset.
    #[pyo3(signature = (path, *, owner = None))]
    fn open_ranged(&self, py: Python<'_>, path: &str, owner: PyOwner) -> PyResult<RangedReader> {
        guard(py, "open_ranged", Some(path), || {
            RangedReader::open(py, &self.inner, &parse_path(py, path)?, to_owner(owner).as_ref())
        })
    }

    /// Copies the object at `path` (of `owner`) to the local file `local`,
    /// verified; returns its size. A failed copy leaves no file.
    #[pyo3(signature = (path, local, *, owner = None))]
    fn download(&self, py: Python<'_>, path: &str, local: &str, owner: PyOwner) -> PyResult<u64> {
        guard(py, "download", Some(path), || {
            files::download(py, &self.inner, &parse_path(py, path)?, to_owner(owner).as_ref(), local)
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

/// `value` seconds as a duration; a negative or non-finite value is an error.
fn seconds(value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| PyValueError::new_err(format!("{value} is not a number of seconds")))
}

fn versions_guard(
    unfinished_runs: Vec<String>,
    readers_since: Option<f64>,
    pinned: Vec<String>,
    grace: f64,
) -> PyResult<Guard> {
    Ok(Guard {
        unfinished_runs,
        readers_since: readers_since.map(|since| seconds(since).map(|s| UNIX_EPOCH + s)).transpose()?,
        pinned: pinned.into_iter().collect(),
        grace: seconds(grace)?,
    })
}

/// A plan as Python sees it.
fn plan_dict(py: Python<'_>, plan: Plan) -> PyResult<Bound<'_, PyDict>> {
    let deletions = plan.deletions.into_iter().map(|deletion| {
        let item = PyDict::new(py);
        item.set_item("target", deletion.target.to_string())?;
        item.set_item("version", deletion.version)?;
        item.set_item("paths", deletion.paths.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        item.set_item("reason", deletion.reason)?;
        Ok(item)
    });
    let kept = plan.kept.into_iter().map(|kept| {
        let item = PyDict::new(py);
        item.set_item("target", kept.target.to_string())?;
        item.set_item("version", kept.version)?;
        item.set_item("reason", kept.reason)?;
        item.set_item("deferred", kept.deferred)?;
        Ok(item)
    });
    let out = PyDict::new(py);
    out.set_item("deletions", deletions.collect::<PyResult<Vec<_>>>()?)?;
    out.set_item("kept", kept.collect::<PyResult<Vec<_>>>()?)?;
    Ok(out)
}
