//! The request path of the simulator: route, latency, envelope, fault, validation,
//! idempotency, service, seal. See the module map in `mod.rs`.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::Value;

use crate::crypto::{MacKey, SM3_LEN};
use crate::envelope::{
    ClientCredentials, EnvelopeError, EnvelopeLimits, NonceCheck, NonceStore, OpenContext,
    OpenedRequest, ParsedRequest, ResponseEnvelope, SIGN_PARAMETER, SealedResponse, Session,
    SignType, canonical_string, parse_request, random_id, seal_response,
};
use crate::idempotency::fingerprint;
use crate::national::validate::{Context, validate_value};
use crate::server::services::canonical_json;
use crate::standard::{Direction, ReturnCode, ServiceName};

use super::defects::Defect;
use super::faults::{Fault, HANG, garbage_response};
use super::services::{self, Outcome};
use super::{SERVICE_PATH_PREFIX, SimState, now_ms};

/// How long a declaration or correction answer is replayed for its `requestId`.
const IDEMPOTENCY_TTL_SECS: i64 = 86_400;

/// Idempotency records kept at most; the oldest go first.
const MAX_IDEMPOTENCY_RECORDS: usize = 100_000;

/// The answer cached for one `requestId`.
type IdemKey = (String, ServiceName, String);

/// The first answer to a `requestId`, and what it answered.
#[derive(Debug, Clone)]
struct Record {
    /// SM3 of the request's business content with sorted keys (as the gateway takes it).
    fingerprint: [u8; SM3_LEN],
    outcome: Outcome,
}

/// Answers of idempotent services by (appId, service, requestId), for 24 hours.
#[derive(Debug, Default)]
pub(super) struct Idempotency {
    map: HashMap<IdemKey, Record>,
    order: VecDeque<(i64, IdemKey)>,
}

impl Idempotency {
    fn expire(&mut self, now: i64) {
        while let Some((at, _)) = self.order.front() {
            if *at + IDEMPOTENCY_TTL_SECS > now && self.order.len() < MAX_IDEMPOTENCY_RECORDS {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.map.remove(&key);
            }
        }
    }

    fn get(&mut self, key: &IdemKey, now: i64) -> Option<Record> {
        self.expire(now);
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: IdemKey, record: Record, now: i64) {
        self.expire(now);
        if self.map.insert(key.clone(), record).is_none() {
            self.order.push_back((now, key));
        }
    }
}

/// A nonce store that has never seen any nonce: every nonce is fresh.
///
/// DEFECT accept-replay uses it in place of the simulator's real store.
struct ForgetfulNonces;

impl NonceStore for ForgetfulNonces {
    fn check_and_insert(&self, _app_id: &str, _nonce: &str, _now_ms: u64) -> NonceCheck {
        NonceCheck::Fresh
    }
}

