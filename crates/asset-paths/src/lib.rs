//! One job: map a Dagster asset key, optional partition keys and a file
//! extension to a relative, `/`-separated store path, reversibly.
//!
//! Layering, dependencies pointing one way: this crate depends on no other
//! crate of the workspace; `io-manager` and `py-bindings` depend on it.
//!
//! | asset key          | partition              | extension | path                     |
//! |--------------------|------------------------|-----------|--------------------------|
//! | `["foo", "bar"]`   | none                   | `.pkl`    | `foo/bar.pkl`            |
//! | `["foo", "bar"]`   | `["2026-01"]`          | `.pkl`    | `foo/bar/2026-01.pkl`    |
//! | `["ns", "report"]` | none                   | `.pkl`    | `ns/report.pkl`          |
//! | `["foo"]`          | `["2026-01-01", "eu"]` | `.pkl`    | `foo/2026-01-01/eu.pkl`  |
//!
//! Every asset-key segment and every partition key becomes exactly one path
//! segment. Segments that are already safe (non-empty, no leading `.`, no `/`,
//! `\`, `%` or control characters) are kept as they are; all others are
//! percent-encoded by [`encode_segment`] so that no key can escape its folder,
//! name a hidden file or collide with another key. [`decode_segment`] reverses
//! the encoding.
//!
//! # Example
//!
//! ```
//! use asset_paths::{asset_path, asset_prefix, decode_segment, encode_segment};
//!
//! let none: &[&str] = &[];
//! assert_eq!(asset_path(&["foo", "bar"], none, ".pkl")?, "foo/bar.pkl");
//! assert_eq!(asset_path(&["foo", "bar"], &["2026-01"], ".pkl")?, "foo/bar/2026-01.pkl");
//! assert_eq!(asset_path(&["ns", "report"], none, ".pkl")?, "ns/report.pkl");
//! assert_eq!(asset_path(&["foo"], &["2026-01-01", "eu"], ".pkl")?, "foo/2026-01-01/eu.pkl");
//! assert_eq!(asset_path(&["foo", "bar"], none, "")?, "foo/bar");
//!
//! // The folder holding all partitions of a partitioned asset.
//! assert_eq!(asset_prefix(&["foo", "bar"])?, "foo/bar");
//!
//! // Unsafe segments are encoded reversibly.
//! assert_eq!(asset_path(&["..", "a/b"], none, ".pkl")?, "%2E./a%2Fb.pkl");
//! assert_eq!(encode_segment("a/b"), "a%2Fb");
//! assert_eq!(decode_segment("a%2Fb").unwrap(), "a/b");
//! # Ok::<(), asset_paths::AssetPathError>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

use std::borrow::Cow;

/// The encoding of the empty segment. No other encoding can equal it, because
/// every other `%` in an encoded segment is followed by two hex digits.
const EMPTY_SEGMENT: &str = "%";

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Errors building a store path with [`asset_path`] or [`asset_prefix`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AssetPathError {
    /// The asset key has no segments, so there is no path to build.
    #[error("asset key is empty: it must have at least one segment")]
    EmptyAssetKey,
    /// The extension is neither empty nor a `.`-prefixed single path segment.
    #[error("invalid extension {extension:?}: must be empty or start with \".\" and be a single path segment")]
    InvalidExtension {
        /// The rejected extension.
        extension: String,
    },
}

/// A string that is not the output of [`encode_segment`] for any input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("cannot decode path segment {input:?}: {reason}")]
pub struct DecodeError {
    input: String,
    reason: &'static str,
}

impl DecodeError {
    /// The encoded segment that failed to decode.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Characters that are escaped wherever they appear in a segment.
fn needs_escape(c: char) -> bool {
    matches!(c, '/' | '\\' | '%') || c.is_control()
}

/// Encodes one asset-key segment or partition key as a single safe path segment.
///
/// A safe segment (non-empty, not starting with `.`, without `/`, `\`, `%` or
/// control characters) is returned unchanged and without allocating. Otherwise
/// `%`, `/`, `\`, control characters and a leading `.` are replaced by the
/// uppercase `%XX` escapes of their UTF-8 bytes, and the empty segment becomes
/// `%`. The result is never empty, never starts with `.` (so it is never `.` or
/// `..`), and distinct inputs always give distinct outputs.
///
/// ```
/// use asset_paths::encode_segment;
///
/// assert_eq!(encode_segment("naïve ✓ key"), "naïve ✓ key");
/// assert_eq!(encode_segment(".."), "%2E.");
/// assert_eq!(encode_segment("50%"), "50%25");
/// assert_eq!(encode_segment(""), "%");
/// ```
pub fn encode_segment(segment: &str) -> Cow<'_, str> {
    if segment.is_empty() {
        return Cow::Borrowed(EMPTY_SEGMENT);
    }
    if !segment.starts_with('.') && !segment.chars().any(needs_escape) {
        return Cow::Borrowed(segment);
    }
    let mut encoded = String::with_capacity(segment.len() + 8);
    for (index, c) in segment.char_indices() {
        // Only the first dot matters: it is what makes `.`, `..` and hidden files.
        if needs_escape(c) || (index == 0 && c == '.') {
            for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                encoded.push('%');
                encoded.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
                encoded.push(char::from(HEX_DIGITS[usize::from(byte & 0xF)]));
            }
        } else {
            encoded.push(c);
        }
    }
    Cow::Owned(encoded)
}

