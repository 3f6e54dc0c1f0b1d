//! Local (or mounted) filesystem storage with atomic writes, object metadata
//! in extended attributes, and small files read and written without a thread hop.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Location;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions,
};
use store_core::{
    Backend, BackendExt, HeadOptions, Leftover, ListEntry, Metadata, ObjectMeta, ObjectStream, Payload, Result,
    StorePath, WriteMode, WriteResult,
};

use crate::ObjectStoreBackend;
use crate::error::LocalError;
use crate::object_store_backend::location;
use crate::uri::uri_escape;

/// Files up to this size are read and written on the calling task: handing a
/// small file's I/O to a blocking thread costs more than the I/O itself.
const INLINE_LIMIT: u64 = 1 << 20;

/// Objects as files under a root folder.
///
/// Writes go to a new file that is linked or renamed into place only when
/// complete, so a reader sees the old or the new file, never a mix, and a
/// failed or crashed write never leaves a partial file at the target. On Linux
/// filesystems that allow it, that file has no name until then (`O_TMPFILE`),
/// so a crashed writer leaves nothing; elsewhere it is a temporary beside the
/// target (`name#N`), which a crash may leave behind and listings skip.
/// Create-only writes use a hard link, so exactly one of several racing
/// writers wins. With [`with_fsync`](Self::with_fsync) files and their folders
/// are synced before a write returns. Names ending in `#` plus digits are
/// reserved for those temporaries and rejected as invalid paths.
///
/// No call reads, writes, lists, copies, renames or deletes through a symbolic
/// link, of a file or a folder at any depth, whose target lies outside the
/// root: such paths fail with [`store_core::ErrorKind::PermissionDenied`] naming the link,
/// and listings leave such links out. Links that stay inside the root work.
/// The check looks at each part of the path just before the call (see
/// `confine`), so a link swapped in between the two is not caught: only
/// those trusted with the root should be able to write links into it. A call
/// the filesystem refuses (EACCES, EPERM) is `PermissionDenied` too.
///
/// Object metadata lives in the file's `user.` extended attributes, set on the
/// new file before it is put in place, so data and metadata appear together.
/// Where the filesystem has no user extended attributes (checked once, at the
/// root), [`stores_metadata`](Backend::stores_metadata) is false.
///
/// An object's e-tag is `"<inode>-<mtime µs>-<size>"` (hex, object_store's local
/// scheme), the same from `head`, `get` and listings. Every write makes a new file,
/// so a new inode; a conditional write ([`WriteMode::IfMatch`]) also sets its file's
/// modification time past the old one's, so its e-tag is one no earlier version of
/// the object had, even where the filesystem reuses the old inode.
///
/// Conditional writes: the filesystem has no compare-and-swap, so an `IfMatch`
/// write takes an exclusive `flock` on the object's folder (on the open folder
/// itself: no lock file appears), then compares the file's e-tag with the one
/// expected and renames the new file into place, then lets go. The lock is
/// advisory: only `IfMatch` writers take it, so the guarantee (no lost update)
/// holds among them, across threads and processes on this machine, and on
/// network filesystems as far as their locks reach; a plain `Overwrite` racing
/// them is not held back. Unix only: elsewhere `IfMatch` is refused.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_core::{Store, WriteMode};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::new(store_backends::LocalBackend::new(dir.path())?);
/// store.write(&"assets/orders.json".parse()?, "[]".into(), WriteMode::Overwrite).await?;
/// assert!(dir.path().join("assets/orders.json").is_file());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// Listing, ranges, copies, renames and deletes: object_store's local filesystem.
    files: ObjectStoreBackend<Confined>,
    fsync: bool,
    xattrs: bool,
    /// Whether writes start as unnamed files (checked once, at the root; see [`Staged`]).
    unnamed: bool,
}

impl LocalBackend {
    /// A backend rooted at `root`, which is created if missing.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        Self::with_options(root, false)
    }

    /// A backend rooted at `root` that syncs every write to disk before returning.
    pub fn with_fsync(root: impl AsRef<Path>) -> Result<Self> {
        Self::with_options(root, true)
    }

    fn with_options(root: impl AsRef<Path>, fsync: bool) -> Result<Self> {
        let root = root.as_ref();
        let failed = |action, source: Box<dyn std::error::Error + Send + Sync>| LocalError::Root {
            action,
            root: root.to_owned(),
            source,
        };
        fs::create_dir_all(root).map_err(|e| failed("create", e.into()))?;
        let root: PathBuf = root.canonicalize().map_err(|e| failed("resolve", e.into()))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| failed("open", e.into()))?
            .with_fsync(fsync)
            .with_automatic_cleanup(true);
        let uri_root = format!("file://{}", uri_escape(root.to_string_lossy().trim_end_matches('/')));
        let root_dir = File::open(&root).ok().map(Arc::new);
        let store = Confined { files: store, root: root.clone(), root_dir };
        let files = ObjectStoreBackend::from_store(store, "local", uri_root).without_metadata();
        Ok(Self { files, fsync, xattrs: attributes::supported(&root), unnamed: anonymous::available(&root) })
    }

    /// The file behind `path`; names reserved for temporaries are invalid, and
    /// paths through a link leading out of the root are refused.
    fn file(&self, path: &StorePath) -> Result<PathBuf> {
        let confined = self.files.inner();
        let file =
            confined.files.path_to_filesystem(&location(path)?).map_err(|_| LocalError::ReservedName(path.clone()))?;
        confined.confine(path.as_str())?;
        Ok(file)
    }

    /// Refuses metadata where the filesystem has no extended attributes to keep it in.
    fn check_metadata(&self, options: &store_core::PutOptions) -> Result<()> {
        if !options.metadata.is_empty() && !self.xattrs {
            return Err(LocalError::NoExtendedAttributes.into());
        }
        Ok(())
    }

    async fn put(&self, path: &StorePath, data: Bytes, options: store_core::PutOptions) -> Result<WriteResult> {
        self.check_metadata(&options)?;
        let (target, fsync, unnamed) = (self.file(path)?, self.fsync, self.unnamed);
        let small = data.len() as u64 <= INLINE_LIMIT;
        let placed = off_task(small, move || {
            let mut staged = Staged::create(target, fsync, unnamed)?;
            staged.write(&data)?;
            staged.set_metadata(&options.metadata)?;
            staged.place(options.mode, fsync)
        })
        .await?;
        Ok(WriteResult { e_tag: Some(e_tag(&placed)), version: None })
    }

    /// A conditional write: the new file is written beside the target first, then
    /// [`Staged::place_if_match`] compares and renames it under the folder's lock.
    /// A target already changed (or gone) fails before anything is written.
    async fn put_if_match(
        &self,
        path: &StorePath,
        payload: Payload,
        metadata: Metadata,
        expected: String,
    ) -> Result<WriteResult> {
        if !metadata.is_empty() && !self.xattrs {
            return Err(LocalError::NoExtendedAttributes.into());
        }
        let (target, fsync, unnamed) = (self.file(path)?, self.fsync, self.unnamed);
        let small = match &payload {
            Payload::Bytes(data) => data.len() as u64 <= INLINE_LIMIT,
            Payload::Stream(_) => false,
        };
        let wanted = expected.clone();
        let mut staged = run(small, move || {
            current_at(&target, &wanted)?;
            Staged::create_beside(target, unnamed).map_err(gone_if_missing)
        })
        .await?;
        match payload {
            Payload::Bytes(data) => {
                staged = off_task(small, move || staged.write(&data).map(|()| staged)).await?;
            }
            Payload::Stream(mut chunks) => {
                while let Some(chunk) = chunks.try_next().await? {
                    staged = off_task(chunk.len() as u64 <= INLINE_LIMIT, move || {
                        staged.write(&chunk)?;
                        Ok(staged)
                    })
                    .await?;
                }
            }
        }
        // Off the task whatever the size: waiting for the lock blocks.
        let placed = run(false, move || {
            staged.set_metadata(&metadata)?;
            staged.place_if_match(&expected, fsync)
        })
        .await?;
        Ok(WriteResult { e_tag: Some(e_tag(&placed)), version: None })
    }

    /// Written chunk by chunk into the temporary file, so memory holds one chunk.
    async fn put_stream(
        &self,
        path: &StorePath,
        mut data: BoxStream<'static, Result<Bytes>>,
        options: store_core::PutOptions,
    ) -> Result<WriteResult> {
        self.check_metadata(&options)?;
        let (target, fsync, unnamed) = (self.file(path)?, self.fsync, self.unnamed);
        let mut staged = off_task(true, move || Staged::create(target, fsync, unnamed)).await?;
        while let Some(chunk) = data.try_next().await? {
            staged = off_task(chunk.len() as u64 <= INLINE_LIMIT, move || {
                staged.write(&chunk)?;
                Ok(staged)
            })
            .await?;
        }
        let placed = off_task(false, move || {
            staged.set_metadata(&options.metadata)?;
            staged.place(options.mode, fsync)
        })
        .await?;
        Ok(WriteResult { e_tag: Some(e_tag(&placed)), version: None })
    }

    /// The open file, its size and e-tag, and its metadata if asked for.
    fn open(&self, path: &StorePath, with_metadata: bool) -> Result<(File, u64, String, Metadata)> {
        let file = File::open(self.file(path)?).map_err(LocalError::Io)?;
        let meta = file.metadata().map_err(LocalError::Io)?;
        if meta.is_dir() {
            return Err(LocalError::Io(io::ErrorKind::NotFound.into()).into()); // a folder is not an object
        }
        let metadata = if with_metadata && self.xattrs {
            attributes::get_all(&file).map_err(LocalError::Io)?
        } else {
            Metadata::new()
        };
        Ok((file, meta.len(), e_tag(&meta), metadata))
    }

    /// A small file in one chunk read right away; a larger one in chunks, as
    /// long as the file was when it was opened.
    async fn stream(&self, path: &StorePath, with_metadata: bool) -> Result<store_core::GetResult> {
        let (file, size, e_tag, metadata) = self.open(path, with_metadata)?;
        Ok(store_core::GetResult::from(Self::chunks(file, size, metadata).await?).with_version(Some(e_tag), None))
    }

    /// The bytes of `file`, `size` of them, as a stream.
    async fn chunks(file: File, size: u64, metadata: Metadata) -> Result<ObjectStream> {
        if size <= INLINE_LIMIT {
            let data = read_to_end(file, size).await?;
            return Ok(ObjectStream { size: Some(size), metadata, chunks: stream::once(async { Ok(data) }).boxed() });
        }
        // Positioned reads, one chunk ahead of the reader: the next chunk comes off the
        // file on the blocking pool while the reader copies the last one.
        let (file, buffers) = (Arc::new(file), ChunkBuffers::default());
        let chunks = stream::iter((0..size).step_by(READ_CHUNK))
            .map(move |offset| {
                let (file, buffers) = (file.clone(), buffers.clone());
                let len = READ_CHUNK.min((size - offset) as usize);
                off_task(false, move || read_chunk(&file, offset, buffers.take(), len))
            })
            .buffered(2)
            .try_filter(|chunk| std::future::ready(!chunk.is_empty()))
            .map_ok(Bytes::from_owner);
        Ok(ObjectStream { size: Some(size), metadata, chunks: chunks.boxed() })
    }
}

