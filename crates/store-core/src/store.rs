//! [`Store`]: a backend plus a root prefix.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::{
    Backend, BackendExt, Error, ErrorKind, GetOptions, GetResult, Leftover, ListEntry, Metadata, ObjectMeta,
    ObjectStream, Payload, Result, StorePath, UpdateVersion, WriteMode, WriteResult,
};

/// A backend plus an optional root prefix: every path given to a Store is
/// relative to its root, and every path it returns or names in an error is too.
///
/// Cloning is cheap and clones share the backend (and its connections).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// # use store_core::{Store, StorePath, WriteMode};
/// let backend = store_backends::MemoryBackend::new();
/// let store = Store::new(backend).child(&"pipelines".parse()?);
/// let path: StorePath = "raw/orders.json".parse()?;
/// store.write(&path, "[1, 2, 3]".into(), WriteMode::Overwrite).await?;
/// assert_eq!(store.read(&path).await?, "[1, 2, 3]");
/// assert_eq!(store.head(&path).await?.size, 9);
///
/// let err = store.write(&path, "[]".into(), WriteMode::CreateNew).await.unwrap_err();
/// assert_eq!(err.kind(), store_core::ErrorKind::AlreadyExists);
/// assert_eq!(err.path(), Some("raw/orders.json"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
    root: Option<StorePath>,
}

