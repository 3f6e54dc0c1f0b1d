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
    if candidates.is_empty() {
        return Ok(None);
    }
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
        let fetched: Vec<(u64, Bytes)> = stream::iter(runs)
            .map(|run| async move {
                let start = run.start * block_size;
                let data = store.read_range(path, start..(run.end * block_size).min(size)).await?;
                Ok::<_, Error>((run.start, data))
            })
            .buffered(max_concurrency.max(1))
            .try_collect()
            .await?;
        let mut pieces = Vec::new();
        for (first, data) in fetched {
            for (i, block) in (first..).zip(data.chunks(block_size as usize)) {
                self.verify(i, Checksum::of(block))?;
                pieces.push((i * block_size, data.slice_ref(block)));
            }
        }
        let recorded = self.candidates[0].1.as_deref();
        integrity::owned(&self.store, &self.path, self.owner.as_ref(), recorded)?;
        Ok(pieces)
    }

    /// Keeps the candidates whose block `index` has checksum `actual`; none left is a mismatch.
    fn verify(&mut self, index: u64, actual: Checksum) -> Result<(), Error> {
        let recorded = |(blocks, _): &(BlockChecksums, Option<String>)| blocks.checksums.get(index as usize).copied();
        let first = recorded(&self.candidates[0]);
        self.candidates.retain(|candidate| recorded(candidate) == Some(actual));
        if self.candidates.is_empty() {
            let stored = first.map_or_else(|| "none".to_owned(), |c| c.to_string());
            let (path, uri) = (self.path.clone(), self.store.uri(&self.path));
            let stored = format!("{stored} (block {index} of {BLOCK_SIZE} bytes)");
            return Err(Error::ChecksumMismatch { path, uri, stored, actual });
        }
        Ok(())
    }
}
