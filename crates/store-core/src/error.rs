//! One error type for every backend.

use std::fmt;

/// What went wrong, independent of the backend.
///
/// Callers branch on the kind; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// A create-only write (or copy/rename without overwrite) found the target already there.
    AlreadyExists,
    /// The backend refused the credentials or the operation.
    PermissionDenied,
    /// The path is not a valid store path.
    InvalidPath,
    /// A transient failure (timeout, connection reset, throttling, 5xx): retrying may succeed.
    Unavailable,
    /// A condition of the request did not hold (e-tag mismatch and the like).
    Precondition,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(self) -> bool {
        self == ErrorKind::Unavailable
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidPath => "invalid path",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Precondition => "precondition failed",
            ErrorKind::Other => "error",
        })
    }
}

/// A Store error: its [`ErrorKind`], the operation, the store-relative path and
/// the backend kind, and a message.
///
/// Backends build errors with [`Error::new`] and the [`crate::Store`] fills in
/// the operation, path and backend, so every error that reaches a caller names
/// all three. Messages never carry credentials: backends build them from
/// status codes and paths, not from request URLs or configuration.
///
/// ```
/// use store_core::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::NotFound, "no such object")
///     .with_context("read", "reports/q1.pkl", "local");
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert_eq!(err.to_string(), "read \"reports/q1.pkl\" on local: not found: no such object");
/// ```
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    operation: Option<&'static str>,
    path: Option<String>,
    backend: Option<&'static str>,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, operation: None, path: None, backend: None, message: message.into(), source: None }
    }

    /// Attaches the underlying cause (it must not carry credentials either).
    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the path the error is about.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets operation, store-relative path and backend kind.
    pub fn with_context(mut self, operation: &'static str, path: impl Into<String>, backend: &'static str) -> Self {
        self.operation = Some(operation);
        self.path = Some(path.into());
        self.backend = Some(backend);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed (`"read"`, `"write"`, ...), once the Store has set it.
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// The store-relative path the error is about.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The backend kind (`"local"`, `"memory"`, ...), once the Store has set it.
    pub fn backend(&self) -> Option<&'static str> {
        self.backend
    }

    /// The message without operation, path or backend.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_ref().map(|p| format!("{p:?}"));
        let backend = self.backend.map(|b| format!("on {b}"));
        let context: Vec<&str> = [self.operation, path.as_deref(), backend.as_deref()].into_iter().flatten().collect();
        if !context.is_empty() {
            write!(f, "{}: ", context.join(" "))?;
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
