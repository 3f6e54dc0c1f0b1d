//! Backend constructors for `dagster_remote_store.backends`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::PyClass;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};
use store_backends::registry::{self, BackendConfig, OptionSpec, OptionType, OptionValue, Options, Setting};

use crate::errors::config_error;
use crate::runtime::block_on;

/// Common base of every backend; a `Store` takes any of them.
#[pyclass(subclass, frozen, module = "dagster_remote_store.backends")]
pub struct Backend {
    pub(crate) inner: Arc<dyn store_core::Backend>,
    /// The `repr`: where the backend stores, never a secret.
    shown: String,
}

impl Backend {
    /// A backend object of no particular class (registry-built or foreign), shown as `shown`.
    pub(crate) fn base(inner: Arc<dyn store_core::Backend>, shown: String) -> Self {
        Self { inner, shown }
    }

    /// The initializer of the backend class `T` of type `kind`, built from the constructor's
    /// arguments (see [`options`]).
    fn init<T: pyo3::PyClass<BaseType = Backend> + pyo3::PyTypeInfo>(
        py: Python<'_>,
        kind: &str,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
        class: impl FnOnce(&Options) -> T,
    ) -> PyResult<PyClassInitializer<T>> {
        let options = options(py, T::NAME, kind, args, kwargs)?;
        let handle = block_on(py, registry::build_backend(kind, &options)).map_err(|e| config_error(py, &e))?;
        let base = Backend { inner: handle.backend, shown: repr(&handle.config) };
        Ok(PyClassInitializer::from(base).add_subclass(class(&options)))
    }
}

#[pymethods]
impl Backend {
    /// Short backend name: `"local"`, `"memory"`, ...
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn __repr__(&self) -> &str {
        &self.shown
    }
}

/// A backend's `repr`: its Python class and the settings that say where it
/// stores (see `BackendConfig::settings`: never a credential), e.g.
/// `S3Backend(bucket="data", region_name="eu-west-1")`.
pub(crate) fn repr(config: &BackendConfig) -> String {
    let class = match config.kind() {
        "local" => LocalBackend::NAME,
        "memory" => MemoryBackend::NAME,
        "s3" => S3Backend::NAME,
        "azure" => AzureBackend::NAME,
        "gcs" => GcsBackend::NAME,
        _ => SftpBackend::NAME,
    };
    let settings: Vec<String> = (config.settings().into_iter())
        .map(|(name, value)| match value {
            Setting::Text(text) => format!("{name}={text:?}"),
            Setting::Flag(flag) => format!("{name}={}", if flag { "True" } else { "False" }),
            Setting::Number(number) => format!("{name}={number}"),
        })
        .collect();
    format!("{class}({})", settings.join(", "))
}

