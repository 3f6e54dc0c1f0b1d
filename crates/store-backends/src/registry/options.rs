//! Backend options: a map of values with every credential held as a
//! [`Secret`], and the one mapping from those options to each backend's config.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use store_core::{Backend, Result, Secret};

use super::spec::{backend_options, type_names};
use super::{child, config_error};

/// The backend type named `kind` as a static name, with the options it accepts as messages list them.
pub(super) fn accepted_options(kind: &str) -> Result<(&'static str, Vec<&'static str>), String> {
    (backend_options(kind).map(|backend| (backend.kind, backend.accepted())))
        .ok_or_else(|| format!("unknown type {kind:?}; accepted: {}", type_names()))
}

/// Whether an option named `key` holds a credential, and so is held as a
/// [`Secret`]: `key`, `secret`, `token`, `password`, `passphrase`,
/// `account_key`, `sas_token`, `connection_string`, `client_secret`,
/// `private_key`, `pkey`, `service_account`, `credentials`, and any name ending in
/// `_secret`, `_password`, `_token` or `_key` except the SFTP host key
/// settings `accept_any_host_key`, `known_hosts` and `host_key_fingerprint`.
/// Names are compared in snake case: `API-Token`, `api token` and `apiToken`
/// all count as `api_token`.
///
/// ```
/// use store_backends::registry::is_secret_key;
///
/// assert!(is_secret_key("secret") && is_secret_key("AWS_SESSION_TOKEN") && is_secret_key("sshPrivateKey"));
/// assert!(!is_secret_key("accept_any_host_key") && !is_secret_key("host_key_fingerprint") && !is_secret_key("bucket"));
/// ```
pub fn is_secret_key(key: &str) -> bool {
    const NAMES: [&str; 13] = [
        "key",
        "pkey",
        "secret",
        "token",
        "password",
        "passphrase",
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",
        "private_key",
        "service_account",
        "credentials",
    ];
    const SUFFIXES: [&str; 4] = ["_secret", "_password", "_token", "_key"];
    const SETTINGS: [&str; 3] = ["accept_any_host_key", "known_hosts", "host_key_fingerprint"];
    let mut name = String::with_capacity(key.len() + 4);
    let mut previous_lower = false;
    for c in key.chars() {
        if c.is_uppercase() && previous_lower {
            name.push('_');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        if c.is_alphanumeric() {
            name.extend(c.to_lowercase());
        } else {
            name.push('_');
        }
    }
    !SETTINGS.contains(&name.as_str())
        && (NAMES.contains(&name.as_str()) || SUFFIXES.iter().any(|suffix| name.ends_with(suffix)))
}

/// One option value, as a config file or a keyword argument gives it.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// No value: the same as leaving the option out (JSON's `null`, Python's `None`).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text that is not a credential.
    String(String),
    /// A credential (see [`is_secret_key`]).
    Secret(Secret),
    /// A list of values.
    List(Vec<OptionValue>),
    /// A table of named values.
    Map(Options),
}

