//! Backend constructors for `dagster_remote_store.backends`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use pyo3::exceptions::{PyTypeError, PyValueError};
use store_backends::ClientConfig;

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
    /// The initializer of a backend class: the Rust backend and its `repr`.
    fn init<T: pyo3::PyClass<BaseType = Backend>>(
        backend: impl store_core::Backend,
        shown: String,
        class: T,
    ) -> PyClassInitializer<T> {
        PyClassInitializer::from(Backend { inner: Arc::new(backend), shown }).add_subclass(class)
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

/// Files under a local (or mounted) folder; writes are atomic (temporary file
/// beside the target, then rename), optionally synced to disk.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct LocalBackend {
    root: PathBuf,
}

#[pymethods]
impl LocalBackend {
    #[new]
    #[pyo3(signature = (root, *, fsync = false))]
    fn new(py: Python<'_>, root: PathBuf, fsync: bool) -> PyResult<PyClassInitializer<Self>> {
        let backend = if fsync {
            store_backends::LocalBackend::with_fsync(&root)
        } else {
            store_backends::LocalBackend::new(&root)
        };
        let backend = backend.map_err(|e| config_error(py, &e))?;
        let shown = format!(
            "LocalBackend(root={:?}, fsync={})",
            root.display().to_string(),
            if fsync { "True" } else { "False" }
        );
        Ok(Backend::init(backend, shown, Self { root }))
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
    fn new() -> PyClassInitializer<Self> {
        Backend::init(store_backends::MemoryBackend::new(), "MemoryBackend()".into(), Self)
    }
}

/// Retry and timeout keywords every HTTP backend takes, checked.
fn client_config(
    allow_http: bool,
    max_retries: usize,
    connect_timeout: f64,
    timeout: f64,
    retry_timeout: f64,
) -> PyResult<ClientConfig> {
    let seconds = |name: &str, value: f64| {
        Duration::try_from_secs_f64(value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| PyValueError::new_err(format!("{name} must be a positive number of seconds, got {value}")))
    };
    Ok(ClientConfig {
        allow_http,
        max_retries,
        connect_timeout: seconds("connect_timeout", connect_timeout)?,
        request_timeout: seconds("timeout", timeout)?,
        retry_timeout: seconds("retry_timeout", retry_timeout)?,
        ..ClientConfig::default()
    })
}

/// A `repr` that shows the given settings and never a secret.
fn repr(class: &str, fields: &[(&str, Option<String>)]) -> String {
    let shown: Vec<String> =
        fields.iter().filter_map(|(name, value)| Some(format!("{name}={:?}", value.as_ref()?))).collect();
    format!("{class}({})", shown.join(", "))
}

/// Amazon S3 or an S3-compatible server (MinIO, Ceph, R2, ...).
///
/// Options left out come from the usual `AWS_*` environment variables and then
/// instance or container credentials. Plain-HTTP endpoints need `allow_http=True`.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct S3Backend;

#[pymethods]
impl S3Backend {
    #[new]
    #[pyo3(signature = (
        bucket, *, endpoint_url = None, key = None, secret = None, token = None, region_name = None,
        virtual_hosted_style = false, allow_http = false, max_retries = 5, connect_timeout = 5.0,
        timeout = 300.0, retry_timeout = 180.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        bucket: String,
        endpoint_url: Option<String>,
        key: Option<String>,
        secret: Option<String>,
        token: Option<String>,
        region_name: Option<String>,
        virtual_hosted_style: bool,
        allow_http: bool,
        max_retries: usize,
        connect_timeout: f64,
        timeout: f64,
        retry_timeout: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let shown = repr(
            "S3Backend",
            &[
                ("bucket", Some(bucket.clone())),
                ("endpoint_url", endpoint_url.clone()),
                ("region_name", region_name.clone()),
            ],
        );
        let config = store_backends::S3Config {
            bucket,
            endpoint: endpoint_url,
            region: region_name,
            access_key_id: key,
            secret_access_key: secret,
            session_token: token,
            virtual_hosted_style,
            client: client_config(allow_http, max_retries, connect_timeout, timeout, retry_timeout)?,
        };
        let backend = store_backends::S3Backend::new(config).map_err(|e| config_error(py, &e))?;
        Ok(Backend::init(backend, shown, Self))
    }
}

/// Azure Blob Storage: an account key, a SAS token or a connection string.
///
/// Options left out come from the `AZURE_STORAGE_*` environment variables and
/// then managed identity. `account_url` points at another endpoint (Azurite:
/// `http://127.0.0.1:10000/devstoreaccount1`, with `allow_http=True`).
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct AzureBackend;

#[pymethods]
impl AzureBackend {
    #[new]
    #[pyo3(signature = (
        container, *, account_name = None, account_key = None, sas_token = None, connection_string = None,
        account_url = None, allow_http = false, max_retries = 5, connect_timeout = 5.0, timeout = 300.0,
        retry_timeout = 180.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        container: String,
        account_name: Option<String>,
        account_key: Option<String>,
        sas_token: Option<String>,
        connection_string: Option<String>,
        account_url: Option<String>,
        allow_http: bool,
        max_retries: usize,
        connect_timeout: f64,
        timeout: f64,
        retry_timeout: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let shown = repr(
            "AzureBackend",
            &[
                ("container", Some(container.clone())),
                ("account_name", account_name.clone()),
                ("account_url", account_url.clone()),
            ],
        );
        let config = store_backends::AzureConfig {
            container,
            account_name,
            account_key,
            sas_token,
            connection_string,
            account_url,
            client: client_config(allow_http, max_retries, connect_timeout, timeout, retry_timeout)?,
        };
        let backend = store_backends::AzureBackend::new(config).map_err(|e| config_error(py, &e))?;
        Ok(Backend::init(backend, shown, Self))
    }
}