impl Store {
    /// A Store over the whole of `backend`.
    pub fn new(backend: impl Backend) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A Store over a shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Self { backend, root: None }
    }

    /// A Store scoped to `sub`, below this one's root; it shares the backend.
    pub fn child(&self, sub: &StorePath) -> Store {
        Store { backend: self.backend.clone(), root: Some(self.full(sub)) }
    }

    /// The root prefix within the backend, if any.
    pub fn root(&self) -> Option<&StorePath> {
        self.root.as_ref()
    }

    /// The backend kind: `"local"`, `"memory"`, ...
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// The shared backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The object's URI in the backend's own scheme, under this Store's root (see
    /// [`Backend::uri`]).
    ///
    /// ```
    /// let store = store_core::Store::new(store_backends::MemoryBackend::new()).child(&"team".parse()?);
    /// assert_eq!(store.uri(&"a b.pkl".parse()?), "memory:///team/a%20b.pkl");
    /// # Ok::<(), store_core::Error>(())
    /// ```
    pub fn uri(&self, path: &StorePath) -> String {
        self.backend.uri(&self.full(path))
    }

    /// A URL that lets anyone holding it read the object at `path` until
    /// `expires_in` has passed, where the backend can sign one (see
    /// [`Backend::signed_url`]); `None` where it cannot.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
    /// use std::time::Duration;
    /// let store = store_core::Store::new(store_backends::MemoryBackend::new());
    /// assert_eq!(store.signed_url(&"logs/step.out".parse()?, Duration::from_secs(600)).await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn signed_url(&self, path: &StorePath, expires_in: Duration) -> Result<Option<String>> {
        let url = self.backend.signed_url(&self.full(path), expires_in).await;
        url.map_err(|e| self.context(e, "signed_url", path))
    }

    /// The whole object.
    pub async fn read(&self, path: &StorePath) -> Result<Bytes> {
        self.backend.read(&self.full(path)).await.map_err(|e| self.context(e, "read", path))
    }

    /// The whole object and the version a conditional write ([`WriteMode::IfMatch`]) expects to
    /// replace: the first step of a read-modify-write that retries on [`ErrorKind::Precondition`].
    /// A backend that reports no version of the objects it reads fails with [`ErrorKind::Other`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
    /// use store_core::{ErrorKind, Store, StorePath, WriteMode};
    ///
    /// let store = Store::new(store_backends::MemoryBackend::new());
    /// let counter: StorePath = "counter.txt".parse()?;
    /// store.write(&counter, "0".into(), WriteMode::CreateNew).await?;
    /// loop {
    ///     let (data, version) = store.read_for_update(&counter).await?;
    ///     let next = std::str::from_utf8(&data).unwrap().parse::<u64>().unwrap() + 1;
    ///     match store.write(&counter, next.to_string().into(), WriteMode::IfMatch(version)).await {
    ///         Ok(_) => break,
    ///         Err(e) if e.kind() == ErrorKind::Precondition => continue, // changed meanwhile: read again
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// assert_eq!(store.read(&counter).await?, "1");
    /// # Ok(()) }
    /// ```
    pub async fn read_for_update(&self, path: &StorePath) -> Result<(Bytes, UpdateVersion)> {
        let read = async {
            let got = self.backend.get_opts(&self.full(path), GetOptions::default()).await?;
            let version = UpdateVersion { e_tag: got.e_tag, version: got.version };
            if version == UpdateVersion::default() {
                let message = "the backend reports no version of the object, so it cannot take conditional writes";
                return Err(Error::new(ErrorKind::Other, message));
            }
            Ok((got.payload.bytes().await?, version))
        };
        read.await.map_err(|e| self.context(e, "read", path))
    }

    /// The object, or the range of it that `options` name, with the object's e-tag and version
    /// ([`GetResult::e_tag`]): for a reader that must know which version of the object it read, such
    /// as one that compares it with what [`head`](Self::head) reported. An empty or inverted range
    /// is an error; a range running past the end is clamped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
    /// use store_core::{GetOptions, Store, StorePath, WriteMode};
    ///
    /// let store = Store::new(store_backends::MemoryBackend::new());
    /// let path: StorePath = "table.parquet".parse()?;
    /// let written = store.write(&path, "PAR1...PAR1".into(), WriteMode::Overwrite).await?;
    /// let footer = store.get_opts(&path, GetOptions { range: Some(7..11), ..GetOptions::default() }).await?;
    /// assert_eq!(footer.e_tag, written.e_tag);
    /// assert_eq!(footer.payload.bytes().await?, "PAR1");
    /// # Ok(()) }
    /// ```
    pub async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        if let Some(range) = options.range.as_ref().filter(|range| range.start >= range.end) {
            let message = format!("empty byte range {}..{}", range.start, range.end);
            return Err(self.context(Error::new(ErrorKind::Other, message), "read", path));
        }
        let mut got =
            self.backend.get_opts(&self.full(path), options).await.map_err(|e| self.context(e, "read", path))?;
        if let Payload::Stream(chunks) = got.payload {
            got.payload = Payload::Stream(self.reading(chunks, path));
        }
        Ok(got)
    }

    /// Bytes `range` of the object; an empty or inverted range is an error.
    pub async fn read_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            let message = format!("empty byte range {}..{}", range.start, range.end);
            return Err(self.context(Error::new(ErrorKind::Other, message), "read_range", path));
        }
        self.backend.read_range(&self.full(path), range).await.map_err(|e| self.context(e, "read_range", path))
    }

    /// Stores `data` atomically, replacing or refusing an existing object as `mode` says.
    pub async fn write(&self, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<WriteResult> {
        self.backend.write(&self.full(path), data, mode).await.map_err(|e| self.context(e, "write", path))
    }

    /// Whether the backend keeps metadata with objects (see [`write_with_metadata`](Self::write_with_metadata)).
    pub fn stores_metadata(&self) -> bool {
        self.backend.stores_metadata()
    }

    /// Stores `data` with `metadata` in one atomic write. Backends that cannot
    /// keep metadata ([`stores_metadata`](Self::stores_metadata) is false) refuse
    /// non-empty metadata and store nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
    /// # use store_core::{Metadata, Store, StorePath, WriteMode};
    /// let store = Store::new(store_backends::MemoryBackend::new());
    /// let path: StorePath = "report.csv".parse()?;
    /// let metadata = Metadata::from([("owner".to_string(), "finance".to_string())]);
    /// store.write_with_metadata(&path, "a,b".into(), WriteMode::Overwrite, &metadata).await?;
    /// assert_eq!(store.read_with_metadata(&path).await?, ("a,b".into(), metadata));
    /// # Ok(()) }
    /// ```
    pub async fn write_with_metadata(
        &self,
        path: &StorePath,
        data: Bytes,
        mode: WriteMode,
        metadata: &Metadata,
    ) -> Result<WriteResult> {
        let written = self.backend.write_with_metadata(&self.full(path), data, mode, metadata).await;
        written.map_err(|e| self.context(e, "write", path))
    }

    /// The whole object and the metadata stored with it (empty where the backend keeps none).
    pub async fn read_with_metadata(&self, path: &StorePath) -> Result<(Bytes, Metadata)> {
        self.backend.read_with_metadata(&self.full(path)).await.map_err(|e| self.context(e, "read", path))
    }

    /// The object's metadata and the metadata stored with it (empty where the
    /// backend keeps none), without reading its bytes; `path` in the result is store-relative.
    pub async fn head_with_metadata(&self, path: &StorePath) -> Result<(ObjectMeta, Metadata)> {
        let head = self.backend.head_with_metadata(&self.full(path)).await;
        let (mut meta, metadata) = head.map_err(|e| self.context(e, "head", path))?;
        meta.path = path.clone();
        Ok((meta, metadata))
    }

    /// Stores what `data` yields, atomically, as multipart uploads with bounded
    /// memory where the backend has them. A stream that fails part-way leaves
    /// no object at `path` (an existing one stays as it was).
    pub async fn write_stream(
        &self,
        path: &StorePath,
        data: BoxStream<'static, Result<Bytes>>,
        mode: WriteMode,
    ) -> Result<WriteResult> {
        self.backend.write_stream(&self.full(path), data, mode).await.map_err(|e| self.context(e, "write", path))
    }

    /// The object as a stream of chunks; once drained (or failed) it stays ended.
    pub async fn read_stream(&self, path: &StorePath) -> Result<BoxStream<'static, Result<Bytes>>> {
        let chunks = self.backend.read_stream(&self.full(path)).await.map_err(|e| self.context(e, "read", path))?;
        Ok(self.reading(chunks, path))
    }

    /// The object as a stream, with its size (where known up front) and the
    /// metadata stored with it.
    pub async fn read_stream_with_metadata(&self, path: &StorePath) -> Result<ObjectStream> {
        let read = self.backend.read_stream_with_metadata(&self.full(path)).await;
        let mut object = read.map_err(|e| self.context(e, "read", path))?;
        object.chunks = self.reading(object.chunks, path);
        Ok(object)
    }

    /// `chunks` of the object at `path`, their errors in the same context as the
    /// read's, fused: polled again after its end, the stream answers `None`.
    fn reading(
        &self,
        chunks: BoxStream<'static, Result<Bytes>>,
        path: &StorePath,
    ) -> BoxStream<'static, Result<Bytes>> {
        let (store, path) = (self.clone(), path.clone());
        chunks.map_err(move |e| store.context(e, "read", &path)).fuse().boxed()
    }

    /// Metadata of one object; `path` in the result is store-relative.
    pub async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let mut meta = self.backend.head(&self.full(path)).await.map_err(|e| self.context(e, "head", path))?;
        meta.path = path.clone();
        Ok(meta)
    }

    /// Whether the object exists.
    pub async fn exists(&self, path: &StorePath) -> Result<bool> {
        match self.head(path).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.with_context("exists", path.as_str(), self.backend.kind())),
        }
    }

    /// Removes the object. A missing object is [`ErrorKind::NotFound`] unless `missing_ok`.
    pub async fn delete(&self, path: &StorePath, missing_ok: bool) -> Result<()> {
        if !missing_ok && !self.exists(path).await? {
            let err = Error::new(ErrorKind::NotFound, "no object to delete");
            return Err(self.context(err, "delete", path));
        }
        self.backend.delete(&self.full(path)).await.map_err(|e| self.context(e, "delete", path))
    }

    /// Objects under `prefix` (the whole store if `None`) as a stream, paths
    /// store-relative. One-level listings also yield sub-folders.
    pub fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        let full_prefix = match (prefix, &self.root) {
            (Some(p), _) => Some(self.full(p)),
            (None, root) => root.clone(),
        };
        let root = self.root.clone();
        let backend = self.backend.kind();
        let shown_prefix = prefix.map(StorePath::to_string).unwrap_or_default();
        self.backend
            .list(full_prefix.as_ref(), recursive)
            .map(move |entry| {
                let relative = |p: StorePath| match &root {
                    Some(root) => p.strip_prefix(root).ok_or_else(|| {
                        Error::new(ErrorKind::Other, format!("backend listed {p:?} outside the store root"))
                    }),
                    None => Ok(p),
                };
                let entry = entry.and_then(|entry| match entry {
                    ListEntry::Object(mut meta) => {
                        meta.path = relative(meta.path)?;
                        Ok(ListEntry::Object(meta))
                    }
                    ListEntry::Prefix(p) => relative(p).map(ListEntry::Prefix),
                });
                entry.map_err(|e| e.with_context("list", shown_prefix.clone(), backend))
            })
            .boxed()
    }

    /// Copies `from` to `to` within this store.
    pub async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.backend.copy(&self.full(from), &self.full(to), overwrite).await.map_err(|e| self.context(e, "copy", from))
    }

    /// Moves `from` to `to` within this store.
    pub async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.backend
            .rename(&self.full(from), &self.full(to), overwrite)
            .await
            .map_err(|e| self.context(e, "rename", from))
    }

    /// What interrupted writes left under `prefix` (the whole store if `None`):
    /// temporary files and incomplete multipart uploads, paths store-relative.
    /// A write in progress shows here too: see [`clean_up`](Self::clean_up).
    pub async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>> {
        let full = prefix.map(|p| self.full(p)).or_else(|| self.root.clone());
        let shown = prefix.map(StorePath::to_string).unwrap_or_default();
        let found = self
            .backend
            .leftovers(full.as_ref())
            .await
            .map_err(|e| e.with_context("leftovers", shown.as_str(), self.backend.kind()))?;
        Ok(found
            .into_iter()
            .filter_map(|mut leftover| {
                leftover.path = match &self.root {
                    Some(root) => leftover.path.strip_prefix(root)?,
                    None => leftover.path,
                };
                Some(leftover)
            })
            .collect())
    }

    /// Removes the [`leftovers`](Self::leftovers) under `prefix` that began more
    /// than `older_than` ago, and returns them. Writes still in progress are
    /// younger than any sensible `older_than` (an hour, say), and are left alone;
    /// leftovers of unknown age are kept.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
    /// use std::time::Duration;
    /// let store = store_core::Store::new(store_backends::MemoryBackend::new());
    /// assert_eq!(store.clean_up(None, Duration::from_secs(3600)).await?, []);
    /// # Ok(()) }
    /// ```
    pub async fn clean_up(&self, prefix: Option<&StorePath>, older_than: Duration) -> Result<Vec<Leftover>> {
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = Vec::new();
        for leftover in self.leftovers(prefix).await? {
            if leftover.started.is_some_and(|started| started <= cutoff) {
                let full = Leftover { path: self.full(&leftover.path), ..leftover.clone() };
                self.backend.remove_leftover(&full).await.map_err(|e| self.context(e, "clean_up", &leftover.path))?;
                removed.push(leftover);
            }
        }
        Ok(removed)
    }

    /// Releases the backend's connections. Clones share them, so close once, when done.
    pub async fn close(&self) -> Result<()> {
        self.backend.close().await.map_err(|e| e.with_context("close", "", self.backend.kind()))
    }

    fn full(&self, path: &StorePath) -> StorePath {
        match &self.root {
            Some(root) => root.join(path),
            None => path.clone(),
        }
    }

    fn context(&self, err: Error, operation: &'static str, path: &StorePath) -> Error {
        err.with_context(operation, path.as_str(), self.backend.kind())
    }
}
