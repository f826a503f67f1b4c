//! The simulator's side doors, for tests and demos that run it as a separate process:
//!
//! - `POST {dialect callback path}`: the gateway's status-change callback, in the dialect
//!   (signed like every request); kept, in order, and answered 200.
//! - `GET /sim/callbacks`: the callbacks received, as national event fields (JSON list).
//! - `GET /sim/sample/{i}`: person `i` of the synthetic population: code content, name and
//!   ID number (all synthetic), colour.
//! - `POST /sim/status` with `{"index": i, "colour": "10"}`: the region's own rules give
//!   person `i` a new colour, as a health office would.
//!
//! The population is synthetic, so its names and numbers are no one's; the side doors
//! still listen only where the simulator does (loopback by default).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::super::now_ms;
use super::handler::text;
use super::{RegionState, answer, wire};
use crate::code::Colour;
use crate::national::time::DateTime;

/// Answers a side-door request, or `None` for the dialect's own paths.
pub(super) fn handle(state: &RegionState, req: &Request<Bytes>) -> Option<Response<Bytes>> {
    let path = req.uri().path();
    let is_callback = state
        .dialect
        .callback
        .as_ref()
        .is_some_and(|c| c.path == path);
    if is_callback && req.method() == Method::POST {
        return Some(callback(state, req));
    }
    match (req.method(), path) {
        (&Method::GET, "/sim/callbacks") => {
            let list = crate::store::lock(&state.callbacks).clone();
            Some(json_response(StatusCode::OK, &Value::Array(list)))
        }
        (&Method::POST, "/sim/status") => Some(set_status(state, req.body())),
        (&Method::GET, p) if p.starts_with("/sim/sample/") => {
            let i = p["/sim/sample/".len()..].parse::<usize>().ok();
            Some(sample(state, i))
        }
        _ => None,
    }
}

fn callback(state: &RegionState, req: &Request<Bytes>) -> Response<Bytes> {
    let inbound = match wire::open(&state.dialect, &state.callers, req, now_ms()) {
        Ok(i) => i,
        Err(e) => return text(StatusCode::UNAUTHORIZED, static_reason(&e)),
    };
    match crate::translate::callback_to_event(&state.dialect, &inbound.msg) {
        Ok(Some(event)) => {
            crate::store::lock(&state.callbacks).push(event);
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        _ => text(StatusCode::BAD_REQUEST, "callback not understood"),
    }
}

fn static_reason(e: &wire::WireError) -> &'static str {
    match e.return_code() {
        crate::standard::ReturnCode::SignatureInvalid => "signature invalid",
        _ => "callback refused",
    }
}

fn sample(state: &RegionState, i: Option<usize>) -> Response<Bytes> {
    let pop = state.population();
    let Some(p) = i.and_then(|i| pop.get(i)) else {
        return text(StatusCode::NOT_FOUND, "no such person");
    };
    json_response(
        StatusCode::OK,
        &json!({
            "codeContent": answer::code_content(&state.dialect, p),
            "codeId": p.code_id.as_str(),
            "name": p.name,
            "idNo": p.id_no,
            "colour": p.colour.as_str(),
        }),
    )
}

fn set_status(state: &RegionState, body: &[u8]) -> Response<Bytes> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected {\"index\": i, \"colour\": \"10\"}",
        );
    };
    let index = v
        .get("index")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok());
    let colour = v
        .get("colour")
        .and_then(Value::as_str)
        .and_then(Colour::parse);
    let (Some(i), Some(colour)) = (index, colour) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected {\"index\": i, \"colour\": \"10\"}",
        );
    };
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let mut pop = state.population_mut();
    let Some(p) = pop.get_mut(i) else {
        return text(StatusCode::NOT_FOUND, "no such person");
    };
    p.assigned = colour;
    p.assigned_reason = "set by the region's health office".into();
    p.reevaluate(now);
    json_response(
        StatusCode::OK,
        &json!({
            "codeId": p.code_id.as_str(),
            "colour": p.colour.as_str(),
            "updateTime": DateTime::from_unix(p.update_time).to_string(),
        }),
    )
}

fn json_response(status: StatusCode, v: &Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
