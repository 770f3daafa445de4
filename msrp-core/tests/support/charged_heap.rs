//! A counting global allocator that charges each block to the machine under
//! test or not, for the `*_with_heap` fuzz targets
//! (`msrp_core::fuzzing::HeapMeter`): the one copy, included by the fuzz
//! binaries (`fuzz/fuzz_targets/msrp_{session,relay}.rs`) and the heap tests.
//!
//! Every block carries its charge in a header in front of the caller's bytes,
//! so it is taken off the figure it was added to whoever frees it: the
//! machine, the script, or a drop of a value the machine handed out. The
//! figure is kept per thread (tests run side by side; a machine and what it
//! allocates stay on one thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator: forwards to [`System`], keeping one header per block.
pub(crate) struct ChargedHeap;

thread_local! {
    /// Whether blocks allocated now are charged.
    static CHARGING: Cell<bool> = const { Cell::new(false) };
    /// Bytes of charged blocks allocated on this thread and not freed
    /// (a block freed on another thread is taken off there).
    static CHARGED: Cell<isize> = const { Cell::new(0) };
}

/// Room in front of the caller's bytes: the header, and the caller's alignment.
const HEADER: usize = 16;

fn charging() -> bool {
    // `try_with`: the thread's slots are gone while the thread shuts down.
    CHARGING.try_with(Cell::get).unwrap_or(false)
}

fn charge(delta: isize) {
    let _ = CHARGED.try_with(|charged| charged.set(charged.get() + delta));
}

/// The block the system allocates for `layout`, and where the caller's bytes
/// start in it (a multiple of the caller's alignment, at least `HEADER`).
fn outer(layout: Layout) -> Option<(Layout, usize)> {
    let offset = layout.align().max(HEADER);
    let size = layout.size().checked_add(offset)?;
    Some((Layout::from_size_align(size, offset).ok()?, offset))
}

/// `usize` to the signed figure; no block is larger than `isize::MAX`.
fn signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

// SAFETY: every block comes from `System` with a layout at least as large and
// as aligned as the caller's; the caller's pointer is `offset` bytes into it,
// and `dealloc`/`realloc` recompute the same `offset` from the caller's layout.
unsafe impl GlobalAlloc for ChargedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((outer, offset)) = outer(layout) else { return std::ptr::null_mut() };
        // SAFETY: `outer` has a non-zero size (at least HEADER).
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let charged = charging();
        if charged {
            charge(signed(layout.size()));
        }
        // SAFETY: `offset` <= `outer.size()`; the tag byte is the last byte of the header.
        unsafe {
            let ptr = base.add(offset);
            ptr.sub(1).write(u8::from(charged));
            ptr
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((outer, offset)) = outer(layout) else { return };
        // SAFETY: `ptr` came from `alloc`/`realloc` with this layout: the tag
        // is the byte before it and the block starts `offset` bytes earlier.
        unsafe {
            if ptr.sub(1).read() == 1 {
                charge(-signed(layout.size()));
            }
            System.dealloc(ptr.sub(offset), outer);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some((outer, offset)), Some(new_outer)) =
            (outer(layout), new_size.checked_add(layout.align().max(HEADER)))
        else {
            return std::ptr::null_mut();
        };
        // SAFETY: as in `dealloc`; the system copies the header with the
        // bytes, so the block keeps its charge.
        unsafe {
            let charged = ptr.sub(1).read() == 1;
            let base = System.realloc(ptr.sub(offset), outer, new_outer);
            if base.is_null() {
                return base;
            }
            if charged {
                charge(signed(new_size) - signed(layout.size()));
            }
            base.add(offset)
        }
    }
}

impl msrp_core::fuzzing::HeapMeter for ChargedHeap {
    fn charge(&self, on: bool) -> bool {
        CHARGING.try_with(|charging| charging.replace(on)).unwrap_or(false)
    }

    fn charged(&self) -> Option<usize> {
        CHARGED.try_with(Cell::get).ok().map(|bytes| usize::try_from(bytes).unwrap_or(0))
    }
}
