//! One job: store and load pipeline outputs. A [`Store`], a [`Serializer`] and
//! partition-aware [`asset_paths`] are composed into one [`IoManager`].
//!
//! Layering, dependencies pointing one way: this crate depends on
//! `store-core`, `serializers` and `asset-paths`; `py-bindings` depends on it.
//! Its examples and tests use `store-backends` as a dev-dependency only.
//!
//! This is the engine behind the Dagster IO manager in the Python wheel, and
//! usable on its own by any Rust tool that keeps outputs in a Store: writes are
//! atomic and carry a checksum that every load verifies ([`integrity`]), and
//! several partitions load concurrently with bounded concurrency. Outputs too
//! large to hold whole stream in through [`IoManager::output_sink`] (fed piece
//! by piece, as by a pickler) or an [`upload`] (fed by an encoder), and stream
//! out through [`IoManager::input_stream`]; Parquet tables load through
//! [`tables`], decoded as they arrive.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
//! use std::sync::Arc;
//! use io_manager::{IoManager, Owner};
//! use serde_json::{json, Value};
//! use store_core::Store;
//!
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let io = IoManager::<Value>::new(store, Arc::new(serializers::Json));
//!
//! let path = io.asset_path(&["sales", "daily"], &["2026-01-01"])?;
//! assert_eq!(path.as_str(), "sales/daily/2026-01-01.json");
//! let owner = Owner::new(["sales", "daily"], ["2026-01-01"]);
//! let written = io.handle_output(&path, &json!({"rows": 3}), Some(&owner)).await?;
//! assert_eq!((written.size, written.uri.as_str()), (10, "memory:///sales/daily/2026-01-01.json"));
//! assert_eq!(written.checksum.to_string(), "crc32c:535ec11c");
//! assert_eq!(io.load_input(&path, Some(&owner)).await?, json!({"rows": 3}));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod blocks;
mod checksum;
pub mod integrity;
mod owner;
pub mod ranged;
#[cfg(feature = "parquet")]
pub mod tables;
#[cfg(test)]
mod test_backend;
pub mod upload;
pub mod versions;

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serializers::{SerializeError, Serializer};
use store_core::{ErrorKind, Store, StorePath, WriteMode};

use crate::checksum::Checksum;

pub use asset_paths::AssetPathError;
pub use owner::Owner;

/// How many objects [`IoManager::load_many`] fetches at once unless told otherwise.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// Why storing or loading an output failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Store failed (not found, permission, ...); it names the path.
    #[error(transparent)]
    Store(#[from] store_core::Error),
    /// The value could not be encoded, or the stored bytes decoded.
    #[error("{source} (path {path:?})")]
    Serialize {
        /// Store-relative path of the object.
        path: StorePath,
        /// The serializer's error.
        #[source]
        source: SerializeError,
    },
    /// The asset key or extension cannot form a path.
    #[error(transparent)]
    AssetPath(#[from] AssetPathError),
    /// The object at the path was stored for another asset or partition (two
    /// assets whose paths collide): it is neither loaded nor overwritten.
    #[error(
        "{path:?} ({uri}) holds the output of {stored}, not of {expected}: two assets map to this path, so \
         it is neither loaded nor replaced as the other's; give one of them another key prefix or IO manager"
    )]
    OwnedByAnother {
        /// Store-relative path of the object.
        path: StorePath,
        /// The object's URI.
        uri: String,
        /// The owner recorded with the object, as shown.
        stored: String,
        /// The owner asked for, as shown.
        expected: String,
    },
    /// A versioned output's pointer does not hold a pointer (written by something else, or damaged).
    #[error("the version pointer {path:?} ({uri}) cannot be read: {reason}; it was not written by this IO manager")]
    BadPointer {
        /// Store-relative path of the pointer.
        path: StorePath,
        /// The pointer's URI.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A version asked for by name is not a version name.
    #[error(
        "{version:?} is not a version of {target:?}: versions are named like `20261207T023512345Z-3f2a9c1e-0b7d`, \
         as the `version` entry of a materialization's metadata shows"
    )]
    BadVersion {
        /// The output's unversioned path.
        target: StorePath,
        /// What was asked for.
        version: String,
    },
    /// The stored bytes do not match the checksum recorded when they were written.
    #[error(
        "checksum mismatch for {path:?} ({uri}): recorded {stored}, but the stored bytes have {actual}; \
         the object changed after it was written (corrupted, or replaced without its checksum), so it is not loaded"
    )]
    ChecksumMismatch {
        /// Store-relative path of the object.
        path: StorePath,
        /// The object's URI.
        uri: String,
        /// The checksum recorded at write time (or what was recorded, if unreadable).
        stored: String,
        /// The checksum of the bytes read.
        actual: Checksum,
    },
}

