//! Cross-region queries (mechanism 1) and national codes from the merged status
//! (mechanism 3).

use super::*;

/// `queryHealthInfo` with the gateway's ticket or consent token.
pub(in crate::server) async fn query(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let grant = if is_gateway_ticket(biz) {
        grant_of_ticket(gw, call, biz)?
    } else {
        grant_of_consent(gw, call, biz)?
    };
    // The client's `regions` bound what it reads here as on every relayed call: the region
    // the grant names, and each region of a cross-region answer.
    if !call.client.may_read_region(&grant.region) {
        return Err(crate::auth::AuthError::Region.into());
    }
    let asked = crate::server::services::strings_at(biz, "scope")
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
        readable_regions(call, &entry)
    } else {
        vec![grant.region.clone()]
    };
    let statuses = status_across(gw, &entry, &regions).await;
    let answer = merge(&entry, &statuses, asked.iter().any(|s| s == "regions"))?;
    Ok((answer, Some(person)))
}

/// The person's linked regions whose data the client may read (`regions` of its
/// registration): the regions a cross-region answer may name.
pub(super) fn readable_regions(call: &Call, entry: &LinkEntry) -> Vec<String> {
    entry
        .regions
        .keys()
        .filter(|r| call.client.may_read_region(r))
        .cloned()
        .collect()
}

pub(super) async fn load_entry(gw: &Arc<Gateway>, p: Pseudonym) -> Result<LinkEntry, GatewayError> {
    let links = Arc::clone(&gw.links);
    let got = if links.local_reads() {
        links.get(&p)
    } else {
        blocking(move || links.get(&p)).await
    };
    got.map_err(|e| GatewayError::Internal(e.to_string()))?
        .ok_or_else(|| refuse(ReturnCode::UserNotFound, "no linked code for the person"))
}

/// One region's status in a cross-region answer.
#[derive(Debug, Clone)]
pub(super) struct RegionStatus {
    pub(super) region: String,
    pub(super) colour: Option<String>,
    pub(super) update_time: Option<String>,
    /// The region did not answer now: `colour` is the last one the registry holds for it
    /// (from a status event or an earlier answer), if any.
    pub(super) stale: bool,
    /// The region said it just now ([`Known::Live`]): only such a status is written back to
    /// the registry (a held one is the registry's own, its time perhaps made up by
    /// [`settle`]).
    pub(super) live: bool,
}

