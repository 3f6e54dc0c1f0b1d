//! Store objects from other libraries as a backend: anything with
//! `read_bytes(path)` and `write(path, data, overwrite=...)` (a remote-store
//! `Store`, for one), so the IO manager can write through it before a team
//! moves its stores. Every call goes through Python, on a blocking thread
//! that takes the GIL: slower than the native backends, same semantics.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use pyo3::exceptions::PyFileNotFoundError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use store_core::{Backend, Error, ErrorKind, ListEntry, ObjectMeta, Result, StorePath, WriteMode, WriteResult};

/// Methods a foreign store must have.
pub const REQUIRED: [&str; 2] = ["read_bytes", "write"];

/// A Python store object seen as a [`Backend`].
#[derive(Debug)]
pub struct ForeignBackend {
    object: Py<PyAny>,
    /// The object's type, as `module.Class`: shown in URIs and reprs instead of
    /// the object's own repr, which may show credentials.
    type_name: String,
}

impl ForeignBackend {
    /// Wraps `object`; fails with a `TypeError` naming what it lacks.
    pub fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let class = object.get_type();
        let type_name = format!("{}.{}", class.module()?, class.qualname()?);
        for method in REQUIRED {
            if !object.getattr(method).is_ok_and(|m| m.is_callable()) {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "a store must be a dagster_remote_store.Store or have `read_bytes(path)` and \
                     `write(path, data, overwrite=True)` methods; {type_name} has no `{method}`"
                )));
            }
        }
        Ok(Self { object: object.clone().unbind(), type_name })
    }

    /// The type name shown for this store.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Runs `call` with the GIL on a blocking thread; Python errors become Store errors.
    async fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<T> + Send + 'static,
    ) -> Result<T> {
        let object = Python::attach(|py| self.object.clone_ref(py));
        let joined = tokio::task::spawn_blocking(move || {
            Python::attach(|py| call(py, object.bind(py)).map_err(|e| python_error(py, e)))
        })
        .await;
        joined.unwrap_or_else(|e| Err(Error::new(ErrorKind::Other, format!("the foreign store call failed: {e}"))))
    }

    fn unsupported(&self, operation: &str) -> Error {
        let message = format!("{} offers only read_bytes and write, not {operation}", self.type_name);
        Error::new(ErrorKind::Other, message)
    }
}

/// A missing object (`FileNotFoundError`, or a class named `NotFound`, as
/// remote-store raises) is [`ErrorKind::NotFound`]; anything else keeps its text.
fn python_error(py: Python<'_>, err: PyErr) -> Error {
    let class = err.get_type(py);
    let name = class.name().map(|n| n.to_string()).unwrap_or_default();
    if err.is_instance_of::<PyFileNotFoundError>(py) || name == "NotFound" {
        return Error::new(ErrorKind::NotFound, "no such object");
    }
    Error::new(ErrorKind::Other, format!("{name}: {}", err.value(py)))
}

#[async_trait]
impl Backend for ForeignBackend {
    fn kind(&self) -> &'static str {
        "foreign"
    }

    fn uri(&self, path: &StorePath) -> String {
        format!("{}:{path}", self.type_name)
    }

    async fn read(&self, path: &StorePath) -> Result<Bytes> {
        let path = path.to_string();
        self.call(move |_, store| {
            let data = store.call_method1("read_bytes", (path,))?;
            Ok(Bytes::copy_from_slice(data.cast::<PyBytes>()?.as_bytes()))
        })
        .await
    }

    async fn read_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        let data = self.read(path).await?;
        let end = (range.end as usize).min(data.len());
        Ok(data.slice((range.start as usize).min(end)..end))
    }

    async fn write(&self, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<WriteResult> {
        let path = path.to_string();
        self.call(move |py, store| {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("overwrite", mode == WriteMode::Overwrite)?;
            store.call_method("write", (path, PyBytes::new(py, &data)), Some(&kwargs))?;
            Ok(WriteResult::default())
        })
        .await
    }

    async fn head(&self, _path: &StorePath) -> Result<ObjectMeta> {
        Err(self.unsupported("head"))
    }

    async fn delete(&self, _path: &StorePath) -> Result<()> {
        Err(self.unsupported("delete"))
    }

    fn list(&self, _prefix: Option<&StorePath>, _recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        let err = self.unsupported("list");
        stream::once(async { Err(err) }).boxed()
    }

    async fn copy(&self, _from: &StorePath, _to: &StorePath, _overwrite: bool) -> Result<()> {
        Err(self.unsupported("copy"))
    }

    async fn rename(&self, _from: &StorePath, _to: &StorePath, _overwrite: bool) -> Result<()> {
        Err(self.unsupported("rename"))
    }
}

/// A `Store` over a foreign store object (see the module docs).
#[pyfunction]
pub fn foreign_store(py: Python<'_>, object: &Bound<'_, PyAny>) -> PyResult<crate::store::Store> {
    let backend = ForeignBackend::new(object)?;
    let shown = format!("ForeignBackend({})", backend.type_name());
    crate::store::Store::from_store(py, store_core::Store::new(backend), shown)
}
