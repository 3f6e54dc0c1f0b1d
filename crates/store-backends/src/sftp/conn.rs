//! One SSH connection and the blocking SFTP calls on it. Everything here blocks: the backend runs it on
//! Tokio's blocking threads, one connection per call at a time.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use libssh2_sys as raw;
use ssh2::{CheckResult, ErrorCode, File, FileStat, HashType, KnownHostFileKind, OpenFlags, OpenType, RenameFlags};
use ssh2::{Session, Sftp};
use store_core::{Error, ErrorKind, Result, Secret};

use super::posix_rename::PosixRenamer;
use super::{SftpAuth, SftpConfig, SftpHostKey};
use crate::error::{SftpError, ssh_kind};

/// Names of in-flight temporaries start with this; listings skip them and writes refuse such names.
pub(super) const TEMP_PREFIX: &str = ".drs-tmp-";

/// A lease whose file is older than this (by the server's clock) is taken to be a crashed writer's, and broken.
pub(super) const LEASE_EXPIRY: Duration = Duration::from_secs(60);

/// A writer that has held its lease this long no longer commits: the lease may be broken before its rename
/// lands. Half the expiry leaves the rename up to the other half, the default I/O timeout.
const LEASE_COMMIT_BY: Duration = Duration::from_secs(30);

/// A writer that has waited this long for a lease that others keep taking gives up (`Unavailable`).
const LEASE_WAIT: Duration = Duration::from_secs(120);

/// How a written temporary becomes the object.
#[derive(Clone)]
pub(super) enum Place {
    /// It replaces whatever is there (atomically where the server has posix-rename).
    Replace,
    /// Only if nothing is there: one of several racing creators wins.
    Create,
    /// It replaces the object if that is still at the version expected, under the object's lease.
    IfMatch(std::sync::Arc<Conditional>),
}

impl Place {
    pub(super) fn new(mode: &store_core::WriteMode) -> Result<Place> {
        Ok(match mode {
            store_core::WriteMode::Overwrite => Place::Replace,
            store_core::WriteMode::CreateNew => Place::Create,
            store_core::WriteMode::IfMatch(version) => {
                let expected = version.e_tag.clone().ok_or(SftpError::NoETag)?;
                let token = format!("{}-{:016x}", std::process::id(), super::random_u64());
                Place::IfMatch(std::sync::Arc::new(Conditional { expected, token, committed: Mutex::new(None) }))
            }
        })
    }
}

/// What a conditional write finds at its target.
pub(super) enum Current {
    /// The version expected, with its attributes.
    Expected(FileStat),
    /// This write's own object, of this e-tag.
    Done(String),
}

/// One conditional write, across the attempts of it that a lost connection makes.
pub(super) struct Conditional {
    /// The e-tag the object must still have.
    expected: String,
    /// What this write's lease file holds, so that an attempt finding it knows the lease for its own.
    token: String,
    /// The e-tag of the object this write renamed into place, set just before the rename: an attempt made
    /// again because the rename's reply was lost finds it there, and succeeds rather than fail the comparison.
    committed: Mutex<Option<String>>,
}

