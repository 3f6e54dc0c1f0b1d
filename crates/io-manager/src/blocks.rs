//! Parts of a large object, read on their own and still verified.
//!
//! Besides an object's checksum and owner, its record (see
//! [`integrity`]) lists the checksum of each of its blocks of
//! [`BLOCK_SIZE`] bytes. A reader that wants some byte ranges of the object (the
//! columns of a Parquet file) fetches only the blocks that hold them, with
//! ranged reads, and verifies each block against its recorded checksum. Objects
//! whose checksum lives in their metadata (one-request writes, up to
//! [`SINGLE_WRITE_LIMIT`](crate::integrity::SINGLE_WRITE_LIMIT)) and objects
//! written before block checksums have no block list: read them whole.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
//! use futures::stream::{self, StreamExt};
//! use io_manager::{blocks, integrity};
//! use store_core::{Store, WriteMode};
//!
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let path = "large.bin".parse()?;
//! let data: Vec<u8> = (0..10u32 << 20).map(|i| (i % 251) as u8).collect();
//! let chunks = stream::iter(data.chunks(1 << 20).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect::<Vec<_>>());
//! integrity::write_stream(&store, &path, chunks.boxed(), WriteMode::Overwrite, None).await?;
//!
//! let mut object = blocks::open(&store, &path, None).await?.expect("a streamed write records its blocks");
//! let pieces = object.read(&[5_000_000..5_000_010], 4).await?;
//! let (start, block) = &pieces[0];
//! let at = (5_000_000 - start) as usize;
//! assert_eq!(&block[at..at + 10], &data[5_000_000..5_000_010]);
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::ops::Range;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use store_core::{Store, StorePath};

use crate::checksum::Checksum;
pub use crate::checksum::{BLOCK_SIZE, BlockChecksums};
use crate::integrity::{self, METADATA_KEY};
use crate::{Error, Owner};

/// Blocks fetched in one ranged read at most, so that a long run of them is
/// still fetched by several requests at once.
const BLOCKS_PER_READ: u64 = 8;

/// An object whose blocks are read on demand, each verified (see [`open`]).
#[derive(Debug)]
pub struct Blocks {
    store: Store,
    path: StorePath,
    size: u64,
    /// The records of this size that list blocks, each with its owner: the object is the
    /// one whose blocks match what was read so far.
    candidates: Vec<(BlockChecksums, Option<String>)>,
    owner: Option<Owner>,
    /// The blocks read so far.
    held: BTreeSet<u64>,
}

/// The object at `path`, to read block by block; `None` when no record lists its
/// blocks (read it whole then, with [`integrity::read`]).
///
/// # Errors
///
/// What the store reports (a missing object is `NotFound`).
pub async fn open(store: &Store, path: &StorePath, owner: Option<&Owner>) -> Result<Option<Blocks>, Error> {
    let (meta, metadata) = store.head_with_metadata(path).await?;
    if metadata.contains_key(METADATA_KEY) {
        return Ok(None);
    }
    let candidates: Vec<_> = integrity::recorded_blocks(store, path)
        .await?
        .into_iter()
        .filter(|(blocks, _)| blocks.size == meta.size)
        .collect();
    let Some(block_size) = candidates.first().map(|(blocks, _)| blocks.block_size) else { return Ok(None) };
    // Blocks are compared by index: only lists of one block size can be told apart that way.
    let candidates = candidates.into_iter().filter(|(blocks, _)| blocks.block_size == block_size).collect();
    Ok(Some(Blocks {
        store: store.clone(),
        path: path.clone(),
        size: meta.size,
        candidates,
        owner: owner.cloned(),
        held: BTreeSet::new(),
    }))
}

impl Blocks {
    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The size of its blocks in bytes (the last one may be shorter).
    pub fn block_size(&self) -> u64 {
        self.candidates[0].0.block_size
    }

    /// Lets [`read`](Self::read) return blocks it returned before: for a reader
    /// that keeps only some of them.
    pub fn forget(&mut self) {
        self.held.clear();
    }

