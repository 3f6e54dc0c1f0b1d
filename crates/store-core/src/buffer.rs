//! Memory for large objects that are read whole. A fresh 256 MiB buffer filled
//! 4 KiB page by page takes 65,536 page faults, and on small virtual machines
//! the faults take longer than copying the data does. Backed by 2 MiB pages
//! (transparent huge pages, which Linux gives to memory that asks for them), it
//! takes 128. NumPy does the same for its arrays.
//!
//! [`LargeMappings`] is an allocator that gives large blocks mappings of their
//! own, so that memory freed goes back to the kernel, all but the last few
//! blocks, which the next large allocations reuse.

use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::MaybeUninit;
use std::sync::Mutex;

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
        let page = page_size();
        let start = buffer.as_mut_ptr() as usize;
        let (first, end) = (start.next_multiple_of(page), (start + buffer.len()) / page * page);
        // SAFETY: the range lies inside `buffer`, which this call borrows mutably, and
        // MADV_HUGEPAGE never changes contents. A kernel that refuses the hint is fine.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
    }
}

/// The kernel's page size.
fn page_size() -> usize {
    #[cfg(target_os = "linux")]
    // SAFETY: sysconf has no preconditions.
    return usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    #[cfg(not(target_os = "linux"))]
    4096
}

/// A global allocator for processes that hold large tables for a while and then
/// let go of them: allocations of 4 MiB and more are mappings of their own,
/// advised onto huge pages and handed back to the kernel when they are freed;
/// smaller ones are [`System`]'s.
///
/// glibc's malloc maps large blocks on its own too, but raises that threshold to
/// the size of every mapped block freed, up to 32 MiB. After the first table, the
/// next one's columns come from its heaps, and what is freed there stays in the
/// process: a reader that frees each column as it is copied elsewhere would
/// still hold the whole table's worth. Growing a large block moves its pages
/// (`mremap`) instead of copying them. Elsewhere than Linux, it is [`System`].
///
/// The last few blocks freed, 16 MiB at most, are kept for the next
/// large allocations: a stream of equal parts or ranges (an upload, a ranged
/// read) then reuses pages the process already has, where fresh ones would each
/// be faulted in and zeroed by the kernel, which takes as long as moving the data.
///
/// ```
/// use store_core::buffer::LargeMappings;
///
/// #[global_allocator]
/// static ALLOCATOR: LargeMappings = LargeMappings::new();
///
/// let mut column = vec![1.5_f64; 1 << 20]; // 8 MiB: a mapping of its own
/// column.resize(3 << 20, 0.5); // moved by the kernel, not copied
/// assert_eq!((column[0], column[(3 << 20) - 1]), (1.5, 0.5));
/// ```
pub struct LargeMappings {
    kept: Mutex<Kept>,
}

/// Freed large blocks kept for reuse, in bytes at most: two multipart parts or read ranges.
const KEPT: usize = 16 << 20;

/// Blocks freed and not yet unmapped: (address, page-rounded size); a size of 0 is a free slot.
struct Kept {
    blocks: [(usize, usize); 4],
}

impl Kept {
    /// Bytes kept, all blocks together.
    fn bytes(&self) -> usize {
        self.blocks.iter().map(|&(_, size)| size).sum()
    }
}

impl LargeMappings {
    /// The allocator, keeping nothing yet.
    pub const fn new() -> Self {
        Self { kept: Mutex::new(Kept { blocks: [(0, 0); 4] }) }
    }

    /// Whether a block of `layout` is a mapping: large, and aligned no more than
    /// a page, which every mapping is.
    fn maps(layout: Layout) -> bool {
        cfg!(target_os = "linux") && layout.size() >= LARGE && layout.align() <= 4096
    }

