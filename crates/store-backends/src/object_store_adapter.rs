//! Any [`Store`] as an `object_store` store: [`ObjectStoreAdapter`], for the Rust tools built on
//! `object_store` (DataFusion, Polars, delta-rs, ...), so they read and write through our backends,
//! SFTP included.
//!
//! One adapter body serves two `object_store` releases: the macro `impl_object_store!` implements
//! the trait for the crate it is given, `object_store` 0.14 (feature `object-store-adapter`, the
//! release the rest of this crate uses) and `object_store` 0.13 (feature `object-store-0-13`, the
//! one arrow 59, parquet 59 and DataFusion 55 use). Their `ObjectStore` traits are the same text,
//! but two releases of a crate are two crates, with two traits and two sets of types, so a tool
//! can only take an implementation of its own release's trait. The result types differ in one
//! field, `extensions` (0.14 only), which the macro is told about.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use store_core::{Error, ErrorKind, Result, Store, StorePath, WriteMode, WriteResult};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A [`Store`] as an `object_store::ObjectStore`, so that a tool built on `object_store`
/// (DataFusion, Polars, delta-rs, ...) reads and writes through any of our backends: SFTP, local
/// files, memory, or the cloud ones. Paths are relative to the Store's root.
///
/// It implements the `ObjectStore` trait of `object_store` 0.14 with the feature
/// `object-store-adapter` (on by default), and of `object_store` 0.13 with `object-store-0-13`
/// (the release DataFusion 55 uses; the crate is renamed `object_store_0_13` here).
///
/// What each call does:
/// - **Writes** are the Store's atomic writes. `PutMode::Overwrite`, `Create` and `Update` are
///   [`WriteMode::Overwrite`], [`CreateNew`](WriteMode::CreateNew) and [`IfMatch`](WriteMode::IfMatch),
///   with their guarantees (on SFTP and local files, compare-and-swap holds among conditional writers).
///   Tags are ignored; attributes (content type, user metadata, ...) fail with `NotImplemented`.
/// - **Multipart uploads** are one streamed write ([`Store::write_stream`]) that a task of its own
///   runs from `put_multipart_opts` on, so they need a Tokio runtime. `put_part` queues the part at
///   once: parts are written in the order of the calls, whatever order their futures are awaited
///   in. A part's future completes when the write has taken the part (which is what bounds the
///   memory a producer such as `WriteMultipart` holds), not when it is stored: `complete` reports
///   whether the whole write succeeded. Nothing is visible until `complete`, and an upload aborted
///   or dropped before it stores nothing. The last upload completed wins.
/// - **Reads** ask for the object's metadata first (for the whole size, the modification time
///   and the conditions of `GetOptions`), then for the bytes, and check that the e-tags of the two
///   agree, asking again if the object was replaced in between, so `meta` always describes the
///   bytes returned. `get_ranges` reads each coalesced range without asking for metadata.
///   Versioned reads (`GetOptions::version`) fail with `NotImplemented`.
/// - **Listings** are the Store's. `list_with_delimiter` returns its common prefixes and objects
///   sorted; on SFTP and local files an empty folder (one whose objects were all deleted) is still
///   a common prefix. `list` is unsorted.
/// - **Copy and rename** are the Store's, `rename_opts` included: a rename is one atomic call,
///   not a copy and a delete, and `RenameTargetMode::Create` never replaces an object.
/// - **Deletes** of objects that are not there succeed.
///
/// Errors map from [`ErrorKind`]: `NotFound`, `AlreadyExists`, `Precondition` and
/// `PermissionDenied` to the variants of those names, with the path; anything else is `Generic`,
/// with the Store's error as the source. `Display` shows the backend kind and the Store's root,
/// `Debug` the Store's `Debug`: no backend shows a credential there.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};
/// use store_backends::{MemoryBackend, ObjectStoreAdapter};
/// use store_core::Store;
///
/// let store = Store::new(MemoryBackend::new()).child(&"lake".parse()?);
/// let objects: Arc<dyn ObjectStore> = Arc::new(ObjectStoreAdapter::new(store.clone()));
/// objects.put(&Path::from("trips/part-0.parquet"), PutPayload::from("PAR1")).await?;
/// assert_eq!(objects.get_range(&Path::from("trips/part-0.parquet"), 1..3).await?, "AR");
/// // The same object through the Store, under its root.
/// assert_eq!(store.read(&"trips/part-0.parquet".parse()?).await?, "PAR1");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ObjectStoreAdapter {
    store: Store,
}

