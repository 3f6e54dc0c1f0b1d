//! The extension's global allocator: kept over mimalloc, with which a large
//! pandas load held the table and the frame at once (benches/README.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

const LARGE: usize = 4 << 20;

fn page_size() -> usize {
    #[cfg(not(target_os = "linux"))]
    return 4096;
    #[cfg(target_os = "linux")]
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// A global allocator for processes that hold large tables for a while and then
/// let go of them: allocations of 4 MiB and more are mappings of their own,
/// handed back to the kernel when they are freed; smaller ones are [`System`]'s.
/// They are not advised onto huge pages: a Parquet load decodes into many such
/// blocks, and where the kernel takes huge pages from memory the host has not
/// backed (a VM's free page reporting), each costs milliseconds (benches/README.md).
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
        mapped(at)
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
        mapped(moved)
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
        mapped(cut)
    }

    /// The mapping at `at` a call returned; null if there is none.
    #[cfg(target_os = "linux")]
    fn mapped(at: *mut libc::c_void) -> *mut u8 {
        if at == libc::MAP_FAILED { std::ptr::null_mut() } else { at.cast() }
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
