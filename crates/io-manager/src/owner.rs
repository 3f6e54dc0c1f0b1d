//! Which asset an object belongs to.
//!
//! Asset paths may collide: asset `["foo"]` partition `"bar"` and asset
//! `["foo", "bar"]` both live at `foo/bar.pkl`. The IO manager therefore
//! records the [`Owner`] of every object it writes, beside its checksum (see
//! [`integrity`](crate::integrity)), and refuses to load an object as another
//! asset's, or to overwrite it from another asset.

use std::fmt;

/// The asset key and partition whose output is stored at a path.
///
/// ```
/// use io_manager::Owner;
///
/// let daily = Owner::new(["foo"], ["bar"]);
/// let nested = Owner::new(["foo", "bar"], Vec::<String>::new());
/// assert_eq!(daily.to_string(), r#"asset ["foo"], partition "bar""#);
/// assert_eq!(nested.to_string(), r#"asset ["foo", "bar"]"#);
/// assert_ne!(daily.stored(), nested.stored());
/// assert_eq!(Owner::describe(&daily.stored()), daily.to_string());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    asset_key: Vec<String>,
    partition: Vec<String>,
}

/// Stored forms longer than this are replaced by a digest: object metadata is
/// small (S3 allows 2 KiB for all of it).
const LONGEST_STORED: usize = 512;

impl Owner {
    /// The owner of asset `asset_key`'s output for `partition` (one key per
    /// dimension; empty for an unpartitioned asset).
    pub fn new<K, P>(asset_key: impl IntoIterator<Item = K>, partition: impl IntoIterator<Item = P>) -> Self
    where
        K: Into<String>,
        P: Into<String>,
    {
        Self {
            asset_key: asset_key.into_iter().map(Into::into).collect(),
            partition: partition.into_iter().map(Into::into).collect(),
        }
    }

    /// The form kept in object metadata and checksum records: JSON in ASCII
    /// (other characters escaped as `\u` and four hex digits), or a digest of it
    /// when long.
    pub fn stored(&self) -> String {
        let json = serde_json::json!({"asset": self.asset_key, "partition": self.partition}).to_string();
        let ascii = ascii_json(&json);
        if ascii.len() <= LONGEST_STORED {
            return ascii;
        }
        let digest = crate::checksum::Checksum::of(ascii.as_bytes());
        format!("{}:{}", digest, ascii.len())
    }

    /// A [`stored`](Self::stored) form as errors show it.
    pub fn describe(stored: &str) -> String {
        let parsed: Option<(Vec<String>, Vec<String>)> = serde_json::from_str::<serde_json::Value>(stored)
            .ok()
            .and_then(|value| Some((strings(&value["asset"])?, strings(&value["partition"])?)));
        match parsed {
            Some((asset_key, partition)) => Owner { asset_key, partition }.to_string(),
            None => format!("the asset recorded as {stored:?}"),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "asset {:?}", self.asset_key)?;
        match self.partition.as_slice() {
            [] => Ok(()),
            [one] => write!(f, ", partition {one:?}"),
            several => write!(f, ", partition {several:?}"),
        }
    }
}

fn strings(value: &serde_json::Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|item| item.as_str().map(str::to_owned)).collect()
}

/// `json` with every character outside printable ASCII escaped, as JSON allows.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_are_ascii_and_read_back() {
        let owner = Owner::new(["sales", "daily"], ["2026-01-01", "ünï\u{1F600}"]);
        let stored = owner.stored();
        assert!(stored.is_ascii(), "{stored}");
        assert_eq!(Owner::describe(&stored), owner.to_string());
        assert_eq!(owner.to_string(), r#"asset ["sales", "daily"], partition ["2026-01-01", "ünï😀"]"#);
    }

    #[test]
    fn long_owners_are_stored_as_a_digest() {
        let long = Owner::new(["a".repeat(600)], Vec::<String>::new());
        let stored = long.stored();
        assert!(stored.starts_with("crc32c:") && stored.len() < 40, "{stored}");
        assert_ne!(stored, Owner::new(["b".repeat(600)], Vec::<String>::new()).stored());
        assert!(Owner::describe(&stored).contains(&stored));
    }
}
