//! Memory for large objects that are read whole. A fresh 256 MiB buffer filled
//! 4 KiB page by page takes 65,536 page faults, and on small virtual machines
//! the faults take longer than copying the data does. Backed by 2 MiB pages
//! (transparent huge pages, which Linux gives to memory that asks for them), it
//! takes 128. NumPy does the same for its arrays.
//!
//! [`LargeMappings`] is an allocator that gives large blocks mappings of their
//! own, so that memory freed goes back to the kernel at once.

use std::alloc::{GlobalAlloc, Layout, System};
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
    if buffer.len() < LARGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let start = buffer.as_mut_ptr() as usize;
        let (first, end) = (start.next_multiple_of(page), (start + buffer.len()) / page * page);
        // SAFETY: the range lies inside `buffer`, which this call borrows mutably, and
        // MADV_HUGEPAGE never changes contents. A kernel that refuses the hint is fine.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
    }
}

/// A global allocator for processes that hold large tables for a while and then
/// let go of them: allocations of 4 MiB and more are mappings of their own,
/// advised onto huge pages and handed back to the kernel as soon as they are
/// freed; smaller ones are [`System`]'s.
///
/// glibc's malloc maps large blocks on its own too, but raises that threshold to
/// the size of every mapped block freed, up to 32 MiB. After the first table, the
/// next one's columns come from its heaps, and what is freed there stays in the
/// process: a reader that frees each column as it is copied elsewhere would
/// still hold the whole table's worth. Growing a large block moves its pages
/// (`mremap`) instead of copying them. Elsewhere than Linux, it is [`System`].
///
/// ```
/// use store_core::buffer::LargeMappings;
///
/// #[global_allocator]
/// static ALLOCATOR: LargeMappings = LargeMappings;
///
/// let mut column = vec![1.5_f64; 1 << 20]; // 8 MiB: a mapping of its own
/// column.resize(3 << 20, 0.5); // moved by the kernel, not copied
/// assert_eq!((column[0], column[(3 << 20) - 1]), (1.5, 0.5));
/// ```
pub struct LargeMappings;

impl LargeMappings {
    /// Whether a block of `layout` is a mapping: large, and aligned no more than
    /// a page, which every mapping is.
    fn maps(layout: Layout) -> bool {
        cfg!(target_os = "linux") && layout.size() >= LARGE && layout.align() <= 4096
    }
}

// SAFETY: a block `maps` accepts is a whole mapping of its size made by `mapping::map`,
// page aligned, and unmapped exactly once, by `dealloc` or by `realloc` moving it;
// every other block is `System`'s, with the caller's guarantees passed on.
unsafe impl GlobalAlloc for LargeMappings {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::maps(layout) {
            return mapping::map(layout.size());
        }
        // SAFETY: see the impl.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::maps(layout) {
            return mapping::map(layout.size()); // fresh mappings are zero already
        }
        // SAFETY: see the impl.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::maps(layout) {
            // SAFETY: see the impl.
            unsafe { mapping::unmap(ptr, layout.size()) }
        } else {
            // SAFETY: see the impl.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `new_size`, rounded up to the alignment, fits in an isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::maps(layout), Self::maps(new_layout)) {
            // SAFETY: see the impl.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            // SAFETY: see the impl.
            (true, true) => unsafe { mapping::remap(ptr, layout.size(), new_size) },
            // SAFETY: both blocks hold at least the bytes copied, and the old one is freed once.
            _ => unsafe {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            },
        }
    }
}

