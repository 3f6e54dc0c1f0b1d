//! Stores by name, from one config in TOML, JSON or an in-memory
//! [`serde_json::Value`]: named backends, each built once, and named stores,
//! each a backend plus a root path.
//!
//! ```toml
//! [backends.lake]
//! type = "s3"                       # local | memory | s3 | azure | gcs | sftp
//! options = { bucket = "data", endpoint_url = "${S3_URL:-http://127.0.0.1:9000}", secret = "${S3_SECRET}", allow_http = true }
//! retry = { max_retries = 3, timeout = 60.0, read_timeout = 30.0, retry_timeout = 120.0 }   # optional
//!
//! [stores.raw]
//! backend = "lake"
//! root_path = "raw"                 # optional, default ""
//! ```
//!
//! - **Options** are those of [`BackendConfig::parse`], checked when the config
//!   is loaded: an unknown option, a wrong type or a missing required option is
//!   an error naming the backend entry and the option.
//! - **`retry`** holds `max_retries`, `timeout`, `connect_timeout`,
//!   `read_timeout` and `retry_timeout` for the HTTP backends (the first three
//!   for SFTP); each may be given there or in `options`, not in both.
//! - **Environment variables** are read when the config is loaded, in every
//!   string at any depth: `${VAR}` (an unset variable is an error),
//!   `${VAR:-default}` (the default also replaces an empty value), and `$$` for
//!   a literal `$`. A table whose only key is `env`, such as
//!   `{ env = "S3_SECRET" }`, is replaced by that variable's value.
//! - **Credentials**: every option whose name [`is_secret_key`] is held as a
//!   [`store_core::Secret`], at any depth; `Debug` output and error messages
//!   never contain one.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
//! use store_backends::registry::{Registry, RegistryConfig};
//! use store_core::WriteMode;
//!
//! let config = RegistryConfig::from_toml(
//!     r#"
//!     [backends.scratch]
//!     type = "memory"
//!
//!     [stores.raw]
//!     backend = "scratch"
//!     root_path = "raw"
//!
//!     [stores.all]
//!     backend = "scratch"
//!     "#,
//! )?;
//! let registry = Registry::new(config);
//! let raw = registry.store("raw").await?;
//! raw.write(&"orders.json".parse()?, "[]".into(), WriteMode::Overwrite).await?;
//!
//! let all = registry.store("all").await?;
//! assert_eq!(all.read(&"raw/orders.json".parse()?).await?, "[]");
//! assert_eq!(registry.backend_config("raw")?.kind(), "memory");
//! registry.close().await?;
//! # Ok(()) }
//! ```

mod interpolate;
mod options;
mod spec;
#[cfg(all(test, feature = "local", feature = "memory"))]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use store_core::{Backend, Error, ErrorKind, Result, Store, StorePath};
use tokio::sync::OnceCell;

pub use options::{BackendConfig, BackendHandle, OptionValue, Options, Setting, build_backend, is_secret_key};
pub use spec::{BackendOptions, OptionSpec, OptionType, all_backend_options, backend_options};

use interpolate::{Env, interpolate};
use options::accepted_options;

/// A table of a parsed config.
type Table = Map<String, Value>;

/// The keys of a backend entry, of a store entry and of a `retry` table.
const BACKEND_KEYS: [&str; 3] = ["type", "options", "retry"];
const STORE_KEYS: [&str; 2] = ["backend", "root_path"];
const RETRY_KEYS: [&str; 5] = ["connect_timeout", "max_retries", "read_timeout", "retry_timeout", "timeout"];