impl OptionValue {
    /// What the value is, for messages: `"a string"`, `"an integer"`, ...
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "nothing",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a number",
            Self::String(_) | Self::Secret(_) => "a string",
            Self::List(_) => "a list",
            Self::Map(_) => "a table",
        }
    }

    /// The value as messages show it: plain scalars as written, credentials
    /// and containers (which may hold credentials) only by their kind.
    #[cfg(any(feature = "local", feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
    fn shown(&self) -> String {
        match self {
            Self::Bool(value) => value.to_string(),
            Self::Int(value) => value.to_string(),
            Self::Float(value) => value.to_string(),
            Self::String(value) => format!("{value:?}"),
            other => other.kind().to_owned(),
        }
    }

    fn from_json(value: Value, path: &str) -> Result<Self, String> {
        Ok(match value {
            Value::Null => Self::Null,
            Value::Bool(value) => Self::Bool(value),
            Value::Number(number) => match number.as_i64() {
                Some(value) => Self::Int(value),
                None => Self::Float(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(value) => Self::String(value),
            Value::Array(items) => Self::List(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| Self::from_json(item, &format!("{path}[{index}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut options = Options::new();
                for (key, item) in map {
                    let item_path = child(path, &key);
                    let item = Self::from_json(item, &item_path)?;
                    options.insert_at(key, item, &item_path)?;
                }
                Self::Map(options)
            }
        })
    }

    /// The value of a credential option: every string in it becomes a [`Secret`].
    fn into_secret(self, path: &str) -> Result<Self, String> {
        match self {
            Self::String(value) => Ok(Self::Secret(Secret::new(value))),
            Self::Null | Self::Secret(_) => Ok(self),
            Self::Bool(_) | Self::Int(_) | Self::Float(_) => {
                Err(format!("{path} is a credential and must be a string, got {}", self.kind()))
            }
            Self::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| item.into_secret(&format!("{path}[{index}]")))
                .collect::<Result<_, _>>()
                .map(Self::List),
            Self::Map(options) => options
                .0
                .into_iter()
                .map(|(key, item)| {
                    let item = item.into_secret(&child(path, &key))?;
                    Ok((key, item))
                })
                .collect::<Result<_, String>>()
                .map(|map| Self::Map(Options(map))),
        }
    }
}

impl From<bool> for OptionValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for OptionValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for OptionValue {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<f64> for OptionValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<String> for OptionValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<&str> for OptionValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<Secret> for OptionValue {
    fn from(value: Secret) -> Self {
        Self::Secret(value)
    }
}

impl From<Vec<OptionValue>> for OptionValue {
    fn from(value: Vec<OptionValue>) -> Self {
        Self::List(value)
    }
}

impl From<Options> for OptionValue {
    fn from(value: Options) -> Self {
        Self::Map(value)
    }
}

/// Named option values: a backend's options, or a table inside one.
///
/// Every value under a credential name ([`is_secret_key`]), at any depth, is
/// held as a [`Secret`]; a credential given as a number or boolean is refused.
/// `Debug` shows credentials as `Secret(***)`.
///
/// ```
/// use store_backends::registry::{OptionValue, Options};
///
/// let mut options = Options::new();
/// options.insert("bucket", "data")?;
/// options.insert("secret", "hunter2")?;
/// assert!(matches!(options.get("secret"), Some(OptionValue::Secret(_))));
/// assert!(!format!("{options:?}").contains("hunter2"));
///
/// let options = Options::from_json(serde_json::json!({ "bucket": "data", "nested": { "api_token": "t0k3n" } }))?;
/// assert_eq!(options.get("bucket"), Some(&OptionValue::from("data")));
/// assert!(!format!("{options:?}").contains("t0k3n"));
/// # Ok::<(), store_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Options(BTreeMap<String, OptionValue>);

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options from a JSON object, as keyword arguments or a parsed config give them.
    pub fn from_json(value: Value) -> Result<Self> {
        Self::from_json_at(value, "options").map_err(config_error)
    }

    /// Sets `key` to `value`, replacing an earlier value; fails if `key` names
    /// a credential and `value` is a number or a boolean.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<OptionValue>) -> Result<()> {
        let key = key.into();
        let path = child("", &key);
        self.insert_at(key, value.into(), &path).map_err(config_error)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&OptionValue> {
        self.0.get(key)
    }

    /// The options in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OptionValue)> {
        self.0.iter().map(|(key, value)| (key.as_str(), value))
    }

    /// Options from the JSON object at `path` of a config.
    pub(super) fn from_json_at(value: Value, path: &str) -> Result<Self, String> {
        match OptionValue::from_json(value, path)? {
            OptionValue::Map(options) => Ok(options),
            other => Err(format!("{path} must be a table, got {}", other.kind())),
        }
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub(super) fn insert_at(&mut self, key: String, value: OptionValue, path: &str) -> Result<(), String> {
        let value = if is_secret_key(&key) { value.into_secret(path)? } else { value };
        self.0.insert(key, value);
        Ok(())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(&self.0).finish()
    }
}

/// Typed access to options, after a check that all of them are known.
#[cfg(any(feature = "local", feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
struct Reader<'a> {
    options: &'a Options,
}

#[cfg(any(feature = "local", feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
impl<'a> Reader<'a> {
    fn get(&self, name: &str) -> Option<&'a OptionValue> {
        self.options.get(name).filter(|value| **value != OptionValue::Null)
    }

    fn text(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::String(value)) => Ok(Some(value)),
            Some(OptionValue::Secret(value)) => Ok(Some(value.expose())),
            Some(other) => Err(wrong(name, "a string", other)),
        }
    }

    fn owned(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.text(name)?.map(str::to_owned))
    }

    /// A credential, kept a [`Secret`].
    #[cfg(any(feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
    fn secret(&self, name: &str) -> Result<Option<Secret>, String> {
        Ok(self.text(name)?.map(Secret::from))
    }

    /// The option under its own name or under `alias` (remote-store's name), not both.
    #[cfg(feature = "sftp")]
    fn either(&self, name: &str, alias: &str) -> Result<Option<String>, String> {
        match (self.owned(name)?, self.owned(alias)?) {
            (Some(_), Some(_)) => Err(format!("give {name}= or {alias}= (its remote-store name), not both")),
            (value, None) | (None, value) => Ok(value),
        }
    }

    fn required(&self, name: &str) -> Result<String, String> {
        self.owned(name)?.ok_or_else(|| format!("missing required option {name:?}"))
    }

    /// A bool; environment variables arrive as text, so `"true"`/`"false"` (and
    /// `1`/`0`, `yes`/`no`) in any case count too.
    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(OptionValue::Bool(value)) => Ok(*value),
            Some(value @ OptionValue::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(wrong(name, "true or false", value)),
            },
            Some(other) => Err(wrong(name, "true or false", other)),
        }
    }
}