async fn read_to_end(mut file: File, size: u64) -> Result<Bytes> {
    off_task(size <= INLINE_LIMIT, move || {
        // One byte more than the size, to see the end in the same call; the file may have grown.
        let mut data = store_core::buffer::with_capacity(size as usize + 1);
        file.read_to_end(&mut data)?;
        Ok(data.into())
    })
    .await
}

/// Up to `len` bytes at `offset` into `buffer`: fewer only where the file ends.
fn read_chunk(file: &File, offset: u64, mut buffer: PooledBuffer, len: usize) -> io::Result<PooledBuffer> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    #[cfg(windows)]
    use std::os::windows::fs::FileExt;
    #[cfg(windows)]
    let read_at = |buf: &mut [u8], at: u64| file.seek_read(buf, at);
    #[cfg(unix)]
    let read_at = |buf: &mut [u8], at: u64| file.read_at(buf, at);

    let mut filled = 0;
    while filled < len {
        match read_at(&mut buffer.data[filled..len], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buffer.len = filled;
    Ok(buffer)
}

/// The chunk buffers of one streamed read. A chunk's buffer comes back when
/// the reader drops the chunk, so a few buffers carry the whole file: fresh
/// memory for every chunk cost more in page faults than reading the file did.
#[derive(Clone, Default)]
struct ChunkBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl ChunkBuffers {
    fn take(&self) -> PooledBuffer {
        let reused = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        PooledBuffer { data: reused.unwrap_or_else(|| vec![0; READ_CHUNK]), len: 0, home: self.clone() }
    }
}

/// A chunk's bytes, the first `len` of `data`; `data` goes back to `home` when dropped.
struct PooledBuffer {
    data: Vec<u8>,
    len: usize,
    home: ChunkBuffers,
}

impl PooledBuffer {
    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.home.0.lock().unwrap_or_else(|e| e.into_inner()).push(data);
    }
}

/// The most a write hands the kernel at once. Linux sizes page-cache folios
/// by the write, and folios of several MiB come from large free blocks, which
/// a virtual machine whose balloon reports free memory has given back to the
/// host and must fault in again. On the 2-core VMs we measure on, 256 MiB written
/// in 8 MiB calls ran at 700–900 MiB/s once memory had been free a few
/// seconds; in 1 MiB calls, at 3700–4400 every time.
const WRITE_CALL: usize = 1 << 20;

/// Chunks of this size are read at a time when a file is streamed.
const READ_CHUNK: usize = 8 << 20;

/// [`off_task`] for work that fails with a [`LocalError`] of its own.
async fn run<T: Send + 'static>(
    small: bool,
    work: impl FnOnce() -> Result<T, LocalError> + Send + 'static,
) -> Result<T> {
    Ok(blocking(small, work).await.map_err(LocalError::Task)??)
}

/// An object's e-tag: object_store's for local files (what `head` and listings
/// report), `"<inode>-<mtime µs>-<size>"` in hex, so a new file (a new inode) or a
/// new modification time makes a new e-tag.
fn e_tag(meta: &fs::Metadata) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    let mtime = micros(meta);
    format!("\"{inode:x}-{mtime:x}-{:x}\"", meta.len())
}

/// A file's modification time in microseconds since the epoch (0 where unknown).
fn micros(meta: &fs::Metadata) -> u128 {
    let mtime = meta.modified().ok().and_then(|mtime| mtime.duration_since(std::time::UNIX_EPOCH).ok());
    mtime.unwrap_or_default().as_micros()
}

/// The metadata of the file at `target`, if its e-tag is `expected`; else (another
/// file there, or none) [`LocalError::Changed`].
fn current_at(target: &Path, expected: &str) -> Result<fs::Metadata, LocalError> {
    match fs::metadata(target) {
        Ok(meta) if meta.is_file() && e_tag(&meta) == expected => Ok(meta),
        Ok(_) => Err(LocalError::Changed),
        Err(e) => Err(gone_if_missing(e)),
    }
}

