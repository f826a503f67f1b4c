//! `hutong code issue | verify | render`: PHIC1 national codes from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;

use crate::code::{
    self, Claims, CodeId, CodeUrl, Colour, FixedClock, IssuerKey, SystemClock, Verifier,
    VerifierConfig,
};
use crate::crypto::{SigningKey, VerifyingKey};
use crate::national::time::DateTime;
use crate::render::{self, CodeView, MaskedName, StatusColour};
use crate::standard::{ReturnCode, Standard};
use crate::trust::{IssuerId, Kid, TrustAnchors, TrustRegistry, verify_trust_list};

/// `hutong code …`.
#[derive(Debug, clap::Subcommand)]
pub enum CodeCmd {
    /// Issue a PHIC1 national code: print the token, or its URL form with --url-host.
    ///
    /// Example: hutong code issue --key issuer.key.pem --iss 33000001 --kid k1 --col 00
    Issue(IssueArgs),
    /// Verify a PHIC1 token or code URL offline against a signed trust list. Prints the
    /// verdict, colour, issuer and times. Exit status: 0 valid; 31 unparseable (3001),
    /// 32 expired (3002), 33 issuer or key not trusted (3003), 34 bad or revoked
    /// signature (3004).
    ///
    /// Example: hutong code issue … | hutong code verify - --trust-list tl.json --anchor anchor.pub.pem
    Verify(VerifyArgs),
    /// Draw the code page of GB/T 38961 (QR in the status colour, masked name, update
    /// time, issuing region) as PNG or SVG. The colour and time are read from the token.
    Render(RenderArgs),
}

/// Arguments of `hutong code issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The issuer's private key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// Issuer id: 6-digit GB/T 2260 region and a 2-digit sequence, e.g. 33000001.
    #[arg(long)]
    pub iss: String,
    /// The key's id in the trust list.
    #[arg(long)]
    pub kid: String,
    /// Colour: 00 green, 01 yellow, 10 red, 20 unknown, 90 grey or other.
    #[arg(long, default_value = "00")]
    pub col: String,
    /// Lifetime in seconds (at most 86400; the profile proposes at most 300).
    #[arg(long, default_value_t = 300)]
    pub ttl: i64,
    /// Issue time (Unix seconds, `yyyy-MM-dd HH:mm:ss` or `yyyy-MM-dd`, Beijing). Default: now.
    #[arg(long, value_parser = super::parse_at)]
    pub iat: Option<i64>,
    /// Code id, 32 lowercase hex. Default: random.
    #[arg(long)]
    pub cid: Option<String>,
    /// National code id (一体化平台), 32 lowercase hex.
    #[arg(long)]
    pub nc: Option<String>,
    /// Print the URL form `https://HOST/phic/c?v=1&cid=…&iss=…&pc=TOKEN` instead.
    #[arg(long)]
    pub url_host: Option<String>,
}

/// Where verification reads the trust list from.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The signed trust list (from `hutong keys trust-list`).
    #[arg(long)]
    pub trust_list: PathBuf,
    /// The trust anchor's public key (PEM or SEC1 hex file).
    #[arg(long)]
    pub anchor: PathBuf,
    /// The anchor's key id.
    #[arg(long, default_value = "anchor-1")]
    pub anchor_kid: String,
}

/// Arguments of `hutong code verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The token or URL, or - to read it from standard input.
    pub content: String,
    /// The trust list.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The validation clock (Unix seconds, `yyyy-MM-dd HH:mm:ss` or `yyyy-MM-dd`, Beijing).
    #[arg(long, value_parser = super::parse_at)]
    pub at: Option<i64>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Image formats of `hutong code render`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ImageFormat {
    /// PNG (needs a CJK font; see --font).
    Png,
    /// SVG (text drawn by the viewer's fonts).
    Svg,
}

