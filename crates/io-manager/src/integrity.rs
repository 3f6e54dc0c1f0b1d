//! Checksums stored with every object the IO manager writes and verified on
//! every load, so corrupt data is an error, never a value, and an interrupted
//! write never leaves an object that cannot be loaded.
//!
//! The checksum is CRC-32C (Castagnoli, hardware-accelerated; the checksum
//! Google Cloud Storage and S3 use for objects). It is kept in one of two places:
//! - in the object's own metadata (`crc32c`, 8 hex digits), where the backend
//!   stores metadata (S3, Azure, GCS, memory, and local files as an extended
//!   attribute) and the object goes up in one request (up to
//!   [`SINGLE_WRITE_LIMIT`]): written in the same atomic write as the data;
//! - else in a *record* beside it, `<path>.checksums/crc32c-<hex>` (SFTP, local
//!   filesystems without extended attributes, and every stream larger than
//!   [`SINGLE_WRITE_LIMIT`], whose checksum is known only at its end). The
//!   record is written after the last byte and *before* the object is
//!   published, so whenever a writer stops (an error, a panic, a killed
//!   process, a server gone) the path holds an object whose checksum is
//!   recorded: the old one, or the new one. A record is named by the checksum
//!   it holds, so writers racing on one path never overwrite each other's
//!   records, and whichever object wins has its record. Each write then
//!   removes the records of objects superseded more than [`RECORD_GRACE`] ago.
//!
//! A load computes the checksum of what it read and looks for it: in the
//! object's metadata when that holds one, else among the records. An object
//! whose checksum is not recorded while others are is corrupt
//! ([`Error::ChecksumMismatch`]); one with nothing recorded (written by another
//! tool) loads unverified. The single sidecar `<path>.crc32c` of earlier
//! versions is still accepted, and removed by the next write.
//!
//! The [`Owner`] of an object (the asset key and partition the IO manager
//! writes it for) goes where its checksum goes: metadata key `dagster_asset`,
//! or the record's second line (its third lists the object's
//! [`blocks`](crate::blocks)). A write given an owner first checks the owner
//! recorded for the object at the path, and a load given one checks the owner
//! recorded with the checksum it found; another owner is
//! [`Error::OwnedByAnother`], never a value and never an overwrite. Objects with
//! no owner recorded (older versions, other tools) are accepted.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
//! use io_manager::integrity::{self, Checksum};
//! use store_core::{Store, WriteMode};
//!
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let path = "daily/2026-01-01.json".parse()?;
//! let written = integrity::write(&store, &path, "[1, 2]".into(), WriteMode::Overwrite, None).await?;
//! assert_eq!(written.checksum, Checksum::of(b"[1, 2]"));
//! assert_eq!(integrity::read(&store, &path, None).await?, "[1, 2]");
//!
//! // Bytes changed behind the IO manager's back (the recorded checksum kept) are refused.
//! let (_, metadata) = store.read_with_metadata(&path).await?;
//! store.write_with_metadata(&path, "[1, 3]".into(), WriteMode::Overwrite, &metadata).await?;
//! let err = integrity::read(&store, &path, None).await.unwrap_err();
//! assert!(matches!(err, io_manager::Error::ChecksumMismatch { .. }), "{err}");
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest};
use futures::future;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use store_core::buffer::{Gathered, gather};
use store_core::{ErrorKind, ListEntry, Metadata, Store, StorePath, WriteMode, WriteResult};

pub use crate::checksum::Checksum;
use crate::checksum::{BlockChecksums, BlockDigest};
use crate::{Error, Owner};

/// Metadata key of the checksum, where the backend keeps object metadata.
pub const METADATA_KEY: &str = "crc32c";

/// Metadata key of the object's [`Owner`], beside [`METADATA_KEY`].
pub const OWNER_METADATA_KEY: &str = "dagster_asset";

/// What the folder of an object's checksum records adds to the object's path.
pub const RECORDS_SUFFIX: &str = ".checksums";

/// What the single sidecar of earlier versions added to the object's path;
/// loads still accept one, writes remove it.
pub const SIDECAR_SUFFIX: &str = ".crc32c";

/// Streams up to this size are gathered and written in one request, checksum
/// in the object's metadata where the backend keeps metadata; longer streams
/// are uploaded as they come, with a record.
pub const SINGLE_WRITE_LIMIT: usize = 8 << 20;

/// How long the record of a superseded object is kept after the object that
/// superseded it was recorded: long enough for a load that began before the
/// replacement to finish, and for a writer whose record is already written to
/// publish its object, so that neither finds its record gone.
pub const RECORD_GRACE: Duration = Duration::from_secs(15 * 60);

/// What a record's name puts before the checksum's hex digits.
const RECORD_PREFIX: &str = "crc32c-";

