//! One [`Backend`] over any `object_store` implementation; each backend module
//! only configures the underlying store.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
use object_store::signer::{Method, Signer};
use object_store::{
    Attribute, AttributeValue, Attributes, CopyMode, CopyOptions, GetOptions, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RenameOptions, RenameTargetMode, WriteMultipart,
};
use store_core::buffer::{Gathered, gather};
use store_core::{
    Backend, Error, GetResult, HeadOptions, Leftover, ListEntry, Metadata, ObjectMeta, ObjectStream, Payload, Result,
    StorePath, WriteMode, WriteResult,
};

use crate::error::ObjectStoreError;
use crate::uri::uri_escape;

/// A [`Backend`] over an `object_store` store `S`.
///
/// The named backends are instantiations of it (or, for [`crate::LocalBackend`], wrap one:
/// [`crate::MemoryBackend`]); they differ only in how they are built.
///
/// Conditional writes ([`WriteMode::IfMatch`]) are object_store's `PutMode::Update`: the
/// store compares the e-tag (GCS: the generation) itself, against every writer. They go
/// as one request whatever their size, since a multipart upload cannot be made
/// conditional, so a stream larger than one part is refused; an object changed or gone
/// is [`store_core::ErrorKind::Precondition`].
pub struct ObjectStoreBackend<S> {
    store: Arc<S>,
    kind: &'static str,
    /// URI of the backend root, without a trailing `/`; object URIs append the path.
    uri_root: String,
    part_size: usize,
    parts_in_flight: usize,
    /// Whether the store keeps user metadata (attributes); local files do not.
    stores_metadata: bool,
    /// What holds the objects, for messages: `the bucket "data"`; `None` where nothing can be missing.
    container: Option<String>,
    /// Where interrupted writes leave something behind that a listing does not show.
    staging: Option<Arc<dyn Staging>>,
    /// Signs URLs for reads, where the store can (see [`Backend::signed_url`]).
    #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
    signer: Option<Arc<dyn Signer>>,
}

/// What interrupted writes leave behind on a store, beyond its listing (see [`Backend::leftovers`]).
#[async_trait]
pub(crate) trait Staging: Send + Sync {
    /// The leftovers under `prefix`.
    async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>>;
    /// Removes one; one already gone is no error.
    async fn remove(&self, leftover: &Leftover) -> Result<()>;
}

/// Streamed writes of at least this size go as multipart uploads of parts this large.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// How many parts of one multipart upload are sent at once by default.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;

impl<S> ObjectStoreBackend<S> {
    /// The backends built on object_store start here; with none of them enabled, nothing does.
    #[cfg(any(feature = "local", feature = "memory", feature = "s3", feature = "azure", feature = "gcs"))]
    pub(crate) fn from_store(store: S, kind: &'static str, uri_root: String) -> Self {
        Self {
            store: Arc::new(store),
            kind,
            uri_root,
            part_size: DEFAULT_PART_SIZE,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            stores_metadata: true,
            container: None,
            staging: None,
            #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
            signer: None,
        }
    }

    /// Names what holds the objects (`the bucket "data"`), so that a write that
    /// finds it missing says so.
    #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
    pub(crate) fn in_container(mut self, container: String) -> Self {
        self.container = Some(container);
        self
    }

    /// A failed write's error. An object store answers a write "not found"
    /// only when the bucket (or container) is missing: never "no such object";
    /// except to a conditional write, whose object is gone (S3 says so, where
    /// others fail the precondition).
    fn write_error(&self, err: object_store::Error, mode: &WriteMode) -> Error {
        match (&err, &self.container) {
            (object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }, _)
                if matches!(mode, WriteMode::IfMatch(_)) =>
            {
                ObjectStoreError::Changed(err).into()
            }
            (object_store::Error::NotFound { .. }, Some(container)) => {
                ObjectStoreError::MissingContainer(container.clone()).into()
            }
            _ => map_error(err),
        }
    }

    /// Where this store's interrupted writes leave something behind.
    #[cfg(any(feature = "s3", feature = "gcs"))]
    pub(crate) fn with_staging(mut self, staging: Arc<dyn Staging>) -> Self {
        self.staging = Some(staging);
        self
    }

    /// Signs read URLs with the store's own credentials.
    #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
    pub(crate) fn signing(mut self) -> Self
    where
        S: Signer,
    {
        self.signer = Some(self.store.clone());
        self
    }

    /// The `object_store` store underneath.
    #[cfg(any(feature = "local", test))]
    pub(crate) fn inner(&self) -> &S {
        &self.store
    }

    /// For stores that reject attributes (object_store's local filesystem).
    #[cfg(feature = "local")]
    pub(crate) fn without_metadata(mut self) -> Self {
        self.stores_metadata = false;
        self
    }

    /// Sets the multipart part size (at least 5 MiB, S3's minimum) and how many
    /// parts are in flight at once; a streamed write buffers about
    /// `part_size * (parts_in_flight + 1)` bytes at most.
    pub fn with_multipart(mut self, part_size: usize, parts_in_flight: usize) -> Self {
        self.part_size = part_size.max(5 << 20);
        self.parts_in_flight = parts_in_flight.max(1);
        self
    }
}

