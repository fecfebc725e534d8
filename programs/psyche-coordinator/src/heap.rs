//! A bump allocator over a 256 KiB heap (feature `custom-heap`). The core's `load`/`store` allocate the whole
//! state (an 85 736-byte `Box` plus the `Coordinator`'s vectors), more than the default 32 KiB heap, so every
//! transaction to this program must start with `ComputeBudgetProgram.requestHeapFrame({ bytes: 262144 })`
//! (the TypeScript client adds it) and a compute-unit limit (it sets 1 400 000).

#[cfg(all(feature = "custom-heap", target_os = "solana"))]
mod imp {
    use core::alloc::{GlobalAlloc, Layout};

    const HEAP_START: usize = 0x300000000;
    const HEAP_LEN: usize = 256 * 1024;

    struct Bump;

    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // The first word of the heap holds the next free address (grows downward from the end, as the
            // default solana-program allocator does).
            let pos_ptr = HEAP_START as *mut usize;
            let mut pos = *pos_ptr;
            if pos == 0 {
                pos = HEAP_START + HEAP_LEN;
            }
            pos = pos.saturating_sub(layout.size());
            pos &= !(layout.align().wrapping_sub(1));
            if pos < HEAP_START + core::mem::size_of::<usize>() {
                return core::ptr::null_mut();
            }
            *pos_ptr = pos;
            pos as *mut u8
        }

        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
    }

    #[global_allocator]
    static ALLOC: Bump = Bump;
}
