//! The CRC-32C checksum stored with every object (see [`integrity`](crate::integrity)).

use std::fmt;

use crc_fast::{CrcAlgorithm, Digest};

/// The CRC-32C of an object's bytes.
///
/// ```
/// use io_manager::integrity::Checksum;
/// let checksum = Checksum::of(b"123456789");
/// assert_eq!(checksum.to_string(), "crc32c:e3069283");
/// assert_eq!(Checksum::parse_hex("e3069283"), Some(checksum));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(u32);

impl Checksum {
    /// The checksum of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, data) as u32)
    }

    /// The checksum of the bytes `digest` has been fed.
    pub(crate) fn of_digest(digest: &Digest) -> Self {
        Self(digest.finalize() as u32)
    }

    /// The 8 lowercase hex digits stored in metadata and records.
    pub fn hex(&self) -> String {
        format!("{:08x}", self.0)
    }

    /// Parses [`hex`](Self::hex) output (surrounding whitespace allowed).
    pub fn parse_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        (text.len() == 8).then(|| u32::from_str_radix(text, 16).ok().map(Self)).flatten()
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crc32c:{:08x}", self.0)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
