//! Pickle streamed to and from the store. `pickle.dump` writes into an upload
//! as it encodes and `pickle.load` reads from the stored object as it decodes,
//! so a large value (a DataFrame's column buffers) goes out from its own
//! memory, never copied into one `bytes` object or into parts. Small values
//! take one write and one read, as every other serializer's do.

use std::error::Error as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use io_manager::integrity::{CheckedStream, SINGLE_WRITE_LIMIT, Written};
use io_manager::upload::OutputSink;
use io_manager::{IoManager, Owner};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyIOError, PyTypeError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use serializers::SerializeError;
use store_core::{Store, StorePath};

use crate::errors::StoreResultExt;
use crate::pickle::{Pickle, unpickling_error};
use crate::runtime::block_on;
use crate::stream::{ObjectReader, byte_view};
use crate::value::PySerializer;

/// Pickles `value` into `output`, the IO manager's streamed output at `path`.
pub fn dump(py: Python<'_>, output: OutputSink, path: &StorePath, value: &Bound<'_, PyAny>) -> PyResult<Written> {
    let sink = Bound::new(py, SinkWriter::new(output, path))?;
    let pickle = Pickle::module(py)?;
    let dumped = pickle.call_method1("dump", (value, &sink, pickle.getattr("HIGHEST_PROTOCOL")?));
    let sink = sink.get();
    if let Err(err) = dumped {
        // A store failure inside `write` is reported as itself, not as a pickling error.
        let failure = sink.take_failure();
        let _ = sink.finish(py, true);
        let err = failure.unwrap_or_else(|| serialize_error(path, SerializeError::encode(Pickle::NAME, err)));
        return Err(crate::errors::io_error(py, &err));
    }
    sink.finish(py, false).into_py_result(py)?.ok_or_else(|| PyIOError::new_err("the output closed twice"))
}

/// Unpickles `object`, the object at `path` as it arrives, with `pickle`; a
/// checksum mismatch is raised instead of the value, and a pickle that does
/// not load as `DeserializationError` naming `path`.
pub fn load(py: Python<'_>, mut object: CheckedStream, path: &StorePath, pickle: &Pickle) -> PyResult<Py<PyAny>> {
    if object.size.is_some_and(|size| size <= SINGLE_WRITE_LIMIT as u64) {
        let chunks: Vec<Bytes> = block_on(py, (&mut object.chunks).try_collect()).into_py_result(py)?;
        block_on(py, object.verify()).into_py_result(py)?;
        // One copy, straight into the bytes object pickle reads.
        let data = PyBytes::new_with(py, chunks.iter().map(Bytes::len).sum(), |out| {
            let mut at = 0;
            for chunk in &chunks {
                out[at..at + chunk.len()].copy_from_slice(chunk);
                at += chunk.len();
            }
            Ok(())
        })?;
        return pickle.loads(py, data, Some(path.as_str()));
    }
    let reader = Bound::new(py, ObjectReader::checked(object))?;
    let value = pickle.load(py, reader.as_any(), path.as_str());
    // The checksum first: a corrupt object is the cause of whatever unpickling made of it.
    reader.get().verify(py)?;
    value
}

/// Unpickles the objects at `paths` (each with its owner) with `pickle`,
/// fetched `max_concurrency` at once and verified, in order; with `missing`,
/// a missing object is `missing` instead of an error. A pickle that does not
/// load is `DeserializationError` naming its path.
pub fn load_many(
    py: Python<'_>,
    store: &Store,
    paths: &[(StorePath, Option<Owner>)],
    missing: Option<Py<PyAny>>,
    max_concurrency: usize,
    pickle: &Arc<Pickle>,
) -> PyResult<Vec<Py<PyAny>>> {
    let io = IoManager::new(store.clone(), pickle.clone() as PySerializer).with_max_concurrency(max_concurrency);
    let loaded = match &missing {
        Some(_) => block_on(py, io.load_existing(paths)),
        None => block_on(py, io.load_many(paths)).map(|values| values.into_iter().map(Some).collect()),
    };
    let values = loaded.map_err(|err| match err {
        // `Pickle` decodes without knowing the path: name it.
        io_manager::Error::Serialize { path, source } => {
            match source.source().and_then(|s| s.downcast_ref::<PyErr>()) {
                Some(raised) => unpickling_error(py, Some(path.as_str()), raised.clone_ref(py)),
                None => crate::errors::io_error(py, &io_manager::Error::Serialize { path, source }),
            }
        }
        other => crate::errors::io_error(py, &other),
    })?;
    // Only `load_existing` leaves gaps, and only when `missing` was given.
    let missing = missing.unwrap_or_else(|| py.None());
    Ok(values.into_iter().map(|v| v.map_or_else(|| missing.clone_ref(py), |v| v.0)).collect())
}

