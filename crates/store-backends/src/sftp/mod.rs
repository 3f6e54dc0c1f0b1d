//! Objects as files under a base folder on an SFTP server, over SSH (libssh2, through the `ssh2` crate).
//!
//! # Atomicity
//! Writes and copies go to a temporary file in the target's folder (`.drs-tmp-<random>`; listings skip such
//! names and writes refuse them), which is then renamed into place, so a failed write never leaves a partial
//! object and readers see the old or the new object, never a mix:
//! - an overwrite (and `rename` with overwrite) uses the `posix-rename@openssh.com` extension, which replaces
//!   the target atomically;
//! - a create-only write (and copy or rename without overwrite) uses a plain SFTP v3 rename, which OpenSSH
//!   refuses when the target exists, so exactly one of several racing creators wins.
//!
//! On servers without posix-rename, an overwrite removes the target and then renames: readers may briefly
//! see the object missing, and a writer that fails in between leaves no object. Files are not fsynced. A
//! writer that crashes or loses its connection may leave its hidden temporary behind.
//!
//! # Conditional writes
//! An object's e-tag is `"<mtime>-<size>"` (hex; the server's times have whole seconds), the same from `head`,
//! reads, listings and the write that made it. SFTP v3 has no conditional replace, so a conditional write
//! ([`WriteMode::IfMatch`](store_core::WriteMode::IfMatch)) takes a lease on the object: it writes its temporary,
//! then creates the hidden file `.drs-tmp-lease-<name>` beside the object exclusively (waiting, with backoff,
//! while another writer holds it), compares the object's e-tag with the one expected, sets the temporary's
//! modification time past the old object's if the clock has not moved on (so e-tags never repeat among
//! conditional writes; under heavy contention times run ahead of the clock, a second per write), renames it into
//! place and removes the lease. The guarantee, compare-and-swap without lost updates, holds among conditional
//! writers: plain writes take no lease, and a plain write racing a conditional one may be lost.
//!
//! A lease older than a minute (by the server's clock) is taken to be a crashed writer's and broken: renamed to
//! a temporary's name, which only one of several breakers manages, and removed. A writer that has held its lease
//! for 30 s no longer renames (it fails, and nothing is written), so a lease is never broken under a live writer
//! unless the rename itself takes over 30 s. A lease left by a killed writer shows in `leftovers` until then.
//! Listings skip leases, as they skip temporaries.
//!
//! # Connections
//! A pool of up to `pool_size` SSH sessions, each carrying one call at a time, run on Tokio's blocking threads
//! (so this backend needs a Tokio runtime). Failures that may pass (connection lost, timeout) drop the session,
//! and the idle ones with it (a network cut breaks them all), and the call is retried on a fresh connection,
//! with exponential backoff; refusals (no such file, permission denied, login or host key rejected) are not
//! retried. A call whose reply was lost is
//! retried too, so a create-only write or rename that did succeed may then report `AlreadyExists` or
//! `NotFound`.
//!
//! # Streams
//! `write_stream` and `read_stream` pass one chunk at a time between the caller and a blocking task that keeps
//! one pooled session for the whole transfer, so memory stays at a few chunks (reads yield 1 MiB chunks) however
//! large the object. A streamed write goes through a temporary like any other write and is renamed into place
//! only when the stream ends; an error from the stream, a failed transfer or dropping the call removes the
//! temporary. Of a streamed write, only connecting and creating the temporary are retried: a stream cannot be
//! replayed, so a connection lost mid-transfer fails the call, and the caller may start over with a new stream.
//! A streamed read that loses its connection resumes on a new one where it stopped, if the file there still
//! has the same size and modification time (else it fails with `Precondition`, as a replaced object does).
//! Every read returns exactly the size the server gave when the file was opened, or fails as `Unavailable`:
//! libssh2 may report a dropped connection as the end of the file, which must never pass for a whole object.
//! A read stream keeps its session until it ends or is dropped, so piping one into a write on the same backend
//! takes two sessions.