/// A loaded and checked registry config: named backends and named stores.
///
/// Every backend's options are checked when the config is loaded, and every
/// store names a defined backend, so only building a backend can fail later.
/// Errors are of kind [`ErrorKind::Other`]. `Debug` shows no credential.
///
/// ```
/// use store_backends::registry::RegistryConfig;
///
/// let config = RegistryConfig::from_json(
///     r#"{ "backends": { "files": { "type": "local", "options": { "root": "/data" } } },
///          "stores": { "raw": { "backend": "files", "root_path": "raw" } } }"#,
/// )?;
/// let (name, store) = config.stores().next().unwrap();
/// assert_eq!((name, store.backend(), store.root_path().map(|p| p.as_str())), ("raw", "files", Some("raw")));
///
/// let err = RegistryConfig::from_json(r#"{ "stores": { "raw": { "backend": "lake" } } }"#).unwrap_err();
/// assert_eq!(err.message(), r#"store "raw": backend "lake" is not defined; no backends are defined"#);
/// # Ok::<(), store_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    backends: BTreeMap<String, BackendConfig>,
    stores: BTreeMap<String, StoreConfig>,
}

/// One named store of a [`RegistryConfig`]: a backend and a root path within it.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    backend: String,
    root_path: Option<StorePath>,
}

impl StoreConfig {
    /// The name of the store's backend.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The store's root within the backend; `None` for the whole backend.
    pub fn root_path(&self) -> Option<&StorePath> {
        self.root_path.as_ref()
    }
}

impl RegistryConfig {
    /// A config from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let value: Value = toml::from_str(text).map_err(|err| {
            // Only the message and position: the error's own text quotes the
            // offending line, which may hold a credential.
            let start = err.span().map_or(0, |span| span.start);
            let before = text.get(..start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            config_error(format!("invalid TOML at line {line}, column {column}: {}", err.message().trim_end()))
        })?;
        Self::from_value(value)
    }

    /// A config from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|err| config_error(format!("invalid JSON: {err}")))?;
        Self::from_value(value)
    }

    /// A config from a parsed value, such as a dict handed over from Python.
    pub fn from_value(value: Value) -> Result<Self> {
        Self::load(value, &|name| std::env::var_os(name)).map_err(config_error)
    }

    /// A config from a `.toml` or `.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let parse = match extension.as_deref() {
            Some("toml") => Self::from_toml,
            Some("json") => Self::from_json,
            _ => return Err(config_error(format!("registry config {shown}: expected a .toml or .json file"))),
        };
        let text = std::fs::read_to_string(path)
            .map_err(|err| config_error(format!("cannot read registry config {shown}: {err}")))?;
        parse(&text).map_err(|err| config_error(format!("registry config {shown}: {}", err.message())))
    }

    /// The backends, by name.
    pub fn backends(&self) -> impl Iterator<Item = (&str, &BackendConfig)> {
        self.backends.iter().map(|(name, backend)| (name.as_str(), backend))
    }

    /// The stores, by name.
    pub fn stores(&self) -> impl Iterator<Item = (&str, &StoreConfig)> {
        self.stores.iter().map(|(name, store)| (name.as_str(), store))
    }

    fn load(value: Value, env: Env<'_>) -> Result<Self, String> {
        let Value::Object(mut top) = value else {
            return Err("a registry config must be a table with \"backends\" and \"stores\"".to_owned());
        };
        if let Some(key) = top.keys().find(|key| !["backends", "stores"].contains(&key.as_str())) {
            return Err(format!("unknown top-level key {key:?}; accepted: backends, stores"));
        }
        let mut section = |name: &str| top.remove(name).map(|value| interpolate(value, name, env)).transpose();
        let (backends, stores) = (section("backends")?, section("stores")?);
        let backends = entries(backends, "backends", "backend")?
            .into_iter()
            .map(|(name, entry)| {
                let backend = load_backend(entry).map_err(|err| format!("backend {name:?}: {err}"))?;
                Ok((name, backend))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        let stores = entries(stores, "stores", "store")?
            .into_iter()
            .map(|(name, entry)| {
                let store = load_store(entry, &backends).map_err(|err| format!("store {name:?}: {err}"))?;
                Ok((name, store))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { backends, stores })
    }
}

/// A whole registry config from any serde format, checked and with its
/// environment variables read as [`RegistryConfig::from_value`] does.
impl<'de> serde::Deserialize<'de> for RegistryConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::load(value, &|name| std::env::var_os(name)).map_err(serde::de::Error::custom)
    }
}