/// The options of a backend of type `kind` from the arguments of its Python class `class`:
/// exactly the options the registry's spec gives that type (its aliases aside), the first one
/// also positional. Values of the wrong Python type, unknown keywords and missing required options
/// raise `TypeError`, as a Python signature would; `None` leaves an option out. The values are
/// then checked and the backend built by the registry, as for config files.
fn options(
    py: Python<'_>,
    class: &str,
    kind: &str,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Options> {
    let spec = registry::backend_options(kind).expect("every backend class has a type in the spec");
    let keywords: Vec<&OptionSpec> = spec.options().filter(|option| option.alias_of.is_none()).collect();
    let positional: Vec<&OptionSpec> = spec.positional().into_iter().collect();
    if args.len() > positional.len() {
        return Err(PyTypeError::new_err(format!(
            "{class}() takes {} positional argument{} but {} were given",
            positional.len(),
            if positional.len() == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let mut given: Vec<(&OptionSpec, Bound<'_, PyAny>)> = positional.into_iter().zip(args.iter()).collect();
    for (name, value) in kwargs.into_iter().flatten() {
        let name: String = name.extract()?;
        let Some(option) = keywords.iter().find(|option| option.name == name) else {
            let accepted: Vec<&str> = keywords.iter().map(|option| option.name).collect();
            return Err(PyTypeError::new_err(format!(
                "{class}() got an unexpected keyword argument {name:?}; accepted: {}",
                accepted.join(", ")
            )));
        };
        if given.iter().any(|(known, _)| known.name == name) {
            return Err(PyTypeError::new_err(format!("{class}() got multiple values for argument {name:?}")));
        }
        given.push((option, value));
    }
    let mut options = Options::new();
    for (option, value) in given {
        if let Some(value) = option_value(py, class, option, &value)? {
            options.insert(option.name, value).map_err(|e| config_error(py, &e))?;
        }
    }
    if let Some(missing) = keywords.iter().find(|option| option.required && options.get(option.name).is_none()) {
        return Err(PyTypeError::new_err(format!("{class}() missing required argument {:?}", missing.name)));
    }
    Ok(options)
}

/// The value of one constructor argument, if it is not `None`.
fn option_value(
    py: Python<'_>,
    class: &str,
    option: &OptionSpec,
    value: &Bound<'_, PyAny>,
) -> PyResult<Option<OptionValue>> {
    if value.is_none() {
        return Ok(None);
    }
    let is_number = value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>();
    let (converted, expected) = match option.kind {
        OptionType::Text => (value.cast::<PyString>().ok().map(|s| s.to_string().into()), "str"),
        OptionType::Path => {
            let path = py.import("os")?.call_method1("fspath", (value,)).ok();
            (path.and_then(|p| p.extract::<String>().ok()).map(Into::into), "str or os.PathLike")
        }
        OptionType::Flag => (value.cast::<PyBool>().ok().map(|b| b.is_true().into()), "bool"),
        OptionType::Count => (is_number.then(|| value.extract::<i64>()).transpose()?.map(Into::into), "int"),
        OptionType::Seconds if value.is_instance_of::<PyFloat>() => (Some(value.extract::<f64>()?.into()), "float"),
        OptionType::Seconds => (is_number.then(|| value.extract::<i64>()).transpose()?.map(Into::into), "float"),
    };
    converted.map(Some).ok_or_else(|| {
        let got = value.get_type().name().map(|name| name.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("{class}() argument {:?} must be {expected}, not {got}", option.name))
    })
}

/// Files under a local (or mounted) folder; writes are atomic (a new file put
/// at the target only when complete), optionally synced to disk.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct LocalBackend {
    root: PathBuf,
}

#[pymethods]
impl LocalBackend {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Backend::init(py, "local", args, kwargs, |options| {
            let root = match options.get("root") {
                Some(OptionValue::String(root)) => PathBuf::from(root),
                _ => PathBuf::new(),
            };
            Self { root }
        })
    }

    /// The root folder as given.
    #[getter]
    fn root(&self) -> PathBuf {
        self.root.clone()
    }
}

/// Objects in this process's memory, for tests and ephemeral runs: each
/// instance is its own space, invisible to other processes.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct MemoryBackend;

#[pymethods]
impl MemoryBackend {
    #[new]
    fn new(py: Python<'_>) -> PyResult<PyClassInitializer<Self>> {
        Backend::init(py, "memory", &PyTuple::empty(py), None, |_| Self)
    }
}

/// Amazon S3 or an S3-compatible server (MinIO, Ceph, R2, ...).
///
/// Options left out come from the usual `AWS_*` environment variables and then
/// instance or container credentials; given `key`, `secret` or `token`, no
/// credential comes from the environment. Plain-HTTP endpoints need
/// `allow_http=True`. Retry settings left out take the defaults every HTTP
/// backend shares: `max_retries` 5, and in seconds `connect_timeout` 5,
/// `read_timeout` 60, `timeout` 300 and `retry_timeout` 90.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct S3Backend;

#[pymethods]
impl S3Backend {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Backend::init(py, "s3", args, kwargs, |_| Self)
    }
}

/// Azure Blob Storage: an account key, a SAS token or a connection string.
///
/// Options left out come from the `AZURE_STORAGE_*` environment variables and
/// then managed identity; given `account_key` or `sas_token` (or either in
/// the connection string), no credential comes from the environment.
/// `account_url` points at another endpoint (Azurite:
/// `http://127.0.0.1:10000/devstoreaccount1`, with `allow_http=True`).
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct AzureBackend;

#[pymethods]
impl AzureBackend {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Backend::init(py, "azure", args, kwargs, |_| Self)
    }
}

/// Google Cloud Storage.
///
/// `service_account` is the path of a service-account JSON key or the JSON
/// itself, and wins over `GOOGLE_SERVICE_ACCOUNT`; left out, credentials come
/// from the environment or the metadata server. `base_url` points at an
/// emulator; `anonymous=True` sends unsigned requests.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends", name = "GCSBackend")]
pub struct GcsBackend;

#[pymethods]
impl GcsBackend {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Backend::init(py, "gcs", args, kwargs, |_| Self)
    }
}

/// An SFTP server (OpenSSH or any SFTPv3 server) through libssh2.
///
/// Log in with `password` or `private_key` (a key file's path, or the key text
/// itself). The server's host key is checked against `known_hosts` (default
/// `~/.ssh/known_hosts`) or `host_key_fingerprint` (`SHA256:...`, as
/// `ssh-keygen -lf` prints it); `accept_any_host_key=True` turns the check off
/// and must be asked for. Everything lives under the absolute `base_path`.
/// Left out, `port` is 22, and in seconds `timeout` 30, `connect_timeout` 10 and
/// `keepalive_interval` 30; `pool_size` is 4 and `max_retries` 3.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends", name = "SFTPBackend")]
pub struct SftpBackend;

#[pymethods]
impl SftpBackend {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Backend::init(py, "sftp", args, kwargs, |_| Self)
    }
}
