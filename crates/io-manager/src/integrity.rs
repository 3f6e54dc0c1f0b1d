//! Checksums stored with every object the IO manager writes and verified on
//! every load, so corrupt data is an error, never a value.
//!
//! The checksum is CRC-32C (Castagnoli, hardware-accelerated; the checksum
//! Google Cloud Storage and S3 use for objects). It is kept:
//! - in the object's own metadata (`crc32c`, 8 hex digits) where the backend
//!   stores metadata (S3, Azure, GCS, memory, and local files as an extended
//!   attribute): written in the same atomic write as the data, so the two never
//!   disagree;
//! - else in a sidecar object beside it, `<path>.crc32c`, written right after
//!   the object (SFTP, local filesystems without extended attributes). Streams
//!   larger than [`SINGLE_WRITE_LIMIT`] use the sidecar on every backend: their
//!   checksum is known only at the end, and multipart uploads take metadata
//!   when they start.
//!
//! A load reads the object and its recorded checksum and compares. An object
//! with no recorded checksum (written by another tool) loads unverified. A
//! sidecar read between a writer's object and sidecar writes can disagree with
//! the object; a mismatch against a sidecar is therefore read once more before
//! it is reported.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
//! use io_manager::integrity::{self, Checksum};
//! use store_core::{Store, WriteMode};
//!
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let path = "daily/2026-01-01.json".parse()?;
//! let written = integrity::write(&store, &path, "[1, 2]".into(), WriteMode::Overwrite).await?;
//! assert_eq!(written.checksum, Checksum::of(b"[1, 2]"));
//! assert_eq!(integrity::read(&store, &path).await?, "[1, 2]");
//!
//! // Bytes changed behind the IO manager's back (the recorded checksum kept) are refused.
//! let (_, metadata) = store.read_with_metadata(&path).await?;
//! store.write_with_metadata(&path, "[1, 3]".into(), WriteMode::Overwrite, &metadata).await?;
//! let err = integrity::read(&store, &path).await.unwrap_err();
//! assert!(matches!(err, io_manager::Error::ChecksumMismatch { .. }), "{err}");
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use store_core::{ErrorKind, Metadata, Store, StorePath, WriteMode, WriteResult};

use crate::Error;

/// Metadata key of the checksum, where the backend keeps object metadata.
pub const METADATA_KEY: &str = "crc32c";

/// What a sidecar's name adds to the object's.
pub const SIDECAR_SUFFIX: &str = ".crc32c";

/// Streams up to this size are gathered and written in one request, checksum
/// in the object's metadata; longer streams are uploaded as they come, with a sidecar.
pub const SINGLE_WRITE_LIMIT: usize = 8 << 20;

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

    /// The 8 lowercase hex digits stored in metadata and sidecars.
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

/// Where the checksum of the object at `path` goes when the object's metadata cannot hold it.
pub fn sidecar(path: &StorePath) -> StorePath {
    StorePath::parse(format!("{path}{SIDECAR_SUFFIX}")).expect("a valid path plus a plain suffix is a valid path")
}

