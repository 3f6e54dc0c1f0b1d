//! The built-in JSON serializer.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{SerializeError, Serializer};

/// JSON via `serde_json`; works for every `V: Serialize + DeserializeOwned`.
///
/// Registered as `"json"` with extension `".json"`. Output is compact (no
/// whitespace), as produced by [`serde_json::to_vec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Json {
    /// The registry name, `"json"`.
    pub const NAME: &'static str = "json";
    /// The file extension, `".json"`.
    pub const EXTENSION: &'static str = ".json";
}

impl<V: Serialize + DeserializeOwned> Serializer<V> for Json {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn extension(&self) -> &str {
        Self::EXTENSION
    }

    fn serialize(&self, value: &V) -> Result<Bytes, SerializeError> {
        serde_json::to_vec(value).map(Bytes::from).map_err(|e| SerializeError::encode(Self::NAME, e))
    }

    fn deserialize(&self, data: Bytes) -> Result<V, SerializeError> {
        serde_json::from_slice(&data).map_err(|e| SerializeError::decode(Self::NAME, e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::error::Error as _;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
        customer: String,
        amounts: Vec<f64>,
        note: Option<String>,
    }

    #[test]
    fn roundtrips_derived_struct() {
        let order = Order { id: 7, customer: "ada".into(), amounts: vec![1.5, 2.25], note: None };
        let bytes = Serializer::<Order>::serialize(&Json, &order).unwrap();
        let back: Order = Json.deserialize(bytes).unwrap();
        assert_eq!(back, order);
    }

    #[test]
    fn roundtrips_json_value() {
        let value = json!({"a": [1, 2.5, null, true], "b": {"c": "ü"}});
        let bytes = Json.serialize(&value).unwrap();
        let back: serde_json::Value = Json.deserialize(bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn output_is_compact() {
        let bytes = Json.serialize(&json!({"a": [1, 2]})).unwrap();
        assert_eq!(&bytes[..], br#"{"a":[1,2]}"#);
    }

    #[test]
    fn name_and_extension() {
        assert_eq!(Serializer::<serde_json::Value>::name(&Json), "json");
        assert_eq!(Serializer::<serde_json::Value>::extension(&Json), ".json");
    }

    #[test]
    fn invalid_bytes_are_a_decode_error() {
        let err = Serializer::<serde_json::Value>::deserialize(&Json, Bytes::from_static(b"{not json")).unwrap_err();
        assert!(err.is_decode());
        assert_eq!(err.serializer(), "json");
        assert!(err.to_string().starts_with("json serializer could not decode the data: "), "{err}");
        assert!(err.source().unwrap().downcast_ref::<serde_json::Error>().is_some());
    }

    #[test]
    fn wrong_shape_is_a_decode_error() {
        let err = Serializer::<Order>::deserialize(&Json, Bytes::from_static(b"[1, 2]")).unwrap_err();
        assert!(err.is_decode());
    }

    #[test]
    fn non_string_map_keys_are_an_encode_error() {
        let value: BTreeMap<(i32, i32), i32> = BTreeMap::from([((1, 2), 3)]);
        let err = Json.serialize(&value).unwrap_err();
        assert!(!err.is_decode());
        assert_eq!(err.serializer(), "json");
        assert!(err.to_string().starts_with("json serializer could not encode the value: "), "{err}");
    }
}