/// What [`IoManager::handle_output`] reports about a stored output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputMetadata {
    /// Store-relative path.
    pub path: StorePath,
    /// URI in the backend's own scheme.
    pub uri: String,
    /// Size in bytes.
    pub size: u64,
    /// Checksum of the stored bytes, verified on every load.
    pub checksum: Checksum,
}

impl OutputMetadata {
    /// What a checked write of `path` in `store` reports (see [`integrity::write`]).
    pub fn of(store: &Store, path: &StorePath, written: &integrity::Written) -> Self {
        Self { path: path.clone(), uri: store.uri(path), size: written.size, checksum: written.checksum }
    }
}

/// A Store, a serializer for values of type `V`, and a bound on concurrent fetches.
pub struct IoManager<V> {
    store: Store,
    serializer: Arc<dyn Serializer<V>>,
    /// Replaces the serializer's extension in paths, when set.
    extension: Option<String>,
    max_concurrency: usize,
}

impl<V> Clone for IoManager<V> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            serializer: self.serializer.clone(),
            extension: self.extension.clone(),
            max_concurrency: self.max_concurrency,
        }
    }
}

impl<V> std::fmt::Debug for IoManager<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoManager")
            .field("store", &self.store)
            .field("serializer", &self.serializer.name())
            .field("extension", &self.extension())
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

impl<V> IoManager<V> {
    /// An IO manager writing through `serializer` into `store`.
    pub fn new(store: Store, serializer: Arc<dyn Serializer<V>>) -> Self {
        Self { store, serializer, extension: None, max_concurrency: DEFAULT_MAX_CONCURRENCY }
    }

    /// Stores outputs under `extension` (`".pickle"`, or `""` for none)
    /// instead of the serializer's own; a bad extension is an error here.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use io_manager::IoManager;
    /// # let store = store_core::Store::new(store_backends::MemoryBackend::new());
    /// let io = IoManager::<serde_json::Value>::new(store, Arc::new(serializers::Json)).with_extension(".jsn")?;
    /// assert_eq!(io.asset_path(&["report"], &[] as &[&str])?.as_str(), "report.jsn");
    /// assert!(io.clone().with_extension("jsn").is_err(), "an extension starts with a dot");
    /// # Ok::<(), io_manager::Error>(())
    /// ```
    pub fn with_extension(mut self, extension: impl Into<String>) -> Result<Self, Error> {
        let extension = extension.into();
        asset_paths::asset_path(&["check"], &[] as &[&str], &extension)?;
        self.extension = Some(extension);
        Ok(self)
    }

    /// The extension stored paths end with.
    pub fn extension(&self) -> &str {
        self.extension.as_deref().unwrap_or_else(|| self.serializer.extension())
    }

