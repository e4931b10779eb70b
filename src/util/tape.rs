//! simd-json tapes over a worker's reused scratch buffers: parsing a request body allocates
//! nothing but its copy once a worker is warm.

/// How deep containers may nest in a request body (the body's own object counts as 1); simd-json
/// refuses deeper bodies while it builds the tape.
pub const MAX_DEPTH: usize = 64;

/// Bodies up to this size parse with the thread's reused buffers.
const REUSE_LIMIT: usize = 1024 * 1024;

thread_local! {
    /// simd-json's scratch buffers, reused across requests on a worker thread.
    static BUFFERS: std::cell::RefCell<simd_json::Buffers> = std::cell::RefCell::new(buffers(4096));
}

/// simd-json's buffers, refusing bodies nested deeper than [`MAX_DEPTH`].
fn buffers(len: usize) -> simd_json::Buffers {
    simd_json::Buffers::with_max_depth(len, MAX_DEPTH)
}

/// Run `f` with buffers for a body of `len` bytes: the worker's own, or (for large bodies, so a
/// worker does not keep megabytes around) new ones.
pub fn with_buffers<R>(len: usize, f: impl FnOnce(&mut simd_json::Buffers) -> R) -> R {
    if len <= REUSE_LIMIT {
        BUFFERS.with_borrow_mut(f)
    } else {
        f(&mut buffers(len))
    }
}

/// Run `f` over the simd-json tape of `raw` (a copy of it, parsed with the worker's reused
/// buffers); None when simd-json cannot read it.
pub fn with_tape<R>(raw: &[u8], f: impl FnOnce(simd_json::tape::Value<'_, '_>) -> R) -> Option<R> {
    let mut copy = raw.to_vec();
    with_buffers(raw.len(), |bufs| {
        simd_json::to_tape_with_buffers(&mut copy, bufs)
            .ok()
            .map(|tape| f(tape.as_value()))
    })
}
