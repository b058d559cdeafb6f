//! The test binary's allocator: the system's, counting per thread the live
//! bytes, their peak and the largest single allocation, so a test can
//! bound the memory of work done on its own thread while others run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

#[derive(Clone, Copy, Debug)]
pub struct Heap {
    pub live: isize,
    pub peak: isize,
    pub largest: usize,
}

thread_local! {
    static HEAP: Cell<Heap> = const { Cell::new(Heap { live: 0, peak: 0, largest: 0 }) };
}

fn note(grow: isize, size: usize) {
    let _ = HEAP.try_with(|h| {
        let mut v = h.get();
        v.live += grow;
        v.peak = v.peak.max(v.live);
        v.largest = v.largest.max(size);
        h.set(v);
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size() as isize, l.size());
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as isize), 0);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new as isize - l.size() as isize, new);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Start measuring on this thread: the peak restarts at the live bytes and
/// the largest allocation at zero. Returns the live bytes now.
pub fn reset() -> isize {
    HEAP.with(|h| {
        let mut v = h.get();
        v.peak = v.live;
        v.largest = 0;
        h.set(v);
        v.live
    })
}

/// This thread's counters.
pub fn now() -> Heap {
    HEAP.with(Cell::get)
}

/// Largest single allocation made by `f` on this thread.
pub fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    reset();
    let out = f();
    (out, now().largest)
}