fn serialize_error(path: &StorePath, source: SerializeError) -> io_manager::Error {
    io_manager::Error::Serialize { path: path.clone(), source }
}

/// What `pickle.dump`, and a file streamed into an output, write into: an
/// [`OutputSink`], which holds a short output for one write and streams a longer one.
#[pyclass(frozen, module = "dagster_remote_store._core")]
pub(crate) struct SinkWriter {
    path: StorePath,
    /// Taken while a piece is pushed with the GIL released, so that no lock is held across it.
    sink: Mutex<Option<OutputSink>>,
    /// Why the upload failed, for `dump` to report.
    failure: Mutex<Option<io_manager::Error>>,
}

/// Large buffers go out in pieces of this size: one multipart part, or one write to a file.
const PIECE: usize = 8 << 20;

impl SinkWriter {
    pub(crate) fn new(output: OutputSink, path: &StorePath) -> Self {
        Self { path: path.clone(), sink: Mutex::new(Some(output)), failure: Mutex::new(None) }
    }

    fn take(&self) -> Option<OutputSink> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn push(&self, py: Python<'_>, piece: Bytes) -> PyResult<()> {
        let mut sink = self.take().ok_or_else(|| PyIOError::new_err("write to a closed output"))?;
        let pushed = block_on(py, sink.push(piece));
        let streaming = sink.is_streaming();
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
        match pushed {
            Ok(()) => {
                if streaming {
                    crate::errors::test_panic(self.path.as_str());
                }
                Ok(())
            }
            Err(err) => {
                // Kept for `dump`, which reports it rather than the pickling error it causes.
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                Err(PyIOError::new_err("the upload failed"))
            }
        }
    }

    /// Why the upload failed, once: what a failed `write` raised in its place.
    pub(crate) fn take_failure(&self) -> Option<io_manager::Error> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Stores what was written (or with `abort`, nothing); `None` if already finished.
    pub(crate) fn finish(&self, py: Python<'_>, abort: bool) -> Result<Option<Written>, io_manager::Error> {
        match self.take() {
            Some(mut sink) => block_on(py, sink.finish(abort)),
            None => Ok(None),
        }
    }
}

#[pymethods]
impl SinkWriter {
    /// Takes what pickle hands over without copying it: `bytes` as they are,
    /// and any other buffer (a `PickleBuffer` of a column's memory) in pieces
    /// of [`PIECE`] that borrow it. `dump` only returns once the upload has
    /// finished, so the value cannot change under a piece still being sent.
    pub(crate) fn write(&self, py: Python<'_>, data: Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(bytes) = data.cast::<PyBytes>() {
            let len = bytes.len()?;
            self.push(py, Bytes::from_owner(PyBackedBytes::from(bytes.clone())))?;
            return Ok(len);
        }
        let whole = Bytes::from_owner(Borrowed::new(&data)?);
        for at in (0..whole.len()).step_by(PIECE) {
            self.push(py, whole.slice(at..whole.len().min(at + PIECE)))?;
        }
        Ok(whole.len())
    }
}

/// A Python buffer's bytes, held by a byte-cast `memoryview` of it that
/// nothing else references: the view keeps the buffer exported (so it is
/// neither freed nor resized) until the last piece borrowing it is dropped.
/// A piece dropped off the interpreter, by the upload, leaves the view to
/// PyO3's pool, which releases it when the thread next attaches.
struct Borrowed {
    _view: Py<PyAny>,
    start: *const u8,
    len: usize,
}

// SAFETY: the bytes are only read, and the view that owns them is only
// dropped through `Py`, which defers the release to an attached thread.
unsafe impl Send for Borrowed {}
unsafe impl Sync for Borrowed {}

impl Borrowed {
    fn new(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let view = byte_view(data).map_err(|_| PyTypeError::new_err("write() needs a contiguous buffer"))?;
        let buffer = PyBuffer::<u8>::get(&view)?;
        let (start, len) = (buffer.buf_ptr().cast::<u8>().cast_const(), buffer.len_bytes());
        Ok(Self { _view: view.unbind(), start, len })
    }
}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `_view` exports these `len` contiguous bytes for as long as it lives.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}
