//! [`Secret`]: a credential that never shows in `Debug`, `Display` or errors.

use std::fmt;

/// A credential (password, access key, token, private key, ...) that keeps its
/// value out of logs and messages: `Debug` prints `Secret(***)` and `Display`
/// prints `***`. The value is read only on purpose, through [`expose`](Self::expose),
/// where it is handed to the client library that needs it. `Secret` does not
/// implement `Serialize`, so it cannot end up in a written config by accident.
///
/// ```
/// use store_core::Secret;
///
/// let secret = Secret::new("hunter2".to_owned());
/// assert_eq!(secret.expose(), "hunter2");
/// assert_eq!(format!("{secret:?}"), "Secret(***)");
/// assert_eq!(format!("{secret}"), "***");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Holds `value` as a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value itself, given up, for a client library that takes ownership of it.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