impl<S> Clone for ObjectStoreBackend<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            kind: self.kind,
            uri_root: self.uri_root.clone(),
            part_size: self.part_size,
            parts_in_flight: self.parts_in_flight,
            stores_metadata: self.stores_metadata,
            container: self.container.clone(),
            staging: self.staging.clone(),
            #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
            signer: self.signer.clone(),
        }
    }
}

impl<S> fmt::Debug for ObjectStoreBackend<S> {
    // Only kind and root: the inner store's Debug may show configuration we never print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend").field("kind", &self.kind).field("root", &self.uri_root).finish()
    }
}

pub(crate) fn location(path: &StorePath) -> Result<Path> {
    // A StorePath is stricter than object_store's Path, so this only fails on a bug.
    Ok(Path::parse(path.as_str()).map_err(ObjectStoreError::Path)?)
}

fn store_path(location: &Path) -> Result<StorePath> {
    StorePath::parse(location.as_ref())
}

/// An `object_store` error as ours: see [`ObjectStoreError::Store`].
fn map_error(err: object_store::Error) -> Error {
    ObjectStoreError::Store(err).into()
}

/// A multipart upload that failed to finish. One whose upload is gone (`NoSuchUpload`: S3 answers it as a
/// 404, which object_store reports as `NotFound`) was completed by an earlier attempt whose answer was lost,
/// or discarded: the object holds this write or what was there before, so the write is `Unavailable`, worth
/// making again, never a missing object.
fn finish_error(err: object_store::Error) -> Error {
    if matches!(err, object_store::Error::NotFound { .. }) || err.to_string().contains("NoSuchUpload") {
        return ObjectStoreError::UploadGone(err).into();
    }
    map_error(err)
}

fn user_metadata(attributes: &Attributes) -> Metadata {
    attributes
        .iter()
        .filter_map(|(attribute, value)| match attribute {
            Attribute::Metadata(key) => Some((key.to_string(), value.to_string())),
            _ => None,
        })
        .collect()
}

fn object_meta(meta: object_store::ObjectMeta) -> Result<ObjectMeta> {
    Ok(ObjectMeta {
        path: store_path(&meta.location)?,
        size: meta.size,
        last_modified: Some(SystemTime::from(meta.last_modified)),
        e_tag: meta.e_tag,
        version: meta.version,
    })
}

impl<S: ObjectStore> ObjectStoreBackend<S> {
    /// One object with `attributes`; larger than a part, a multipart upload.
    /// A conditional write ([`WriteMode::IfMatch`]) goes as one request whatever its size:
    /// object_store has no conditional multipart upload.
    async fn put(&self, path: &StorePath, data: Bytes, mode: WriteMode, attributes: Attributes) -> Result<WriteResult> {
        if data.len() > self.part_size && !matches!(mode, WriteMode::IfMatch(_)) {
            // Large objects go as a multipart upload, several parts at once; the
            // parts are slices of `data`, not copies.
            let parts: Vec<Result<Bytes>> = (0..data.len())
                .step_by(self.part_size)
                .map(|at| Ok(data.slice(at..(at + self.part_size).min(data.len()))))
                .collect();
            return self.put_multipart(path, stream::iter(parts).boxed(), mode, attributes).await;
        }
        let put_mode = match &mode {
            WriteMode::Overwrite => PutMode::Overwrite,
            WriteMode::CreateNew => PutMode::Create,
            WriteMode::IfMatch(expected) => {
                if expected.e_tag.is_none() && expected.version.is_none() {
                    return Err(ObjectStoreError::NoVersion.into());
                }
                PutMode::Update(object_store::UpdateVersion {
                    e_tag: expected.e_tag.clone(),
                    version: expected.version.clone(),
                })
            }
        };
        let options = PutOptions { mode: put_mode, attributes, ..Default::default() };
        let put = self.store.put_opts(&location(path)?, PutPayload::from_bytes(data), options).await;
        let put = put.map_err(|e| self.write_error(e, &mode))?;
        Ok(WriteResult { e_tag: put.e_tag, version: put.version })
    }

