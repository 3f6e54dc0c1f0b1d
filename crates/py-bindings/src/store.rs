//! `Store`: a backend plus a root path, with blocking methods that release the GIL.

use std::time::{Duration, UNIX_EPOCH};

use futures::TryStreamExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyType};
use store_core::{ListEntry, Metadata, ObjectMeta, StorePath, WriteMode};

use crate::backends::Backend;
use crate::errors::{StoreResultExt, guard, store_error};
use crate::runtime::block_on;
use crate::stream::{ObjectReader, ObjectWriter};

/// A path argument, validated; bad ones raise `InvalidPath` (a `ValueError`).
pub fn parse_path(py: Python<'_>, path: &str) -> PyResult<StorePath> {
    StorePath::parse(path).map_err(|e| store_error(py, &e))
}

/// A backend plus a root path. Every path is relative to the root.
#[pyclass(frozen, module = "dagster_remote_store")]
pub struct Store {
    pub(crate) inner: store_core::Store,
    backend: Py<Backend>,
}

impl Store {
    /// A Store built in Rust; its backend's `repr` is `shown`.
    pub(crate) fn from_store(py: Python<'_>, inner: store_core::Store, shown: String) -> PyResult<Self> {
        let backend = Py::new(py, Backend::base(inner.backend().clone(), shown))?;
        Ok(Self { inner, backend })
    }
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (backend, root_path = ""))]
    fn new(py: Python<'_>, backend: &Bound<'_, PyAny>, root_path: &str) -> PyResult<Self> {
        let backend = backend.cast::<Backend>().map_err(|_| {
            let got = backend.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            PyTypeError::new_err(format!(
                "Store(backend=...) takes a backend from dagster_remote_store.backends, such as LocalBackend(root=...), not {got}"
            ))
        })?;
        let store = store_core::Store::from_arc(backend.get().inner.clone());
        let root = root_path.trim_end_matches('/');
        let inner = if root.is_empty() { store } else { store.child(&parse_path(py, root)?) };
        Ok(Self { inner, backend: backend.clone().unbind() })
    }

    /// The backend this Store writes to.
    #[getter]
    fn backend(&self, py: Python<'_>) -> Py<Backend> {
        self.backend.clone_ref(py)
    }

    /// The root path within the backend (`""` for none).
    #[getter]
    fn root_path(&self) -> String {
        self.inner.root().map(StorePath::to_string).unwrap_or_default()
    }

    /// A Store scoped to `path` below this one's root, sharing its backend.
    fn child(&self, py: Python<'_>, path: &str) -> PyResult<Store> {
        let inner = self.inner.child(&parse_path(py, path)?);
        Ok(Store { inner, backend: self.backend.clone_ref(py) })
    }

    /// The object's URI in the backend's scheme (`file:///...`, `memory:///...`).
    fn uri(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        Ok(self.inner.uri(&parse_path(py, path)?))
    }

    /// A URL that lets anyone holding it read the object at `path` until
    /// `expires_in` (a `timedelta` or seconds) has passed, signed with the
    /// backend's credentials: S3, Azure and GCS sign one; other backends give `None`.
    fn signed_url(&self, py: Python<'_>, path: &str, expires_in: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let expires_in = duration("expires_in", expires_in)?;
        guard(py, "signed_url", Some(path), || {
            let path = parse_path(py, path)?;
            block_on(py, self.inner.signed_url(&path, expires_in)).into_py_result(py)
        })
    }

    /// The whole object as bytes.
    fn read_bytes<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyBytes>> {
        guard(py, "read", Some(path), || {
            let path = parse_path(py, path)?;
            let data = block_on(py, self.inner.read(&path)).into_py_result(py)?;
            Ok(PyBytes::new(py, &data))
        })
    }

    /// Bytes `start` up to (not including) `end`, clamped at the object's end.
    fn read_range<'py>(&self, py: Python<'py>, path: &str, start: u64, end: u64) -> PyResult<Bound<'py, PyBytes>> {
        guard(py, "read_range", Some(path), || {
            let path = parse_path(py, path)?;
            let data = block_on(py, self.inner.read_range(&path, start..end)).into_py_result(py)?;
            Ok(PyBytes::new(py, &data))
        })
    }

    /// Stores `data` atomically. With `overwrite=False` an existing object
    /// raises `AlreadyExists`. `metadata` (string keys and values) is stored
    /// with the object on backends that keep metadata (S3, Azure, GCS, memory);
    /// the others refuse it.
    #[pyo3(signature = (path, data, *, overwrite = true, metadata = None))]
    fn write(
        &self,
        py: Python<'_>,
        path: &str,
        data: PyBackedBytes,
        overwrite: bool,
        metadata: Option<Metadata>,
    ) -> PyResult<()> {
        guard(py, "write", Some(path), || {
            let path = parse_path(py, path)?;
            let mode = if overwrite { WriteMode::Overwrite } else { WriteMode::CreateNew };
            let (data, metadata) = (bytes::Bytes::from_owner(data), metadata.unwrap_or_default());
            block_on(py, self.inner.write_with_metadata(&path, data, mode, &metadata)).into_py_result(py)?;
            Ok(())
        })
    }

    /// The whole object and the metadata stored with it: `(data, {key: value})`.
    fn read_with_metadata<'py>(&self, py: Python<'py>, path: &str) -> PyResult<(Bound<'py, PyBytes>, Metadata)> {
        guard(py, "read", Some(path), || {
            let path = parse_path(py, path)?;
            let (data, metadata) = block_on(py, self.inner.read_with_metadata(&path)).into_py_result(py)?;
            Ok((PyBytes::new(py, &data), metadata))
        })
    }

    /// A file-like writer that streams to `path` as a multipart upload: nothing
    /// is stored until `close()` (or the end of a `with` block without an
    /// exception). With `overwrite=False` an existing object raises `AlreadyExists` at close.
    #[pyo3(signature = (path, *, overwrite = true))]
    fn open_writer(&self, py: Python<'_>, path: &str, overwrite: bool) -> PyResult<ObjectWriter> {
        let mode = if overwrite { WriteMode::Overwrite } else { WriteMode::CreateNew };
        Ok(ObjectWriter::open(&self.inner, parse_path(py, path)?, mode))
    }

    /// A file-like reader that streams the object: `read(size)`, `readline()`,
    /// or iteration over chunks. A missing object raises `NotFound` here.
    fn open_reader(&self, py: Python<'_>, path: &str) -> PyResult<ObjectReader> {
        ObjectReader::open(py, &self.inner, parse_path(py, path)?)
    }

    /// Whether the object exists.
    fn exists(&self, py: Python<'_>, path: &str) -> PyResult<bool> {
        guard(py, "exists", Some(path), || {
            let path = parse_path(py, path)?;
            block_on(py, self.inner.exists(&path)).into_py_result(py)
        })
    }

    /// Size, modification time, e-tag and version of one object.
    fn head(&self, py: Python<'_>, path: &str) -> PyResult<FileInfo> {
        guard(py, "head", Some(path), || {
            let path = parse_path(py, path)?;
            block_on(py, self.inner.head(&path)).into_py_result(py).map(FileInfo::from)
        })
    }

    /// Removes the object; a missing one raises `NotFound` unless `missing_ok`.
    #[pyo3(signature = (path, *, missing_ok = false))]
    fn delete(&self, py: Python<'_>, path: &str, missing_ok: bool) -> PyResult<()> {
        guard(py, "delete", Some(path), || {
            let path = parse_path(py, path)?;
            block_on(py, self.inner.delete(&path, missing_ok)).into_py_result(py)
        })
    }

    /// Paths of the objects under `prefix`, sorted. With `recursive=False` only
    /// the first level, sub-folders ending in `/`.
    #[pyo3(signature = (prefix = "", *, recursive = true))]
    fn list(&self, py: Python<'_>, prefix: &str, recursive: bool) -> PyResult<Vec<String>> {
        guard(py, "list", Some(prefix), || {
            let prefix = prefix.trim_end_matches('/');
            let prefix = if prefix.is_empty() { None } else { Some(parse_path(py, prefix)?) };
            let entries = self.inner.list(prefix.as_ref(), recursive);
            let mut paths: Vec<String> = block_on(
                py,
                entries
                    .map_ok(|entry| match entry {
                        ListEntry::Object(meta) => meta.path.to_string(),
                        ListEntry::Prefix(folder) => format!("{folder}/"),
                    })
                    .try_collect(),
            )
            .into_py_result(py)?;
            paths.sort_unstable();
            Ok(paths)
        })
    }

    /// The paths of what interrupted writes left under `prefix` (the whole store
    /// by default): incomplete multipart uploads (S3, GCS), temporary files
    /// (local, SFTP). Writes in progress show here too.
    #[pyo3(signature = (prefix = ""))]
    fn leftovers(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        guard(py, "leftovers", Some(prefix), || {
            let prefix = prefix.trim_end_matches('/');
            let prefix = if prefix.is_empty() { None } else { Some(parse_path(py, prefix)?) };
            let found = block_on(py, self.inner.leftovers(prefix.as_ref())).into_py_result(py)?;
            Ok(found.into_iter().map(|leftover| leftover.path.to_string()).collect())
        })
    }

    /// Removes what interrupted writes left under `prefix` (the whole store by
    /// default) that began more than `older_than` ago: incomplete multipart
    /// uploads (S3, GCS), temporary files (local, SFTP). `older_than` is a
    /// `timedelta` or seconds; writes in progress are younger than any sensible
    /// value (an hour, say). Returns the paths of what was removed.
    #[pyo3(signature = (prefix = "", *, older_than))]
    fn clean_up(&self, py: Python<'_>, prefix: &str, older_than: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let older_than = duration("older_than", older_than)?;
        guard(py, "clean_up", Some(prefix), || {
            let prefix = prefix.trim_end_matches('/');
            let prefix = if prefix.is_empty() { None } else { Some(parse_path(py, prefix)?) };
            let removed = block_on(py, self.inner.clean_up(prefix.as_ref(), older_than)).into_py_result(py)?;
            Ok(removed.into_iter().map(|leftover| leftover.path.to_string()).collect())
        })
    }

    /// Copies `src` to `dst`; with `overwrite=False` an existing `dst` raises `AlreadyExists`.
    #[pyo3(signature = (src, dst, *, overwrite = true))]
    fn copy(&self, py: Python<'_>, src: &str, dst: &str, overwrite: bool) -> PyResult<()> {
        guard(py, "copy", Some(src), || {
            let (src, dst) = (parse_path(py, src)?, parse_path(py, dst)?);
            block_on(py, self.inner.copy(&src, &dst, overwrite)).into_py_result(py)
        })
    }

    /// Moves `src` to `dst`; with `overwrite=False` an existing `dst` raises `AlreadyExists`.
    #[pyo3(signature = (src, dst, *, overwrite = true))]
    fn rename(&self, py: Python<'_>, src: &str, dst: &str, overwrite: bool) -> PyResult<()> {
        guard(py, "rename", Some(src), || {
            let (src, dst) = (parse_path(py, src)?, parse_path(py, dst)?);
            block_on(py, self.inner.rename(&src, &dst, overwrite)).into_py_result(py)
        })
    }

    /// Releases the backend's connections (shared with child Stores).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.inner.close()).into_py_result(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyType>>,
        _exc: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let backend = self.backend.bind(py).repr()?;
        Ok(format!("Store({backend}, root_path={:?})", self.root_path()))
    }
}