/// Google Cloud Storage.
///
/// `service_account` is the path of a service-account JSON key or the JSON
/// itself; left out, credentials come from `GOOGLE_APPLICATION_CREDENTIALS` or
/// the metadata server. `base_url` points at an emulator; `anonymous=True`
/// sends unsigned requests.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends", name = "GCSBackend")]
pub struct GcsBackend;

#[pymethods]
impl GcsBackend {
    #[new]
    #[pyo3(signature = (
        bucket, *, service_account = None, base_url = None, anonymous = false, allow_http = false,
        max_retries = 5, connect_timeout = 5.0, timeout = 300.0, retry_timeout = 180.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        bucket: String,
        service_account: Option<String>,
        base_url: Option<String>,
        anonymous: bool,
        allow_http: bool,
        max_retries: usize,
        connect_timeout: f64,
        timeout: f64,
        retry_timeout: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let shown = repr("GCSBackend", &[("bucket", Some(bucket.clone())), ("base_url", base_url.clone())]);
        let config = store_backends::GcsConfig {
            bucket,
            service_account,
            base_url,
            anonymous,
            client: client_config(allow_http, max_retries, connect_timeout, timeout, retry_timeout)?,
        };
        let backend = store_backends::GcsBackend::new(config).map_err(|e| config_error(py, &e))?;
        Ok(Backend::init(backend, shown, Self))
    }
}

/// An SFTP server (OpenSSH or any SFTPv3 server) through libssh2.
///
/// Log in with `password` or `private_key` (a key file's path, or the key text
/// itself). The server's host key is checked against `known_hosts` (default
/// `~/.ssh/known_hosts`) or `host_key_fingerprint` (`SHA256:...`, as
/// `ssh-keygen -lf` prints it); `accept_any_host_key=True` turns the check off
/// and must be asked for. Everything lives under the absolute `base_path`.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends", name = "SFTPBackend")]
pub struct SftpBackend;

#[pymethods]
impl SftpBackend {
    #[new]
    #[pyo3(signature = (
        host, *, username, base_path, port = 22, password = None, private_key = None, passphrase = None,
        known_hosts = None, host_key_fingerprint = None, accept_any_host_key = false, timeout = 30.0,
        connect_timeout = 10.0, keepalive_interval = 30.0, pool_size = 4, max_retries = 3,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        username: String,
        base_path: String,
        port: u16,
        password: Option<String>,
        private_key: Option<String>,
        passphrase: Option<String>,
        known_hosts: Option<PathBuf>,
        host_key_fingerprint: Option<String>,
        accept_any_host_key: bool,
        timeout: f64,
        connect_timeout: f64,
        keepalive_interval: f64,
        pool_size: usize,
        max_retries: u32,
    ) -> PyResult<PyClassInitializer<Self>> {
        use store_backends::{SftpAuth, SftpHostKey};
        let auth = match (password, private_key) {
            (Some(password), None) => SftpAuth::Password(password),
            (None, Some(key)) if key.contains("PRIVATE KEY-----") => SftpAuth::PrivateKeyPem { pem: key, passphrase },
            (None, Some(path)) => SftpAuth::PrivateKey { path: path.into(), passphrase },
            _ => return Err(PyTypeError::new_err("SFTPBackend takes exactly one of password= or private_key=")),
        };
        let host_key = match (known_hosts, host_key_fingerprint, accept_any_host_key) {
            (None, None, false) => SftpHostKey::default(),
            (Some(path), None, false) => SftpHostKey::KnownHosts(path),
            (None, Some(fingerprint), false) => SftpHostKey::Fingerprint(fingerprint),
            (None, None, true) => SftpHostKey::AcceptAny,
            _ => {
                return Err(PyTypeError::new_err(
                    "SFTPBackend takes at most one of known_hosts=, host_key_fingerprint= or accept_any_host_key=True",
                ));
            }
        };
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| PyValueError::new_err(format!("{name} must be a number of seconds >= 0, got {value}")))
        };
        let config = store_backends::SftpConfig {
            port,
            host_key,
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            io_timeout: seconds("timeout", timeout)?,
            keepalive_interval: seconds("keepalive_interval", keepalive_interval)?,
            pool_size,
            max_retries,
            ..store_backends::SftpConfig::new(host.clone(), username.clone(), auth, base_path.clone())
        };
        let shown = repr(
            "SFTPBackend",
            &[
                ("host", Some(host)),
                ("port", Some(port.to_string())),
                ("username", Some(username)),
                ("base_path", Some(base_path)),
            ],
        );
        let backend = block_on(py, store_backends::SftpBackend::connect(config)).map_err(|e| config_error(py, &e))?;
        Ok(Backend::init(backend, shown, Self))
    }
}
