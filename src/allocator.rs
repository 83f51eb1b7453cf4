//! glibc's malloc, tuned for tensors. Every tensor larger than 32 MiB (a [1120 x 10000] f32
//! vocabulary distribution is 45 MB) otherwise gets its own mmap, and freeing it returns the
//! pages to the kernel, so the next step's tensor of the same size faults in and zeroes them all
//! again: on the language models that was a third of the CPU time. Keeping such blocks in the
//! heap, and the heap's freed top instead of trimming it, lets LibTorch and burn reuse them.
//! The price is a higher peak resident size (the README's Speed section gives both).

/// Heap-allocate large blocks and keep freed memory up to this much before returning it.
const TRIM_THRESHOLD: usize = 1 << 30;

/// Applies the tuning once, at start-up, before any tensor exists. A user's own
/// `MALLOC_MMAP_MAX_` or `MALLOC_TRIM_THRESHOLD_` wins, so either can be measured against it.
pub fn keep_tensor_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_user = |name: &str| std::env::var_os(name).is_some();
        // SAFETY: mallopt only changes malloc's parameters; it is called before other threads.
        unsafe {
            if !set_by_user("MALLOC_MMAP_MAX_") {
                libc::mallopt(libc::M_MMAP_MAX, 0);
            }
            if !set_by_user("MALLOC_TRIM_THRESHOLD_") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
            }
        }
    }
}
