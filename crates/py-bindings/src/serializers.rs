//! The serializer registry as Python sees it: `"pickle"` (runs Python's pickle),
//! `"json"` (serde_json in Rust), `"parquet"` (tables, see `parquet.rs`), and any
//! object with `extension`, `serialize(obj) -> bytes` and `deserialize(data)`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString};
use serializers::{Json, Registry, SerializeError, Serializer};

use crate::errors::{guard, serialize_error};
use crate::owner::{PyOwner, owned_paths, to_owner};
use crate::parquet::Parquet;
use crate::pickle_stream;
use crate::store::{Store, parse_path};
use crate::value::PyValue;

/// A serializer of Python objects.
pub type PySerializer = Arc<dyn Serializer<PyValue>>;

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
        registry.register(Arc::new(Pickle::default()));
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
    if serializer.cast::<PickleSerializer>().is_ok_and(|pickle| pickle.get().is_restricted()) {
        // Streamed loads of the core go through the plain `pickle` module.
        return Err(PyValueError::new_err(
            "IoManagerCore cannot apply allowed_globals; load through PickleSerializer.load and load_many",
        ));
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
///
/// With `allowed_globals` (see `RestrictedPickle`), loads resolve only the
/// classes and functions it names: a pickle from a shared bucket cannot run
/// code of its choosing.
#[pyclass(extends = BuiltinSerializer, frozen, module = "dagster_remote_store")]
pub struct PickleSerializer {
    pickle: Arc<Pickle>,
    /// The `allowed_globals` given, as a tuple; None for unrestricted loads.
    allowed_globals: Option<Py<PyAny>>,
}

impl PickleSerializer {
    /// Whether loads are restricted to an allow-list of globals.
    pub fn is_restricted(&self) -> bool {
        self.pickle.restricted.is_some()
    }
}

#[pymethods]
impl PickleSerializer {
    #[new]
    #[pyo3(signature = (*, allowed_globals = None))]
    fn new(py: Python<'_>, allowed_globals: Option<&Bound<'_, PyAny>>) -> PyResult<PyClassInitializer<Self>> {
        let restricted = match allowed_globals {
            Some(allowed) => {
                Some(py.import("dagster_remote_store.serializers")?.getattr("RestrictedPickle")?.call1((allowed,))?)
            }
            None => None,
        };
        let allowed_globals = restricted.as_ref().map(|r| r.getattr("allowed_globals")).transpose()?;
        let pickle = Arc::new(Pickle { restricted: restricted.map(Bound::unbind) });
        let base = BuiltinSerializer { inner: pickle.clone() };
        Ok(PyClassInitializer::from(base)
            .add_subclass(Self { pickle, allowed_globals: allowed_globals.map(Bound::unbind) }))
    }

    /// The `allowed_globals` entries, or None when loads are not restricted.
    #[getter]
    fn allowed_globals(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.allowed_globals.as_ref().map(|a| a.clone_ref(py))
    }

    /// The object stored at `path` by the IO manager, verified against its
    /// checksum and owner (`(asset_key, partition_keys)`), and unpickled as it is read.
    #[pyo3(signature = (store, path, *, owner = None))]
    fn load(&self, py: Python<'_>, store: PyRef<'_, Store>, path: &str, owner: PyOwner) -> PyResult<Py<PyAny>> {
        guard(py, "load_input", Some(path), || {
            pickle_stream::load_with(py, &store.inner, &parse_path(py, path)?, &self.pickle, to_owner(owner).as_ref())
        })
    }

    /// The objects stored at `paths`, fetched concurrently (at most
    /// `max_concurrency` at once) and verified, in the order given. With
    /// `missing` given, a missing object is `missing` instead of an error;
    /// `owners`, one per path, are checked as for `load`.
    #[pyo3(signature = (store, paths, *, missing = None, max_concurrency = io_manager::DEFAULT_MAX_CONCURRENCY, owners = None))]
    fn load_many(
        &self,
        py: Python<'_>,
        store: PyRef<'_, Store>,
        paths: Vec<String>,
        missing: Option<Py<PyAny>>,
        max_concurrency: usize,
        owners: Option<Vec<PyOwner>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        guard(py, "load_many", paths.first().map(String::as_str), || {
            let paths = owned_paths(py, &paths, owners)?;
            pickle_stream::load_many(py, &store.inner, &paths, missing, max_concurrency, &self.pickle)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        match &self.allowed_globals {
            Some(allowed) => Ok(format!("PickleSerializer(allowed_globals={})", allowed.bind(py).repr()?)),
            None => Ok("PickleSerializer()".to_owned()),
        }
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