impl ObjectStoreAdapter {
    /// An `object_store` store over `store`: its objects, below its root.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The Store underneath.
    ///
    /// ```
    /// let store = store_core::Store::new(store_backends::MemoryBackend::new());
    /// let adapter = store_backends::ObjectStoreAdapter::new(store);
    /// assert_eq!(adapter.store().backend_kind(), "memory");
    /// ```
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The backend kind: the `store` of `Generic` errors.
    fn kind(&self) -> &'static str {
        self.store.backend_kind()
    }
}

impl fmt::Debug for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreAdapter").field("store", &self.store).finish()
    }
}

impl fmt::Display for ObjectStoreAdapter {
    /// `ObjectStoreAdapter(sftp)`, or with the Store's root: `ObjectStoreAdapter(sftp, root "lake")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.store.root() {
            Some(root) => write!(f, "ObjectStoreAdapter({}, root {root:?})", self.kind()),
            None => write!(f, "ObjectStoreAdapter({})", self.kind()),
        }
    }
}

/// The folder a listing starts from: `None` for the root (the empty location).
fn folder_path(prefix: Option<&str>) -> Result<Option<StorePath>> {
    prefix.filter(|prefix| !prefix.is_empty()).map(StorePath::parse).transpose()
}

/// When an object was last changed; the Unix epoch where the backend does not say.
fn modified(meta: &store_core::ObjectMeta) -> DateTime<Utc> {
    meta.last_modified.map_or(DateTime::UNIX_EPOCH, DateTime::from)
}

/// How many times a read asks for an object that is replaced between its metadata and its bytes, waiting
/// 1, 2, ... ms in between.
const READ_ATTEMPTS: usize = 10;

/// The read of an object that kept being replaced between its metadata and its bytes.
fn kept_changing() -> Error {
    let message = format!("the object was replaced between its metadata and its bytes, {READ_ATTEMPTS} times");
    Error::new(ErrorKind::Unavailable, message)
}

/// One part of a multipart upload, handed to its write, and who waits for the write to take it.
struct Part {
    chunks: Vec<Bytes>,
    taken: oneshot::Sender<()>,
}

/// A multipart upload: one streamed write of the Store, fed its parts through a channel in the
/// order `put_part` is called, by a task of its own (see [`ObjectStoreAdapter`]).
struct Upload {
    location: String,
    /// The backend kind, for errors.
    kind: &'static str,
    /// Where the parts go; `None` once the upload is completed or aborted. An error sent here fails
    /// the write, which then stores nothing; closing it ends the write, which then stores the object.
    parts: Option<mpsc::UnboundedSender<Result<Part>>>,
    /// The write; `None` once awaited.
    write: Option<JoinHandle<Result<WriteResult>>>,
}

impl Upload {
    fn start(store: &Store, path: StorePath, location: String) -> Self {
        let (parts, mut queued) = mpsc::unbounded_channel::<Result<Part>>();
        let chunks = stream::poll_fn(move |cx| queued.poll_recv(cx))
            .map_ok(|part| {
                // Taken: the write asks for the part's first bytes.
                let _ = part.taken.send(());
                stream::iter(part.chunks.into_iter().map(Ok))
            })
            .try_flatten()
            .boxed();
        let (writer, kind) = (store.clone(), store.backend_kind());
        let write = tokio::spawn(async move { writer.write_stream(&path, chunks, WriteMode::Overwrite).await });
        Upload { location, kind, parts: Some(parts), write: Some(write) }
    }