mod config;
mod conn;
mod posix_rename;

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::iter;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use ssh2::{File, FileStat};
use store_core::{
    Backend, Error, ErrorKind, GetOptions, GetResult, HeadOptions, Leftover, ListEntry, Metadata, ObjectMeta, Payload,
    PutOptions, Result, StorePath, WriteResult,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinError;

pub use config::{SftpAuth, SftpConfig, SftpHostKey};
use conn::{Conn, Place, TEMP_PREFIX};

use crate::error::SftpError;
use crate::uri::uri_escape;

const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(3);

/// A [`Backend`] on an SFTP server: objects are files under [`SftpConfig::base_path`].
///
/// Writes go to a hidden temporary file that is renamed into place (atomically where the server has OpenSSH's
/// `posix-rename@openssh.com`), so readers see the old or the new object, never a mix. Cloning is cheap; clones
/// share the connections.
/// `Debug` and `Display` show the server and base folder, never credentials.
///
/// E-tags are `"<mtime>-<size>"`. Conditional writes ([`WriteMode::IfMatch`](store_core::WriteMode::IfMatch))
/// hold a lease on the object, a hidden `.drs-tmp-lease-<name>` file beside it created exclusively, while they
/// compare its e-tag and rename the new file into place: compare-and-swap among conditional writers (plain
/// writes take no lease). A lease a crashed writer left expires after a minute and is broken; until then it
/// holds conditional writers of that object back, and `leftovers` shows it.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> store_core::Result<()> {
/// use store_backends::{SftpAuth, SftpBackend, SftpConfig, SftpHostKey};
/// use store_core::{Store, WriteMode};
///
/// let auth = SftpAuth::PrivateKey { path: "/home/etl/.ssh/id_ed25519".into(), passphrase: None };
/// let config = SftpConfig {
///     port: 2222,
///     host_key: SftpHostKey::KnownHosts("/home/etl/.ssh/known_hosts".into()),
///     ..SftpConfig::new("files.example.com", "etl", auth, "/srv/pipelines")
/// };
/// let store = Store::new(SftpBackend::connect(config).await?);
/// store.write(&"raw/orders.json".parse()?, "[]".into(), WriteMode::Overwrite).await?;
/// store.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SftpBackend {
    shared: Arc<Shared>,
}

struct Shared {
    config: SftpConfig,
    /// `base_path` without a trailing `/` (empty for the server's root folder).
    root: String,
    uri_root: String,
    /// Connected sessions not in use. Sessions in use each hold one of `slots`.
    idle: Mutex<Vec<Conn>>,
    slots: Arc<Semaphore>,
}

impl SftpBackend {
    /// Connects to the server (failing fast on bad credentials or host key), creates the base folder if
    /// missing, and keeps the session for later calls. Must run inside a Tokio runtime.
    pub async fn connect(config: SftpConfig) -> Result<Self> {
        if !config.base_path.starts_with('/') || config.base_path.contains('\0') {
            return Err(SftpError::BasePath(config.base_path).into());
        }
        let shared = Shared {
            root: config.base_path.trim_end_matches('/').to_owned(),
            uri_root: config.to_string(),
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(config.pool_size.max(1))),
            config,
        };
        let backend = Self { shared: Arc::new(shared) };
        let base = backend.folder(None);
        backend
            .run(move |conn| {
                conn.mkdir_all(&base).map_err(|source| SftpError::BaseFolder { folder: base.clone(), source }.into())
            })
            .await?;
        if !backend.shared.config.keepalive_interval.is_zero() {
            tokio::spawn(keep_alive(Arc::downgrade(&backend.shared)));
        }
        Ok(backend)
    }

    /// The absolute server path of an object.
    fn remote(&self, path: &StorePath) -> String {
        format!("{}/{path}", self.shared.root)
    }

    /// The absolute server path of a folder (the base folder for `None`).
    fn folder(&self, path: Option<&StorePath>) -> String {
        match path {
            Some(path) => self.remote(path),
            None if self.shared.root.is_empty() => "/".to_owned(),
            None => self.shared.root.clone(),
        }
    }

    /// Runs `op` on a pooled session, retrying transient failures with backoff.
    async fn run<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Conn) -> Result<T> + Send + Sync + 'static,
    {
        self.retry(move |lease| lease.call(&op)).await
    }

    /// Runs `op` on a checked-out session on a blocking thread, retrying transient failures with backoff.
    async fn retry<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(Lease) -> Result<T> + Send + Sync + 'static,
    {
        let op = Arc::new(op);
        let mut retries = 0;
        loop {
            match self.attempt(op.clone()).await {
                Err(e) if e.kind().is_transient() && retries < self.shared.config.max_retries => {
                    tokio::time::sleep(backoff(retries)).await;
                    retries += 1;
                }
                result => return result,
            }
        }
    }

    /// Runs `op` once on an idle session, or a new one if none is idle, on a blocking thread.
    async fn attempt<T, F>(&self, op: Arc<F>) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(Lease) -> Result<T> + Send + Sync + 'static,
    {
        let slot = self.shared.slots.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let idle = shared.idle().pop();
            let conn = match idle {
                Some(conn) => conn,
                None => Conn::connect(&shared.config)?,
            };
            op(Lease { conn, shared, _slot: slot })
        })
        .await
        .map_err(worker_failed)?
    }
}