#[cfg(any(feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
impl Reader<'_> {
    fn integer<T: TryFrom<i64>>(&self, name: &str, expected: &str) -> Result<Option<T>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(value @ OptionValue::Int(number)) => {
                T::try_from(*number).map(Some).map_err(|_| wrong(name, expected, value))
            }
            // Text from an environment variable: `"22"`.
            Some(value @ OptionValue::String(text)) => text
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|number| T::try_from(number).ok())
                .map(Some)
                .ok_or_else(|| wrong(name, expected, value)),
            Some(other) => Err(wrong(name, expected, other)),
        }
    }

    /// A duration in seconds, given as an integer or a number; zero only where `zero_allowed`.
    fn seconds(&self, name: &str, zero_allowed: bool) -> Result<Option<std::time::Duration>, String> {
        let expected = if zero_allowed { "a number of seconds >= 0" } else { "a positive number of seconds" };
        let seconds = match self.get(name) {
            None => return Ok(None),
            Some(OptionValue::Int(value)) => *value as f64,
            Some(OptionValue::Float(value)) => *value,
            Some(value @ OptionValue::String(text)) => {
                text.trim().parse::<f64>().map_err(|_| wrong(name, expected, value))?
            }
            Some(other) => return Err(wrong(name, expected, other)),
        };
        std::time::Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|duration| zero_allowed || !duration.is_zero())
            .map(Some)
            .ok_or_else(|| format!("{name} must be {expected}, got {seconds}"))
    }
}

#[cfg(any(feature = "local", feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
fn wrong(name: &str, expected: &str, value: &OptionValue) -> String {
    format!("{name} must be {expected}, got {}", value.shown())
}

/// A URL option as [`BackendConfig::settings`] shows it: without a user, a password or a query string.
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
fn url(value: Option<&String>) -> Option<Setting> {
    value.map(|url| Setting::Text(crate::uri::redact_url(url)))
}