/// A missing file or folder, met by a conditional write, as the object gone.
fn gone_if_missing(err: io::Error) -> LocalError {
    match err.kind() {
        io::ErrorKind::NotFound => LocalError::Changed,
        _ => LocalError::Io(err),
    }
}

/// Runs `work` on this task when `small`, else on tokio's blocking pool (or
/// here, outside a tokio runtime).
async fn off_task<T: Send + 'static>(small: bool, work: impl FnOnce() -> io::Result<T> + Send + 'static) -> Result<T> {
    Ok(blocking(small, work).await.map_err(LocalError::Task)?.map_err(LocalError::Io)?)
}

/// [`off_task`] with the work's own result, for callers that map errors their way.
async fn blocking<T: Send + 'static>(
    small: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if !small => runtime.spawn_blocking(work).await,
        _ => Ok(work()),
    }
}

/// A new file that becomes the target only when placed. Where the filesystem
/// allows it (Linux `O_TMPFILE`) the file has no name until then, which saves
/// creating and renaming a directory entry and leaves nothing behind if the
/// writer dies; elsewhere it is `target#N` beside the target, removed on drop
/// unless renamed into place.
struct Staged {
    file: File,
    /// The temporary's name; `None` while the file is unnamed.
    path: Option<PathBuf>,
    target: PathBuf,
    renamed: bool,
}

impl Staged {
    /// Creates the file in the target's folder, which must exist.
    fn create_beside(target: PathBuf, unnamed: bool) -> io::Result<Self> {
        let folder = target.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let (file, path) = Self::open(&target, folder, unnamed)?;
        Ok(Self { file, path, target, renamed: false })
    }

    /// Creates the file, and the target's folders if missing.
    fn create(target: PathBuf, fsync: bool, unnamed: bool) -> io::Result<Self> {
        let folder = target.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let (file, path) = match Self::open(&target, folder, unnamed) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(folder)?;
                if fsync {
                    sync_folders(folder)?;
                }
                Self::open(&target, folder, unnamed)?
            }
            opened => opened?,
        };
        Ok(Self { file, path, target, renamed: false })
    }

    fn open(target: &Path, folder: &Path, unnamed: bool) -> io::Result<(File, Option<PathBuf>)> {
        if unnamed {
            match anonymous::create(folder) {
                Ok(file) => return Ok((file, None)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(_) => {} // a folder on a filesystem without unnamed files: a named one instead
            }
        }
        let (file, path) = claim_name(target, |path| OpenOptions::new().write(true).create_new(true).open(path))?;
        Ok((file, Some(path)))
    }

    /// Appends `data`, a [`WRITE_CALL`] per system call.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        data.chunks(WRITE_CALL).try_for_each(|call| self.file.write_all(call))
    }

    /// Keeps `metadata` in the file's extended attributes, before it is placed.
    fn set_metadata(&self, metadata: &Metadata) -> io::Result<()> {
        metadata.iter().try_for_each(|(key, value)| attributes::set(&self.file, key, value))
    }

    /// Puts the file at its target, if the file there still has the e-tag `expected`:
    /// compared and replaced under an exclusive lock on the folder (see [`FolderLock`]),
    /// so that of the conditional writers racing on one version exactly one wins. The
    /// new file's modification time is set past the old one's first, so that its
    /// e-tag is new even if it gets the inode of an earlier version.
    fn place_if_match(self, expected: &str, fsync: bool) -> Result<fs::Metadata, LocalError> {
        let folder = self.target.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let _lock = FolderLock::acquire(folder).map_err(gone_if_missing)?;
        let current = current_at(&self.target, expected)?;
        self.modified_after(&current)?;
        Ok(self.place(WriteMode::Overwrite, fsync)?)
    }

    /// Sets the file's modification time past `previous`'s, as the filesystem keeps it.
    fn modified_after(&self, previous: &fs::Metadata) -> io::Result<()> {
        let old = previous.modified()?;
        // The first that the filesystem keeps as later: the time now, or a microsecond later than
        // the old one; then, for filesystems keeping coarser times (FAT keeps 2 s), a second or two on.
        let steps = [Duration::from_micros(1), Duration::from_secs(1), Duration::from_secs(2)];
        for (i, step) in steps.into_iter().enumerate() {
            let at = if i == 0 { SystemTime::now().max(old + step) } else { old + step };
            self.file.set_modified(at)?;
            if micros(&self.file.metadata()?) > micros(previous) {
                break;
            }
        }
        Ok(())
    }

    /// Puts the file at its target: replacing what is there, or only if nothing
    /// is; returns the file's metadata, for its e-tag.
    fn place(mut self, mode: WriteMode, fsync: bool) -> io::Result<fs::Metadata> {
        if fsync {
            self.file.sync_all()?;
        }
        let placed = self.file.metadata()?;
        // A link fails if the target exists, so one of several racing create-only writers wins.
        match (self.path.clone(), mode) {
            (None, WriteMode::CreateNew) => anonymous::link(&self.file, &self.target)?,
            (None, WriteMode::Overwrite) => match anonymous::link(&self.file, &self.target) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // A link cannot replace a file: name this one, then rename it over the target.
                    let ((), path) = claim_name(&self.target, |path| anonymous::link(&self.file, path))?;
                    self.path = Some(path.clone());
                    self.rename_from(&path)?;
                }
                linked => linked?,
            },
            (Some(path), WriteMode::CreateNew) => fs::hard_link(path, &self.target)?,
            (Some(path), WriteMode::Overwrite) => self.rename_from(&path)?,
            // Only `place_if_match` places a conditional write, under the folder's lock.
            (_, WriteMode::IfMatch(_)) => return Err(io::ErrorKind::Unsupported.into()),
        }
        if fsync {
            File::open(self.target.parent().unwrap_or(Path::new("/")))?.sync_all()?;
        }
        Ok(placed)
    }

    fn rename_from(&mut self, path: &Path) -> io::Result<()> {
        fs::rename(path, &self.target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let (Some(path), false) = (&self.path, self.renamed) {
            let _ = fs::remove_file(path);
        }
    }
}

/// An exclusive `flock` on an open folder, held until dropped: what conditional
/// writes of the objects in the folder serialise on. Advisory: only they take it.
struct FolderLock {
    _folder: File,
}

impl FolderLock {
    /// Waits for the lock on `folder`. A folder removed (its last object deleted) and
    /// made again while this waited is another folder, whose lock others may hold:
    /// the lock counts only once the folder locked is still the one at the path.
    #[cfg(unix)]
    fn acquire(folder: &Path) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;

        use rustix::fs::{FlockOperation, flock};
        use rustix::io::Errno;

        loop {
            let dir = File::open(folder)?;
            let mut locked = flock(&dir, FlockOperation::LockExclusive);
            while locked == Err(Errno::INTR) {
                locked = flock(&dir, FlockOperation::LockExclusive);
            }
            locked?;
            let (locked, now) = (dir.metadata()?, fs::metadata(folder)?);
            if (locked.dev(), locked.ino()) == (now.dev(), now.ino()) {
                return Ok(Self { _folder: dir });
            }
        }
    }

    #[cfg(not(unix))]
    fn acquire(_folder: &Path) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "conditional writes on local files need flock, which only Unix has",
        ))
    }
}

