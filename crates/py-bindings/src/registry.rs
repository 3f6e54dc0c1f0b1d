//! `Registry`: named backends and stores from one config (a dict, or a TOML or
//! JSON file), parsed and validated in Rust by `store_backends::registry`, the
//! same code a Rust tool reading the file runs. Also `Secret` and
//! `redact_secrets`, which keep credentials out of what Python prints.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value};
use store_backends::registry::{self, BackendConfig, RegistryConfig};

use crate::errors::config_error;
use crate::runtime::block_on;
use crate::store::{Store, parse_path};

/// A credential: prints as `Secret('***')` (or `***`); `reveal()` gives the value.
#[pyclass(frozen, module = "dagster_remote_store")]
pub struct Secret {
    value: String,
}

#[pymethods]
impl Secret {
    #[new]
    fn new(value: String) -> Self {
        Self { value }
    }

    /// The value itself.
    fn reveal(&self) -> &str {
        &self.value
    }

    fn __repr__(&self) -> &'static str {
        "Secret('***')"
    }

    fn __str__(&self) -> &'static str {
        "***"
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Secret>().is_ok_and(|other| other.get().value == self.value)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.value.hash(&mut hasher);
        hasher.finish()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyAny>, (String,)) {
        (slf.get_type().into_any(), (slf.get().value.clone(),))
    }
}

/// A copy of `value` (dicts, lists and tuples at any depth) in which every
/// credential option (`secret`, `password`, `account_key`, ...) is `"***"`.
#[pyfunction]
pub fn redact_secrets<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    if let Ok(dict) = value.cast::<PyDict>() {
        let shown = PyDict::new(py);
        for (key, item) in dict.iter() {
            let secret = key.cast::<PyString>().is_ok_and(|k| k.to_cow().is_ok_and(|k| registry::is_secret_key(&k)));
            let item = if secret || item.cast::<Secret>().is_ok() {
                PyString::new(py, "***").into_any()
            } else {
                redact_secrets(&item)?
            };
            shown.set_item(key, item)?;
        }
        return Ok(shown.into_any());
    }
    if value.cast::<PyList>().is_ok() || value.cast::<PyTuple>().is_ok() {
        let items = value.try_iter()?.map(|item| redact_secrets(&item?)).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(py, items)?.into_any());
    }
    if value.cast::<Secret>().is_ok() {
        return Ok(PyString::new(py, "***").into_any());
    }
    Ok(value.clone())
}

/// A config value as JSON for the registry: plain values, dicts, lists,
/// paths and `Secret`s; `at` names the option in errors (never its value).
fn to_json(value: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(Value::from(value.extract::<i64>()?));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(serde_json::Number::from_f64(f.value()).map_or(Value::Null, Value::Number));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(secret) = value.cast::<Secret>() {
        return Ok(Value::String(secret.get().value.clone()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let key: String = key.extract().map_err(|_| PyTypeError::new_err(format!("{at}: keys must be strings")))?;
            let item = to_json(&item, &format!("{at}.{key}"))?;
            map.insert(key, item);
        }
        return Ok(Value::Object(map));
    }
    if value.cast::<PyList>().is_ok() || value.cast::<PyTuple>().is_ok() {
        let items = value.try_iter()?.enumerate().map(|(i, item)| to_json(&item?, &format!("{at}[{i}]")));
        return items.collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    if let Ok(path) = value.extract::<PathBuf>() {
        return Ok(Value::String(path.to_string_lossy().into_owned()));
    }
    let type_name = value.get_type().name()?.to_string();
    Err(PyTypeError::new_err(format!(
        "{at}: a config value must be a str, number, bool, dict or list, not {type_name}"
    )))
}

/// Named backends and stores; each backend is built once, when a store first
/// needs it, and shared by every store that names it.
#[pyclass(frozen, module = "dagster_remote_store")]
pub struct Registry {
    inner: Arc<registry::Registry>,
    /// What errors are prefixed with (`"RemoteStoreIOManager"`), if anything.
    context: Option<String>,
}

impl Registry {
    fn error(&self, py: Python<'_>, err: store_core::Error) -> PyErr {
        in_context(py, self.context.as_deref(), err)
    }
}

/// `err` as a Python exception, its message led by `context` when there is one.
fn in_context(py: Python<'_>, context: Option<&str>, err: store_core::Error) -> PyErr {
    match context {
        Some(context) => config_error(py, &store_core::Error::new(err.kind(), format!("{context}: {}", err.message()))),
        None => config_error(py, &err),
    }
}

#[pymethods]
impl Registry {
    /// From a dict: `{"backends": {name: {"type", "options", "retry"}}, "stores": {name: {"backend", "root_path"}}}`.
    #[new]
    #[pyo3(signature = (config, *, context = None))]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>, context: Option<String>) -> PyResult<Self> {
        let value = to_json(config, "config")?;
        let config = RegistryConfig::from_value(value).map_err(|e| in_context(py, context.as_deref(), e))?;
        Ok(Self { inner: Arc::new(registry::Registry::new(config)), context })
    }

    /// From a `.toml` or `.json` file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let config = RegistryConfig::from_file(&path).map_err(|e| config_error(py, &e))?;
        Ok(Self { inner: Arc::new(registry::Registry::new(config)), context: None })
    }

    /// The names of the configured stores.
    #[getter]
    fn store_names(&self) -> Vec<String> {
        self.inner.store_names().map(str::to_owned).collect()
    }

    /// The backend type of the store `name` (`"s3"`, `"sftp"`, ...), from the config
    /// alone: nothing is built or connected.
    fn backend_type(&self, py: Python<'_>, name: &str) -> PyResult<&'static str> {
        self.inner.backend_config(name).map(BackendConfig::kind).map_err(|e| self.error(py, e))
    }

    /// The store `name`, optionally scoped further to `root_path` below its own root.
    #[pyo3(signature = (name, *, root_path = ""))]
    fn get_store(&self, py: Python<'_>, name: &str, root_path: &str) -> PyResult<Store> {
        let store = block_on(py, self.inner.store(name)).map_err(|e| self.error(py, e))?;
        let shown = crate::backends::repr(self.inner.backend_config(name).map_err(|e| self.error(py, e))?);
        let root = root_path.trim_end_matches('/');
        let store = if root.is_empty() { store } else { store.child(&parse_path(py, root)?) };
        Store::from_store(py, store, shown)
    }

    /// Closes every backend built so far.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.inner.close()).map_err(|e| self.error(py, e))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Registry(stores={:?})", self.store_names())
    }
}
