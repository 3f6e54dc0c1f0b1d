//! Python's pickle as a serializer of Python objects, and the one way a failed
//! unpickling is reported. `pickle_stream` streams it to and from the store.

use bytes::Bytes;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict};
use serializers::{SerializeError, Serializer};

use crate::value::PyValue;

/// Python's pickle, highest protocol. Loads go through
/// `dagster_remote_store.serializers.RestrictedPickle` when the serializer has
/// an allow-list of globals, else through the `pickle` module; both have
/// `load(file)` and `loads(data)`.
#[derive(Default)]
pub struct Pickle {
    restricted: Option<Py<PyAny>>,
}

impl Pickle {
    pub const NAME: &'static str = "pickle";
    const EXTENSION: &'static str = ".pkl";

    /// Pickle whose loads go through `loader` (a `RestrictedPickle`).
    pub fn restricted(loader: Py<PyAny>) -> Self {
        Self { restricted: Some(loader) }
    }

    /// Whether loads are restricted to an allow-list of globals.
    pub fn is_restricted(&self) -> bool {
        self.restricted.is_some()
    }

    pub fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
        static PICKLE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
        PICKLE.get_or_try_init(py, || py.import("pickle").map(Bound::unbind)).map(|m| m.bind(py))
    }

    fn loader<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.restricted {
            Some(restricted) => Ok(restricted.bind(py).clone()),
            None => Ok(Self::module(py)?.clone().into_any()),
        }
    }

    /// The value pickled in `file` (read as it decodes); a failure is
    /// `DeserializationError` naming `path` (see [`unpickling_error`]).
    pub fn load(&self, py: Python<'_>, file: &Bound<'_, PyAny>, path: &str) -> PyResult<Py<PyAny>> {
        let value = self.loader(py)?.call_method1("load", (file,));
        value.map(Bound::unbind).map_err(|e| unpickling_error(py, Some(path), e))
    }

    /// The value pickled in `data`; a failure as in [`load`](Self::load).
    pub fn loads(&self, py: Python<'_>, data: Bound<'_, PyBytes>, path: Option<&str>) -> PyResult<Py<PyAny>> {
        let value = self.loader(py)?.call_method1("loads", (data,));
        value.map(Bound::unbind).map_err(|e| unpickling_error(py, path, e))
    }
}

/// Why a pickle did not load, as `DeserializationError` (a `ValueError`) naming
/// `path` and the original exception, which becomes its `__cause__`: truncated
/// data, garbage, a class that no longer imports, a global the allow-list
/// refuses all fail alike. Our own errors (a read that failed mid-stream) and
/// what is not an `Exception` (`KeyboardInterrupt`) are raised as they are. A
/// `DeserializationError` that named no path (bytes decoded before their path
/// was known) is raised again naming `path`.
pub fn unpickling_error(py: Python<'_>, path: Option<&str>, err: PyErr) -> PyErr {
    let wrap = || -> PyResult<PyErr> {
        let errors = py.import("dagster_remote_store.errors")?;
        let value = err.value(py);
        if value.is_instance(&errors.getattr("DeserializationError")?)? {
            match (path, err.cause(py)) {
                (Some(path), Some(cause)) if value.getattr("path")?.is_none() => {
                    return Ok(unpickling_error(py, Some(path), cause));
                }
                _ => return Ok(err.clone_ref(py)),
            }
        }
        if !err.is_instance_of::<PyException>(py) || value.is_instance(&errors.getattr("RemoteStoreError")?)? {
            return Ok(err.clone_ref(py));
        }
        let what = match path {
            Some(path) => format!("{path:?}"),
            None => "the data".to_owned(),
        };
        let message = format!("cannot unpickle {what}: {}: {value}", value.get_type().qualname()?);
        let kwargs = PyDict::new(py);
        kwargs.set_item("path", path)?;
        kwargs.set_item("operation", "load")?;
        let raised = PyErr::from_value(errors.getattr("DeserializationError")?.call((message,), Some(&kwargs))?);
        raised.set_cause(py, Some(err.clone_ref(py)));
        Ok(raised)
    };
    wrap().unwrap_or_else(|failed| failed)
}

impl Serializer<PyValue> for Pickle {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn extension(&self) -> &str {
        Self::EXTENSION
    }
    fn serialize(&self, value: &PyValue) -> Result<Bytes, SerializeError> {
        Python::attach(|py| {
            let pickle = Self::module(py)?;
            let protocol = pickle.getattr("HIGHEST_PROTOCOL")?;
            let data: PyBackedBytes = pickle.call_method1("dumps", (value.0.bind(py), protocol))?.extract()?;
            // The pickled bytes object itself backs the buffer: no copy.
            Ok(Bytes::from_owner(data))
        })
        .map_err(|e: PyErr| SerializeError::encode(Self::NAME, e))
    }
    fn deserialize(&self, data: Bytes) -> Result<PyValue, SerializeError> {
        Python::attach(|py| self.loads(py, PyBytes::new(py, &data), None).map(PyValue))
            .map_err(|e: PyErr| SerializeError::decode(Self::NAME, e))
    }
}
