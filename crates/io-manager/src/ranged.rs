//! Random access to a stored output, each byte verified before it is handed out:
//! what a lazy file object reads through, so that `zipfile`, `tarfile` or a
//! Parquet reader fetches only the parts of a large object it needs.
//!
//! An object the IO manager streamed (larger than one write, or on a backend
//! without object metadata) has its 1 MiB blocks' checksums recorded (see
//! [`crate::blocks`]): reads fetch whole blocks, verify each, and keep the
//! last few. While reads run on sequentially, each fetch takes more blocks
//! ahead (doubling up to 8). An object whose checksum is in its metadata (one
//! write, at most 8 MiB) is read and verified whole when opened; one with
//! nothing recorded (written by another tool) is read range by range, unverified.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
//! use io_manager::{integrity, ranged};
//! use store_core::{Store, WriteMode};
//!
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let path = "models/m.bin".parse()?;
//! integrity::write(&store, &path, "0123456789".into(), WriteMode::Overwrite, None).await?;
//! let mut file = ranged::open(&store, &path, None).await?;
//! assert_eq!(file.size(), 10);
//! assert_eq!(file.read_at(3, 4).await?, "3456");
//! assert_eq!(file.read_at(8, 100).await?, "89");
//! # Ok(()) }
//! ```

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use store_core::{Store, StorePath};

use crate::blocks::{self, Blocks};
use crate::{Error, Owner, integrity};

/// Verified blocks kept for reads that come back to them.
const CACHED_BLOCKS: usize = 16;

/// The most blocks one sequential fetch reads ahead.
const MAX_AHEAD: u64 = 8;

/// A stored object opened for reads at any offset (see the [module](self)).
#[derive(Debug)]
pub struct RangedObject {
    store: Store,
    path: StorePath,
    size: u64,
    source: Source,
    /// Bytes fetched from the store so far.
    fetched: u64,
}

#[derive(Debug)]
enum Source {
    /// Verified block by block.
    Blocks { blocks: Blocks, block_size: u64, cache: VecDeque<(u64, Bytes)>, next: u64, ahead: u64 },
    /// Read and verified whole when opened.
    Whole(Bytes),
    /// Nothing recorded to verify against: ranged reads as they come.
    Unverified,
}

/// The object at `path` (recorded as `owner`'s, if given), opened for ranged reads.
///
/// # Errors
///
/// What the store reports (a missing object is `NotFound`); for an object read
/// whole, [`Error::ChecksumMismatch`] and [`Error::OwnedByAnother`] as [`integrity::read`].
pub async fn open(store: &Store, path: &StorePath, owner: Option<&Owner>) -> Result<RangedObject, Error> {
    if let Some(blocks) = blocks::open(store, path, owner).await? {
        let (size, block_size) = (blocks.size(), blocks.block_size());
        let source = Source::Blocks { blocks, block_size, cache: VecDeque::new(), next: u64::MAX, ahead: 1 };
        return Ok(RangedObject { store: store.clone(), path: path.clone(), size, source, fetched: 0 });
    }
    let (meta, metadata) = store.head_with_metadata(path).await?;
    let recorded =
        metadata.contains_key(integrity::METADATA_KEY) || !integrity::record_paths(store, path).await?.is_empty();
    let source = if recorded { Source::Whole(integrity::read(store, path, owner).await?) } else { Source::Unverified };
    let (size, fetched) = match &source {
        Source::Whole(data) => (data.len() as u64, data.len() as u64),
        _ => (meta.size, 0),
    };
    Ok(RangedObject { store: store.clone(), path: path.clone(), size, source, fetched })
}

impl RangedObject {
    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's path.
    pub fn path(&self) -> &StorePath {
        &self.path
    }

