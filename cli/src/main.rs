//! The `wattcast` command: datasets today; the pipeline's workloads as they land.

mod cli;

/// Many small short-lived tensors while training: mimalloc keeps them off the page-fault path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in main, before any thread is started.
    unsafe { wattcast_model::threads::pin_thread_count() };
    cli::run()
}
