//! Python objects as serde values, so the Rust JSON serializer encodes and
//! decodes them directly, with no intermediate tree.

use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A serializer of Python objects.
pub type PySerializer = std::sync::Arc<dyn serializers::Serializer<PyValue>>;

/// A Python object, as the value type of the Rust IO manager.
#[derive(Debug)]
pub struct PyValue(pub Py<PyAny>);

impl Serialize for PyValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Python::attach(|py| Json(self.0.bind(py)).serialize(serializer))
    }
}

impl<'de> Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Python::attach(|py| Seed(py).deserialize(deserializer).map(|obj| PyValue(obj.unbind())))
    }
}

/// The JSON view of a Python object: what `json.dumps(obj, allow_nan=False)` accepts,
/// with dict keys that are str, int, float, bool or None written as strings.
struct Json<'a, 'py>(&'a Bound<'py, PyAny>);

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
}

fn not_serializable<E: ser::Error>(obj: &Bound<'_, PyAny>) -> E {
    E::custom(format!("Object of type {} is not JSON serializable", type_name(obj)))
}

impl Serialize for Json<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let obj = self.0;
        if obj.is_none() {
            serializer.serialize_unit()
        } else if let Ok(b) = obj.cast::<PyBool>() {
            serializer.serialize_bool(b.is_true())
        } else if obj.is_instance_of::<PyInt>() {
            if let Ok(i) = obj.extract::<i64>() {
                serializer.serialize_i64(i)
            } else if let Ok(u) = obj.extract::<u64>() {
                serializer.serialize_u64(u)
            } else {
                Err(ser::Error::custom("int too large for JSON (beyond 64 bits)"))
            }
        } else if let Ok(f) = obj.cast::<PyFloat>() {
            let value = f.value();
            if !value.is_finite() {
                return Err(ser::Error::custom(format!("Out of range float values are not JSON compliant: {value}")));
            }
            serializer.serialize_f64(value)
        } else if let Ok(s) = obj.cast::<PyString>() {
            serializer.serialize_str(&s.to_cow().map_err(ser::Error::custom)?)
        } else if let Ok(dict) = obj.cast::<PyDict>() {
            let mut map = serializer.serialize_map(Some(dict.len()))?;
            for (key, value) in dict.iter() {
                map.serialize_entry(&dict_key(&key)?, &Json(&value))?;
            }
            map.end()
        } else if let Ok(list) = obj.cast::<PyList>() {
            let mut seq = serializer.serialize_seq(Some(list.len()))?;
            for item in list.iter() {
                seq.serialize_element(&Json(&item))?;
            }
            seq.end()
        } else if let Ok(tuple) = obj.cast::<PyTuple>() {
            let mut seq = serializer.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&Json(&item))?;
            }
            seq.end()
        } else {
            Err(not_serializable(obj))
        }
    }
}

/// A dict key as JSON writes it: strings as they are, scalars as their JSON text.
fn dict_key<E: ser::Error>(key: &Bound<'_, PyAny>) -> Result<String, E> {
    if let Ok(s) = key.cast::<PyString>() {
        return s.to_cow().map(|s| s.into_owned()).map_err(E::custom);
    }
    let scalar = key.is_none() || key.is_instance_of::<PyInt>() || key.is_instance_of::<PyFloat>();
    if !scalar {
        return Err(E::custom(format!("keys must be str, int, float, bool or None, not {}", type_name(key))));
    }
    serde_json::to_string(&Json(key)).map_err(E::custom)
}

/// Builds Python objects straight from the JSON tokens.
struct Seed<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for Seed<'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn py_err<E: de::Error>(err: PyErr) -> E {
    E::custom(err)
}

impl<'de, 'py> Visitor<'de> for Seed<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let Ok(int) = v.into_pyobject(self.0);
        Ok(int.into_any())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let Ok(int) = v.into_pyobject(self.0);
        Ok(int.into_any())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0, v).into_any())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = seq.next_element_seed(Seed(self.0))? {
            list.append(item).map_err(py_err)?;
        }
        Ok(list.into_any())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value = map.next_value_seed(Seed(self.0))?;
            dict.set_item(key.as_ref(), value).map_err(py_err)?;
        }
        Ok(dict.into_any())
    }
}
