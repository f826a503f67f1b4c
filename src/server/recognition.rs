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

/// Lifetime of a national code the gateway issues, seconds.
const NATIONAL_CODE_TTL_SECS: i64 = 3600;

/// How often the delivery task looks for due callbacks when nothing wakes it.
const DELIVERY_TICK: Duration = Duration::from_millis(250);

/// Time a region has to acknowledge one callback.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketBody {
    v: u8,
    /// The person's pseudonym, hex, when the region named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    /// The verifier it was given to.
    app: String,
    /// The region that answered the verification.
    rgn: String,
    scope: Vec<String>,
    /// The region's own ticket, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inner: Option<String>,
    iat: i64,
    exp: i64,
}

/// The key of the gateway's tickets, derived from the pseudonym secret (one secret to
/// protect; the derivation keeps the uses apart).
///
/// # Errors
/// Never in practice: the derived key always has the right length.
pub fn ticket_key(secret: &[u8]) -> Result<TicketKey, String> {
    let mut material = b"hutong gateway tickets v1".to_vec();
    material.extend_from_slice(secret);
    let key = crate::crypto::Sm4Key::from_bytes(&crate::crypto::sm3(&material)[..16])
        .map_err(|e| e.to_string())?;
    let issuer = IssuerId::parse(TICKET_ISSUER).map_err(|e| e.to_string())?;
    TicketKey::new(issuer, key).map_err(|e| e.to_string())
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

fn now_ms() -> u64 {
    super::pipeline::now_ms()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// After a relayed `verifyCode`: links the holder to the region's code when the region
/// named them. Returns the person. A registry failure is logged, not fatal: the
/// verification itself succeeded.
pub(super) async fn link_verification(
    gw: &Arc<Gateway>,
    call: &Call,
    request: &Value,
    relayed: &Relayed,
) -> Option<Pseudonym> {
    let holder = relayed.holder.as_ref()?;
    let p = pseudonym(&gw.pseudonym_key, &holder.id_type, &holder.id_no);
    let content = text(request, &["codeContent"])?.to_owned();
    let (region, code_id) = gw
        .relay
        .code_region(&content)
        .or_else(|| relayed.region.clone().map(|r| (r, None)))?;
    let a = &relayed.biz;
    let link = RegionLink {
        region,
        code_id,
        code_content: Some(content),
        colour: text(a, &["codeColor"]).map(str::to_owned),
        status_time: text(a, &["updateTime"]).map(str::to_owned),
        source: Source::Verification,
        seen_ms: now_ms(),
    };
    let who = Holder {
        name_masked: text(a, &["nameMasked"]).map(str::to_owned),
        id_no_masked: text(a, &["idNoMasked"]).map(str::to_owned),
        id_type: Some(holder.id_type.clone()),
    };
    // The verifier's own region is linked too, without a code: it saw the person, so it
    // hears of their status changes (the risk alert).
    let province = verifier_region(&call.client.region);
    let watcher =
        (gw.relay.takes_callbacks(&province) && province != link.region).then(|| RegionLink {
            region: province,
            code_id: None,
            code_content: None,
            colour: None,
            status_time: None,
            source: Source::Verification,
            seen_ms: now_ms(),
        });
    let links = Arc::clone(&gw.links);
    let now = now_ms();
    let linked = blocking(move || {
        links.link(&p, link, &who, now)?;
        if let Some(w) = watcher {
            links.link(&p, w, &Holder::default(), now)?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = linked {
        tracing::warn!(error = %e, "link registry: the verification was not linked");
    }
    Some(p)
}

/// The province-level code of a client's division: the region whose callbacks reach it.
fn verifier_region(division: &str) -> String {
    format!("{}0000", &division[..2.min(division.len())])
}

/// After a declaration the region accepted: the person (`user`) is linked to it. A
/// registry failure is logged, not fatal.
pub(super) async fn link_declaration(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    region: Option<&str>,
) {
    let (Some(t), Some(n)) = (text(biz, &["user", "idType"]), text(biz, &["user", "idNo"])) else {
        return;
    };
    let p = pseudonym(&gw.pseudonym_key, t, n);
    let who = holder_of_user(biz, t, n);
    let link = RegionLink {
        region: region.map_or_else(|| verifier_region(&call.client.region), str::to_owned),
        code_id: None,
        code_content: None,
        colour: None,
        status_time: None,
        source: Source::Declaration,
        seen_ms: now_ms(),
    };
    let (links, now) = (Arc::clone(&gw.links), now_ms());
    if let Err(e) = blocking(move || links.link(&p, link, &who, now)).await {
        tracing::warn!(error = %e, "link registry: the declaration was not linked");
    }
}

/// What a call's `user` block says of the person, masked (`t`, `n`: its ID type and
/// number): the link registry keeps only this.
fn holder_of_user(biz: &Value, t: &str, n: &str) -> Holder {
    Holder {
        name_masked: text(biz, &["user", "name"])
            .map(|s| crate::mask::mask(PersonalClass::Name, s)),
        id_no_masked: Some(crate::mask::mask(PersonalClass::Id, n)),
        id_type: Some(t.to_owned()),
    }
}

/// Replaces the region's ticket in a verification answer with the gateway's, bound to the
/// caller; gives the ticket's expiry (Unix seconds) when it sealed one.
///
/// Every ticket a verifier gets through the gateway is the gateway's: a region binds its
/// own ticket to its caller, and for a relayed verification that caller is the gateway, so
/// the region's binding cannot tell one verifier from another. The gateway's ticket binds
/// to the verifier, and carries the region's inside.
pub(super) fn mint_ticket(
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
    let ticket = gw
        .tickets
        .seal_json(&body)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    if let Some(o) = answer.as_object_mut() {
        o.insert("bizExtData".into(), Value::String(ticket));
        o.insert("ticketExpiresIn".into(), json!(TICKET_TTL_SECS));
    }
    Ok(Some(body.exp))
}

/// Who a query is about and what it may read, from the gateway's ticket or consent token.
struct Grant {
    /// `None`: a ticket of a verification whose region named no one; only the region can
    /// answer it, with its own ticket.
    person: Option<Pseudonym>,
    region: String,
    scope: Vec<String>,
    /// The region's own credential: `("bizExtData", ticket)` or `("authCode", code)`.
    inner: Option<(&'static str, String)>,
}

fn grant_of_ticket(gw: &Gateway, call: &Call, biz: &Value) -> Result<Grant, GatewayError> {
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

fn grant_of_consent(gw: &Gateway, call: &Call, biz: &Value) -> Result<Grant, GatewayError> {
    let token = text(biz, &["authCode"]).unwrap_or_default();
    let c: ConsentClaims = gw
        .tokens
        .check_consent(token, &call.client.app_id)
        .map_err(|_| refuse(ReturnCode::NotAuthorised, "authCode is not a live consent"))?;
    let person = Pseudonym::parse_hex(&c.sub)
        .ok_or_else(|| refuse(ReturnCode::NotAuthorised, "authCode names no person"))?;
    // A consent is for one person: the user named in the call must be that person.
    if let (Some(t), Some(n)) = (text(biz, &["user", "idType"]), text(biz, &["user", "idNo"])) {
        if pseudonym(&gw.pseudonym_key, t, n) != person {
            return Err(refuse(
                ReturnCode::NotAuthorised,
                "authCode was given for another person",
            ));
        }
    }
    Ok(Grant {
        person: Some(person),
        region: c.rgn,
        scope: c.scope.split(' ').map(str::to_owned).collect(),
        inner: c.rac.map(|a| ("authCode", a)),
    })
}

/// `queryHealthInfo` with the gateway's ticket or consent token.
pub(super) async fn query(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let grant = if is_gateway_ticket(biz) {
        grant_of_ticket(gw, call, biz)?
    } else {
        grant_of_consent(gw, call, biz)?
    };
    let asked: Vec<String> = biz
        .get("scope")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_else(|| vec!["code".to_owned()]);
    let from_region: Vec<&String> = asked
        .iter()
        .filter(|s| !LINK_SCOPES.contains(&s.as_str()))
        .collect();
    // Details, or a holder's consent to their region without the cross-region scope: the
    // region decides, with its own credential.
    let consent_to_region =
        !is_gateway_ticket(biz) && grant.inner.is_some() && !asked.iter().any(|s| s == "regions");
    if !from_region.is_empty() || consent_to_region || grant.person.is_none() {
        let Some((field, inner)) = &grant.inner else {
            return Err(refuse(
                ReturnCode::NotAuthorised,
                "the scope needs the region's own consent",
            ));
        };
        let mut fwd = biz.clone();
        if let Some(o) = fwd.as_object_mut() {
            o.remove("bizExtData");
            o.remove("authCode");
            o.insert((*field).to_owned(), Value::String(inner.clone()));
        }
        let reply = gw
            .relay
            .call_region(&grant.region, ServiceName::QueryHealthInfo, &fwd)
            .await?;
        call.losses.add(reply.losses);
        return Ok((reply.biz, grant.person));
    }
    let Some(person) = grant.person else {
        return Err(refuse(ReturnCode::TicketInvalid, "ticket names no person"));
    };
    if let Some(s) = asked.iter().find(|s| !grant.scope.contains(s)) {
        return Err(refuse(
            ReturnCode::NotAuthorised,
            &format!("scope `{s}` is beyond what was granted"),
        ));
    }
    let entry = load_entry(gw, person).await?;
    let regions: Vec<String> = if asked.iter().any(|s| s == "regions") {
        entry.regions.keys().cloned().collect()
    } else {
        vec![grant.region.clone()]
    };
    let statuses = status_across(gw, &entry, &regions).await;
    let answer = merge(&entry, &statuses, asked.iter().any(|s| s == "regions"))?;
    Ok((answer, Some(person)))
}

async fn load_entry(gw: &Arc<Gateway>, p: Pseudonym) -> Result<LinkEntry, GatewayError> {
    let links = Arc::clone(&gw.links);
    blocking(move || links.get(&p))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?
        .ok_or_else(|| refuse(ReturnCode::UserNotFound, "no linked code for the person"))
}

/// One region's status in a cross-region answer.
#[derive(Debug, Clone)]
pub(super) struct RegionStatus {
    region: String,
    colour: Option<String>,
    update_time: Option<String>,
}

/// Asks each region for the person's status, in parallel, under [`FANOUT_DEADLINE`]. A
/// region whose code the gateway holds is shown that code again; one linked without a
/// code (a consent) gives its last-known status, if any.
pub(super) async fn status_across(
    gw: &Arc<Gateway>,
    entry: &LinkEntry,
    regions: &[String],
) -> Vec<RegionStatus> {
    let mut asks = tokio::task::JoinSet::new();
    // A region that only watches (a verifier's) has no status of the person to give.
    for l in regions
        .iter()
        .filter_map(|r| entry.regions.get(r))
        .filter(|l| l.code_content.is_some() || l.colour.is_some())
    {
        let gw = Arc::clone(gw);
        let l = l.clone();
        asks.spawn(async move {
            let Some(content) = l.code_content.clone() else {
                return RegionStatus {
                    region: l.region.clone(),
                    colour: l.colour.clone(),
                    update_time: l.status_time.clone(),
                };
            };
            let ask = json!({
                "codeContent": content,
                "verifier": {"orgName": "hutong gateway", "deviceId": gw.config.load().gateway.app_id},
                "scene": "REGIONS",
            });
            let got = tokio::time::timeout(
                FANOUT_DEADLINE,
                gw.relay.call_region(&l.region, ServiceName::VerifyCode, &ask),
            )
            .await;
            match got {
                Ok(Ok(reply)) => {
                    let colour = text(&reply.biz, &["codeColor"]).map(str::to_owned);
                    let time = text(&reply.biz, &["updateTime"]).map(str::to_owned);
                    RegionStatus {
                        region: l.region.clone(),
                        colour,
                        update_time: time,
                    }
                }
                Ok(Err(e)) => {
                    tracing::info!(region = %l.region, code = e.return_code().as_str(), "region did not answer a cross-region query");
                    RegionStatus {
                        region: l.region.clone(),
                        colour: None,
                        update_time: None,
                    }
                }
                Err(_) => RegionStatus {
                    region: l.region.clone(),
                    colour: None,
                    update_time: None,
                },
            }
        });
    }
    let mut statuses = Vec::with_capacity(asks.len());
    while let Some(r) = asks.join_next().await {
        if let Ok(s) = r {
            statuses.push(s);
        }
    }
    statuses.sort_by(|a, b| a.region.cmp(&b.region));
    // What the regions said is the latest known status.
    let (links, p, fresh) = (Arc::clone(&gw.links), entry.pseudonym, statuses.clone());
    let now = now_ms();
    let _ = blocking(move || {
        for s in &fresh {
            if let Some(c) = &s.colour {
                links.set_status(
                    &p,
                    &s.region,
                    c,
                    s.update_time.as_deref(),
                    Source::Query,
                    now,
                )?;
            }
        }
        Ok(())
    })
    .await;
    statuses
}

/// The most severe available status, and the region it came from.
fn worst(statuses: &[RegionStatus]) -> Option<&RegionStatus> {
    statuses
        .iter()
        .filter(|s| s.colour.is_some())
        .max_by_key(|s| severity(s.colour.as_deref().unwrap_or_default()))
}

/// The merged answer of [`status_across`]: no answer at all is 9001.
fn merge(
    entry: &LinkEntry,
    statuses: &[RegionStatus],
    with_regions: bool,
) -> Result<Value, GatewayError> {
    let w = worst(statuses).ok_or_else(|| GatewayError::Domain {
        code: ReturnCode::UpstreamTimeout,
        msg: "no linked region answered".into(),
    })?;
    let colour = w.colour.clone().unwrap_or_default();
    let mut code = json!({
        "codeColor": colour,
        "updateTime": w.update_time.clone().unwrap_or_else(|| crate::national::time::DateTime::from_unix(i64::try_from(now_ms() / 1000).unwrap_or_default()).to_string()),
        "issuerRegion": w.region,
    });
    if with_regions {
        code["colorReason"] = Value::String(format!(
            "最严重颜色来自 {0} (most severe colour, from region {0})",
            w.region
        ));
    }
    let mut person = json!({
        "nameMasked": entry.name_masked.clone().unwrap_or_else(|| "*".into()),
        "idNoMasked": entry.id_no_masked.clone().unwrap_or_else(|| "*".into()),
    });
    if let Some(t) = &entry.id_type {
        person["idType"] = Value::String(t.clone());
    }
    let mut answer = json!({ "person": person, "code": code });
    if with_regions {
        let unavailable: Vec<&str> = statuses
            .iter()
            .filter(|s| s.colour.is_none())
            .map(|s| s.region.as_str())
            .collect();
        answer["regionStatus"] = Value::Array(
            statuses
                .iter()
                .map(|s| {
                    let mut v = json!({"region": s.region, "available": s.colour.is_some()});
                    if let Some(c) = &s.colour {
                        v["codeColor"] = Value::String(c.clone());
                    }
                    if let Some(t) = &s.update_time {
                        v["updateTime"] = Value::String(t.clone());
                    }
                    v
                })
                .collect(),
        );
        answer["partial"] = Value::Bool(!unavailable.is_empty());
        if !unavailable.is_empty() {
            answer["unavailableRegions"] = json!(unavailable);
        }
    }
    Ok(answer)
}

/// A relayed call that carries the gateway's consent token goes to the region with the
/// region's own authCode inside it; a consent of another client, or an expired one, is
/// 2003, and one the region never saw (a region vouched for its resident) too.
pub(super) fn unwrap_consent(
    gw: &Gateway,
    call: &Call,
    biz: &Value,
) -> Result<Value, GatewayError> {
    let grant = grant_of_consent(gw, call, biz)?;
    let Some((_, rac)) = grant.inner else {
        return Err(refuse(
            ReturnCode::NotAuthorised,
            "the consent carries no authorisation of the region",
        ));
    };
    let mut out = biz.clone();
    if let Some(o) = out.as_object_mut() {
        o.insert("authCode".into(), Value::String(rac));
    }
    Ok(out)
}

/// `applyCodeAccess`: the caller's region authenticates the holder; the gateway links the
/// person to that region and answers with its own consent token, which carries the
/// region's authCode inside.
pub(super) async fn apply_code_access(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let (Some(t), Some(n)) = (text(biz, &["user", "idType"]), text(biz, &["user", "idNo"])) else {
        return Err(refuse(ReturnCode::MissingParameter, "user is required"));
    };
    let p = pseudonym(&gw.pseudonym_key, t, n);
    // A region's own code service has authenticated its resident itself (authType,
    // authProof are its record): the gateway takes its word. Anyone else goes to the
    // region that holds the person, whose authCode the consent then carries.
    let relayed = if call.client.role == crate::config::Role::Region {
        Relayed {
            biz: json!({ "userToken": user_token(gw, &p) }),
            region: Some(verifier_region(&call.client.region)),
            holder: None,
        }
    } else {
        gw.relay.relay_reply(call, biz).await?
    };
    let region = relayed
        .region
        .clone()
        .unwrap_or_else(|| call.client.region.clone());
    let who = holder_of_user(biz, t, n);
    let link = RegionLink {
        region: region.clone(),
        code_id: None,
        code_content: None,
        colour: None,
        status_time: None,
        source: Source::Request,
        seen_ms: now_ms(),
    };
    let links = Arc::clone(&gw.links);
    let now = now_ms();
    blocking(move || links.link(&p, link, &who, now))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let region_ttl = relayed
        .biz
        .get("expiresIn")
        .and_then(Value::as_u64)
        .unwrap_or(CONSENT_TTL_SECS);
    let ttl = region_ttl.clamp(1, CONSENT_TTL_SECS);
    let iat = crate::auth::now_unix();
    let claims = ConsentClaims {
        sub: p.to_hex(),
        iss: String::new(),
        aud: String::new(),
        azp: call.client.app_id.clone(),
        iat,
        exp: iat + ttl,
        scope: "code regions".into(),
        rgn: region,
        rac: text(&relayed.biz, &["authCode"]).map(str::to_owned),
    };
    let token = gw
        .tokens
        .issue_consent(&claims)
        .map_err(GatewayError::Internal)?;
    let mut answer = relayed.biz;
    if let Some(o) = answer.as_object_mut() {
        o.insert("authCode".into(), Value::String(token));
        o.insert("expiresIn".into(), json!(ttl));
    }
    Ok((answer, Some(p)))
}

/// The issuer-scoped user token the gateway gives for a person: stable, opaque, and
/// unlinkable to their pseudonym without the gateway's secret.
fn user_token(gw: &Gateway, p: &Pseudonym) -> String {
    let mut m = b"hutong user token v1".to_vec();
    m.extend_from_slice(&p.0);
    format!(
        "hut-{}",
        &crate::crypto::to_hex(&gw.pseudonym_key.tag(&m))[..32]
    )
}

/// `POST /phic/v1/link` from a region: the person (`user`) holds the region's code
/// (`codeContent`). A region links only its own codes.
pub(super) async fn link_request(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let (Some(t), Some(n)) = (text(biz, &["user", "idType"]), text(biz, &["user", "idNo"])) else {
        return Err(refuse(ReturnCode::MissingParameter, "user is required"));
    };
    let content = text(biz, &["codeContent"])
        .ok_or_else(|| refuse(ReturnCode::MissingParameter, "codeContent is required"))?
        .to_owned();
    let (region, code_id) = gw
        .relay
        .code_region(&content)
        .ok_or_else(|| refuse(ReturnCode::CodeInvalid, "code content not recognised"))?;
    if region != verifier_region(&call.client.region) {
        return Err(refuse(
            ReturnCode::NoPermission,
            "a region links only its own codes",
        ));
    }
    let p = pseudonym(&gw.pseudonym_key, t, n);
    let who = holder_of_user(biz, t, n);
    let link = RegionLink {
        region,
        code_id,
        code_content: Some(content),
        colour: text(biz, &["codeColor"]).map(str::to_owned),
        status_time: text(biz, &["updateTime"]).map(str::to_owned),
        source: Source::Request,
        seen_ms: now_ms(),
    };
    let (links, now) = (Arc::clone(&gw.links), now_ms());
    let entry = blocking(move || links.link(&p, link, &who, now))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok((
        json!({"linked": true, "regions": entry.regions.len()}),
        Some(p),
    ))
}

/// `generateCode` with the gateway's consent: a PHIC1 national code with the merged
/// colour of every linked region.
pub(super) async fn generate_code(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let grant = grant_of_consent(gw, call, biz)?;
    let person = grant
        .person
        .ok_or_else(|| refuse(ReturnCode::NotAuthorised, "authCode names no person"))?;
    let Some(issuer) = gw.issuer.as_ref() else {
        // No issuer key: the region issues its own code, under its own authCode.
        let biz = unwrap_consent(gw, call, biz)?;
        return gw.relay.relay(call, &biz).await.map(|v| (v, Some(person)));
    };
    let entry = load_entry(gw, person).await?;
    let regions: Vec<String> = entry.regions.keys().cloned().collect();
    let statuses = status_across(gw, &entry, &regions).await;
    let w = worst(&statuses).ok_or_else(|| GatewayError::Domain {
        code: ReturnCode::UpstreamTimeout,
        msg: "no linked region answered".into(),
    })?;
    let colour = w.colour.clone().unwrap_or_default();
    let col = crate::code::Colour::parse(&colour).unwrap_or(crate::code::Colour::Unknown);
    let (links, p, now) = (Arc::clone(&gw.links), person, now_ms());
    let ncid = blocking(move || links.national_code_id(&p, now))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let cid = crate::code::CodeId::parse(&ncid)
        .ok_or_else(|| GatewayError::Internal("national code id".into()))?;
    let iat = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    let claims = crate::code::Claims {
        cid: cid.clone(),
        col,
        iat,
        exp: iat + NATIONAL_CODE_TTL_SECS,
        nc: Some(cid),
    };
    let token =
        crate::code::issue(issuer, &claims).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let url = crate::code::CodeUrl::for_token(&gw.code_host, &token)
        .map_err(|e| GatewayError::Internal(e.to_string()))?
        .to_url();
    let time = |t: i64| crate::national::time::DateTime::from_unix(t).to_string();
    let mut answer = json!({
        "codeContent": url,
        "codeColor": colour,
        "updateTime": w.update_time.clone().unwrap_or_else(|| time(iat)),
        "expireTime": time(iat + NATIONAL_CODE_TTL_SECS),
        "refreshInterval": 300,
    });
    if let Some(n) = &entry.name_masked {
        answer["nameMasked"] = Value::String(n.clone());
    }
    if let Some(n) = &entry.id_no_masked {
        answer["idNoMasked"] = Value::String(n.clone());
    }
    Ok((answer, Some(person)))
}

/// `POST /phic/v1/statusEvent` from a region: who changed (`user`, or the region's
/// `codeIds`), and optionally to what (`codeColor`, `updateTime`). Updates the links,
/// purges every cached answer about the person, and queues a callback to every other
/// linked region that takes them.
pub(super) async fn status_event(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let source = verifier_region(&call.client.region);
    let ids: Vec<String> = biz
        .get("codeIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(64)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let subject = super::services::subject_of(gw, biz);
    if subject.is_none() && ids.is_empty() {
        return Err(refuse(
            ReturnCode::MissingParameter,
            "statusEvent names no person (user) and no codeIds",
        ));
    }
    let colour = text(biz, &["codeColor"]).map(str::to_owned);
    if colour
        .as_deref()
        .is_some_and(|c| crate::code::Colour::parse(c).is_none())
    {
        return Err(refuse(
            ReturnCode::BadFormat,
            "codeColor is not a colour code",
        ));
    }
    let time = text(biz, &["updateTime"]).map(str::to_owned);
    let event_id = text(biz, &["eventId"])
        .map(str::to_owned)
        .map_or_else(crate::envelope::random_id, Ok)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;

    // The person: named, or found from the region's code ids.
    let (links, src, ids2) = (Arc::clone(&gw.links), source.clone(), ids.clone());
    let person = match subject {
        Some(p) => Some(p),
        None => blocking(move || {
            for id in &ids2 {
                if let Some(p) = links.by_code(&src, id)? {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?,
    };
    let entry = match (person, &colour) {
        (Some(p), Some(c)) => {
            let (links, src, c, t, now) = (
                Arc::clone(&gw.links),
                source.clone(),
                c.clone(),
                time.clone(),
                now_ms(),
            );
            blocking(move || {
                links.set_status(&p, &src, &c, t.as_deref(), Source::StatusEvent, now)?;
                links.get(&p)
            })
            .await
            .map_err(|e| GatewayError::Internal(e.to_string()))?
        }
        (Some(p), None) => {
            let links = Arc::clone(&gw.links);
            blocking(move || links.get(&p))
                .await
                .map_err(|e| GatewayError::Internal(e.to_string()))?
        }
        (None, _) => None,
    };

    let mut purged = 0;
    if let Some(p) = person {
        purged += gw.cache.purge_subject(&p.to_hex()).await;
    }
    for id in &ids {
        purged += gw.cache.purge_subject(&format!("cid:{id}")).await;
    }
    gw.metrics
        .cache_purged
        .fetch_add(purged as u64, std::sync::atomic::Ordering::Relaxed);

    // The risk alert: every other linked region that takes callbacks.
    let mut notified = 0;
    if let (Some(e), Some(c)) = (&entry, &colour) {
        // A region that only watches the person knows them by the code it scanned.
        let source_code = e.regions.get(&source).and_then(|l| l.code_id.clone());
        let targets: Vec<(String, CallbackEvent)> = e
            .regions
            .values()
            .filter(|l| l.region != source && gw.relay.takes_callbacks(&l.region))
            .map(|l| {
                (
                    l.region.clone(),
                    CallbackEvent {
                        kind: crate::link::outbox::KIND_STATUS.into(),
                        event_id: event_id.clone(),
                        source_region: source.clone(),
                        code_id: l.code_id.clone().or_else(|| source_code.clone()),
                        colour: c.clone(),
                        status_time: time.clone(),
                        venue_code: None,
                        visit_region: None,
                    },
                )
            })
            .collect();
        notified = targets.len();
        if !targets.is_empty() {
            let (outbox, now) = (Arc::clone(&gw.outbox), now_ms());
            blocking(move || outbox.enqueue(&targets, now))
                .await
                .map_err(|e| GatewayError::Internal(e.to_string()))?;
            gw.deliveries.notify_one();
        }
    }
    Ok((
        json!({"purged": purged, "notified": notified, "eventId": event_id}),
        person,
    ))
}

/// `POST /phic/v1/venueCode` from a region: a venue code (场所码) for a place in it.
pub(super) async fn issue_venue(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<Value, GatewayError> {
    let name = text(biz, &["venueName"])
        .ok_or_else(|| refuse(ReturnCode::MissingParameter, "venueName is required"))?
        .to_owned();
    if name.chars().count() > 100 {
        return Err(refuse(
            ReturnCode::BadFormat,
            "venueName is longer than 100",
        ));
    }
    let address = text(biz, &["address"]).map(str::to_owned);
    let region = text(biz, &["region"]).map_or_else(|| call.client.region.clone(), str::to_owned);
    if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(
            ReturnCode::BadFormat,
            "region is not a 6-digit division code",
        ));
    }
    if verifier_region(&region) != verifier_region(&call.client.region) {
        return Err(refuse(
            ReturnCode::NoPermission,
            "a region issues venue codes for its own places",
        ));
    }
    let (venues, app, now) = (gw.venues.clone(), call.client.app_id.clone(), now_ms());
    let v = blocking(move || venues.issue(&name, address.as_deref(), &region, &app, now))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(json!({
        "venueCode": v.id,
        "codeContent": v.content(&gw.code_host),
        "venueName": v.name,
        "region": v.region,
    }))
}

/// A verification that carries a venue code in `bizExtData` (Annex A's pass-through data)
/// is a traveler's scan at that venue: the visit is recorded in the audit log (the holder
/// sees it in their receipt) and the trip goes to the traveler's home region, the region of
/// the code scanned, by the callback outbox.
pub(super) async fn record_visit(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    person: &Pseudonym,
    answer: &Value,
) -> Result<(), GatewayError> {
    let Some(id) = text(biz, &["bizExtData"]).and_then(crate::link::venue::venue_id) else {
        return Ok(());
    };
    let (venues, id) = (gw.venues.clone(), id.to_owned());
    let Some(venue) = blocking(move || venues.get(&id))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?
    else {
        return Ok(());
    };
    let home = text(biz, &["codeContent"])
        .and_then(|c| gw.relay.code_region(c))
        .map(|(r, _)| r);
    let now = now_ms();
    let time =
        crate::national::time::DateTime::from_unix(i64::try_from(now / 1000).unwrap_or_default())
            .to_string();
    if let Some(home) = home.filter(|h| gw.relay.takes_callbacks(h)) {
        let code_id = text(biz, &["codeContent"])
            .and_then(|c| gw.relay.code_region(c))
            .and_then(|(_, id)| id);
        let event = CallbackEvent {
            kind: crate::link::outbox::KIND_VISIT.into(),
            event_id: crate::envelope::random_id()
                .map_err(|e| GatewayError::Internal(e.to_string()))?,
            source_region: verifier_region(&venue.region),
            code_id,
            colour: text(answer, &["codeColor"]).unwrap_or("20").to_owned(),
            status_time: Some(time),
            venue_code: Some(venue.id.clone()),
            visit_region: Some(venue.region.clone()),
        };
        let outbox = Arc::clone(&gw.outbox);
        blocking(move || outbox.enqueue(&[(home, event)], now))
            .await
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        gw.deliveries.notify_one();
    }
    super::services::audit(
        gw,
        call,
        "venueScan",
        Some(*person),
        ReturnCode::Success,
        &format!("venue {}", venue.id),
    )
    .await
}

/// After a correction the region accepted: its ticket is tracked from here on
/// (ACCEPTED → PROCESSING → DONE or REJECTED), by the region's updates to
/// `POST /phic/v1/correctionStatus`.
pub(super) async fn track_correction(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    relayed: &Relayed,
) -> Result<(), GatewayError> {
    use crate::corrections::{CorrectionStatus, CorrectionTicket, OpenOutcome};
    let Some(id) = text(&relayed.biz, &["ticketId"]) else {
        return Err(GatewayError::Domain {
            code: ReturnCode::UpstreamFailed,
            msg: "the region accepted the correction without a ticketId".into(),
        });
    };
    let status = text(&relayed.biz, &["status"])
        .and_then(CorrectionStatus::parse)
        .unwrap_or(CorrectionStatus::Accepted);
    let region = relayed
        .region
        .clone()
        .unwrap_or_else(|| verifier_region(&call.client.region));
    let region = crate::trust::RegionCode::parse(&region)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let subject = super::services::subject_of(gw, biz);
    let mut ticket = CorrectionTicket::new(
        id,
        call.client.app_id.clone(),
        region,
        subject,
        status,
        now_ms(),
    );
    ticket.expected_time = text(&relayed.biz, &["expectedTime"]).map(str::to_owned);
    let store = Arc::clone(&gw.corrections);
    let opened = blocking(move || {
        store
            .open(&ticket)
            .map_err(|e| crate::store::StoreError::Db(e.to_string()))
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    if let OpenOutcome::AlreadyExists(t) = opened {
        // Region ticket ids are unique per region only: another filer's ticket with the same
        // id is the region's error, and this one is not tracked.
        if t.app_id != call.client.app_id {
            tracing::warn!(region = %t.region.as_str(), "correction ticket id reused by the region");
        }
    }
    Ok(())
}

/// `POST /phic/v1/correctionStatus`, `{ticketId, status?, note?}`: the region that owns the
/// ticket moves it on (with `status`); the client that filed it reads it (without). Anyone
/// else, and an unknown id, get the same 1002, so ids cannot be probed.
pub(super) async fn correction_status(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    use crate::corrections::CorrectionStatus;
    let id = text(biz, &["ticketId"])
        .ok_or_else(|| refuse(ReturnCode::MissingParameter, "ticketId is required"))?
        .to_owned();
    let to = match text(biz, &["status"]) {
        Some(s) => Some(CorrectionStatus::parse(s).ok_or_else(|| {
            refuse(
                ReturnCode::BadFormat,
                "status is not ACCEPTED, PROCESSING, DONE or REJECTED",
            )
        })?),
        None => None,
    };
    let note = text(biz, &["note"]).map(str::to_owned);
    let store = Arc::clone(&gw.corrections);
    let (app, own_region) = (
        call.client.app_id.clone(),
        verifier_region(&call.client.region),
    );
    let is_region = call.client.role == crate::config::Role::Region;
    let now = now_ms();
    let ticket = tokio::task::spawn_blocking(move || {
        let t = store
            .get(&id)?
            .ok_or(crate::corrections::CorrectionError::UnknownTicket {
                ticket_id: id.clone(),
            })?;
        match to {
            Some(to) if is_region && t.region.as_str() == own_region => {
                store.advance(&id, to, now, note.as_deref())
            }
            Some(_) => Err(crate::corrections::CorrectionError::UnknownTicket { ticket_id: id }),
            None if t.app_id == app || (is_region && t.region.as_str() == own_region) => Ok(t),
            None => Err(crate::corrections::CorrectionError::UnknownTicket { ticket_id: id }),
        }
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?
    .map_err(|e| GatewayError::Domain {
        code: e.return_code(),
        msg: e.to_string(),
    })?;
    let history: Vec<Value> = ticket
        .history
        .iter()
        .map(|h| {
            json!({
                "status": h.status.as_str(),
                "time": crate::national::time::DateTime::from_unix(i64::try_from(h.time_ms / 1000).unwrap_or_default()).to_string(),
            })
        })
        .collect();
    let mut answer = json!({
        "ticketId": ticket.ticket_id,
        "status": ticket.status.as_str(),
        "history": history,
    });
    if let Some(t) = &ticket.expected_time {
        answer["expectedTime"] = Value::String(t.clone());
    }
    Ok((answer, ticket.subject))
}

/// The retention job (DESIGN.md §8): every `[retention] purge_interval_secs`, audit
/// records, idempotency records and closed correction tickets past their periods
/// ([`crate::retention::purge`]), and link entries and finished callback deliveries not
/// touched for the audit period.
pub fn spawn_retention(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let policy = gw.config.load().retention;
            tokio::time::sleep(policy.interval()).await;
            let g = Arc::clone(&gw);
            let done = tokio::task::spawn_blocking(move || {
                let now = now_ms();
                let cutoff = policy.audit_cutoff_ms(now);
                let report = crate::retention::purge(&g.store, &policy, now);
                let links = g.links.purge_before(cutoff);
                let deliveries = g.outbox.purge_before(cutoff);
                (report, links, deliveries)
            })
            .await;
            match done {
                Ok((report, links, deliveries)) => {
                    match report {
                        Ok(r) => tracing::info!(report = %r, "retention purge"),
                        Err(e) => tracing::warn!(error = %e, "retention purge incomplete"),
                    }
                    tracing::info!(
                        links = links.unwrap_or_default(),
                        deliveries = deliveries.unwrap_or_default(),
                        "retention purge of links and callback records"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "retention job failed"),
            }
        }
    })
}

/// The delivery task: sends due callbacks, records every attempt, and sleeps until woken
/// by a new event or [`DELIVERY_TICK`]. Pending deliveries from before a restart are due
/// at once.
pub fn spawn_deliveries(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let outbox = Arc::clone(&gw.outbox);
            let now = now_ms();
            let due = match blocking(move || outbox.due(now, 64)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "callback outbox unreadable");
                    Vec::new()
                }
            };
            let mut sends = tokio::task::JoinSet::new();
            for d in due {
                let gw = Arc::clone(&gw);
                sends.spawn(async move {
                    let event = serde_json::to_value(&d.event).unwrap_or(Value::Null);
                    let outcome = match tokio::time::timeout(
                        DELIVERY_TIMEOUT,
                        gw.relay.notify_region(&d.target_region, &event),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err("no acknowledgement in time".to_owned()),
                    };
                    let ok = outcome.is_ok();
                    let (outbox, now) = (Arc::clone(&gw.outbox), now_ms());
                    match blocking(move || outbox.record(d.id, outcome, now)).await {
                        Ok(rec) => tracing::info!(
                            delivery = rec.id,
                            region = %rec.target_region,
                            attempts = rec.attempts,
                            delivered = ok,
                            "status callback"
                        ),
                        Err(e) => tracing::warn!(error = %e, "callback attempt not recorded"),
                    }
                });
            }
            while sends.join_next().await.is_some() {}
            tokio::select! {
                () = gw.deliveries.notified() => {}
                () = tokio::time::sleep(DELIVERY_TICK) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LinkEntry {
        let p = Pseudonym([3u8; 32]);
        let mut e = LinkEntry::new(p, 1);
        e.name_masked = Some("张*".into());
        e.id_no_masked = Some("33**************12".into());
        e
    }

    fn status(region: &str, colour: Option<&str>) -> RegionStatus {
        RegionStatus {
            region: region.into(),
            colour: colour.map(str::to_owned),
            update_time: colour.map(|_| "2026-11-23 10:00:00".to_owned()),
        }
    }

    #[test]
    fn the_most_severe_colour_wins_and_names_its_region() {
        let s = [
            status("110000", Some("00")),
            status("320000", Some("10")),
            status("330000", Some("01")),
        ];
        let a = merge(&entry(), &s, true).unwrap();
        assert_eq!(a["code"]["codeColor"], "10");
        assert_eq!(a["code"]["issuerRegion"], "320000");
        assert!(
            a["code"]["colorReason"]
                .as_str()
                .unwrap()
                .contains("320000")
        );
        assert_eq!(a["partial"], false);
        assert_eq!(a["regionStatus"].as_array().unwrap().len(), 3);
        assert!(a.get("unavailableRegions").is_none());
    }

    #[test]
    fn a_silent_region_makes_the_answer_partial_and_none_is_9001() {
        let s = [status("320000", None), status("330000", Some("00"))];
        let a = merge(&entry(), &s, true).unwrap();
        assert_eq!(a["code"]["codeColor"], "00");
        assert_eq!(a["partial"], true);
        assert_eq!(a["unavailableRegions"], json!(["320000"]));
        assert_eq!(a["regionStatus"][0]["available"], false);
        let none = [status("320000", None)];
        let e = merge(&entry(), &none, true).unwrap_err();
        assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
    }

    #[test]
    fn only_the_gateways_own_tickets_and_consents_are_recognised() {
        assert!(is_gateway_ticket(&json!({"bizExtData": "00000000.abc"})));
        assert!(!is_gateway_ticket(&json!({"bizExtData": "33000001.abc"})));
        assert!(!is_gateway_ticket(&json!({"bizExtData": "000000001abc"})));
        assert!(is_gateway_consent(&json!({"authCode": "eyJa.eyJb.c"})));
        assert!(!is_gateway_consent(&json!({"authCode": "AUTH-1234"})));
    }

    #[test]
    fn tickets_are_sealed_for_one_verifier_and_cannot_be_altered() {
        let key = ticket_key(&[9u8; 32]).unwrap();
        let body = TicketBody {
            v: 1,
            p: Some(Pseudonym([3u8; 32]).to_hex()),
            app: "B1".into(),
            rgn: "330000".into(),
            scope: vec!["code".into()],
            inner: Some("33000001.inner".into()),
            iat: 0,
            exp: 10,
        };
        let t = key.seal_json(&body).unwrap();
        assert!(t.starts_with("00000000."));
        let back: TicketBody = key.open_json(&t).unwrap();
        assert_eq!(back.app, "B1");
        assert_eq!(back.inner.as_deref(), Some("33000001.inner"));
        let mut bad = t.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert!(
            key.open_json::<TicketBody>(&String::from_utf8(bad).unwrap())
                .is_err()
        );
        let other = ticket_key(&[8u8; 32]).unwrap();
        assert!(other.open_json::<TicketBody>(&t).is_err());
    }
}
