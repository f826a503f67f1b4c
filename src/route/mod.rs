//! Routing: which region answers a validated call, and the relay to it.
//!
//! - `verifyCode`: the region whose issuer ids include the code's issuer (a PHIC1 token or
//!   URL names it; regional code formats join with the dialects). Unknown → 3001; known
//!   issuer without a configured region → 3003.
//! - `queryHealthInfo` with a BizExtData ticket: the issuer id before the ticket's `.`.
//! - everything else: the caller's own region (county → prefecture → province, the first
//!   that is configured).
//!
//! A caller reads a region's data only when its registration lists that region (1006).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::code::{CodeFormat, Colour, Phic1Format, Verifier};
use crate::config::Validated;
use crate::crypto::{MacKey, SigningKey, Sm4Key};
use crate::national::time::DateTime;
use crate::server::{BoxFuture, Call, GatewayError, Relay, Relayed, ServerError};
use crate::standard::{ReturnCode, ServiceName, Standard};
use crate::translate::Dialect;
mod trust;

pub use trust::{TRUST_VERSION_FILE, local_verifier};

use crate::upstream::{
    ClientIdentity, DialectUpstream, DialectUpstreamConfig, NationalUpstream,
    NationalUpstreamConfig, Reply, Upstream, UpstreamError, UpstreamPolicy,
};

/// One region of the table: its upstream, and the issuer ids whose codes it answers for.
pub type Route = (Arc<dyn Upstream>, Vec<String>);

/// The routing table: regions and the issuers they answer for.
struct Table {
    regions: HashMap<String, Arc<dyn Upstream>>,
    issuers: HashMap<String, String>,
    validity: HashMap<String, std::time::Duration>,
    /// Dialects of the regions that speak one, with the region: their code contents route
    /// `verifyCode` there.
    dialects: Vec<(Arc<Dialect>, String)>,
}

/// Routes calls to regions; the table is replaced whole on reload.
pub struct Router {
    table: ArcSwap<Table>,
    standard: Arc<Standard>,
    /// Verifies PHIC1 codes of issuers no region answers for, offline.
    local: ArcSwap<Option<Verifier>>,
    /// The gateway's SM2 key that signs requests to regions: read once, at start, like the
    /// key that signs its answers, so that a reload never leaves the two different.
    sm2: Option<SigningKey>,
    /// Calls made to regions for an answer: every one passes through
    /// [`Relay::relay_reply`] or [`Relay::call_region`] here, whether a relay, the cache or
    /// a cross-region query asked ([`Router::counted`]). Status callbacks to regions are
    /// counted by the outbox's own metrics.
    calls: AtomicU64,
}

/// One region call being counted: it adds itself to the router's count when dropped, at
/// the call's end or when the caller drops the call mid-way, unless its result showed that
/// nothing was sent.
struct CallCount<'a> {
    calls: &'a AtomicU64,
    sent: bool,
}