    /// Bounds how many objects [`load_many`](Self::load_many) fetches at once (at least 1).
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.max(1);
        self
    }

    /// How many objects [`load_many`](Self::load_many) fetches at once.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The Store outputs go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The serializer values go through.
    pub fn serializer(&self) -> &Arc<dyn Serializer<V>> {
        &self.serializer
    }

    /// Where an asset (and partition, one key per dimension) is stored, with the
    /// serializer's extension: `foo/bar.json`, `foo/bar/2026-01.json`.
    pub fn asset_path<K: AsRef<str>, P: AsRef<str>>(
        &self,
        asset_key: &[K],
        partition: &[P],
    ) -> Result<StorePath, Error> {
        let path = asset_paths::asset_path(asset_key, partition, self.extension())?;
        Ok(StorePath::parse(path)?)
    }

    /// Serializes `value` and writes it atomically to `path`, as `owner`'s
    /// (see [`Owner`]: another owner's object there is refused, and stays).
    pub async fn handle_output(
        &self,
        path: &StorePath,
        value: &V,
        owner: Option<&Owner>,
    ) -> Result<OutputMetadata, Error> {
        let data =
            self.serializer.serialize(value).map_err(|source| Error::Serialize { path: path.clone(), source })?;
        self.write_bytes(path, data, owner).await
    }

    /// Writes already-serialized bytes atomically to `path`, with their
    /// checksum and owner, replacing what was there.
    pub async fn write_bytes(
        &self,
        path: &StorePath,
        data: Bytes,
        owner: Option<&Owner>,
    ) -> Result<OutputMetadata, Error> {
        let written = integrity::write(&self.store, path, data, WriteMode::Overwrite, owner).await?;
        Ok(self.output_metadata(path, &written))
    }

    /// A streamed output at `path`, as `owner`'s: for a value that a producer
    /// which is not async hands over piece by piece (a pickler writing buffers)
    /// rather than as one encoded `V`. Stored, with checksum and owner, when the
    /// sink is finished; see [`OutputSink`](upload::OutputSink).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
    /// # use std::sync::Arc;
    /// # use futures::TryStreamExt;
    /// # use io_manager::IoManager;
    /// # use store_core::Store;
    /// let io = IoManager::<serde_json::Value>::new(Store::new(store_backends::MemoryBackend::new()), Arc::new(serializers::Json));
    /// let path = io.asset_path(&["frame"], &[] as &[&str])?;
    /// let mut sink = io.output_sink(&path, None);
    /// sink.push("[1, ".into()).await?;
    /// sink.push("2]".into()).await?;
    /// let written = sink.finish(false).await?.expect("finished once");
    /// assert_eq!(io.output_metadata(&path, &written).size, 6);
    ///
    /// let mut input = io.input_stream(&path, None).await?;
    /// let chunks: Vec<bytes::Bytes> = (&mut input.chunks).try_collect().await?;
    /// input.verify().await?;
    /// assert_eq!(chunks.concat(), b"[1, 2]");
    /// # Ok(()) }
    /// ```
    pub fn output_sink(&self, path: &StorePath, owner: Option<&Owner>) -> upload::OutputSink {
        upload::OutputSink::new(&self.store, path, owner)
    }

    /// A streamed output at `path`, as `owner`'s, fed by an encoder that runs
    /// on its own thread and writes through [`Upload::writer`](upload::Upload::writer)
    /// (a Parquet writer), while the upload runs on `runtime`. Stored, with
    /// checksum and owner, when [`settle`](upload::Upload::settle)d with the
    /// encoder's success; nothing is stored otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 1)] async fn main() -> Result<(), io_manager::Error> {
    /// # use std::io::Write;
    /// # use std::sync::Arc;
    /// # use io_manager::IoManager;
    /// # use store_core::Store;
    /// let io = IoManager::<serde_json::Value>::new(Store::new(store_backends::MemoryBackend::new()), Arc::new(serializers::Json));
    /// let path = io.asset_path(&["report"], &[] as &[&str])?;
    /// let upload = io.output_upload(&tokio::runtime::Handle::current(), &path, None);
    /// let mut writer = upload.writer();
    /// let encoded = tokio::task::spawn_blocking(move || {
    ///     writer.write_all(b"{\"rows\": 3}")?;
    ///     writer.finish()
    /// })
    /// .await
    /// .expect("the encoder ran");
    /// let failed = |e| io_manager::Error::Serialize { path: path.clone(), source: serializers::SerializeError::encode("json", e) };
    /// let (written, ()) = upload.settle(encoded, failed).await?;
    /// assert_eq!(written.size, 11);
    /// assert_eq!(io.load_input(&path, None).await?, serde_json::json!({"rows": 3}));
    /// # Ok(()) }
    /// ```
    pub fn output_upload(
        &self,
        runtime: &tokio::runtime::Handle,
        path: &StorePath,
        owner: Option<&Owner>,
    ) -> upload::Upload<integrity::Written> {
        upload::Upload::start_checked(runtime, &self.store, path.clone(), owner.cloned())
    }

    /// The Parquet tables stored at `objects` (each path with its owner),
    /// fetched, verified and decoded within this IO manager's concurrency
    /// bound; see [`tables::fetch_tables`].
    #[cfg(feature = "parquet")]
    pub async fn fetch_tables<T: tables::RowGroupTarget>(
        &self,
        objects: &[(StorePath, Option<Owner>)],
        columns: Option<&[String]>,
        target_for: impl Fn(&serializers::parquet::ArrivingFile) -> Option<T>,
    ) -> Vec<Result<tables::Fetched<T>, Error>> {
        tables::fetch_tables(&self.store, objects, columns, self.max_concurrency, target_for).await
    }

    /// The object at `path` as it arrives, for a consumer that decodes while it
    /// reads (an unpickler); verified against its checksum once read
    /// ([`CheckedStream::verify`](integrity::CheckedStream::verify)), and refused
    /// if recorded as another owner's than `owner`.
    pub async fn input_stream(
        &self,
        path: &StorePath,
        owner: Option<&Owner>,
    ) -> Result<integrity::CheckedStream, Error> {
        integrity::read_stream(&self.store, path, owner).await
    }

    /// What a checked write of `path` reports as output metadata (for outputs
    /// written by other means than [`handle_output`](Self::handle_output), such as streams).
    pub fn output_metadata(&self, path: &StorePath, written: &integrity::Written) -> OutputMetadata {
        OutputMetadata::of(&self.store, path, written)
    }

    /// Where version `id` of the output at `target` is stored (see [`versions`]).
    pub fn version_path(&self, target: &StorePath, id: &versions::VersionId) -> StorePath {
        versions::object_path(target, id, self.extension())
    }

    /// Makes version `id` of the output at `target`, stored as `written` says
    /// by run `run_id`, the current one (see [`versions::publish`]).
    pub async fn publish(
        &self,
        target: &StorePath,
        id: &versions::VersionId,
        written: &OutputMetadata,
        run_id: &str,
    ) -> Result<versions::Pointer, Error> {
        versions::publish(&self.store, target, id, written, run_id).await
    }

    /// Where the output at `target` loads from: version `pin`, else the current
    /// version, else `target` itself (see [`versions::resolve`]).
    pub async fn resolve(&self, target: &StorePath, pin: Option<&str>) -> Result<StorePath, Error> {
        versions::resolve(&self.store, target, self.extension(), pin).await
    }

    /// Where each of `targets` (with its pin) loads from, resolved within this
    /// IO manager's concurrency bound, in order.
    pub async fn resolve_many(&self, targets: &[(StorePath, Option<String>)]) -> Result<Vec<StorePath>, Error> {
        let resolved = targets.iter().cloned().map(|(target, pin)| {
            let (store, extension) = (self.store.clone(), self.extension().to_owned());
            async move { versions::resolve(&store, &target, &extension, pin.as_deref()).await }
        });
        stream::iter(resolved).buffered(self.max_concurrency).try_collect().await
    }

    /// Reads, verifies and deserializes the object at `path`, refusing one
    /// recorded as another owner's than `owner`.
    pub async fn load_input(&self, path: &StorePath, owner: Option<&Owner>) -> Result<V, Error> {
        let data = integrity::read(&self.store, path, owner).await?;
        self.decode(path, data)
    }

    /// Reads and deserializes several objects (the partitions of one input,
    /// each path with its owner), fetching up to the concurrency bound at
    /// once; results keep the order of `objects`.
    pub async fn load_many(&self, objects: &[(StorePath, Option<Owner>)]) -> Result<Vec<V>, Error> {
        let loaded = self.fetch_many(objects, false).await?;
        Ok(loaded.into_iter().flatten().collect())
    }

    /// Like [`load_many`](Self::load_many), but a missing object is `None`
    /// instead of an error (inputs that allow missing partitions).
    pub async fn load_existing(&self, objects: &[(StorePath, Option<Owner>)]) -> Result<Vec<Option<V>>, Error> {
        self.fetch_many(objects, true).await
    }

    async fn fetch_many(
        &self,
        objects: &[(StorePath, Option<Owner>)],
        missing_ok: bool,
    ) -> Result<Vec<Option<V>>, Error> {
        let mut fetched = self.fetches(objects);
        let mut values = Vec::with_capacity(objects.len());
        // Decoding one result overlaps with the fetches still in flight.
        while let Some((path, data)) = fetched.next().await {
            values.push(found(data, missing_ok)?.map(|data| self.decode(&path, data)).transpose()?);
        }
        Ok(values)
    }

    /// Reads of `objects`, at most `max_concurrency` at once, results in order.
    fn fetches(
        &self,
        objects: &[(StorePath, Option<Owner>)],
    ) -> impl futures::Stream<Item = (StorePath, Result<Bytes, Error>)> {
        let reads = objects.iter().cloned().map(|(path, owner)| {
            let store = self.store.clone();
            async move {
                let data = integrity::read(&store, &path, owner.as_ref()).await;
                (path, data)
            }
        });
        stream::iter(reads).buffered(self.max_concurrency)
    }

    fn decode(&self, path: &StorePath, data: Bytes) -> Result<V, Error> {
        self.serializer.deserialize(data).map_err(|source| Error::Serialize { path: path.clone(), source })
    }
}

