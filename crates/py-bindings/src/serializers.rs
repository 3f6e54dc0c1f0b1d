//! The serializer registry as Python sees it: `"pickle"` (runs Python's pickle),
//! `"json"` (serde_json in Rust), `"parquet"` (tables, see `parquet.rs`), and any
//! object with `extension`, `serialize(obj) -> bytes` and `deserialize(data)`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};
use serializers::{Json, Registry, SerializeError, Serializer};

use crate::errors::serialize_error;
use crate::parquet::Parquet;
use crate::value::PyValue;

/// A serializer of Python objects.
pub type PySerializer = Arc<dyn Serializer<PyValue>>;

/// Python's pickle, highest protocol.
pub struct Pickle;

impl Pickle {
    pub const NAME: &'static str = "pickle";
    const EXTENSION: &'static str = ".pkl";

    pub fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
        static PICKLE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
        PICKLE.get_or_try_init(py, || py.import("pickle").map(Bound::unbind)).map(|m| m.bind(py))
    }
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
        Python::attach(|py| {
            let obj = Self::module(py)?.call_method1("loads", (PyBytes::new(py, &data),))?;
            Ok(PyValue(obj.unbind()))
        })
        .map_err(|e: PyErr| SerializeError::decode(Self::NAME, e))
    }
}

/// Any Python object following the `Serializer` protocol.
struct PythonSerializer {
    object: Py<PyAny>,
    name: String,
    extension: String,
}

impl Serializer<PyValue> for PythonSerializer {
    fn name(&self) -> &str {
        &self.name
    }
    fn extension(&self) -> &str {
        &self.extension
    }
    fn serialize(&self, value: &PyValue) -> Result<Bytes, SerializeError> {
        Python::attach(|py| {
            let out = self.object.bind(py).call_method1("serialize", (value.0.bind(py),))?;
            let data: PyBackedBytes = out.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{}.serialize() must return bytes, not {}",
                    self.name,
                    out.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
            })?;
            Ok(Bytes::from_owner(data))
        })
        .map_err(|e: PyErr| SerializeError::encode(&self.name, e))
    }
    fn deserialize(&self, data: Bytes) -> Result<PyValue, SerializeError> {
        Python::attach(|py| {
            let obj = self.object.bind(py).call_method1("deserialize", (PyBytes::new(py, &data),))?;
            Ok(PyValue(obj.unbind()))
        })
        .map_err(|e: PyErr| SerializeError::decode(&self.name, e))
    }
}

/// The named serializers: `json` from the serializers crate, `pickle` from here,
/// `parquet` (zstd) from `parquet.rs`.
fn registry() -> &'static Registry<PyValue> {
    static REGISTRY: OnceLock<Registry<PyValue>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::with_builtins();
        registry.register(Arc::new(Pickle));
        registry.register(Arc::new(Parquet::new(Default::default())));
        registry
    })
}

/// The names `serializer=` accepts, sorted.
#[pyfunction]
pub fn serializer_names() -> Vec<String> {
    registry().names().map(str::to_owned).collect()
}

/// Resolves what a user passed as `serializer=`: a registered name, one of our
/// serializer classes, or an object following the protocol.
pub fn resolve(serializer: &Bound<'_, PyAny>) -> PyResult<PySerializer> {
    if let Ok(name) = serializer.cast::<PyString>() {
        return registry().get(&name.to_cow()?).map_err(|e| PyValueError::new_err(e.to_string()));
    }
    if let Ok(builtin) = serializer.cast::<BuiltinSerializer>() {
        return Ok(builtin.get().inner.clone());
    }
    let name = serializer.get_type().name()?.to_string();
    let protocol_error = |missing: &str| {
        PyTypeError::new_err(format!(
            "serializer must be one of {:?} or an object with `extension: str`, `serialize(obj) -> bytes` \
             and `deserialize(data: bytes)`; {name} has no {missing}",
            serializer_names()
        ))
    };
    let extension: String =
        serializer.getattr("extension").and_then(|e| e.extract()).map_err(|_| protocol_error("`extension` string"))?;
    for method in ["serialize", "deserialize"] {
        if !serializer.getattr(method).is_ok_and(|m| m.is_callable()) {
            return Err(protocol_error(&format!("`{method}` method")));
        }
    }
    Ok(Arc::new(PythonSerializer { object: serializer.clone().unbind(), name, extension }))
}

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

/// Python's pickle (`.pkl`): any picklable object. The default.
#[pyclass(extends = BuiltinSerializer, frozen, module = "dagster_remote_store")]
pub struct PickleSerializer;

#[pymethods]
impl PickleSerializer {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(BuiltinSerializer { inner: Arc::new(Pickle) }).add_subclass(Self)
    }
}

/// JSON (`.json`), encoded and decoded in Rust: dicts, lists, tuples (as lists),
/// str, int, float, bool and None.
#[pyclass(extends = BuiltinSerializer, frozen, module = "dagster_remote_store")]
pub struct JsonSerializer;

#[pymethods]
impl JsonSerializer {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(BuiltinSerializer { inner: Arc::new(Json) }).add_subclass(Self)
    }
}