    /// How many bytes were fetched from the store so far: what reads cost.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// Up to `len` bytes from `offset` (fewer at the end of the object, none past it).
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumMismatch`] for a block that is not what was recorded (the
    /// object changed since it was opened), and what the store reports.
    pub async fn read_at(&mut self, offset: u64, len: usize) -> Result<Bytes, Error> {
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        match &mut self.source {
            Source::Whole(data) => Ok(data.slice(offset as usize..end as usize)),
            Source::Unverified => {
                self.fetched += end - offset;
                Ok(self.store.read_range(&self.path, offset..end).await?)
            }
            Source::Blocks { blocks, block_size, cache, next, ahead } => {
                let block_size = *block_size;
                let (first, last) = (offset / block_size, (end - 1) / block_size);
                // Reads that go on where the last one ended fetch further ahead each time.
                *ahead = if offset == *next { (*ahead * 2).min(MAX_AHEAD) } else { 1 };
                *next = end;
                let missing: Vec<u64> =
                    (first..=last).filter(|index| !cache.iter().any(|(cached, _)| cached == index)).collect();
                if let (Some(&from), Some(&to)) = (missing.first(), missing.last()) {
                    let last_block = (self.size - 1) / block_size;
                    let to = to.max(from + *ahead - 1).min(last_block);
                    let range = from * block_size..((to + 1) * block_size).min(self.size);
                    blocks.forget();
                    for (start, data) in blocks.read(&[range], MAX_AHEAD as usize).await? {
                        self.fetched += data.len() as u64;
                        cache.push_back((start / block_size, data));
                    }
                }
                let mut out = BytesMut::with_capacity((end - offset) as usize);
                for index in first..=last {
                    let (_, data) = cache.iter().find(|(cached, _)| *cached == index).expect("fetched above");
                    let start = index * block_size;
                    let from = offset.max(start) - start;
                    let to = end.min(start + data.len() as u64) - start;
                    out.extend_from_slice(&data[from as usize..to as usize]);
                }
                // The blocks just read stay; the oldest go.
                while cache.len() > CACHED_BLOCKS.max((last - first + 1) as usize) {
                    cache.pop_front();
                }
                Ok(out.freeze())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use store_core::WriteMode;

    use super::*;
    use crate::blocks::BLOCK_SIZE;

    fn data(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>().into()
    }

    async fn streamed(store: &Store, path: &StorePath, data: Bytes) {
        let chunks = data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
        let chunks = Box::pin(futures::stream::iter(chunks));
        integrity::write_stream(store, path, chunks, WriteMode::Overwrite, None).await.unwrap();
    }

    #[tokio::test]
    async fn large_objects_read_verified_blocks_at_any_offset() {
        let store = Store::new(store_backends::MemoryBackend::new());
        let path: StorePath = "big.bin".parse().unwrap();
        let whole = data(20 * BLOCK_SIZE as usize + 123);
        streamed(&store, &path, whole.clone()).await;
        let mut file = open(&store, &path, None).await.unwrap();
        assert!(matches!(file.source, Source::Blocks { .. }));
        for (offset, len) in
            [(0, 10), (BLOCK_SIZE - 5, 10), (whole.len() as u64 - 50, 100), (3, 3 * BLOCK_SIZE as usize)]
        {
            let got = file.read_at(offset, len).await.unwrap();
            let end = (offset as usize + len).min(whole.len());
            assert_eq!(got, whole.slice(offset as usize..end), "{offset}+{len}");
        }
        // Sequential reads of the whole object, in small pieces.
        let mut at = 0;
        let mut read = BytesMut::new();
        while at < whole.len() as u64 {
            let got = file.read_at(at, 300_000).await.unwrap();
            at += got.len() as u64;
            read.extend_from_slice(&got);
        }
        assert_eq!(read.freeze(), whole);
    }

    #[tokio::test]
    async fn a_changed_block_is_an_error_not_data() {
        let store = Store::new(store_backends::MemoryBackend::new());
        let path: StorePath = "big.bin".parse().unwrap();
        let whole = data(10 * BLOCK_SIZE as usize);
        streamed(&store, &path, whole.clone()).await;
        let mut file = open(&store, &path, None).await.unwrap();
        let mut changed = whole.to_vec();
        changed[BLOCK_SIZE as usize + 9] ^= 1;
        store.write(&path, changed.into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(file.read_at(0, 10).await.unwrap(), whole.slice(0..10));
        let err = file.read_at(BLOCK_SIZE, 10).await.unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn objects_of_other_tools_read_unverified() {
        let store = Store::new(store_backends::MemoryBackend::new());
        let path: StorePath = "foreign.bin".parse().unwrap();
        store.write(&path, "abcdef".into(), WriteMode::Overwrite).await.unwrap();
        let mut file = open(&store, &path, None).await.unwrap();
        assert!(matches!(file.source, Source::Unverified));
        assert_eq!(file.read_at(2, 2).await.unwrap(), "cd");
    }
}
