//! Memory for large objects that are read whole. A fresh 256 MiB buffer filled
//! 4 KiB page by page takes 65,536 page faults, and on small virtual machines
//! the faults take longer than copying the data does. Backed by 2 MiB pages
//! (transparent huge pages, which Linux gives to memory that asks for them), it
//! takes 128. NumPy does the same for its arrays.

use std::mem::MaybeUninit;

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

