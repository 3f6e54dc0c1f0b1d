//! Error types.

use std::error::Error as StdError;
use std::fmt;

/// A serializer name was looked up in a [`Registry`](crate::Registry) that
/// does not contain it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("unknown serializer {name:?}; available: {}", available.join(", "))]
pub struct UnknownSerializer {
    /// The name that was looked up.
    pub name: String,
    /// The names the registry does contain, sorted.
    pub available: Vec<String>,
}

/// Whether a [`SerializeError`] happened while encoding or decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Encode,
    Decode,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Encode => "encode the value",
            Direction::Decode => "decode the data",
        })
    }
}

/// Why a value could not be encoded or decoded.
///
/// Carries the name of the serializer and the underlying error; it holds no
/// value contents beyond what the underlying library reports.
///
/// ```
/// use store_serializers::SerializeError;
///
/// let err = SerializeError::decode("pickle", String::from("invalid load key, 'x'."));
/// assert_eq!(err.serializer(), "pickle");
/// assert!(err.is_decode());
/// assert_eq!(
///     err.to_string(),
///     "pickle serializer could not decode the data: invalid load key, 'x'."
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{serializer} serializer could not {direction}: {source}")]
pub struct SerializeError {
    serializer: String,
    direction: Direction,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl SerializeError {
    /// An error while encoding a value with the serializer named `serializer`.
    ///
    /// `source` may be any error type, or a plain message (`String`/`&str`).
    pub fn encode(serializer: &str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(serializer, Direction::Encode, source.into())
    }

    /// An error while decoding data with the serializer named `serializer`.
    ///
    /// `source` may be any error type, or a plain message (`String`/`&str`).
    pub fn decode(serializer: &str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(serializer, Direction::Decode, source.into())
    }

    fn new(serializer: &str, direction: Direction, source: Box<dyn StdError + Send + Sync>) -> Self {
        Self { serializer: serializer.to_owned(), direction, source }
    }

    /// The name of the serializer that failed, e.g. `"json"`.
    pub fn serializer(&self) -> &str {
        &self.serializer
    }

    /// `true` if the error happened while decoding, `false` while encoding.
    pub fn is_decode(&self) -> bool {
        self.direction == Direction::Decode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_serializer_message() {
        let err = UnknownSerializer { name: "xml".into(), available: vec!["json".into(), "pickle".into()] };
        assert_eq!(err.to_string(), r#"unknown serializer "xml"; available: json, pickle"#);
    }

    #[test]
    fn serialize_error_from_string_message() {
        let err = SerializeError::encode("pickle", String::from("can't pickle lambda"));
        assert_eq!(err.serializer(), "pickle");
        assert!(!err.is_decode());
        assert_eq!(err.to_string(), "pickle serializer could not encode the value: can't pickle lambda");
        assert_eq!(err.source().map(ToString::to_string).as_deref(), Some("can't pickle lambda"));
    }

    #[test]
    fn serialize_error_keeps_typed_source() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad");
        let err = SerializeError::decode("json", io);
        let source = err.source().expect("source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn errors_are_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<SerializeError>();
        assert_bounds::<UnknownSerializer>();
    }
}
