//! The serializer registry as Python sees it: `"pickle"` (runs Python's pickle, see
//! `pickle.rs`), `"json"` (serde_json in Rust), `"parquet"` (tables, see `parquet.rs`),
//! and any object with `extension`, `serialize(obj) -> bytes` and `deserialize(data)`;
//! and the `PickleSerializer` and `JsonSerializer` classes.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use io_manager::integrity;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyString};
use serializers::{Json, Registry, SerializeError, Serializer};

use crate::builtin::BuiltinSerializer;
use crate::errors::{StoreResultExt, guard};
use crate::owner::{PyOwner, owned_paths, to_owner};
use crate::parquet::Parquet;
use crate::pickle::Pickle;
use crate::pickle_stream;
use crate::runtime::block_on;
use crate::store::{Store, parse_path};
use crate::value::{PySerializer, PyValue};

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
        registry.register(Arc::new(crate::files::Raw));
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
        return Ok(builtin.get().inner().clone());
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
        self.pickle.is_restricted()
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
        let pickle = Arc::new(restricted.map_or_else(Pickle::default, |r| Pickle::restricted(r.unbind())));
        let base = BuiltinSerializer::new(pickle.clone());
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
            let (path, owner) = (parse_path(py, path)?, to_owner(owner));
            let object =
                block_on(py, integrity::read_stream(&store.inner, &path, owner.as_ref())).into_py_result(py)?;
            pickle_stream::load(py, object, &path, &self.pickle)
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
        PyClassInitializer::from(BuiltinSerializer::new(Arc::new(Json))).add_subclass(Self)
    }
}
