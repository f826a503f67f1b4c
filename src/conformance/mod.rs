//! The conformance suite (`hutong conformance`): a black-box runner of GB/T 38963 cases
//! against any implementation of the national envelope: the gateway, `hutong sim
//! --national`, or a provincial service.
//!
//! Cases are data under `conformance/cases/<area>/` ([`case`]); [`run`] sets up what they
//! need through the target's own services and judges each stage a case names; [`report`]
//! writes the terminal summary, JSON and JUnit XML. A target's known deviations are listed
//! in an expectations file: a listed case that passes fails the run, so the list cannot go
//! stale.

pub mod case;
pub mod cert;
pub mod coverage;
pub mod dialect;
pub mod load;
pub mod report;
pub mod run;
pub mod vectors;

use std::io::Write as _;
use std::time::Instant;

pub use case::{Case, Deviation, load_dir, load_expectations};
pub use report::Report;
pub use run::{Context, Fixtures, setup};

use crate::client::GatewayClient;

/// Runs `cases` against the target `client` reaches, in order (a replay or burst case must
/// not overlap another), printing progress to standard error.
pub async fn run_all(
    client: &GatewayClient,
    second: Option<&GatewayClient>,
    target: &str,
    cases: &[Case],
    ctx: &Context,
    deviations: &[Deviation],
) -> Report {
    let started = Instant::now();
    let mut results = Vec::with_capacity(cases.len());
    for (i, c) in cases.iter().enumerate() {
        let dev = deviations.iter().find(|d| d.case == c.id);
        let r = run::run_case(client, second, c, ctx, dev).await;
        progress(i + 1, cases.len(), &r);
        results.push(r);
    }
    Report {
        target: target.to_owned(),
        suite_version: env!("CARGO_PKG_VERSION").to_owned(),
        standard: "GB/T 38963-2020 (profile: standard/manifest.toml)".into(),
        started: i64::try_from(crate::auth::now_unix()).unwrap_or_default(),
        millis: started.elapsed().as_millis() as u64,
        cases: results,
        load: None,
    }
}

/// `[#####-----] 12/40 VC-003 ok`, redrawn in place on a terminal; nothing when standard
/// error is not one (a CI log gets the summary only).
fn progress(done: usize, total: usize, r: &run::CaseResult) {
    use std::io::IsTerminal as _;
    const WIDTH: usize = 30;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let filled = WIDTH * done / total.max(1);
    let bar: String = "#".repeat(filled) + &"-".repeat(WIDTH - filled);
    let verdict = if r.ok() { "ok" } else { "FAIL" };
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r[{bar}] {done}/{total} {:<10} {verdict:<4}", r.id);
    if done == total {
        let _ = writeln!(err);
    }
}
