//! One [`Backend`] over any `object_store` implementation; each backend module
//! only configures the underlying store.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RenameOptions,
    RenameTargetMode,
};
use store_core::{Backend, Error, ErrorKind, ListEntry, ObjectMeta, Result, StorePath, WriteMode, WriteResult};

/// A [`Backend`] over an `object_store` store `S`.
///
/// The named backends are instantiations of it ([`crate::LocalBackend`],
/// [`crate::MemoryBackend`]); they differ only in how they are built.
pub struct ObjectStoreBackend<S> {
    pub(crate) store: Arc<S>,
    pub(crate) kind: &'static str,
    /// URI of the backend root, without a trailing `/`; object URIs append the path.
    pub(crate) uri_root: String,
}

impl<S> Clone for ObjectStoreBackend<S> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), kind: self.kind, uri_root: self.uri_root.clone() }
    }
}

impl<S> fmt::Debug for ObjectStoreBackend<S> {
    // Only kind and root: the inner store's Debug may show configuration we never print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend").field("kind", &self.kind).field("root", &self.uri_root).finish()
    }
}

fn location(path: &StorePath) -> Result<Path> {
    // A StorePath is stricter than object_store's Path, so this only fails on a bug.
    Path::parse(path.as_str()).map_err(|e| Error::new(ErrorKind::InvalidPath, e.to_string()))
}

fn store_path(location: &Path) -> Result<StorePath> {
    StorePath::parse(location.as_ref())
}

/// Maps an `object_store` error onto our kinds. Messages for the common kinds are
/// fixed: the underlying text names backend-absolute paths, which stay in `source`.
fn map_error(err: object_store::Error) -> Error {
    use object_store::Error as E;
    let (kind, message) = match &err {
        E::NotFound { .. } => (ErrorKind::NotFound, "no such object".to_owned()),
        E::AlreadyExists { .. } => (ErrorKind::AlreadyExists, "an object already exists at the target".to_owned()),
        E::Precondition { .. } | E::NotModified { .. } => (ErrorKind::Precondition, err.to_string()),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (ErrorKind::PermissionDenied, err.to_string()),
        E::InvalidPath { .. } => (ErrorKind::InvalidPath, err.to_string()),
        _ => (ErrorKind::Other, err.to_string()),
    };
    Error::new(kind, message).with_source(err)
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

#[async_trait]
impl<S: ObjectStore> Backend for ObjectStoreBackend<S> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn uri(&self, path: &StorePath) -> String {
        format!("{}/{}", self.uri_root, uri_escape(path.as_str()))
    }

    async fn read(&self, path: &StorePath) -> Result<Bytes> {
        let result = self.store.get(&location(path)?).await.map_err(map_error)?;
        result.bytes().await.map_err(map_error)
    }

    async fn read_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        self.store.get_range(&location(path)?, range).await.map_err(map_error)
    }

    async fn write(&self, path: &StorePath, data: Bytes, mode: WriteMode) -> Result<WriteResult> {
        let mode = match mode {
            WriteMode::Overwrite => PutMode::Overwrite,
            WriteMode::CreateNew => PutMode::Create,
        };
        let options = PutOptions { mode, ..Default::default() };
        let put = self.store.put_opts(&location(path)?, PutPayload::from_bytes(data), options).await;
        let put = put.map_err(map_error)?;
        Ok(WriteResult { e_tag: put.e_tag, version: put.version })
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        object_meta(self.store.head(&location(path)?).await.map_err(map_error)?)
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

/// Escapes what would end or break a URI path; unicode stays readable.
pub(crate) fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '%' | '#' | '?' | '"' | '<' | '>' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
