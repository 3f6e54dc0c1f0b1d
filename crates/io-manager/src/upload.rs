//! Streamed writes fed by code that is not async: an encoder writing into a
//! [`std::io::Write`] ([`Upload::writer`]), or a pickler handing over buffers
//! ([`OutputSink`]). Chunks go through a
//! small channel to a task on a Tokio runtime that runs the Store's streamed
//! write (multipart where the backend has it), so memory stays bounded by a few
//! chunks whatever the object's size, and the producer blocks while the upload
//! is behind.
//!
//! ```
//! use std::io::Write;
//! use io_manager::integrity;
//! use io_manager::upload::Upload;
//! use store_core::{Store, StorePath};
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let store = Store::new(store_backends::MemoryBackend::new());
//! let path: StorePath = "report.csv".parse()?;
//!
//! let upload = Upload::start_checked(runtime.handle(), &store, path.clone(), None);
//! let mut writer = upload.writer(); // blocks while the upload is behind: not on the runtime
//! writeln!(writer, "day,sales")?;
//! writeln!(writer, "2026-01-01,3")?;
//! writer.finish()?;
//! let written = runtime.block_on(upload.finish(false))?;
//! assert_eq!(written.size, 23);
//! assert_eq!(runtime.block_on(integrity::read(&store, &path, None))?, "day,sales\n2026-01-01,3\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use store_core::buffer::Gathering;
use store_core::{Error as StoreError, ErrorKind, Store, StorePath, WriteMode, WriteResult};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::integrity::{self, SINGLE_WRITE_LIMIT, Written};
use crate::{Error, Owner};

/// The message of the error an aborted upload's stream ends with.
const ABORTED: &str = "the upload was aborted";

/// A streamed upload in flight. `T` is what it reports when it completes.
///
/// Only [`finish`](Self::finish) commits: an upload dropped without it, by a
/// producer that failed, panicked or was never closed, stores nothing.
pub struct Upload<T = WriteResult> {
    sender: mpsc::Sender<store_core::Result<Bytes>>,
    committed: Arc<AtomicBool>,
    task: JoinHandle<Result<T, Error>>,
}

impl Upload {
    /// The object as it is written, nothing added.
    pub fn start(runtime: &Handle, store: &Store, path: StorePath, mode: WriteMode) -> Self {
        let store = store.clone();
        Upload::spawn(runtime, move |chunks| async move { Ok(store.write_stream(&path, chunks, mode).await?) })
    }
}

impl Upload<Written> {
    /// The object with its checksum and owner, as the IO manager writes every
    /// output (see [`integrity::write_stream`]).
    pub fn start_checked(runtime: &Handle, store: &Store, path: StorePath, owner: Option<Owner>) -> Self {
        let store = store.clone();
        Upload::spawn(runtime, move |chunks| async move {
            integrity::write_stream(&store, &path, chunks, WriteMode::Overwrite, owner.as_ref()).await
        })
    }
}

impl<T: Send + 'static> Upload<T> {
    fn spawn<F, Fut>(runtime: &Handle, upload: F) -> Self
    where
        F: FnOnce(BoxStream<'static, store_core::Result<Bytes>>) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        // Two chunks in the channel: the producer fills the next one while the upload sends.
        let (sender, receiver) = mpsc::channel(2);
        let committed = Arc::new(AtomicBool::new(false));
        let ended = committed.clone();
        let chunks = stream::unfold(Some(receiver), move |receiver| {
            let ended = ended.clone();
            async move {
                let mut receiver = receiver?;
                match receiver.recv().await {
                    Some(chunk) => Some((chunk, Some(receiver))),
                    // Every sender is gone: the object's end only if `finish` said so.
                    None if ended.load(Ordering::SeqCst) => None,
                    None => Some((Err(StoreError::new(ErrorKind::Other, ABORTED)), None)),
                }
            }
        });
        Self { sender, committed, task: runtime.spawn(upload(chunks.boxed())) }
    }

    /// Where chunks go; a send fails once the upload has failed.
    pub fn sender(&self) -> mpsc::Sender<store_core::Result<Bytes>> {
        self.sender.clone()
    }

    /// A blocking writer into the upload, for an encoder (see [`ChunkWriter`]).
    pub fn writer(&self) -> ChunkWriter {
        ChunkWriter { sender: self.sender(), pending: Vec::new() }
    }

    /// Commits the upload, or with `abort` fails its stream so nothing is stored.
    pub async fn finish(self, abort: bool) -> Result<T, Error> {
        if abort {
            let _ = self.sender.send(Err(StoreError::new(ErrorKind::Other, ABORTED))).await;
        } else {
            self.committed.store(true, Ordering::SeqCst);
        }
        drop(self.sender);
        let failed = |e| StoreError::new(ErrorKind::Other, format!("the upload task failed: {e}")).into();
        self.task.await.unwrap_or_else(|e| Err(failed(e)))
    }

    /// Commits the upload if `produced` succeeded, else aborts it, and says
    /// what happened to the write as a whole: the upload's own error when it
    /// failed first (the producer then only saw its writer close), the
    /// producer's (as `produce_error` makes it) when that failed first.
    pub async fn settle<P, E>(
        self,
        produced: Result<P, E>,
        produce_error: impl FnOnce(E) -> Error,
    ) -> Result<(T, P), Error> {
        let uploaded = self.finish(produced.is_err()).await;
        match (produced, uploaded) {
            (Ok(produced), Ok(uploaded)) => Ok((uploaded, produced)),
            (Ok(_), Err(upload)) => Err(upload),
            (Err(_), Err(upload)) if !is_aborted(&upload) => Err(upload),
            (Err(produce), _) => Err(produce_error(produce)),
        }
    }
}

