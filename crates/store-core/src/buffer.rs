//! Memory for large objects that are read whole. A fresh 256 MiB buffer filled
//! 4 KiB page by page takes 65,536 page faults, and on small virtual machines
//! the faults take longer than copying the data does. Backed by 2 MiB pages
//! (transparent huge pages, which Linux gives to memory that asks for them), it
//! takes 128. NumPy does the same for its arrays.
//!
//! And data held before it is written: [`Gathering`] the first chunks of a
//! write, so that one that fits goes out in one request.

use std::mem::MaybeUninit;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::Result;

/// Buffers from this size on are advised; NumPy's threshold too.
const LARGE: usize = 4 << 20;

/// An empty buffer with room for `capacity` bytes, advised onto huge pages if large.
///
/// ```
/// let mut data = store_core::buffer::with_capacity(8 << 20);
/// data.extend_from_slice(b"the object");
/// assert!(data.capacity() >= 8 << 20);
/// ```
pub fn with_capacity(capacity: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(capacity);
    advise_huge_pages(buffer.spare_capacity_mut());
    buffer
}

/// Asks the kernel to back the whole pages of `buffer`, if it is large, with
/// huge pages. Meant for memory about to be filled: it never changes contents,
/// only how untouched pages will be backed. Elsewhere than Linux, and where the
/// kernel has no transparent huge pages, it does nothing.
///
/// ```
/// let mut data: Vec<u8> = Vec::with_capacity(16 << 20);
/// store_core::buffer::advise_huge_pages(data.spare_capacity_mut());
/// data.resize(16 << 20, 7);
/// assert!(data.iter().all(|&b| b == 7));
/// ```
pub fn advise_huge_pages(buffer: &mut [MaybeUninit<u8>]) {
    if buffer.len() >= LARGE {
        #[cfg(target_os = "linux")]
        advice::huge_pages(buffer);
    }
}

/// The one system call of this module: not safe to make in general (other advice
/// frees or changes memory), but this advice only changes how pages are backed.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod advice {
    use std::mem::MaybeUninit;

    use rustix::mm::{Advice, madvise};

    /// Advises the whole pages inside `buffer` onto huge pages.
    pub(super) fn huge_pages(buffer: &mut [MaybeUninit<u8>]) {
        let page = rustix::param::page_size();
        let start = buffer.as_mut_ptr() as usize;
        let (first, end) = (start.next_multiple_of(page), (start + buffer.len()) / page * page);
        // SAFETY: `first..end` lies inside `buffer`, which this call borrows mutably, and
        // MADV_HUGEPAGE never changes contents. A kernel that refuses the hint is fine.
        let _ = unsafe { madvise(first as *mut std::ffi::c_void, end - first, Advice::LinuxHugepage) };
    }
}

/// The first chunks of a stream, held until they pass a limit: data that fits
/// goes out in one request, and only longer data streams. Writers that are fed
/// (a pickler writing into a sink) hold chunks themselves; writers that pull
/// from a stream use [`gather`].
///
/// ```
/// use bytes::Bytes;
/// use store_core::buffer::Gathering;
///
/// let mut first = Gathering::new(8);
/// assert!(first.hold(Bytes::from_static(b"12345")));
/// assert!(!first.hold(Bytes::from_static(b"6789")), "9 bytes pass the limit of 8");
/// assert_eq!(first.into_chunks().concat(), b"123456789");
/// ```
#[derive(Debug)]
pub struct Gathering {
    chunks: Vec<Bytes>,
    size: usize,
    limit: usize,
}

impl Gathering {
    /// Nothing held yet; up to `limit` bytes fit.
    pub fn new(limit: usize) -> Self {
        Self { chunks: Vec::new(), size: 0, limit }
    }

    /// Holds `chunk`; false once the bytes held pass the limit: the data is
    /// then too long for one request, and everything held goes first in a stream.
    pub fn hold(&mut self, chunk: Bytes) -> bool {
        self.size += chunk.len();
        self.chunks.push(chunk);
        self.size <= self.limit
    }

    /// The bytes held, in one buffer (a single chunk as it is).
    pub fn into_bytes(mut self) -> Bytes {
        if self.chunks.len() == 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        let mut whole = with_capacity(self.size);
        self.chunks.iter().for_each(|chunk| whole.extend_from_slice(chunk));
        whole.into()
    }

    /// The chunks held, in order.
    pub fn into_chunks(self) -> Vec<Bytes> {
        self.chunks
    }
}

/// What [`gather`] found: all of the data, or a stream of it that starts over
/// from its first chunk.
pub enum Gathered {
    /// The data ended within the limit.
    Whole(Bytes),
    /// The data passed the limit: every chunk, the ones read already first.
    Streaming(BoxStream<'static, Result<Bytes>>),
}

/// Reads `data` until it ends or passes `limit` bytes (see [`Gathering`]); an
/// error of the stream is returned as it is.
///
/// ```
/// # futures::executor::block_on(async {
/// use bytes::Bytes;
/// use futures::{StreamExt, TryStreamExt, stream};
/// use store_core::buffer::{Gathered, gather};
///
/// let chunks = || stream::iter([b"12345", b"6789!"].map(|c| Ok(Bytes::from_static(c)))).boxed();
/// assert!(matches!(gather(chunks(), 10).await?, Gathered::Whole(all) if all == "123456789!"));
/// let Gathered::Streaming(all) = gather(chunks(), 8).await? else { panic!("10 bytes pass 8") };
/// assert_eq!(all.try_collect::<Vec<_>>().await?.concat(), b"123456789!");
/// # Ok::<(), store_core::Error>(()) }).unwrap();
/// ```
pub async fn gather(mut data: BoxStream<'static, Result<Bytes>>, limit: usize) -> Result<Gathered> {
    let mut first = Gathering::new(limit);
    while let Some(chunk) = data.try_next().await? {
        if !first.hold(chunk) {
            let held = stream::iter(first.into_chunks().into_iter().map(Ok));
            return Ok(Gathered::Streaming(held.chain(data).boxed()));
        }
    }
    Ok(Gathered::Whole(first.into_bytes()))
}