impl Drop for CallCount<'_> {
    fn drop(&mut self) {
        if self.sent {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.table.load();
        f.debug_struct("Router")
            .field("regions", &t.regions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Router {
    /// A router over given upstreams (tests, or custom wiring): `(upstream, issuer ids)`.
    pub fn new(upstreams: Vec<Route>) -> Self {
        Self {
            table: ArcSwap::from_pointee(table(upstreams)),
            standard: Standard::embedded(),
            local: ArcSwap::from_pointee(None),
            sm2: None,
            calls: AtomicU64::new(0),
        }
    }

    /// Builds national-envelope upstreams for every configured region.
    ///
    /// # Errors
    /// [`ServerError::Keys`] for key files or region settings that do not work.
    pub fn from_config(cfg: &Validated) -> Result<Self, ServerError> {
        let sm2 = signing_key(cfg)?;
        let mut r = Self::new(upstreams(cfg, &sm2, &HashMap::new())?);
        r.sm2 = Some(sm2);
        r.set_validity(cfg);
        r.local.store(Arc::new(local_verifier(cfg, None)?));
        Ok(r)
    }

    /// `call` to a region, counted ([`CallCount`]): once, whatever its retries and outcome,
    /// and also when the caller stops waiting (a cross-region query's deadline drops the
    /// call); not one that never left (the region's circuit open, a request that could not
    /// be built or sealed).
    async fn counted(
        &self,
        call: impl Future<Output = Result<Reply, UpstreamError>>,
    ) -> Result<Reply, UpstreamError> {
        let mut count = CallCount {
            calls: &self.calls,
            sent: true,
        };
        let reply = call.await;
        count.sent = !matches!(
            reply,
            Err(UpstreamError::CircuitOpen | UpstreamError::Seal(_) | UpstreamError::Build(_))
        );
        reply
    }

    fn set_validity(&self, cfg: &Validated) {
        let t = self.table.load_full();
        self.table.store(Arc::new(with_settings(
            Table {
                regions: t.regions.clone(),
                issuers: t.issuers.clone(),
                validity: HashMap::new(),
                dialects: Vec::new(),
            },
            cfg,
        )));
    }

    /// Replaces the regions after a configuration reload. Requests to regions stay signed
    /// with the key read at start (a changed `gateway.signing_key_file` waits for a
    /// restart: [`Validated::restart_only_changes`]).
    ///
    /// # Errors
    /// As [`Router::from_config`]; the old table stays on error.
    pub fn reconfigure(&self, cfg: &Validated) -> Result<(), ServerError> {
        // The keys that did not change keep their verification tables. `load_full`: no
        // guard is held while new tables are built.
        let previous = self.local.load_full();
        let local = local_verifier(cfg, previous.as_ref().as_ref())?;
        let sm2 = match &self.sm2 {
            Some(k) => k.clone(),
            None => signing_key(cfg)?,
        };
        // Each region keeps its breaker across the reload while its URL stays: a region
        // that is down is not called afresh by every request because a client was added.
        let kept: HashMap<String, Kept> = self
            .table
            .load()
            .regions
            .iter()
            .filter_map(|(code, u)| {
                let (base, breaker) = u.breaker()?;
                Some((code.clone(), (base.to_owned(), breaker)))
            })
            .collect();
        // One store of the whole table: a request during the reload sees the old one or
        // the new one, never one without its dialects (regional codes would get 3001).
        self.table.store(Arc::new(with_settings(
            table(upstreams(cfg, &sm2, &kept)?),
            cfg,
        )));
        self.local.store(Arc::new(local));
        Ok(())
    }

    /// The region code that answers `call`, or the error the caller gets.
    fn target(&self, t: &Table, call: &Call, biz: &Value) -> Result<String, GatewayError> {
        let by_issuer = |iss: &str| {
            t.issuers
                .get(iss)
                .cloned()
                .ok_or_else(|| GatewayError::Domain {
                    code: ReturnCode::CodeIssuerUntrusted,
                    msg: "the code's issuer is not served by this gateway".into(),
                })
        };
        match call.service {
            ServiceName::VerifyCode => {
                let content = biz
                    .get("codeContent")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let Some(rec) = call.code.phic1(content) else {
                    // A region's own code content: the region whose dialect recognises it.
                    let m =
                        crate::translate::recognise(t.dialects.iter().map(|(d, _)| &**d), content)
                            .ok_or_else(|| GatewayError::Domain {
                                code: ReturnCode::CodeInvalid,
                                msg: "code content not recognised".into(),
                            })?;
                    return t
                        .dialects
                        .iter()
                        .find(|(d, _)| d.id == m.dialect)
                        .map(|(_, region)| region.clone())
                        .ok_or_else(|| GatewayError::Internal("dialect without region".into()));
                };
                let iss = rec
                    .issuer_hint
                    .as_deref()
                    .ok_or_else(|| GatewayError::Domain {
                        code: ReturnCode::CodeInvalid,
                        msg: "code content names no issuer".into(),
                    })?;
                by_issuer(iss)
            }
            ServiceName::QueryHealthInfo if biz.get("bizExtData").is_some() => {
                let ticket = biz
                    .get("bizExtData")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let iss = ticket
                    .split_once('.')
                    .map(|(i, _)| i)
                    .filter(|i| i.len() == 8)
                    .ok_or_else(|| GatewayError::Domain {
                        code: ReturnCode::TicketInvalid,
                        msg: "BizExtData names no issuer".into(),
                    })?;
                by_issuer(iss)
            }
            _ => serving_region(&call.client.region, |c| t.regions.contains_key(c)).ok_or_else(
                || GatewayError::Domain {
                    code: ReturnCode::SystemError,
                    msg: "no region serves the caller's area".into(),
                },
            ),
        }
    }
}

/// The configured region that serves `division` (a GB/T 2260 code): the county itself,
/// else its prefecture, else its province, the first that `configured` names.
pub fn serving_region(division: &str, configured: impl Fn(&str) -> bool) -> Option<String> {
    let d = division;
    [
        d.to_owned(),
        format!("{}00", &d[..4.min(d.len())]),
        format!("{}0000", &d[..2.min(d.len())]),
    ]
    .into_iter()
    .find(|c| configured(c))
}

impl Router {
    /// The upstream of `region`, from the current table.
    fn upstream_of(&self, region: &str) -> Option<Arc<dyn Upstream>> {
        self.table.load().regions.get(region).cloned()
    }

    /// `verifyCode` of a PHIC1 code whose issuer no region answers for, checked against the
    /// trust list; `None` when a region answers for it, or there is no trust list.
    fn verify_locally(
        &self,
        t: &Table,
        call: &Call,
        biz: &Value,
    ) -> Option<Result<Value, GatewayError>> {
        let local = self.local.load_full();
        let verifier = (*local).as_ref()?;
        let content = biz.get("codeContent").and_then(Value::as_str)?;
        let rec = call.code.phic1(content)?;
        if rec
            .issuer_hint
            .as_ref()
            .is_some_and(|i| t.issuers.contains_key(i.as_str()))
        {
            return None;
        }
        Some(match verifier.verify_recognised(&rec) {
            Ok(v) => {
                let c = &v.claims;
                let result = match c.col {
                    Colour::Green => "PASS",
                    Colour::Red => "DENY",
                    _ => "WARN",
                };
                let mut answer = serde_json::json!({
                    "verifyResult": result,
                    "codeColor": c.col.as_str(),
                    "updateTime": DateTime::from_unix(c.iat).to_string(),
                    "issuer": c.iss.as_str(),
                    "issuerRegion": v.region.as_str(),
                });
                if let Some(nc) = &c.nc {
                    answer["nationalCodeId"] = Value::from(nc.as_str());
                }
                Ok(answer)
            }
            Err(e) => Err(GatewayError::Domain {
                code: e.return_code(),
                msg: e.to_string(),
            }),
        })
    }
}

impl Relay for Router {
    fn local_verifier(&self) -> Option<Verifier> {
        (*self.local.load_full()).clone()
    }

    fn authorize(&self, call: &Call, biz: &Value) -> Result<(), GatewayError> {
        let t = self.table.load();
        match self.target(&t, call, biz) {
            Ok(region) if !call.client.may_read_region(&region) => {
                Err(crate::auth::AuthError::Region.into())
            }
            _ => Ok(()),
        }
    }

    fn freshness(&self, call: &Call, biz: &Value) -> std::time::Duration {
        let t = self.table.load();
        self.target(&t, call, biz)
            .ok()
            .and_then(|r| t.validity.get(&r).copied())
            .unwrap_or(std::time::Duration::from_secs(
                crate::config::raw::DEFAULT_REGION_VALIDITY_SECS,
            ))
    }

    fn relay<'a>(
        &'a self,
        call: &'a Call,
        biz: &'a Value,
    ) -> BoxFuture<'a, Result<Value, GatewayError>> {
        Box::pin(async move { self.relay_reply(call, biz).await.map(|r| r.biz) })
    }

    fn relay_reply<'a>(
        &'a self,
        call: &'a Call,
        biz: &'a Value,
    ) -> BoxFuture<'a, Result<Relayed, GatewayError>> {
        Box::pin(async move {
            let t = self.table.load_full();
            if call.service == ServiceName::VerifyCode {
                if let Some(answer) = self.verify_locally(&t, call, biz) {
                    return answer.map(|biz| Relayed {
                        biz,
                        region: None,
                        holder: None,
                        losses: crate::translate::LossReport::default(),
                    });
                }
            }
            let region = self.target(&t, call, biz)?;
            if !call.client.may_read_region(&region) {
                return Err(crate::auth::AuthError::Region.into());
            }
            let upstream = t
                .regions
                .get(&region)
                .ok_or_else(|| GatewayError::Internal(format!("region {region} vanished")))?;
            // An idempotent call is named at the region by the caller's requestId, so that
            // the caller's retry is a repeat there too.
            let key = self.standard.service(call.service).idempotent.then(|| {
                let content = crate::server::services::canonical_json(biz);
                crate::upstream::request_key(
                    &call.client.app_id,
                    &call.request_id,
                    &crate::idempotency::fingerprint(&content),
                )
            });
            let mut reply = self
                .counted(upstream.call_keyed(call.service, biz, key.as_deref()))
                .await
                .map_err(|e| upstream_error(&e))?;
            // What a region shows of the holder leaves the gateway masked by the profile's
            // rules, whatever the region's own masking kept.
            crate::mask::remask_answer(&mut reply.biz);
            call.losses.add(reply.losses.clone());
            Ok(Relayed {
                biz: reply.biz,
                region: Some(region),
                holder: reply.holder,
                losses: reply.losses,
            })
        })
    }

    fn call_region<'a>(
        &'a self,
        region: &'a str,
        service: ServiceName,
        biz: &'a Value,
    ) -> BoxFuture<'a, Result<Reply, GatewayError>> {
        Box::pin(async move {
            let upstream = self
                .upstream_of(region)
                .ok_or_else(|| GatewayError::Internal(format!("no region {region}")))?;
            let idempotent = self.standard.service(service).idempotent;
            let mut reply = self
                .counted(upstream.call_reported(service, biz, idempotent))
                .await
                .map_err(|e| upstream_error(&e))?;
            crate::mask::remask_answer(&mut reply.biz);
            Ok(reply)
        })
    }

    fn region_calls(&self) -> Option<u64> {
        Some(self.calls.load(Ordering::Relaxed))
    }

    fn takes_callbacks(&self, region: &str) -> bool {
        self.upstream_of(region)
            .is_some_and(|u| u.takes_callbacks())
    }

    fn notify_region<'a>(
        &'a self,
        region: &'a str,
        event: &'a Value,
    ) -> BoxFuture<'a, Result<(), crate::server::NotifyFailure>> {
        Box::pin(async move {
            // A region no longer configured (a reload) is held, as one whose breaker is
            // open: its callbacks wait, without spending their attempts, for up to a day.
            let upstream =
                self.upstream_of(region)
                    .ok_or_else(|| crate::server::NotifyFailure {
                        why: format!("no region {region}"),
                        permanent: false,
                        not_sent: true,
                    })?;
            upstream
                .notify(event)
                .await
                .map_err(|e| crate::server::NotifyFailure {
                    permanent: matches!(e, UpstreamError::Build(_)),
                    // Refused the gateway's credentials (a rotation at one end): every
                    // callback would meet the same until an operator mends it, so they are
                    // held rather than spend their attempts in under an hour.
                    not_sent: matches!(
                        e,
                        UpstreamError::CircuitOpen
                            | UpstreamError::Status(401 | 403)
                            | UpstreamError::Business {
                                code: ReturnCode::SignatureInvalid | ReturnCode::UnknownApp,
                                ..
                            }
                    ),
                    why: e.to_string(),
                })
        })
    }

    fn region_serving(&self, division: &str) -> Option<String> {
        let t = self.table.load();
        serving_region(division, |c| t.regions.contains_key(c))
    }

    fn code_region(&self, content: &str) -> Option<(String, Option<String>)> {
        let t = self.table.load();
        if let Some(rec) = Phic1Format.recognise(content) {
            // A URL whose token names another code is placed nowhere: no person is linked,
            // and no visit filed, under ids the caller wrote.
            if !crate::code::ids_match_token(&rec) {
                return None;
            }
            let region = t.issuers.get(rec.issuer_hint?.as_str())?.clone();
            return Some((region, rec.code_id.map(|c| c.as_str().to_owned())));
        }
        let m = crate::translate::recognise(t.dialects.iter().map(|(d, _)| &**d), content)?;
        t.dialects
            .iter()
            .find(|(d, _)| d.id == m.dialect)
            .map(|(_, region)| (region.clone(), Some(m.code_id)))
    }
}

