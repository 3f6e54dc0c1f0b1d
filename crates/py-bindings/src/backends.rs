//! Backend constructors for `dagster_remote_store.backends`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use store_backends::registry::{self, OptionValue, Options};

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

    /// The initializer of a backend class: the Rust backend and its `repr`.
    fn init<T: pyo3::PyClass<BaseType = Backend>>(
        backend: Arc<dyn store_core::Backend>,
        shown: String,
        class: T,
    ) -> PyClassInitializer<T> {
        PyClassInitializer::from(Backend { inner: backend, shown }).add_subclass(class)
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

/// Files under a local (or mounted) folder; writes are atomic (a new file put
/// at the target only when complete), optionally synced to disk.
#[pyclass(extends = Backend, frozen, module = "dagster_remote_store.backends")]
pub struct LocalBackend {
    root: PathBuf,
}

#[pymethods]
impl LocalBackend {
    #[new]
    #[pyo3(signature = (root, *, fsync = false))]
    fn new(py: Python<'_>, root: PathBuf, fsync: bool) -> PyResult<PyClassInitializer<Self>> {
        let options = vec![("root", Some(root.to_string_lossy().into_owned().into())), ("fsync", Some(fsync.into()))];
        let (backend, shown) = build(py, "local", options)?;
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
        Backend::init(Arc::new(store_backends::MemoryBackend::new()), "MemoryBackend()".into(), Self)
    }
}

/// A backend of `kind` from its keyword arguments (`None`: left out), checked
/// and built by the registry's option parsing, so constructors and config files
/// accept exactly the same options; returns the backend and its `repr`.
fn build(
    py: Python<'_>,
    kind: &str,
    arguments: Vec<(&str, Option<OptionValue>)>,
) -> PyResult<(Arc<dyn store_core::Backend>, String)> {
    let mut options = Options::new();
    for (name, value) in arguments {
        if let Some(value) = value {
            options.insert(name, value).map_err(|e| config_error(py, &e))?;
        }
    }
    let handle = block_on(py, registry::build_backend(kind, &options)).map_err(|e| config_error(py, &e))?;
    Ok((handle.backend, handle.description))
}

/// The retry and timeout keywords every HTTP backend takes, as options; those
/// left out (`None`) take `store_backends::ClientConfig`'s defaults.
fn client_options(
    allow_http: bool,
    max_retries: Option<usize>,
    [connect_timeout, read_timeout, timeout, retry_timeout]: [Option<f64>; 4],
) -> [(&'static str, Option<OptionValue>); 6] {
    [
        ("allow_http", Some(allow_http.into())),
        ("max_retries", max_retries.map(|retries| (retries as i64).into())),
        ("connect_timeout", connect_timeout.map(Into::into)),
        ("read_timeout", read_timeout.map(Into::into)),
        ("timeout", timeout.map(Into::into)),
        ("retry_timeout", retry_timeout.map(Into::into)),
    ]
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
    #[pyo3(signature = (
        bucket, *, endpoint_url = None, key = None, secret = None, token = None, region_name = None,
        virtual_hosted_style = false, allow_http = false, max_retries = None, connect_timeout = None,
        read_timeout = None, timeout = None, retry_timeout = None,
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
        max_retries: Option<usize>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        timeout: Option<f64>,
        retry_timeout: Option<f64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut options = vec![
            ("bucket", Some(bucket.into())),
            ("endpoint_url", endpoint_url.map(Into::into)),
            ("key", key.map(Into::into)),
            ("secret", secret.map(Into::into)),
            ("token", token.map(Into::into)),
            ("region_name", region_name.map(Into::into)),
            ("virtual_hosted_style", Some(virtual_hosted_style.into())),
        ];
        let timeouts = [connect_timeout, read_timeout, timeout, retry_timeout];
        options.extend(client_options(allow_http, max_retries, timeouts));
        let (backend, shown) = build(py, "s3", options)?;
        Ok(Backend::init(backend, shown, Self))
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
    #[pyo3(signature = (
        container, *, account_name = None, account_key = None, sas_token = None, connection_string = None,
        account_url = None, allow_http = false, max_retries = None, connect_timeout = None, read_timeout = None,
        timeout = None, retry_timeout = None,
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
        max_retries: Option<usize>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        timeout: Option<f64>,
        retry_timeout: Option<f64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut options = vec![
            ("container", Some(container.into())),
            ("account_name", account_name.map(Into::into)),
            ("account_key", account_key.map(Into::into)),
            ("sas_token", sas_token.map(Into::into)),
            ("connection_string", connection_string.map(Into::into)),
            ("account_url", account_url.map(Into::into)),
        ];
        let timeouts = [connect_timeout, read_timeout, timeout, retry_timeout];
        options.extend(client_options(allow_http, max_retries, timeouts));
        let (backend, shown) = build(py, "azure", options)?;
        Ok(Backend::init(backend, shown, Self))
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
    #[pyo3(signature = (
        bucket, *, service_account = None, base_url = None, anonymous = false, allow_http = false,
        max_retries = None, connect_timeout = None, read_timeout = None, timeout = None, retry_timeout = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        bucket: String,
        service_account: Option<String>,
        base_url: Option<String>,
        anonymous: bool,
        allow_http: bool,
        max_retries: Option<usize>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        timeout: Option<f64>,
        retry_timeout: Option<f64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut options = vec![
            ("bucket", Some(bucket.into())),
            ("service_account", service_account.map(Into::into)),
            ("base_url", base_url.map(Into::into)),
            ("anonymous", Some(anonymous.into())),
        ];
        let timeouts = [connect_timeout, read_timeout, timeout, retry_timeout];
        options.extend(client_options(allow_http, max_retries, timeouts));
        let (backend, shown) = build(py, "gcs", options)?;
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
        let options = vec![
            ("host", Some(host.into())),
            ("username", Some(username.into())),
            ("base_path", Some(base_path.into())),
            ("port", Some(i64::from(port).into())),
            ("password", password.map(Into::into)),
            ("private_key", private_key.map(Into::into)),
            ("passphrase", passphrase.map(Into::into)),
            ("known_hosts", known_hosts.map(|path| path.to_string_lossy().into_owned().into())),
            ("host_key_fingerprint", host_key_fingerprint.map(Into::into)),
            ("accept_any_host_key", Some(accept_any_host_key.into())),
            ("timeout", Some(timeout.into())),
            ("connect_timeout", Some(connect_timeout.into())),
            ("keepalive_interval", Some(keepalive_interval.into())),
            ("pool_size", Some((pool_size as i64).into())),
            ("max_retries", Some(i64::from(max_retries).into())),
        ];
        let (backend, shown) = build(py, "sftp", options)?;
        Ok(Backend::init(backend, shown, Self))
    }
}
