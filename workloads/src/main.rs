//! The `wattcast` command: datasets today; the pipeline's workloads as they land.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
