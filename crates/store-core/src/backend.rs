//! The narrow async trait a storage backend implements.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::{Error, ErrorKind, Result, StorePath};

/// User metadata kept with an object: keys of ASCII letters, digits and `_`
/// (names every backend accepts) and short string values.
pub type Metadata = BTreeMap<String, String>;

/// The version of an object a conditional write expects to replace (object_store's `UpdateVersion`):
/// what [`crate::Store::read_for_update`] returns, or what a [`WriteResult`] reports of the object it
/// wrote. Which of the two fields a backend fills and compares is its own affair: S3, Azure, memory,
/// local files and SFTP compare the e-tag; GCS the generation, in `version`.
///
/// ```
/// use store_core::{UpdateVersion, WriteResult};
///
/// let written = WriteResult { e_tag: Some("\"3\"".into()), version: None };
/// assert_eq!(UpdateVersion::from(written), UpdateVersion { e_tag: Some("\"3\"".into()), version: None });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateVersion {
    /// The object's entity tag, where the backend has one.
    pub e_tag: Option<String>,
    /// The object's version (a GCS generation), where the backend versions objects.
    pub version: Option<String>,
}

impl From<WriteResult> for UpdateVersion {
    fn from(written: WriteResult) -> Self {
        UpdateVersion { e_tag: written.e_tag, version: written.version }
    }
}

impl From<&ObjectMeta> for UpdateVersion {
    fn from(meta: &ObjectMeta) -> Self {
        UpdateVersion { e_tag: meta.e_tag.clone(), version: meta.version.clone() }
    }
}

/// How a write treats an object that is already there.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_core::{ErrorKind, Store, WriteMode};
///
/// let store = Store::new(store_backends::MemoryBackend::new());
/// let path = "pointers/orders.json".parse()?;
/// store.write(&path, "{\"v\": 1}".into(), WriteMode::CreateNew).await?;
/// let (_, version) = store.read_for_update(&path).await?;
/// store.write(&path, "{\"v\": 2}".into(), WriteMode::IfMatch(version.clone())).await?;
/// // The object changed since `version` was read: the write is refused.
/// let stale = store.write(&path, "{\"v\": 3}".into(), WriteMode::IfMatch(version)).await.unwrap_err();
/// assert_eq!(stale.kind(), ErrorKind::Precondition);
/// assert_eq!(store.read(&path).await?, "{\"v\": 2}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Replace it atomically: readers see the old or the new object, never a mix.
    #[default]
    Overwrite,
    /// Fail with [`crate::ErrorKind::AlreadyExists`] and leave it untouched.
    CreateNew,
    /// Replace the object only if it is still at this version; else (changed, or gone) fail with
    /// [`crate::ErrorKind::Precondition`] and leave it untouched: a compare-and-swap, for a
    /// read-modify-write loop that retries on `Precondition` (see [`crate::Store::read_for_update`]).
    ///
    /// Where a backend has no native conditional write it serialises the writers that ask for one,
    /// so the guarantee holds among `IfMatch` writers: a plain `Overwrite` racing one may be lost.
    /// On backends with multipart uploads (S3, Azure, GCS, memory) the write goes as one request:
    /// a streamed payload larger than one part (8 MiB by default) is refused with
    /// [`crate::ErrorKind::Other`]. The per-backend mechanism is in each backend's documentation.
    IfMatch(UpdateVersion),
}

/// What a backend knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Path relative to the Store the metadata came from.
    pub path: StorePath,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, where the backend records one.
    pub last_modified: Option<SystemTime>,
    /// Entity tag, where the backend has one.
    pub e_tag: Option<String>,
    /// Object version, where the backend versions objects.
    pub version: Option<String>,
}

/// One item of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    /// A stored object.
    Object(ObjectMeta),
    /// A sub-folder (common prefix); only in non-recursive listings.
    Prefix(StorePath),
}

/// What a completed write reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteResult {
    /// Entity tag of the new object, where the backend has one.
    pub e_tag: Option<String>,
    /// Version of the new object, where the backend versions objects.
    pub version: Option<String>,
}