/// What a checked write stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// What the backend reported.
    pub result: WriteResult,
    /// Checksum of the stored bytes.
    pub checksum: Checksum,
    /// Size of the stored bytes.
    pub size: u64,
}

/// The folder of the checksum records of the object at `path`.
///
/// ```
/// use io_manager::integrity::{self, Checksum};
/// let path = "sales/daily.pkl".parse().unwrap();
/// assert_eq!(integrity::records(&path).as_str(), "sales/daily.pkl.checksums");
/// let record = integrity::record(&path, Checksum::of(b"123456789"));
/// assert_eq!(record.as_str(), "sales/daily.pkl.checksums/crc32c-e3069283");
/// ```
pub fn records(path: &StorePath) -> StorePath {
    StorePath::parse(format!("{path}{RECORDS_SUFFIX}")).expect("a valid path plus a plain suffix is a valid path")
}

/// The record of `checksum` for the object at `path`.
pub fn record(path: &StorePath, checksum: Checksum) -> StorePath {
    let name = StorePath::parse(format!("{RECORD_PREFIX}{}", checksum.hex())).expect("a plain name is a valid path");
    records(path).join(&name)
}

/// Where earlier versions kept the checksum of the object at `path`.
pub fn sidecar(path: &StorePath) -> StorePath {
    StorePath::parse(format!("{path}{SIDECAR_SUFFIX}")).expect("a valid path plus a plain suffix is a valid path")
}

/// The checksum records of the object at `path`, and the sidecar of earlier
/// versions if there is one: what goes with the object when it is deleted.
pub async fn record_paths(store: &Store, path: &StorePath) -> Result<Vec<StorePath>, Error> {
    let mut paths: Vec<StorePath> = list_records(store, path).await?.into_iter().map(|record| record.path).collect();
    if store.exists(&sidecar(path)).await? {
        paths.push(sidecar(path));
    }
    Ok(paths)
}

/// Stores `data` at `path` atomically, with its checksum and `owner`; an
/// object of another owner at `path` is [`Error::OwnedByAnother`] and stays.
pub async fn write(
    store: &Store,
    path: &StorePath,
    data: Bytes,
    mode: WriteMode,
    owner: Option<&Owner>,
) -> Result<Written, Error> {
    check_owner(store, path, owner).await?;
    write_checked(store, path, data, mode, owner).await
}

/// [`write`], once the owner is checked.
async fn write_checked(
    store: &Store,
    path: &StorePath,
    data: Bytes,
    mode: WriteMode,
    owner: Option<&Owner>,
) -> Result<Written, Error> {
    let checksum = Checksum::of(&data);
    let size = data.len() as u64;
    let result = if store.stores_metadata() {
        let mut metadata = Metadata::from([(METADATA_KEY.to_owned(), checksum.hex())]);
        if let Some(owner) = owner {
            metadata.insert(OWNER_METADATA_KEY.to_owned(), owner.stored());
        }
        store.write_with_metadata(path, data, mode, &metadata).await?
    } else {
        let blocks = BlockChecksums::of(&data);
        write_record(store, path, checksum, owner, Some(&blocks)).await?;
        let result = store.write(path, data, mode).await?;
        tidy_records(store, path, checksum, owner, Some(&blocks)).await?;
        result
    };
    Ok(Written { result, checksum, size })
}

/// Stores what `data` yields at `path` atomically, with its checksum; memory
/// stays bounded by the backend's multipart buffers, whatever the size. A
/// stream that fails stores nothing; owners as for [`write()`].
pub async fn write_stream(
    store: &Store,
    path: &StorePath,
    data: BoxStream<'static, store_core::Result<Bytes>>,
    mode: WriteMode,
    owner: Option<&Owner>,
) -> Result<Written, Error> {
    check_owner(store, path, owner).await?;
    let data = match gather(data, SINGLE_WRITE_LIMIT).await? {
        Gathered::Whole(data) => return write_checked(store, path, data, mode, owner).await,
        Gathered::Streaming(data) => data,
    };
    let digest = Arc::new(Running::with_blocks());
    let hashed = digest.clone();
    let chunks = data.inspect_ok(move |chunk| hashed.update(chunk));
    // Polled after the last chunk, before the backend publishes the object.
    let (record_store, record_path, recorded) = (store.clone(), path.clone(), digest.clone());
    let record_owner = owner.cloned();
    let record = stream::once(async move {
        let (checksum, blocks) = (recorded.checksum(), recorded.blocks());
        write_record(&record_store, &record_path, checksum, record_owner.as_ref(), blocks.as_ref()).await.err()
    })
    .filter_map(|failed| future::ready(failed.map(Err)));
    let result = store.write_stream(path, chunks.chain(record).boxed(), mode).await?;
    let (checksum, size) = (digest.checksum(), digest.size());
    tidy_records(store, path, checksum, owner, digest.blocks().as_ref()).await?;
    Ok(Written { result, checksum, size })
}