/// One request, start to finish.
pub(super) async fn handle(state: &SimState, req: Request<Bytes>) -> Response<Bytes> {
    let Some(name) = req.uri().path().strip_prefix(SERVICE_PATH_PREFIX) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let Ok(service) = name.parse::<ServiceName>() else {
        return text(StatusCode::NOT_FOUND, "no such service");
    };
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST only");
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    let faults = **state.faults.load();
    let (delay, fault) = {
        let mut rng = state.rng.lock().unwrap_or_else(PoisonError::into_inner);
        (faults.delay(&mut rng), faults.roll(&mut rng))
    };
    if !delay.is_zero() && !state.pause(delay).await {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }

    let now_ms = now_ms();
    let parsed = match parse_request(req.body(), &state.limits) {
        Ok(p) => p,
        Err(e) => return reject(state, None, &e, now_ms),
    };
    let request_id = parsed.envelope().request_id.clone();
    if parsed.envelope().service != service.as_str() {
        return reject(
            state,
            Some(&request_id),
            &EnvelopeError::BadFormat("service"),
            now_ms,
        );
    }
    let app_id = parsed.app_id().to_owned();
    let Some(client) = state.clients.get(&app_id) else {
        // DEFECT unknown-app-wrong-code: an unregistered appId is told its signature is bad.
        let e = if state.defects.contains(Defect::UnknownAppWrongCode) {
            EnvelopeError::SignatureInvalid
        } else {
            EnvelopeError::UnknownApp
        };
        return reject(state, Some(&request_id), &e, now_ms);
    };
    let opened = match open(state, parsed, client, now_ms) {
        Ok(o) => o,
        Err(e) => return reject(state, Some(&request_id), &e, now_ms),
    };
    let mac_key = client.mac_key.as_ref();

    // DEFECT ignore-rate-limit: the client's bucket is never consulted.
    if !state.defects.contains(Defect::IgnoreRateLimit) {
        if let Err(limited) = state.quotas.check(&app_id) {
            let o = Outcome::fail(limited.return_code(), "rate limit exceeded");
            let mut r = seal(state, &opened.session, mac_key, &o, now_ms);
            r.headers_mut()
                .insert(header::RETRY_AFTER, limited.retry_after_header());
            return r;
        }
    }

    match fault {
        Fault::Timeout => {
            state.pause(HANG).await;
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        Fault::Garbage => return garbage_response(),
        Fault::Error => {
            let o = Outcome::fail(ReturnCode::SystemError, "simulated failure");
            return seal(state, &opened.session, mac_key, &o, now_ms);
        }
        Fault::None => {}
    }

    let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let outcome = business(state, service, &app_id, &opened, now);
    tracing::debug!(
        service = service.as_str(),
        app_id = %app_id,
        request_id = %opened.envelope.request_id,
        code = outcome.code.as_str(),
        "answered"
    );
    seal(state, &opened.session, mac_key, &outcome, now_ms)
}

/// Authenticates, checks freshness, and decrypts the envelope for `client`. Four seeded
/// defects loosen it here; without them this is [`ParsedRequest::open`] as the gateway
/// runs it.
fn open(
    state: &SimState,
    parsed: ParsedRequest,
    client: &ClientCredentials,
    now_ms: u64,
) -> Result<OpenedRequest, EnvelopeError> {
    let d = state.defects;
    // DEFECT accept-stale-timestamp: a skew window so wide that no timestamp is outside it.
    let unbounded = EnvelopeLimits {
        max_clock_skew_ms: u64::MAX,
        ..state.limits.clone()
    };
    let limits = if d.contains(Defect::AcceptStaleTimestamp) {
        &unbounded
    } else {
        &state.limits
    };
    // DEFECT accept-replay: a nonce store that remembers nothing.
    let nonces: &dyn NonceStore = if d.contains(Defect::AcceptReplay) {
        &ForgetfulNonces
    } else {
        &state.nonces
    };
    // DEFECT accept-plaintext: every client is treated as a registered test client.
    let client = if d.contains(Defect::AcceptPlaintext) {
        Cow::Owned(ClientCredentials {
            insecure_allow_plaintext: true,
            ..client.clone()
        })
    } else {
        Cow::Borrowed(client)
    };
    let ctx = OpenContext {
        limits,
        decryption_key: Some(&state.decryption_key),
        nonces,
        now_ms,
    };
    if d.contains(Defect::SkipSignatureCheck) {
        // DEFECT skip-signature-check: `sign` is never looked at.
        parsed.danger_open_without_signature_check(&client, &ctx)
    } else {
        parsed.open(&client, &ctx)
    }
}

/// Validation, idempotency and the service itself.
fn business(
    state: &SimState,
    service: ServiceName,
    app_id: &str,
    opened: &OpenedRequest,
    now: i64,
) -> Outcome {
    let report = validate_value(
        &state.std,
        service,
        Direction::Request,
        &opened.biz,
        &Context { now_unix: now },
    );
    // DEFECT skip-business-validation: what breaks the standard is taken as accepted.
    if !report.is_valid() && state.defects.contains(Defect::SkipBusinessValidation) {
        return Outcome::answer(ReturnCode::Success, &serde_json::json!({}));
    }
    if !report.is_valid() {
        let paths: Vec<&str> = report
            .violations
            .iter()
            .map(|v| {
                if v.path.is_empty() {
                    "(message)"
                } else {
                    v.path.as_str()
                }
            })
            .collect();
        return Outcome::fail(
            report.return_code(),
            format!("invalid business content: {}", paths.join(", ")),
        );
    }
    if !state.std.service(service).idempotent {
        return services::dispatch(state, service, app_id, &opened.biz, now);
    }
    let key = (
        app_id.to_owned(),
        service,
        opened.envelope.request_id.clone(),
    );
    let fingerprint = fingerprint(&canonical_json(&opened.biz));
    if let Some(first) = state
        .idempotency
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key, now)
    {
        // A correction that reuses a requestId for other content is a duplicate (4002), as
        // the gateway answers it. Declarations replay their first answer either way.
        // DEFECT duplicate-correction-accepted: the first answer is replayed for it too.
        if first.fingerprint != fingerprint
            && service == ServiceName::CorrectHealthInfo
            && !state.defects.contains(Defect::DuplicateCorrectionAccepted)
        {
            return Outcome::fail(
                ReturnCode::CorrectionDuplicate,
                "requestId was used before with other content",
            );
        }
        return first.outcome;
    }
    let outcome = services::dispatch(state, service, app_id, &opened.biz, now);
    if outcome.code != ReturnCode::SystemError {
        state
            .idempotency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(
                key,
                Record {
                    fingerprint,
                    outcome: outcome.clone(),
                },
                now,
            );
    }
    outcome
}

