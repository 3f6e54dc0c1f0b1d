//! A backend for tests: memory storage, with or without object metadata (so
//! checksums go to the metadata or to records), whose whole-object reads go
//! through a hook, and whose requests that change something fail once
//! `requests_left` runs out, as when the writer is killed or its server goes
//! away in the middle of a write.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use store_backends::MemoryBackend;
use store_core::{
    Backend, BackendExt, Error, ErrorKind, GetOptions, GetResult, HeadOptions, ListEntry, Metadata, ObjectMeta,
    Payload, PutOptions, Result, StorePath, WriteResult,
};

/// What a [`Hooked`] backend does on a whole-object read.
#[async_trait::async_trait]
pub trait ReadHook: Debug + Default + Send + Sync + 'static {
    /// The backend's kind, as errors name it.
    const KIND: &'static str;

    /// Reads `path`, usually from `inner`.
    async fn read(&self, inner: &MemoryBackend, path: &StorePath) -> Result<Bytes>;
}

/// Reads as they are.
#[derive(Debug, Default)]
pub struct PlainReads;

#[async_trait::async_trait]
impl ReadHook for PlainReads {
    const KIND: &'static str = "test";

    async fn read(&self, inner: &MemoryBackend, path: &StorePath) -> Result<Bytes> {
        inner.read(path).await
    }
}

/// Memory storage whose reads go through `hook`, that keeps metadata or not,
/// and that stops changing anything once `requests_left` is spent.
#[derive(Debug)]
pub struct Hooked<H = PlainReads> {
    inner: MemoryBackend,
    keeps_metadata: bool,
    /// Writes, deletes, copies and renames that still succeed; unlimited at first.
    pub requests_left: Arc<AtomicUsize>,
    /// Bytes handed out by reads, whole or ranged.
    pub bytes_read: Arc<AtomicU64>,
    pub hook: H,
}

impl<H: ReadHook> Hooked<H> {
    pub fn new(keeps_metadata: bool) -> Self {
        let requests_left = Arc::new(AtomicUsize::new(usize::MAX));
        let bytes_read = Arc::new(AtomicU64::new(0));
        Self { inner: MemoryBackend::new(), keeps_metadata, requests_left, bytes_read, hook: H::default() }
    }

    /// Spends one request, or fails as a server that is gone.
    fn spend(&self) -> Result<()> {
        match self.requests_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::new(ErrorKind::Unavailable, "the server is gone")),
        }
    }
}

impl<H: ReadHook> Default for Hooked<H> {
    fn default() -> Self {
        Self::new(false)
    }
}

#[async_trait::async_trait]
impl<H: ReadHook> Backend for Hooked<H> {
    fn kind(&self) -> &'static str {
        H::KIND
    }
    fn uri(&self, path: &StorePath) -> String {
        self.inner.uri(path)
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        if options.range.is_some() {
            let data = self.inner.get_opts(path, options).await?.payload.bytes().await?;
            self.bytes_read.fetch_add(data.len() as u64, Ordering::SeqCst);
            let size = data.len() as u64;
            return Ok(GetResult::new(data.into(), Some(size), Metadata::new()));
        }
        let data = self.hook.read(&self.inner, path).await?;
        self.bytes_read.fetch_add(data.len() as u64, Ordering::SeqCst);
        let metadata = if self.keeps_metadata && options.metadata {
            self.inner.read_with_metadata(path).await?.1
        } else {
            Metadata::new()
        };
        let size = data.len() as u64;
        Ok(GetResult::new(data.into(), Some(size), metadata))
    }
    async fn head_opts(&self, path: &StorePath, options: HeadOptions) -> Result<(ObjectMeta, Metadata)> {
        let (meta, metadata) = self.inner.head_opts(path, options).await?;
        Ok((meta, if self.keeps_metadata { metadata } else { Metadata::new() }))
    }
    async fn put_opts(&self, path: &StorePath, payload: Payload, options: PutOptions) -> Result<WriteResult> {
        if !self.keeps_metadata {
            options.refuse_metadata(self.kind())?;
        }
        // The whole stream first, as a multipart upload sends every part before it completes.
        let data = payload.bytes().await?;
        self.spend()?;
        self.inner.put_opts(path, data.into(), options).await
    }
    fn stores_metadata(&self) -> bool {
        self.keeps_metadata
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.spend()?;
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        self.inner.list(prefix, recursive)
    }
    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.spend()?;
        self.inner.copy(from, to, overwrite).await
    }
    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.spend()?;
        self.inner.rename(from, to, overwrite).await
    }
}
