//! The registry of named serializers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Json, Serializer, UnknownSerializer};

/// Named serializers for values of type `V`.
///
/// Serializers are keyed by their [`name`](Serializer::name); names are kept
/// sorted. Cloning is cheap: entries are shared [`Arc`]s.
pub struct Registry<V> {
    serializers: BTreeMap<String, Arc<dyn Serializer<V>>>,
}

impl<V> Registry<V> {
    /// An empty registry.
    pub fn new() -> Self {
        Self { serializers: BTreeMap::new() }
    }

    /// Adds `serializer` under its [`name`](Serializer::name).
    ///
    /// If a serializer with the same name was already registered it is
    /// replaced and returned.
    pub fn register(&mut self, serializer: Arc<dyn Serializer<V>>) -> Option<Arc<dyn Serializer<V>>> {
        self.serializers.insert(serializer.name().to_owned(), serializer)
    }

    /// The serializer registered as `name`.
    ///
    /// # Errors
    ///
    /// [`UnknownSerializer`], listing the available names in sorted order, if
    /// no serializer is registered under `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Serializer<V>>, UnknownSerializer> {
        self.serializers.get(name).cloned().ok_or_else(|| UnknownSerializer {
            name: name.to_owned(),
            available: self.names().map(str::to_owned).collect(),
        })
    }

    /// The registered names, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.serializers.keys().map(String::as_str)
    }
}

impl<V: Serialize + DeserializeOwned + 'static> Registry<V> {
    /// A registry containing the built-in serializers: [`Json`] as `"json"`.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        registry.register(Arc::new(Json));
        registry
    }
}

impl<V> Default for Registry<V> {
    /// An empty registry, like [`Registry::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Clone for Registry<V> {
    fn clone(&self) -> Self {
        Self { serializers: self.serializers.clone() }
    }
}

impl<V> fmt::Debug for Registry<V> {
    /// Prints the registered names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("names", &self.names().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::SerializeError;

    /// Test-only serializer writing a `String` as its raw UTF-8 bytes.
    struct Plain {
        name: &'static str,
    }

    impl Serializer<String> for Plain {
        fn name(&self) -> &str {
            self.name
        }

        fn extension(&self) -> &'static str {
            ".txt"
        }

        fn serialize(&self, value: &String) -> Result<Bytes, SerializeError> {
            Ok(Bytes::copy_from_slice(value.as_bytes()))
        }

        fn deserialize(&self, data: Bytes) -> Result<String, SerializeError> {
            String::from_utf8(data.to_vec()).map_err(|e| SerializeError::decode(self.name, e))
        }
    }

    fn plain(name: &'static str) -> Arc<dyn Serializer<String>> {
        Arc::new(Plain { name })
    }

    #[test]
    fn new_and_default_are_empty() {
        assert_eq!(Registry::<String>::new().names().count(), 0);
        assert_eq!(Registry::<String>::default().names().count(), 0);
    }

    #[test]
    fn builtins_contain_json() {
        let registry = Registry::<serde_json::Value>::with_builtins();
        assert_eq!(registry.names().collect::<Vec<_>>(), ["json"]);
        let json = registry.get("json").unwrap();
        assert_eq!(json.name(), "json");
        assert_eq!(json.extension(), ".json");
    }

    #[test]
    fn custom_serializer_next_to_json() {
        let mut registry = Registry::<String>::with_builtins();
        assert!(registry.register(plain("upper")).is_none());

        let value = "héllo".to_owned();
        let upper = registry.get("upper").unwrap();
        let bytes = upper.serialize(&value).unwrap();
        assert_eq!(&bytes[..], "héllo".as_bytes());
        assert_eq!(upper.deserialize(bytes).unwrap(), value);

        let json = registry.get("json").unwrap();
        let bytes = json.serialize(&value).unwrap();
        assert_eq!(&bytes[..], "\"héllo\"".as_bytes());
        assert_eq!(json.deserialize(bytes).unwrap(), value);

        let err = upper.deserialize(Bytes::from_static(b"\xff")).unwrap_err();
        assert!(err.is_decode());
        assert_eq!(err.serializer(), "upper");
    }

    #[test]
    fn unknown_name_lists_sorted_available_names() {
        let mut registry = Registry::<String>::with_builtins();
        registry.register(plain("upper"));
        registry.register(plain("arrow"));
        let err = registry.get("xml").unwrap_err();
        assert_eq!(
            err,
            UnknownSerializer { name: "xml".into(), available: vec!["arrow".into(), "json".into(), "upper".into()] }
        );
        assert_eq!(err.to_string(), r#"unknown serializer "xml"; available: arrow, json, upper"#);
    }

    #[test]
    fn unknown_name_in_empty_registry() {
        let err = Registry::<String>::new().get("json").unwrap_err();
        assert!(err.available.is_empty());
        assert_eq!(err.to_string(), r#"unknown serializer "json"; available: "#);
    }

    #[test]
    fn register_replaces_and_returns_previous() {
        let mut registry = Registry::<String>::with_builtins();
        let replacement: Arc<dyn Serializer<String>> = plain("json");
        let previous = registry.register(replacement.clone()).expect("previous");
        assert_eq!(previous.extension(), ".json");
        assert!(Arc::ptr_eq(&registry.get("json").unwrap(), &replacement));
        assert_eq!(registry.get("json").unwrap().extension(), ".txt");
        assert_eq!(registry.names().collect::<Vec<_>>(), ["json"]);
    }

    #[test]
    fn names_are_sorted() {
        let mut registry = Registry::<String>::new();
        for name in ["zeta", "json", "alpha", "mid"] {
            registry.register(plain(name));
        }
        assert_eq!(registry.names().collect::<Vec<_>>(), ["alpha", "json", "mid", "zeta"]);
    }

    #[test]
    fn clone_shares_entries_and_is_independent() {
        let mut registry = Registry::<String>::with_builtins();
        let clone = registry.clone();
        assert!(Arc::ptr_eq(&registry.get("json").unwrap(), &clone.get("json").unwrap()));
        registry.register(plain("upper"));
        assert_eq!(clone.names().collect::<Vec<_>>(), ["json"]);
    }

    #[test]
    fn debug_shows_names_only() {
        let mut registry = Registry::<String>::with_builtins();
        registry.register(plain("upper"));
        assert_eq!(format!("{registry:?}"), r#"Registry { names: ["json", "upper"] }"#);
    }

    #[test]
    fn serializer_debug_shows_name_and_extension() {
        let json = Registry::<String>::with_builtins().get("json").unwrap();
        assert_eq!(format!("{json:?}"), r#"Serializer { name: "json", extension: ".json" }"#);
    }

    #[test]
    fn registry_is_send_sync() {
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<Registry<serde_json::Value>>();
    }
}
