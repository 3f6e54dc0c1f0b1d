//! One job: a registry of named serializers that turn values into bytes and
//! back, for the Dagster IO manager and any other host.
//!
//! Layering, dependencies pointing one way: this crate depends on no other
//! crate of the workspace; `io-manager` and `py-bindings` depend on it.
//!
//! Every serializer has a registry name (e.g. `"json"`) and a file extension
//! including the dot (e.g. `".json"`). The value type `V` is generic, because
//! different hosts have different value types: Rust users typically use serde
//! types or [`serde_json::Value`], while other hosts (such as Python bindings)
//! use their own value type and register their own serializers next to the
//! built-in ones.
//!
//! The built-in serializers are:
//!
//! | name     | extension | type     | works for                                  |
//! |----------|-----------|----------|--------------------------------------------|
//! | `"json"` | `.json`   | [`Json`] | every `V: Serialize + DeserializeOwned`    |
//!
//! With the cargo feature `parquet`, the `parquet` module
//! encodes Arrow record batches as Parquet files (`.parquet`) and decodes them;
//! hosts wrap it in a serializer for their own table type.
//!
//! # Example
//!
//! ```
//! use store_serializers::Registry;
//! use serde_json::json;
//!
//! let registry = Registry::<serde_json::Value>::with_builtins();
//!
//! let json = registry.get("json")?;
//! assert_eq!(json.name(), "json");
//! assert_eq!(json.extension(), ".json");
//!
//! let value = json!({"rows": [1, 2, 3], "name": "orders"});
//! let bytes = json.serialize(&value)?;
//! assert_eq!(json.deserialize(bytes)?, value);
//!
//! let err = registry.get("xml").unwrap_err();
//! assert_eq!(err.to_string(), r#"unknown serializer "xml"; available: json"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod json;
#[cfg(feature = "parquet")]
pub mod parquet;
mod registry;

pub use error::{SerializeError, UnknownSerializer};
pub use json::Json;
pub use registry::Registry;

/// Turns values of type `V` into bytes and back.
///
/// Implementations must be thread-safe so that a [`Registry`] can be shared
/// between threads. Errors should be reported as [`SerializeError`]s built
/// with [`SerializeError::encode`] or [`SerializeError::decode`], carrying the
/// serializer's [`name`](Serializer::name).
pub trait Serializer<V>: Send + Sync {
    /// Registry name, e.g. `"json"`.
    fn name(&self) -> &str;

    /// File extension including the dot, e.g. `".json"`.
    fn extension(&self) -> &str;

    /// Encodes `value` into bytes.
    ///
    /// # Errors
    ///
    /// Returns an encode error ([`SerializeError::is_decode`] is `false`) if
    /// the value cannot be represented in this format.
    fn serialize(&self, value: &V) -> Result<bytes::Bytes, SerializeError>;

    /// Decodes a value from `data`.
    ///
    /// # Errors
    ///
    /// Returns a decode error ([`SerializeError::is_decode`] is `true`) if the
    /// data is not a valid encoding of a `V` in this format.
    fn deserialize(&self, data: bytes::Bytes) -> Result<V, SerializeError>;
}

/// Prints the serializer's name and extension, so that
/// `Arc<dyn Serializer<V>>` (and results holding one) can be debug-printed.
impl<V> std::fmt::Debug for dyn Serializer<V> + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serializer").field("name", &self.name()).field("extension", &self.extension()).finish()
    }
}
