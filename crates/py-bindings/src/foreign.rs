//! Store objects from other libraries as a backend: anything with
//! remote-store's `read_bytes`, `write`, `get_file_info`, `list_files` and
//! `delete` (a remote-store `Store`, for one), so the IO manager can write
//! through it before a team moves its stores; the last three serve its
//! checksum records. Its `list_folders`, `copy` and `move` are used where the
//! object has them; without them those operations are refused, naming the
//! method. Every call goes through Python, on a blocking thread that takes the
//! GIL: slower than the native backends, same semantics.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use pyo3::exceptions::PyFileNotFoundError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use store_core::{
    Backend, Error, ErrorKind, GetOptions, GetResult, HeadOptions, ListEntry, Metadata, ObjectMeta, Payload,
    PutOptions, Result, StorePath, WriteMode, WriteResult,
};

/// Methods a foreign store must have, with remote-store's signatures.
pub const REQUIRED: [&str; 5] = [
    "read_bytes(path)",
    "write(path, data, overwrite=True)",
    "get_file_info(path)",
    "list_files(path, recursive=False)",
    "delete(path, missing_ok=False)",
];

/// remote-store's methods used where a foreign store has them, and the
/// operation each serves.
const OPTIONAL: [(&str, &str); 3] = [("list_folders", "a one-level list"), ("copy", "copy"), ("move", "rename")];

/// A Python store object seen as a [`Backend`].
#[derive(Debug)]
pub struct ForeignBackend {
    object: Py<PyAny>,
    /// The object's type, as `module.Class`: shown in URIs and reprs instead of
    /// the object's own repr, which may show credentials.
    type_name: String,
    /// The [`OPTIONAL`] methods the object has.
    offers: Vec<&'static str>,
}

impl ForeignBackend {
    /// Wraps `object`; fails with a `TypeError` naming what it lacks.
    pub fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let class = object.get_type();
        let type_name = format!("{}.{}", class.module()?, class.qualname()?);
        for method in REQUIRED.map(|signature| signature.split_once('(').map_or(signature, |(name, _)| name)) {
            if !object.getattr(method).is_ok_and(|m| m.is_callable()) {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "a store must be a dagster_remote_store.Store or have the methods {}, as a remote-store \
                     Store has; {type_name} has no `{method}`",
                    REQUIRED.join(", ")
                )));
            }
        }
        let offers = OPTIONAL
            .iter()
            .map(|(method, _)| *method)
            .filter(|method| object.getattr(*method).is_ok_and(|m| m.is_callable()))
            .collect();
        Ok(Self { object: object.clone().unbind(), type_name, offers })
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

    /// Calls `call` if the object has `method`, else refuses the operation.
    async fn call_optional<T: Send + 'static>(
        &self,
        method: &'static str,
        call: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<T> + Send + 'static,
    ) -> Result<T> {
        if !self.offers.contains(&method) {
            let operation = OPTIONAL.iter().find(|(m, _)| *m == method).map_or(method, |(_, op)| *op);
            let message = format!("{} has no `{method}` method, which {operation} needs", self.type_name);
            return Err(Error::new(ErrorKind::Other, message));
        }
        self.call(call).await
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

    /// remote-store reads whole objects only, so a range is cut from the whole.
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let path = path.to_string();
        let mut data = self
            .call(move |_, store| {
                let data = store.call_method1("read_bytes", (path,))?;
                Ok(Bytes::copy_from_slice(data.cast::<PyBytes>()?.as_bytes()))
            })
            .await?;
        if let Some(range) = options.range {
            let end = usize::try_from(range.end).unwrap_or(usize::MAX).min(data.len());
            data = data.slice(usize::try_from(range.start).unwrap_or(usize::MAX).min(end)..end);
        }
        let size = data.len() as u64;
        Ok(GetResult::new(data.into(), Some(size), Metadata::new()))
    }

    async fn head_opts(&self, path: &StorePath, _: HeadOptions) -> Result<(ObjectMeta, Metadata)> {
        let path = path.clone();
        let meta = self
            .call(move |_, store| {
                let info = store.call_method1("get_file_info", (path.to_string(),))?;
                object_meta(path, &info)
            })
            .await?;
        Ok((meta, Metadata::new()))
    }

    /// A streamed payload is gathered first: remote-store writes whole objects. Conditional
    /// writes ([`WriteMode::IfMatch`]) are refused: remote-store has no way to make one.
    async fn put_opts(&self, path: &StorePath, payload: Payload, options: PutOptions) -> Result<WriteResult> {
        options.refuse_metadata(self.kind())?;
        if matches!(options.mode, WriteMode::IfMatch(_)) {
            let message =
                format!("{} cannot make conditional writes (IfMatch): it has no compare-and-swap", self.type_name);
            return Err(Error::new(ErrorKind::Other, message));
        }
        let (path, data) = (path.to_string(), payload.bytes().await?);
        self.call(move |py, store| {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("overwrite", options.mode == WriteMode::Overwrite)?;
            store.call_method("write", (path, PyBytes::new(py, &data)), Some(&kwargs))?;
            Ok(WriteResult::default())
        })
        .await
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let path = path.to_string();
        self.call(move |py, store| {
            let kwargs = PyDict::new(py);
            kwargs.set_item("missing_ok", true)?;
            store.call_method("delete", (path,), Some(&kwargs)).map(drop)
        })
        .await
    }

    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        let backend = ForeignBackend {
            object: Python::attach(|py| self.object.clone_ref(py)),
            type_name: self.type_name.clone(),
            offers: self.offers.clone(),
        };
        let prefix = prefix.map(StorePath::to_string).unwrap_or_default();
        stream::once(async move { backend.list_entries(prefix, recursive).await })
            .map_ok(|entries| stream::iter(entries.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.transfer("copy", from, to, overwrite).await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.transfer("move", from, to, overwrite).await
    }
}