    /// Queues `chunks` now; the future completes once the write has taken them.
    fn queue(&mut self, chunks: Vec<Bytes>) -> BoxFuture<'static, Result<()>> {
        let (taken, was_taken) = oneshot::channel();
        let queued = self.parts.as_ref().is_some_and(|parts| parts.send(Ok(Part { chunks, taken })).is_ok());
        Box::pin(async move {
            if queued && was_taken.await.is_ok() {
                return Ok(());
            }
            let message = "the upload ended before this part was written: `complete` or `abort` says why";
            Err(Error::new(ErrorKind::Other, message))
        })
    }

    /// Ends the parts, and with them the write, which stores the object.
    async fn finish(&mut self) -> Result<WriteResult> {
        let (Some(parts), Some(write)) = (self.parts.take(), self.write.take()) else {
            return Err(Error::new(ErrorKind::Other, "the upload was already completed or aborted"));
        };
        drop(parts);
        write.await.map_err(|e| Error::new(ErrorKind::Other, "the upload's write stopped").with_source(e))?
    }

    /// Fails the write, which then stores nothing, and waits for it to end.
    async fn cancel(&mut self) {
        self.fail();
        if let Some(write) = self.write.take() {
            // Its error is the one sent: the upload was aborted.
            let _ = write.await;
        }
    }

    fn fail(&mut self) {
        if let Some(parts) = self.parts.take() {
            let _ = parts.send(Err(Error::new(ErrorKind::Other, "the multipart upload was aborted")));
        }
    }
}

impl Drop for Upload {
    /// An upload dropped before it was completed stores nothing: its write fails in the background.
    fn drop(&mut self) {
        self.fail();
    }
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload").field("location", &self.location).field("open", &self.parts.is_some()).finish()
    }
}