/// Runs `create` on `target#N` names until one is free (no other writer holds it).
fn claim_name<T>(target: &Path, create: impl Fn(&Path) -> io::Result<T>) -> io::Result<(T, PathBuf)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut path = target.as_os_str().to_owned();
        path.push(format!("#{}{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let path = PathBuf::from(path);
        match create(&path) {
            Ok(made) => return Ok((made, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// The name of the object a temporary `name#N` was written for; `None` for other files.
fn temporary_target(file: &Path) -> Option<&str> {
    let (target, number) = file.file_name()?.to_str()?.rsplit_once('#')?;
    let temporary = !target.is_empty() && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    temporary.then_some(target)
}

/// The temporaries in the folders from `start` down (links not followed), as
/// leftovers for the objects they were written for.
fn temporaries(root: &Path, start: &Path) -> io::Result<Vec<Leftover>> {
    let (mut found, mut folders) = (Vec::new(), vec![start.to_path_buf()]);
    while let Some(folder) = folders.pop() {
        let entries = match fs::read_dir(&folder) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            entries => entries?,
        };
        for entry in entries {
            let entry = entry?;
            let file = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folders.push(file);
                continue;
            }
            let Some(target) = temporary_target(&file).filter(|_| kind.is_file()) else { continue };
            let relative = folder.strip_prefix(root).unwrap_or(&folder).join(target);
            let Ok(path) = StorePath::parse(relative.to_string_lossy()) else { continue };
            let started = entry.metadata()?.modified().ok();
            found.push(Leftover { path, started, id: file.to_string_lossy().into_owned() });
        }
    }
    Ok(found)
}

/// Syncs `folder` and its ancestors, so newly created folders survive a crash.
fn sync_folders(folder: &Path) -> io::Result<()> {
    for folder in folder.ancestors() {
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// Fails where `relative`, a `/`-separated path below the canonical `root`,
/// goes through or ends at a symbolic link whose target lies outside the root.
/// One `lstat` per part that exists; only links are resolved. The check stops
/// at the first part that does not exist, or at a dangling link: no call goes
/// through either, and a write replaces a link at the end of the path rather
/// than following it.
fn confine(root: &Path, relative: &str) -> Result<(), LocalError> {
    let mut at = root.to_path_buf();
    for part in relative.split('/').filter(|part| !part.is_empty()) {
        at.push(part);
        let Ok(meta) = fs::symlink_metadata(&at) else { return Ok(()) };
        if meta.file_type().is_symlink() {
            match fs::canonicalize(&at) {
                Ok(target) if target.starts_with(root) => {}
                Ok(_) => {
                    let link = at.strip_prefix(root).unwrap_or(&at).to_string_lossy().into_owned();
                    return Err(LocalError::Escape { link, root: root.to_owned() });
                }
                Err(_) => return Ok(()),
            }
        }
    }
    Ok(())
}

/// object_store's local filesystem kept inside its root: every call is
/// [`confine`]d first, listings leave out links leading out of the root, and a
/// call the filesystem refuses (EACCES, EPERM) is `PermissionDenied` rather
/// than object_store's generic error.
#[derive(Debug, Clone)]
struct Confined {
    files: LocalFileSystem,
    /// The canonical root.
    root: PathBuf,
    /// The root folder open, for paths resolved beneath it; `None` where folders cannot be opened.
    root_dir: Option<Arc<File>>,
}

impl fmt::Display for Confined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Confined({})", self.files)
    }
}

impl Confined {
    /// [`confine`], after a quicker look that settles the usual case: one call
    /// tells whether `relative` has no link on it at all.
    fn confine(&self, relative: &str) -> Result<(), LocalError> {
        match &self.root_dir {
            Some(root_dir) if linkless::no_link_on(root_dir, relative) => Ok(()),
            _ => confine(&self.root, relative),
        }
    }

    fn check(&self, location: &Location) -> object_store::Result<()> {
        self.confine(location.as_ref()).map_err(|escape| object_store::Error::PermissionDenied {
            path: location.to_string(),
            source: escape.into(),
        })
    }

    /// The folder's listing without links leading out of the root, and the
    /// targets of the links to folders that stay inside it, by name.
    async fn listing(&self, folder: &Location) -> object_store::Result<(ListResult, HashMap<String, PathBuf>)> {
        self.check(folder)?;
        let mut listing = self.files.list_with_delimiter(Some(folder)).await.map_err(|e| refused(folder, e))?;
        let (dir, root) = (self.root.join(folder.as_ref()), self.root.clone());
        let links = blocking(false, move || links_in(&dir, &root))
            .await
            .map_err(|source| object_store::Error::JoinError { source })?
            .map_err(|e| refused(folder, local_io_error(e)))?;
        let leads_out = |path: &Location| matches!(links.get(path.filename().unwrap_or("")), Some(None));
        listing.common_prefixes.retain(|prefix| !leads_out(prefix));
        listing.objects.retain(|object| !leads_out(&object.location));
        let inside = links.into_iter().filter_map(|(name, target)| Some((name, target?))).collect();
        Ok((listing, inside))
    }
}

/// The symbolic links in `dir`, by name: their canonical target if it lies
/// inside `root`, `None` if outside. Dangling links are left out (listings skip them).
/// A missing folder, or a file (listed as a prefix, it has nothing under it), has none.
fn links_in(dir: &Path, root: &Path) -> io::Result<HashMap<String, Option<PathBuf>>> {
    let entries = match fs::read_dir(dir) {
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Ok(HashMap::new());
        }
        entries => entries?,
    };
    let mut links = HashMap::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_symlink()
            && let Ok(target) = fs::canonicalize(entry.path())
        {
            let inside = target.starts_with(root).then_some(target);
            links.insert(entry.file_name().to_string_lossy().into_owned(), inside);
        }
    }
    Ok(links)
}

/// An I/O error of our own local calls in object_store's terms.
fn local_io_error(err: io::Error) -> object_store::Error {
    object_store::Error::Generic { store: "LocalFileSystem", source: err.into() }
}

/// `err`, a failed call on `location`, as `PermissionDenied` where the
/// filesystem refused it (EACCES and EPERM are both `io::ErrorKind::PermissionDenied`).
fn refused(location: &Location, err: object_store::Error) -> object_store::Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if current.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::PermissionDenied) {
            return object_store::Error::PermissionDenied { path: location.to_string(), source: err.into() };
        }
        source = current.source();
    }
    err
}

