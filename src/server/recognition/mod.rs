//! Mutual recognition at the gateway (DESIGN.md §2): what the gateway answers itself,
//! from its link registry, rather than relaying.
//!
//! - **Links.** A region that answers a `verifyCode` with the holder's full ID (before the
//!   gateway masks it) links that person to the region's code; so does a consent
//!   (`applyCodeAccess`) with the person's identity. Only the pseudonym is kept.
//! - **Mechanism 2.** A verification of a linked person gets the gateway's own BizExtData
//!   ticket: prefixed with [`TICKET_ISSUER`], SM4-encrypted and tagged, bound to the
//!   verifier's `appId`, to a scope, and to [`TICKET_TTL_SECS`]. The region's own ticket
//!   rides inside it, so a query for details still reaches the region with it.
//! - **Mechanism 1.** `queryHealthInfo` with the gateway's ticket, or with its consent
//!   `authCode`, and scope `regions`: the gateway shows each linked region its own code
//!   again (a `verifyCode` in that region's dialect, so no ID number is needed), in
//!   parallel under [`FANOUT_DEADLINE`], and merges: the most severe colour wins and
//!   `colorReason` names its region; regions that did not answer are listed and the answer
//!   is marked partial.
//! - **Mechanism 3.** `generateCode` with the gateway's consent `authCode`: a PHIC1
//!   national code carrying the merged colour, signed with the gateway's issuer key, in
//!   the URL form whose page the gateway serves.
//! - **Status events.** A region's push updates the link, purges every cached answer about
//!   the person, and writes one callback per other linked region into the outbox; the
//!   delivery task sends them in each region's dialect ([`spawn_deliveries`]).
//!
//! Files: `links.rs` (links from verifications, declarations, link requests), `tickets.rs`
//! (the gateway's tickets, what a ticket or consent grants), `query.rs` (mechanisms 1 and
//! 3), `consent.rs`, `events.rs` (status events, venue codes, corrections), `tasks.rs`
//! (callback delivery, retention).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Call, Gateway, GatewayError, Relayed};
use crate::audit::{Pseudonym, pseudonym};
use crate::auth::ConsentClaims;
use crate::link::outbox::CallbackEvent;
use crate::link::{Holder, LinkEntry, RegionLink, Source, severity};
use crate::standard::{PersonalClass, ReturnCode, ServiceName};
use crate::store::blocking;
use crate::ticket::{TicketError, TicketKey};
use crate::trust::IssuerId;

/// The issuer prefix of the gateway's own tickets: division `000000`, which no region
/// has, so a ticket's prefix alone tells the gateway's from a region's.
pub const TICKET_ISSUER: &str = "00000000";

/// Lifetime of the gateway's tickets, seconds: short, as a verification is a moment.
pub const TICKET_TTL_SECS: i64 = 300;

/// Lifetime of the gateway's consent tokens, seconds (the standard's bound on `authCode`).
pub const CONSENT_TTL_SECS: u64 = 300;

/// What a verifier's ticket allows by default: who (masked), the colour, and the colour in
/// the other linked regions. Details (health, tests, vaccination, trips) need the
/// region's own consent.
const VERIFIER_SCOPE: [&str; 3] = ["basic", "code", "regions"];

/// Query scopes the gateway answers from its links; the rest go to the region.
const LINK_SCOPES: [&str; 3] = ["basic", "code", "regions"];

/// How long a cross-region query waits for the slowest region.
pub const FANOUT_DEADLINE: Duration = Duration::from_secs(3);

/// Lifetime of a national code the gateway issues, seconds: the profile's limit for signed
/// tokens (§2.4, §8.2: at most 5 minutes), and the `refreshInterval` the answer gives. A
/// verifier offline has only the token's colour, so a status event after issue reaches it
/// within this time.
const NATIONAL_CODE_TTL_SECS: i64 = 300;

/// How often the delivery task looks for due callbacks when nothing wakes it.
const DELIVERY_TICK: Duration = Duration::from_millis(250);

