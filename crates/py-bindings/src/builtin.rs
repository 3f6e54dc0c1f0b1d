//! The common base class of the serializer classes the package ships
//! (`PickleSerializer`, `JsonSerializer`, `ParquetSerializer`).

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::errors::serialize_error;
use crate::value::{PySerializer, PyValue};

/// Common base of the built-in serializers; they run in Rust where they can.
#[pyclass(subclass, frozen, module = "dagster_remote_store", name = "BuiltinSerializer")]
pub struct BuiltinSerializer {
    inner: PySerializer,
}

impl BuiltinSerializer {
    /// The base of a built-in serializer class running `inner`.
    pub fn new(inner: PySerializer) -> Self {
        Self { inner }
    }

    /// The serializer the class runs.
    pub fn inner(&self) -> &PySerializer {
        &self.inner
    }
}

#[pymethods]
impl BuiltinSerializer {
    /// Registry name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// File extension, with the dot.
    #[getter]
    fn extension(&self) -> &str {
        self.inner.extension()
    }

    /// `obj` as bytes.
    fn serialize<'py>(&self, py: Python<'py>, obj: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.inner.serialize(&PyValue(obj.unbind()));
        let data = data.map_err(|e| serialize_error(py, &e, None))?;
        Ok(PyBytes::new(py, &data))
    }

    /// The object `data` encodes.
    fn deserialize(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<Py<PyAny>> {
        let value = self.inner.deserialize(Bytes::from_owner(data));
        value.map(|v| v.0).map_err(|e| serialize_error(py, &e, None))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!("{}()", slf.get_type().name()?))
    }
}
