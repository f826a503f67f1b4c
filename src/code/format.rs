//! Recognising code content: which format a scanned string is, and what it names.
//!
//! `verifyCode` receives raw content from a scanner. Each [`CodeFormat`] says whether the
//! content is one of its codes and pulls out the routing facts ([`Recognised`]). PHIC1
//! (token and URL forms) is built in; regional formats (DESIGN.md §6, the patterns in a
//! dialect file) implement the same trait.

use super::token::{self, PREFIX};
use super::{CodeError, CodeUrl, MAX_CONTENT_BYTES};

/// Name of the built-in PHIC1 format.
pub const PHIC1_FORMAT: &str = "phic1";

/// What a format found in a piece of content. Everything here is unverified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recognised {
    /// Name of the format that recognised it ([`CodeFormat::name`]).
    pub format: String,
    /// Issuer the content names (PHIC1 `iss`, or a region's issuer), for routing only.
    pub issuer_hint: Option<String>,
    /// A self-contained signed token that can be verified offline, if any.
    pub token: Option<String>,
    /// The code id the issuer resolves online (PHIC1 `cid`, or a region's opaque id).
    pub code_id: Option<String>,
    /// National (一体化平台) code id, if the content carries one.
    pub national_code_id: Option<String>,
    /// Host of a URL form, lowercase.
    pub host: Option<String>,
}

/// A family of code contents: PHIC1, or one region's local codes.
pub trait CodeFormat: Send + Sync {
    /// Short stable name, e.g. `phic1` or a dialect id.
    fn name(&self) -> &str;

    /// `Some` if `content` is one of this format's codes. Must not panic on any input;
    /// callers bound the length to [`MAX_CONTENT_BYTES`] first.
    fn recognise(&self, content: &str) -> Option<Recognised>;
}

/// The PHIC1 format: bare tokens (`PHIC1.…`) and PHIC1 URLs (`https://…/phic/c?…`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Phic1Format;

impl CodeFormat for Phic1Format {
    fn name(&self) -> &str {
        PHIC1_FORMAT
    }

    fn recognise(&self, content: &str) -> Option<Recognised> {
        if content.len() > MAX_CONTENT_BYTES {
            return None;
        }
        if content.starts_with(PREFIX) {
            // A token that does not parse is still PHIC1: verification will say 3001.
            let claims = token::parse(content).ok().map(|p| p.claims);
            return Some(Recognised {
                format: PHIC1_FORMAT.to_owned(),
                issuer_hint: claims.as_ref().map(|c| c.iss.to_string()),
                token: Some(content.to_owned()),
                code_id: claims.as_ref().map(|c| c.cid.to_string()),
                national_code_id: claims.and_then(|c| c.nc).map(|n| n.to_string()),
                host: None,
            });
        }
        let url = CodeUrl::parse(content).ok()?;
        Some(Recognised {
            format: PHIC1_FORMAT.to_owned(),
            issuer_hint: Some(url.iss.to_string()),
            token: url.pc,
            code_id: Some(url.cid.to_string()),
            national_code_id: url.nc.map(|n| n.to_string()),
            host: Some(url.host),
        })
    }
}

/// Whether a recognised PHIC1 URL's own (unsigned) `iss`, `cid` and `nc` name the code its
/// token does, when it carries one that parses: the ids the gateway links a person under,
/// or files a visit by, must be the signed ones. (A verification checks this with the
/// signature; this is for what the gateway records after a region answered. It parses the
/// token, so it is not asked on every request.)
pub fn ids_match_token(rec: &Recognised) -> bool {
    let Some(c) = rec
        .token
        .as_deref()
        .and_then(|t| token::parse(t).ok())
        .map(|p| p.claims)
    else {
        return true;
    };
    rec.issuer_hint.as_deref() == Some(c.iss.as_str())
        && rec.code_id.as_deref() == Some(c.cid.as_str())
        && (rec.national_code_id.is_none()
            || rec.national_code_id.as_deref() == c.nc.as_ref().map(|n| n.as_str()))
}

/// Try each format in order and return the first match. Content over
/// [`MAX_CONTENT_BYTES`] is refused before any format sees it; content no format claims
/// is [`CodeError::Malformed`] (3001).
pub fn recognise_any(formats: &[&dyn CodeFormat], content: &str) -> Result<Recognised, CodeError> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(CodeError::TooLong(content.len()));
    }
    formats
        .iter()
        .find_map(|f| f.recognise(content))
        .ok_or(CodeError::Malformed("unrecognised code content"))
}