/// Time a delivery task gives one callback: the region's own callback timeout, which its
/// breaker counts, and a margin, so that the breaker hears of a region that hangs.
const DELIVERY_TIMEOUT: Duration =
    Duration::from_millis(crate::upstream::CALLBACK_TIMEOUT.as_millis() as u64 + 500);

/// The key of the gateway's tickets, derived from the pseudonym secret (one secret to
/// protect; the derivation keeps the uses apart).
///
/// # Errors
/// Never in practice: the derived key always has the right length.
pub fn ticket_key(secret: &[u8]) -> Result<TicketKey, String> {
    let key =
        super::derived_sm4_key(b"hutong gateway tickets v1", secret).map_err(|e| e.to_string())?;
    let issuer = IssuerId::parse(TICKET_ISSUER).map_err(|e| e.to_string())?;
    TicketKey::new(issuer, key).map_err(|e| e.to_string())
}

/// Unix milliseconds as the standard's time (`yyyy-MM-dd HH:mm:ss`, Beijing).
fn standard_time(ms: u64) -> String {
    crate::national::time::DateTime::from_unix(i64::try_from(ms / 1000).unwrap_or_default())
        .to_string()
}

/// Whether a query carries one of the gateway's own tickets.
pub fn is_gateway_ticket(biz: &Value) -> bool {
    biz.get("bizExtData")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with(TICKET_ISSUER) && t[TICKET_ISSUER.len()..].starts_with('.'))
}

/// Whether a call carries a consent token the gateway issued (a JWT, three dot-separated
/// parts; a region's authCode is opaque to the gateway and relayed).
pub fn is_gateway_consent(biz: &Value) -> bool {
    biz.get("authCode")
        .and_then(Value::as_str)
        .is_some_and(|a| a.starts_with("eyJ") && a.split('.').count() == 3)
}

fn refuse(code: ReturnCode, msg: &str) -> GatewayError {
    GatewayError::Domain {
        code,
        msg: msg.to_owned(),
    }
}

use super::pipeline::now_ms;

/// The ID type and number of the call's `user` block, when it has both.
fn user_id(biz: &Value) -> Option<(&str, &str)> {
    Some((
        text(biz, &["user", "idType"])?,
        text(biz, &["user", "idNo"])?,
    ))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// The text at `path`, refused with 1002 when it is longer than `max` characters (the
/// standard's length for the element). The gateway's own endpoints (`link`, `venueCode`,
/// `statusEvent`, `correctionStatus`) are not validated against the standard's schemas,
/// and what they are given is kept on disk.
fn bounded_text<'a>(
    v: &'a Value,
    path: &[&str],
    max: usize,
) -> Result<Option<&'a str>, GatewayError> {
    match text(v, path) {
        Some(s) if s.chars().count() > max => Err(refuse(
            ReturnCode::BadFormat,
            &format!("{} is longer than {max}", path.join(".")),
        )),
        t => Ok(t),
    }
}

/// `user`'s ID type and number, each within the standard's length (`N2`, `AN..32`), and
/// its name within `A..50`, for the gateway's own endpoints. `None` when the ID is missing.
fn bounded_user_id(biz: &Value) -> Result<Option<(&str, &str)>, GatewayError> {
    bounded_text(biz, &["user", "name"], 50)?;
    Ok(bounded_text(biz, &["user", "idType"], 2)?.zip(bounded_text(biz, &["user", "idNo"], 32)?))
}

mod consent;
mod events;
pub(crate) mod issuance;
mod links;
mod query;
mod tasks;
#[cfg(test)]
mod tests;
mod tickets;

pub(in crate::server) use consent::{apply_code_access, unwrap_consent};
pub(in crate::server) use events::{
    correction_status, issue_venue, record_visit, status_event, track_correction,
};
use links::{holder_of_user, home_region};
pub(in crate::server) use links::{
    link_declaration, link_issued_code, link_request, link_verification,
};
pub(in crate::server) use query::{generate_code, query};
pub use tasks::{spawn_deliveries, spawn_retention};
pub(in crate::server) use tickets::{TICKET_LEFT, mint_ticket};
use tickets::{grant_of_consent, grant_of_ticket};
