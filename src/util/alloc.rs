//! The global allocator: mimalloc, called the way its fast paths expect.
//!
//! The `mimalloc` crate hands every allocation to `mi_malloc_aligned`, even with the 1-16 byte
//! alignments nearly all Rust allocations ask for. mimalloc 3 serves such a call from its plain
//! path only when the block size is a power of two; any other size (a 48-byte struct, a
//! 2,600-byte boxed future, a 1 KB request body) went through its over-allocating aligned path:
//! slower, and in a larger block than the size needs (about 18 allocations of every plain request
//! took that path). Here an allocation whose alignment a plain mimalloc block already gives
//! (alignment <= 16 and the size a multiple of it: size classes are multiples of 16 above 16
//! bytes, of 8 below, and a page's first block is 16-aligned) goes to `mi_malloc`; others keep
//! the aligned functions.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// mimalloc, with plain calls for ordinary alignments.
pub struct Mimalloc;

/// The largest alignment every mimalloc block of a multiple of it has (`MI_MAX_ALIGN_SIZE`).
const NATURAL: usize = 16;

/// Whether a plain mimalloc block of `size` bytes is aligned to `align`.
#[inline]
fn natural(size: usize, align: usize) -> bool {
    align <= NATURAL && size.is_multiple_of(align)
}

// SAFETY (all four): mimalloc's functions meet `GlobalAlloc`'s contract (a null pointer on
// failure, blocks valid until freed); a plain block is aligned to 8, and to 16 when its size is
// a multiple of 16 (see the module comment), so `natural` sizes get the alignment they ask for.
#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait over C functions"
)]
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see above
        unsafe {
            if natural(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see above
        unsafe {
            if natural(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's promise)
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's promise); the new
        // block is a plain one only when that gives the alignment
        unsafe {
            if natural(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code, reason = "the test calls the allocator's functions")]
mod tests {
    use super::*;

    /// Every size and alignment a Rust type can ask for gets a block so aligned, through both
    /// paths, after a reallocation too.
    #[test]
    fn blocks_are_aligned() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in (align..=3 * 4096).step_by(align).take(300) {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; the block is freed with the layout it was made with
                unsafe {
                    let p = a.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    p.write_bytes(7, size);
                    let q = a.realloc(p, layout, size * 2);
                    assert!((q as usize).is_multiple_of(align), "realloc {size}/{align}");
                    assert_eq!(*q.add(size - 1), 7);
                    a.dealloc(q, Layout::from_size_align(size * 2, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert!((z as usize).is_multiple_of(align) && *z.add(size - 1) == 0);
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
