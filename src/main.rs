//! The `hutong` binary: parse arguments, then hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: the request path allocates many small,
/// short-lived buffers (JSON values, envelopes, base64), and under load glibc's malloc and
/// free took about a tenth of the gateway's CPU (`perf`, `benches/bench.sh` scenario b).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = hutong::cli::Cli::parse();
    match hutong::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}