/// A region's failure as the caller sees it: the region's own business code passes
/// through; transport failures are 9001/9002 with a message that names no internals.
pub fn upstream_error(e: &UpstreamError) -> GatewayError {
    let code = e.return_code();
    // A region's text may carry personal data, and transport errors name hosts and
    // certificates: the caller gets the standard's text for the code; the detail is logged.
    match e {
        UpstreamError::Business { .. } => {
            tracing::info!(code = code.as_str(), "region refused the call")
        }
        other => tracing::warn!(error = %other, code = code.as_str(), "region call failed"),
    }
    let msg = match e {
        UpstreamError::CircuitOpen => "region unavailable (circuit open)".to_owned(),
        _ => Standard::embedded().return_code(code).name_en.clone(),
    };
    GatewayError::Domain { code, msg }
}

/// `t` with each region's validity and dialect from `cfg`.
fn with_settings(mut t: Table, cfg: &Validated) -> Table {
    t.validity = cfg
        .regions
        .values()
        .map(|r| (r.code.clone(), r.validity))
        .collect();
    t.dialects = cfg
        .regions
        .values()
        .filter_map(|r| {
            r.dialect
                .as_ref()
                .map(|(d, _)| (Arc::clone(d), r.code.clone()))
        })
        .collect();
    // Recognition tries the dialects in this order: the regions' own (by code), the same
    // at every start and reload, not the order of a hash map.
    t.dialects.sort_by(|a, b| a.1.cmp(&b.1));
    t
}

