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
        /// A second registered client (another verifier), for the cases that check that a
        /// ticket or consent serves only the client it was given to.
        #[arg(long, value_name = "FILE")]
        client2: Option<PathBuf>,
        /// Persons the target holds, and codes only it can make (TOML).
        #[arg(long, value_name = "FILE")]
        fixtures: PathBuf,
        /// The cases' directory.
        #[arg(long, default_value = "conformance/cases", value_name = "DIR")]
        cases: PathBuf,
        /// Run only these cases (repeatable).
        #[arg(long = "case", value_name = "ID")]
        only: Vec<String>,
        /// The not-applicable cells of the coverage matrix.
        #[arg(long, default_value = "conformance/coverage.toml", value_name = "FILE")]
        coverage: PathBuf,
        /// The target's known deviations.
        #[arg(long, value_name = "FILE")]
        expectations: Option<PathBuf>,
        /// Write report.json, junit.xml and report.html here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// After the cases, the load profile: this many verifyCode/s for --load-secs, then
        /// ten times as many for as long.
        #[arg(long, value_name = "REQ_PER_S", value_parser = clap::value_parser!(u32).range(1..))]
        load: Option<u32>,
        /// Seconds of each load phase.
        #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
        load_secs: u32,
        /// With --out: sign a conformance certificate (certificate.json) with this SM2
        /// private key (PEM). Not with --case: a certificate is of a whole run.
        #[arg(long, value_name = "FILE", requires = "out", conflicts_with = "only")]
        sign_key: Option<PathBuf>,
    },
    /// Check the offline code vectors (PHIC1 tokens and regional code contents, with the
    /// verdict each must get) against this build's verifier. Exits 0 when all agree.
    Vectors {
        /// The vectors' directory.
        #[arg(long, default_value = "conformance/vectors", value_name = "DIR")]
        dir: PathBuf,
        /// Where the dialect files are (regional contents).
        #[arg(long, default_value = "config/regions", value_name = "DIR")]
        regions: PathBuf,
    },
    /// Check a dialect file offline: it loads with no problem, and its golden pairs
    /// (`--fixtures DIR/cases.toml`) translate exactly both ways. Exits 0 when it holds.
    ///
    /// Example: hutong conformance dialect config/regions/beijing.toml --fixtures
    /// tests/fixtures/dialects/beijing
    Dialect {
        /// The dialect file.
        file: PathBuf,
        /// Its golden pairs' directory.
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
    },
    /// Check a conformance certificate's SM2 signature and, with --report, that it
    /// certifies that report. Exits 0 when it holds, 1 when not.
    VerifyCert {
        /// certificate.json.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The signer's public key (PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// report.json, to check the certified digest.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

pub(super) fn run(cmd: &ConformanceCmd) -> anyhow::Result<ExitCode> {
    let (target, client, fixtures, cases, only, expectations, out, sign_key) = match cmd {
        ConformanceCmd::VerifyCert { cert, key, report } => {
            return verify_cert(cert, key, report.as_deref());
        }
        ConformanceCmd::Vectors { dir, regions } => {
            let dialects = crate::translate::Dialect::load_dir(
                regions,
                &crate::standard::Standard::embedded(),
            )?;
            let results =
                conformance::vectors::check(dir, &dialects).map_err(anyhow::Error::msg)?;
            let bad = results.iter().filter(|(_, r)| r.is_err()).count();
            for (id, r) in &results {
                match r {
                    Ok(()) => say!("ok   {id}"),
                    Err(e) => say!("FAIL {id}: {e}"),
                }
            }
            say!("{} vector(s), {bad} failed", results.len());
            return Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        ConformanceCmd::Dialect { file, fixtures } => {
            return check_dialect(file, fixtures.as_deref());
        }
        ConformanceCmd::Run {
            target,
            client,
            client2,
            fixtures,
            cases,
            only,
            coverage,
            expectations,
            out,
            sign_key,
            load,
            load_secs,
        } => (
            target,
            client,
            fixtures,
            cases,
            only,
            expectations,
            out,
            (sign_key, coverage, (*load, *load_secs, client2)),
        ),
    };
    let (sign_key, coverage, (load, load_secs, client2)) = sign_key;
    let rules = conformance::coverage::load(coverage).map_err(anyhow::Error::msg)?;
    let mut all = conformance::load_dir(cases)?;
    // No case run is no verdict: "conforms" of nothing would sign a certificate.
    if all.is_empty() {
        say!("no conformance case in {}", cases.display());
        return Ok(ExitCode::from(2));
    }
    if !only.is_empty() {
        let unknown: Vec<&str> = only
            .iter()
            .filter(|id| !all.iter().any(|c| &c.id == *id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            say!("no case with id {}", unknown.join(", "));
            return Ok(ExitCode::from(2));
        }
        all.retain(|c| only.contains(&c.id));
    }
    // A case that sends as a second client cannot run without one: a set-up problem.
    let needs_second: Vec<&str> = all
        .iter()
        .filter(|c| c.probe.second_client)
        .map(|c| c.id.as_str())
        .collect();
    if client2.is_none() && !needs_second.is_empty() {
        say!(
            "give --client2 (a second registered client): {} send as one",
            needs_second.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    // The coverage of the cases that run, not of the whole directory.
    let matrix = conformance::coverage::Matrix::build(&all, &rules);
    let deviations = match expectations {
        Some(p) => conformance::load_expectations(p).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let fixtures = Fixtures::load(fixtures).map_err(anyhow::Error::msg)?;
    let mut c = GatewayClient::from_profile_file(client)?;
    if let Some(t) = target {
        c.set_base(t)?;
    }
    let second = match client2 {
        Some(p) => {
            let mut c2 = GatewayClient::from_profile_file(p)?;
            if let Some(t) = target {
                c2.set_base(t)?;
            }
            Some(c2)
        }
        None => None,
    };
    // What is tested is where the client sends: --target, or the profile's gateway.
    let target = c.base().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let ctx = match conformance::setup(&c, &fixtures).await {
            Ok(ctx) => ctx,
            Err(e) => return Err(e),
        };
        let report =
            conformance::run_all(&c, second.as_ref(), &target, &all, &ctx, &deviations).await;
        let load = match load {
            Some(rate) => {
                let biz = conformance::run::fill(
                    &serde_json::json!({"codeContent": "{{code.green}}",
                        "verifier": {"orgName": "conformance load", "deviceId": "CONF-LOAD"}}),
                    &ctx,
                )
                .map_err(conformance::run::SetupError::new)?;
                Some(conformance::load::run(&c, &biz, rate, load_secs).await)
            }
            None => None,
        };
        Ok((report, load))
    });
    let report = match report {
        Ok((mut r, load)) => {
            r.load = load;
            r
        }
        // An answer of the target's that breaks the standard at set-up is its failure
        // (exit 1), not the suite's (exit 2).
        Err(e) if e.nonconforming => {
            say!("{e}");
            say!("DOES NOT CONFORM: the target's answer at set-up breaks the standard");
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            say!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    say_raw!("{}", matrix.text());
    if let Some(l) = &report.load {
        say_raw!("{}", l.text());
    }
    say_raw!("{}", report.summary());
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let json = serde_json::to_string_pretty(&report)?;
        // Whole or not at all, and never through a name planted in the directory.
        super::write_public(&dir.join("report.json"), json.as_bytes())?;
        super::write_public(&dir.join("junit.xml"), report.junit().as_bytes())?;
        super::write_public(&dir.join("report.html"), report.html(&matrix).as_bytes())?;
        if let Some(l) = &report.load {
            super::write_public(
                &dir.join("load.json"),
                serde_json::to_string_pretty(l)?.as_bytes(),
            )?;
        }
        if let Some(k) = sign_key {
            let pem = std::fs::read_to_string(k).with_context(|| format!("{}", k.display()))?;
            let key = crate::crypto::SigningKey::from_pem(&pem)?;
            let now = i64::try_from(crate::auth::now_unix()).unwrap_or_default();
            let c = conformance::cert::certify(&report, json.as_bytes(), &key, now)?;
            super::write_public(
                &dir.join("certificate.json"),
                conformance::cert::to_json(&c).as_bytes(),
            )?;
        }
        say!("reports in {}", dir.display());
    }
    Ok(if report.conforms() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_cert(
    cert: &std::path::Path,
    key: &std::path::Path,
    report: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read(cert).with_context(|| format!("{}", cert.display()))?;
    let pem = std::fs::read_to_string(key).with_context(|| format!("{}", key.display()))?;
    let key = crate::crypto::VerifyingKey::from_pem(&pem)?;
    let report = match report {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    match conformance::cert::verify(&text, &key, report.as_deref()) {
        Ok(c) => {
            say!(
                "VALID certificate: {} {} ({}/{} cases, suite {}, {}), report digest {}",
                c.target,
                if c.conforms {
                    "CONFORMS"
                } else {
                    "DOES NOT CONFORM"
                },
                c.passed,
                c.cases,
                c.suite_version,
                c.standard,
                c.result_digest
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            say!("INVALID certificate: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn check_dialect(
    file: &std::path::Path,
    fixtures: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let id = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("dialect")
        .to_owned();
    let d = match crate::translate::Dialect::from_toml(
        &id,
        &file.display().to_string(),
        &text,
        &crate::standard::Standard::embedded(),
    ) {
        Ok(d) => d,
        Err(e) => {
            say!("INVALID dialect {id}:\n{e}");
            return Ok(ExitCode::from(1));
        }
    };
    say!(
        "dialect {id} loads: region {}, {} service(s){}",
        d.region,
        d.services.len(),
        if d.callback.is_some() {
            ", callbacks"
        } else {
            ""
        }
    );
    let Some(dir) = fixtures else {
        return Ok(ExitCode::SUCCESS);
    };
    let cases = conformance::dialect::GoldenCases::load(dir).map_err(anyhow::Error::msg)?;
    let results = conformance::dialect::check_all(&d, dir, &cases);
    let mut bad = 0;
    for (name, r) in &results {
        match r {
            Ok(()) => say!("ok   {name}"),
            Err(e) => {
                bad += 1;
                say!("FAIL {name}: {e}");
            }
        }
    }
    say!("{} golden pair(s), {bad} failed", results.len());
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