/// Reverses [`encode_segment`].
///
/// Only canonical encodings are accepted (uppercase hex, exactly the
/// characters [`encode_segment`] escapes), so every valid encoded segment
/// names exactly one string.
///
/// # Errors
///
/// Returns a [`DecodeError`] for a truncated or non-hex escape, escapes that
/// do not form valid UTF-8, or input that [`encode_segment`] would not produce
/// (such as a raw `/`, a leading `.` or an unnecessary escape).
///
/// ```
/// use asset_paths::decode_segment;
///
/// assert_eq!(decode_segment("%2Ehidden").unwrap(), ".hidden");
/// assert_eq!(decode_segment("%").unwrap(), "");
/// assert!(decode_segment("%2").is_err());
/// assert!(decode_segment("a/b").is_err());
/// ```
pub fn decode_segment(encoded: &str) -> Result<String, DecodeError> {
    let error = |reason| DecodeError { input: encoded.to_owned(), reason };
    if encoded == EMPTY_SEGMENT {
        return Ok(String::new());
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let &[high, low, ..] = tail else {
                return Err(error("truncated %-escape"));
            };
            let digit = |b: u8| char::from(b).to_digit(16);
            let (Some(high), Some(low)) = (digit(high), digit(low)) else {
                return Err(error("%-escape is not followed by two hex digits"));
            };
            // Two hex digits always fit in a byte.
            bytes.push(((high << 4) | low) as u8);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    let decoded = String::from_utf8(bytes).map_err(|_| error("escaped bytes are not valid UTF-8"))?;
    // Checking against the encoder rejects every non-canonical spelling at once,
    // which keeps decoding a bijection with encoding.
    if encode_segment(&decoded) != encoded {
        return Err(error("not a canonical encoding"));
    }
    Ok(decoded)
}

/// Returns the folder of an asset: its encoded key segments joined by `/`.
///
/// For a partitioned asset this is the folder that holds one entry per
/// partition; [`asset_path`] with the same key and partitions extends it.
///
/// # Errors
///
/// Returns [`AssetPathError::EmptyAssetKey`] if `asset_key` has no segments.
///
/// ```
/// assert_eq!(asset_paths::asset_prefix(&["foo", "bar"]).unwrap(), "foo/bar");
/// ```
pub fn asset_prefix<K: AsRef<str>>(asset_key: &[K]) -> Result<String, AssetPathError> {
    let (first, rest) = asset_key.split_first().ok_or(AssetPathError::EmptyAssetKey)?;
    let mut path = encode_segment(first.as_ref()).into_owned();
    push_segments(&mut path, rest);
    Ok(path)
}

/// Returns the store path of an asset, or of one partition of it.
///
/// The path is the [`asset_prefix`], then one folder level per partition
/// dimension in the order given, with `extension` appended to the last
/// segment. Every key and partition segment is encoded with
/// [`encode_segment`], so the path has exactly
/// `asset_key.len() + partition.len()` segments.
///
/// # Errors
///
/// Returns [`AssetPathError::EmptyAssetKey`] if `asset_key` has no segments,
/// and [`AssetPathError::InvalidExtension`] unless `extension` is empty or
/// starts with `.`, is not just `.`, and has no `/`, `\` or control characters.
///
/// ```
/// use asset_paths::asset_path;
///
/// assert_eq!(asset_path(&["foo"], &["2026-01-01", "eu"], ".pkl").unwrap(), "foo/2026-01-01/eu.pkl");
/// assert!(asset_path(&["foo"], &["eu"], "pkl").is_err());
/// ```
pub fn asset_path<K: AsRef<str>, P: AsRef<str>>(
    asset_key: &[K],
    partition: &[P],
    extension: &str,
) -> Result<String, AssetPathError> {
    let valid_extension = extension.is_empty()
        || (extension.starts_with('.')
            && extension != "."
            && !extension.chars().any(|c| matches!(c, '/' | '\\') || c.is_control()));
    if !valid_extension {
        return Err(AssetPathError::InvalidExtension { extension: extension.to_owned() });
    }
    let mut path = asset_prefix(asset_key)?;
    push_segments(&mut path, partition);
    path.push_str(extension);
    Ok(path)
}

/// Appends each segment, encoded, as a further `/`-separated level.
fn push_segments<S: AsRef<str>>(path: &mut String, segments: &[S]) {
    for segment in segments {
        path.push('/');
        path.push_str(&encode_segment(segment.as_ref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_PARTITION: &[&str] = &[];

    #[test]
    fn seed_table() {
        let cases: &[(&[&str], &[&str], &str)] = &[
            (&["foo", "bar"], NO_PARTITION, "foo/bar.pkl"),
            (&["foo", "bar"], &["2026-01"], "foo/bar/2026-01.pkl"),
            (&["ns", "report"], NO_PARTITION, "ns/report.pkl"),
        ];
        for &(key, partition, expected) in cases {
            assert_eq!(asset_path(key, partition, ".pkl").unwrap(), expected);
        }
    }

    #[test]
    fn one_folder_level_per_partition_dimension_in_order() {
        assert_eq!(asset_path(&["foo"], &["2026-01-01", "eu"], ".pkl").unwrap(), "foo/2026-01-01/eu.pkl");
        assert_eq!(asset_path(&["foo"], &["eu", "2026-01-01"], ".pkl").unwrap(), "foo/eu/2026-01-01.pkl");
    }

    #[test]
    fn empty_extension_adds_no_suffix() {
        assert_eq!(asset_path(&["foo", "bar"], NO_PARTITION, "").unwrap(), "foo/bar");
        assert_eq!(asset_path(&["foo"], &["p"], "").unwrap(), "foo/p");
    }

    #[test]
    fn key_and_partition_segments_are_encoded() {
        assert_eq!(asset_path(&["..", "a/b"], &["", "."], ".pkl").unwrap(), "%2E./a%2Fb/%/%2E.pkl");
    }

    #[test]
    fn prefix_is_the_folder_of_the_partitions() {
        assert_eq!(asset_prefix(&["foo", "bar"]).unwrap(), "foo/bar");
        assert_eq!(asset_prefix(&[".hidden"]).unwrap(), "%2Ehidden");
        let partitioned = asset_path(&["foo", "bar"], &["2026-01"], ".pkl").unwrap();
        assert!(partitioned.starts_with(&format!("{}/", asset_prefix(&["foo", "bar"]).unwrap())));
    }

    #[test]
    fn empty_asset_key_is_an_error() {
        let empty: &[&str] = &[];
        assert_eq!(asset_prefix(empty), Err(AssetPathError::EmptyAssetKey));
        assert_eq!(asset_path(empty, &["p"], ".pkl"), Err(AssetPathError::EmptyAssetKey));
    }

    #[test]
    fn bad_extensions_are_errors_naming_the_extension() {
        for extension in ["pkl", ".", ".a/b", ".a\\b", ".a\0", "/"] {
            let error = asset_path(&["foo"], NO_PARTITION, extension).unwrap_err();
            assert_eq!(error, AssetPathError::InvalidExtension { extension: extension.to_owned() });
            assert!(error.to_string().contains(&format!("{extension:?}")));
        }
        assert_eq!(
            AssetPathError::InvalidExtension { extension: ".a/b".to_owned() }.to_string(),
            r#"invalid extension ".a/b": must be empty or start with "." and be a single path segment"#
        );
    }

    #[test]
    fn unsafe_segments_are_percent_encoded() {
        let cases = [
            ("a/b", "a%2Fb"),
            ("..", "%2E."),
            (".", "%2E"),
            (".hidden", "%2Ehidden"),
            ("", "%"),
            ("50%", "50%25"),
            ("back\\slash", "back%5Cslash"),
            ("nul\0", "nul%00"),
            ("tab\t", "tab%09"),
            ("del\u{7f}", "del%7F"),
            ("c1\u{85}", "c1%C2%85"),
            (".a.b/", "%2Ea.b%2F"),
        ];
        for (segment, expected) in cases {
            assert_eq!(encode_segment(segment), expected, "encoding {segment:?}");
            assert_eq!(decode_segment(expected).unwrap(), segment);
        }
    }

    #[test]
    fn safe_segments_are_borrowed_unchanged() {
        for segment in ["naïve ✓ key", "a..b", "2026-01", "a:b c", "x."] {
            assert!(matches!(encode_segment(segment), Cow::Borrowed(s) if s == segment));
        }
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        for input in [
            "",       // the empty segment is spelled "%"
            "%2",     // truncated escape
            "a%",     // truncated escape
            "%zz",    // not hex
            "%é0",    // not hex
            "%C3",    // not UTF-8
            "%2e",    // lowercase hex
            "%41",    // unnecessary escape
            "a/b",    // raw separator
            ".x",     // raw leading dot
            "a\0",    // raw control character
            "%2E%2E", // only the leading dot is escaped
        ] {
            let error = decode_segment(input).unwrap_err();
            assert_eq!(error.input(), input);
            assert!(error.to_string().contains(&format!("{input:?}")));
        }
    }
}