    /// The kept blocks, unless another thread is using them: then the block is
    /// mapped or unmapped as if nothing were kept. So the allocator never waits,
    /// and a child forked while another thread held the lock never deadlocks.
    fn kept(&self) -> Option<std::sync::MutexGuard<'_, Kept>> {
        match self.kept.try_lock() {
            Ok(kept) => Some(kept),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// A block of `size` bytes: the smallest kept one that holds them, cut to
    /// size, or else a fresh mapping (which is zeroed: `fresh` says which it is).
    fn take(&self, size: usize) -> (*mut u8, bool) {
        let size = mapping::rounded(size);
        let reused = self.kept().and_then(|mut kept| {
            let fits = (0..kept.blocks.len()).filter(|&slot| kept.blocks[slot].1 >= size);
            fits.min_by_key(|&slot| kept.blocks[slot].1).map(|slot| std::mem::take(&mut kept.blocks[slot]))
        });
        if let Some((at, kept_size)) = reused {
            let at = at as *mut u8;
            // SAFETY: a kept block is a mapping of its size that nothing else uses.
            let cut = unsafe { mapping::shrink(at, kept_size, size) };
            if !cut.is_null() {
                return (cut, false);
            }
            // SAFETY: as above; the kernel left the mapping as it was.
            unsafe { mapping::unmap(at, kept_size) };
        }
        (mapping::map(size), true)
    }

    /// Keeps the freed block at `at` for reuse if there is room, or unmaps it.
    ///
    /// # Safety
    ///
    /// `at` is a mapping of `size` bytes made by this allocator, not used after this.
    unsafe fn give_back(&self, at: *mut u8, size: usize) {
        let size = mapping::rounded(size);
        if let Some(mut kept) = self.kept() {
            let room = kept.bytes() + size <= KEPT;
            if let Some(slot) = kept.blocks.iter_mut().find(|(_, kept_size)| *kept_size == 0).filter(|_| room) {
                *slot = (at as usize, size);
                return;
            }
        }
        // SAFETY: as the caller guarantees.
        unsafe { mapping::unmap(at, size) }
    }
}

impl Default for LargeMappings {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: a block `maps` accepts is a whole mapping of its size made by `mapping::map`
// (possibly kept and cut to size since), page aligned, and unmapped exactly once, by
// `give_back` or by `realloc` moving it, or kept by `give_back` and used by one block
// at a time; every other block is `System`'s, with the caller's guarantees passed on.
unsafe impl GlobalAlloc for LargeMappings {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::maps(layout) {
            return self.take(layout.size()).0;
        }
        // SAFETY: see the impl.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::maps(layout) {
            let (block, fresh) = self.take(layout.size());
            if !fresh && !block.is_null() {
                // SAFETY: the block is `layout.size()` bytes, this allocation's alone.
                unsafe { block.write_bytes(0, layout.size()) };
            }
            return block;
        }
        // SAFETY: see the impl.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::maps(layout) {
            // SAFETY: see the impl.
            unsafe { self.give_back(ptr, layout.size()) }
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
    /// `size` rounded up to whole pages: what a mapping of `size` bytes takes.
    pub fn rounded(size: usize) -> usize {
        size.next_multiple_of(super::page_size())
    }

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