impl SftpBackend {
    /// Sends the chunks of the file opened as `opened` to `sender`, then ends. A transient failure midway
    /// resumes on a new session where the chunks sent so far end, if the file there is still the same one
    /// (else the stream fails with `Precondition`), with backoff; `max_retries` failures in a row without
    /// progress fail the stream. An error ends the stream, so it is never taken for the object's end.
    async fn send_chunks(self, remote: String, opened: (Lease, (File, FileStat)), sender: mpsc::Sender<Result<Bytes>>) {
        let (lease, (file, stat)) = opened;
        let size = stat.size.unwrap_or(0);
        let (mut opened, mut position, mut retries) = (Some((lease, file)), 0, 0);
        loop {
            let (lease, file) = match opened.take() {
                Some(opened) => opened,
                None => {
                    let (remote, stat) = (remote.clone(), stat.clone());
                    match self.retry(move |lease| lease.start(|conn| conn.reopen(&remote, &stat))).await {
                        Ok(reopened) => reopened,
                        Err(e) => return drop(sender.send(Err(e)).await),
                    }
                }
            };
            let (sending, started) = (sender.clone(), position);
            let read = tokio::task::spawn_blocking(move || {
                let mut reached = started;
                let send = |chunk| sending.blocking_send(Ok(chunk)).is_ok();
                let read = lease.call(|conn| conn.read_chunks(file, &mut reached, size, send));
                (reached, read)
            });
            let error = match read.await {
                Ok((_, Ok(()))) => return,
                Ok((reached, Err(e))) => {
                    position = reached;
                    e
                }
                Err(e) => worker_failed(e),
            };
            if position > started {
                retries = 0;
            }
            if !error.kind().is_transient() || retries >= self.shared.config.max_retries {
                return drop(sender.send(Err(error)).await);
            }
            tokio::time::sleep(backoff(retries)).await;
            retries += 1;
        }
    }
}

impl Shared {
    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session checked out of the pool, with the pool slot it takes. Everything on it blocks.
struct Lease {
    conn: Conn,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
}

impl Lease {
    /// Runs `op` on the session, then gives the session back.
    fn call<T>(self, op: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let result = op(&self.conn);
        self.release(result.as_ref().err());
        result
    }

    /// Runs `op` on the session and keeps the session for the next steps if it succeeds.
    fn start<T>(self, op: impl FnOnce(&Conn) -> Result<T>) -> Result<(Lease, T)> {
        match op(&self.conn) {
            Ok(value) => Ok((self, value)),
            Err(e) => {
                self.release(Some(&e));
                Err(e)
            }
        }
    }