    /// What `data` yields, with `attributes`: up to one part in a single
    /// request, else a multipart upload.
    async fn put_stream(
        &self,
        path: &StorePath,
        data: BoxStream<'static, Result<Bytes>>,
        mode: WriteMode,
        attributes: Attributes,
    ) -> Result<WriteResult> {
        match gather(data, self.part_size).await? {
            Gathered::Whole(data) => self.put(path, data, mode, attributes).await,
            Gathered::Streaming(_) if matches!(mode, WriteMode::IfMatch(_)) => {
                Err(ObjectStoreError::ConditionalStream { part_size: self.part_size }.into())
            }
            Gathered::Streaming(chunks) => self.put_multipart(path, chunks, mode, attributes).await,
        }
    }

    /// A multipart upload, straight to the target when replacing it, or to a
    /// temporary renamed create-only, since multipart uploads have no
    /// create-only mode.
    async fn put_multipart(
        &self,
        path: &StorePath,
        mut chunks: BoxStream<'static, Result<Bytes>>,
        mode: WriteMode,
        attributes: Attributes,
    ) -> Result<WriteResult> {
        let target = location(path)?;
        let upload_to = match mode {
            WriteMode::Overwrite => target.clone(),
            WriteMode::CreateNew => {
                Path::parse(format!("{target}.upload-{}", unique_suffix())).map_err(ObjectStoreError::Path)?
            }
            WriteMode::IfMatch(_) => {
                return Err(ObjectStoreError::ConditionalStream { part_size: self.part_size }.into());
            }
        };
        let options = PutMultipartOptions { attributes, ..Default::default() };
        let upload =
            self.store.put_multipart_opts(&upload_to, options).await.map_err(|e| self.write_error(e, &mode))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let sent = loop {
            match chunks.try_next().await {
                Ok(Some(chunk)) => match parts.wait_for_capacity(self.parts_in_flight).await {
                    Ok(()) => parts.put(chunk),
                    Err(e) => break Err(map_error(e)),
                },
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = sent {
            // Aborting discards the parts; there is nothing at the target to undo.
            let _ = parts.abort().await;
            return Err(e);
        }
        let put = parts.finish().await.map_err(finish_error)?;
        if matches!(mode, WriteMode::CreateNew) {
            let options = RenameOptions::new().with_target_mode(RenameTargetMode::Create);
            if let Err(e) = self.store.rename_opts(&upload_to, &target, options).await {
                let _ = self.store.delete(&upload_to).await;
                return Err(map_error(e));
            }
        }
        Ok(WriteResult { e_tag: put.e_tag, version: put.version })
    }
}

impl<S: ObjectStore> ObjectStoreBackend<S> {
    /// Starts reading the object at `path`. An object larger than two parts is
    /// read as its first part from this response and part-sized ranges,
    /// `parts_in_flight` at once from the start: several connections move a
    /// large object faster than one. The ranges are pinned to the first
    /// response's e-tag, so an object replaced meanwhile fails the read
    /// instead of mixing versions.
    async fn get(&self, path: &StorePath) -> Result<Fetch> {
        let location = location(path)?;
        let first = self.store.get(&location).await.map_err(map_error)?;
        let (size, metadata) = (first.meta.size, user_metadata(&first.attributes));
        let version = (first.meta.e_tag.clone(), first.meta.version.clone());
        let part = self.part_size as u64;
        let e_tag = first.meta.e_tag.clone();
        let (Some(e_tag), true) = (e_tag, size > 2 * part) else {
            return Ok(Fetch { size, metadata, version, body: FetchBody::Whole(first) });
        };
        let head = truncated(first.into_stream().map_err(map_error).boxed(), part);
        let store = self.store.clone();
        let mut ranges = (part..size).step_by(part as usize).map(move |start| {
            let (store, location) = (store.clone(), location.clone());
            let options =
                GetOptions::new().with_range(Some(start..(start + part).min(size))).with_if_match(Some(e_tag.clone()));
            // A task of its own, so that the range keeps downloading while the reader
            // is busy with the previous one, rather than only while it waits.
            AbortOnDrop(tokio::spawn(async move { store.get_opts(&location, options).await?.bytes().await }))
        });
        // The first ranges start now, alongside the first part, not after it.
        let started: Vec<_> = ranges.by_ref().take(self.parts_in_flight).collect();
        let rest =
            stream::iter(started.into_iter().chain(ranges)).buffered(self.parts_in_flight).map_err(|e| match e {
                object_store::Error::Precondition { .. } => ObjectStoreError::Replaced.into(),
                other => map_error(other),
            });
        Ok(Fetch { size, metadata, version, body: FetchBody::Parts(head.chain(rest).boxed()) })
    }
}

/// A spawned task, stopped if it is dropped unfinished (a reader that stops early
/// stops its ranges too); a task that panicked or was stopped is an error.
struct AbortOnDrop<T>(tokio::task::JoinHandle<object_store::Result<T>>);

impl<T> Future for AbortOnDrop<T> {
    type Output = object_store::Result<T>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| joined.unwrap_or_else(|e| Err(object_store::Error::JoinError { source: e })))
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An object being read (see `ObjectStoreBackend::get`).
struct Fetch {
    size: u64,
    metadata: Metadata,
    /// The e-tag and version of the object read.
    version: (Option<String>, Option<String>),
    body: FetchBody,
}

enum FetchBody {
    Whole(object_store::GetResult),
    Parts(BoxStream<'static, Result<Bytes>>),
}

impl Fetch {
    async fn bytes(self) -> Result<(Bytes, Metadata)> {
        let data: Bytes = match self.body {
            FetchBody::Whole(result) => result.bytes().await.map_err(map_error)?,
            FetchBody::Parts(mut parts) => {
                let mut data = store_core::buffer::with_capacity(self.size as usize);
                while let Some(part) = parts.try_next().await? {
                    data.extend_from_slice(&part);
                }
                data.into()
            }
        };
        if data.len() as u64 != self.size {
            return Err(ObjectStoreError::CutShort { seen: data.len() as u64, size: self.size }.into());
        }
        Ok((data, self.metadata))
    }

    fn into_stream(self) -> ObjectStream {
        let chunks = match self.body {
            FetchBody::Whole(result) => result.into_stream().map_err(map_error).boxed(),
            FetchBody::Parts(parts) => parts,
        };
        ObjectStream { size: Some(self.size), metadata: self.metadata, chunks: exactly(chunks, self.size) }
    }
}

/// `chunks`, failing at their end unless they came to `size` bytes: a body cut short must fail the read
/// (as a transport error, worth retrying), never pass for the whole object.
fn exactly(chunks: BoxStream<'static, Result<Bytes>>, size: u64) -> BoxStream<'static, Result<Bytes>> {
    stream::unfold(Some((chunks, 0)), move |state| async move {
        let (mut chunks, seen) = state?;
        match chunks.next().await {
            Some(Ok(chunk)) => {
                let seen = seen + chunk.len() as u64;
                Some((Ok(chunk), Some((chunks, seen))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None if seen == size => None,
            None => Some((Err(ObjectStoreError::CutShort { seen, size }.into()), None)),
        }
    })
    .boxed()
}

/// The first `limit` bytes of `body`; the rest is never read (the connection is dropped).
fn truncated(body: BoxStream<'static, Result<Bytes>>, limit: u64) -> BoxStream<'static, Result<Bytes>> {
    stream::unfold((body, limit), |(mut body, left)| async move {
        if left == 0 {
            return None;
        }
        let mut chunk = match body.next().await? {
            Ok(chunk) => chunk,
            Err(e) => return Some((Err(e), (body, 0))),
        };
        chunk.truncate(chunk.len().min(left as usize));
        let left = left - chunk.len() as u64;
        Some((Ok(chunk), (body, left)))
    })
    .boxed()
}

#[async_trait]
impl<S: ObjectStore> Backend for ObjectStoreBackend<S> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn uri(&self, path: &StorePath) -> String {
        format!("{}/{}", self.uri_root, uri_escape(path.as_str()))
    }

    async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>> {
        match &self.staging {
            Some(staging) => staging.leftovers(prefix).await,
            None => Ok(Vec::new()),
        }
    }

    #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
    async fn signed_url(&self, path: &StorePath, expires_in: std::time::Duration) -> Result<Option<String>> {
        let Some(signer) = &self.signer else { return Ok(None) };
        let url = signer.signed_url(Method::GET, &location(path)?, expires_in).await.map_err(map_error)?;
        Ok(Some(url.to_string()))
    }

    async fn remove_leftover(&self, leftover: &Leftover) -> Result<()> {
        match &self.staging {
            Some(staging) => staging.remove(leftover).await,
            None => Ok(()),
        }
    }

    async fn get_opts(&self, path: &StorePath, options: store_core::GetOptions) -> Result<GetResult> {
        let Some(range) = options.range else {
            let fetch = self.get(path).await?;
            let (e_tag, version) = fetch.version.clone();
            if options.stream {
                return Ok(GetResult::from(fetch.into_stream()).with_version(e_tag, version));
            }
            let (data, metadata) = fetch.bytes().await?;
            let size = data.len() as u64;
            return Ok(GetResult::new(data.into(), Some(size), metadata).with_version(e_tag, version));
        };
        let ranged = GetOptions { range: Some(range.into()), ..GetOptions::default() };
        let result = self.store.get_opts(&location(path)?, ranged).await.map_err(map_error)?;
        let metadata = if options.metadata { user_metadata(&result.attributes) } else { Metadata::new() };
        let (e_tag, version) = (result.meta.e_tag.clone(), result.meta.version.clone());
        let data = result.bytes().await.map_err(map_error)?;
        let size = data.len() as u64;
        Ok(GetResult::new(data.into(), Some(size), metadata).with_version(e_tag, version))
    }

    async fn head_opts(&self, path: &StorePath, options: HeadOptions) -> Result<(ObjectMeta, Metadata)> {
        if !options.metadata {
            return Ok((object_meta(self.store.head(&location(path)?).await.map_err(map_error)?)?, Metadata::new()));
        }
        let options = GetOptions { head: true, ..GetOptions::default() };
        let result = self.store.get_opts(&location(path)?, options).await.map_err(map_error)?;
        let metadata = user_metadata(&result.attributes);
        Ok((object_meta(result.meta)?, metadata))
    }

    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Payload,
        options: store_core::PutOptions,
    ) -> Result<WriteResult> {
        if !self.stores_metadata {
            options.refuse_metadata(self.kind)?;
        }
        let attributes = options
            .metadata
            .into_iter()
            .map(|(key, value)| (Attribute::Metadata(key.into()), AttributeValue::from(value)))
            .collect();
        match payload {
            Payload::Bytes(data) => self.put(path, data, options.mode, attributes).await,
            Payload::Stream(chunks) => self.put_stream(path, chunks, options.mode, attributes).await,
        }
    }

    fn stores_metadata(&self) -> bool {
        self.stores_metadata
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        match self.store.delete(&location(path)?).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other.map_err(map_error),
        }
    }

    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        let prefix = match prefix.map(location).transpose() {
            Ok(prefix) => prefix,
            Err(e) => return stream::once(async { Err(e) }).boxed(),
        };
        if recursive {
            return self
                .store
                .list(prefix.as_ref())
                .map_err(map_error)
                .and_then(|meta| async { object_meta(meta).map(ListEntry::Object) })
                .boxed();
        }
        let store = self.store.clone();
        stream::once(async move {
            let listing = store.list_with_delimiter(prefix.as_ref()).await.map_err(map_error)?;
            let folders = listing.common_prefixes.iter().map(|p| store_path(p).map(ListEntry::Prefix));
            let objects = listing.objects.into_iter().map(|meta| object_meta(meta).map(ListEntry::Object));
            Ok::<_, Error>(stream::iter(folders.collect::<Vec<_>>().into_iter().chain(objects)))
        })
        .try_flatten()
        .boxed()
    }

    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        let mode = if overwrite { CopyMode::Overwrite } else { CopyMode::Create };
        let options = CopyOptions::new().with_mode(mode);
        self.store.copy_opts(&location(from)?, &location(to)?, options).await.map_err(map_error)
    }

    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        let mode = if overwrite { RenameTargetMode::Overwrite } else { RenameTargetMode::Create };
        let options = RenameOptions::new().with_target_mode(mode);
        self.store.rename_opts(&location(from)?, &location(to)?, options).await.map_err(map_error)
    }
}

/// A suffix no other upload of this process, or of another process, picks at the same time.
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "memory")]
    #[tokio::test]
    async fn a_large_object_replaced_while_it_is_read_in_ranges_fails_the_read() {
        use futures::{StreamExt, TryStreamExt};
        use store_core::{BackendExt, ErrorKind, WriteMode};

        let backend = crate::MemoryBackend::new().with_multipart(5 << 20, 2);
        let path = "big.bin".parse().unwrap();
        let (old, new) = (vec![1u8; 16 << 20], vec![2u8; 16 << 20]);
        backend.write(&path, old.clone().into(), WriteMode::Overwrite).await.unwrap();
        let object = backend.read_stream_with_metadata(&path).await.unwrap();
        assert_eq!(object.size, Some(16 << 20));
        let chunks: Vec<_> = object.chunks.try_collect().await.unwrap();
        assert!(chunks.len() > 1 && chunks.concat() == old, "read back whole, in parts");

        let mut chunks = backend.read_stream(&path).await.unwrap();
        let first = chunks.next().await.unwrap().unwrap();
        assert!(first.iter().all(|b| *b == 1));
        backend.write(&path, new.into(), WriteMode::Overwrite).await.unwrap();
        let rest: Result<Vec<_>, _> = chunks.try_collect().await;
        let err = rest.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Precondition, "never a mix of two versions");
        assert!(err.to_string().contains("replaced while it was being read"), "{err}");
    }

    /// A conditional write goes as one request: from one buffer at any size, from a stream up to one part.
    #[cfg(feature = "memory")]
    #[tokio::test]
    async fn conditional_writes_go_in_one_request() {
        use bytes::Bytes;
        use futures::stream::{self, StreamExt};
        use store_core::{ErrorKind, Store, WriteMode};

        let store = Store::new(crate::MemoryBackend::new().with_multipart(5 << 20, 2));
        let path = "big.bin".parse().unwrap();
        store.write(&path, "small".into(), WriteMode::Overwrite).await.unwrap();
        let (_, version) = store.read_for_update(&path).await.unwrap();
        let big = Bytes::from(vec![7u8; 12 << 20]);
        let written = store.write(&path, big.clone(), WriteMode::IfMatch(version)).await.expect("12 MiB in one PUT");
        assert!(store.read(&path).await.unwrap() == big);

        let parts = || stream::iter((0..3).map(|_| Ok(Bytes::from(vec![1u8; 4 << 20])))).boxed();
        let err = store.write_stream(&path, parts(), WriteMode::IfMatch(written.clone().into())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other, "{err}");
        assert!(err.to_string().contains("write it from one buffer"), "{err}");
        assert!(store.read(&path).await.unwrap() == big, "a refused stream changed nothing");
        let one_part = stream::iter([Ok(Bytes::from("a")), Ok(Bytes::from("b"))]).boxed();
        store.write_stream(&path, one_part, WriteMode::IfMatch(written.into())).await.expect("a stream of one part");
        assert_eq!(store.read(&path).await.unwrap(), "ab");
    }

    #[tokio::test]
    async fn a_body_cut_short_fails_the_read_as_unavailable() {
        use bytes::Bytes;
        use futures::stream::{self, StreamExt, TryStreamExt};
        use store_core::ErrorKind;

        let chunks = || stream::iter([Ok(Bytes::from("abc")), Ok(Bytes::from("de"))]).boxed();
        let whole: Vec<Bytes> = super::exactly(chunks(), 5).try_collect().await.unwrap();
        assert_eq!(whole.concat(), b"abcde");
        let err = super::exactly(chunks(), 8).try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("after 5 of its 8 bytes"), "{err}");
    }
}