#[async_trait]
impl ObjectStore for Confined {
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.files.put_opts(location, payload, opts).await.map_err(|e| refused(location, e))
    }

    async fn put_multipart_opts(
        &self,
        location: &Location,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.files.put_multipart_opts(location, opts).await.map_err(|e| refused(location, e))
    }

    async fn get_opts(&self, location: &Location, options: GetOptions) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.files.get_opts(location, options).await.map_err(|e| refused(location, e))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Location>>,
    ) -> BoxStream<'static, object_store::Result<Location>> {
        let this = self.clone();
        locations
            .and_then(move |location| {
                let this = this.clone();
                async move {
                    this.check(&location)?;
                    this.files.delete(&location).await.map_err(|e| refused(&location, e))?;
                    Ok(location)
                }
            })
            .boxed()
    }

    /// Folder by folder, so that no folder behind a link leading out of the
    /// root is entered, and a link back to a folder being walked is not followed.
    fn list(&self, prefix: Option<&Location>) -> BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        let start = prefix.cloned().unwrap_or_default();
        let real = self.root.join(start.as_ref());
        // Each folder to walk comes with the real folders it lies in, itself last.
        let walk = vec![(start, vec![fs::canonicalize(&real).unwrap_or(real)])];
        let this = self.clone();
        stream::try_unfold(walk, move |mut walk| {
            let this = this.clone();
            async move {
                let Some((folder, within)) = walk.pop() else { return Ok::<_, object_store::Error>(None) };
                let (listing, links) = this.listing(&folder).await?;
                for sub in listing.common_prefixes {
                    let name = sub.filename().unwrap_or("");
                    let real = links.get(name).cloned().unwrap_or_else(|| within[within.len() - 1].join(name));
                    if within.iter().any(|dir| dir.starts_with(&real)) {
                        continue; // a link back to where the walk already is
                    }
                    let mut sub_within = within.clone();
                    sub_within.push(real);
                    walk.push((sub, sub_within));
                }
                Ok(Some((stream::iter(listing.objects.into_iter().map(Ok)), walk)))
            }
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Location>) -> object_store::Result<ListResult> {
        Ok(self.listing(&prefix.cloned().unwrap_or_default()).await?.0)
    }

    async fn copy_opts(&self, from: &Location, to: &Location, options: CopyOptions) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.files.copy_opts(from, to, options).await.map_err(|e| refused(from, e))
    }

    async fn rename_opts(&self, from: &Location, to: &Location, options: RenameOptions) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.files.rename_opts(from, to, options).await.map_err(|e| refused(from, e))
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        self.files.kind()
    }

    fn uri(&self, path: &StorePath) -> String {
        self.files.uri(path)
    }

    /// The named temporaries (`name#N`) of writers that were killed, on
    /// filesystems without unnamed files; with them, a killed writer leaves nothing.
    async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>> {
        let root = self.files.inner().root.clone();
        let start = prefix.map_or_else(|| root.clone(), |prefix| root.join(prefix.as_str()));
        off_task(false, move || temporaries(&root, &start)).await
    }

    async fn remove_leftover(&self, leftover: &Leftover) -> Result<()> {
        let file = PathBuf::from(&leftover.id);
        let root = &self.files.inner().root;
        if !file.starts_with(root) || temporary_target(&file).is_none() {
            return Err(LocalError::NotTemporary(leftover.id.clone()).into());
        }
        match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LocalError::Io(e).into()),
            _ => Ok(()),
        }
    }

    /// A whole file is read from one open descriptor, so its bytes, size and
    /// extended attributes are of the same file even if it is replaced meanwhile.
    async fn get_opts(&self, path: &StorePath, options: store_core::GetOptions) -> Result<store_core::GetResult> {
        if options.range.is_some() {
            let with_metadata = options.metadata && self.xattrs;
            let mut got = self.files.get_opts(path, store_core::GetOptions { metadata: false, ..options }).await?;
            if with_metadata {
                got.metadata = self.open(path, true)?.3;
            }
            return Ok(got);
        }
        if options.stream {
            return self.stream(path, options.metadata).await;
        }
        let (file, size, e_tag, metadata) = self.open(path, options.metadata)?;
        let data = read_to_end(file, size).await?;
        Ok(store_core::GetResult::new(data.into(), Some(size), metadata).with_version(Some(e_tag), None))
    }

    async fn head_opts(&self, path: &StorePath, options: HeadOptions) -> Result<(ObjectMeta, Metadata)> {
        let metadata = if options.metadata { self.open(path, true)?.3 } else { Metadata::new() };
        Ok((self.files.head(path).await?, metadata))
    }

    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Payload,
        options: store_core::PutOptions,
    ) -> Result<WriteResult> {
        if let WriteMode::IfMatch(expected) = &options.mode {
            let expected = expected.e_tag.clone().ok_or(LocalError::NoETag)?;
            return self.put_if_match(path, payload, options.metadata, expected).await;
        }
        match payload {
            Payload::Bytes(data) => self.put(path, data, options).await,
            Payload::Stream(chunks) => self.put_stream(path, chunks, options).await,
        }
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.files.delete(path).await
    }

    fn list(&self, prefix: Option<&StorePath>, recursive: bool) -> BoxStream<'static, Result<ListEntry>> {
        self.files.list(prefix, recursive)
    }

    async fn copy(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.files.copy(from, to, overwrite).await
    }

    async fn rename(&self, from: &StorePath, to: &StorePath, overwrite: bool) -> Result<()> {
        self.files.rename(from, to, overwrite).await
    }

    fn stores_metadata(&self) -> bool {
        self.xattrs
    }
}

/// Whether a path has no symbolic link on it, in one call (Linux `openat2`); elsewhere, unknown.
#[cfg(target_os = "linux")]
mod linkless {
    use std::fs::File;

    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    use rustix::io::Errno;

