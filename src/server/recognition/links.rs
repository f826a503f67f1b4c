//! Links made from what regions and callers say: a verification (the region named the
//! holder), a declaration, an explicit link request.

use super::*;

/// After a relayed `verifyCode`: links the holder to the region's code when the region
/// named them. Returns the person. A registry failure is logged, not fatal: the
/// verification itself succeeded.
pub(in crate::server) async fn link_verification(
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
    let (link, who) = link_of_answer(
        &relayed.biz,
        (region, code_id, content),
        Source::Verification,
        Some(holder.id_type.clone()),
    );
    // The verifier's own region is linked too, without a code: it saw the person, so it
    // hears of their status changes (the risk alert).
    let own = home_region(gw, &call.client.region);
    let watcher = (gw.relay.takes_callbacks(&own) && own != link.region).then(|| RegionLink {
        scanned_code_id: link.code_id.clone(),
        ..RegionLink::without_code(own, Source::Verification, now_ms())
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

/// The link a region's answer `a` about a code (`(region, code id, content)`) makes, learned
/// by `source`, and the holder as it shows them: the colour and its time, and the name and
/// ID number the region masked, masked again by the gateway's own rules (masking a masked
/// value changes nothing), since they are shown to other regions' verifiers later and a
/// region's masking may keep more than the profile allows.
fn link_of_answer(
    a: &Value,
    (region, code_id, content): (String, Option<String>, String),
    source: Source,
    id_type: Option<String>,
) -> (RegionLink, Holder) {
    let link = RegionLink {
        region,
        code_id,
        code_content: Some(content),
        colour: text(a, &["codeColor"]).map(str::to_owned),
        status_time: text(a, &["updateTime"]).map(str::to_owned),
        source,
        seen_ms: now_ms(),
        scanned_code_id: None,
    };
    let who = Holder {
        name_masked: text(a, &["nameMasked"]).map(|s| crate::mask::mask(PersonalClass::Name, s)),
        claimed_name: None,
        id_no_masked: text(a, &["idNoMasked"]).map(|s| crate::mask::mask(PersonalClass::Id, s)),
        id_type,
    };
    (link, who)
}

/// Links `person` to the code a region issued them through the gateway (`relayed`, the
/// answer of a `generateCode`). A code the gateway cannot place (no issuer it knows) is
/// not linked; a registry that refuses the write is logged, and the code is served.
pub(in crate::server) async fn link_issued_code(
    gw: &Arc<Gateway>,
    person: Pseudonym,
    relayed: &Relayed,
) {
    let a = &relayed.biz;
    let Some(content) = text(a, &["codeContent"]).map(str::to_owned) else {
        return;
    };
    let Some((region, code_id)) = gw.relay.code_region(&content) else {
        return;
    };
    let (link, who) = link_of_answer(a, (region, code_id, content), Source::Issuance, None);
    let links = Arc::clone(&gw.links);
    let now = now_ms();
    if let Err(e) = blocking(move || links.link(&person, link, &who, now)).await {
        tracing::warn!(error = %e, "link registry: the issued code was not linked");
    }
}

/// The region a caller (or a venue) in `division` belongs to: the configured region that
/// serves it, as its calls are routed (county, prefecture, province), else its province.
/// Links, status events, venue codes and corrections all name regions this way, so a
/// region configured at prefecture level finds its own links.
pub(super) fn home_region(gw: &Gateway, division: &str) -> String {
    gw.relay
        .region_serving(division)
        .unwrap_or_else(|| verifier_region(division))
}

/// The province of `division`.
fn verifier_region(division: &str) -> String {
    format!("{}0000", &division[..2.min(division.len())])
}

/// After a declaration the region accepted: the person (`user`) is linked to it. A
/// registry failure is logged, not fatal.
pub(in crate::server) async fn link_declaration(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    region: Option<&str>,
) {
    let Some((t, n)) = user_id(biz) else {
        return;
    };
    let p = pseudonym(&gw.pseudonym_key, t, n);
    let who = holder_of_user(biz, t, n);
    let link = RegionLink::without_code(
        region.map_or_else(|| home_region(gw, &call.client.region), str::to_owned),
        Source::Declaration,
        now_ms(),
    );
    let (links, now) = (Arc::clone(&gw.links), now_ms());
    if let Err(e) = blocking(move || links.link(&p, link, &who, now)).await {
        tracing::warn!(error = %e, "link registry: the declaration was not linked");
    }
}

/// What a call's `user` block says of the person, masked (`t`, `n`: its ID type and
/// number): the link registry keeps only this.
pub(super) fn holder_of_user(biz: &Value, t: &str, n: &str) -> Holder {
    Holder {
        name_masked: None,
        claimed_name: text(biz, &["user", "name"])
            .map(|s| crate::mask::mask(PersonalClass::Name, s)),
        id_no_masked: Some(crate::mask::mask(PersonalClass::Id, n)),
        id_type: Some(t.to_owned()),
    }
}

/// `POST /phic/v1/link` from a region: the person (`user`) holds the region's code
/// (`codeContent`). A region links only its own codes.
pub(in crate::server) async fn link_request(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let Some((t, n)) = bounded_user_id(biz)? else {
        return Err(refuse(ReturnCode::MissingParameter, "user is required"));
    };
    let content = bounded_text(biz, &["codeContent"], 512)?
        .ok_or_else(|| refuse(ReturnCode::MissingParameter, "codeContent is required"))?
        .to_owned();
    let (region, code_id) = gw
        .relay
        .code_region(&content)
        .ok_or_else(|| refuse(ReturnCode::CodeInvalid, "code content not recognised"))?;
    if region != home_region(gw, &call.client.region) {
        return Err(refuse(
            ReturnCode::NoPermission,
            "a region links only its own codes",
        ));
    }
    let (colour, status_time) = events::status_of(biz)?;
    let p = pseudonym(&gw.pseudonym_key, t, n);
    let who = holder_of_user(biz, t, n);
    let link = RegionLink {
        region,
        code_id,
        code_content: Some(content),
        colour,
        status_time,
        source: Source::Request,
        seen_ms: now_ms(),
        scanned_code_id: None,
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