/// Metadata of one stored object.
#[pyclass(frozen, module = "dagster_remote_store")]
pub struct FileInfo {
    /// Store-relative path.
    #[pyo3(get)]
    path: String,
    /// Size in bytes.
    #[pyo3(get)]
    size: u64,
    /// Entity tag, if the backend has one.
    #[pyo3(get)]
    etag: Option<String>,
    /// Object version, if the backend versions objects.
    #[pyo3(get)]
    version: Option<String>,
    modified_epoch: Option<f64>,
}

impl From<ObjectMeta> for FileInfo {
    fn from(meta: ObjectMeta) -> Self {
        let epoch = meta.last_modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64());
        Self {
            path: meta.path.to_string(),
            size: meta.size,
            etag: meta.e_tag,
            version: meta.version,
            modified_epoch: epoch,
        }
    }
}

#[pymethods]
impl FileInfo {
    /// Last modification time as an aware UTC `datetime`, if the backend records it.
    #[getter]
    fn last_modified<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(epoch) = self.modified_epoch else { return Ok(None) };
        let datetime = py.import("datetime")?;
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        datetime.getattr("datetime")?.call_method1("fromtimestamp", (epoch, utc)).map(Some)
    }

    fn __repr__(&self) -> String {
        format!("FileInfo(path={:?}, size={})", self.path, self.size)
    }
}

/// A `timedelta` or a number of seconds, for the argument `name`.
fn duration(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    match value.extract::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| PyTypeError::new_err(format!("{name} must be a timedelta or seconds >= 0, got {seconds}"))),
        Err(_) => value.extract::<Duration>(),
    }
}
