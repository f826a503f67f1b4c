//! `hutong conformance run`: the suite against a target, with reports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::client::GatewayClient;
use crate::conformance::{self, Fixtures};

/// `hutong conformance …`.
#[derive(Debug, Subcommand)]
pub enum ConformanceCmd {
    /// Run the cases against a target. Exits 0 when it conforms, 1 when a case fails (or a
    /// listed deviation passes), 2 when the suite cannot run.
    Run {
        /// Base URL of the implementation (overrides the profile's `gateway`).
        #[arg(long, value_name = "URL")]
        target: Option<String>,
        /// The client profile the suite calls as (see `hutong client --as`).
        #[arg(long, value_name = "FILE")]
        client: PathBuf,
        /// Persons the target holds, and codes only it can make (TOML).
        #[arg(long, value_name = "FILE")]
        fixtures: PathBuf,
        /// The cases' directory.
        #[arg(long, default_value = "conformance/cases", value_name = "DIR")]
        cases: PathBuf,
        /// Run only these cases (repeatable).
        #[arg(long = "case", value_name = "ID")]
        only: Vec<String>,
        /// The target's known deviations.
        #[arg(long, value_name = "FILE")]
        expectations: Option<PathBuf>,
        /// Write report.json and junit.xml here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

pub(super) fn run(cmd: &ConformanceCmd) -> anyhow::Result<ExitCode> {
    let ConformanceCmd::Run {
        target,
        client,
        fixtures,
        cases,
        only,
        expectations,
        out,
    } = cmd;
    let mut all = conformance::load_dir(cases)?;
    if !only.is_empty() {
        all.retain(|c| only.contains(&c.id));
        if all.is_empty() {
            say!("no case with id {}", only.join(", "));
            return Ok(ExitCode::from(2));
        }
    }
    let deviations = match expectations {
        Some(p) => conformance::load_expectations(p).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let fixtures = Fixtures::load(fixtures).map_err(anyhow::Error::msg)?;
    let mut c = GatewayClient::from_profile_file(client)?;
    if let Some(t) = target {
        c.set_base(t);
    }
    let target = target.clone().unwrap_or_else(|| "(profile)".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let ctx = match conformance::setup(&c, &fixtures).await {
            Ok(ctx) => ctx,
            Err(e) => return Err(e),
        };
        Ok(conformance::run_all(&c, &target, &all, &ctx, &deviations).await)
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            say!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    say_raw!("{}", report.summary());
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        std::fs::write(dir.join("junit.xml"), report.junit())?;
        say!("reports in {}", dir.display());
    }
    Ok(if report.conforms() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
