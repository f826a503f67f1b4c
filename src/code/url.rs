//! The PHIC1 URL form: `https://{host}/phic/c?v=1&cid=…&iss=…[&nc=…][&pc={token}]`
//! (profile §2.2(a)). Any phone camera opens it; a verifier that knows PHIC1 reads the
//! signed token from `pc` and checks it offline.
//!
//! `iss`, `cid` and `nc` in the query are unsigned hints for routing; only the token in
//! `pc` is authoritative, and [`super::Verifier::verify_content`] checks they agree.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::token::{self, PREFIX};
use super::{CodeError, CodeId, MAX_CONTENT_BYTES};
use crate::trust::IssuerId;

/// Path of the code URL.
pub const CODE_PATH: &str = "/phic/c";

/// Longest host (with port) accepted, characters.
const MAX_HOST_LEN: usize = 253;

/// Everything but RFC 3986 unreserved characters is escaped in query values. The token
/// alphabet (base64url and `.`) is unreserved, so tokens pass through unchanged.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed or to-be-built PHIC1 URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeUrl {
    /// Host, lowercase, with an optional `:port`.
    pub host: String,
    /// Issuer id (unsigned hint).
    pub iss: IssuerId,
    /// Code id (unsigned hint).
    pub cid: CodeId,
    /// National code id (unsigned hint).
    pub nc: Option<CodeId>,
    /// The PHIC1 token, when the URL carries one.
    pub pc: Option<String>,
}

/// Whether `host` (lowercase, with an optional port) can stand in a code URL.
pub fn valid_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && host.len() <= MAX_HOST_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    name_ok && port_ok
}

/// A query value, percent-decoded. A value without `%` decodes to itself, so it is copied
/// as it is: the token and the ids never need escapes, and the decoder's walk over a
/// 300-byte token was the largest part of a parse (callgrind, `PROFILE_SCENARIO=a`).
fn decode_value(raw: &str) -> Result<String, CodeError> {
    if !raw.as_bytes().contains(&b'%') {
        return Ok(raw.to_owned());
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| CodeError::Malformed("query encoding"))
}

impl CodeUrl {
    /// The URL form of `token`, served from `host`. `iss`, `cid` and `nc` are copied
    /// from the token (parsed, not verified). Errors if the host or token is malformed.
    pub fn for_token(host: &str, token: &str) -> Result<Self, CodeError> {
        let host = host.to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(CodeError::Malformed("host"));
        }
        let claims = token::parse(token)?.claims;
        Ok(CodeUrl {
            host,
            iss: claims.iss,
            cid: claims.cid,
            nc: claims.nc,
            pc: Some(token.to_owned()),
        })
    }

    /// The URL text.
    pub fn to_url(&self) -> String {
        let mut url = format!(
            "https://{}{CODE_PATH}?v=1&cid={}&iss={}",
            self.host, self.cid, self.iss
        );
        if let Some(nc) = &self.nc {
            url.push_str("&nc=");
            url.push_str(nc.as_str());
        }
        if let Some(pc) = &self.pc {
            url.push_str("&pc=");
            url.extend(utf8_percent_encode(pc, QUERY_VALUE));
        }
        url
    }

    /// Parse a PHIC1 URL. The scheme and host are case-insensitive, the path exact; a
    /// fragment is ignored, as are unknown query parameters; a repeated parameter is
    /// refused (no parameter pollution). Values are percent-decoded.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.len() > MAX_CONTENT_BYTES {
            return Err(CodeError::TooLong(s.len()));
        }
        let scheme = s.get(..8).ok_or(CodeError::Malformed("not a PHIC1 URL"))?;
        if !scheme.eq_ignore_ascii_case("https://") {
            return Err(CodeError::Malformed("not a PHIC1 URL"));
        }
        let rest = &s[8..];
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority_path, query) = rest
            .split_once('?')
            .ok_or(CodeError::Malformed("no query"))?;
        let slash = authority_path
            .find('/')
            .ok_or(CodeError::Malformed("no path"))?;
        let (host, path) = authority_path.split_at(slash);
        let host = host.to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(CodeError::Malformed("host"));
        }
        if path != CODE_PATH {
            return Err(CodeError::Malformed("not a PHIC1 URL"));
        }

        let (mut v, mut cid, mut iss, mut nc, mut pc) = (None, None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').ok_or(CodeError::Malformed("query"))?;
            // A name of ours spelled otherwise (`%70c`, `PC`) is refused, not skipped: a
            // region's parser that decodes or folds names would read that one instead.
            let spelled = decode_value(key)
                .map_err(|_| CodeError::Malformed("query parameter name"))?
                .to_ascii_lowercase();
            if spelled != key && ["v", "cid", "iss", "nc", "pc"].contains(&spelled.as_str()) {
                return Err(CodeError::Malformed("query parameter name"));
            }
            let slot = match key {
                "v" => &mut v,
                "cid" => &mut cid,
                "iss" => &mut iss,
                "nc" => &mut nc,
                "pc" => &mut pc,
                _ => continue,
            };
            if slot.is_some() {
                return Err(CodeError::Malformed("repeated query parameter"));
            }
            *slot = Some(decode_value(raw)?);
        }
        if v.as_deref() != Some("1") {
            return Err(CodeError::Malformed("v"));
        }
        let cid = cid
            .as_deref()
            .and_then(CodeId::parse)
            .ok_or(CodeError::Malformed("cid"))?;
        let iss = iss
            .as_deref()
            .and_then(|i| IssuerId::parse(i).ok())
            .ok_or(CodeError::Malformed("iss"))?;
        let nc = match nc {
            None => None,
            Some(n) => Some(CodeId::parse(&n).ok_or(CodeError::Malformed("nc"))?),
        };
        if pc.as_deref().is_some_and(|t| !t.starts_with(PREFIX)) {
            return Err(CodeError::Malformed("pc"));
        }
        Ok(CodeUrl {
            host,
            iss,
            cid,
            nc,
            pc,
        })
    }
}
