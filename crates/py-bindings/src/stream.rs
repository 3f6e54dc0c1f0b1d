//! File-like objects that stream one stored object: `Store.open_writer` sends
//! what is written as a multipart upload while Python keeps writing, and
//! `Store.open_reader` reads it chunk by chunk. Memory stays bounded by a few
//! parts, whatever the object's size.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use io_manager::integrity::CheckedStream;
use io_manager::upload::Upload;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyMemoryView, PyType};
use store_core::{Store, StorePath, WriteMode};

use crate::errors::{StoreResultExt, guard, test_panic};
use crate::runtime::{self, block_on};

fn closed() -> PyErr {
    PyValueError::new_err("I/O operation on closed file")
}

/// `object`'s memory as bytes, whatever its item type (an array of floats, say).
pub(crate) fn byte_buffer(object: &Bound<'_, PyAny>) -> PyResult<PyBuffer<u8>> {
    match PyBuffer::<u8>::get(object) {
        Ok(bytes) => Ok(bytes),
        Err(_) => PyBuffer::get(&byte_view(object)?),
    }
}

/// A `memoryview` of `object`'s memory as bytes; only a C-contiguous buffer has one.
pub(crate) fn byte_view<'py>(object: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    PyMemoryView::from(object)?.call_method1("cast", ("B",))
}

/// Writes one object as a stream; nothing is visible at its path until
/// `close()`, and an exception inside `with` discards everything written.
#[pyclass(module = "dagster_remote_store")]
pub struct ObjectWriter {
    path: String,
    upload: Mutex<Option<Upload>>,
}

impl ObjectWriter {
    pub fn open(store: &Store, path: StorePath, mode: WriteMode) -> Self {
        Self { path: path.to_string(), upload: Mutex::new(Some(Upload::start(&runtime::handle(), store, path, mode))) }
    }

    /// Ends the upload: commits it, or with `abort` makes it fail so nothing is stored.
    fn finish(&self, py: Python<'_>, abort: bool) -> PyResult<()> {
        let Some(upload) = self.upload.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let result = block_on(py, upload.finish(abort));
        if abort { Ok(()) } else { result.map(|_| ()).into_py_result(py) }
    }
}

#[pymethods]
impl ObjectWriter {
    /// Queues `data` (`bytes`, or any buffer such as the `PickleBuffer`s that
    /// pickle protocol 5 writes, copied since the caller may reuse it) for
    /// upload; returns its length. Blocks (GIL released) while the upload is a
    /// few parts behind.
    fn write(&self, py: Python<'_>, data: Bound<'_, PyAny>) -> PyResult<usize> {
        guard(py, "write", Some(&self.path), || {
            let sender = self
                .upload
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(Upload::sender)
                .ok_or_else(closed)?;
            let data = match data.cast::<PyBytes>() {
                Ok(bytes) => Bytes::from_owner(PyBackedBytes::from(bytes.clone())),
                Err(_) => Bytes::from(byte_buffer(&data)?.to_vec(py)?),
            };
            let len = data.len();
            if block_on(py, sender.send(Ok(data))).is_err() {
                // The upload already failed: its error says why.
                self.finish(py, false)?;
                return Err(closed());
            }
            test_panic(&self.path);
            Ok(len)
        })
    }

    /// Commits the object; raises what went wrong if the upload failed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "write", Some(&self.path), || self.finish(py, false))
    }

    /// Discards everything written; nothing is stored.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "write", Some(&self.path), || self.finish(py, true))
    }

    #[getter]
    fn closed(&self) -> bool {
        self.upload.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    fn writable(&self) -> bool {
        true
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyType>>,
        _exc: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard(py, "write", Some(&self.path), || self.finish(py, exc_type.is_some()))?;
        Ok(false)
    }
}

/// Reads one object chunk by chunk: `read(size)`, `readinto(buffer)`,
/// `readline()`, iteration over chunks.
#[pyclass(frozen, module = "dagster_remote_store")]
pub struct ObjectReader {
    path: String,
    state: Mutex<Option<ReadState>>,
    /// The checksum check of a reader opened by the IO manager.
    check: Mutex<Option<CheckedStream>>,
}

struct ReadState {
    chunks: stream::Fuse<BoxStream<'static, store_core::Result<Bytes>>>,
    /// Fetched but not yet returned.
    pending: Bytes,
    /// The error that ended the chunks: every later read raises it again, so a
    /// broken read never passes for the end of the object.
    failed: Option<PyErr>,
}

impl ObjectReader {
    pub fn open(py: Python<'_>, store: &Store, path: StorePath) -> PyResult<Self> {
        let chunks = block_on(py, store.read_stream(&path)).into_py_result(py)?;
        Ok(Self::over(path, chunks, None))
    }

    /// A reader of an object whose checksum [`verify`](Self::verify) checks.
    pub fn checked(mut object: CheckedStream) -> Self {
        let chunks = std::mem::replace(&mut object.chunks, stream::empty().boxed());
        Self::over(object.path().clone(), chunks, Some(object))
    }