/// An output handed over piece by piece by a producer that is not async (a
/// pickler writing buffers), stored with its checksum and owner as every output
/// is. A short output (up to [`SINGLE_WRITE_LIMIT`]) is held and stored in one
/// checked write at [`finish`](Self::finish), with no upload task; a longer one
/// becomes an [`Upload`] as soon as it passes the limit, so memory stays
/// bounded whatever its size.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
/// use io_manager::{integrity, upload::OutputSink};
/// use store_core::Store;
///
/// let store = Store::new(store_backends::MemoryBackend::new());
/// let path = "out.bin".parse()?;
/// let mut sink = OutputSink::new(&store, &path, None);
/// sink.push("head".into()).await?;
/// sink.push("tail".into()).await?;
/// let written = sink.finish(false).await?.expect("finished once");
/// assert_eq!(written.size, 8);
/// assert_eq!(integrity::read(&store, &path, None).await?, "headtail");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OutputSink {
    store: Store,
    path: StorePath,
    owner: Option<Owner>,
    state: Option<SinkState>,
}

enum SinkState {
    Holding(Gathering),
    Uploading(Upload<Written>),
}

impl std::fmt::Debug for SinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SinkState::Holding(_) => "Holding",
            SinkState::Uploading(_) => "Uploading",
        })
    }
}

impl OutputSink {
    /// An empty output for `path`, recorded as `owner`'s.
    pub fn new(store: &Store, path: &StorePath, owner: Option<&Owner>) -> Self {
        let state = Some(SinkState::Holding(Gathering::new(SINGLE_WRITE_LIMIT)));
        Self { store: store.clone(), path: path.clone(), owner: owner.cloned(), state }
    }

    /// Adds `piece`, starting the upload (on the current Tokio runtime) once the
    /// output passes [`SINGLE_WRITE_LIMIT`]. Waits while the upload is behind. An
    /// upload that failed is finished here and its error returned; the sink is
    /// then closed.
    pub async fn push(&mut self, piece: Bytes) -> Result<(), Error> {
        let (sender, pieces) = match self.state.as_mut() {
            None => return Err(StoreError::new(ErrorKind::Other, "the output was already finished").into()),
            Some(SinkState::Holding(held)) => {
                if held.hold(piece) {
                    return Ok(());
                }
                let held = std::mem::replace(held, Gathering::new(0)).into_chunks();
                let upload =
                    Upload::start_checked(&Handle::current(), &self.store, self.path.clone(), self.owner.clone());
                let sender = upload.sender();
                self.state = Some(SinkState::Uploading(upload));
                (sender, held)
            }
            Some(SinkState::Uploading(upload)) => (upload.sender(), vec![piece]),
        };
        for piece in pieces {
            if sender.send(Ok(piece)).await.is_err() {
                // The upload stopped taking pieces: its own error says why.
                let failed = self.finish(false).await;
                return Err(failed
                    .err()
                    .unwrap_or_else(|| StoreError::new(ErrorKind::Other, "the upload stopped taking pieces").into()));
            }
        }
        Ok(())
    }