/// The checksum and size of a stream (and for a write, its block checksums), as
/// its chunks pass; shared by the stream that feeds it and the code that reads
/// it once the stream has ended.
#[derive(Default)]
struct Running(Mutex<(Option<Digest>, u64, Option<BlockDigest>)>);

impl Running {
    fn with_blocks() -> Self {
        Self(Mutex::new((None, 0, Some(BlockDigest::default()))))
    }

    fn update(&self, chunk: &[u8]) {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running.0.get_or_insert_with(|| Digest::new(CrcAlgorithm::Crc32Iscsi)).update(chunk);
        running.1 += chunk.len() as u64;
        if let Some(blocks) = &mut running.2 {
            blocks.update(chunk);
        }
    }

    fn checksum(&self) -> Checksum {
        let running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running.0.as_ref().map_or_else(|| Checksum::of(b""), Checksum::of_digest)
    }

    fn size(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn blocks(&self) -> Option<BlockChecksums> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).2.as_ref().map(BlockDigest::checksums)
    }
}

/// The object at `path`, verified against its recorded checksum and, given
/// `owner`, its recorded owner.
///
/// A mismatch is [`Error::ChecksumMismatch`], naming the path and both
/// checksums; an object with no recorded checksum is returned unverified.
/// An object recorded as another owner's is [`Error::OwnedByAnother`].
pub async fn read(store: &Store, path: &StorePath, owner: Option<&Owner>) -> Result<Bytes, Error> {
    let mut again = false;
    loop {
        let (data, metadata) = store.read_with_metadata(path).await?;
        match verify(store, path, &metadata, Checksum::of(&data), owner).await {
            // An object replaced while it was read may find its record already
            // tidied away by the writer that replaced it: read the new one.
            Err(Error::ChecksumMismatch { .. }) if !again => again = true,
            verified => return verified.map(|()| data),
        }
    }
}

/// The object at `path` as a stream whose checksum is computed on the way;
/// [`CheckedStream::verify`], once the stream is drained, compares it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
/// use futures::TryStreamExt;
/// use io_manager::integrity;
/// use store_core::{Store, WriteMode};
///
/// let store = Store::new(store_backends::MemoryBackend::new());
/// let path = "big.bin".parse()?;
/// integrity::write(&store, &path, "0123456789".into(), WriteMode::Overwrite, None).await?;
/// let mut object = integrity::read_stream(&store, &path, None).await?;
/// assert_eq!(object.size, Some(10));
/// let chunks: Vec<_> = (&mut object.chunks).try_collect().await?;
/// assert_eq!(chunks.concat(), b"0123456789");
/// object.verify().await?;
/// # Ok(()) }
/// ```
pub async fn read_stream(store: &Store, path: &StorePath, owner: Option<&Owner>) -> Result<CheckedStream, Error> {
    let object = store.read_stream_with_metadata(path).await?;
    let running = Arc::new(Running::default());
    let hashed = running.clone();
    let chunks = object.chunks.inspect_ok(move |chunk| hashed.update(chunk));
    Ok(CheckedStream {
        size: object.size,
        chunks: chunks.boxed(),
        store: store.clone(),
        path: path.clone(),
        metadata: object.metadata,
        running,
        owner: owner.cloned(),
    })
}

/// An object being read, its checksum computed as its chunks pass (see [`read_stream`]).
pub struct CheckedStream {
    /// Size in bytes, where the backend knows it up front.
    pub size: Option<u64>,
    /// The object's bytes; drain them before [`verify`](Self::verify).
    pub chunks: BoxStream<'static, store_core::Result<Bytes>>,
    store: Store,
    path: StorePath,
    metadata: Metadata,
    running: Arc<Running>,
    owner: Option<Owner>,
}

impl CheckedStream {
    /// The object's path.
    pub fn path(&self) -> &StorePath {
        &self.path
    }

    /// Compares what passed through [`chunks`](Self::chunks) with the recorded
    /// checksum; an object with none passes. Fewer bytes than the object's size
    /// (chunks not drained, or a read that failed) are refused, not compared.
    pub async fn verify(self) -> Result<(), Error> {
        let read = self.running.size();
        if let Some(size) = self.size.filter(|size| *size != read) {
            let message = format!("only {read} of the object's {size} bytes were read, so it cannot be verified");
            return Err(store_core::Error::new(ErrorKind::Other, message).with_path(self.path.to_string()).into());
        }
        verify(&self.store, &self.path, &self.metadata, self.running.checksum(), self.owner.as_ref()).await
    }
}