    fn over(
        path: StorePath,
        chunks: BoxStream<'static, store_core::Result<Bytes>>,
        check: Option<CheckedStream>,
    ) -> Self {
        let state = ReadState { chunks: chunks.fuse(), pending: Bytes::new(), failed: None };
        Self { path: path.to_string(), state: Mutex::new(Some(state)), check: Mutex::new(check) }
    }

    /// Reads what is left and compares the object's checksum with the recorded one.
    pub fn verify(&self, py: Python<'_>) -> PyResult<()> {
        self.with_state(py, |state| {
            state.pending = Bytes::new();
            while state.fill(py)? {}
            Ok(())
        })?;
        let Some(check) = self.check.lock().unwrap_or_else(|e| e.into_inner()).take() else { return Ok(()) };
        block_on(py, check.verify()).into_py_result(py)
    }

    /// Runs `f` on the open state; a closed reader is a `ValueError`.
    fn with_state<T>(&self, py: Python<'_>, f: impl FnOnce(&mut ReadState) -> PyResult<T>) -> PyResult<T> {
        guard(py, "read", Some(&self.path), || {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            f(state.as_mut().ok_or_else(closed)?)
        })
    }
}

impl ReadState {
    /// Fetches the next chunk into `pending`; false at the end of the object.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone_ref(py));
        }
        match block_on(py, self.chunks.next()).map(|chunk| chunk.into_py_result(py)) {
            Some(Ok(chunk)) => {
                self.pending = chunk;
                Ok(true)
            }
            Some(Err(e)) => Err(self.failed.insert(e).clone_ref(py)),
            None => Ok(false),
        }
    }

    /// Up to `size` bytes (all that is left for `None`), as few copies as the chunks allow.
    fn take(&mut self, py: Python<'_>, size: Option<usize>) -> PyResult<Bytes> {
        let mut out = BytesMut::new();
        loop {
            let wanted = size.map_or(usize::MAX, |size| size - out.len());
            if wanted == 0 || (self.pending.is_empty() && !self.fill(py)?) {
                return Ok(out.freeze());
            }
            let n = wanted.min(self.pending.len());
            if out.is_empty() && n == wanted {
                return Ok(self.pending.split_to(n)); // the whole request from one chunk: no copy
            }
            out.extend_from_slice(&self.pending.split_to(n));
        }
    }
}

#[pymethods]
impl ObjectReader {
    /// Up to `size` bytes; all the rest for a negative or missing size; `b""` at the end.
    #[pyo3(signature = (size = -1))]
    fn read<'py>(&self, py: Python<'py>, size: isize) -> PyResult<Bound<'py, PyBytes>> {
        let size = usize::try_from(size).ok();
        let data = self.with_state(py, |state| state.take(py, size))?;
        Ok(PyBytes::new(py, &data))
    }

    /// Fills `buffer` (any writable buffer) as far as the object goes; returns
    /// how many bytes it filled, 0 at the end.
    fn readinto(&self, py: Python<'_>, buffer: Bound<'_, PyAny>) -> PyResult<usize> {
        let buffer = byte_buffer(&buffer)?;
        if buffer.readonly() || !buffer.is_c_contiguous() {
            return Err(PyTypeError::new_err("readinto() needs a writable, contiguous buffer"));
        }
        let (target, len) = (buffer.buf_ptr().cast::<u8>(), buffer.len_bytes());
        // `pickle.load` passes each column's fresh, untouched buffer here.
        // SAFETY: as for the copy below; the view is only advised, not read.
        store_core::buffer::advise_huge_pages(unsafe { std::slice::from_raw_parts_mut(target.cast(), len) });
        self.with_state(py, |state| {
            let mut filled = 0;
            while filled < len && (!state.pending.is_empty() || state.fill(py)?) {
                let piece = state.pending.split_to((len - filled).min(state.pending.len()));
                // SAFETY: the buffer is writable, contiguous and `len` bytes long, and
                // `buffer` holds it (neither freed nor resized) until this call returns;
                // `filled + piece.len() <= len`, and a chunk never overlaps Python's memory.
                unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), target.add(filled), piece.len()) };
                filled += piece.len();
            }
            Ok(filled)
        })
    }

    /// Bytes up to and including the next newline (or the end).
    fn readline<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.with_state(py, |state| {
            let mut line = BytesMut::new();
            loop {
                if state.pending.is_empty() && !state.fill(py)? {
                    return Ok(line);
                }
                match state.pending.iter().position(|b| *b == b'\n') {
                    Some(at) => {
                        line.extend_from_slice(&state.pending.split_to(at + 1));
                        return Ok(line);
                    }
                    None => line.extend_from_slice(&std::mem::take(&mut state.pending)),
                }
            }
        })?;
        Ok(PyBytes::new(py, &line))
    }

    fn readable(&self) -> bool {
        true
    }

    /// Stops reading and releases the connection.
    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next chunk as the backend delivers it.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let chunk = self.with_state(py, |state| {
            if state.pending.is_empty() && !state.fill(py)? {
                return Ok(None);
            }
            Ok(Some(std::mem::take(&mut state.pending)))
        })?;
        Ok(chunk.map(|chunk| PyBytes::new(py, &chunk)))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<Bound<'_, PyType>>,
        _exc: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }
}