    /// True if `relative`, resolved beneath `root`, meets no symbolic link
    /// before it ends or reaches a part that does not exist. False where that
    /// is not known: a link on the way, or a kernel without `openat2` (before 5.6).
    pub fn no_link_on(root: &File, relative: &str) -> bool {
        let path = if relative.is_empty() { "." } else { relative };
        let (flags, resolve) = (OFlags::PATH | OFlags::CLOEXEC, ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH);
        // The descriptor opened, if any, is closed as soon as it is dropped.
        match openat2(root, path, flags, Mode::empty(), resolve) {
            Ok(_) => true,
            Err(e) => matches!(e, Errno::NOENT | Errno::NOTDIR),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod linkless {
    use std::fs::File;

    pub fn no_link_on(_root: &File, _relative: &str) -> bool {
        false
    }
}

/// Metadata as `user.<key>` extended attributes (Linux); elsewhere, none.
#[cfg(target_os = "linux")]
mod attributes {
    use std::fs::File;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use rustix::io::Errno;
    use store_core::Metadata;
    use xattr::FileExt;

    const PREFIX: &str = "user.";

    /// Whether the filesystem at `folder` keeps user extended attributes: asking
    /// for one that is not there says "no such attribute" only where it does.
    pub fn supported(folder: &Path) -> bool {
        xattr::get_deref(folder, "user.dagster_remote_store_probe").is_ok()
    }

    pub fn set(file: &File, key: &str, value: &str) -> io::Result<()> {
        file.set_xattr(format!("{PREFIX}{key}"), value.as_bytes())
    }

    /// Every `user.` attribute of `file`, prefix removed; none where the
    /// file's filesystem has no extended attributes.
    pub fn get_all(file: &File) -> io::Result<Metadata> {
        let names = match file.list_xattr() {
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOTSUP) => return Ok(Metadata::new()),
            names => names?,
        };
        let mut metadata = Metadata::new();
        for name in names.filter(|n| n.as_bytes().starts_with(PREFIX.as_bytes())) {
            // An attribute listed but gone before it is read: the object changed under the read.
            let value = file.get_xattr(&name)?.ok_or(Errno::NODATA)?;
            let key = String::from_utf8_lossy(&name.as_bytes()[PREFIX.len()..]).into_owned();
            metadata.insert(key, String::from_utf8_lossy(&value).into_owned());
        }
        Ok(metadata)
    }
}

#[cfg(not(target_os = "linux"))]
mod attributes {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    use store_core::Metadata;

    pub fn supported(_folder: &Path) -> bool {
        false
    }

    pub fn set(_file: &File, _key: &str, _value: &str) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn get_all(_file: &File) -> io::Result<Metadata> {
        Ok(Metadata::new())
    }
}

/// Files without a name until linked into place (Linux `O_TMPFILE`); elsewhere, none.
#[cfg(target_os = "linux")]
mod anonymous {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fs::{AtFlags, CWD, OFlags, linkat};
    use rustix::io::Errno;

    /// Whether unnamed files can be made in `root`'s filesystem (one is made
    /// and dropped, leaving nothing) and linked by this process: `/proc/self/fd`
    /// is the way that works without privilege on every kernel (see [`link`]).
    pub fn available(root: &Path) -> bool {
        Path::new("/proc/self/fd").is_dir() && create(root).is_ok()
    }

    /// A new file in `folder` with no name; unsupported filesystems say so with an error.
    pub fn create(folder: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).mode(0o666).custom_flags(OFlags::TMPFILE.bits() as i32).open(folder)
    }

    /// Set once `linkat` has refused `AT_EMPTY_PATH` and `/proc/self/fd` has
    /// worked instead: older kernels allow it only with CAP_DAC_READ_SEARCH.
    static EMPTY_PATH_REFUSED: AtomicBool = AtomicBool::new(false);

    /// Gives `file` the name `target`; fails with `AlreadyExists` if it is taken.
    /// Linking the descriptor itself saves the kernel resolving a `/proc` path:
    /// about 3 µs of a 30 µs small write.
    pub fn link(file: &File, target: &Path) -> io::Result<()> {
        if !EMPTY_PATH_REFUSED.load(Ordering::Relaxed) {
            match link_descriptor(file, target) {
                Err(e) if Errno::from_io_error(&e) == Some(Errno::NOENT) => {}
                linked => return linked,
            }
            // ENOENT is also what a missing folder says: only a /proc link that works tells.
            link_through_proc(file, target)?;
            EMPTY_PATH_REFUSED.store(true, Ordering::Relaxed);
            return Ok(());
        }
        link_through_proc(file, target)
    }

    fn link_descriptor(file: &File, to: &Path) -> io::Result<()> {
        linkat(file, "", CWD, to, AtFlags::EMPTY_PATH).map_err(io::Error::from)
    }

    fn link_through_proc(file: &File, to: &Path) -> io::Result<()> {
        let from = format!("/proc/self/fd/{}", file.as_raw_fd());
        linkat(CWD, from, CWD, to, AtFlags::SYMLINK_FOLLOW).map_err(io::Error::from)
    }

    #[cfg(test)]
    mod tests {
        use std::io::Write;

        use super::*;

        #[test]
        fn both_ways_of_linking_name_the_unnamed_file_and_refuse_a_taken_name() {
            let dir = tempfile::tempdir().unwrap();
            for (name, link_by) in
                [("descriptor", link_descriptor as fn(&File, &Path) -> io::Result<()>), ("proc", link_through_proc)]
            {
                let mut file = create(dir.path()).unwrap();
                file.write_all(name.as_bytes()).unwrap();
                let to = dir.path().join(name);
                link_by(&file, &to).unwrap();
                assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), name.as_bytes());
                let taken = link_by(&create(dir.path()).unwrap(), &to).unwrap_err();
                assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists, "{name}");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod anonymous {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    pub fn available(_root: &Path) -> bool {
        false
    }

    pub fn create(_folder: &Path) -> io::Result<File> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn link(_file: &File, _target: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use futures::StreamExt;

    use store_core::{Store, StorePath, WriteMode};

    use super::{LocalBackend, READ_CHUNK};

    fn shared_root() -> &'static tempfile::TempDir {
        static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
        ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir"))
    }

    async fn make_store() -> Store {
        Store::new(LocalBackend::new(shared_root().path()).expect("local backend"))
    }

    store_core::conformance_tests!(make_store);
    fn p(path: &str) -> StorePath {
        path.parse().unwrap()
    }

    /// Every path of a listing, folders ending in `/`, sorted.
    async fn listed(store: &Store, prefix: Option<&str>, recursive: bool) -> store_core::Result<Vec<String>> {
        let prefix = prefix.map(p);
        let entries: Vec<_> = futures::TryStreamExt::try_collect(store.list(prefix.as_ref(), recursive)).await?;
        let mut paths: Vec<String> = entries
            .into_iter()
            .map(|entry| match entry {
                store_core::ListEntry::Object(meta) => meta.path.to_string(),
                store_core::ListEntry::Prefix(folder) => format!("{folder}/"),
            })
            .collect();
        paths.sort();
        Ok(paths)
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn no_call_goes_through_a_link_leading_out_of_the_root() {
        use std::os::unix::fs::symlink;
        let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(outside.path().join("secret.txt"), b"outside").unwrap();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/x.txt"), b"inside").unwrap();
        symlink(outside.path(), root.join("dirlink")).unwrap();
        symlink(outside.path().join("secret.txt"), root.join("filelink")).unwrap();
        symlink(outside.path(), root.join("real/deeplink")).unwrap();
        symlink(root.join("real"), root.join("inlink")).unwrap(); // absolute, inside
        symlink("real/x.txt", root.join("rel.txt")).unwrap(); // relative, inside
        std::fs::create_dir(root.join("other")).unwrap();
        symlink("../other", root.join("real/sib")).unwrap(); // a cycle of links: walked once
        symlink("../real", root.join("other/back")).unwrap();
        for unnamed in [true, false] {
            let store = Store::new(LocalBackend { unnamed, ..LocalBackend::new(&root).unwrap() });
            let refused = |result: store_core::Result<()>, what: &str| {
                let err = result.expect_err(what);
                assert_eq!(err.kind(), store_core::ErrorKind::PermissionDenied, "{what}: {err}");
                assert!(err.to_string().contains("symbolic link leading outside the local root"), "{what}: {err}");
            };
            for path in ["dirlink/a.txt", "real/deeplink/a.txt", "dirlink/new/a.txt", "filelink"] {
                let written = store.write(&p(path), "x".into(), WriteMode::Overwrite).await.map(drop);
                refused(written, &format!("write {path}"));
                let chunks = futures::stream::iter([Ok(bytes::Bytes::from("x"))]).boxed();
                refused(store.write_stream(&p(path), chunks, WriteMode::Overwrite).await.map(drop), "write_stream");
            }
            for path in ["dirlink/secret.txt", "filelink", "real/deeplink/secret.txt"] {
                refused(store.read(&p(path)).await.map(drop), &format!("read {path}"));
                refused(store.read_range(&p(path), 0..2).await.map(drop), &format!("read_range {path}"));
                refused(store.read_stream(&p(path)).await.map(drop), &format!("read_stream {path}"));
                refused(store.head(&p(path)).await.map(drop), &format!("head {path}"));
                refused(store.delete(&p(path), false).await, &format!("delete {path}"));
                refused(store.copy(&p(path), &p("copied.txt"), true).await, &format!("copy from {path}"));
                refused(store.rename(&p(path), &p("moved.txt"), true).await, &format!("rename from {path}"));
            }
            refused(store.copy(&p("real/x.txt"), &p("dirlink/copied.txt"), true).await, "copy to");
            refused(store.rename(&p("real/x.txt"), &p("dirlink/moved.txt"), true).await, "rename to");
            refused(listed(&store, Some("dirlink"), true).await.map(drop), "list dirlink");
            refused(listed(&store, Some("real/deeplink"), false).await.map(drop), "list real/deeplink");

            let mut left: Vec<_> = std::fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            left.sort();
            assert_eq!(left, ["secret.txt"], "nothing was written, moved or deleted outside the root");
            assert_eq!(std::fs::read(outside.path().join("secret.txt")).unwrap(), b"outside");

            // Links that stay inside the root work; listings leave out the others.
            store.write(&p("inlink/y.txt"), "via link".into(), WriteMode::Overwrite).await.unwrap();
            assert_eq!(std::fs::read(root.join("real/y.txt")).unwrap(), b"via link");
            assert_eq!(store.read(&p("rel.txt")).await.unwrap(), "inside");
            assert_eq!(store.read(&p("real/sib/back/x.txt")).await.unwrap(), "inside");
            let all = listed(&store, None, true).await.unwrap();
            let twice = ["inlink/x.txt", "inlink/y.txt", "other/back/x.txt", "other/back/y.txt"];
            assert_eq!(all, [&twice[..], &["real/x.txt", "real/y.txt", "rel.txt"]].concat());
            let top = listed(&store, None, false).await.unwrap();
            assert_eq!(top, ["inlink/", "other/", "real/", "rel.txt"]);
            assert_eq!(listed(&store, Some("real"), false).await.unwrap(), ["real/sib/", "real/x.txt", "real/y.txt"]);
            std::fs::remove_file(root.join("real/y.txt")).unwrap();
        }
    }

    /// Sets a file's or folder's immutable attribute (`chattr +i`), which makes
    /// the kernel refuse changes with EPERM even to root; cleared on drop.
    struct Immutable(std::path::PathBuf);

    impl Immutable {
        /// `None` where this filesystem or this process cannot set the attribute.
        fn set(path: &std::path::Path) -> Option<Self> {
            let done = std::process::Command::new("chattr").arg("+i").arg(path).status();
            done.is_ok_and(|status| status.success()).then(|| Self(path.to_owned()))
        }
    }

    impl Drop for Immutable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
        }
    }

    #[tokio::test]
    async fn calls_the_filesystem_refuses_are_permission_denied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        store.write(&p("locked/a.txt"), "kept".into(), WriteMode::Overwrite).await.unwrap();
        store.write(&p("open/b.txt"), "b".into(), WriteMode::Overwrite).await.unwrap();
        let Some(_locked) = Immutable::set(&dir.path().join("locked")) else {
            eprintln!(
                "skipped: `chattr +i` is not available here (needs CAP_LINUX_IMMUTABLE and ext4, xfs, btrfs or tmpfs)"
            );
            return;
        };
        let denied = |result: store_core::Result<()>, what: &str| {
            let err = result.expect_err(what);
            assert_eq!(err.kind(), store_core::ErrorKind::PermissionDenied, "{what}: {err}");
        };
        denied(store.delete(&p("locked/a.txt"), false).await, "delete");
        denied(store.write(&p("locked/a.txt"), "new".into(), WriteMode::Overwrite).await.map(drop), "overwrite");
        denied(store.write(&p("locked/n.txt"), "new".into(), WriteMode::CreateNew).await.map(drop), "create");
        let chunks = futures::stream::iter([Ok(bytes::Bytes::from("x"))]).boxed();
        denied(store.write_stream(&p("locked/s.txt"), chunks, WriteMode::Overwrite).await.map(drop), "stream");
        denied(store.copy(&p("open/b.txt"), &p("locked/b.txt"), true).await, "copy into");
        denied(store.copy(&p("open/b.txt"), &p("locked/b.txt"), false).await, "copy create-only into");
        denied(store.rename(&p("locked/a.txt"), &p("open/a.txt"), true).await, "rename out of");
        denied(store.rename(&p("open/b.txt"), &p("locked/b.txt"), false).await, "rename into");
        assert_eq!(store.read(&p("locked/a.txt")).await.unwrap(), "kept", "reads still work");
        assert_eq!(listed(&store, None, true).await.unwrap(), ["locked/a.txt", "open/b.txt"]);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path: StorePath = "blocked/target.bin".parse().unwrap();
        // A file where the parent folder should be makes the write fail part-way.
        std::fs::write(dir.path().join("blocked"), b"not a folder").unwrap();
        assert!(store.write(&path, vec![1u8; 1 << 20].into(), WriteMode::Overwrite).await.is_err());
        assert_eq!(std::fs::read(dir.path().join("blocked")).unwrap(), b"not a folder");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["blocked"], "no temporary or partial file is left at the root");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn metadata_is_kept_in_user_extended_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path()).unwrap();
        // An independent look at the filesystem: can a file here take a user attribute?
        std::fs::write(dir.path().join("probe"), b"").unwrap();
        let supported = xattr::set(dir.path().join("probe"), "user.probe", b"1").is_ok();
        assert_eq!(
            store_core::Backend::stores_metadata(&backend),
            supported,
            "the root check agrees with the filesystem"
        );
        let store = Store::new(backend);
        let metadata = store_core::Metadata::from([("crc32c".to_owned(), "0a1b2c3d".to_owned())]);
        let path: StorePath = "m/a.bin".parse().unwrap();
        let written = store.write_with_metadata(&path, "v1".into(), WriteMode::Overwrite, &metadata).await;
        if !supported {
            assert!(written.is_err() && !store.exists(&path).await.unwrap(), "refused, and nothing stored");
            return;
        }
        written.unwrap();
        let value = xattr::get(dir.path().join("m/a.bin"), "user.crc32c").unwrap();
        assert_eq!(value.as_deref(), Some(&b"0a1b2c3d"[..]));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("m")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.bin"], "no temporary left beside the object");
    }

    /// The same suite where files cannot be created unnamed: writes go through `name#N`.
    mod named_temporaries {
        use super::*;

        async fn make_store() -> Store {
            Store::new(LocalBackend { unnamed: false, ..LocalBackend::new(shared_root().path()).unwrap() })
        }

        store_core::conformance_tests!(make_store);
    }

    #[tokio::test]
    async fn writes_and_overwrites_leave_only_the_object() {
        for unnamed in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::new(LocalBackend { unnamed, ..LocalBackend::new(dir.path()).unwrap() });
            let path: StorePath = "o/a.bin".parse().unwrap();
            for (round, size) in [(1u8, 10), (2, 3 << 20), (3, 5)] {
                store.write(&path, vec![round; size].into(), WriteMode::Overwrite).await.unwrap();
                assert_eq!(std::fs::read(dir.path().join("o/a.bin")).unwrap(), vec![round; size]);
            }
            let err = store.write(&path, "new".into(), WriteMode::CreateNew).await.unwrap_err();
            assert_eq!(err.kind(), store_core::ErrorKind::AlreadyExists, "{err}");
            let names: Vec<_> =
                std::fs::read_dir(dir.path().join("o")).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["a.bin"], "unnamed={unnamed}: no temporary left beside the object");
        }
    }

    #[tokio::test]
    async fn a_streamed_file_is_read_as_long_as_it_was_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path: StorePath = "g/big.bin".parse().unwrap();
        store.write(&path, vec![1u8; 3 << 20].into(), WriteMode::Overwrite).await.unwrap();
        let chunks = store.read_stream(&path).await.unwrap();
        // Another tool appends in place after the read began.
        let mut file = std::fs::OpenOptions::new().append(true).open(dir.path().join("g/big.bin")).unwrap();
        std::io::Write::write_all(&mut file, &[2u8; 4096]).unwrap();
        let read: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(chunks).await.unwrap();
        assert_eq!(read.concat(), vec![1u8; 3 << 20]);
    }

    #[tokio::test]
    async fn a_streamed_file_reuses_the_buffers_of_chunks_already_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path: StorePath = "g/big.bin".parse().unwrap();
        let data: Vec<u8> = (0..6 * READ_CHUNK + 5).map(|i| (i % 251) as u8).collect();
        store.write(&path, data.clone().into(), WriteMode::Overwrite).await.unwrap();

        // Kept chunks hold their buffers: every chunk has its own bytes.
        let kept: Vec<bytes::Bytes> =
            futures::TryStreamExt::try_collect(store.read_stream(&path).await.unwrap()).await.unwrap();
        assert_eq!(kept.len(), 7);
        assert_eq!(kept.concat(), data);

        // Dropped as read, the same few buffers come round again.
        let mut chunks = store.read_stream(&path).await.unwrap();
        let (mut read, mut buffers) = (Vec::new(), std::collections::HashSet::new());
        while let Some(chunk) = futures::TryStreamExt::try_next(&mut chunks).await.unwrap() {
            buffers.insert(chunk.as_ptr() as usize);
            read.extend_from_slice(&chunk);
        }
        assert_eq!(read, data);
        assert!(buffers.len() <= 3, "{} buffers for 7 chunks", buffers.len());
    }

    #[tokio::test]
    async fn temporaries_of_killed_writers_are_leftovers_to_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap()).child(&"team".parse().unwrap());
        store.write(&"a/b.pkl".parse().unwrap(), "kept".into(), WriteMode::Overwrite).await.unwrap();
        // What a writer killed between creating its temporary and renaming it leaves.
        std::fs::write(dir.path().join("team/a/b.pkl#41230"), "half").unwrap();
        std::fs::write(dir.path().join("team/a/c#x"), "not a temporary").unwrap();
        std::fs::write(dir.path().join("elsewhere#12"), "outside the store's root").unwrap();
        let found = store.leftovers(None).await.unwrap();
        assert_eq!(found.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["a/b.pkl"]);
        assert_eq!(store.clean_up(None, std::time::Duration::from_secs(3600)).await.unwrap(), [], "too young");
        assert_eq!(store.clean_up(None, std::time::Duration::ZERO).await.unwrap(), found);
        assert!(!dir.path().join("team/a/b.pkl#41230").exists());
        assert!(dir.path().join("team/a/c#x").exists() && dir.path().join("elsewhere#12").exists());
        assert_eq!(store.read(&"a/b.pkl".parse().unwrap()).await.unwrap(), "kept");
    }

    #[tokio::test]
    async fn temporary_names_are_invalid_paths() {
        let store = make_store().await;
        let err = store.write(&"t/a.bin#12".parse().unwrap(), "x".into(), WriteMode::Overwrite).await.unwrap_err();
        assert_eq!(err.kind(), store_core::ErrorKind::InvalidPath, "{err}");
        assert!(err.to_string().contains("reserved for temporary files"), "{err}");
        let err = store.read(&"t/a.bin#12".parse().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), store_core::ErrorKind::InvalidPath, "{err}");
    }

    #[tokio::test]
    async fn a_folder_is_not_an_object() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let err = store.read(&"folder".parse().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), store_core::ErrorKind::NotFound, "{err}");
    }

    #[tokio::test]
    async fn uri_is_a_file_uri_of_the_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let uri = store.uri(&"a b/c.pkl".parse().unwrap());
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(uri, format!("file://{}/a%20b/c.pkl", root.display()));
    }

    #[tokio::test]
    async fn head_get_list_and_writes_report_one_e_tag_which_every_conditional_write_changes() {
        use futures::TryStreamExt;
        use store_core::{Backend, BackendExt, ListEntry, UpdateVersion};

        for (unnamed, fsync) in [(true, false), (false, false), (true, true)] {
            let dir = tempfile::tempdir().unwrap();
            let backend = LocalBackend { unnamed, ..LocalBackend::with_options(dir.path(), fsync).unwrap() };
            let store = Store::new(backend.clone());
            let path = p("ptr/asset.json");
            let mut written = store.write(&path, "0000".into(), WriteMode::Overwrite).await.unwrap();
            let mut seen = std::collections::HashSet::new();
            // Same size every time, in quick succession: inode and coarse times alone would repeat.
            for round in 1..=50u32 {
                let (_, version) = store.read_for_update(&path).await.unwrap();
                assert_eq!(version, UpdateVersion::from(written.clone()), "a write reports what a read sees");
                let head = store.head(&path).await.unwrap();
                assert_eq!(head.e_tag, version.e_tag, "head and get agree");
                let listed: Vec<ListEntry> = store.list(Some(&p("ptr")), true).try_collect().await.unwrap();
                assert!(matches!(&listed[..], [ListEntry::Object(m)] if m.e_tag == version.e_tag), "{listed:?}");
                let ranged =
                    backend.get_opts(&path, store_core::GetOptions { range: Some(0..2), ..Default::default() });
                assert_eq!(ranged.await.unwrap().e_tag, version.e_tag, "a ranged read agrees");
                let streamed = backend.get_opts(&path, store_core::GetOptions { stream: true, ..Default::default() });
                assert_eq!(streamed.await.unwrap().e_tag, version.e_tag, "a streamed read agrees");
                assert!(seen.insert(version.e_tag.clone().unwrap()), "round {round}: an e-tag came back");
                written = store.write(&path, format!("{round:04}").into(), WriteMode::IfMatch(version)).await.unwrap();
            }
            assert_eq!(backend.read(&path).await.unwrap(), "0050");
            let names: Vec<_> =
                std::fs::read_dir(dir.path().join("ptr")).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["asset.json"], "no lock file or temporary beside the object");
        }
    }

    #[tokio::test]
    async fn conditional_writes_stream_and_refuse_what_they_cannot_compare() {
        use futures::stream::{self, StreamExt};
        use store_core::{ErrorKind, UpdateVersion};

        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path = p("s/big.bin");
        store.write(&path, "small".into(), WriteMode::Overwrite).await.unwrap();
        let (_, version) = store.read_for_update(&path).await.unwrap();
        let chunks = (0..3u8).map(|i| Ok(bytes::Bytes::from(vec![i; READ_CHUNK / 2]))).collect::<Vec<_>>();
        let mode = WriteMode::IfMatch(version.clone());
        store.write_stream(&path, stream::iter(chunks).boxed(), mode).await.expect("a streamed conditional write");
        assert_eq!(store.head(&path).await.unwrap().size, 3 * READ_CHUNK as u64 / 2);
        let stale = stream::iter([Ok(bytes::Bytes::from("x"))]).boxed();
        let err = store.write_stream(&path, stale, WriteMode::IfMatch(version)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
        let err = store.write(&path, "x".into(), WriteMode::IfMatch(UpdateVersion::default())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other, "{err}");
        assert!(err.to_string().contains("needs the e-tag"), "{err}");
        let current = WriteMode::IfMatch(store.read_for_update(&path).await.unwrap().1);
        let err = store.write(&p("gone/x.bin"), "x".into(), current).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
        assert!(!dir.path().join("gone").exists(), "a refused conditional write made no folder");
    }

    /// Two backends on one root, as two processes would have: the lock is the folder's, not the backend's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conditional_writers_of_two_backends_on_one_root_lose_no_update() {
        use store_core::ErrorKind;

        let dir = tempfile::tempdir().unwrap();
        let stores = [
            Store::new(LocalBackend::new(dir.path()).unwrap()),
            Store::new(LocalBackend { unnamed: false, ..LocalBackend::new(dir.path()).unwrap() }),
        ];
        let path = p("counter");
        stores[0].write(&path, "0".into(), WriteMode::Overwrite).await.unwrap();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let (store, path) = (stores[i % 2].clone(), path.clone());
                tokio::spawn(async move {
                    for _ in 0..20 {
                        loop {
                            let (data, version) = store.read_for_update(&path).await.unwrap();
                            let next = std::str::from_utf8(&data).unwrap().parse::<u32>().unwrap() + 1;
                            match store.write(&path, next.to_string().into(), WriteMode::IfMatch(version)).await {
                                Ok(_) => break,
                                Err(e) => assert_eq!(e.kind(), ErrorKind::Precondition, "{e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(stores[1].read(&path).await.unwrap(), "120");
    }

    #[tokio::test]
    async fn fsync_mode_writes_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::with_fsync(dir.path()).unwrap());
        let path: StorePath = "durable.txt".parse().unwrap();
        store.write(&path, "kept".into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("durable.txt")).unwrap(), b"kept");
    }
}
