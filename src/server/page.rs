//! The code page (`GET /phic/c?v=1&cid=…&iss=…&pc=TOKEN`): the traveler's phone opens the
//! national code's URL and sees it rendered (mechanism 3, DESIGN.md §2).
//!
//! The token in the URL is verified against the trust list first; a page is never drawn
//! for a code that does not verify (the answer is a short text page with the standard's
//! return code). The masked name and the regions consulted come from the link registry,
//! found by the national code id the token carries.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use super::Gateway;
use super::pipeline::plain;
use crate::code::CodeUrl;
use crate::national::time::DateTime;
use crate::render::page::{CodePage, RegionAnswer, RegionRow, code_page_html};
use crate::render::{MaskedName, StatusColour};
use crate::trust::RegionCode;

/// Path of the code page.
pub(super) const PAGE_PATH: &str = "/phic/c";

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Renders the page for the code in `query`.
pub(super) fn serve(gw: &Gateway, query: Option<&str>) -> Response<Full<Bytes>> {
    let url = format!(
        "https://{}{PAGE_PATH}?{}",
        gw.code_host(),
        query.unwrap_or_default()
    );
    let Some(verifier) = gw
        .relay
        .local_verifier()
        .or_else(|| gw.page_verifier.clone())
    else {
        return plain(404, TEXT, b"this gateway issues no national codes".to_vec());
    };
    let Ok(parsed) = CodeUrl::parse(&url) else {
        return plain(400, TEXT, b"3001 code URL malformed".to_vec());
    };
    let verified = match verifier.verify_content(&url) {
        Ok(v) => v,
        Err(e) => {
            let text = format!("{} {}", e.return_code().as_str(), e);
            return plain(400, TEXT, text.into_bytes());
        }
    };
    let c = &verified.claims;
    let entry =
        c.nc.as_ref()
            .and_then(|nc| gw.links.by_national(nc.as_str()).ok().flatten())
            .and_then(|p| gw.links.get(&p).ok().flatten());
    let masked = MaskedName::mask(
        entry
            .as_ref()
            .and_then(|e| e.name_masked.as_deref())
            .unwrap_or("*"),
    );
    let rows: Vec<RegionRow> = entry
        .as_ref()
        .map(|e| {
            e.regions
                .values()
                .filter(|l| l.code_content.is_some() || l.colour.is_some())
                .filter_map(|l| {
                    Some(RegionRow {
                        code: RegionCode::parse(&l.region).ok()?,
                        name: region_name(gw, &l.region),
                        answer: match &l.colour {
                            Some(col) => RegionAnswer::Status(StatusColour::from_code(col)),
                            None => RegionAnswer::Unavailable,
                        },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let page = CodePage {
        content: &parsed.to_url(),
        status: StatusColour::from_code(c.col.as_str()),
        masked_name: &masked,
        updated_at: DateTime::from_unix(c.iat),
        expires_at: DateTime::from_unix(c.exp),
        issuer: &c.iss,
        regions: &rows,
    };
    match code_page_html(&page) {
        Ok(html) => {
            let mut r = plain(200, HTML, html.into_bytes());
            // The URL carries the token: no referrer, no caching by shared proxies.
            let h = r.headers_mut();
            h.insert(
                "referrer-policy",
                hyper::header::HeaderValue::from_static("no-referrer"),
            );
            h.insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("private, no-store"),
            );
            // Nothing loads, and no other site may frame the page (a holder's masked name
            // and colour under someone else's overlay).
            h.insert(
                "content-security-policy",
                hyper::header::HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                     frame-ancestors 'none'",
                ),
            );
            h.insert(
                "x-frame-options",
                hyper::header::HeaderValue::from_static("DENY"),
            );
            r
        }
        Err(e) => plain(500, TEXT, format!("9999 {e}").into_bytes()),
    }
}

/// A region's display name from the configuration, or its code.
fn region_name(gw: &Gateway, code: &str) -> String {
    gw.config
        .load()
        .regions
        .get(code)
        .map_or_else(|| code.to_owned(), |r| r.name.clone())
}
