//! The `hutong` command line: argument definitions (clap) and the runners behind them.
//! `main.rs` parses, then calls [`run`]; each runner returns the process exit status.

/// `println!` that ignores a closed pipe (`hutong … | head`) instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!` that ignores a closed pipe.
macro_rules! say_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

mod audit;
mod bench;
mod bench_audit;
mod bench_chart;
mod bench_floor;
mod bench_parts;
mod client;
mod code;
mod conformance;
mod keys;
mod retention;
pub mod serve;
mod show;
mod sim;
mod translate;
mod validate;

#[cfg(test)]
pub(crate) use keys::temporary_for;
pub(crate) use keys::{write_public, write_secret, write_secret_with};

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::national::time::{Date, DateTime};
use crate::standard::{Source, Standard};

/// hutong: the interoperability gateway for the Personal Health Information Code
/// (GB/T 38961/38962/38963-2020).
#[derive(Debug, Parser)]
#[command(name = "hutong", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Load the standard from this directory instead of the copy built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    pub standard: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check one service's business content (the JSON inside `bizContent`) against the
    /// standard. Exits 0 when valid, 1 when not; the report names every field at fault.
    ///
    /// Example: hutong validate verifyCode request.json
    Validate(validate::Args),
    /// Look into the standard: data elements, code tables, services, return codes.
    #[command(subcommand)]
    Standard(StandardCmd),
    /// PHIC1 national codes: issue, verify offline, render the code page.
    #[command(subcommand)]
    Code(code::CodeCmd),
    /// SM2 keys and signed trust lists.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// TLS certificates for development and tests.
    #[command(subcommand)]
    Certs(keys::CertsCmd),
    /// The audit log: verify its hash chain, print a holder's receipt.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Retention: purge audit records, idempotency records, closed correction tickets, the
    /// audit journal's discarded tail, and link entries and callback records, past their
    /// period.
    #[command(subcommand)]
    Retention(retention::RetentionCmd),
    /// Run a simulated region back-end with a synthetic population: the national envelope
    /// (--national), or a regional dialect's own API (--region DIALECT).
    ///
    /// Examples: hutong sim --national --clients config/sim-national.example.toml;
    /// hutong sim --region jiangsu
    Sim(Box<sim::Args>),
    /// Run the gateway: the national endpoints over TLS, and the admin listener.
    ///
    /// With the default config/hutong.toml it starts on a fresh machine: embedded store,
    /// development certificates and keys generated under data/ on first start.
    Serve(serve::ServeArgs),
    /// Access tokens for registered clients.
    #[command(subcommand)]
    Token(serve::TokenCmd),
    /// Call a gateway as a registered client: build, encrypt and sign the request, send it
    /// over TLS, verify and decrypt the answer, print it.
    ///
    /// Example: hutong client verifyCode --body request.json --as data/clients/A3300010001.toml
    Client(client::ClientArgs),
    /// The conformance suite of GB/T 38963: run its cases against an implementation of the
    /// national envelope.
    ///
    /// Example: hutong conformance run --target https://codes.example.cn --client
    /// my-client.toml --client2 my-second-client.toml --fixtures my-target.fixtures.toml
    /// --out reports/ (conformance/README.md: against the reference simulator)
    #[command(subcommand)]
    Conformance(conformance::ConformanceCmd),
    /// Translate one message between the national model and a regional dialect (or
    /// between two dialects), and print the loss report.
    ///
    /// Example: hutong translate --from national --to jiangsu --service verifyCode req.json
    Translate(translate::Args),
    /// Development (benchmarks): the in-process parts of benches/bench.sh.
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCmd),
}