/// Whether `actual`, the checksum of the object read at `path` with `metadata`,
/// is the one recorded for it, and `owner` (if given) the owner recorded with it.
async fn verify(
    store: &Store,
    path: &StorePath,
    metadata: &Metadata,
    actual: Checksum,
    owner: Option<&Owner>,
) -> Result<(), Error> {
    let mismatch = |stored| Error::ChecksumMismatch { path: path.clone(), uri: store.uri(path), stored, actual };
    if let Some(text) = metadata.get(METADATA_KEY) {
        if Checksum::parse_hex(text) != Some(actual) {
            return Err(mismatch(describe(text)));
        }
        return owned(store, path, owner, metadata.get(OWNER_METADATA_KEY).map(String::as_str));
    }
    if let Some(recorded) = read_record(store, &record(path, actual)).await? {
        return owned(store, path, owner, recorded.owner.as_deref());
    }
    let legacy = read_sidecar(store, path).await?;
    if legacy.as_deref().and_then(Checksum::parse_hex) == Some(actual) {
        return Ok(());
    }
    let newest = list_records(store, path).await?.into_iter().max_by_key(|record| record.written);
    match (newest, legacy) {
        (Some(record), _) => Err(mismatch(record.checksum.to_string())),
        (None, Some(text)) => Err(mismatch(describe(&text))),
        // Nothing recorded: an object written by another tool.
        (None, None) => Ok(()),
    }
}

/// A recorded checksum as the mismatch error shows it.
fn describe(text: &str) -> String {
    match Checksum::parse_hex(text) {
        Some(checksum) => checksum.to_string(),
        None => format!("unreadable {text:?}"),
    }
}

/// One checksum record, as listed.
#[derive(Debug, Clone)]
struct Record {
    checksum: Checksum,
    path: StorePath,
    written: Option<SystemTime>,
}

/// The records of the object at `path`.
async fn list_records(store: &Store, path: &StorePath) -> store_core::Result<Vec<Record>> {
    let entries: Vec<ListEntry> = store.list(Some(&records(path)), true).try_collect().await?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| match entry {
            ListEntry::Object(meta) => {
                let checksum = meta.path.file_name().strip_prefix(RECORD_PREFIX).and_then(Checksum::parse_hex)?;
                Some(Record { checksum, path: meta.path, written: meta.last_modified })
            }
            ListEntry::Prefix(_) => None,
        })
        .collect())
}

/// Records `checksum` (and `owner`, and `blocks`) for the object at `path`: the
/// checksum's hex digits on the first line, the owner's stored form (or nothing)
/// on the second, the block checksums on the third (see [`blocks`](crate::blocks)).
async fn write_record(
    store: &Store,
    path: &StorePath,
    checksum: Checksum,
    owner: Option<&Owner>,
    blocks: Option<&BlockChecksums>,
) -> store_core::Result<()> {
    let owner = owner.map(Owner::stored).unwrap_or_default();
    let blocks = blocks.map(BlockChecksums::line).unwrap_or_default();
    let lines = Bytes::from(format!("{}\n{owner}\n{blocks}\n", checksum.hex()));
    store.write(&record(path, checksum), lines, WriteMode::Overwrite).await.map(drop)
}

/// The block checksums listed by the records of the object at `path`, each with
/// the owner recorded beside them (see [`blocks`](crate::blocks)).
pub(crate) async fn recorded_blocks(
    store: &Store,
    path: &StorePath,
) -> store_core::Result<Vec<(BlockChecksums, Option<String>)>> {
    let mut found = Vec::new();
    for listed in list_records(store, path).await? {
        // A record tidied away since the listing is `None`: its object is gone.
        if let Some(RecordLines { owner, blocks: Some(blocks) }) = read_record(store, &listed.path).await? {
            found.push((blocks, owner));
        }
    }
    Ok(found)
}

/// What a record holds besides the checksum its name gives (see [`write_record`]).
struct RecordLines {
    owner: Option<String>,
    blocks: Option<BlockChecksums>,
}

