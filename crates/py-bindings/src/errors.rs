//! Rust errors as the Python exception classes of `dagster_remote_store.errors`.

use std::panic::{self, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use serializers::SerializeError;
use store_core::ErrorKind;

/// The exception class named `name` in `dagster_remote_store.errors`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || py.import("dagster_remote_store.errors").map(Bound::unbind))?;
    module.bind(py).getattr(name)?.cast_into::<PyType>().map_err(Into::into)
}

/// Builds an exception of class `name` with `message` and the attributes callers use.
fn raise(py: Python<'_>, name: &str, message: String, attrs: &[(&str, Option<&str>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let exception = class(py, name)?.call1((message.clone(),))?;
        for (attr, value) in attrs {
            exception.setattr(*attr, *value)?;
        }
        Ok(PyErr::from_value(exception))
    };
    build().unwrap_or_else(|lookup| PyRuntimeError::new_err(format!("{message} (and {lookup})")))
}

/// A Store error as `NotFound` (a `FileNotFoundError`), `AlreadyExists` (a
/// `FileExistsError`), `PermissionDenied` (a `PermissionError`), `InvalidPath`
/// (a `ValueError`), ... all subclasses of `RemoteStoreError`.
pub fn store_error(py: Python<'_>, err: &store_core::Error) -> PyErr {
    let name = match err.kind() {
        ErrorKind::NotFound => "NotFound",
        ErrorKind::AlreadyExists => "AlreadyExists",
        ErrorKind::PermissionDenied => "PermissionDenied",
        ErrorKind::InvalidPath => "InvalidPath",
        ErrorKind::Unavailable => "Unavailable",
        ErrorKind::Precondition => "PreconditionFailed",
        _ => "RemoteStoreError",
    };
    let attrs = [("path", err.path()), ("operation", err.operation()), ("backend", err.backend())];
    raise(py, name, err.to_string(), &attrs)
}

/// A backend that cannot be built from its options: `InvalidConfig` (a
/// `ValueError`); failures reaching the server (refused login, unknown host
/// key, ...) keep their own class.
pub fn config_error(py: Python<'_>, err: &store_core::Error) -> PyErr {
    match err.kind() {
        ErrorKind::Other => raise(py, "InvalidConfig", err.message().to_owned(), &[("backend", err.backend())]),
        _ => store_error(py, err),
    }
}

/// An IO-manager error: store and serializer errors as above, bad asset keys
/// or extensions as `InvalidPath`, corrupt objects as `ChecksumMismatch`,
/// another asset's object as `AssetMismatch`, an unreadable version pointer as
/// `DeserializationError`, a version name that is none as `InvalidConfig`.
pub fn io_error(py: Python<'_>, err: &io_manager::Error) -> PyErr {
    match err {
        io_manager::Error::Store(e) => store_error(py, e),
        io_manager::Error::Serialize { path, source } => serialize_error(py, source, Some(path.as_str())),
        io_manager::Error::AssetPath(e) => raise(py, "InvalidPath", e.to_string(), &[]),
        io_manager::Error::ChecksumMismatch { path, uri, stored, actual } => {
            let actual = actual.to_string();
            let attrs = [
                ("path", Some(path.as_str())),
                ("uri", Some(uri)),
                ("stored", Some(stored)),
                ("actual", Some(&actual)),
            ];
            raise(py, "ChecksumMismatch", err.to_string(), &attrs)
        }
        io_manager::Error::OwnedByAnother { path, uri, stored, expected } => {
            let attrs = [
                ("path", Some(path.as_str())),
                ("uri", Some(uri)),
                ("stored", Some(stored)),
                ("expected", Some(expected)),
            ];
            raise(py, "AssetMismatch", err.to_string(), &attrs)
        }
        io_manager::Error::BadPointer { path, .. } => {
            raise(py, "DeserializationError", err.to_string(), &[("path", Some(path.as_str()))])
        }
        io_manager::Error::BadVersion { .. } => raise(py, "InvalidConfig", err.to_string(), &[]),
    }
}

/// A serializer failure: the serializer's own Python exception as it was raised;
/// otherwise `SerializationError` (a `TypeError`) when encoding and
/// `DeserializationError` (a `ValueError`) when decoding.
pub fn serialize_error(py: Python<'_>, err: &SerializeError, path: Option<&str>) -> PyErr {
    if let Some(original) = std::error::Error::source(err).and_then(|s| s.downcast_ref::<PyErr>()) {
        return original.clone_ref(py);
    }
    let name = if err.is_decode() { "DeserializationError" } else { "SerializationError" };
    let message = match path {
        Some(path) => format!("{err} (path {path:?})"),
        None => err.to_string(),
    };
    raise(py, name, message, &[("path", path)])
}

/// Runs `f`, turning a Rust panic inside it into `InternalError`, an ordinary
/// exception of our hierarchy that names `operation` and `path`, where PyO3
/// would raise its `PanicException`, which `except Exception` does not catch.
/// An upload interrupted this way stores nothing (see `stream::Upload`).
pub fn guard<T>(py: Python<'_>, operation: &str, path: Option<&str>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let cause = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
            (Some(text), _) => (*text).to_owned(),
            (_, Some(text)) => text.clone(),
            _ => "a panic without a message".to_owned(),
        };
        let place = path.map(|path| format!(" {path:?}")).unwrap_or_default();
        let message = format!(
            "{operation}{place}: internal error in dagster-remote-store ({cause}); a write that fails this way \
             stores nothing. Please report it."
        );
        Err(raise(py, "InternalError", message, &[("path", path), ("operation", Some(operation))]))
    })
}

/// Panics when the environment variable `DAGSTER_REMOTE_STORE_TEST_PANIC` is
/// `path`, in a wheel built with the cargo feature `test-hooks`: how tests
/// check that a panic in the middle of a write becomes an exception and
/// stores nothing. Without the feature it does nothing.
pub fn test_panic(path: &str) {
    if cfg!(feature = "test-hooks") && std::env::var("DAGSTER_REMOTE_STORE_TEST_PANIC").is_ok_and(|p| p == path) {
        panic!("a panic forced for {path:?} by DAGSTER_REMOTE_STORE_TEST_PANIC");
    }
}

/// Shorthand for mapping a Store or IO-manager result.
pub trait StoreResultExt<T> {
    /// The error as its Python exception.
    fn into_py_result(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> StoreResultExt<T> for store_core::Result<T> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| store_error(py, &e))
    }
}

impl<T> StoreResultExt<T> for Result<T, io_manager::Error> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| io_error(py, &e))
    }
}