/// What an interrupted write left behind: a temporary file that was never
/// moved into place, or a multipart upload that was never completed (parts
/// that cost storage without being visible as an object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The object the write was for (an upload's key), or the temporary file itself.
    pub path: StorePath,
    /// When the write began: the upload's start, or the temporary's last change.
    pub started: Option<SystemTime>,
    /// How the backend finds it again: the temporary's path, the upload's id.
    pub id: String,
}

/// An object being read chunk by chunk, with what the backend knows of it up front.
pub struct ObjectStream {
    /// Size in bytes, where the backend knows it before the bytes arrive.
    pub size: Option<u64>,
    /// Metadata stored with the object (empty where the backend keeps none).
    pub metadata: Metadata,
    /// The object's bytes.
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

impl Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("size", &self.size)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// What [`Backend::get_opts`] reads of an object.
///
/// ```
/// use store_core::GetOptions;
///
/// let footer = GetOptions { range: Some(1000..1008), ..GetOptions::default() };
/// assert!(!footer.metadata && !footer.stream);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Only bytes `start..end`, clamped at the object's end; the whole object if `None`.
    pub range: Option<Range<u64>>,
    /// Also the metadata stored with the object, which costs a call more on
    /// some backends; without it [`GetResult::metadata`] may be empty.
    pub metadata: bool,
    /// The bytes chunk by chunk, so a large object need not fit in memory. A
    /// hint: a backend may still answer with one buffer, or with a stream.
    pub stream: bool,
}

/// What [`Backend::head_opts`] reads of an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadOptions {
    /// Also the metadata stored with the object; without it the metadata may be empty.
    pub metadata: bool,
}

/// How [`Backend::put_opts`] stores an object.
///
/// ```
/// use store_core::{Metadata, PutOptions, WriteMode};
///
/// let options = PutOptions { mode: WriteMode::CreateNew, metadata: Metadata::new() };
/// assert_eq!(options, PutOptions { mode: WriteMode::CreateNew, ..PutOptions::default() });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// What happens to an object already at the path.
    pub mode: WriteMode,
    /// Metadata stored with the object in the same atomic write; a backend that
    /// keeps none ([`Backend::stores_metadata`] is false) refuses any.
    pub metadata: Metadata,
}

impl PutOptions {
    /// Fails, naming the backend, if there is metadata to store: what a backend
    /// that keeps no metadata answers.
    pub fn refuse_metadata(&self, kind: &str) -> Result<()> {
        if self.metadata.is_empty() {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Other, format!("the {kind} backend does not store object metadata")))
    }
}

/// An object's bytes: one buffer, or chunks as they arrive.
pub enum Payload {
    /// All of it.
    Bytes(Bytes),
    /// Chunk by chunk; a failed chunk ends it.
    Stream(BoxStream<'static, Result<Bytes>>),
}

impl Payload {
    /// All the bytes in one buffer, gathering a stream.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
    /// use futures::stream::{self, StreamExt};
    /// use store_core::Payload;
    ///
    /// let chunks = stream::iter([Ok("ab".into()), Ok("c".into())]).boxed();
    /// assert_eq!(Payload::Stream(chunks).bytes().await?, "abc");
    /// # Ok(()) }
    /// ```
    pub async fn bytes(self) -> Result<Bytes> {
        match self {
            Payload::Bytes(data) => Ok(data),
            Payload::Stream(chunks) => {
                let chunks: Vec<Bytes> = chunks.try_collect().await?;
                Ok(if chunks.len() == 1 {
                    chunks.into_iter().next().unwrap_or_default()
                } else {
                    chunks.concat().into()
                })
            }
        }
    }

    /// The bytes as a stream: a buffer becomes one chunk.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        match self {
            Payload::Bytes(data) => stream::once(async { Ok(data) }).boxed(),
            Payload::Stream(chunks) => chunks,
        }
    }
}

impl From<Bytes> for Payload {
    fn from(data: Bytes) -> Self {
        Payload::Bytes(data)
    }
}

impl Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Bytes(data) => f.debug_tuple("Bytes").field(&data.len()).finish(),
            Payload::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// What [`Backend::get_opts`] returns.
