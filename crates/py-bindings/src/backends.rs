//! Backend constructors for `dagster_remote_store.backends`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::errors::StoreResultExt;

/// Common base of every backend; a `Store` takes any of them.
#[pyclass(subclass, frozen, module = "dagster_remote_store.backends")]
pub struct Backend {
    pub(crate) inner: Arc<dyn store_core::Backend>,
}

#[pymethods]
impl Backend {
    /// Short backend name: `"local"`, `"memory"`, ...
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// Files under a local (or mounted) folder; writes are atomic (temporary file
/// beside the target, then rename), optionally synced to disk.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct LocalBackend {
    root: PathBuf,
    fsync: bool,
}

#[pymethods]
impl LocalBackend {
    #[new]
    #[pyo3(signature = (root, *, fsync = false))]
    fn new(py: Python<'_>, root: PathBuf, fsync: bool) -> PyResult<PyClassInitializer<Self>> {
        let backend = if fsync {
            store_backends::LocalBackend::with_fsync(&root)
        } else {
            store_backends::LocalBackend::new(&root)
        };
        let backend = backend.into_py_result(py)?;
        Ok(PyClassInitializer::from(Backend { inner: Arc::new(backend) }).add_subclass(Self { root, fsync }))
    }

    /// The root folder as given.
    #[getter]
    fn root(&self) -> PathBuf {
        self.root.clone()
    }

    fn __repr__(&self) -> String {
        let fsync = if self.fsync { "True" } else { "False" };
        format!("LocalBackend(root={:?}, fsync={fsync})", self.root.display().to_string())
    }
}

/// Objects in this process's memory, for tests and ephemeral runs: each
/// instance is its own space, invisible to other processes.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct MemoryBackend;

#[pymethods]
impl MemoryBackend {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(Backend { inner: Arc::new(store_backends::MemoryBackend::new()) }).add_subclass(Self)
    }

    fn __repr__(&self) -> &'static str {
        "MemoryBackend()"
    }
}