    /// The mapping at `at` cut to its first `new_size` bytes, in place; the rest is unmapped.
    ///
    /// # Safety
    ///
    /// As for [`unmap`]; `new_size` is at most `size`.
    #[cfg(target_os = "linux")]
    pub unsafe fn shrink(at: *mut u8, size: usize, new_size: usize) -> *mut u8 {
        if new_size == size {
            return at;
        }
        // SAFETY: as the caller guarantees; shrinking never moves a mapping.
        let cut = unsafe { libc::mremap(at.cast(), size, new_size, 0) };
        if cut == libc::MAP_FAILED { std::ptr::null_mut() } else { cut.cast() }
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
    pub unsafe fn shrink(_: *mut u8, _: usize, _: usize) -> *mut u8 {
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
    fn large_blocks_are_mappings_of_their_own_and_go_when_freed_beyond_what_is_kept() {
        let allocator = LargeMappings::new();
        let layout = Layout::from_size_align(KEPT + (1 << 20), 64).unwrap();
        // SAFETY: a valid non-zero layout; the block is freed once, with it.
        unsafe {
            let block = allocator.alloc_zeroed(layout);
            assert_eq!(block as usize % 4096, 0, "a mapping starts on a page");
            assert!(std::slice::from_raw_parts(block, layout.size()).iter().all(|&b| b == 0));
            block.write_bytes(7, layout.size());
            allocator.dealloc(block, layout);
            assert!(!mapped(block, layout.size()), "freed memory is handed back");
        }
    }

    #[test]
    fn freed_blocks_are_kept_for_reuse_cut_to_size_and_zeroed_when_asked() {
        let allocator = LargeMappings::new();
        let part = Layout::from_size_align(KEPT / 2, 64).unwrap();
        let smaller = Layout::from_size_align(KEPT / 4, 64).unwrap();
        let bytes = |at: *mut u8, size| unsafe { std::slice::from_raw_parts(at, size) };
        // SAFETY: valid layouts; each block is used within its size and freed once, with its layout.
        unsafe {
            let parts = [allocator.alloc(part), allocator.alloc(part), allocator.alloc(part)];
            for block in parts {
                block.write_bytes(7, part.size());
                allocator.dealloc(block, part);
            }
            assert!(mapped(parts[0], part.size()) && mapped(parts[1], part.size()), "two parts are kept");
            assert!(!mapped(parts[2], part.size()), "a third would be more than KEPT: handed back");
            let reused = allocator.alloc_zeroed(smaller);
            assert!(parts[..2].contains(&reused), "a kept block serves the next allocation");
            assert!(bytes(reused, smaller.size()).iter().all(|&b| b == 0), "and is zeroed when asked");
            let other = allocator.alloc(part);
            assert!(parts[..2].contains(&other) && other != reused);
            allocator.dealloc(reused, smaller);
            let fresh = allocator.alloc(part);
            assert_ne!(fresh, reused, "the block kept again is only as large as its last use");
            allocator.dealloc(other, part);
            allocator.dealloc(fresh, part);
        }
    }

    #[test]
    fn a_thread_holding_the_kept_blocks_never_makes_another_wait() {
        let allocator = LargeMappings::new();
        let part = Layout::from_size_align(8 << 20, 64).unwrap();
        let held = allocator.kept.lock().unwrap();
        // SAFETY: a valid layout; the block is used within its size and freed once, with it.
        unsafe {
            let block = allocator.alloc(part);
            block.write_bytes(7, part.size());
            allocator.dealloc(block, part);
            assert!(!mapped(block, part.size()), "not kept while the lock is held elsewhere");
        }
        drop(held);
    }

    #[test]
    fn growing_and_shrinking_keeps_the_contents_across_the_threshold() {
        let small = Layout::from_size_align(100 << 10, 8).unwrap();
        let pattern = |i: usize| (i % 251) as u8;
        // SAFETY: each block is used within its size and freed once, by realloc or at the end.
        unsafe {
            let allocator = LargeMappings::new();
            let mut block = allocator.alloc(small);
            for i in 0..small.size() {
                *block.add(i) = pattern(i);
            }
            let mut size = small.size();
            // Up into a mapping, within mappings (moved by the kernel), and back down to System.
            for new_size in [5 << 20, 40 << 20, 6 << 20, 64 << 10] {
                block = allocator.realloc(block, Layout::from_size_align(size, 8).unwrap(), new_size);
                assert!(!block.is_null());
                let kept = size.min(new_size).min(small.size());
                assert!((0..kept).all(|i| *block.add(i) == pattern(i)), "{size} -> {new_size} lost bytes");
                for i in kept..new_size.min(small.size()) {
                    *block.add(i) = pattern(i);
                }
                size = new_size;
            }
            allocator.dealloc(block, Layout::from_size_align(size, 8).unwrap());
        }
    }

    #[test]
    fn blocks_aligned_beyond_a_page_are_the_systems() {
        let layout = Layout::from_size_align(LARGE, 1 << 16).unwrap();
        // SAFETY: a valid layout, freed once with it.
        unsafe {
            let allocator = LargeMappings::new();
            let block = allocator.alloc(layout);
            assert_eq!(block as usize % layout.align(), 0);
            allocator.dealloc(block, layout);
        }
    }
}
