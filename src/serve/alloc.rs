//! The process's allocator: the system's, except that very large allocations are address space
//! reserved without committing memory (`mmap` with `MAP_NORESERVE`).
//!
//! Why: decoding a request allocates an array's capacity from the count the client sent before
//! reading its elements (the `kafka-protocol` crate's decoders do), so a hostile or garbled
//! frame claiming two billion elements asks for hundreds of gigabytes at once. The system
//! allocator refuses that, and Rust aborts the whole process on a refused allocation. Reserved
//! address space is only backed by memory where it is written, and the decoder fails on the
//! first element the frame does not hold, so such a request costs nothing and closes only its
//! connection. Legitimate large buffers (a 1 MiB fetch) stay below the threshold.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are reserved rather than committed.
const LARGE: usize = 1 << 30;

struct ReserveLarge;

// SAFETY: small allocations are the system allocator's; large ones are page-aligned anonymous
// mappings of exactly the size asked (the layout given to dealloc is the one given to alloc).
unsafe impl GlobalAlloc for ReserveLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < LARGE || layout.align() > 4096 {
            return System.alloc(layout);
        }
        map(layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < LARGE || layout.align() > 4096 {
            return System.alloc_zeroed(layout);
        }
        // Fresh anonymous pages read as zero.
        map(layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() < LARGE || layout.align() > 4096 {
            return System.dealloc(ptr, layout);
        }
        libc::munmap(ptr.cast(), layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if (layout.size() < LARGE && new_size < LARGE) || layout.align() > 4096 {
            return System.realloc(ptr, layout, new_size);
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

unsafe fn map(size: usize) -> *mut u8 {
    let p = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

#[global_allocator]
static ALLOCATOR: ReserveLarge = ReserveLarge;

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_capacity_costs_nothing_until_written() {
        let mut v: Vec<[u8; 256]> = Vec::with_capacity(1 << 32);
        v.push([1; 256]);
        assert_eq!(v[0][0], 1);
        assert!(v.capacity() >= 1 << 32);
    }
}