/// `hutong standard …`.
#[derive(Debug, Subcommand)]
pub enum StandardCmd {
    /// Show an entry, or list all entries of a kind.
    ///
    /// Examples: `hutong standard show region 110105`, `hutong standard show element idNo`,
    /// `hutong standard show table colour`, `hutong standard show service verifyCode`,
    /// `hutong standard show code 1007`, `hutong standard show country CHN`.
    Show(show::Args),
    /// Load the standard and report every problem (useful with --standard DIR).
    Check,
    /// Print the OpenAPI 3.1 document of the national envelope endpoints, generated from
    /// the standard. With --check, compare it with a file instead and exit 1 if it differs.
    Openapi {
        /// Compare with this file instead of printing.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
}

/// Runs a parsed command line.
///
/// # Errors
/// Anything that stops the command before it can give its own verdict: an unreadable
/// input file, or a standard that does not load.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let standard = load_standard(cli.standard.as_ref())?;
    match cli.command {
        Command::Validate(a) => validate::run(&standard, &a),
        Command::Standard(StandardCmd::Show(a)) => show::run(&standard, &a),
        Command::Code(c) => code::run(&standard, &c),
        Command::Keys(k) => keys::run_keys(&k),
        Command::Certs(c) => keys::run_certs(&c),
        Command::Audit(a) => audit::run(&a),
        Command::Retention(r) => retention::run(&r),
        Command::Sim(a) => sim::run(&standard, &a),
        Command::Serve(a) => serve::run_serve(&a),
        Command::Token(t) => serve::run_token(&t),
        Command::Client(a) => client::run(&a),
        Command::Conformance(c) => conformance::run(&c),
        Command::Translate(a) => translate::run(&standard, &a),
        Command::Bench(b) => bench::run(&standard, &b),
        Command::Standard(StandardCmd::Check) => {
            say!(
                "{} {}: {} elements, {} tables, {} divisions (+{} historic), {} countries, {} services, {} return codes: OK",
                standard.profile.name,
                standard.profile.version,
                standard.elements.len(),
                standard.tables.len(),
                standard.divisions.current_len(),
                standard.divisions.historic_len(),
                standard.countries.len(),
                standard.services().len(),
                standard.return_codes().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Standard(StandardCmd::Openapi { check }) => {
            let doc = crate::standard::openapi::yaml(&standard);
            match check {
                None => {
                    say_raw!("{doc}");
                    Ok(ExitCode::SUCCESS)
                }
                Some(path) => {
                    let on_disk = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    if on_disk == doc {
                        say!("{} is up to date", path.display());
                        Ok(ExitCode::SUCCESS)
                    } else {
                        say!(
                            "{} differs from the standard; regenerate it with `hutong standard openapi > {}`",
                            path.display(),
                            path.display()
                        );
                        Ok(ExitCode::from(1))
                    }
                }
            }
        }
    }
}

fn load_standard(dir: Option<&PathBuf>) -> anyhow::Result<Arc<Standard>> {
    match dir {
        None => Ok(Standard::embedded()),
        Some(d) => Standard::load(&Source::Dir(d.clone()))
            .map(Arc::new)
            .map_err(|e| anyhow::anyhow!("{e}")),
    }
}

/// Reads a file, or standard input for `-`, refusing more than `limit` bytes.
pub(crate) fn read_input(path: &str, limit: usize) -> anyhow::Result<Vec<u8>> {
    let buf = read_head(path, limit)?;
    if buf.len() > limit {
        let what = if path == "-" { "standard input" } else { path };
        anyhow::bail!("{what} is over the limit of {limit} bytes");
    }
    Ok(buf)
}

/// Reads at most `limit + 1` bytes of a file, or of standard input for `-`: for commands
/// that report an oversized input themselves (`validate` answers 1002 for it).
pub(crate) fn read_head(path: &str, limit: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    if path == "-" {
        std::io::stdin().take(cap).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?
            .take(cap)
            .read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// Parses a validation-clock value: Unix seconds, `yyyy-MM-dd HH:mm:ss` or `yyyy-MM-dd`
/// (Beijing time).
///
/// Eight bare digits are refused: they are the standard's D8 date (`20261123`) far more
/// often than a time in 1970.
pub(crate) fn parse_at(s: &str) -> Result<i64, String> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{s}` looks like a yyyyMMdd date: write it yyyy-MM-dd (`{}-{}-{}`); Unix seconds of 1970 need a leading 0",
            &s[..4],
            &s[4..6],
            &s[6..]
        ));
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Some(dt) = DateTime::parse(s) {
        return Ok(dt.unix());
    }
    if let Some(d) = Date::parse(s) {
        return Ok(DateTime { date: d, secs: 0 }.unix());
    }
    Err(format!(
        "`{s}` is not Unix seconds, `yyyy-MM-dd HH:mm:ss` or `yyyy-MM-dd`"
    ))
}

#[cfg(test)]
mod tests;