/// Implements `ObjectStore` (and `MultipartUpload`, for [`Upload`]) of the `object_store` release
/// `$os`; `extensions` names the field its result types have and 0.13's lack.
macro_rules! impl_object_store {
    ($os:ident $(, $extensions:ident)?) => {
        use std::ops::Range;

        use async_trait::async_trait;
        use bytes::Bytes;
        use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
        use $os::path::Path;
        use $os::{
            CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
            ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
            RenameTargetMode, UploadPart,
        };
        use store_core::{ErrorKind, ListEntry, StorePath, UpdateVersion, WriteMode, WriteResult};

        use super::{ObjectStoreAdapter, Upload, READ_ATTEMPTS};

        /// Our error about `path` as `object_store`'s.
        fn error(err: store_core::Error, path: &str, store: &'static str) -> $os::Error {
            let path = path.to_owned();
            match err.kind() {
                ErrorKind::NotFound => $os::Error::NotFound { path, source: err.into() },
                ErrorKind::AlreadyExists => $os::Error::AlreadyExists { path, source: err.into() },
                ErrorKind::Precondition => $os::Error::Precondition { path, source: err.into() },
                ErrorKind::PermissionDenied => $os::Error::PermissionDenied { path, source: err.into() },
                _ => $os::Error::Generic { store, source: err.into() },
            }
        }

        fn not_implemented(operation: &str) -> $os::Error {
            $os::Error::NotImplemented { operation: operation.to_owned(), implementer: "ObjectStoreAdapter".to_owned() }
        }

        /// The location of a Store path; every Store path is a valid location.
        fn location(path: &StorePath, store: &'static str) -> $os::Result<Path> {
            Path::parse(path.as_str()).map_err(|e| $os::Error::Generic { store, source: e.into() })
        }

        fn object_meta(location: Path, meta: &store_core::ObjectMeta) -> ObjectMeta {
            ObjectMeta {
                location,
                last_modified: super::modified(meta),
                size: meta.size,
                e_tag: meta.e_tag.clone(),
                version: meta.version.clone(),
            }
        }

        fn put_result(written: WriteResult) -> PutResult {
            PutResult { e_tag: written.e_tag, version: written.version, $($extensions: Default::default(),)? }
        }

        /// The object at `location`.
        fn object(location: &Path, store: &'static str) -> $os::Result<StorePath> {
            // The encoded form: `a%2Fb` stays one segment. The root (the empty location) is no object.
            StorePath::parse(location.as_ref()).map_err(|e| error(e, location.as_ref(), store))
        }

        /// The object's metadata and bytes (none for `head`), the two of one version of it.
        async fn read(adapter: &ObjectStoreAdapter, location: &Path, options: &GetOptions) -> $os::Result<GetResult> {
            let kind = adapter.kind();
            let path = object(location, kind)?;
            let failed = |e| error(e, location.as_ref(), kind);
            for attempt in 0..READ_ATTEMPTS {
                if attempt > 0 {
                    // A writer in the middle of a burst of replacements may be done a moment later.
                    tokio::time::sleep(std::time::Duration::from_millis(attempt as u64)).await;
                }
                let head = adapter.store.head(&path).await.map_err(failed)?;
                let meta = object_meta(location.clone(), &head);
                options.check_preconditions(&meta)?;
                let range = match &options.range {
                    Some(range) => {
                        range.as_range(meta.size).map_err(|e| $os::Error::Generic { store: kind, source: e.into() })?
                    }
                    None => 0..meta.size,
                };
                let payload = if options.head || range.is_empty() {
                    stream::empty().boxed()
                } else {
                    let whole = range == (0..meta.size);
                    let read = store_core::GetOptions {
                        range: (!whole).then(|| range.clone()),
                        stream: whole,
                        ..store_core::GetOptions::default()
                    };
                    let got = adapter.store.get_opts(&path, read).await.map_err(failed)?;
                    let read_version = UpdateVersion { e_tag: got.e_tag, version: got.version };
                    if read_version != UpdateVersion::default() && read_version != UpdateVersion::from(&head) {
                        continue;
                    }
                    let location = location.to_string();
                    got.payload.into_stream().map_err(move |e| error(e, &location, kind)).boxed()
                };
                return Ok(GetResult {
                    payload: GetResultPayload::Stream(payload),
                    meta,
                    range,
                    attributes: Default::default(),
                    $($extensions: Default::default(),)?
                });
            }
            Err(failed(super::kept_changing().with_context("read", location.as_ref(), kind)))
        }

        /// A failed copy or rename: about the target if it exists, else about the source.
        fn moving_error(err: store_core::Error, from: &Path, to: &Path, store: &'static str) -> $os::Error {
            let about = if err.kind() == ErrorKind::AlreadyExists { to } else { from };
            error(err, about.as_ref(), store)
        }

        #[async_trait]
        impl ObjectStore for ObjectStoreAdapter {
            async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> $os::Result<PutResult> {
                if !opts.attributes.is_empty() {
                    return Err(not_implemented("put_opts with attributes"));
                }
                let mode = match opts.mode {
                    PutMode::Overwrite => WriteMode::Overwrite,
                    PutMode::Create => WriteMode::CreateNew,
                    PutMode::Update(version) => {
                        WriteMode::IfMatch(UpdateVersion { e_tag: version.e_tag, version: version.version })
                    }
                };
                let path = object(location, self.kind())?;
                let written = self.store.write(&path, Bytes::from(payload), mode).await;
                Ok(put_result(written.map_err(|e| error(e, location.as_ref(), self.kind()))?))
            }

            async fn put_multipart_opts(
                &self,
                location: &Path,
                opts: PutMultipartOptions,
            ) -> $os::Result<Box<dyn MultipartUpload>> {
                if !opts.attributes.is_empty() {
                    return Err(not_implemented("put_multipart_opts with attributes"));
                }
                let path = object(location, self.kind())?;
                Ok(Box::new(Upload::start(&self.store, path, location.to_string())))
            }

            async fn get_opts(&self, location: &Path, options: GetOptions) -> $os::Result<GetResult> {
                if options.version.is_some() {
                    return Err(not_implemented("get_opts of a version"));
                }
                read(self, location, &options).await
            }

            async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> $os::Result<Vec<Bytes>> {
                let (path, kind) = (object(location, self.kind())?, self.kind());
                let read = |range: Range<u64>| {
                    let path = &path;
                    async move {
                        self.store.read_range(path, range).await.map_err(|e| error(e, location.as_ref(), kind))
                    }
                };
                $os::coalesce_ranges(ranges, read, $os::OBJECT_STORE_COALESCE_DEFAULT).await
            }

            fn delete_stream(
                &self,
                locations: BoxStream<'static, $os::Result<Path>>,
            ) -> BoxStream<'static, $os::Result<Path>> {
                let this = self.clone();
                locations
                    .map(move |location| {
                        let this = this.clone();
                        async move {
                            let location = location?;
                            let path = object(&location, this.kind())?;
                            let deleted = this.store.delete(&path, true).await;
                            deleted.map_err(|e| error(e, location.as_ref(), this.kind()))?;
                            Ok(location)
                        }
                    })
                    .buffered(10)
                    .boxed()
            }

            fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, $os::Result<ObjectMeta>> {
                let kind = self.kind();
                let shown = prefix.map(Path::to_string).unwrap_or_default();
                let folder = match super::folder_path(prefix.map(AsRef::as_ref)) {
                    Ok(folder) => folder,
                    Err(e) => return stream::once(async move { Err(error(e, &shown, kind)) }).boxed(),
                };
                self.store
                    .list(folder.as_ref(), true)
                    .map_err(move |e| error(e, &shown, kind))
                    .try_filter_map(move |entry| async move {
                        match entry {
                            ListEntry::Object(meta) => Ok(Some(object_meta(location(&meta.path, kind)?, &meta))),
                            ListEntry::Prefix(_) => Ok(None),
                        }
                    })
                    .boxed()
            }

            async fn list_with_delimiter(&self, prefix: Option<&Path>) -> $os::Result<ListResult> {
                let (kind, shown) = (self.kind(), prefix.map(Path::to_string).unwrap_or_default());
                let folder = super::folder_path(prefix.map(AsRef::as_ref)).map_err(|e| error(e, &shown, kind))?;
                let entries: Vec<ListEntry> =
                    self.store.list(folder.as_ref(), false).try_collect().await.map_err(|e| error(e, &shown, kind))?;
                let (mut common_prefixes, mut objects) = (Vec::new(), Vec::new());
                for entry in entries {
                    match entry {
                        ListEntry::Object(meta) => objects.push(object_meta(location(&meta.path, kind)?, &meta)),
                        ListEntry::Prefix(folder) => common_prefixes.push(location(&folder, kind)?),
                    }
                }
                common_prefixes.sort_unstable();
                objects.sort_unstable_by(|a, b| a.location.cmp(&b.location));
                Ok(ListResult { common_prefixes, objects, $($extensions: Default::default(),)? })
            }

            async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> $os::Result<()> {
                let overwrite = matches!(options.mode, CopyMode::Overwrite);
                let copied = self.store.copy(&object(from, self.kind())?, &object(to, self.kind())?, overwrite).await;
                copied.map_err(|e| moving_error(e, from, to, self.kind()))
            }

            /// One atomic call of the Store, where `object_store`'s default copies and deletes.
            async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> $os::Result<()> {
                let overwrite = matches!(options.target_mode, RenameTargetMode::Overwrite);
                let renamed = self.store.rename(&object(from, self.kind())?, &object(to, self.kind())?, overwrite).await;
                renamed.map_err(|e| moving_error(e, from, to, self.kind()))
            }
        }

        #[async_trait]
        impl MultipartUpload for Upload {
            fn put_part(&mut self, data: PutPayload) -> UploadPart {
                let taken = self.queue(data.into_iter().collect());
                let (location, kind) = (self.location.clone(), self.kind);
                Box::pin(async move { taken.await.map_err(|e| error(e, &location, kind)) })
            }

            async fn complete(&mut self) -> $os::Result<PutResult> {
                let written = self.finish().await;
                Ok(put_result(written.map_err(|e| error(e, &self.location, self.kind))?))
            }

            async fn abort(&mut self) -> $os::Result<()> {
                self.cancel().await;
                Ok(())
            }
        }
    };
}

#[cfg(feature = "object-store-adapter")]
mod v0_14 {
    impl_object_store!(object_store, extensions);
}

#[cfg(feature = "object-store-0-13")]
mod v0_13 {
    impl_object_store!(object_store_0_13);
}