    /// Whether the output passed [`SINGLE_WRITE_LIMIT`] and is being uploaded.
    pub fn is_streaming(&self) -> bool {
        matches!(self.state, Some(SinkState::Uploading(_)))
    }

    /// Stores what was pushed, or with `abort` nothing (the old object stays);
    /// `None` if the sink was already finished.
    pub async fn finish(&mut self, abort: bool) -> Result<Option<Written>, Error> {
        match self.state.take() {
            None => Ok(None),
            Some(SinkState::Holding(_)) if abort => Ok(None),
            Some(SinkState::Holding(held)) => {
                let data = held.into_bytes();
                integrity::write(&self.store, &self.path, data, WriteMode::Overwrite, self.owner.as_ref())
                    .await
                    .map(Some)
            }
            Some(SinkState::Uploading(upload)) => {
                let finished = upload.finish(abort).await;
                if abort { Ok(None) } else { finished.map(Some) }
            }
        }
    }
}

/// Whether `err` is the one [`Upload::finish`] with `abort` makes.
pub fn is_aborted(err: &Error) -> bool {
    matches!(err, Error::Store(e) if e.message() == ABORTED)
}

/// Hands what is written to an [`Upload`] in chunks of about 1 MiB, blocking
/// while the upload is behind; so it must not run on the runtime's own threads.
/// A write fails with `BrokenPipe` once the upload has failed.
pub struct ChunkWriter {
    sender: mpsc::Sender<store_core::Result<Bytes>>,
    pending: Vec<u8>,
}

impl ChunkWriter {
    const CHUNK: usize = 1 << 20;

    fn send(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::take(&mut self.pending));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Sends what is left.
    pub fn finish(mut self) -> io::Result<()> {
        if self.pending.is_empty() { Ok(()) } else { self.send() }
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use store_backends::MemoryBackend;

    use super::*;

    fn setup() -> (tokio::runtime::Runtime, Store, StorePath) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        (runtime, Store::new(MemoryBackend::new()), "big.bin".parse().unwrap())
    }

