//! `hutong translate --from <dialect|national> --to <dialect|national> --service <name>
//! [--direction request|response] <file|->`: onboarding and debugging of dialects. Reads
//! and writes each dialect's wire form (JSON, form-urlencoded, XML); prints the translated
//! message, then the loss report. It does not sign: signatures need credentials and a
//! clock, which belong to the gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::standard::{Direction, ServiceName, Standard};
use crate::translate::{self, Dialect, codec};

/// The most a message to translate may weigh.
const MAX_INPUT_BYTES: usize = 1 << 20;

/// Arguments of `hutong translate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `national`, or a dialect id (the file stem under --regions: zhejiang, hubei, …).
    #[arg(long)]
    pub from: String,
    /// `national`, or a dialect id.
    #[arg(long)]
    pub to: String,
    /// The national service.
    #[arg(long)]
    pub service: ServiceName,
    /// request or response.
    #[arg(long, default_value = "request", value_parser = ["request", "response"])]
    pub direction: String,
    /// The dialect directory.
    #[arg(long, default_value = "config/regions", value_name = "DIR")]
    pub regions: PathBuf,
    /// The message: national business JSON (a response as `{code, msg, bizContent}`), or
    /// the dialect's wire form; - for standard input.
    pub file: String,
}

pub(super) fn run(standard: &Standard, a: &Args) -> anyhow::Result<ExitCode> {
    let dialects = Dialect::load_dir(&a.regions, standard).map_err(|e| anyhow::anyhow!("{e}"))?;
    let find = |id: &str| {
        dialects
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| anyhow::anyhow!("no dialect `{id}` in {}", a.regions.display()))
    };
    let dir = if a.direction == "response" {
        Direction::Response
    } else {
        Direction::Request
    };
    let codec_of = |d: &Dialect| match dir {
        Direction::Request => d.codec,
        Direction::Response => d.response_codec,
    };
    let input = super::read_input(&a.file, MAX_INPUT_BYTES)?;
    // Through the national model: dialect → national, then national → dialect.
    let (national, mut losses) = if a.from == "national" {
        (serde_json::from_slice(&input)?, Vec::new())
    } else {
        let d = find(&a.from)?;
        let v = codec::decode(codec_of(d), &input)?;
        let t = translate::to_national(d, a.service, dir, &v)?;
        (t.body, t.losses.0)
    };
    let out = if a.to == "national" {
        serde_json::to_string_pretty(&national)?
    } else {
        let d = find(&a.to)?;
        let t = translate::to_dialect(d, a.service, dir, &national)?;
        losses.extend(t.losses.0);
        match codec_of(d) {
            translate::Codec::Json => serde_json::to_string_pretty(&t.body)?,
            c => String::from_utf8_lossy(&codec::encode(c, &t.body)?).into_owned(),
        }
    };
    say!("{out}");
    if losses.is_empty() {
        say!("# loss report: none");
    } else {
        say!("# loss report: {} field(s)", losses.len());
        for l in &losses {
            say!(
                "#   {:<9} national={} dialect={}: {}",
                format!("{:?}", l.kind).to_lowercase(),
                l.national.as_deref().unwrap_or("-"),
                l.dialect.as_deref().unwrap_or("-"),
                l.detail
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