    /// Puts the session back in the pool, unless `error` says it may be broken.
    fn release(self, error: Option<&Error>) {
        if error.is_some_and(|e| e.kind().is_transient()) {
            // The session may be mid-request, and whatever broke it (a network cut, a server restart) has
            // likely broken the idle ones too: drop them all, so the retry starts afresh rather than spending
            // its attempts on dead sessions. On a thread of their own: saying goodbye to a server that stopped
            // answering waits out the timeout, once per channel, which the retry must not wait for.
            let stale = std::mem::take(&mut *self.shared.idle());
            std::thread::spawn(move || drop((self.conn, stale)));
        } else {
            self.shared.idle().push(self.conn);
        }
    }
}

fn worker_failed(err: JoinError) -> Error {
    SftpError::Worker(err).into()
}

/// libssh2 sends keepalives only while a call waits on the socket: this sends them on idle sessions too,
/// dropping those that turn out dead, until the backend is gone.
async fn keep_alive(shared: Weak<Shared>) {
    let Some(interval) = shared.upgrade().map(|s| s.config.keepalive_interval) else { return };
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else { return };
        // Idle sessions hold no slot: take slots for them so that no call opens extra sessions meanwhile.
        let (slots, idle) = {
            let mut idle = shared.idle();
            let Ok(slots) = shared.slots.clone().try_acquire_many_owned(idle.len() as u32) else { continue };
            (slots, std::mem::take(&mut *idle))
        };
        let _ = tokio::task::spawn_blocking(move || {
            let alive: Vec<Conn> = idle.into_iter().filter(Conn::keepalive).collect();
            shared.idle().extend(alive);
            drop(slots);
        })
        .await;
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so racing clients spread out.
fn backoff(retry: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << retry.min(16)).min(BACKOFF_CAP);
    let half = ceiling / 2;
    half + Duration::from_nanos(random_u64() % (half.as_nanos() as u64 + 1))
}

/// A random number without a dependency: std seeds each `RandomState` from the OS once per thread and
/// varies it on every call.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

/// Refuses target names that listings would hide.
fn check_name(path: &StorePath) -> Result<()> {
    if path.file_name().starts_with(TEMP_PREFIX) {
        return Err(SftpError::ReservedName { prefix: TEMP_PREFIX }.into());
    }
    Ok(())
}

fn object_meta(path: StorePath, stat: &FileStat) -> ObjectMeta {
    ObjectMeta {
        path,
        size: stat.size.unwrap_or(0),
        last_modified: stat.mtime.map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
        e_tag: conn::e_tag(stat),
        version: None,
    }
}

impl fmt::Debug for SftpBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.shared.config;
        f.debug_struct("SftpBackend")
            .field("root", &self.shared.uri_root)
            .field("host_key", &config.host_key)
            .field("pool_size", &config.pool_size)
            .finish()
    }
}

impl fmt::Display for SftpBackend {
    /// The base folder's URI.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shared.uri_root)
    }
}

impl SftpBackend {
    /// Hands the chunks to a blocking task that writes them; only getting a session and creating the temporary
    /// are retried, since a stream cannot be replayed.
    async fn put_stream(
        &self,
        path: &StorePath,
        mut data: BoxStream<'static, Result<Bytes>>,
        place: Place,
    ) -> Result<WriteResult> {
        // The channel holds one chunk, `None` marks the end of the stream, and a sender dropped before that (this
        // call was dropped) fails the upload, so a cut-off stream is never committed.
        let (sender, mut receiver) = mpsc::channel(1);
        let (backend, target) = (self.clone(), self.remote(path));
        // A task of its own, so that even if this call is dropped, a temporary created meanwhile is removed.
        let upload = tokio::spawn(async move {
            let (remote, check) = (target.clone(), place.clone());
            let (lease, (temp, file)) = backend
                .retry(move |lease| {
                    lease.start(|conn| {
                        // A conditional write of an object already changed fails before the stream is read.
                        if let Place::IfMatch(conditional) = &check {
                            conn.check_current(&remote, conditional)?;
                        }
                        conn.create_temp(&remote)
                    })
                })
                .await?;
            let chunks = iter::from_fn(move || {
                let cancelled = || Some(Err(SftpError::Cancelled.into()));
                receiver.blocking_recv().unwrap_or_else(cancelled)
            });
            tokio::task::spawn_blocking(move || {
                lease.call(|conn| conn.write_chunks(&temp, file, chunks, &target, &place))
            })
            .await
            .map_err(worker_failed)?
        });
        loop {
            let item = data.next().await;
            let last = !matches!(item, Some(Ok(_)));
            // A send fails only if the upload has failed, and its result says why.
            if sender.send(item).await.is_err() || last {
                break;
            }
        }
        let e_tag = upload.await.map_err(worker_failed)??;
        Ok(WriteResult { e_tag, version: None })
    }