    /// The whole blocks that hold `ranges` and were not read before, each with the
    /// offset it starts at, in order; fetched `max_concurrency` ranged reads at once (adjacent blocks in one
    /// read) and each verified against its recorded checksum.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumMismatch`] for a block whose checksum is not the recorded one
    /// (the object was changed, or replaced since [`open`]), [`Error::OwnedByAnother`]
    /// for an object recorded as another owner's, and what the store reports.
    pub async fn read(&mut self, ranges: &[Range<u64>], max_concurrency: usize) -> Result<Vec<(u64, Bytes)>, Error> {
        let block_size = self.candidates[0].0.block_size;
        let wanted: BTreeSet<u64> = ranges
            .iter()
            .filter(|range| range.start < range.end)
            .flat_map(|range| range.start / block_size..range.end.min(self.size).div_ceil(block_size))
            .filter(|block| !self.held.contains(block))
            .collect();
        self.held.extend(wanted.iter().copied());
        let mut runs: Vec<Range<u64>> = Vec::new();
        for block in wanted {
            match runs.last_mut() {
                Some(run) if run.end == block && run.end - run.start < BLOCKS_PER_READ => run.end = block + 1,
                _ => runs.push(block..block + 1),
            }
        }
        let (store, path, size) = (&self.store, &self.path, self.size);
        let fetched: Vec<(Range<u64>, Bytes)> = stream::iter(runs)
            .map(|run| async move {
                let bytes = run.start * block_size..(run.end * block_size).min(size);
                let data = store.read_range(path, bytes).await?;
                Ok::<_, Error>((run, data))
            })
            .buffered(max_concurrency.max(1))
            .try_collect()
            .await?;
        let mut pieces = Vec::new();
        for (run, data) in fetched {
            // Fewer bytes than asked for: the object was replaced by a shorter one since `open`.
            if data.len() as u64 != (run.end * block_size).min(size) - run.start * block_size {
                return Err(self.mismatch(run.start, Checksum::of(&data)));
            }
            for (i, block) in (run.start..).zip(data.chunks(block_size as usize)) {
                self.verify(i, Checksum::of(block))?;
                pieces.push((i * block_size, data.slice_ref(block)));
            }
        }
        let recorded = self.candidates[0].1.as_deref();
        integrity::owned(&self.store, &self.path, self.owner.as_ref(), recorded)?;
        Ok(pieces)
    }

    /// Keeps the candidates whose block `index` has checksum `actual`; none left is a mismatch
    /// (one is always left: a read that matches none fails and keeps them).
    fn verify(&mut self, index: u64, actual: Checksum) -> Result<(), Error> {
        let matches =
            |(blocks, _): &(BlockChecksums, Option<String>)| blocks.checksums.get(index as usize) == Some(&actual);
        if !self.candidates.iter().any(matches) {
            return Err(self.mismatch(index, actual));
        }
        self.candidates.retain(matches);
        Ok(())
    }

    /// Block `index` read with checksum `actual` is not the recorded one.
    fn mismatch(&self, index: u64, actual: Checksum) -> Error {
        let recorded = self.candidates[0].0.checksums.get(index as usize);
        let stored = recorded.map_or_else(|| "none".to_owned(), Checksum::to_string);
        let stored = format!("{stored} (block {index} of {BLOCK_SIZE} bytes)");
        Error::ChecksumMismatch { path: self.path.clone(), uri: self.store.uri(&self.path), stored, actual }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;
    use store_core::WriteMode;

    use super::*;

    #[tokio::test]
    async fn blocks_changed_or_cut_short_since_open_are_a_mismatch_never_bytes() {
        let store = Store::new(store_backends::MemoryBackend::new());
        let path: StorePath = "large.bin".parse().unwrap();
        let data: Vec<u8> = (0..10u32 << 20).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<_> = data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        integrity::write_stream(&store, &path, stream::iter(chunks).boxed(), WriteMode::Overwrite, None).await.unwrap();
        let mismatch = |read: Result<Vec<(u64, Bytes)>, Error>, block: &str| {
            let err = read.map(|pieces| pieces.len()).expect_err("blocks read");
            assert!(matches!(&err, Error::ChecksumMismatch { stored, .. } if stored.contains(block)), "{err}");
        };
        let byte = |at: u64| at..at + 1;

        let mut object = open(&store, &path, None).await.unwrap().unwrap();
        let mut changed = data.clone();
        changed[3 << 20] ^= 1;
        store.write(&path, changed.into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(object.read(std::slice::from_ref(&byte(0)), 4).await.unwrap()[0].1, data[..1 << 20]);
        mismatch(object.read(std::slice::from_ref(&byte(3 << 20)), 4).await, "block 3 ");

        // Replaced by an object that ends where block 5 began: blocks 4 and 5, read together,
        // come back as block 4 alone.
        let mut object = open(&store, &path, None).await.unwrap().unwrap();
        store.write(&path, Bytes::copy_from_slice(&data[..5 << 20]), WriteMode::Overwrite).await.unwrap();
        let blocks_4_and_5 = (9 << 19)..(11 << 19);
        mismatch(object.read(std::slice::from_ref(&blocks_4_and_5), 4).await, "block 4 ");
    }
}
