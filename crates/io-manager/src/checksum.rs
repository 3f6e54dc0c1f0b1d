//! The CRC-32C checksum stored with every object (see [`integrity`](crate::integrity)),
//! and those of its blocks (see [`blocks`](crate::blocks)).

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

/// Size of the blocks whose checksums a record lists.
pub const BLOCK_SIZE: u64 = 1 << 20;

/// What a record's block line starts with.
const LINE_PREFIX: &str = "blocks ";

/// The checksums of an object's blocks, in order (the last block may be shorter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockChecksums {
    pub(crate) size: u64,
    pub(crate) block_size: u64,
    pub(crate) checksums: Vec<Checksum>,
}

impl BlockChecksums {
    /// The block checksums of `data`.
    ///
    /// ```
    /// use io_manager::blocks::{BLOCK_SIZE, BlockChecksums};
    /// let data = vec![7u8; BLOCK_SIZE as usize + 1];
    /// assert_eq!(BlockChecksums::of(&data).len(), 2);
    /// ```
    pub fn of(data: &[u8]) -> Self {
        let checksums = data.chunks(BLOCK_SIZE as usize).map(Checksum::of).collect();
        Self { size: data.len() as u64, block_size: BLOCK_SIZE, checksums }
    }

    /// How many blocks.
    pub fn len(&self) -> usize {
        self.checksums.len()
    }

    /// Whether the object is empty.
    pub fn is_empty(&self) -> bool {
        self.checksums.is_empty()
    }

    /// The line a record holds them in: `blocks <size> <block size> <hex digits of each>`.
    pub(crate) fn line(&self) -> String {
        let hex: String = self.checksums.iter().map(Checksum::hex).collect();
        format!("{LINE_PREFIX}{} {} {hex}", self.size, self.block_size)
    }

    /// Parses [`line`](Self::line); `None` for any other line.
    pub(crate) fn parse_line(line: &str) -> Option<Self> {
        let mut fields = line.trim().strip_prefix(LINE_PREFIX)?.split(' ');
        let size: u64 = fields.next()?.parse().ok()?;
        let block_size: u64 = fields.next()?.parse().ok().filter(|&b| b > 0)?;
        let hex = fields.next().unwrap_or("");
        let checksums: Option<Vec<Checksum>> =
            (0..hex.len() / 8).map(|i| hex.get(i * 8..i * 8 + 8).and_then(Checksum::parse_hex)).collect();
        let checksums = checksums.filter(|c| hex.len() % 8 == 0 && c.len() as u64 == size.div_ceil(block_size))?;
        Some(Self { size, block_size, checksums })
    }
}

/// Block checksums computed as a stream's chunks pass.
pub(crate) struct BlockDigest {
    done: Vec<Checksum>,
    current: Digest,
    in_current: u64,
    size: u64,
}

impl Default for BlockDigest {
    fn default() -> Self {
        Self { done: Vec::new(), current: Digest::new(CrcAlgorithm::Crc32Iscsi), in_current: 0, size: 0 }
    }
}

impl BlockDigest {
    pub(crate) fn update(&mut self, mut chunk: &[u8]) {
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let take = chunk.len().min((BLOCK_SIZE - self.in_current) as usize);
            self.current.update(&chunk[..take]);
            self.in_current += take as u64;
            chunk = &chunk[take..];
            if self.in_current == BLOCK_SIZE {
                self.done.push(Checksum::of_digest(&self.current));
                self.current = Digest::new(CrcAlgorithm::Crc32Iscsi);
                self.in_current = 0;
            }
        }
    }

    pub(crate) fn checksums(&self) -> BlockChecksums {
        let mut checksums = self.done.clone();
        if self.in_current > 0 {
            checksums.push(Checksum::of_digest(&self.current));
        }
        BlockChecksums { size: self.size, block_size: BLOCK_SIZE, checksums }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_checksums_survive_their_record_line_and_match_a_streamed_digest() {
        let data: Vec<u8> = (0..(5 * BLOCK_SIZE / 2) as u32).map(|i| (i % 253) as u8).collect();
        let whole = BlockChecksums::of(&data);
        assert_eq!(whole.len(), 3);
        let mut digest = BlockDigest::default();
        for piece in data.chunks(300_001) {
            digest.update(piece);
        }
        assert_eq!(digest.checksums(), whole);
        assert_eq!(BlockChecksums::parse_line(&whole.line()), Some(whole.clone()));
        assert_eq!(BlockChecksums::parse_line(&BlockChecksums::of(b"").line()), Some(BlockChecksums::of(b"")));
        let short = whole.line()[..whole.line().len() - 8].to_owned();
        assert_eq!(BlockChecksums::parse_line(&short), None, "a block missing");
        assert_eq!(BlockChecksums::parse_line("dagster_asset sales"), None);
    }
}
