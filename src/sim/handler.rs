//! The request path of the simulator: route, latency, envelope, fault, validation,
//! idempotency, service, seal. See the module map in `mod.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};

use crate::envelope::{
    EnvelopeError, OpenContext, OpenedRequest, Session, parse_request, seal_response,
};
use crate::national::validate::{Context, validate_value};
use crate::standard::{Direction, ReturnCode, ServiceName};

use super::faults::{Fault, HANG, garbage_response};
use super::services::{self, Outcome};
use super::{SERVICE_PATH_PREFIX, SimState, now_ms};

/// How long a declaration or correction answer is replayed for its `requestId`.
const IDEMPOTENCY_TTL_SECS: i64 = 86_400;

/// Idempotency records kept at most; the oldest go first.
const MAX_IDEMPOTENCY_RECORDS: usize = 100_000;

/// The answer cached for one `requestId`.
type IdemKey = (String, ServiceName, String);

/// Answers of idempotent services by (appId, service, requestId), for 24 hours.
#[derive(Debug, Default)]
pub(super) struct Idempotency {
    map: HashMap<IdemKey, Outcome>,
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

    fn get(&mut self, key: &IdemKey, now: i64) -> Option<Outcome> {
        self.expire(now);
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: IdemKey, outcome: Outcome, now: i64) {
        self.expire(now);
        if self.map.insert(key.clone(), outcome).is_none() {
            self.order.push_back((now, key));
        }
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
        return reject(state, Some(&request_id), &EnvelopeError::UnknownApp, now_ms);
    };
    let ctx = OpenContext {
        limits: &state.limits,
        decryption_key: Some(&state.decryption_key),
        nonces: &state.nonces,
        now_ms,
    };
    let opened = match parsed.open(client, &ctx) {
        Ok(o) => o,
        Err(e) => return reject(state, Some(&request_id), &e, now_ms),
    };

    match fault {
        Fault::Timeout => {
            state.pause(HANG).await;
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        Fault::Garbage => return garbage_response(),
        Fault::Error => {
            let o = Outcome::fail(ReturnCode::SystemError, "simulated failure");
            return seal(state, &opened.session, &o, now_ms);
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
    seal(state, &opened.session, &outcome, now_ms)
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
    if let Some(o) = state
        .idempotency
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key, now)
    {
        return o;
    }
    let outcome = services::dispatch(state, service, app_id, &opened.biz, now);
    if outcome.code != ReturnCode::SystemError {
        state
            .idempotency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, outcome.clone(), now);
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
    seal(state, &session, &o, now_ms)
}

fn seal(state: &SimState, session: &Session, o: &Outcome, now_ms: u64) -> Response<Bytes> {
    let msg = safe_msg(&o.msg);
    match seal_response(
        session,
        &state.response_key,
        o.code,
        &msg,
        o.biz.as_ref(),
        now_ms,
    ) {
        Ok(sealed) => {
            let status =
                StatusCode::from_u16(state.std.return_code(o.code).http).unwrap_or(StatusCode::OK);
            let mut r = Response::new(Bytes::from(sealed.body));
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