/// Stores `data` at `path` atomically, with its checksum.
pub async fn write(store: &Store, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<Written, Error> {
    let checksum = Checksum::of(&data);
    let size = data.len() as u64;
    let result = if store.stores_metadata() {
        let metadata = Metadata::from([(METADATA_KEY.to_owned(), checksum.hex())]);
        store.write_with_metadata(path, data, mode, &metadata).await?
    } else {
        let result = store.write(path, data, mode).await?;
        write_sidecar(store, path, checksum).await?;
        result
    };
    Ok(Written { result, checksum, size })
}

/// Stores what `data` yields at `path` atomically, with its checksum; memory
/// stays bounded by the backend's multipart buffers, whatever the size. A
/// stream that fails stores nothing.
pub async fn write_stream(
    store: &Store,
    path: &StorePath,
    mut data: BoxStream<'static, store_core::Result<Bytes>>,
    mode: WriteMode,
) -> Result<Written, Error> {
    let mut first = Vec::new();
    let mut buffered = 0;
    while buffered <= SINGLE_WRITE_LIMIT {
        match data.try_next().await? {
            Some(chunk) => {
                buffered += chunk.len();
                first.push(chunk);
            }
            None => return write(store, path, first.concat().into(), mode).await,
        }
    }
    let digest = Arc::new(Mutex::new((Digest::new(CrcAlgorithm::Crc32Iscsi), 0u64)));
    let hashed = digest.clone();
    let chunks = stream::iter(first.into_iter().map(Ok)).chain(data).inspect_ok(move |chunk| {
        let mut state = hashed.lock().unwrap_or_else(|e| e.into_inner());
        state.0.update(chunk);
        state.1 += chunk.len() as u64;
    });
    let result = store.write_stream(path, chunks.boxed(), mode).await?;
    let (checksum, size) = {
        let state = digest.lock().unwrap_or_else(|e| e.into_inner());
        (Checksum(state.0.finalize() as u32), state.1)
    };
    write_sidecar(store, path, checksum).await?;
    Ok(Written { result, checksum, size })
}

/// The object at `path`, verified against its recorded checksum.
///
/// A mismatch is [`Error::ChecksumMismatch`], naming the path and both
/// checksums; an object with no recorded checksum is returned unverified.
pub async fn read(store: &Store, path: &StorePath) -> Result<Bytes, Error> {
    let mut retried = false;
    loop {
        let (data, metadata) = store.read_with_metadata(path).await?;
        let Some(recorded) = recorded(store, path, &metadata).await? else {
            return Ok(data);
        };
        let actual = Checksum::of(&data);
        if recorded.matches(actual) {
            return Ok(data);
        }
        if recorded.from_sidecar && !retried {
            // A writer may have replaced the object but not yet its sidecar.
            retried = true;
            continue;
        }
        return Err(recorded.mismatch(store, path, actual));
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
/// integrity::write(&store, &path, "0123456789".into(), WriteMode::Overwrite).await?;
/// let mut object = integrity::read_stream(&store, &path).await?;
/// assert_eq!(object.size, Some(10));
/// let chunks: Vec<_> = (&mut object.chunks).try_collect().await?;
/// assert_eq!(chunks.concat(), b"0123456789");
/// object.verify().await?;
/// # Ok(()) }
/// ```
pub async fn read_stream(store: &Store, path: &StorePath) -> Result<CheckedStream, Error> {
    let object = store.read_stream_with_metadata(path).await?;
    let recorded = recorded(store, path, &object.metadata).await?;
    let digest = Arc::new(Mutex::new(Digest::new(CrcAlgorithm::Crc32Iscsi)));
    let hashed = digest.clone();
    let chunks = object.chunks.inspect_ok(move |chunk| hashed.lock().unwrap_or_else(|e| e.into_inner()).update(chunk));
    Ok(CheckedStream {
        size: object.size,
        chunks: chunks.boxed(),
        store: store.clone(),
        path: path.clone(),
        recorded,
        digest,
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
    recorded: Option<Recorded>,
    digest: Arc<Mutex<Digest>>,
}

impl CheckedStream {
    /// Compares what passed through [`chunks`](Self::chunks) with the recorded
    /// checksum; an object with none passes. A sidecar that disagrees is read
    /// once more, since a writer may have replaced the object but not yet its sidecar.
    pub async fn verify(self) -> Result<(), Error> {
        let Some(recorded) = self.recorded else { return Ok(()) };
        let actual = Checksum(self.digest.lock().unwrap_or_else(|e| e.into_inner()).finalize() as u32);
        if recorded.matches(actual) {
            return Ok(());
        }
        if recorded.from_sidecar {
            if let Some(again) = read_sidecar(&self.store, &self.path).await? {
                let again = Recorded { text: again, from_sidecar: true };
                if again.matches(actual) {
                    return Ok(());
                }
            }
        }
        Err(recorded.mismatch(&self.store, &self.path, actual))
    }
}

/// A checksum as recorded with an object, and where.
struct Recorded {
    text: String,
    from_sidecar: bool,
}

impl Recorded {
    fn matches(&self, actual: Checksum) -> bool {
        Checksum::parse_hex(&self.text) == Some(actual)
    }

    fn mismatch(&self, store: &Store, path: &StorePath, actual: Checksum) -> Error {
        let stored = match Checksum::parse_hex(&self.text) {
            Some(checksum) => checksum.to_string(),
            None => format!("unreadable {:?}", self.text),
        };
        Error::ChecksumMismatch { path: path.clone(), uri: store.uri(path), stored, actual }
    }
}

/// The checksum recorded for the object at `path`: in its metadata, else in its sidecar.
async fn recorded(store: &Store, path: &StorePath, metadata: &Metadata) -> Result<Option<Recorded>, Error> {
    if let Some(text) = metadata.get(METADATA_KEY) {
        return Ok(Some(Recorded { text: text.clone(), from_sidecar: false }));
    }
    Ok(read_sidecar(store, path).await?.map(|text| Recorded { text, from_sidecar: true }))
}

async fn write_sidecar(store: &Store, path: &StorePath, checksum: Checksum) -> Result<(), Error> {
    let line = Bytes::from(format!("{}\n", checksum.hex()));
    store.write(&sidecar(path), line, WriteMode::Overwrite).await?;
    Ok(())
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use store_backends::{LocalBackend, MemoryBackend};

    use store_core::Backend;

    use crate::test_backend::{Hooked, ReadHook};

    use super::*;

    fn p(path: &str) -> StorePath {
        path.parse().unwrap()
    }

    fn chunks(data: &Bytes) -> BoxStream<'static, store_core::Result<Bytes>> {
        let pieces: Vec<_> = data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(pieces).boxed()
    }

    /// Replaces the object's bytes and keeps whatever records its checksum.
    async fn corrupt(store: &Store, path: &StorePath, data: &'static [u8]) {
        let (_, metadata) = store.read_with_metadata(path).await.unwrap();
        store.write_with_metadata(path, Bytes::from_static(data), WriteMode::Overwrite, &metadata).await.unwrap();
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
        let written = write(&store, &path, "good".into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!((written.checksum, written.size), (Checksum::of(b"good"), 4));
        let (_, metadata) = store.read_with_metadata(&path).await.unwrap();
        assert_eq!(metadata.get(METADATA_KEY), Some(&written.checksum.hex()));
        assert!(!store.exists(&sidecar(&path)).await.unwrap(), "no sidecar where metadata holds the checksum");
        assert_eq!(read(&store, &path).await.unwrap(), "good");
        corrupt(&store, &path, b"evil").await;
        assert_mismatch(read(&store, &path).await.unwrap_err(), "a/b.pkl", written.checksum, Checksum::of(b"evil"));
    }

    #[tokio::test]
    async fn local_files_keep_the_checksum_in_an_attribute_or_else_a_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path = p("daily/2026-01-01.pkl");
        let written = write(&store, &path, "good".into(), WriteMode::Overwrite).await.unwrap();
        // Without user extended attributes (checked by the local backend's own tests), a sidecar.
        let in_file =
            store.read_with_metadata(&path).await.unwrap().1.get(METADATA_KEY) == Some(&written.checksum.hex());
        assert_eq!(in_file, store.stores_metadata());
        assert_eq!(store.exists(&sidecar(&path)).await.unwrap(), !in_file, "the checksum is in one place");
        assert_eq!(read(&store, &path).await.unwrap(), "good");
        // One flipped byte in the file itself, written in place: the attribute stays.
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("daily/2026-01-01.pkl"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"gooD"))
            .unwrap();
        let err = read(&store, &path).await.unwrap_err();
        assert_mismatch(err, "daily/2026-01-01.pkl", written.checksum, Checksum::of(b"gooD"));
        if in_file {
            let unreadable = Metadata::from([(METADATA_KEY.to_owned(), "not hex".to_owned())]);
            store.write_with_metadata(&path, "good".into(), WriteMode::Overwrite, &unreadable).await.unwrap();
        } else {
            std::fs::write(dir.path().join("daily/2026-01-01.pkl.crc32c"), "not hex").unwrap();
        }
        let err = read(&store, &path).await.unwrap_err();
        assert!(err.to_string().contains("recorded unreadable \"not hex\""), "{err}");
    }

    #[tokio::test]
    async fn objects_without_a_recorded_checksum_load_unverified() {
        let store = Store::new(MemoryBackend::new());
        store.write(&p("foreign.csv"), "a,b".into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(read(&store, &p("foreign.csv")).await.unwrap(), "a,b");
        let missing = read(&store, &p("none.csv")).await.unwrap_err();
        assert!(matches!(missing, Error::Store(e) if e.kind() == ErrorKind::NotFound && e.path() == Some("none.csv")));
    }

    #[tokio::test]
    async fn large_streams_get_a_sidecar_and_small_ones_metadata() {
        let store = Store::new(MemoryBackend::new());
        let big: Bytes = (0..SINGLE_WRITE_LIMIT + (1 << 20)).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
        let path = p("big.bin");
        let written = write_stream(&store, &path, chunks(&big), WriteMode::Overwrite).await.unwrap();
        assert_eq!((written.checksum, written.size), (Checksum::of(&big), big.len() as u64));
        assert!(store.read_with_metadata(&path).await.unwrap().1.is_empty(), "multipart uploads carry no checksum");
        assert!(store.exists(&sidecar(&path)).await.unwrap());
        assert!(read(&store, &path).await.unwrap() == big);
        corrupt(&store, &path, b"short").await;
        assert_mismatch(read(&store, &path).await.unwrap_err(), "big.bin", written.checksum, Checksum::of(b"short"));

        let small = p("small.bin");
        let written = write_stream(&store, &small, chunks(&Bytes::from_static(b"tiny")), WriteMode::Overwrite).await;
        assert_eq!(written.unwrap().checksum, Checksum::of(b"tiny"));
        assert!(!store.exists(&sidecar(&small)).await.unwrap());
        assert_eq!(read(&store, &small).await.unwrap(), "tiny");
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
        let err = write_stream(&store, &path, parts, WriteMode::Overwrite).await.unwrap_err();
        assert!(err.to_string().contains("the producer failed"), "{err}");
        assert!(!store.exists(&path).await.unwrap());
        assert!(!store.exists(&sidecar(&path)).await.unwrap());
    }

    async fn read_streamed(store: &Store, path: &StorePath) -> Result<Bytes, Error> {
        let mut object = read_stream(store, path).await?;
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
            Store::new(Hooked::<LaggingSidecar>::default()),
        ];
        let big: Bytes = (0..(3 << 20)).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
        for store in &stores {
            let path = p("s/big.bin");
            let written = write(store, &path, big.clone(), WriteMode::Overwrite).await.unwrap();
            assert!(read_streamed(store, &path).await.unwrap() == big, "{store:?}");
            corrupt(store, &path, b"evil").await;
            let err = read_streamed(store, &path).await.unwrap_err();
            assert_mismatch(err, "s/big.bin", written.checksum, Checksum::of(b"evil"));
        }
    }

    #[tokio::test]
    async fn a_sidecar_lagging_behind_its_object_is_read_again() {
        let backend = Hooked::<LaggingSidecar>::default();
        let stale_reads = backend.hook.stale_reads.clone();
        let store = Store::new(backend);
        let path = p("x.pkl");
        write(&store, &path, "new".into(), WriteMode::Overwrite).await.unwrap();
        stale_reads.store(1, Ordering::SeqCst);
        assert_eq!(read(&store, &path).await.unwrap(), "new", "the second look finds the new sidecar");
        stale_reads.store(2, Ordering::SeqCst);
        let err = read(&store, &path).await.unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "a sidecar that stays wrong is reported: {err}");
        stale_reads.store(1, Ordering::SeqCst);
        assert_eq!(read_streamed(&store, &path).await.unwrap(), "new", "streamed: the sidecar is read again");
        stale_reads.store(2, Ordering::SeqCst);
        assert!(matches!(read_streamed(&store, &path).await.unwrap_err(), Error::ChecksumMismatch { .. }));
    }

    /// Sidecar reads of which the next `stale_reads` return an old checksum, as
    /// while a writer is between the object and its sidecar.
    #[derive(Debug, Default)]
    struct LaggingSidecar {
        stale_reads: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl ReadHook for LaggingSidecar {
        const KIND: &'static str = "lagging";

        async fn read(&self, inner: &MemoryBackend, path: &StorePath) -> store_core::Result<Bytes> {
            let sidecar = path.as_str().ends_with(SIDECAR_SUFFIX);
            if sidecar
                && self.stale_reads.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
            {
                return Ok(Bytes::from(format!("{}\n", Checksum::of(b"old").hex())));
            }
            inner.read(path).await
        }
    }
}