/// The system calls behind [`LargeMappings`]; never called elsewhere than Linux.
mod mapping {
    #[cfg(target_os = "linux")]
    pub fn map(size: usize) -> *mut u8 {
        // SAFETY: a private anonymous mapping where the kernel chooses touches no existing memory.
        let at = unsafe {
            let protection = libc::PROT_READ | libc::PROT_WRITE;
            libc::mmap(std::ptr::null_mut(), size, protection, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        advised(at, size)
    }

    /// # Safety
    ///
    /// `at` is a mapping of `size` bytes made by [`map`] or [`remap`], not used after this.
    #[cfg(target_os = "linux")]
    pub unsafe fn unmap(at: *mut u8, size: usize) {
        // SAFETY: as the caller guarantees.
        unsafe { libc::munmap(at.cast(), size) };
    }

    /// # Safety
    ///
    /// As for [`unmap`]; on success, the mapping is at the address returned, and `at` is gone.
    #[cfg(target_os = "linux")]
    pub unsafe fn remap(at: *mut u8, size: usize, new_size: usize) -> *mut u8 {
        // SAFETY: as the caller guarantees; the kernel moves the pages if it has to.
        let moved = unsafe { libc::mremap(at.cast(), size, new_size, libc::MREMAP_MAYMOVE) };
        advised(moved, new_size)
    }

    /// The new mapping at `at`, advised onto huge pages; null if there is none.
    #[cfg(target_os = "linux")]
    fn advised(at: *mut libc::c_void, size: usize) -> *mut u8 {
        if at == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        // SAFETY: `at..at + size` is a mapping the allocator owns; advice changes no contents,
        // and a kernel without transparent huge pages refusing it is fine.
        unsafe { libc::madvise(at, size, libc::MADV_HUGEPAGE) };
        at.cast()
    }

    #[cfg(not(target_os = "linux"))]
    pub fn map(_: usize) -> *mut u8 {
        unreachable!("LargeMappings maps nothing elsewhere than Linux")
    }

    #[cfg(not(target_os = "linux"))]
    pub unsafe fn unmap(_: *mut u8, _: usize) {
        unreachable!("LargeMappings maps nothing elsewhere than Linux")
    }

    #[cfg(not(target_os = "linux"))]
    pub unsafe fn remap(_: *mut u8, _: usize, _: usize) -> *mut u8 {
        unreachable!("LargeMappings maps nothing elsewhere than Linux")
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Whether any of `at..at + size` is mapped (`msync` fails with ENOMEM on unmapped memory).
    fn mapped(at: *mut u8, size: usize) -> bool {
        // SAFETY: msync only inspects the range; MS_ASYNC schedules nothing for anonymous memory.
        unsafe { libc::msync(at.cast(), size, libc::MS_ASYNC) == 0 }
    }

    #[test]
    fn large_blocks_are_mappings_of_their_own_and_go_when_freed() {
        let layout = Layout::from_size_align(8 << 20, 64).unwrap();
        // SAFETY: a valid non-zero layout; the block is freed once, with it.
        unsafe {
            let block = LargeMappings.alloc_zeroed(layout);
            assert_eq!(block as usize % 4096, 0, "a mapping starts on a page");
            assert!(std::slice::from_raw_parts(block, layout.size()).iter().all(|&b| b == 0));
            block.write_bytes(7, layout.size());
            LargeMappings.dealloc(block, layout);
            assert!(!mapped(block, layout.size()), "freed memory is handed back");
        }
    }

    #[test]
    fn growing_and_shrinking_keeps_the_contents_across_the_threshold() {
        let small = Layout::from_size_align(100 << 10, 8).unwrap();
        let pattern = |i: usize| (i % 251) as u8;
        // SAFETY: each block is used within its size and freed once, by realloc or at the end.
        unsafe {
            let mut block = LargeMappings.alloc(small);
            for i in 0..small.size() {
                *block.add(i) = pattern(i);
            }
            let mut size = small.size();
            // Up into a mapping, within mappings (moved by the kernel), and back down to System.
            for new_size in [5 << 20, 40 << 20, 6 << 20, 64 << 10] {
                block = LargeMappings.realloc(block, Layout::from_size_align(size, 8).unwrap(), new_size);
                assert!(!block.is_null());
                let kept = size.min(new_size).min(small.size());
                assert!((0..kept).all(|i| *block.add(i) == pattern(i)), "{size} -> {new_size} lost bytes");
                for i in kept..new_size.min(small.size()) {
                    *block.add(i) = pattern(i);
                }
                size = new_size;
            }
            LargeMappings.dealloc(block, Layout::from_size_align(size, 8).unwrap());
        }
    }

    #[test]
    fn blocks_aligned_beyond_a_page_are_the_systems() {
        let layout = Layout::from_size_align(LARGE, 1 << 16).unwrap();
        // SAFETY: a valid layout, freed once with it.
        unsafe {
            let block = LargeMappings.alloc(layout);
            assert_eq!(block as usize % layout.align(), 0);
            LargeMappings.dealloc(block, layout);
        }
    }
}