impl Conditional {
    fn committed(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.committed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An object's e-tag from its attributes: `"<mtime>-<size>"` (hex); `None` where the server gives no times.
pub(super) fn e_tag(stat: &FileStat) -> Option<String> {
    Some(format!("\"{:x}-{:x}\"", stat.mtime?, stat.size?))
}

/// Size of copy buffers and of streamed reads' chunks: large reads and writes let libssh2 keep many requests in
/// flight.
const CHUNK: usize = 1 << 20;

/// A logged-in SSH session with its SFTP channel and a second one for `posix-rename@openssh.com`.
pub(super) struct Conn {
    session: Session,
    sftp: Sftp,
    renamer: PosixRenamer,
}

impl Conn {
    /// Connects, checks the host key, logs in and opens the SFTP channels.
    pub(super) fn connect(config: &SftpConfig) -> Result<Conn> {
        let server = config.server();
        let session_failed = |step, source| SftpError::Session { step, server: server.clone(), source };
        let mut session = Session::new().map_err(|e| session_failed("starting an SSH session for", e))?;
        session.set_tcp_stream(tcp_connect(config)?);
        session.set_timeout(millis(config.connect_timeout));
        session.handshake().map_err(|e| session_failed("the SSH handshake with", e))?;
        check_host_key(&session, config)?;
        log_in(&session, config)?;
        session.set_timeout(millis(config.io_timeout));
        let keepalive_secs = u32::try_from(config.keepalive_interval.as_secs()).unwrap_or(u32::MAX);
        session.set_keepalive(false, keepalive_secs);
        let sftp = session.sftp().map_err(|e| session_failed("opening SFTP on", e))?;
        let renamer = PosixRenamer::new(&session).map_err(|e| session_failed("opening SFTP on", e))?;
        Ok(Conn { session, sftp, renamer })
    }

    /// Sends a keepalive if one is due; `false` if the connection is gone.
    pub(super) fn keepalive(&self) -> bool {
        self.session.keepalive_send().is_ok()
    }

    /// Closes the channels, then says goodbye to the server.
    pub(super) fn disconnect(self) {
        let Conn { session, sftp, renamer } = self;
        drop((renamer, sftp));
        let _ = session.disconnect(None, "closing", None);
    }

    /// The whole file, or `range` of it (clamped at its end; a start at or past the end is an error), and the
    /// file's attributes.
    pub(super) fn read(&self, path: &str, range: Option<Range<u64>>) -> Result<(Bytes, FileStat)> {
        let (mut file, stat) = self.open(path)?;
        let size = stat.size.unwrap_or(0);
        let range = match range {
            None => 0..size,
            Some(r) if r.start >= size => return Err(SftpError::RangeBeyondEnd { start: r.start, size }.into()),
            Some(r) => r.start..r.end.min(size),
        };
        // Seeking only moves libssh2's local offset: no request is sent.
        file.seek(SeekFrom::Start(range.start)).map_err(|e| self.io_error(e))?;
        let mut data = vec![0; (range.end - range.start) as usize];
        // Exactly the bytes the size promises: libssh2 may report the end of the file where the connection
        // dropped, and a short read must fail (and be retried), never pass for the object.
        file.read_exact(&mut data).map_err(|e| self.io_error(e))?;
        Ok((data.into(), stat))
    }

    /// Opens the file at `path` for reading; folders are not objects.
    pub(super) fn open(&self, path: &str) -> Result<(File, FileStat)> {
        let mut file = self.sftp.open(Path::new(path)).map_err(map_error)?;
        let stat = file_stat(file.stat())?;
        Ok((file, stat))
    }

    /// Opens the file at `path` again to resume reading it, if it is still the one that had `stat` (same size
    /// and modification time): writers replace files whole, so another file there is another object.
    pub(super) fn reopen(&self, path: &str, stat: &FileStat) -> Result<File> {
        let (file, now) = self.open(path)?;
        if (now.size, now.mtime) != (stat.size, stat.mtime) {
            return Err(SftpError::Replaced.into());
        }
        Ok(file)
    }

    /// Reads `file` from `*position` to `size` in chunks of [`CHUNK`] bytes (the last one shorter) and hands
    /// each to `send`, until `size` or until `send` returns `false`. `*position` is how far the chunks
    /// handed over reach, also when this fails, so that a new connection can resume there.
    pub(super) fn read_chunks(
        &self,
        mut file: File,
        position: &mut u64,
        size: u64,
        mut send: impl FnMut(Bytes) -> bool,
    ) -> Result<()> {
        file.seek(SeekFrom::Start(*position)).map_err(|e| self.io_error(e))?;
        while *position < size {
            // Whole chunks, not whatever one read returns, so that each read asks for a lot; and exactly
            // `size` bytes in all, as in `read`.
            let mut chunk = vec![0; (size - *position).min(CHUNK as u64) as usize];
            file.read_exact(&mut chunk).map_err(|e| self.io_error(e))?;
            *position += chunk.len() as u64;
            if !send(chunk.into()) {
                break;
            }
        }
        Ok(())
    }

    /// Metadata of the file at `path`; folders are not objects.
    pub(super) fn stat(&self, path: &str) -> Result<FileStat> {
        file_stat(self.sftp.stat(Path::new(path)))
    }

    /// Stores `data` at `target` through a temporary file in the same folder; the new object's e-tag.
    pub(super) fn write(&self, target: &str, data: &[u8], place: &Place) -> Result<Option<String>> {
        if let Place::IfMatch(conditional) = place
            && let Current::Done(done) = self.check_current(target, conditional)?
        {
            // The attempt that renamed may have lost its connection before it removed its lease.
            if self.read_lease(&lease_path(target)).is_ok_and(|(held_by, _)| held_by == conditional.token) {
                let _ = self.sftp.unlink(Path::new(&lease_path(target)));
            }
            return Ok(Some(done));
        }
        self.upload(target, place, |file| file.write_all(data))
    }

    /// Whether the object at `target` is still at the version a conditional write expects, or already the
    /// one this write put in place (an earlier attempt renamed it, and the reply was lost); else (another
    /// version, or none) `Precondition`.
    pub(super) fn check_current(&self, target: &str, conditional: &Conditional) -> Result<Current> {
        let stat = match self.stat(target) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(SftpError::Changed.into()),
            stat => stat?,
        };
        let now = e_tag(&stat);
        if let Some(done) = conditional.committed().clone().filter(|done| now.as_ref() == Some(done)) {
            return Ok(Current::Done(done));
        }
        if now.as_deref() != Some(conditional.expected.as_str()) {
            return Err(SftpError::Changed.into());
        }
        Ok(Current::Expected(stat))
    }

    /// Writes `chunks` to `file`, a temporary from [`create_temp`](Self::create_temp), one at a time, then
    /// renames it to `target`; an error among the chunks fails the write.
    pub(super) fn write_chunks(
        &self,
        temp: &str,
        mut file: File,
        mut chunks: impl Iterator<Item = Result<Bytes>>,
        target: &str,
        place: &Place,
    ) -> Result<Option<String>> {
        let filled = chunks.try_for_each(|chunk| file.write_all(&chunk?).map_err(|e| self.io_error(e)));
        self.finish(temp, file, filled, target, place)
    }

    /// Streams `from` into a temporary beside `to`, then renames it into place: SFTP v3 has no copy.
    pub(super) fn copy(&self, from: &str, to: &str, overwrite: bool) -> Result<()> {
        let (mut source, stat) = self.open(from)?;
        let mut left = stat.size.unwrap_or(0);
        let place = if overwrite { Place::Replace } else { Place::Create };
        self.upload(to, &place, |target| {
            let mut buffer = vec![0; CHUNK];
            while left > 0 {
                // Exactly the source's size, as in `read`: a short read fails the copy.
                let piece = &mut buffer[..left.min(CHUNK as u64) as usize];
                source.read_exact(piece)?;
                target.write_all(piece)?;
                left -= piece.len() as u64;
            }
            Ok(())
        })
        .map(drop)
    }

    /// Moves `from` to `to`, creating `to`'s folder if needed.
    pub(super) fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<()> {
        let attempt = || if overwrite { self.replace(from, to) } else { self.rename_new(from, to) };
        match attempt() {
            Err(e) if e.kind() == ErrorKind::NotFound && self.sftp.stat(Path::new(from)).is_ok() => {
                self.mkdir_all(parent(to))?;
                attempt()
            }
            other => other,
        }
    }

    /// Removes the file; a missing one is fine.
    pub(super) fn delete(&self, path: &str) -> Result<()> {
        match self.sftp.unlink(Path::new(path)) {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(map_error),
        }
    }

    /// Names and attributes in `folder`, temporaries and `.`/`..` left out; a missing folder is empty.
    pub(super) fn read_dir(&self, folder: &str) -> Result<Vec<(String, FileStat)>> {
        let mut entries = self.read_dir_with_temporaries(folder)?;
        entries.retain(|(name, _)| !name.starts_with(TEMP_PREFIX));
        Ok(entries)
    }

    /// Names and attributes in `folder`, temporaries included; a missing folder is empty.
    pub(super) fn read_dir_with_temporaries(&self, folder: &str) -> Result<Vec<(String, FileStat)>> {
        let entries = match self.sftp.readdir(Path::new(folder)) {
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            other => other.map_err(map_error)?,
        };
        Ok(entries
            .into_iter()
            .filter_map(|(path, stat)| Some((path.file_name()?.to_str()?.to_owned(), stat)))
            .collect())
    }

    /// Creates `folder` and any missing parents; tolerates racing creators.
    pub(super) fn mkdir_all(&self, folder: &str) -> Result<()> {
        // SFTP v3 answers a bare failure for an existing folder: look, and if looking fails, say why.
        let make = || match self.sftp.mkdir(Path::new(folder), 0o755) {
            Err(e) if !is_not_found(&e) => match self.sftp.stat(Path::new(folder)) {
                Ok(stat) if stat.is_dir() => Ok(()),
                Err(looking) if ssh_kind(&looking) == ErrorKind::Unavailable => Err(looking),
                _ => Err(e),
            },
            other => other,
        };
        match make() {
            Err(e) if is_not_found(&e) && !parent(folder).is_empty() => {
                self.mkdir_all(parent(folder))?;
                make().map_err(map_error)
            }
            other => other.map_err(map_error),
        }
    }

    /// Creates a new, empty temporary file beside `target` (creating the folder if needed).
    pub(super) fn create_temp(&self, target: &str) -> Result<(String, File)> {
        let temp = format!("{}/{TEMP_PREFIX}{:016x}", parent(target), super::random_u64());
        let create =
            || self.sftp.open_mode(Path::new(&temp), OpenFlags::WRITE | OpenFlags::EXCLUSIVE, 0o644, OpenType::File);
        let file = match create() {
            Err(e) if is_not_found(&e) => {
                self.mkdir_all(parent(target))?;
                create()
            }
            other => other,
        }
        .map_err(map_error)?;
        Ok((temp, file))
    }

    /// Writes a temporary beside `target` with `fill`, then puts it in place; the new object's e-tag.
    fn upload(
        &self,
        target: &str,
        place: &Place,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<Option<String>> {
        let (temp, mut file) = self.create_temp(target)?;
        let filled = fill(&mut file).map_err(|e| self.io_error(e));
        self.finish(&temp, file, filled, target, place)
    }

    /// Closes the temporary `file` (`filled` says whether filling it worked) and puts it in place at `target`
    /// as `place` says, or removes it if anything failed. The new object's e-tag, from the temporary's
    /// attributes: a rename keeps them.
    fn finish(
        &self,
        temp: &str,
        mut file: File,
        filled: Result<()>,
        target: &str,
        place: &Place,
    ) -> Result<Option<String>> {
        let written = filled.and_then(|()| file.stat().map_err(map_error));
        // An explicit close reports the server's answer, which dropping the handle would ignore.
        let closed = written.and_then(|stat| file.close().map(|()| stat).map_err(map_error));
        let since = Instant::now();
        drop(file);
        let committed = closed.and_then(|written| match place {
            Place::Replace => self.replace(temp, target).map(|()| e_tag(&written)),
            Place::Create => self.rename_new(temp, target).map(|()| e_tag(&written)),
            Place::IfMatch(conditional) => self.replace_if_match(temp, written, since, target, conditional),
        });
        if committed.is_err() {
            let _ = self.sftp.unlink(Path::new(temp));
        }
        committed
    }

    /// Renames the temporary `temp` (attributes `written`, read at `since`) onto `target` if `target` is still
    /// at the version expected, holding `target`'s lease meanwhile (see [`acquire_lease`](Self::acquire_lease)).
    /// The temporary's modification time is set past the old object's first, so that e-tags, of a
    /// one-second clock, never repeat among conditional writes.
    fn replace_if_match(
        &self,
        temp: &str,
        written: FileStat,
        since: Instant,
        target: &str,
        conditional: &Conditional,
    ) -> Result<Option<String>> {
        let server_now = || written.mtime.unwrap_or(0) + since.elapsed().as_secs();
        let lease = self.acquire_lease(target, &conditional.token, server_now)?;
        let acquired = Instant::now();
        let replaced = (|| {
            let current = match self.check_current(target, conditional)? {
                Current::Done(done) => return Ok(Some(done)),
                Current::Expected(current) => current,
            };
            let mut new = written.clone();
            if let (Some(old), Some(mtime)) = (current.mtime, written.mtime)
                && mtime <= old
            {
                let later = FileStat {
                    size: None,
                    uid: None,
                    gid: None,
                    perm: None,
                    atime: Some(old + 1),
                    mtime: Some(old + 1),
                };
                self.sftp.setstat(Path::new(temp), later).map_err(map_error)?;
                new.mtime = Some(old + 1);
            }
            let new_e_tag = e_tag(&new);
            if new_e_tag.is_none() {
                return Err(SftpError::NoTimes.into());
            }
            if acquired.elapsed() >= LEASE_COMMIT_BY {
                return Err(SftpError::LeaseOverdue.into());
            }
            conditional.committed().clone_from(&new_e_tag);
            self.replace(temp, target)?;
            Ok(new_e_tag)
        })();
        // A lease left behind only delays the next writer until it expires.
        let _ = self.sftp.unlink(Path::new(&lease));
        replaced
    }

    /// Takes `target`'s lease: creates its lease file (see [`lease_path`]) exclusively, holding `token`. A lease
    /// file already there is waited for, with backoff, unless it holds `token` (an earlier attempt of this
    /// write took it and lost the reply) or is older than [`LEASE_EXPIRY`] by the server's clock (`server_now`,
    /// in seconds): that one is broken. Gives up after [`LEASE_WAIT`]. The lease file's path.
    fn acquire_lease(&self, target: &str, token: &str, server_now: impl Fn() -> u64) -> Result<String> {
        let lease = lease_path(target);
        let (started, mut pause) = (Instant::now(), Duration::from_millis(2));
        loop {
            let flags = OpenFlags::WRITE | OpenFlags::EXCLUSIVE;
            // Readable by all, so that writers logged in as other users can tell it is not theirs.
            match self.sftp.open_mode(Path::new(&lease), flags, 0o644, OpenType::File) {
                Ok(mut file) => {
                    let written = file.write_all(token.as_bytes()).map_err(|e| self.io_error(e));
                    if let Err(e) = written.and_then(|()| file.close().map_err(map_error)) {
                        drop(file);
                        let _ = self.sftp.unlink(Path::new(&lease));
                        return Err(e);
                    }
                    return Ok(lease);
                }
                // No folder: no object either.
                Err(e) if is_not_found(&e) => return Err(SftpError::Changed.into()),
                // SFTP v3 says only "failure" when the file exists.
                Err(e) if e.code() != ErrorCode::SFTP(raw::LIBSSH2_FX_FAILURE) => return Err(map_error(e)),
                Err(_) => {}
            }
            match self.read_lease(&lease) {
                Err(e) if e.kind() == ErrorKind::NotFound => continue, // released meanwhile
                Err(e) => return Err(e),
                Ok((held_by, _)) if held_by == token => return Ok(lease),
                Ok((_, stat)) if expired(&stat, server_now()) => {
                    self.break_lease(&lease, server_now())?;
                    continue;
                }
                Ok(_) => {}
            }
            if started.elapsed() >= LEASE_WAIT {
                return Err(SftpError::LeaseBusy { waited: LEASE_WAIT }.into());
            }
            // Jittered, so that waiters spread out.
            std::thread::sleep(
                pause / 2 + Duration::from_micros(super::random_u64() % (pause.as_micros() as u64 / 2 + 1)),
            );
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// What the lease file holds, and its attributes.
    fn read_lease(&self, lease: &str) -> Result<(String, FileStat)> {
        let (file, stat) = self.open(lease)?;
        let mut held_by = String::new();
        file.take(256).read_to_string(&mut held_by).map_err(|e| self.io_error(e))?;
        Ok((held_by, stat))
    }

    /// Breaks an expired lease: renames it to a temporary's name, which only one of several breakers manages,
    /// then removes it. A lease taken anew between the look and the rename (so not expired) is put back.
    fn break_lease(&self, lease: &str, server_now: u64) -> Result<()> {
        let broken = format!("{}/{TEMP_PREFIX}{:016x}", parent(lease), super::random_u64());
        match self.rename_new(lease, &broken) {
            Err(e) if e.kind().is_transient() => return Err(e),
            Err(_) => return Ok(()), // released, or broken by another
            Ok(()) => {}
        }
        let fresh = self.stat(&broken).is_ok_and(|stat| !expired(&stat, server_now));
        if !(fresh && self.rename_new(&broken, lease).is_ok()) {
            let _ = self.sftp.unlink(Path::new(&broken));
        }
        Ok(())
    }

    /// Renames `from` onto `to`, replacing it atomically where the server offers posix-rename.
    fn replace(&self, from: &str, to: &str) -> Result<()> {
        match self.renamer.rename(from, to) {
            Err(e) if e.code() == ErrorCode::SFTP(raw::LIBSSH2_FX_OP_UNSUPPORTED) => {
                // A plain SFTP v3 rename refuses an existing target, so remove it first: not atomic. Retry a
                // few times if a racing writer puts its object back in between.
                let mut attempts = 3;
                loop {
                    self.delete(to)?;
                    match self.rename_new(from, to) {
                        Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts > 1 => attempts -= 1,
                        other => return other,
                    }
                }
            }
            other => other.map_err(map_error),
        }
    }

    /// A plain SFTP v3 rename: OpenSSH links the new name, so it fails if `to` exists and one racer wins.
    fn rename_new(&self, from: &str, to: &str) -> Result<()> {
        self.sftp.rename(Path::new(from), Path::new(to), Some(RenameFlags::empty())).map_err(|e| {
            // SFTP v3 has no "already exists" status: the server answers a bare failure. Look; if looking
            // fails for want of a connection, that is the error to report (and retry).
            if e.code() != ErrorCode::SFTP(raw::LIBSSH2_FX_FAILURE) {
                return map_error(e);
            }
            match self.sftp.stat(Path::new(to)) {
                Ok(_) => SftpError::AlreadyExists(e).into(),
                Err(looking) if ssh_kind(&looking) == ErrorKind::Unavailable => map_error(looking),
                Err(_) => map_error(e),
            }
        })
    }

    /// Maps an error from ssh2's `Read`/`Write`, which keep only the message. A transfer that ended early
    /// (libssh2 may report a dropped connection as the end of the file) or timed out failed for want of a
    /// connection (transient); otherwise the session's last error, which the failed call set, tells a
    /// server's refusal (an SFTP status, final) from a failed connection.
    fn io_error(&self, err: io::Error) -> Error {
        let last = ssh2::Error::last_session_error(&self.session).map(|e| e.code());
        let refused = last == Some(ErrorCode::Session(raw::LIBSSH2_ERROR_SFTP_PROTOCOL))
            && !matches!(err.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::WriteZero | io::ErrorKind::TimedOut);
        SftpError::Transfer { refused, source: err }.into()
    }
}

/// Whether a lease file with attributes `stat` has expired at `server_now` (seconds since the epoch).
fn expired(stat: &FileStat, server_now: u64) -> bool {
    stat.mtime.is_some_and(|mtime| mtime + LEASE_EXPIRY.as_secs() < server_now)
}

/// The lease file of the object at `target`: a hidden name beside it (listings skip it; `leftovers` finds one
/// that a killed writer left), `.drs-tmp-lease-<name>`, or with a hash of the name where that is too long.
pub(super) fn lease_path(target: &str) -> String {
    let (folder, name) = target.rsplit_once('/').unwrap_or(("", target));
    let prefix = format!("{TEMP_PREFIX}lease-");
    if prefix.len() + name.len() <= 255 {
        return format!("{folder}/{prefix}{name}");
    }
    // FNV-1a: the same in every process and build, which every writer of the object must agree on.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{folder}/{prefix}{hash:016x}")
}

/// The folder part of an absolute remote path (`""` for the filesystem root).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

fn tcp_connect(config: &SftpConfig) -> Result<TcpStream> {
    let server = config.server();
    let unavailable = |source| SftpError::Connect { server: server.clone(), source };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in (config.host.as_str(), config.port).to_socket_addrs().map_err(unavailable)? {
        match TcpStream::connect_timeout(&addr, config.connect_timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(unavailable(last).into())
}

/// Checks the server's key as `config.host_key` says. Every refusal names the server and the fingerprint
/// it showed, and says how to fix it.
fn check_host_key(session: &Session, config: &SftpConfig) -> Result<()> {
    let server = config.server();
    let refuse = |message: String| Err(SftpError::HostKeyRefused(message).into());
    let (key, key_type) = session.host_key().ok_or(SftpError::HostKeyUnreadable("the server sent no host key"))?;
    let hash = session.host_key_hash(HashType::Sha256).ok_or(SftpError::HostKeyUnreadable("no SHA-256 in libssh2"))?;
    let seen = format!("SHA256:{}", base64(hash));
    let shown = format!("{key_type:?} key {seen}");
    match &config.host_key {
        SftpHostKey::AcceptAny => Ok(()),
        SftpHostKey::Fingerprint(expected) => {
            let expected = expected.trim().trim_start_matches("SHA256:").trim_end_matches('=');
            if expected == &seen["SHA256:".len()..] {
                return Ok(());
            }
            refuse(format!(
                "host key mismatch for {server}: it showed the {shown}, not the configured SHA256:{expected}; \
                 if the server's key was changed on purpose, configure the new fingerprint"
            ))
        }
        SftpHostKey::KnownHosts(file) => {
            let mut known = session.known_hosts().map_err(map_error)?;
            let name =
                if config.port == 22 { config.host.clone() } else { format!("[{}]:{}", config.host, config.port) };
            let add = format!("ssh-keyscan -p {} {} >> {}", config.port, config.host, file.display());
            if let Err(e) = known.read_file(file, KnownHostFileKind::OpenSSH) {
                return refuse(format!(
                    "cannot check the host key of {server} ({shown}): cannot read known_hosts file {}: {}; \
                     once you have checked the fingerprint, add the host with `{add}` or configure the fingerprint",
                    file.display(),
                    e.message()
                ));
            }
            match known.check_port(&config.host, config.port, key) {
                CheckResult::Match => Ok(()),
                CheckResult::NotFound => refuse(format!(
                    "host {server} ({shown}) is not in known_hosts file {}; once you have checked the fingerprint, \
                     add it with `{add}` or configure the fingerprint",
                    file.display()
                )),
                CheckResult::Mismatch => refuse(format!(
                    "host key mismatch for {server}: it showed the {shown}, which is not the key recorded for {name} \
                     in {}; someone may be intercepting the connection. If the key was changed on purpose, replace \
                     the entry: `ssh-keygen -R '{name}' -f {}`, then `{add}`",
                    file.display(),
                    file.display()
                )),
                CheckResult::Failure => refuse(format!("cannot check the host key of {server} ({shown})")),
            }
        }
    }
}

fn log_in(session: &Session, config: &SftpConfig) -> Result<()> {
    let user = &config.username;
    let (method, result) = match &config.auth {
        SftpAuth::Password(password) => ("password", session.userauth_password(user, password.expose())),
        SftpAuth::PrivateKey { path, passphrase } => {
            ("private key", session.userauth_pubkey_file(user, None, path, passphrase.as_ref().map(Secret::expose)))
        }
        SftpAuth::PrivateKeyPem { pem, passphrase } => (
            "private key",
            session.userauth_pubkey_memory(user, None, pem.expose(), passphrase.as_ref().map(Secret::expose)),
        ),
    };
    match result {
        Ok(()) if session.authenticated() => Ok(()),
        // A failed connection is worth a retry; anything else is a refusal. libssh2's messages are fixed texts,
        // never the secrets.
        Err(e) if !is_auth_error(&e) => Err(map_error(e)),
        // libssh2 reports a connection lost while waiting for the server's verdict as a refused key. A server
        // that refused is still there and lists its login methods; one that cannot is gone.
        Err(source) if session.auth_methods(user).is_err() => {
            Err(SftpError::LoginLost { server: config.server(), source }.into())
        }
        result => {
            let reason = result.err().map_or_else(|| "not authenticated".to_owned(), |e| e.message().to_owned());
            Err(SftpError::LoginRefused { server: config.server(), method, user: user.clone(), reason }.into())
        }
    }
}

fn is_auth_error(err: &ssh2::Error) -> bool {
    matches!(
        err.code(),
        ErrorCode::Session(
            raw::LIBSSH2_ERROR_AUTHENTICATION_FAILED
                | raw::LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED
                | raw::LIBSSH2_ERROR_FILE
                | raw::LIBSSH2_ERROR_METHOD_NOT_SUPPORTED
                | raw::LIBSSH2_ERROR_INVAL
        )
    )
}

fn is_not_found(err: &ssh2::Error) -> bool {
    matches!(err.code(), ErrorCode::SFTP(raw::LIBSSH2_FX_NO_SUCH_FILE | raw::LIBSSH2_FX_NO_SUCH_PATH))
}

/// A libssh2 error as ours: see [`SftpError::Ssh`].
fn map_error(err: ssh2::Error) -> Error {
    SftpError::Ssh(err).into()
}

/// The stat of a regular file; a folder or other special file is not an object.
fn file_stat(stat: Result<FileStat, ssh2::Error>) -> Result<FileStat> {
    match stat.map_err(map_error)? {
        stat if stat.is_file() => Ok(stat),
        _ => Err(SftpError::NotAFile.into()),
    }
}

/// Standard base64 without padding, as OpenSSH prints fingerprints.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
