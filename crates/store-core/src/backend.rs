//! The narrow async trait a storage backend implements.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::{Error, ErrorKind, Result, StorePath};

/// User metadata kept with an object: keys of ASCII letters, digits and `_`
/// (names every backend accepts) and short string values.
pub type Metadata = BTreeMap<String, String>;

/// How a write treats an object that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Replace it atomically: readers see the old or the new object, never a mix.
    #[default]
    Overwrite,
    /// Fail with [`crate::ErrorKind::AlreadyExists`] and leave it untouched.
    CreateNew,
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

/// A storage backend. Paths here are backend-relative: the [`crate::Store`]
/// applies its root prefix before calling and adds operation, path and backend
/// kind to every error after.
///
/// Implementations map their own errors onto [`crate::ErrorKind`] and keep
/// credentials out of messages. Every implementation runs the shared
/// conformance suite (`store_core::conformance`, feature `conformance`).
#[async_trait]
pub trait Backend: Debug + Send + Sync + 'static {
    /// Short backend name used in errors and metadata: `"local"`, `"memory"`, `"s3"`, ...
    fn kind(&self) -> &'static str;

    /// The object's URI in the backend's own scheme (`file:///...`, `s3://bucket/key`).
    fn uri(&self, path: &StorePath) -> String;

    /// The whole object.
    async fn read(&self, path: &StorePath) -> Result<Bytes>;

    /// Bytes `range.start..range.end` of the object (clamped at its end).
    async fn read_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes>;

    /// Stores `data` at `path` atomically: on any failure no partial object is visible.
    async fn write(&self, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<WriteResult>;

    /// Metadata of one object.
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta>;

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

    /// Stores what `data` yields at `path`, atomically: nothing is visible at
    /// `path` until the stream ends, and a failed stream or upload leaves no
    /// object behind. Backends with multipart uploads override this to send
    /// parts as they fill, several at once, with memory bounded by the part
    /// size; the default gathers the stream and calls [`write`](Self::write).
    async fn write_stream(
        &self,
        path: &StorePath,
        data: BoxStream<'static, Result<Bytes>>,
        mode: WriteMode,
    ) -> Result<WriteResult> {
        let chunks: Vec<Bytes> = data.try_collect().await?;
        self.write(path, chunks.concat().into(), mode).await
    }

    /// The object as a stream of chunks, so large objects need not fit in
    /// memory. The default reads the whole object as one chunk.
    async fn read_stream(&self, path: &StorePath) -> Result<BoxStream<'static, Result<Bytes>>> {
        let data = self.read(path).await?;
        Ok(stream::once(async { Ok(data) }).boxed())
    }

    /// Whether [`write_with_metadata`](Self::write_with_metadata) keeps metadata
    /// with the object (S3, Azure, GCS, memory). Backends that cannot (local
    /// files, SFTP) keep the default `false`.
    fn stores_metadata(&self) -> bool {
        false
    }

    /// Like [`write`](Self::write), with `metadata` stored as part of the same
    /// atomic write; replacing an object replaces its metadata. The default
    /// refuses non-empty metadata, for backends that cannot store it.
    async fn write_with_metadata(
        &self,
        path: &StorePath,
        data: Bytes,
        mode: WriteMode,
        metadata: &Metadata,
    ) -> Result<WriteResult> {
        if metadata.is_empty() {
            return self.write(path, data, mode).await;
        }
        Err(Error::new(ErrorKind::Other, format!("the {} backend does not store object metadata", self.kind())))
    }

    /// The whole object and the metadata stored with it, from one request
    /// where the backend allows. The default reads the object with no metadata.
    async fn read_with_metadata(&self, path: &StorePath) -> Result<(Bytes, Metadata)> {
        Ok((self.read(path).await?, Metadata::new()))
    }

    /// The object's metadata and the metadata stored with it, without its bytes.
    /// The default has no stored metadata, for backends that keep none.
    async fn head_with_metadata(&self, path: &StorePath) -> Result<(ObjectMeta, Metadata)> {
        Ok((self.head(path).await?, Metadata::new()))
    }

    /// The object as a stream, with its size and metadata, from one request where
    /// the backend allows. The default reads the whole object where the backend
    /// keeps metadata, else streams it with no metadata and no size.
    async fn read_stream_with_metadata(&self, path: &StorePath) -> Result<ObjectStream> {
        if self.stores_metadata() {
            let (data, metadata) = self.read_with_metadata(path).await?;
            let size = Some(data.len() as u64);
            return Ok(ObjectStream { size, metadata, chunks: stream::once(async { Ok(data) }).boxed() });
        }
        Ok(ObjectStream { size: None, metadata: Metadata::new(), chunks: self.read_stream(path).await? })
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

    /// Releases connections and other resources. The default does nothing.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
