//! `hutong validate <service> <file|->`.

use std::process::ExitCode;

use serde_json::json;

use crate::national::validate::{self, Context, MAX_MESSAGE_BYTES};
use crate::standard::{Direction, ReturnCode, ServiceName, Standard};

/// Arguments of `hutong validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service: declareHealth, declareTrip, queryHealthInfo, applyCodeAccess,
    /// generateCode, verifyCode or correctHealthInfo.
    pub service: ServiceName,
    /// The JSON business content, or - for standard input.
    pub file: String,
    /// Validate a response instead of a request.
    #[arg(long)]
    pub response: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The validation clock: Unix seconds, `yyyy-MM-dd HH:mm:ss` or `yyyy-MM-dd` (Beijing
    /// time). Birth dates after it are refused. Default: now.
    #[arg(long, value_parser = super::parse_at, value_name = "TIME")]
    pub at: Option<i64>,
}

pub(super) fn run(standard: &Standard, a: &Args) -> anyhow::Result<ExitCode> {
    let bytes = super::read_head(&a.file, MAX_MESSAGE_BYTES)?;
    let dir = if a.response {
        Direction::Response
    } else {
        Direction::Request
    };
    let cx =
        a.at.map_or_else(Context::now, |now_unix| Context { now_unix });
    let report = match validate::validate_bytes(standard, a.service, dir, &bytes, &cx) {
        Ok(_) => validate::Report::default(),
        Err(r) => r,
    };
    let code = report.return_code();
    let side = if a.response { "response" } else { "request" };
    if a.json {
        let info = standard.return_code(code);
        let out = json!({
            "service": a.service.as_str(),
            "direction": side,
            "valid": report.is_valid(),
            "code": code.as_str(),
            "msg": info.name,
            "violations": report.violations,
            "truncated": report.truncated,
        });
        say!("{}", serde_json::to_string_pretty(&out)?);
    } else if report.is_valid() {
        say!("{} {side}: valid", a.service);
    } else {
        let info = standard.return_code(code);
        say!(
            "{} {side}: invalid, {} {} ({}), {} problem(s){}",
            a.service,
            code,
            info.name,
            info.name_en,
            report.violations.len(),
            if report.truncated {
                " (more not shown)"
            } else {
                ""
            }
        );
        let width = report
            .violations
            .iter()
            .map(|v| display_path(&v.path).len())
            .max()
            .unwrap_or(0);
        for v in &report.violations {
            say!(
                "  {}  {:width$}  {}",
                v.code,
                display_path(&v.path),
                v.message
            );
        }
    }
    Ok(if code == ReturnCode::Success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(code.exit_status())
    })
}

fn display_path(p: &str) -> &str {
    if p.is_empty() { "(message)" } else { p }
}