#[derive(Debug)]
pub struct GetResult {
    /// Size in bytes of what is returned, where the backend knows it before the bytes arrive.
    pub size: Option<u64>,
    /// Metadata stored with the object; empty where the backend keeps none or
    /// [`GetOptions::metadata`] was not asked for.
    pub metadata: Metadata,
    /// The bytes.
    pub payload: Payload,
    /// Entity tag of the object read, where the backend has one; every backend fills it (or
    /// [`version`](Self::version)) on whole-object reads, for [`WriteMode::IfMatch`].
    pub e_tag: Option<String>,
    /// Version of the object read, where the backend versions objects (a GCS generation).
    pub version: Option<String>,
}

impl From<ObjectStream> for GetResult {
    fn from(object: ObjectStream) -> Self {
        GetResult::new(Payload::Stream(object.chunks), object.size, object.metadata)
    }
}

impl GetResult {
    /// A result of `payload`, `size` bytes (where known up front), with `metadata`, and no
    /// e-tag or version yet (see [`with_version`](Self::with_version)).
    ///
    /// ```
    /// use store_core::{GetResult, Metadata};
    ///
    /// let got = GetResult::new(bytes::Bytes::from("abc").into(), Some(3), Metadata::new())
    ///     .with_version(Some("\"1\"".into()), None);
    /// assert_eq!(got.e_tag.as_deref(), Some("\"1\""));
    /// ```
    pub fn new(payload: Payload, size: Option<u64>, metadata: Metadata) -> Self {
        GetResult { size, metadata, payload, e_tag: None, version: None }
    }

    /// Sets the e-tag and version of the object read.
    pub fn with_version(mut self, e_tag: Option<String>, version: Option<String>) -> Self {
        self.e_tag = e_tag;
        self.version = version;
        self
    }

    /// The bytes as a stream, with the size and metadata.
    pub fn into_stream(self) -> ObjectStream {
        ObjectStream { size: self.size, metadata: self.metadata, chunks: self.payload.into_stream() }
    }
}

/// A storage backend: a small required core taking option structs, as
/// object_store's `ObjectStore` does, with the conveniences (`read`, `write`,
/// `read_stream`, ...) in [`BackendExt`]. Paths here are backend-relative: the
/// [`crate::Store`] applies its root prefix before calling and adds operation,
/// path and backend kind to every error after.
///
/// Implementations map their own errors onto [`crate::ErrorKind`] and keep
/// credentials out of messages. Every implementation runs the shared
/// conformance suite (`store_core::conformance`, feature `conformance`).
#[async_trait]
pub trait Backend: Debug + Send + Sync + 'static {
    /// Short backend name used in errors and metadata: `"local"`, `"memory"`, `"s3"`, ...
    fn kind(&self) -> &'static str;

    /// The object's URI in the backend's own scheme (`file:///...`, `s3://bucket/key`, an
    /// Azure blob's `https://` URL): what errors and output metadata show, so never with a
    /// credential (a password, a key, a SAS query string).
    fn uri(&self, path: &StorePath) -> String;

    /// Reads the object, or the range of it that `options` names, with the
    /// metadata stored with it if asked, in one request where the backend allows.
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult>;

    /// Metadata of one object, and the metadata stored with it if asked.
    async fn head_opts(&self, path: &StorePath, options: HeadOptions) -> Result<(ObjectMeta, Metadata)>;

    /// Stores `payload` at `path` atomically: nothing is visible at `path` until
    /// all of it is stored, and a failed write or stream leaves no object behind
    /// (an existing one stays as it was). Backends with multipart uploads send a
    /// streamed payload in parts as they fill, with memory bounded by the part size.
    async fn put_opts(&self, path: &StorePath, payload: Payload, options: PutOptions) -> Result<WriteResult>;

    /// Removes the object; a missing object is not an error here (the Store decides).
    async fn delete(&self, path: &StorePath) -> Result<()>;

    /// Objects under `prefix` (all of them if `None`), segment-wise: `a` does not
    /// match `ab/x`. Recursive listings yield only objects; one-level listings also
    /// yield [`ListEntry::Prefix`] for each sub-folder. Order is unspecified.
    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>>;

    /// Copies `from` to `to`; with `overwrite == false` fails if `to` exists.
    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()>;

    /// Moves `from` to `to`; with `overwrite == false` fails if `to` exists.
    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()>;

    /// Whether [`put_opts`](Self::put_opts) keeps metadata with the object
    /// (S3, Azure, GCS, memory, local files with extended attributes).
    /// Backends that cannot keep the default `false` and refuse metadata.
    fn stores_metadata(&self) -> bool {
        false
    }

    /// What interrupted writes left under `prefix` (everything if `None`):
    /// temporary files, incomplete multipart uploads. The default finds none,
    /// for backends whose writes leave nothing behind.
    async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// Removes one of [`leftovers`](Self::leftovers); one already gone is no error.
    async fn remove_leftover(&self, leftover: &Leftover) -> Result<()> {
        let _ = leftover;
        Ok(())
    }

    /// A URL that lets anyone holding it read the object at `path` (a `GET`)
    /// until `expires_in` has passed, signed with the backend's credentials.
    /// S3, Azure and GCS sign one; the default, for backends that cannot, is `None`.
    async fn signed_url(&self, path: &StorePath, expires_in: Duration) -> Result<Option<String>> {
        let _ = (path, expires_in);
        Ok(None)
    }

    /// Releases connections and other resources. The default does nothing.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// The conveniences every [`Backend`] has, each one call to its core.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_core::{BackendExt, WriteMode};
