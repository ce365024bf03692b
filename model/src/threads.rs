//! Fixing the thread count candle and rayon use, once at start-up.

/// Sets `RAYON_NUM_THREADS` to the available parallelism unless it is set already.
///
/// candle looks the CPU count up from the operating system on every matrix product unless this
/// variable is set (about a tenth of training's time); rayon sizes its pool by it. The value is
/// what both would find anyway, so nothing else changes.
///
/// # Safety
///
/// Changes the process environment: call it before any other thread exists (first thing in
/// `main`), as [`std::env::set_var`] requires.
pub unsafe fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // SAFETY: the caller guarantees that no other thread reads or writes the environment.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
}
