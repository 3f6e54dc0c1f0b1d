//! What the HTTP backends (S3, Azure, GCS) share: retry and timeout settings,
//! and error text that cannot carry a credential.

use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use store_core::{Error, ErrorKind};

use crate::object_store_backend::redact;

/// Retries and timeouts of an HTTP backend.
///
/// Transient failures (HTTP 429 and 5xx, connection resets, timeouts) are
/// retried with exponential backoff and jitter; permanent ones (400, 403, 404,
/// bad credentials) are not. The defaults suit cloud storage.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// How many times one request is retried (0: never). Default 5.
    pub max_retries: usize,
    /// First backoff; each retry waits up to twice as long, with jitter. Default 100 ms.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default 15 s.
    pub max_backoff: Duration,
    /// No retry starts after this long since the first attempt. Default 3 min.
    pub retry_timeout: Duration,
    /// Time allowed to open a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included. Default 5 min.
    pub request_timeout: Duration,
    /// Allow plain `http://` endpoints (emulators, local test servers). Off by default.
    pub allow_http: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            retry_timeout: Duration::from_secs(180),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
            allow_http: false,
        }
    }
}

impl ClientConfig {
    pub(crate) fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig { init_backoff: self.initial_backoff, max_backoff: self.max_backoff, base: 2.0 },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    pub(crate) fn options(&self) -> ClientOptions {
        ClientOptions::new()
            .with_allow_http(self.allow_http)
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
    }
}

/// `builder` with the settings object_store's `from_env` takes from the
/// `prefix`ed environment variables, except those `is_credential` picks: for a
/// backend given a credential explicitly, which then replaces the
/// environment's credentials whole. Taken one by one, an environment credential
/// could outrank the explicit one (an Azure bearer token outranks a key), or
/// join it (an AWS session token next to a key given in code).
pub(crate) fn without_env_credentials<B, K: std::str::FromStr>(
    mut builder: B,
    prefix: &str,
    set: impl Fn(B, K, String) -> B,
    is_credential: impl Fn(&K) -> bool,
) -> B {
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else { continue };
        if let (true, Ok(key)) = (name.starts_with(prefix), name.to_ascii_lowercase().parse::<K>())
            && !is_credential(&key)
        {
            builder = set(builder, key, value.to_owned());
        }
    }
    builder
}

/// A backend-construction error (bad option, missing bucket, ...), credential-free.
pub(crate) fn config_error(backend: &str, err: object_store::Error) -> Error {
    Error::new(ErrorKind::Other, format!("cannot configure the {backend} backend: {}", redact(&err.to_string())))
}

/// The kind of a request that failed after retries: connection failures,
/// timeouts, throttling and server errors are transient; auth failures are
/// permission errors. object_store keeps its retry error private, so the
/// status is read from the error text it always writes (`status code: 503`).
pub(crate) fn classify(err: &object_store::Error) -> Option<ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(current) = source {
        if current.downcast_ref::<object_store::client::HttpError>().is_some() {
            return Some(ErrorKind::Unavailable);
        }
        source = current.source();
    }
    let text = err.to_string();
    let (_, after) = text.split_once("status code: ")?;
    match after.get(..3)?.parse::<u16>().ok()? {
        408 | 429 | 500..=599 => Some(ErrorKind::Unavailable),
        401 | 403 => Some(ErrorKind::PermissionDenied),
        _ => None,
    }
}
