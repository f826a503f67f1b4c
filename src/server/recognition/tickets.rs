//! The gateway's BizExtData tickets and what a ticket or consent grants.

use super::*;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TicketBody {
    pub(super) v: u8,
    /// The person's pseudonym, hex, when the region named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) p: Option<String>,
    /// The verifier it was given to.
    pub(super) app: String,
    /// The region that answered the verification.
    pub(super) rgn: String,
    pub(super) scope: Vec<String>,
    /// The region's own ticket, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) inner: Option<String>,
    pub(super) iat: i64,
    pub(super) exp: i64,
}

/// Replaces the region's ticket in a verification answer with the gateway's, bound to the
/// caller; gives the ticket's expiry (Unix seconds) when it sealed one.
///
/// Every ticket a verifier gets through the gateway is the gateway's: a region binds its
/// own ticket to its caller, and for a relayed verification that caller is the gateway, so
/// the region's binding cannot tell one verifier from another. The gateway's ticket binds
/// to the verifier, and carries the region's inside.
/// The answer field that says how many seconds the verification's ticket has left.
pub(in crate::server) const TICKET_LEFT: &str = "ticketExpiresIn";

pub(in crate::server) fn mint_ticket(
    gw: &Gateway,
    call: &Call,
    answer: &mut Value,
    person: Option<&Pseudonym>,
    region: &str,
) -> Result<Option<i64>, GatewayError> {
    if person.is_none() && text(answer, &["bizExtData"]).is_none() {
        return Ok(None);
    }
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let body = TicketBody {
        v: 1,
        p: person.map(Pseudonym::to_hex),
        app: call.client.app_id.clone(),
        rgn: region.to_owned(),
        scope: VERIFIER_SCOPE.iter().map(|s| (*s).to_owned()).collect(),
        inner: text(answer, &["bizExtData"]).map(str::to_owned),
        iat: now,
        exp: now + TICKET_TTL_SECS,
    };
    let exp = body.exp;
    let ticket =
        seal_within_limit(&gw.tickets, body).map_err(|e| GatewayError::Internal(e.to_string()))?;
    if let Some(o) = answer.as_object_mut() {
        o.insert("bizExtData".into(), Value::String(ticket));
        o.insert(TICKET_LEFT.into(), json!(TICKET_TTL_SECS));
    }
    Ok(Some(exp))
}

/// The gateway's ticket for `body`. When the region's ticket inside makes it longer than a
/// ticket may be (the schema bounds `bizExtData` at 1,024 characters, and the verifier's
/// next query would be refused), it is sealed without the region's: what the links answer
/// (code, regions) still works; details that need the region's own ticket are refused as
/// not granted.
pub(super) fn seal_within_limit(
    key: &TicketKey,
    body: TicketBody,
) -> Result<String, crate::ticket::SealError> {
    let ticket = key.seal_json(&body)?;
    if ticket.len() <= crate::ticket::MAX_TICKET_LEN {
        return Ok(ticket);
    }
    tracing::info!(region = %body.rgn, "region ticket too long to carry; the gateway's goes without it");
    key.seal_json(&TicketBody {
        inner: None,
        ..body
    })
}

/// Who a query is about and what it may read, from the gateway's ticket or consent token.
pub(super) struct Grant {
    /// `None`: a ticket of a verification whose region named no one; only the region can
    /// answer it, with its own ticket.
    pub(super) person: Option<Pseudonym>,
    pub(super) region: String,
    pub(super) scope: Vec<String>,
    /// The region's own credential: `("bizExtData", ticket)` or `("authCode", code)`.
    pub(super) inner: Option<(&'static str, String)>,
}

pub(super) fn grant_of_ticket(
    gw: &Gateway,
    call: &Call,
    biz: &Value,
) -> Result<Grant, GatewayError> {
    let ticket = text(biz, &["bizExtData"]).unwrap_or_default();
    let body: TicketBody = gw
        .tickets
        .open_json(ticket)
        .map_err(|e: TicketError| refuse(ReturnCode::TicketInvalid, &e.to_string()))?;
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    if body.v != 1 {
        return Err(refuse(ReturnCode::TicketInvalid, "ticket version unknown"));
    }
    if body.app != call.client.app_id {
        return Err(refuse(
            ReturnCode::TicketInvalid,
            &TicketError::WrongClient.to_string(),
        ));
    }
    if now >= body.exp {
        return Err(refuse(
            ReturnCode::TicketInvalid,
            &TicketError::Expired.to_string(),
        ));
    }
    let person = match &body.p {
        Some(p) => Some(
            Pseudonym::parse_hex(p)
                .ok_or_else(|| refuse(ReturnCode::TicketInvalid, "ticket names no person"))?,
        ),
        None => None,
    };
    Ok(Grant {
        person,
        region: body.rgn,
        scope: body.scope,
        inner: body.inner.map(|t| ("bizExtData", t)),
    })
}

pub(super) fn grant_of_consent(
    gw: &Gateway,
    call: &Call,
    biz: &Value,
) -> Result<Grant, GatewayError> {
    let token = text(biz, &["authCode"]).unwrap_or_default();
    let c = gw
        .tokens
        .check_consent(token, &call.client.app_id)
        .map_err(|_| refuse(ReturnCode::NotAuthorised, "authCode is not a live consent"))?;
    // A consent issued before its subject was sealed names the person in hex: still taken
    // for the little while it lives (only this gateway signs consents).
    let person = consent::open_subject(&gw.consent_subjects, &c.sub)
        .or_else(|| Pseudonym::parse_hex(&c.sub))
        .ok_or_else(|| refuse(ReturnCode::NotAuthorised, "authCode names no person"))?;
    // A consent is for one person: the user named in the call must be that person.
    if let Some((t, n)) = user_id(biz) {
        if call.person.pseudonym(&gw.pseudonym_key, t, n) != person {
            return Err(refuse(
                ReturnCode::NotAuthorised,
                "authCode was given for another person",
            ));
        }
    }
    Ok(Grant {
        person: Some(person),
        region: c.rgn.clone(),
        scope: c.scope.split(' ').map(str::to_owned).collect(),
        inner: c.rac.clone().map(|a| ("authCode", a)),
    })
}