fn table(upstreams: Vec<Route>) -> Table {
    let mut regions = HashMap::new();
    let mut issuers = HashMap::new();
    for (u, iss) in upstreams {
        for i in iss {
            issuers.insert(i, u.region().to_owned());
        }
        regions.insert(u.region().to_owned(), u);
    }
    Table {
        regions,
        issuers,
        validity: HashMap::new(),
        dialects: Vec::new(),
    }
}

/// The gateway's signing key, from `gateway.signing_key_file`.
fn signing_key(cfg: &Validated) -> Result<SigningKey, ServerError> {
    let key_pem = std::fs::read_to_string(&cfg.gateway.signing_key_file).map_err(|e| {
        ServerError::Keys(format!("{}: {e}", cfg.gateway.signing_key_file.display()))
    })?;
    SigningKey::from_pem(&key_pem).map_err(|e| ServerError::Keys(e.to_string()))
}

/// A region's base URL and circuit breaker, from the table a reload replaces.
type Kept = (String, Arc<crate::upstream::CircuitBreaker>);

fn upstreams(
    cfg: &Validated,
    sm2: &SigningKey,
    kept: &HashMap<String, Kept>,
) -> Result<Vec<Route>, ServerError> {
    let mut out: Vec<Route> = Vec::new();
    for r in cfg.regions.values() {
        // Compared as the transport keeps its base (without a trailing slash).
        let breaker = kept
            .get(&r.code)
            .filter(|(base, _)| base.as_str() == r.url.trim_end_matches('/'))
            .map(|(_, b)| Arc::clone(b));
        let policy = UpstreamPolicy {
            connect_timeout_ms: r.connect_timeout.as_millis() as u64,
            deadline_ms: r.timeout.as_millis() as u64,
            attempt_timeout_ms: r.timeout.as_millis() as u64,
            ..UpstreamPolicy::default()
        };
        let ca_pem = r
            .ca_file
            .as_ref()
            .map(|ca| {
                std::fs::read_to_string(ca)
                    .map_err(|e| ServerError::Keys(format!("{}: {e}", ca.display())))
            })
            .transpose()?;
        let public_key = match (&r.public_key, &r.dialect) {
            (_, Some((d, creds))) => {
                let mut c = DialectUpstreamConfig::new(
                    r.code.clone(),
                    r.url.clone(),
                    Arc::clone(d),
                    creds.clone(),
                );
                c.ticket_issuer = r.issuer_ids.first().cloned();
                c.ca_pem = ca_pem;
                c.policy = policy;
                c.breaker = breaker;
                let u = DialectUpstream::new(c)
                    .map_err(|e| ServerError::Keys(format!("region {}: {e}", r.code)))?;
                out.push((Arc::new(u), r.issuer_ids.clone()));
                continue;
            }
            (Some(k), None) => k.clone(),
            (None, None) => {
                return Err(ServerError::Keys(format!(
                    "region {}: neither public_key nor dialect",
                    r.code
                )));
            }
        };
        let identity = ClientIdentity {
            app_id: cfg.gateway.app_id.clone(),
            sm2_key: Some(sm2.clone()),
            mac_key: r
                .gateway_mac_key
                .as_deref()
                .map(MacKey::from_bytes)
                .transpose()
                .map_err(|e| ServerError::Keys(e.to_string()))?,
            sm4_key: r
                .gateway_sm4_key
                .as_deref()
                .map(Sm4Key::from_bytes)
                .transpose()
                .map_err(|e| ServerError::Keys(e.to_string()))?,
            region_encryption_key: r.encryption_key.clone(),
            insecure_plaintext: false,
        };
        let mut c =
            NationalUpstreamConfig::new(r.code.clone(), r.url.clone(), identity, public_key);
        c.ca_pem = ca_pem;
        c.policy = policy;
        c.breaker = breaker;
        let u = NationalUpstream::new(c)
            .map_err(|e| ServerError::Keys(format!("region {}: {e}", r.code)))?;
        out.push((Arc::new(u), r.issuer_ids.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region that answers at once, hangs, or stands behind an open breaker.
    struct StandIn(&'static str);

    impl Upstream for StandIn {
        fn region(&self) -> &str {
            "330000"
        }

        fn call<'a>(
            &'a self,
            _service: ServiceName,
            _biz: &'a Value,
            _idempotent: bool,
        ) -> BoxFuture<'a, Result<Value, UpstreamError>> {
            Box::pin(async move {
                match self.0 {
                    "answers" => Ok(serde_json::json!({"ok": true})),
                    "open" => Err(UpstreamError::CircuitOpen),
                    _ => std::future::pending().await,
                }
            })
        }

        fn notify<'a>(&'a self, _event: &'a Value) -> BoxFuture<'a, Result<(), UpstreamError>> {
            Box::pin(async move {
                match self.0 {
                    "forbidden" => Err(UpstreamError::Status(403)),
                    "unknown-app" => Err(UpstreamError::Business {
                        code: ReturnCode::UnknownApp,
                        msg: "who?".into(),
                    }),
                    "garbage" => Err(UpstreamError::Garbage("x".into())),
                    _ => Ok(()),
                }
            })
        }
    }

    /// A region that refuses the gateway's credentials, or is no longer configured, holds
    /// its callbacks without spending their attempts: each would meet the same until an
    /// operator mends it, and fifty attempts were spent in about 42 minutes.
    #[tokio::test]
    async fn a_callback_a_region_cannot_take_now_is_held() {
        let event = serde_json::json!({});
        for kind in ["forbidden", "unknown-app"] {
            let f = router(kind)
                .notify_region("330000", &event)
                .await
                .unwrap_err();
            assert!(f.not_sent && !f.permanent, "{kind}: {}", f.why);
        }
        let f = router("answers")
            .notify_region("110000", &event)
            .await
            .unwrap_err();
        assert!(f.not_sent, "{}", f.why);
        // Garbage is a failed attempt, counted.
        let f = router("garbage")
            .notify_region("330000", &event)
            .await
            .unwrap_err();
        assert!(!f.not_sent, "{}", f.why);
    }

    fn router(kind: &'static str) -> Router {
        Router::new(vec![(Arc::new(StandIn(kind)), Vec::new())])
    }

    #[tokio::test]
    async fn a_region_call_is_counted_once_made_even_when_the_caller_stops_waiting() {
        let biz = serde_json::json!({});
        let r = router("answers");
        r.call_region("330000", ServiceName::VerifyCode, &biz)
            .await
            .unwrap();
        assert_eq!(r.region_calls(), Some(1));

        // A cross-region query's deadline drops the call: it was made, and counts.
        let r = router("hangs");
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            r.call_region("330000", ServiceName::VerifyCode, &biz),
        )
        .await;
        assert!(waited.is_err());
        assert_eq!(r.region_calls(), Some(1));

        // The open breaker sent nothing.
        let r = router("open");
        assert!(
            r.call_region("330000", ServiceName::VerifyCode, &biz)
                .await
                .is_err()
        );
        assert_eq!(r.region_calls(), Some(0));
    }

    #[test]
    fn the_narrowest_configured_region_serves_a_division() {
        let only = |set: &'static [&'static str]| move |c: &str| set.contains(&c);
        // Hangzhou's Xihu district: the province, unless Hangzhou or Xihu is configured.
        assert_eq!(
            serving_region("330106", only(&["330000"])).as_deref(),
            Some("330000")
        );
        assert_eq!(
            serving_region("330106", only(&["330000", "330100"])).as_deref(),
            Some("330100")
        );
        assert_eq!(
            serving_region("330106", only(&["330106", "330100"])).as_deref(),
            Some("330106")
        );
        assert_eq!(serving_region("330106", only(&["320000"])), None);
        // Short or odd input does not panic.
        assert_eq!(serving_region("3", only(&["330000"])), None);
    }
}