///
/// let backend = store_backends::MemoryBackend::new();
/// let path = "a/b.txt".parse()?;
/// backend.write(&path, "hello".into(), WriteMode::Overwrite).await?;
/// assert_eq!(backend.read_range(&path, 1..3).await?, "el");
/// # Ok(()) }
/// ```
#[async_trait]
pub trait BackendExt: Backend {
    /// The whole object.
    async fn read(&self, path: &StorePath) -> Result<Bytes> {
        self.get_opts(path, GetOptions::default()).await?.payload.bytes().await
    }

    /// Bytes `range.start..range.end` of the object (clamped at its end).
    async fn read_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        let options = GetOptions { range: Some(range), ..GetOptions::default() };
        self.get_opts(path, options).await?.payload.bytes().await
    }

    /// The whole object and the metadata stored with it.
    async fn read_with_metadata(&self, path: &StorePath) -> Result<(Bytes, Metadata)> {
        let got = self.get_opts(path, GetOptions { metadata: true, ..GetOptions::default() }).await?;
        Ok((got.payload.bytes().await?, got.metadata))
    }

    /// The object as a stream of chunks, so large objects need not fit in memory.
    async fn read_stream(&self, path: &StorePath) -> Result<BoxStream<'static, Result<Bytes>>> {
        let options = GetOptions { stream: true, ..GetOptions::default() };
        Ok(self.get_opts(path, options).await?.payload.into_stream())
    }

    /// The object as a stream, with its size and the metadata stored with it.
    async fn read_stream_with_metadata(&self, path: &StorePath) -> Result<ObjectStream> {
        let options = GetOptions { metadata: true, stream: true, ..GetOptions::default() };
        Ok(self.get_opts(path, options).await?.into_stream())
    }

    /// Metadata of one object.
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        Ok(self.head_opts(path, HeadOptions::default()).await?.0)
    }

    /// Metadata of one object and the metadata stored with it.
    async fn head_with_metadata(&self, path: &StorePath) -> Result<(ObjectMeta, Metadata)> {
        self.head_opts(path, HeadOptions { metadata: true }).await
    }

    /// Stores `data` at `path` atomically.
    async fn write(&self, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<WriteResult> {
        self.put_opts(path, data.into(), PutOptions { mode, ..PutOptions::default() }).await
    }

    /// Stores `data` with `metadata` in the same atomic write.
    async fn write_with_metadata(
        &self,
        path: &StorePath,
        data: Bytes,
        mode: WriteMode,
        metadata: &Metadata,
    ) -> Result<WriteResult> {
        self.put_opts(path, data.into(), PutOptions { mode, metadata: metadata.clone() }).await
    }

    /// Stores what `data` yields, atomically, in parts where the backend uploads in parts.
    async fn write_stream(
        &self,
        path: &StorePath,
        data: BoxStream<'static, Result<Bytes>>,
        mode: WriteMode,
    ) -> Result<WriteResult> {
        self.put_opts(path, Payload::Stream(data), PutOptions { mode, ..PutOptions::default() }).await
    }
}

impl<B: Backend + ?Sized> BackendExt for B {}