/// One backend entry (`type`, `options`, `retry`, as under `[backends.NAME]`)
/// from any serde format, so that a tool's own config can hold one: checked,
/// with environment variables read and credentials held as [`store_core::Secret`]s.
///
/// ```
/// use store_backends::registry::BackendConfig;
///
/// #[derive(Debug, serde::Deserialize)]
/// struct ToolConfig {
///     output: BackendConfig,
/// }
///
/// let config: ToolConfig = toml::from_str(
///     r#"
///     [output]
///     type = "s3"
///     options = { bucket = "data", secret = "hunter2", region_name = "eu-west-1" }
///     "#,
/// )?;
/// assert_eq!(config.output.kind(), "s3");
/// assert!(!format!("{:?}", config.output).contains("hunter2"));
///
/// let typo = toml::from_str::<ToolConfig>("[output]\ntype = \"s3\"\noptions = { bucket = \"data\", regoin = \"x\" }");
/// assert!(typo.unwrap_err().to_string().contains(r#"unknown option "regoin""#));
/// # Ok::<(), toml::de::Error>(())
/// ```
impl<'de> serde::Deserialize<'de> for BackendConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = interpolate(Value::deserialize(deserializer)?, "backend", &|name| std::env::var_os(name));
        match value.map_err(serde::de::Error::custom)? {
            Value::Object(entry) => load_backend(entry).map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom("a backend must be a table with \"type\" and \"options\"")),
        }
    }
}

/// The named entries of the `backends` or `stores` section, each a table itself.
fn entries(value: Option<Value>, section: &str, entry: &str) -> Result<Vec<(String, Table)>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| match value {
                Value::Object(table) => Ok((name, table)),
                _ => Err(format!("{entry} {name:?} must be a table")),
            })
            .collect(),
        Some(_) => Err(format!("{section:?} must be a table of named {section}")),
    }
}

fn check_keys(entry: &Table, accepted: &[&str]) -> Result<(), String> {
    match entry.keys().find(|key| !accepted.contains(&key.as_str())) {
        Some(key) => Err(format!("unknown key {key:?}; accepted: {}", accepted.join(", "))),
        None => Ok(()),
    }
}

fn load_backend(mut entry: Table) -> Result<BackendConfig, String> {
    check_keys(&entry, &BACKEND_KEYS)?;
    let kind = match entry.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(format!("type must be a string; accepted: {}", spec::type_names())),
        None => return Err(format!("missing \"type\"; accepted: {}", spec::type_names())),
    };
    let (kind, accepted) = accepted_options(&kind)?;
    let mut options = match entry.remove("options") {
        Some(value) => Options::from_json_at(value, "options")?,
        None => Options::new(),
    };
    if let Some(retry) = entry.remove("retry") {
        let retry = Options::from_json_at(retry, "retry")?;
        for (key, value) in retry.iter() {
            if !RETRY_KEYS.contains(&key) {
                return Err(format!("unknown retry setting {key:?}; accepted: {}", RETRY_KEYS.join(", ")));
            }
            if !accepted.contains(&key) {
                let usable: Vec<&str> = RETRY_KEYS.into_iter().filter(|key| accepted.contains(key)).collect();
                return Err(if usable.is_empty() {
                    format!("type {kind} takes no retry settings")
                } else {
                    format!("type {kind} takes no retry setting {key:?}; accepted: {}", usable.join(", "))
                });
            }
            if options.contains(key) {
                return Err(format!("{key} is given both in options and in retry; give it once"));
            }
            options.insert_at(key.to_owned(), value.clone(), &child("options", key))?;
        }
    }
    BackendConfig::parse_options(kind, &options)
}