/// A setting of a backend that is safe to show (see [`BackendConfig::settings`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Setting {
    /// Text: a name, a path, a URL without user, password or query string.
    Text(String),
    /// `true` or `false`.
    Flag(bool),
    /// A whole number.
    Number(u64),
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => write!(f, "{text:?}"),
            Self::Flag(flag) => write!(f, "{flag}"),
            Self::Number(number) => write!(f, "{number}"),
        }
    }
}

/// The settings given, in order, those left out skipped.
#[cfg(any(feature = "local", feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
fn given(settings: impl IntoIterator<Item = (&'static str, Option<Setting>)>) -> Vec<(&'static str, Setting)> {
    settings.into_iter().filter_map(|(name, value)| Some((name, value?))).collect()
}

/// A text setting.
#[cfg(any(feature = "local", feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
fn text(value: impl ToString) -> Setting {
    Setting::Text(value.to_string())
}

/// The retry and timeout options of the HTTP backends, with [`crate::ClientConfig`]'s defaults.
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
fn client_config(options: &Reader<'_>) -> Result<crate::ClientConfig, String> {
    let default = crate::ClientConfig::default();
    Ok(crate::ClientConfig {
        allow_http: options.flag("allow_http")?,
        max_retries: options.integer("max_retries", "a non-negative integer")?.unwrap_or(default.max_retries),
        connect_timeout: options.seconds("connect_timeout", false)?.unwrap_or(default.connect_timeout),
        read_timeout: options.seconds("read_timeout", false)?.unwrap_or(default.read_timeout),
        request_timeout: options.seconds("timeout", false)?.unwrap_or(default.request_timeout),
        retry_timeout: options.seconds("retry_timeout", false)?.unwrap_or(default.retry_timeout),
        ..default
    })
}

/// A backend's settings, typed.
#[derive(Clone)]
enum Typed {
    #[cfg(feature = "local")]
    Local { root: std::path::PathBuf, fsync: bool },
    #[cfg(feature = "memory")]
    Memory,
    #[cfg(feature = "s3")]
    S3(crate::S3Config),
    #[cfg(feature = "azure")]
    Azure(crate::AzureConfig),
    #[cfg(feature = "gcs")]
    Gcs(crate::GcsConfig),
    #[cfg(feature = "sftp")]
    Sftp(crate::SftpConfig),
}

#[cfg(feature = "local")]
fn local(options: Reader<'_>) -> Result<Typed, String> {
    Ok(Typed::Local { root: options.required("root")?.into(), fsync: options.flag("fsync")? })
}

#[cfg(feature = "s3")]
fn s3(options: Reader<'_>) -> Result<Typed, String> {
    let config = crate::S3Config {
        bucket: options.required("bucket")?,
        endpoint: options.owned("endpoint_url")?,
        region: options.owned("region_name")?,
        access_key_id: options.owned("key")?,
        secret_access_key: options.secret("secret")?,
        session_token: options.secret("token")?,
        virtual_hosted_style: options.flag("virtual_hosted_style")?,
        client: client_config(&options)?,
    };
    Ok(Typed::S3(config))
}

#[cfg(feature = "azure")]
fn azure(options: Reader<'_>) -> Result<Typed, String> {
    let config = crate::AzureConfig {
        container: options.required("container")?,
        account_name: options.owned("account_name")?,
        account_key: options.secret("account_key")?,
        sas_token: options.secret("sas_token")?,
        connection_string: options.secret("connection_string")?,
        account_url: options.owned("account_url")?,
        client: client_config(&options)?,
    };
    Ok(Typed::Azure(config))
}

#[cfg(feature = "gcs")]
fn gcs(options: Reader<'_>) -> Result<Typed, String> {
    let config = crate::GcsConfig {
        bucket: options.required("bucket")?,
        service_account: options.secret("service_account")?,
        base_url: options.owned("base_url")?,
        anonymous: options.flag("anonymous")?,
        client: client_config(&options)?,
    };
    Ok(Typed::Gcs(config))
}

#[cfg(feature = "sftp")]
fn sftp(options: Reader<'_>) -> Result<Typed, String> {
    use crate::{SftpAuth, SftpConfig, SftpHostKey};

    let host = options.required("host")?;
    let username = options.required("username")?;
    let base_path = options.required("base_path")?;
    let port = options.integer("port", "an integer from 0 to 65535")?.unwrap_or(22);
    let passphrase = options.secret("passphrase")?;
    let private_key = options.either("private_key", "pkey")?;
    let auth = match (options.secret("password")?, private_key) {
        (Some(password), None) => SftpAuth::Password(password),
        (None, Some(pem)) if pem.contains("PRIVATE KEY-----") => {
            SftpAuth::PrivateKeyPem { pem: pem.into(), passphrase }
        }
        (None, Some(path)) => SftpAuth::PrivateKey { path: path.into(), passphrase },
        _ => return Err("sftp takes exactly one of password= or private_key=".to_owned()),
    };
    // remote-store's host_key_policy: "strict" is the default check, "auto" accepts any key.
    let accept_any = match options.text("host_key_policy")? {
        None | Some("strict") => options.flag("accept_any_host_key")?,
        Some("auto") if options.get("accept_any_host_key").is_none() => true,
        Some("auto") => return Err("give host_key_policy= or accept_any_host_key=, not both".to_owned()),
        Some(other) => {
            return Err(format!(
                "host_key_policy must be \"strict\" or \"auto\", got {other:?} (for trust on first use, pin the key \
                 with host_key_fingerprint= instead)"
            ));
        }
    };
    let host_key =
        match (options.either("known_hosts", "host_keys_path")?, options.owned("host_key_fingerprint")?, accept_any) {
            (None, None, false) => SftpHostKey::default(),
            (Some(path), None, false) => SftpHostKey::KnownHosts(path.into()),
            (None, Some(fingerprint), false) => SftpHostKey::Fingerprint(fingerprint),
            (None, None, true) => SftpHostKey::AcceptAny,
            _ => {
                return Err(
                    "sftp takes at most one of known_hosts=, host_key_fingerprint= or accept_any_host_key=true"
                        .to_owned(),
                );
            }
        };
    let defaults = SftpConfig::new(host, username, auth, base_path);
    let config = SftpConfig {
        port,
        host_key,
        connect_timeout: options.seconds("connect_timeout", true)?.unwrap_or(defaults.connect_timeout),
        io_timeout: match (options.get("io_timeout"), options.get("timeout")) {
            (Some(_), Some(_)) => {
                return Err("give timeout= or io_timeout= (its remote-store name), not both".to_owned());
            }
            (Some(_), None) => options.seconds("io_timeout", true)?,
            _ => options.seconds("timeout", true)?,
        }
        .unwrap_or(defaults.io_timeout),
        keepalive_interval: options.seconds("keepalive_interval", true)?.unwrap_or(defaults.keepalive_interval),
        pool_size: options.integer("pool_size", "a non-negative integer")?.unwrap_or(defaults.pool_size),
        max_retries: options.integer("max_retries", "a non-negative integer")?.unwrap_or(defaults.max_retries),
        ..defaults
    };
    Ok(Typed::Sftp(config))
}

/// A backend's type and validated options, ready to [`build`](Self::build).
///
/// `Debug` shows the type and the [`settings`](Self::settings), never a credential.
///
/// ```
/// use store_backends::registry::{BackendConfig, Options};
///
/// let options = Options::from_json(serde_json::json!({ "root": "/data/dagster" }))?;
/// let config = BackendConfig::parse("local", &options)?;
/// assert_eq!(config.kind(), "local");
/// assert_eq!(format!("{config:?}"), r#"BackendConfig { kind: "local", root: "/data/dagster", fsync: false }"#);
///
/// let err = BackendConfig::parse("local", &Options::new()).unwrap_err();
/// assert_eq!(err.message(), r#"missing required option "root""#);
/// # Ok::<(), store_core::Error>(())
/// ```
#[derive(Clone)]
pub struct BackendConfig {
    kind: &'static str,
    typed: Typed,
}

impl BackendConfig {
    /// Checks `options` for a backend of type `kind` (`local`, `memory`, `s3`,
    /// `azure`, `gcs` or `sftp`) without building it: unknown options, wrong
    /// types, missing required options and conflicting ones are errors of kind
    /// [`store_core::ErrorKind::Other`], as is a type whose cargo feature is not enabled.
    ///
    /// Each type takes the options [`backend_options`] lists for it. Left out, a flag is false;
    /// SFTP's `port` is 22, `known_hosts` is `~/.ssh/known_hosts`, `timeout` 30 s,
    /// `connect_timeout` 10 s, `keepalive_interval` 30 s, `pool_size` 4 and `max_retries` 3; the
    /// HTTP options are `max_retries` (5) and the positive numbers of seconds `connect_timeout`
    /// (5), `read_timeout` (60), `timeout` (300) and `retry_timeout` (90): see
    /// [`crate::ClientConfig`].
    /// SFTP's seconds may be 0 (no limit, no keepalive).
    pub fn parse(kind: &str, options: &Options) -> Result<Self> {
        Self::parse_options(kind, options).map_err(config_error)
    }

    /// The backend type: `"local"`, `"memory"`, `"s3"`, ...
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The settings that say where the backend stores, in the order of
    /// [`backend_options`], with their option names: never a credential, and
    /// URLs without a user, a password or a query string. What a `repr` or a
    /// log line may show of the backend.
    ///
    /// ```
    /// use store_backends::registry::{BackendConfig, Options, Setting};
    ///
    /// let options = Options::from_json(serde_json::json!({ "bucket": "data", "secret": "hunter2", "endpoint_url": "http://me:pw@host:9000" }))?;
    /// let settings = BackendConfig::parse("s3", &options)?.settings();
    /// assert_eq!(settings, [("bucket", Setting::Text("data".into())), ("endpoint_url", Setting::Text("http://<redacted>@host:9000".into()))]);
    /// # Ok::<(), store_core::Error>(())
    /// ```
    pub fn settings(&self) -> Vec<(&'static str, Setting)> {
        match self.typed {
            #[cfg(feature = "local")]
            Typed::Local { ref root, fsync } => {
                given([("root", Some(text(root.display()))), ("fsync", Some(Setting::Flag(fsync)))])
            }
            #[cfg(feature = "memory")]
            Typed::Memory => Vec::new(),
            #[cfg(feature = "s3")]
            Typed::S3(ref config) => given([
                ("bucket", Some(text(&config.bucket))),
                ("endpoint_url", url(config.endpoint.as_ref())),
                ("region_name", config.region.as_ref().map(text)),
            ]),
            #[cfg(feature = "azure")]
            Typed::Azure(ref config) => given([
                ("container", Some(text(&config.container))),
                ("account_name", config.account_name.as_ref().map(text)),
                ("account_url", url(config.account_url.as_ref())),
            ]),
            #[cfg(feature = "gcs")]
            Typed::Gcs(ref config) => {
                given([("bucket", Some(text(&config.bucket))), ("base_url", url(config.base_url.as_ref()))])
            }
            #[cfg(feature = "sftp")]
            Typed::Sftp(ref config) => given([
                ("host", Some(text(&config.host))),
                ("port", Some(Setting::Number(config.port.into()))),
                ("username", Some(text(&config.username))),
                ("base_path", Some(text(&config.base_path))),
            ]),
        }
    }

    /// Builds the backend. Only SFTP reaches the server here (it logs in and
    /// creates the base folder); the others fail only on invalid settings.
    pub async fn build(&self) -> Result<BackendHandle> {
        match self.typed {
            #[cfg(feature = "local")]
            Typed::Local { ref root, fsync } => {
                let backend =
                    if fsync { crate::LocalBackend::with_fsync(root)? } else { crate::LocalBackend::new(root)? };
                Ok(BackendHandle::new(backend, self.clone()))
            }
            #[cfg(feature = "memory")]
            Typed::Memory => Ok(BackendHandle::new(crate::MemoryBackend::new(), self.clone())),
            #[cfg(feature = "s3")]
            Typed::S3(ref config) => Ok(BackendHandle::new(crate::S3Backend::new(config.clone())?, self.clone())),
            #[cfg(feature = "azure")]
            Typed::Azure(ref config) => Ok(BackendHandle::new(crate::AzureBackend::new(config.clone())?, self.clone())),
            #[cfg(feature = "gcs")]
            Typed::Gcs(ref config) => Ok(BackendHandle::new(crate::GcsBackend::new(config.clone())?, self.clone())),
            #[cfg(feature = "sftp")]
            Typed::Sftp(ref config) => {
                let backend = crate::SftpBackend::connect(config.clone()).await?;
                Ok(BackendHandle::new(backend, self.clone()))
            }
        }
    }

    /// [`parse`](Self::parse) with a plain message, for callers that add context.
    pub(super) fn parse_options(kind: &str, options: &Options) -> Result<Self, String> {
        let (kind, accepted) = accepted_options(kind)?;
        if let Some((unknown, _)) = options.iter().find(|(key, _)| !accepted.contains(key)) {
            return Err(if accepted.is_empty() {
                format!("unknown option {unknown:?}; type {kind} takes no options")
            } else {
                format!("unknown option {unknown:?}; accepted for {kind}: {}", accepted.join(", "))
            });
        }
        let typed = match kind {
            #[cfg(feature = "local")]
            "local" => local(Reader { options }),
            #[cfg(feature = "memory")]
            "memory" => Ok(Typed::Memory),
            #[cfg(feature = "s3")]
            "s3" => s3(Reader { options }),
            #[cfg(feature = "azure")]
            "azure" => azure(Reader { options }),
            #[cfg(feature = "gcs")]
            "gcs" => gcs(Reader { options }),
            #[cfg(feature = "sftp")]
            "sftp" => sftp(Reader { options }),
            _ => Err(format!("type {kind:?} is not available: store-backends was built without its {kind:?} feature")),
        }?;
        Ok(Self { kind, typed })
    }
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = f.debug_struct("BackendConfig");
        shown.field("kind", &self.kind);
        for (name, value) in self.settings() {
            shown.field(name, &value);
        }
        shown.finish()
    }
}