    /// A blocking task reads 1 MiB chunks, one ahead of the caller, until the end of the file or until the
    /// stream is dropped; a lost connection is resumed on a new one (see `send_chunks`).
    /// Also the e-tag of the file opened.
    async fn read_stream(&self, path: &StorePath) -> Result<(BoxStream<'static, Result<Bytes>>, Option<String>)> {
        let remote = self.remote(path);
        let opened = {
            let remote = remote.clone();
            self.retry(move |lease| lease.start(|conn| conn.open(&remote))).await?
        };
        let e_tag = conn::e_tag(&opened.1.1);
        let (sender, mut receiver) = mpsc::channel(1);
        let reader = tokio::spawn(self.clone().send_chunks(remote, opened, sender));
        let chunks = stream::poll_fn(move |cx| receiver.poll_recv(cx));
        // A reader that stopped short (it panicked) must not pass for the end of the object.
        let failed = stream::once(reader).filter_map(|joined| async { joined.err().map(|e| Err(worker_failed(e))) });
        Ok((chunks.chain(failed).boxed(), e_tag))
    }
}

#[async_trait]
impl Backend for SftpBackend {
    fn kind(&self) -> &'static str {
        "sftp"
    }

    fn uri(&self, path: &StorePath) -> String {
        format!("{}/{}", self.shared.uri_root, uri_escape(path.as_str()))
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        if options.stream && options.range.is_none() {
            let (chunks, e_tag) = self.read_stream(path).await?;
            return Ok(GetResult::new(Payload::Stream(chunks), None, Metadata::new()).with_version(e_tag, None));
        }
        let remote = self.remote(path);
        let (data, stat) = self.run(move |conn| conn.read(&remote, options.range.clone())).await?;
        let size = data.len() as u64;
        Ok(GetResult::new(data.into(), Some(size), Metadata::new()).with_version(conn::e_tag(&stat), None))
    }

    async fn head_opts(&self, path: &StorePath, _: HeadOptions) -> Result<(ObjectMeta, Metadata)> {
        let remote = self.remote(path);
        let stat = self.run(move |conn| conn.stat(&remote)).await?;
        Ok((object_meta(path.clone(), &stat), Metadata::new()))
    }

    async fn put_opts(&self, path: &StorePath, payload: Payload, options: PutOptions) -> Result<WriteResult> {
        options.refuse_metadata(self.kind())?;
        check_name(path)?;
        let place = Place::new(&options.mode)?;
        let data = match payload {
            Payload::Bytes(data) => data,
            Payload::Stream(chunks) => return self.put_stream(path, chunks, place).await,
        };
        let remote = self.remote(path);
        let e_tag = self.run(move |conn| conn.write(&remote, &data, &place)).await?;
        Ok(WriteResult { e_tag, version: None })
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let remote = self.remote(path);
        self.run(move |conn| conn.delete(&remote)).await
    }

    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        let (backend, prefix) = (self.clone(), prefix.cloned());
        let walk = move |conn: &Conn| {
            let mut entries = Vec::new();
            let mut folders = vec![prefix.clone()];
            while let Some(folder) = folders.pop() {
                for (name, stat) in conn.read_dir(&backend.folder(folder.as_ref()))? {
                    // Names no StorePath can hold (backslashes, control characters) are not objects of a store.
                    let Ok(name) = StorePath::parse(name) else { continue };
                    let path = folder.as_ref().map_or_else(|| name.clone(), |folder| folder.join(&name));
                    if stat.is_dir() && recursive {
                        folders.push(Some(path));
                    } else if stat.is_dir() {
                        entries.push(ListEntry::Prefix(path));
                    } else if stat.is_file() {
                        entries.push(ListEntry::Object(object_meta(path, &stat)));
                    }
                }
            }
            Ok(entries)
        };
        let this = self.clone();
        stream::once(async move { this.run(walk).await })
            .map_ok(|entries| stream::iter(entries.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// The temporaries (`.drs-tmp-...`) of writers killed before they renamed them into place.
    async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>> {
        let (backend, prefix) = (self.clone(), prefix.cloned());
        self.run(move |conn| {
            let (mut found, mut folders) = (Vec::new(), vec![prefix.clone()]);
            while let Some(folder) = folders.pop() {
                let remote = backend.folder(folder.as_ref());
                for (name, stat) in conn.read_dir_with_temporaries(&remote)? {
                    let Ok(entry) = StorePath::parse(name.as_str()) else { continue };
                    let path = folder.as_ref().map_or_else(|| entry.clone(), |folder| folder.join(&entry));
                    if stat.is_dir() {
                        folders.push(Some(path));
                    } else if stat.is_file() && name.starts_with(TEMP_PREFIX) {
                        let started = object_meta(path.clone(), &stat).last_modified;
                        let id = format!("{}/{name}", remote.trim_end_matches('/'));
                        found.push(Leftover { path, started, id });
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn remove_leftover(&self, leftover: &Leftover) -> Result<()> {
        let ours = leftover.id.starts_with(&self.folder(None))
            && leftover.id.rsplit('/').next().is_some_and(|name| name.starts_with(TEMP_PREFIX));
        if !ours {
            return Err(SftpError::NotTemporary(leftover.id.clone()).into());
        }
        let temporary = leftover.id.clone();
        self.run(move |conn| match conn.delete(&temporary) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }

    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        check_name(to)?;
        let (from, to) = (self.remote(from), self.remote(to));
        self.run(move |conn| conn.copy(&from, &to, overwrite)).await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        check_name(to)?;
        let (from, to) = (self.remote(from), self.remote(to));
        self.run(move |conn| conn.rename(&from, &to, overwrite)).await
    }

    /// Disconnects the idle sessions; calls still running keep theirs, and later calls reconnect.
    async fn close(&self) -> Result<()> {
        let idle = std::mem::take(&mut *self.shared.idle());
        tokio::task::spawn_blocking(move || idle.into_iter().for_each(Conn::disconnect)).await.map_err(worker_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_unpadded_standard_base64() {
        assert_eq!(conn::base64(b""), "");
        assert_eq!(conn::base64(b"f"), "Zg");
        assert_eq!(conn::base64(b"fo"), "Zm8");
        assert_eq!(conn::base64(b"foo"), "Zm9v");
        assert_eq!(conn::base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        for retry in 0..40 {
            let ceiling = BACKOFF_BASE.saturating_mul(1 << retry.min(16)).min(BACKOFF_CAP);
            let delay = backoff(retry);
            assert!(ceiling / 2 <= delay && delay <= ceiling, "retry {retry}: {delay:?}");
        }
        assert_ne!(random_u64(), random_u64());
    }

    #[test]
    fn leases_are_hidden_names_beside_the_object_that_fit_any_name() {
        assert_eq!(conn::lease_path("/base/a/pointer.json"), "/base/a/.drs-tmp-lease-pointer.json");
        let long = format!("/base/{}", "n".repeat(250));
        let lease = conn::lease_path(&long);
        let name = lease.strip_prefix("/base/").unwrap();
        assert!(name.starts_with(".drs-tmp-lease-") && name.len() <= 255, "{lease}");
        assert_eq!(conn::lease_path(&long), lease, "the same in every call");
        assert_ne!(conn::lease_path(&format!("{long}x")), lease);
    }

    #[test]
    fn temporary_names_are_reserved() {
        assert_eq!(check_name(&".drs-tmp-1234".parse().unwrap()).unwrap_err().kind(), ErrorKind::InvalidPath);
        assert!(check_name(&"a/.drs-tmp".parse().unwrap()).is_ok());
    }
}
