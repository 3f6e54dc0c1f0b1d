//! The one validated path type every Store operation takes.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

/// A validated, store-relative object path: `/`-separated segments, never absolute.
///
/// Parsing rejects anything that could resolve outside the store root or that
/// backends disagree on: an empty path, a leading or trailing `/`, empty
/// segments (`a//b`), `.` and `..` segments, backslashes, and NUL or other
/// control characters. Everything else, unicode and spaces included, is kept
/// as given, so a path means the same object on every backend.
///
/// ```
/// use store_core::StorePath;
///
/// let path: StorePath = "sales/2026-01/report.pkl".parse()?;
/// assert_eq!(path.file_name(), "report.pkl");
/// assert_eq!(path.parent().unwrap().as_str(), "sales/2026-01");
///
/// let err = StorePath::parse("../etc/passwd").unwrap_err();
/// assert!(err.to_string().contains("\"../etc/passwd\""));
/// # Ok::<(), store_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath(String);

impl StorePath {
    /// Validates `path`; the error is [`ErrorKind::InvalidPath`] and quotes it.
    pub fn parse(path: impl Into<String>) -> Result<Self, Error> {
        let path = path.into();
        match invalid_reason(&path) {
            None => Ok(Self(path)),
            Some(reason) => Err(Error::new(ErrorKind::InvalidPath, reason).with_path(path)),
        }
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path without its last segment, or `None` for a single-segment path.
    pub fn parent(&self) -> Option<StorePath> {
        self.0.rsplit_once('/').map(|(parent, _)| Self(parent.to_owned()))
    }

    /// `self` followed by `other`; valid by construction.
    pub fn join(&self, other: &StorePath) -> StorePath {
        Self(format!("{}/{}", self.0, other.0))
    }

    /// `self` with `prefix` and the following `/` removed, if `self` lies strictly under `prefix`.
    pub fn strip_prefix(&self, prefix: &StorePath) -> Option<StorePath> {
        self.0.strip_prefix(prefix.as_str()).and_then(|rest| rest.strip_prefix('/')).map(|rest| Self(rest.to_owned()))
    }

    /// Whether `self` is `prefix` or lies under it (segment-wise: `ab` is not under `a`).
    pub fn starts_with(&self, prefix: &StorePath) -> bool {
        self == prefix || self.strip_prefix(prefix).is_some()
    }
}

/// Why `path` is not a valid [`StorePath`], or `None` if it is.
fn invalid_reason(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("path is empty".into());
    }
    if path.starts_with('/') {
        return Some("path must be relative, not start with '/'".into());
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Some(format!("path contains the control character {c:?}"));
    }
    if path.contains('\\') {
        return Some("path contains a backslash; use '/' to separate segments".into());
    }
    for segment in path.split('/') {
        match segment {
            "" => return Some("path has an empty segment (a trailing '/' or '//')".into()),
            "." | ".." => return Some(format!("path has a {segment:?} segment")),
            _ => {}
        }
    }
    None
}

impl FromStr for StorePath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for StorePath {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for StorePath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl AsRef<str> for StorePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in ["a", "a/b", "a/b.pkl", "naïve ✓/x y", "a..b/.hidden", "...", "%2E"] {
            assert_eq!(StorePath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_with_the_offending_path_quoted() {
        for bad in ["", "/abs", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\\b", "nul\0", "tab\t", "del\u{7f}"] {
            let err = StorePath::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidPath, "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn join_parent_and_prefixes() {
        let a: StorePath = "a".parse().unwrap();
        let ab = a.join(&"b/c".parse().unwrap());
        assert_eq!(ab.as_str(), "a/b/c");
        assert_eq!(ab.strip_prefix(&a).unwrap().as_str(), "b/c");
        assert!(ab.starts_with(&a));
        assert!(!"ab/c".parse::<StorePath>().unwrap().starts_with(&a));
        assert_eq!(a.parent(), None);
        assert_eq!(ab.file_name(), "c");
    }

    /// Resolves `root/path` the way a filesystem or URL would, `..` popping a segment;
    /// `None` if the walk ever climbs above `root`.
    fn resolve_under_root(path: &str) -> Option<Vec<String>> {
        let mut stack: Vec<String> = Vec::new();
        for segment in path.split(['/', '\\']) {
            match segment {
                "" | "." => {}
                ".." => {
                    stack.pop()?;
                }
                s => stack.push(s.to_owned()),
            }
        }
        Some(stack)
    }

    proptest! {
        #[test]
        fn no_accepted_path_escapes_the_root(path in "[a./\\\\\\x00-\\x1f é]{0,16}") {
            if let Ok(p) = StorePath::parse(path.clone()) {
                let resolved = resolve_under_root(p.as_str());
                // Never above the root, and no segment silently collapses: the path is what it says.
                prop_assert_eq!(resolved, Some(p.segments().map(str::to_owned).collect::<Vec<_>>()));
            }
        }

        #[test]
        fn joining_accepted_paths_stays_under_the_root(a in "[a./é]{1,8}", b in "[a./é]{1,8}") {
            if let (Ok(a), Ok(b)) = (StorePath::parse(a), StorePath::parse(b)) {
                let joined = a.join(&b);
                prop_assert!(StorePath::parse(joined.as_str()).is_ok());
                prop_assert_eq!(joined.strip_prefix(&a), Some(b));
            }
        }

        #[test]
        fn arbitrary_strings_parse_or_fail_without_panicking(s in any::<String>()) {
            if let Ok(p) = StorePath::parse(s.clone()) {
                prop_assert_eq!(p.as_str(), s.as_str());
                prop_assert!(resolve_under_root(p.as_str()).is_some());
            }
        }
    }
}
