//! The request path of the region simulator: route, latency, wire (decode and signature),
//! fault, translation to the national model, answer, translation back, wire. See the map in
//! `mod.rs`.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use serde_json::{Map, Value};

use crate::standard::{Direction, ReturnCode, ServiceName};
use crate::translate;

use super::super::faults::{Fault, HANG, garbage_response};
use super::super::now_ms;
use super::super::services::Outcome;
use super::{RegionState, answer, wire};

/// What tickets and authCodes are bound to when the dialect signs nothing.
const ANONYMOUS: &str = "anonymous";

/// One request, start to finish.
pub(super) async fn handle(state: &RegionState, req: Request<Bytes>) -> Response<Bytes> {
    let path = req.uri().path();
    if let Some(r) = super::control::handle(state, &req) {
        return r;
    }
    let Some(&service) = state.routes.get(&(req.method().clone(), path.to_owned())) else {
        return if state.routes.keys().any(|(_, p)| p == path) {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        } else {
            text(StatusCode::NOT_FOUND, "not found")
        };
    };
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
    let inbound = match wire::open(&state.dialect, &state.callers, &req, now_ms) {
        Ok(i) => i,
        Err(e) => {
            return respond(
                state,
                service,
                &Outcome::fail(e.return_code(), e.to_string()),
            );
        }
    };

    match fault {
        Fault::Timeout => {
            state.pause(HANG).await;
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        Fault::Garbage => return garbage_response(),
        Fault::Error => {
            let o = Outcome::fail(ReturnCode::SystemError, "simulated failure");
            return respond(state, service, &o);
        }
        Fault::None => {}
    }

    let caller = inbound
        .caller
        .and_then(|i| state.callers.get(i))
        .map_or(ANONYMOUS, |c| c.app_key.as_str());
    let outcome =
        match translate::to_national(&state.dialect, service, Direction::Request, &inbound.msg) {
            Ok(t) => {
                let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
                answer::dispatch(state, service, caller, &t.body, now)
            }
            Err(e) => {
                let code = ReturnCode::parse(e.return_code(Direction::Request))
                    .unwrap_or(ReturnCode::BadFormat);
                Outcome::fail(code, e.to_string())
            }
        };
    tracing::debug!(
        dialect = %state.dialect.id,
        service = service.as_str(),
        code = outcome.code.as_str(),
        "answered"
    );
    respond(state, service, &outcome)
}

/// The national answer `{code, msg, bizContent}` written in the dialect. An answer the
/// dialect cannot express becomes 9999; if even that fails, a plain 500.
fn respond(state: &RegionState, service: ServiceName, o: &Outcome) -> Response<Bytes> {
    let mut national = Map::new();
    national.insert("code".into(), Value::String(o.code.as_str().to_owned()));
    national.insert("msg".into(), Value::String(safe_msg(&o.msg)));
    if let Some(b) = &o.biz {
        national.insert("bizContent".into(), b.clone());
    }
    let written = translate::to_dialect(
        &state.dialect,
        service,
        Direction::Response,
        &Value::Object(national),
    )
    .map_err(wire::WireError::Answer)
    .and_then(|t| {
        if !t.losses.is_empty() {
            tracing::debug!(losses = %t.losses.header_value(), "answer translated with losses");
        }
        wire::write(&state.dialect, &t.body)
    });
    match written {
        Ok((headers, body)) => {
            let mut r = Response::new(body);
            *r.headers_mut() = headers;
            *r.status_mut() = status(state, service, o.code);
            r
        }
        Err(e) if o.code != ReturnCode::SystemError => {
            tracing::error!(dialect = %state.dialect.id, error = %e, "cannot write an answer");
            let fallback = Outcome::fail(ReturnCode::SystemError, "answer could not be written");
            respond(state, service, &fallback)
        }
        Err(e) => {
            tracing::error!(dialect = %state.dialect.id, error = %e, "cannot write an answer");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot write the answer")
        }
    }
}

/// 200 when the dialect carries a result code in its answers; otherwise the HTTP status
/// the standard gives the return code, the only way such a dialect tells a failure.
fn status(state: &RegionState, service: ServiceName, code: ReturnCode) -> StatusCode {
    let has_result = state
        .dialect
        .service(service)
        .is_some_and(|s| s.response.result.is_some());
    if has_result {
        StatusCode::OK
    } else {
        StatusCode::from_u16(state.std.return_code(code).http).unwrap_or(StatusCode::OK)
    }
}

/// A message without control characters, at most 400 bytes.
fn safe_msg(m: &str) -> String {
    let mut out = String::with_capacity(m.len().min(400));
    for c in m.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > 400 {
            break;
        }
        out.push(c);
    }
    out
}

pub(super) fn text(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(body.as_bytes()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