/// Arguments of `hutong code render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The token or URL, or - to read it from standard input.
    pub content: String,
    /// The holder's name; only its masked form (张*) is drawn. `-` reads it from standard
    /// input (a name on the command line is in the process list and the shell history).
    #[arg(long)]
    pub name: String,
    /// png or svg.
    #[arg(long, value_enum, default_value = "png")]
    pub format: ImageFormat,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// A TrueType/OpenType font with CJK glyphs for PNG (default: a search of the usual
    /// Debian paths, e.g. fonts-wqy-microhei).
    #[arg(long)]
    pub font: Option<PathBuf>,
}

pub(super) fn run(standard: &Standard, cmd: &CodeCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CodeCmd::Issue(a) => issue(a),
        CodeCmd::Verify(a) => verify(standard, a),
        CodeCmd::Render(a) => render_cmd(standard, a),
    }
}

/// The issuer key in the PEM file `key`, as issuer `iss` under key id `kid`.
pub(super) fn load_issuer(key: &Path, iss: &str, kid: &str) -> anyhow::Result<IssuerKey> {
    let pem =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    Ok(IssuerKey::new(
        IssuerId::parse(iss)?,
        Kid::parse(kid)?,
        SigningKey::from_pem(&pem)?,
    ))
}

fn issue(a: &IssueArgs) -> anyhow::Result<ExitCode> {
    let key = load_issuer(&a.key, &a.iss, &a.kid)?;
    let col = Colour::parse(&a.col)
        .with_context(|| format!("colour `{}` is not 00, 01, 10, 20 or 90", a.col))?;
    let cid = match &a.cid {
        Some(c) => CodeId::parse(c).context("--cid must be 32 lowercase hex digits")?,
        None => CodeId::random()?,
    };
    let nc = match &a.nc {
        Some(c) => Some(CodeId::parse(c).context("--nc must be 32 lowercase hex digits")?),
        None => None,
    };
    let iat = a.iat.unwrap_or_else(now);
    let token = code::issue(
        &key,
        &Claims {
            cid,
            col,
            iat,
            exp: iat
                .checked_add(a.ttl)
                .context("--iat plus --ttl is past the end of time")?,
            nc,
        },
    )?;
    match &a.url_host {
        Some(host) => say!("{}", CodeUrl::for_token(host, &token)?.to_url()),
        None => say!("{token}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the trust registry from a signed trust list and its anchor.
pub(crate) fn load_registry(t: &TrustArgs) -> anyhow::Result<TrustRegistry> {
    let wire = std::fs::read(&t.trust_list)
        .with_context(|| format!("cannot read {}", t.trust_list.display()))?;
    let anchor_text = std::fs::read_to_string(&t.anchor)
        .with_context(|| format!("cannot read {}", t.anchor.display()))?;
    let anchor = if anchor_text.contains("-----BEGIN") {
        VerifyingKey::from_pem(&anchor_text)?
    } else {
        VerifyingKey::from_hex(anchor_text.trim())?
    };
    let list = verify_trust_list(
        &wire,
        &TrustAnchors::new().with(t.anchor_kid.clone(), anchor),
    )
    .with_context(|| format!("trust list {}", t.trust_list.display()))?;
    Ok(TrustRegistry::new(list)?)
}

/// The code content: the argument itself, or standard input for `-`.
fn read_content(arg: &str) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    // One byte over the limit, so the verifier sees (and names) an oversized content.
    let raw = super::read_head(arg, code::MAX_CONTENT_BYTES)?;
    let text = String::from_utf8(raw).context("the code content is not UTF-8")?;
    Ok(text.trim().to_owned())
}

fn verify(standard: &Standard, a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let registry = Arc::new(load_registry(&a.trust)?);
    let clock: Arc<dyn code::Clock> = match a.at {
        Some(t) => Arc::new(FixedClock::new(t)),
        None => Arc::new(SystemClock),
    };
    let verifier = Verifier::new(registry, clock, VerifierConfig::default());
    let content = read_content(&a.content)?;
    match verifier.verify_content(&content) {
        Ok(v) => {
            let c = &v.claims;
            let region = standard
                .divisions
                .full_name(v.region.as_str())
                .unwrap_or_default();
            let status = StatusColour::from_code(c.col.as_str());
            if a.json {
                say!(
                    "{}",
                    json!({
                        "valid": true, "code": "0", "colour": c.col.as_str(), "status": status.word(),
                        "issuer": c.iss.as_str(), "issuerName": v.issuer_name, "issuerRegion": v.region.as_str(),
                        "regionName": region, "kid": c.kid.as_str(), "cid": c.cid.as_str(),
                        "nc": c.nc.as_ref().map(CodeId::as_str), "iat": c.iat, "exp": c.exp,
                    })
                );
            } else {
                say!("VALID   PHIC1 national code");
                say!("colour  {} {}", c.col.as_str(), status.word());
                say!(
                    "issuer  {} {} (region {} {})",
                    c.iss.as_str(),
                    v.issuer_name,
                    v.region.as_str(),
                    region
                );
                say!("key     {}", c.kid.as_str());
                say!("code id {}", c.cid.as_str());
                if let Some(nc) = &c.nc {
                    say!("national code id {}", nc.as_str());
                }
                say!("issued  {} (Beijing)", DateTime::from_unix(c.iat));
                say!("expires {} (Beijing)", DateTime::from_unix(c.exp));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let rc = e.return_code();
            let info = standard.return_code(rc);
            if a.json {
                say!(
                    "{}",
                    json!({"valid": false, "code": rc.as_str(), "msg": info.name, "reason": e.to_string()})
                );
            } else {
                say!("INVALID {} {} ({}): {e}", rc, info.name, info.name_en);
            }
            Ok(ExitCode::from(verify_exit(rc)))
        }
    }
}

/// Exit status of `code verify` for a failure: 30 + the last digit of 3001..3004.
fn verify_exit(rc: ReturnCode) -> u8 {
    match rc {
        ReturnCode::CodeInvalid => 31,
        ReturnCode::CodeExpired => 32,
        ReturnCode::CodeIssuerUntrusted => 33,
        ReturnCode::CodeSignatureInvalid => 34,
        other => other.exit_status(),
    }
}

fn render_cmd(standard: &Standard, a: &RenderArgs) -> anyhow::Result<ExitCode> {
    if a.content == "-" && a.name == "-" {
        anyhow::bail!("only one of the content and --name can come from standard input");
    }
    let name = if a.name == "-" {
        let raw = super::read_input("-", 256)?;
        String::from_utf8(raw)
            .context("the name is not UTF-8")?
            .trim()
            .to_owned()
    } else {
        a.name.clone()
    };
    let content = read_content(&a.content)?;
    // The page shows what the token says; rendering is not verification.
    let token = match CodeUrl::parse(&content) {
        Ok(u) => u.pc.context("the URL carries no PHIC1 token (pc=)")?,
        Err(_) => content.clone(),
    };
    let parsed =
        code::token::parse(&token).map_err(|e| anyhow::anyhow!("{} {e}", e.return_code()))?;
    let c = &parsed.claims;
    let region = c.iss.region();
    let region_name = standard
        .divisions
        .full_name(region.as_str())
        .unwrap_or_else(|| region.as_str().to_owned());
    let status = StatusColour::from_code(c.col.as_str());
    let view = CodeView {
        content: content.clone(),
        colour: c.col.as_str().to_owned(),
        masked_name: MaskedName::mask(&name),
        updated_at: DateTime::from_unix(c.iat).to_string(),
        region_name,
        status_word: status.word().to_owned(),
    };
    let bytes = match a.format {
        ImageFormat::Svg => render::render_svg(&view)?.into_bytes(),
        ImageFormat::Png => match &a.font {
            Some(f) => render::Renderer::new(&render::FontConfig {
                font_path: Some(f.clone()),
                font_index: 0,
            })?
            .render_png(&view)?,
            None => render::render_png(&view)?,
        },
    };
    super::write_public(&a.out, &bytes)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    say!(
        "wrote {} ({} {}, {})",
        a.out.display(),
        c.col.as_str(),
        status.word(),
        view.masked_name.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