/// The person's current status in `l.region`, asked within [`FANOUT_DEADLINE`]; the last
/// known one for a region that keeps no code, or that does not answer ([`settle`]).
async fn ask_region(gw: &Arc<Gateway>, l: &RegionLink) -> RegionStatus {
    let Some(content) = l.code_content.as_deref() else {
        let validity = gw.config.load().regions.get(&l.region).map_or(
            Duration::from_secs(crate::config::raw::DEFAULT_REGION_VALIDITY_SECS),
            |r| r.validity,
        );
        let known = if outlived(l, validity, now_ms()) {
            Known::Unanswered
        } else {
            Known::Stored
        };
        return settle(l, known);
    };
    let ask = json!({
        "codeContent": content,
        "verifier": {"orgName": "hutong gateway", "deviceId": gw.config.load().gateway.app_id},
        "scene": "REGIONS",
    });
    // The region's own call ends first, as a timeout its breaker counts; the deadline's own
    // cut only backs it up.
    let call = gw
        .relay
        .call_region(&l.region, ServiceName::VerifyCode, &ask);
    let until = tokio::time::Instant::now() + FANOUT_DEADLINE;
    let got = crate::upstream::until_deadline(until, call).await;
    let known = match got {
        Ok(Ok(reply)) => match text(&reply.biz, &["codeColor"]) {
            Some(colour) => Known::Live(
                colour.to_owned(),
                text(&reply.biz, &["updateTime"]).map(str::to_owned),
            ),
            None => Known::Unanswered,
        },
        Ok(Err(e)) => {
            tracing::info!(region = %l.region, code = e.return_code().as_str(), "region did not answer a cross-region query");
            Known::Unanswered
        }
        Err(_) => Known::Unanswered,
    };
    if matches!(known, Known::Unanswered) {
        gw.metrics
            .regions_unanswered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    settle(l, known)
}

/// What the gateway learnt of a region's status just now.
pub(super) enum Known {
    /// The region answered with this colour and update time.
    Live(String, Option<String>),
    /// The region keeps no code of the person: what the registry holds is its status.
    Stored,
    /// The region was asked and gave no colour (down, too slow, or refused).
    Unanswered,
}

/// Whether the status the registry holds for `l` is older than the region's `validity`:
/// by its `updateTime`, or, without one, by when the gateway learned it. Such a status is
/// no longer current: shown as the region's last known, it passes no one ([`counts`]).
pub(super) fn outlived(l: &RegionLink, validity: Duration, now_ms: u64) -> bool {
    let learned_ms = l
        .status_time
        .as_deref()
        .and_then(crate::national::time::DateTime::parse)
        .map_or(l.seen_ms, |t| {
            u64::try_from(t.unix())
                .unwrap_or_default()
                .saturating_mul(1000)
        });
    let validity_ms = u64::try_from(validity.as_millis()).unwrap_or(u64::MAX);
    now_ms > learned_ms.saturating_add(validity_ms)
}

/// A region's status from what it said and what the registry holds. A region that does
/// not answer keeps the last status the registry holds for it, marked stale: a red that a
/// status event brought must not turn into "no colour" (and so drop out of the merged,
/// most severe colour) because the region is down when the person is next looked up. A
/// stale status only ever makes an answer more severe ([`counts`]): a stale green is shown
/// as the region's last known status, but passes no one.
pub(super) fn settle(l: &RegionLink, known: Known) -> RegionStatus {
    // A held status without the region's time is dated by when the gateway learned it,
    // never by now: an answer must not make an old status look new.
    let held_time = || {
        l.status_time
            .clone()
            .or_else(|| l.colour.as_ref().map(|_| standard_time(l.seen_ms)))
    };
    let live = matches!(known, Known::Live(..));
    let (colour, update_time, stale) = match known {
        Known::Live(colour, time) => (Some(colour), time, false),
        Known::Stored => (l.colour.clone(), held_time(), false),
        Known::Unanswered => (l.colour.clone(), held_time(), true),
    };
    RegionStatus {
        region: l.region.clone(),
        colour,
        update_time,
        stale,
        live,
    }
}

/// Asks each region for the person's status, in parallel, under [`FANOUT_DEADLINE`]. A
/// region whose code the gateway holds is shown that code again; one linked without a
/// code (a consent) gives its last-known status, if any.
pub(in crate::server) async fn status_across(
    gw: &Arc<Gateway>,
    entry: &LinkEntry,
    regions: &[String],
) -> Vec<RegionStatus> {
    // A region that only watches (a verifier's) has no status of the person to give.
    let targets: Vec<&RegionLink> = regions
        .iter()
        .filter_map(|r| entry.regions.get(r))
        .filter(|l| l.code_content.is_some() || l.colour.is_some())
        .collect();
    let mut statuses = if let [only] = targets.as_slice() {
        // One region (the common query by a verification's ticket): asked from this task,
        // without a task of its own to spawn and wake.
        vec![ask_region(gw, only).await]
    } else {
        let mut asks = tokio::task::JoinSet::new();
        for l in targets {
            let (gw, l) = (Arc::clone(gw), l.clone());
            // With the request's deadline, so that each region call ends before it does.
            asks.spawn(crate::upstream::carry_caller_deadline(async move {
                ask_region(&gw, &l).await
            }));
        }
        let mut statuses = Vec::with_capacity(asks.len());
        while let Some(r) = asks.join_next().await {
            if let Ok(s) = r {
                statuses.push(s);
            }
        }
        statuses
    };
    statuses.sort_by(|a, b| a.region.cmp(&b.region));
    // What the regions said is the latest known status. A status the registry already
    // holds is not written again: a durable write per region per query would bound the
    // queries by the disk's fsync rate.
    let fresh: Vec<(String, String, Option<String>)> = statuses
        .iter()
        .filter(|s| s.live)
        .filter(|s| {
            entry
                .regions
                .get(&s.region)
                // Only what changes the registry is written (a durable write per region
                // per query would bound the queries by the disk): an answer without a time
                // changes nothing held with one, nor does one older than it
                // (apply_status).
                .is_none_or(|l| match (&s.update_time, &l.status_time) {
                    (None, Some(_)) => false,
                    (None, None) => l.colour != s.colour,
                    (Some(_), None) => true,
                    (Some(t), Some(k)) => t > k || (t == k && l.colour != s.colour),
                })
        })
        .filter_map(|s| {
            let colour = s.colour.clone()?;
            Some((s.region.clone(), colour, s.update_time.clone()))
        })
        .collect();
    if fresh.is_empty() {
        return statuses;
    }
    let (links, p) = (Arc::clone(&gw.links), entry.pseudonym);
    let now = now_ms();
    let _ = blocking(move || {
        for (region, colour, time) in &fresh {
            links.set_status(&p, region, colour, time.as_deref(), Source::Query, now)?;
        }
        Ok(())
    })
    .await;
    statuses
}

/// Whether a status counts in a merged colour: one given now, or a stale one more severe
/// than green (a region that is down cannot clear a person, but its last red stands).
pub(super) fn counts(s: &RegionStatus) -> bool {
    match s.colour.as_deref() {
        None => false,
        Some(c) => !s.stale || severity(c) > severity(GREEN),
    }
}

/// The colour code of green.
const GREEN: &str = "00";

/// The most severe status that [`counts`], and the region it came from.
pub(super) fn worst(statuses: &[RegionStatus]) -> Option<&RegionStatus> {
    statuses
        .iter()
        .filter(|s| counts(s))
        .max_by_key(|s| severity(s.colour.as_deref().unwrap_or_default()))
}

/// The merged answer of [`status_across`]: no status that [`counts`] (no region answered,
/// and none is known to be more severe than green) is 9001.
pub(super) fn merge(
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
        "updateTime": w.update_time.clone().unwrap_or_else(|| standard_time(now_ms())),
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
            .filter(|s| !available(s))
            .map(|s| s.region.as_str())
            .collect();
        answer["regionStatus"] = Value::Array(
            statuses
                .iter()
                .map(|s| {
                    // A stale colour is shown with its own (older) update time.
                    let mut v = json!({"region": s.region, "available": available(s)});
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

/// Whether the region gave its status for this answer (a stale one was not given now).
fn available(s: &RegionStatus) -> bool {
    s.colour.is_some() && !s.stale
}

/// The status a national code carries: the most severe of every linked region's. A region
/// whose status is not known now (it did not answer, and the registry holds none for it,
/// or only a green: stale, it could be red since) is refused (9001), unless another
/// region's red already decides the code: a green code must not stand for a person whose
/// status in one region is unknown.
pub(super) fn national_status(statuses: &[RegionStatus]) -> Result<&RegionStatus, GatewayError> {
    let decided_red = worst(statuses)
        .and_then(|w| w.colour.as_deref())
        .is_some_and(|c| severity(c) >= severity("10"));
    if let Some(s) = statuses
        .iter()
        .find(|s| !counts(s))
        .filter(|_| !decided_red)
    {
        // The region is not named to the caller: it may be outside the caller's regions.
        tracing::info!(region = %s.region, "national code refused: a linked region's status is not known");
        return Err(GatewayError::Domain {
            code: ReturnCode::UpstreamTimeout,
            msg: "a linked region's status is not known now (it did not answer, or what is held of it is past its validity); a national code needs every linked region's".into(),
        });
    }
    worst(statuses).ok_or_else(|| GatewayError::Domain {
        code: ReturnCode::UpstreamTimeout,
        msg: "no linked region answered".into(),
    })
}

/// `generateCode` with the gateway's consent: a PHIC1 national code with the merged
/// colour of every linked region.
pub(in crate::server) async fn generate_code(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    // No `regions` check here, unlike `query`: the code is the holder's own, asked by the
    // app the holder consented to, and its colour is by design the most severe of every
    // region the holder is linked to (mechanism 3); what else it carries is masked.
    let grant = grant_of_consent(gw, call, biz)?;
    let person = grant
        .person
        .ok_or_else(|| refuse(ReturnCode::NotAuthorised, "authCode names no person"))?;
    let Some(issuer) = gw.issuer.as_ref() else {
        // No issuer key: the region issues its own code, under its own authCode. The
        // consent names the person, so the code is linked to them: a status event that
        // names only the person then finds the verifications of this code in the cache
        // (a national-envelope region's verifyCode answer names no one).
        let biz = unwrap_consent(gw, call, biz)?;
        let relayed = gw.relay.relay_reply(call, &biz).await?;
        link_issued_code(gw, person, &relayed).await;
        return Ok((relayed.biz, Some(person)));
    };
    let entry = load_entry(gw, person).await?;
    let regions: Vec<String> = entry.regions.keys().cloned().collect();
    let statuses = status_across(gw, &entry, &regions).await;
    let w = national_status(&statuses)?;
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
    let url = crate::code::CodeUrl::for_token(gw.code_host(), &token)
        .map_err(|e| GatewayError::Internal(e.to_string()))?
        .to_url();
    let time = |t: i64| crate::national::time::DateTime::from_unix(t).to_string();
    let mut answer = json!({
        "codeContent": url,
        "codeColor": colour,
        "updateTime": w.update_time.clone().unwrap_or_else(|| time(iat)),
        "expireTime": time(iat + NATIONAL_CODE_TTL_SECS),
        "refreshInterval": NATIONAL_CODE_TTL_SECS,
    });
    if let Some(n) = &entry.name_masked {
        answer["nameMasked"] = Value::String(n.clone());
    }
    if let Some(n) = &entry.id_no_masked {
        answer["idNoMasked"] = Value::String(n.clone());
    }
    Ok((answer, Some(person)))
}