/// A built backend and the config it was built from.
///
/// `Debug` shows the config (see [`BackendConfig::settings`]).
#[derive(Clone, Debug)]
pub struct BackendHandle {
    /// The backend, shared by every [`store_core::Store`] made from it.
    pub backend: Arc<dyn Backend>,
    /// What it was built from.
    pub config: BackendConfig,
}

impl BackendHandle {
    /// A handle for `backend`, built from `config`.
    pub fn new(backend: impl Backend, config: BackendConfig) -> Self {
        Self { backend: Arc::new(backend), config }
    }
}

/// Builds a backend of type `kind` from `options`: [`BackendConfig::parse`]
/// then [`BackendConfig::build`]. This is where every option name meets its
/// backend config, for config files and keyword arguments alike.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_backends::registry::{Options, build_backend};
///
/// let handle = build_backend("memory", &Options::new()).await?;
/// assert_eq!(handle.backend.kind(), "memory");
/// assert_eq!(handle.config.kind(), "memory");
///
/// let options = Options::from_json(serde_json::json!({ "root": "/tmp", "fsinc": true }))?;
/// let err = build_backend("local", &options).await.unwrap_err();
/// assert_eq!(err.message(), r#"unknown option "fsinc"; accepted for local: fsync, root"#);
/// # Ok(()) }
/// ```
pub async fn build_backend(kind: &str, options: &Options) -> Result<BackendHandle> {
    BackendConfig::parse(kind, options)?.build().await
}