    #[test]
    fn a_large_upload_is_stored_whole_with_its_checksum() {
        let (runtime, store, path) = setup();
        let data: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 251) as u8).collect();
        let upload = Upload::start_checked(runtime.handle(), &store, path.clone(), None);
        let mut writer = upload.writer();
        data.chunks(100_000).for_each(|piece| writer.write_all(piece).unwrap());
        writer.finish().unwrap();
        let written = runtime.block_on(upload.finish(false)).unwrap();
        assert_eq!((written.size, written.checksum), (data.len() as u64, integrity::Checksum::of(&data)));
        assert_eq!(runtime.block_on(integrity::read(&store, &path, None)).unwrap(), data);
    }

    #[test]
    fn a_producer_that_fails_stores_nothing_and_keeps_the_old_object() {
        let (runtime, store, path) = setup();
        runtime
            .block_on(integrity::write(&store, &path, Bytes::from_static(b"old"), WriteMode::Overwrite, None))
            .unwrap();
        for size in [10, 20 << 20] {
            let upload = Upload::start_checked(runtime.handle(), &store, path.clone(), None);
            let mut writer = upload.writer();
            writer.write_all(&vec![1; size]).unwrap();
            let produced: Result<(), &str> = Err("the encoder failed");
            let settled = runtime.block_on(upload.settle(produced, |e| StoreError::new(ErrorKind::Other, e).into()));
            assert!(matches!(&settled, Err(Error::Store(e)) if e.message() == "the encoder failed"), "{settled:?}");
            assert_eq!(runtime.block_on(integrity::read(&store, &path, None)).unwrap(), "old", "{size} bytes");
        }
    }

    #[test]
    fn an_upload_dropped_without_finish_stores_nothing() {
        let (runtime, store, path) = setup();
        let upload = Upload::start(runtime.handle(), &store, path.clone(), WriteMode::Overwrite);
        upload.writer().write_all(b"half").unwrap();
        drop(upload);
        runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(200)).await });
        let missing = runtime.block_on(store.read(&path)).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn an_upload_that_fails_first_reports_its_own_error() {
        let (runtime, store, path) = setup();
        // Another asset's object at the path: the checked write refuses before anything is stored.
        let other = Owner::new(["other"], [] as [&str; 0]);
        runtime
            .block_on(integrity::write(&store, &path, Bytes::from_static(b"x"), WriteMode::Overwrite, Some(&other)))
            .unwrap();
        let mine = Owner::new(["mine"], [] as [&str; 0]);
        let upload = Upload::start_checked(runtime.handle(), &store, path.clone(), Some(mine));
        let mut writer = upload.writer();
        let produced = (0..64).try_for_each(|_| writer.write_all(&vec![0; 1 << 20]));
        assert_eq!(
            produced.as_ref().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe,
            "the upload stopped taking chunks"
        );
        let settled =
            runtime.block_on(upload.settle(produced, |e| StoreError::new(ErrorKind::Other, e.to_string()).into()));
        assert!(matches!(settled, Err(Error::OwnedByAnother { .. })), "{settled:?}");
    }

    #[test]
    fn a_short_output_is_held_and_stored_in_one_checked_write() {
        let (runtime, store, path) = setup();
        let mut sink = OutputSink::new(&store, &path, None);
        runtime.block_on(async {
            for piece in ["a", "bc", "def"] {
                sink.push(Bytes::from_static(piece.as_bytes())).await.unwrap();
            }
        });
        assert!(!sink.is_streaming(), "no upload for a short output");
        assert!(!runtime.block_on(store.exists(&path)).unwrap(), "nothing stored before finish");
        let written = runtime.block_on(sink.finish(false)).unwrap().unwrap();
        assert_eq!((written.size, written.checksum), (6, integrity::Checksum::of(b"abcdef")));
        assert_eq!(runtime.block_on(integrity::read(&store, &path, None)).unwrap(), "abcdef");
        assert!(runtime.block_on(sink.finish(false)).unwrap().is_none(), "finished once");
        assert!(runtime.block_on(sink.push(Bytes::from_static(b"late"))).is_err(), "no piece after the end");
    }

    #[test]
    fn a_long_output_streams_once_past_the_limit_and_is_stored_whole() {
        let (runtime, store, path) = setup();
        let data: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 253) as u8).collect();
        let mut sink = OutputSink::new(&store, &path, None);
        let mut streamed_at = None;
        runtime.block_on(async {
            for (at, piece) in data.chunks(1 << 20).enumerate() {
                sink.push(Bytes::copy_from_slice(piece)).await.unwrap();
                if sink.is_streaming() && streamed_at.is_none() {
                    streamed_at = Some(at);
                }
            }
        });
        assert_eq!(streamed_at, Some(SINGLE_WRITE_LIMIT >> 20), "the upload starts with the piece past the limit");
        let written = runtime.block_on(sink.finish(false)).unwrap().unwrap();
        assert_eq!((written.size, written.checksum), (data.len() as u64, integrity::Checksum::of(&data)));
        assert_eq!(runtime.block_on(integrity::read(&store, &path, None)).unwrap(), data);
    }

    #[test]
    fn an_aborted_output_keeps_the_old_object() {
        let (runtime, store, path) = setup();
        runtime
            .block_on(integrity::write(&store, &path, Bytes::from_static(b"old"), WriteMode::Overwrite, None))
            .unwrap();
        for size in [10, 20 << 20] {
            let mut sink = OutputSink::new(&store, &path, None);
            runtime.block_on(sink.push(vec![7; size].into())).unwrap();
            assert!(runtime.block_on(sink.finish(true)).unwrap().is_none());
            assert_eq!(runtime.block_on(integrity::read(&store, &path, None)).unwrap(), "old", "{size} bytes");
        }
    }

    #[test]
    fn a_push_into_a_failed_upload_returns_the_upload_error() {
        let (runtime, store, path) = setup();
        let other = Owner::new(["other"], [] as [&str; 0]);
        runtime
            .block_on(integrity::write(&store, &path, Bytes::from_static(b"x"), WriteMode::Overwrite, Some(&other)))
            .unwrap();
        let mine = Owner::new(["mine"], [] as [&str; 0]);
        let mut sink = OutputSink::new(&store, &path, Some(&mine));
        let pushed = runtime.block_on(async {
            for _ in 0..64 {
                sink.push(vec![0; 1 << 20].into()).await?;
            }
            Ok::<_, Error>(())
        });
        assert!(matches!(pushed, Err(Error::OwnedByAnother { .. })), "{pushed:?}");
        assert!(runtime.block_on(sink.finish(false)).unwrap().is_none(), "the failed upload was finished");
        assert_eq!(runtime.block_on(integrity::read(&store, &path, Some(&other))).unwrap(), "x");
    }
}