/// The answer to a request whose envelope could not be opened: SM2-signed, no content.
fn reject(
    state: &SimState,
    request_id: Option<&str>,
    e: &EnvelopeError,
    now_ms: u64,
) -> Response<Bytes> {
    let session = Session::for_rejected_request(request_id);
    let o = Outcome::fail(e.return_code(), e.to_string());
    seal(state, &session, None, &o, now_ms)
}

/// The sealed answer `o` to the request of `session`. `mac_key` is the client's, for the
/// defects that sign a MACed answer again.
fn seal(
    state: &SimState,
    session: &Session,
    mac_key: Option<&MacKey>,
    o: &Outcome,
    now_ms: u64,
) -> Response<Bytes> {
    let msg = safe_msg(&o.msg);
    let body = seal_response(
        session,
        &state.response_key,
        o.code,
        &msg,
        o.biz.as_ref(),
        now_ms,
    )
    .and_then(|sealed| answer_body(state, sealed, mac_key));
    match body {
        Ok(body) => {
            // DEFECT wrong-http-status: the status no longer says what the code says.
            let status = if state.defects.contains(Defect::WrongHttpStatus) {
                StatusCode::OK
            } else {
                StatusCode::from_u16(state.std.return_code(o.code).http).unwrap_or(StatusCode::OK)
            };
            let mut r = Response::new(Bytes::from(body));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot seal an answer");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot seal the answer")
        }
    }
}

/// The body of a sealed answer. Without the envelope defects, the body as sealed; with them,
/// the envelope changed after sealing (and signed again where a defect needs a signature
/// that verifies over the changed envelope).
fn answer_body(
    state: &SimState,
    sealed: SealedResponse,
    mac_key: Option<&MacKey>,
) -> Result<String, EnvelopeError> {
    let d = state.defects;
    let wrong_id = d.contains(Defect::WrongRequestId);
    let wrong_order = d.contains(Defect::WrongCanonicalOrder);
    let unsigned_errors = d.contains(Defect::MissingSignatureOnError);
    if !(wrong_id || wrong_order || unsigned_errors) {
        return Ok(sealed.body);
    }
    let mut envelope = sealed.envelope;
    if wrong_id {
        // DEFECT wrong-request-id: the answer names another request, and its signature
        // covers that, so only the client's requestId check can tell.
        envelope.request_id = random_id()?;
    }
    if wrong_id || wrong_order {
        let mut canonical = canonical_string(&envelope_object(&envelope)?);
        if wrong_order {
            // DEFECT wrong-canonical-order: the pairs joined in reverse key order. No value
            // holds `&` (the field rules refuse it), so splitting on it gives the pairs.
            canonical = canonical.split('&').rev().collect::<Vec<_>>().join("&");
        }
        envelope.sign = match envelope.sign_type {
            SignType::Sm2 => BASE64.encode(state.response_key.sign(canonical.as_bytes())),
            SignType::HmacSm3 => {
                let key = mac_key.ok_or(EnvelopeError::KeyUnknown("HMAC-SM3 key"))?;
                BASE64.encode(key.tag(canonical.as_bytes()))
            }
        };
    }
    let mut object = envelope_object(&envelope)?;
    if unsigned_errors && envelope.code != ReturnCode::Success.as_str() {
        // DEFECT missing-signature-on-error: every answer but a success goes out unsigned.
        object.remove(SIGN_PARAMETER);
    }
    serde_json::to_string(&object).map_err(|_| EnvelopeError::Internal("answer does not serialise"))
}

fn envelope_object(
    envelope: &ResponseEnvelope,
) -> Result<serde_json::Map<String, Value>, EnvelopeError> {
    match serde_json::to_value(envelope) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(EnvelopeError::Internal("answer is not a JSON object")),
    }
}

/// A message the envelope accepts: no control characters or `&`, at most 400 bytes.
fn safe_msg(m: &str) -> String {
    let mut out = String::with_capacity(m.len().min(400));
    for c in m.chars() {
        let c = if c.is_control() || c == '&' { '?' } else { c };
        if out.len() + c.len_utf8() > 400 {
            break;
        }
        out.push(c);
    }
    out
}

fn text(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(body.as_bytes()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