/// The record at `record`, `None` if there is no such record.
async fn read_record(store: &Store, record: &StorePath) -> store_core::Result<Option<RecordLines>> {
    match store.read(record).await {
        Ok(lines) => {
            let text = String::from_utf8_lossy(&lines);
            let mut lines = text.lines().skip(1);
            let owner = lines.next().map(str::trim).filter(|owner| !owner.is_empty()).map(str::to_owned);
            Ok(Some(RecordLines { owner, blocks: lines.next().and_then(BlockChecksums::parse_line) }))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the object at `path`, recorded as `stored`'s, may be loaded or
/// replaced as `owner`'s: yes unless both are known and differ.
pub(crate) fn owned(store: &Store, path: &StorePath, owner: Option<&Owner>, stored: Option<&str>) -> Result<(), Error> {
    match (owner, stored) {
        (Some(owner), Some(stored)) if owner.stored() != stored => Err(Error::OwnedByAnother {
            path: path.clone(),
            uri: store.uri(path),
            stored: Owner::describe(stored),
            expected: owner.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Before `owner` writes at `path`: the owner recorded for the object there
/// (in its metadata, else in its newest record) must be `owner` or unknown.
pub(crate) async fn check_owner(store: &Store, path: &StorePath, owner: Option<&Owner>) -> Result<(), Error> {
    let Some(owner) = owner else { return Ok(()) };
    let metadata = match store.head_with_metadata(path).await {
        Ok((_, metadata)) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if metadata.contains_key(METADATA_KEY) {
        return owned(store, path, Some(owner), metadata.get(OWNER_METADATA_KEY).map(String::as_str));
    }
    let newest = list_records(store, path).await?.into_iter().max_by_key(|record| record.written);
    let Some(newest) = newest else { return Ok(()) };
    let recorded = read_record(store, &newest.path).await?.and_then(|record| record.owner);
    owned(store, path, Some(owner), recorded.as_deref())
}

/// Once the object with checksum `ours` is published at `path`: makes sure its
/// record is there (a writer stalled for longer than [`RECORD_GRACE`] may have
/// seen it tidied away), then removes superseded records and the sidecar of
/// earlier versions. Only a record of ours that cannot be written fails the
/// write; the rest is tidying, which the next write repeats.
async fn tidy_records(
    store: &Store,
    path: &StorePath,
    ours: Checksum,
    owner: Option<&Owner>,
    blocks: Option<&BlockChecksums>,
) -> Result<(), Error> {
    let Ok(found) = list_records(store, path).await else { return Ok(()) };
    if !found.iter().any(|record| record.checksum == ours) {
        write_record(store, path, ours, owner, blocks).await?;
        return Ok(());
    }
    for stale in superseded(&found, ours) {
        let _ = store.delete(&stale, true).await;
    }
    let _ = store.delete(&sidecar(path), true).await;
    Ok(())
}

/// The records to remove once `ours` is written: those whose object was
/// superseded (its record followed by a newer one) more than [`RECORD_GRACE`]
/// before `ours` was recorded, by the clock of the store that dates both.
/// Records newer than `ours` (writers after this one) and of unknown age stay.
fn superseded(found: &[Record], ours: Checksum) -> Vec<StorePath> {
    let Some(now) = found.iter().find(|record| record.checksum == ours).and_then(|record| record.written) else {
        return Vec::new();
    };
    let mut dated: Vec<(SystemTime, &Record)> =
        found.iter().filter_map(|record| Some((record.written?, record))).collect();
    dated.sort_by_key(|(written, _)| *written);
    dated
        .windows(2)
        .filter(|pair| {
            let (old, (next, _)) = (pair[0].1, pair[1]);
            old.checksum != ours && now.duration_since(next).is_ok_and(|age| age > RECORD_GRACE)
        })
        .map(|pair| pair[0].1.path.clone())
        .collect()
}

/// The sidecar's text, or `None` when there is no sidecar.
async fn read_sidecar(store: &Store, path: &StorePath) -> Result<Option<String>, Error> {
    match store.read(&sidecar(path)).await {
        Ok(data) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use store_backends::{LocalBackend, MemoryBackend};

    use crate::test_backend::{Hooked, PlainReads};

    use super::*;

    fn p(path: &str) -> StorePath {
        path.parse().unwrap()
    }

    fn chunks(data: &Bytes) -> BoxStream<'static, store_core::Result<Bytes>> {
        let pieces: Vec<_> = data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(pieces).boxed()
    }

    fn large(seed: u8) -> Bytes {
        (0..SINGLE_WRITE_LIMIT + (1 << 20)).map(|i| (i % 251) as u8 ^ seed).collect::<Vec<_>>().into()
    }

    /// Replaces the object's bytes and keeps whatever records its checksum.
    async fn corrupt(store: &Store, path: &StorePath, data: &'static [u8]) {
        let (_, metadata) = store.read_with_metadata(path).await.unwrap();
        store.write_with_metadata(path, Bytes::from_static(data), WriteMode::Overwrite, &metadata).await.unwrap();
    }

    async fn recorded(store: &Store, path: &StorePath) -> Vec<Checksum> {
        let mut checksums: Vec<_> = list_records(store, path).await.unwrap().iter().map(|r| r.checksum).collect();
        checksums.sort_by_key(Checksum::hex);
        checksums
    }

    fn assert_mismatch(err: Error, path: &str, stored: Checksum, actual: Checksum) {
        let message = err.to_string();
        match err {
            Error::ChecksumMismatch { path: p, stored: s, actual: a, .. } => {
                assert_eq!((p.as_str(), s, a), (path, stored.to_string(), actual));
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        for part in [format!("{path:?}"), stored.to_string(), actual.to_string()] {
            assert!(message.contains(&part), "{message:?} should name {part}");
        }
    }

    #[tokio::test]
    async fn metadata_backends_keep_the_checksum_in_the_object() {
        let store = Store::new(MemoryBackend::new());
        let path = p("a/b.pkl");
        let written = write(&store, &path, "good".into(), WriteMode::Overwrite, None).await.unwrap();
        assert_eq!((written.checksum, written.size), (Checksum::of(b"good"), 4));
        let (_, metadata) = store.read_with_metadata(&path).await.unwrap();
        assert_eq!(metadata.get(METADATA_KEY), Some(&written.checksum.hex()));
        assert_eq!(recorded(&store, &path).await, [], "no record where metadata holds the checksum");
        assert_eq!(read(&store, &path, None).await.unwrap(), "good");
        corrupt(&store, &path, b"evil").await;
        assert_mismatch(
            read(&store, &path, None).await.unwrap_err(),
            "a/b.pkl",
            written.checksum,
            Checksum::of(b"evil"),
        );
    }

    #[tokio::test]
    async fn local_files_keep_the_checksum_in_an_attribute_or_else_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path = p("daily/2026-01-01.pkl");
        let written = write(&store, &path, "good".into(), WriteMode::Overwrite, None).await.unwrap();
        // Without user extended attributes (checked by the local backend's own tests), a record.
        let in_file =
            store.read_with_metadata(&path).await.unwrap().1.get(METADATA_KEY) == Some(&written.checksum.hex());
        assert_eq!(in_file, store.stores_metadata());
        let expected_records = if in_file { vec![] } else { vec![written.checksum] };
        assert_eq!(recorded(&store, &path).await, expected_records, "the checksum is in one place");
        assert_eq!(read(&store, &path, None).await.unwrap(), "good");
        // One flipped byte in the file itself, written in place: the attribute stays.
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("daily/2026-01-01.pkl"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"gooD"))
            .unwrap();
        let err = read(&store, &path, None).await.unwrap_err();
        assert_mismatch(err, "daily/2026-01-01.pkl", written.checksum, Checksum::of(b"gooD"));
        if in_file {
            let unreadable = Metadata::from([(METADATA_KEY.to_owned(), "not hex".to_owned())]);
            store.write_with_metadata(&path, "good".into(), WriteMode::Overwrite, &unreadable).await.unwrap();
            let err = read(&store, &path, None).await.unwrap_err();
            assert!(err.to_string().contains("recorded unreadable \"not hex\""), "{err}");
        }
    }

    #[tokio::test]
    async fn objects_without_a_recorded_checksum_load_unverified() {
        for store in [Store::new(MemoryBackend::new()), Store::new(Hooked::<PlainReads>::default())] {
            store.write(&p("foreign.csv"), "a,b".into(), WriteMode::Overwrite).await.unwrap();
            assert_eq!(read(&store, &p("foreign.csv"), None).await.unwrap(), "a,b");
            let missing = read(&store, &p("none.csv"), None).await.unwrap_err();
            assert!(
                matches!(missing, Error::Store(e) if e.kind() == ErrorKind::NotFound && e.path() == Some("none.csv"))
            );
        }
    }

    #[tokio::test]
    async fn large_streams_get_a_record_and_small_ones_metadata() {
        let store = Store::new(MemoryBackend::new());
        let big = large(0);
        let path = p("big.bin");
        let written = write_stream(&store, &path, chunks(&big), WriteMode::Overwrite, None).await.unwrap();
        assert_eq!((written.checksum, written.size), (Checksum::of(&big), big.len() as u64));
        assert!(store.read_with_metadata(&path).await.unwrap().1.is_empty(), "multipart uploads carry no checksum");
        assert_eq!(recorded(&store, &path).await, [written.checksum]);
        assert!(read(&store, &path, None).await.unwrap() == big);
        corrupt(&store, &path, b"short").await;
        assert_mismatch(
            read(&store, &path, None).await.unwrap_err(),
            "big.bin",
            written.checksum,
            Checksum::of(b"short"),
        );

        let small = p("small.bin");
        let written =
            write_stream(&store, &small, chunks(&Bytes::from_static(b"tiny")), WriteMode::Overwrite, None).await;
        assert_eq!(written.unwrap().checksum, Checksum::of(b"tiny"));
        assert_eq!(recorded(&store, &small).await, []);
        assert_eq!(read(&store, &small, None).await.unwrap(), "tiny");
    }

    #[tokio::test]
    async fn a_failed_stream_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let parts = (0..12).map(|i| match i {
            11 => Err(store_core::Error::new(ErrorKind::Other, "the producer failed")),
            _ => Ok(Bytes::from(vec![i as u8; 1 << 20])),
        });
        let (path, parts) = (p("x.bin"), stream::iter(parts.collect::<Vec<_>>()).boxed());
        let err = write_stream(&store, &path, parts, WriteMode::Overwrite, None).await.unwrap_err();
        assert!(err.to_string().contains("the producer failed"), "{err}");
        assert!(!store.exists(&path).await.unwrap());
        assert_eq!(recorded(&store, &path).await, [], "no record of a stream that never ended");
    }

    async fn read_streamed(store: &Store, path: &StorePath) -> Result<Bytes, Error> {
        let mut object = read_stream(store, path, None).await?;
        let chunks: Vec<Bytes> = (&mut object.chunks).try_collect().await?;
        object.verify().await?;
        Ok(chunks.concat().into())
    }

    #[tokio::test]
    async fn streamed_reads_are_verified_on_every_kind_of_backend() {
        let dir = tempfile::tempdir().unwrap();
        let stores = [
            Store::new(MemoryBackend::new()),
            Store::new(LocalBackend::new(dir.path()).unwrap()),
            Store::new(Hooked::<PlainReads>::default()),
        ];
        let big: Bytes = (0..(3 << 20)).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
        for store in &stores {
            let path = p("s/big.bin");
            let written = write(store, &path, big.clone(), WriteMode::Overwrite, None).await.unwrap();
            assert!(read_streamed(store, &path).await.unwrap() == big, "{store:?}");
            corrupt(store, &path, b"evil").await;
            let err = read_streamed(store, &path).await.unwrap_err();
            assert_mismatch(err, "s/big.bin", written.checksum, Checksum::of(b"evil"));
        }
    }

    /// Asset `["foo"]` partition `"bar"` and asset `["foo", "bar"]` share a path: whichever
    /// writes first keeps it, and the other's writes and loads are refused, on a backend
    /// with metadata and one without, for small objects and large streams.
    #[tokio::test]
    async fn an_object_is_neither_loaded_nor_replaced_as_another_assets() {
        let partitioned = Owner::new(["foo"], ["bar"]);
        let nested = Owner::new(["foo", "bar"], Vec::<String>::new());
        for keeps_metadata in [true, false] {
            let store = Store::new(Hooked::<PlainReads>::new(keeps_metadata));
            for (path, data) in [(p("foo/bar.pkl"), Bytes::from("partition")), (p("foo/big.pkl"), large(3))] {
                write_stream(&store, &path, chunks(&data), WriteMode::Overwrite, Some(&partitioned)).await.unwrap();
                let refused = write(&store, &path, "nested".into(), WriteMode::Overwrite, Some(&nested)).await;
                let message = refused.unwrap_err().to_string();
                for part in [r#"asset ["foo"], partition "bar""#, r#"asset ["foo", "bar"]"#, path.as_str()] {
                    assert!(message.contains(part), "{message:?} should name {part}");
                }
                let streamed = write_stream(&store, &path, chunks(&large(4)), WriteMode::Overwrite, Some(&nested));
                assert!(matches!(streamed.await, Err(Error::OwnedByAnother { .. })));
                assert!(
                    read(&store, &path, Some(&partitioned)).await.unwrap() == data,
                    "the first owner's value stays"
                );
                assert!(matches!(read(&store, &path, Some(&nested)).await, Err(Error::OwnedByAnother { .. })));
                assert!(matches!(read_streamed_as(&store, &path, &nested).await, Err(Error::OwnedByAnother { .. })));
                assert!(read(&store, &path, None).await.unwrap() == data, "a load of no asset in particular");
                write(&store, &path, "again".into(), WriteMode::Overwrite, Some(&partitioned)).await.unwrap();
                store.delete(&path, false).await.unwrap();
                write(&store, &path, "nested".into(), WriteMode::Overwrite, Some(&nested)).await.unwrap();
                assert_eq!(
                    read(&store, &path, Some(&nested)).await.unwrap(),
                    "nested",
                    "a deleted object has no owner"
                );
            }
        }
    }

    async fn read_streamed_as(store: &Store, path: &StorePath, owner: &Owner) -> Result<Bytes, Error> {
        let mut object = read_stream(store, path, Some(owner)).await?;
        let chunks: Vec<Bytes> = (&mut object.chunks).try_collect().await?;
        object.verify().await?;
        Ok(chunks.concat().into())
    }

    #[tokio::test]
    async fn a_stream_read_in_part_is_refused_not_compared() {
        let store = Store::new(MemoryBackend::new());
        let path = p("s/big.bin");
        let big = large(1);
        write_stream(&store, &path, chunks(&big), WriteMode::Overwrite, None).await.unwrap();
        let object = read_stream(&store, &path, None).await.unwrap();
        let message = object.verify().await.unwrap_err().to_string();
        let expected = format!("only 0 of the object's {} bytes were read", big.len());
        assert!(message.contains(&expected) && message.contains("s/big.bin"), "{message}");
    }

    /// A write that stops at any request (a crash, a server gone) leaves the
    /// old or the new object, verified: checked at every request a small
    /// write and a large stream make, on a backend with metadata and one without.
    #[tokio::test]
    async fn a_write_stopped_at_any_request_leaves_a_loadable_object() {
        for keeps_metadata in [true, false] {
            for new in [Bytes::from_static(b"new value"), large(7)] {
                for budget in 0.. {
                    let backend = Hooked::<PlainReads>::new(keeps_metadata);
                    let requests_left = backend.requests_left.clone();
                    let store = Store::new(backend);
                    let path = p("asset/x.pkl");
                    write_stream(&store, &path, chunks(&large(1)), WriteMode::Overwrite, None).await.unwrap();
                    let old = read(&store, &path, None).await.unwrap();
                    requests_left.store(budget, Ordering::SeqCst);
                    let finished = write_stream(&store, &path, chunks(&new), WriteMode::Overwrite, None).await.is_ok();
                    requests_left.store(usize::MAX, Ordering::SeqCst);
                    let loaded = read(&store, &path, None).await.unwrap_or_else(|e| {
                        panic!("metadata={keeps_metadata} size={} stopped after {budget} requests: {e}", new.len())
                    });
                    assert!(loaded == old || loaded == new, "a value that was never written");
                    if finished {
                        assert!(loaded == new);
                        break;
                    }
                }
            }
        }
    }

    /// Two writers of large objects racing on one path, each step of one
    /// between the steps of the other: the object that wins has its record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_writers_leave_a_loadable_object() {
        let store = Store::new(Hooked::<PlainReads>::default());
        let path = p("raced.bin");
        for round in 0..20u8 {
            let writers = (0..3).map(|writer| {
                let (store, path, data) = (store.clone(), path.clone(), large(round * 3 + writer));
                tokio::spawn(
                    async move { write_stream(&store, &path, chunks(&data), WriteMode::Overwrite, None).await },
                )
            });
            for writer in futures::future::join_all(writers).await {
                writer.unwrap().unwrap();
            }
            read(&store, &path, None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn sidecars_of_earlier_versions_still_verify_and_go_with_the_next_write() {
        let store = Store::new(Hooked::<PlainReads>::default());
        let path = p("old.pkl");
        store.write(&path, "old".into(), WriteMode::Overwrite).await.unwrap();
        let line = Bytes::from(format!("{}\n", Checksum::of(b"old").hex()));
        store.write(&sidecar(&path), line, WriteMode::Overwrite).await.unwrap();
        assert_eq!(read(&store, &path, None).await.unwrap(), "old");
        store.write(&path, "bad".into(), WriteMode::Overwrite).await.unwrap();
        assert_mismatch(
            read(&store, &path, None).await.unwrap_err(),
            "old.pkl",
            Checksum::of(b"old"),
            Checksum::of(b"bad"),
        );
        write(&store, &path, "new".into(), WriteMode::Overwrite, None).await.unwrap();
        assert!(!store.exists(&sidecar(&path)).await.unwrap());
        assert_eq!(read(&store, &path, None).await.unwrap(), "new");
    }

    #[tokio::test]
    async fn records_stay_until_their_object_was_superseded_long_enough() {
        let store = Store::new(Hooked::<PlainReads>::default());
        let path = p("kept.pkl");
        for value in ["one", "two", "three"] {
            write(&store, &path, Bytes::from(value), WriteMode::Overwrite, None).await.unwrap();
        }
        let all = [b"one".as_slice(), b"two", b"three"].map(Checksum::of);
        let mut expected = all.to_vec();
        expected.sort_by_key(Checksum::hex);
        assert_eq!(recorded(&store, &path).await, expected, "all three within the grace period");

        let at = |minutes: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(minutes * 60));
        let records: Vec<Record> = all
            .iter()
            .zip([at(0), at(10), at(30)])
            .map(|(&checksum, written)| Record { checksum, path: record(&path, checksum), written })
            .collect();
        // "one" was superseded at minute 10, 20 minutes before "three": gone; "two" at 30: kept.
        assert_eq!(superseded(&records, all[2]), [record(&path, all[0])]);
        assert_eq!(superseded(&records, all[1]), [], "nothing is old enough relative to an older write");
        let undated = records.iter().map(|r| Record { written: None, ..r.clone() }).collect::<Vec<_>>();
        assert_eq!(superseded(&undated, all[2]), []);
    }
}
