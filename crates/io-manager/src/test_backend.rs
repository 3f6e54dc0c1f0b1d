//! A backend for tests: memory storage that keeps no metadata (so checksums go
//! to sidecars), with every whole-object read going through a hook.

use std::fmt::Debug;
use std::ops::Range;

use bytes::Bytes;
use futures::stream::BoxStream;
use store_backends::MemoryBackend;
use store_core::{Backend, ListEntry, ObjectMeta, Result, StorePath, WriteMode, WriteResult};

/// What a [`Hooked`] backend does on `read`.
#[async_trait::async_trait]
pub trait ReadHook: Debug + Default + Send + Sync + 'static {
    /// The backend's kind, as errors name it.
    const KIND: &'static str;

    /// Reads `path`, usually from `inner`.
    async fn read(&self, inner: &MemoryBackend, path: &StorePath) -> Result<Bytes>;
}

/// Memory storage whose reads go through `hook`.
#[derive(Debug, Default)]
pub struct Hooked<H> {
    inner: MemoryBackend,
    pub hook: H,
}

#[async_trait::async_trait]
impl<H: ReadHook> Backend for Hooked<H> {
    fn kind(&self) -> &'static str {
        H::KIND
    }
    fn uri(&self, path: &StorePath) -> String {
        self.inner.uri(path)
    }
    async fn read(&self, path: &StorePath) -> Result<Bytes> {
        self.hook.read(&self.inner, path).await
    }
    async fn read_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        self.inner.read_range(path, range).await
    }
    async fn write(&self, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<WriteResult> {
        self.inner.write(path, data, mode).await
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        self.inner.list(prefix, recursive)
    }
    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.inner.copy(from, to, overwrite).await
    }
    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.inner.rename(from, to, overwrite).await
    }
}