impl ForeignBackend {
    /// One listing, whole: remote-store lists through an iterator of Python objects.
    async fn list_entries(&self, prefix: String, recursive: bool) -> Result<Vec<ListEntry>> {
        let folders = if recursive {
            Vec::new()
        } else {
            let prefix = prefix.clone();
            self.call_optional("list_folders", move |_, store| {
                let mut folders = Vec::new();
                for folder in store.call_method1("list_folders", (prefix,))?.try_iter()? {
                    folders.push(ListEntry::Prefix(store_path(&folder?.getattr("path")?)?));
                }
                Ok(folders)
            })
            .await?
        };
        let mut entries = self
            .call(move |py, store| {
                let kwargs = PyDict::new(py);
                kwargs.set_item("recursive", recursive)?;
                let mut files = Vec::new();
                for info in store.call_method("list_files", (prefix,), Some(&kwargs))?.try_iter()? {
                    let info = info?;
                    files.push(ListEntry::Object(object_meta(store_path(&info.getattr("path")?)?, &info)?));
                }
                Ok(files)
            })
            .await?;
        entries.extend(folders);
        Ok(entries)
    }

    async fn transfer(&self, method: &'static str, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        self.call_optional(method, move |py, store| {
            let kwargs = PyDict::new(py);
            kwargs.set_item("overwrite", overwrite)?;
            store.call_method(method, (from, to), Some(&kwargs)).map(drop)
        })
        .await
    }
}

/// A remote-store `FileInfo` (`size`, `modified_at`) as object metadata.
fn object_meta(path: StorePath, info: &Bound<'_, PyAny>) -> PyResult<ObjectMeta> {
    let modified = info.getattr("modified_at")?;
    let last_modified = if modified.is_none() {
        None
    } else {
        let seconds: f64 = modified.call_method0("timestamp")?.extract()?;
        Duration::try_from_secs_f64(seconds).ok().map(|since| SystemTime::UNIX_EPOCH + since)
    };
    Ok(ObjectMeta { path, size: info.getattr("size")?.extract()?, last_modified, e_tag: None, version: None })
}

/// A path a foreign store returned, as ours.
fn store_path(path: &Bound<'_, PyAny>) -> PyResult<StorePath> {
    let text = path.str()?.to_string();
    text.parse().map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{text:?}: {e}")))
}

/// A `Store` over a foreign store object (see the module docs).
#[pyfunction]
pub fn foreign_store(py: Python<'_>, object: &Bound<'_, PyAny>) -> PyResult<crate::store::Store> {
    let backend = ForeignBackend::new(object)?;
    let shown = format!("ForeignBackend({})", backend.type_name());
    crate::store::Store::from_store(py, store_core::Store::new(backend), shown)
}
