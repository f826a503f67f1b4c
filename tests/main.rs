//! hutong's integration tests: one binary, shared helpers (`support`), one module per area.

// Test code: helpers panic on purpose, and `pub` in modules of a test binary is just `pub(crate)`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod support;

mod audit_cli;
mod bench_cli;
mod cli;
mod code_cli;
mod code_page;
mod commuter;
mod conformance;
mod conformance_cli;
mod cross_region;
mod dialects;
mod gateway;
mod idno_stdnum;
mod openapi;
mod openssl;
mod recognition;
mod region_sim;
mod retention_cli;
mod serve_cli;
mod sim_cli;
mod validate_fixtures;