fn load_store(mut entry: Table, backends: &BTreeMap<String, BackendConfig>) -> Result<StoreConfig, String> {
    check_keys(&entry, &STORE_KEYS)?;
    let defined = || {
        if backends.is_empty() {
            "no backends are defined".to_owned()
        } else {
            format!("defined backends: {}", backends.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
        }
    };
    let backend = match entry.remove("backend") {
        Some(Value::String(backend)) if backends.contains_key(&backend) => backend,
        Some(Value::String(backend)) => return Err(format!("backend {backend:?} is not defined; {}", defined())),
        Some(_) => return Err(format!("backend must be a string naming a backend; {}", defined())),
        None => return Err(format!("missing \"backend\"; {}", defined())),
    };
    let root_path = match entry.remove("root_path") {
        None => None,
        Some(Value::String(root)) => match root.trim_matches('/') {
            "" => None,
            root => {
                Some(StorePath::parse(root).map_err(|err| format!("invalid root_path {root:?}: {}", err.message()))?)
            }
        },
        Some(_) => return Err("root_path must be a string".to_owned()),
    };
    Ok(StoreConfig { backend, root_path })
}

/// Where `key` sits below `path`, for messages: `backends.lake.options`,
/// with keys that are not plain names quoted.
fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if plain { key.to_owned() } else { format!("{key:?}") };
    if path.is_empty() { key } else { format!("{path}.{key}") }
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Other, message)
}

/// The stores of a [`RegistryConfig`], by name.
///
/// Each backend is built on first use and then shared by every store that
/// names it; concurrent first uses build it once.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_backends::registry::{Registry, RegistryConfig};
///
/// let dir = tempfile::tempdir().unwrap();
/// let config = RegistryConfig::from_value(serde_json::json!({
///     "backends": { "files": { "type": "local", "options": { "root": dir.path() } } },
///     "stores": { "raw": { "backend": "files", "root_path": "raw" } },
/// }))?;
/// let registry = Registry::new(config);
/// assert_eq!(registry.store_names().collect::<Vec<_>>(), ["raw"]);
/// let store = registry.store("raw").await?;
/// assert_eq!(store.root().map(|p| p.as_str()), Some("raw"));
///
/// let err = registry.store("clean").await.unwrap_err();
/// assert_eq!(err.message(), r#"unknown store "clean"; defined stores: raw"#);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Registry {
    backends: BTreeMap<String, Slot>,
    stores: BTreeMap<String, StoreConfig>,
}

/// A backend's config and, once built, the backend.
#[derive(Debug)]
struct Slot {
    config: BackendConfig,
    built: OnceCell<Arc<dyn Backend>>,
}

impl Registry {
    /// A registry of `config`'s stores; no backend is built yet.
    pub fn new(config: RegistryConfig) -> Self {
        let backends =
            config.backends.into_iter().map(|(name, config)| (name, Slot { config, built: OnceCell::new() })).collect();
        Self { backends, stores: config.stores }
    }

    /// The store names, sorted.
    pub fn store_names(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }

    /// The config of the store's backend.
    pub fn backend_config(&self, store: &str) -> Result<&BackendConfig> {
        let (_, slot) = self.lookup(store)?;
        Ok(&slot.config)
    }

    /// The store named `name`: its backend, built on first use, scoped to its root path.
    pub async fn store(&self, name: &str) -> Result<Store> {
        let (store, slot) = self.lookup(name)?;
        let backend = slot
            .built
            .get_or_try_init(|| async { slot.config.build().await.map(|handle| handle.backend) })
            .await
            .map_err(|err| {
                let message = format!("store {name:?}: cannot build backend {:?}: {}", store.backend, err.message());
                Error::new(err.kind(), message).with_source(err)
            })?;
        let backend = Store::from_arc(backend.clone());
        Ok(match store.root_path() {
            Some(root) => backend.child(root),
            None => backend,
        })
    }

    /// Closes every backend built so far. Backends reconnect if used again;
    /// the first error is returned after all were closed.
    pub async fn close(&self) -> Result<()> {
        let mut first_error = None;
        for backend in self.backends.values().filter_map(|slot| slot.built.get()) {
            if let Err(err) = backend.close().await {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn lookup(&self, name: &str) -> Result<(&StoreConfig, &Slot)> {
        let store = self.stores.get(name).ok_or_else(|| {
            config_error(if self.stores.is_empty() {
                format!("unknown store {name:?}; no stores are defined")
            } else {
                format!("unknown store {name:?}; defined stores: {}", self.store_names().collect::<Vec<_>>().join(", "))
            })
        })?;
        // Every store names a defined backend: `RegistryConfig` checks it on loading.
        Ok((store, &self.backends[&store.backend]))
    }
}