/// `data`, or `None` for a missing object when that is allowed.
fn found(data: Result<Bytes, Error>, missing_ok: bool) -> Result<Option<Bytes>, Error> {
    match data {
        Ok(data) => Ok(Some(data)),
        Err(Error::Store(e)) if missing_ok && e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::{Value, json};
    use store_backends::MemoryBackend;
    use store_core::BackendExt;

    use crate::test_backend::{Hooked, ReadHook};

    use super::*;

    fn manager() -> IoManager<Value> {
        IoManager::new(Store::new(MemoryBackend::new()), Arc::new(serializers::Json))
    }

    const NO_PARTITION: &[&str] = &[];

    #[tokio::test]
    async fn paths_follow_the_asset_key_and_partition() {
        let io = manager();
        assert_eq!(io.asset_path(&["foo", "bar"], NO_PARTITION).unwrap().as_str(), "foo/bar.json");
        assert_eq!(io.asset_path(&["foo", "bar"], &["2026-01"]).unwrap().as_str(), "foo/bar/2026-01.json");
        assert_eq!(io.asset_path(&["a"], &["x/../y"]).unwrap().as_str(), "a/x%2F..%2Fy.json");
        assert!(matches!(io.asset_path(NO_PARTITION, &["p"]), Err(Error::AssetPath(_))));
    }

    #[tokio::test]
    async fn output_round_trip_and_metadata() {
        let io = manager();
        let path = io.asset_path(&["x"], NO_PARTITION).unwrap();
        let meta = io.handle_output(&path, &json!([1, 2]), None).await.unwrap();
        let checksum = Checksum::of(b"[1,2]");
        assert_eq!(meta, OutputMetadata { path: path.clone(), uri: "memory:///x.json".into(), size: 5, checksum });
        assert_eq!(io.load_input(&path, None).await.unwrap(), json!([1, 2]));
        assert_eq!(io.handle_output(&path, &Value::Null, None).await.unwrap().size, 4);
        assert_eq!(io.load_input(&path, None).await.unwrap(), Value::Null);
    }

    #[tokio::test]
    async fn missing_objects_are_not_found_with_their_path() {
        let io = manager();
        let path = io.asset_path(&["missing"], &["2026-01-01"]).unwrap();
        match io.load_input(&path, None).await {
            Err(Error::Store(e)) => {
                assert_eq!(e.kind(), ErrorKind::NotFound);
                assert_eq!(e.path(), Some("missing/2026-01-01.json"));
            }
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn undecodable_data_names_the_path() {
        let io = manager();
        let path: StorePath = "bad.json".parse().unwrap();
        io.write_bytes(&path, Bytes::from_static(b"{not json"), None).await.unwrap();
        let err = io.load_input(&path, None).await.unwrap_err();
        assert!(matches!(&err, Error::Serialize { source, .. } if source.is_decode()), "{err}");
        assert!(err.to_string().contains("\"bad.json\""), "{err}");
    }

    #[tokio::test]
    async fn load_many_keeps_partition_order() {
        let io = manager();
        let keys: Vec<String> = (1..=40).map(|d| format!("2026-01-{d:02}")).collect();
        let objects: Vec<(StorePath, Option<Owner>)> =
            keys.iter().map(|k| (io.asset_path(&["daily"], &[k]).unwrap(), Some(Owner::new(["daily"], [k])))).collect();
        for (key, (path, owner)) in keys.iter().zip(&objects) {
            io.handle_output(path, &json!(key), owner.as_ref()).await.unwrap();
        }
        let loaded = io.clone().with_max_concurrency(4).load_many(&objects).await.unwrap();
        assert_eq!(loaded, keys.iter().map(|k| json!(k)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn load_existing_skips_only_missing_objects() {
        let io = manager();
        let paths: Vec<(StorePath, Option<Owner>)> =
            ["a.json", "b.json", "c.json"].iter().map(|p| (p.parse().unwrap(), None)).collect();
        io.handle_output(&paths[0].0, &json!(1), None).await.unwrap();
        io.handle_output(&paths[2].0, &json!(3), None).await.unwrap();
        assert_eq!(io.load_existing(&paths).await.unwrap(), [Some(json!(1)), None, Some(json!(3))]);
        assert!(matches!(io.load_many(&paths).await, Err(Error::Store(e)) if e.kind() == ErrorKind::NotFound));
        io.write_bytes(&paths[1].0, Bytes::from_static(b"{broken"), None).await.unwrap();
        assert!(matches!(io.load_existing(&paths).await, Err(Error::Serialize { .. })), "only NotFound is skipped");
    }

    #[tokio::test]
    async fn load_many_fetches_concurrently_within_the_bound() {
        let backend = Hooked::<SlowReads>::default();
        let peak = backend.hook.peak.clone();
        let io = IoManager::<Value>::new(Store::new(backend), Arc::new(serializers::Json)).with_max_concurrency(3);
        let paths: Vec<(StorePath, Option<Owner>)> =
            (0..12).map(|i| (format!("p/{i}.json").parse().unwrap(), None)).collect();
        for (path, _) in &paths {
            io.write_bytes(path, Bytes::from_static(b"1"), None).await.unwrap();
        }
        assert_eq!(io.load_many(&paths).await.unwrap().len(), 12);
        assert_eq!(peak.load(Ordering::SeqCst), 3, "reads overlap up to the bound and never beyond it");
    }

    /// Reads that take a while and count how many overlap.
    #[derive(Debug, Default)]
    struct SlowReads {
        in_flight: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl ReadHook for SlowReads {
        const KIND: &'static str = "slow-memory";

        async fn read(&self, inner: &MemoryBackend, path: &StorePath) -> store_core::Result<Bytes> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            inner.read(path).await
        }
    }
}
