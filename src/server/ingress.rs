//! Dialect ingress: a region's own systems call the gateway in their dialect and get their
//! dialect back (DESIGN.md §6). A Jiangsu-style verifier posts its usual form to
//! `POST /dialect/jiangsu/skm/verify`; the gateway answers as the Jiangsu back-end would,
//! whichever region's code it was.
//!
//! `/dialect/<id><ingress_path>`, where `ingress_path` is declared per service in the
//! dialect file. The stages, after shedding and under the deadline as on the national
//! endpoints:
//!
//! 1. per-IP limit; the dialect and the service from the path (404 otherwise);
//! 2. who: the caller's access token names its `appId` (or, without tokens, its client
//!    certificate); the client must be registered with this dialect (1006), may call the
//!    service (1006), and shows its certificate when it must (1006);
//! 3. the body in the dialect's codec, its signature under the client's dialect
//!    credentials (1003, 1004);
//! 4. per-client limit; the request translated to the national model (1002 naming the
//!    field), then the same path as a national call ([`super::pipeline::serve_call`]:
//!    validation, cache, relay, audit);
//! 5. the national answer, or the error's return code, translated back into the dialect
//!    (its result code and message), with the loss report of both translations in
//!    `X-Hutong-Loss`.
//!
//! The answer is not signed: the dialects' schemes sign requests only. A caller that
//! needs the gateway's signature uses the national endpoints.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::http::Peer;
use super::pipeline::{LOSS_HEADER, now_ms, read_body, serve_call};
use super::{Call, CodeMemo, Gateway, GatewayError, LossSink, PersonMemo};
use crate::auth::AuthError;
use crate::standard::{Direction, ReturnCode, ServiceName};
use crate::translate::sign::{self, Credentials};
use crate::translate::{Dialect, codec, to_dialect, to_national};

/// Path prefix of the dialect ingress.
pub const INGRESS_PREFIX: &str = "/dialect/";

/// Answers one request under [`INGRESS_PREFIX`]. Never fails: every error becomes the
/// dialect's own error answer (or a plain JSON one when the dialect is unknown).
pub(super) async fn handle(
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let cfg = gw.config.load_full();
    let rest = req
        .uri()
        .path()
        .strip_prefix(INGRESS_PREFIX)
        .unwrap_or_default();
    let (id, sub) = rest.split_once('/').unwrap_or((rest, ""));
    let sub = format!("/{sub}");
    let dialect = cfg.dialects.get(id).cloned();
    let service = dialect.as_ref().and_then(|d| d.service_at_ingress(&sub));
    let span = tracing::info_span!(
        "ingress",
        dialect = %dialect.as_ref().map_or("unknown", |d| d.id.as_str()),
        service = %service.map_or("unknown", ServiceName::as_str),
        client = tracing::field::Empty,
        code = tracing::field::Empty,
    );
    let losses = LossSink::default();
    // The per-IP limit, the concurrency limit and the deadline, as on the national path.
    let deadline = cfg.server.request_timeout;
    let outcome = super::pipeline::admit(&gw, &permits, &peer, deadline, || {
        tracing::Instrument::instrument(
            async {
                let (Some(d), Some(service)) = (&dialect, service) else {
                    return Err(GatewayError::NotFound);
                };
                stages(&gw, &peer, req, d, service, &losses).await
            },
            span.clone(),
        )
    })
    .await;
    let (mut code, national, retry_after) = match outcome {
        Ok(biz) => (
            ReturnCode::Success,
            json!({"code": "0", "msg": "success", "bizContent": biz}),
            None,
        ),
        Err(e) => {
            if let GatewayError::Internal(detail) = &e {
                tracing::error!(parent: &span, error = %detail, "internal error");
            }
            let code = e.return_code();
            (
                code,
                json!({"code": code.as_str(), "msg": e.public_message()}),
                e.retry_after(),
            )
        }
    };
    let mut resp = match (&dialect, service) {
        (Some(d), Some(s)) => {
            let _entered = span.enter();
            let (said, resp) = answer_in_dialect(d, s, &gw.standard, code, national, &losses);
            code = said;
            resp
        }
        _ => plain_answer(&national, 404),
    };
    // A 1007 or a shed request says when to come back, as on the national endpoints.
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(secs),
        );
    }
    let report = losses.report();
    if !report.is_empty() {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&report.header_value()) {
            resp.headers_mut().insert(LOSS_HEADER, v);
        }
    }
    gw.metrics.record(service, code, started.elapsed());
    span.record("code", code.as_str());
    let _entered = span.enter();
    tracing::info!(
        peer = %peer.addr,
        code = code.as_str(),
        micros = started.elapsed().as_micros() as u64,
        "ingress request"
    );
    resp
}

async fn stages(
    gw: &Arc<Gateway>,
    peer: &Peer,
    req: Request<Incoming>,
    dialect: &Arc<Dialect>,
    service: ServiceName,
    losses: &LossSink,
) -> Result<Value, GatewayError> {
    let cfg = gw.config.load_full();
    let map = dialect.service(service).ok_or(GatewayError::NotFound)?;
    if !req.method().as_str().eq_ignore_ascii_case(&map.method) {
        return Err(GatewayError::MethodNotAllowed);
    }
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();

    // Who: the token names the client; without tokens, its certificate does.
    let app_id = if cfg.auth.require_token {
        gw.tokens.identify(authorization.as_deref())?.sub.clone()
    } else {
        match peer.cert_app_ids.as_slice() {
            [one] => one.clone(),
            _ => return Err(AuthError::MissingToken.into()),
        }
    };
    let client = cfg
        .clients
        .get(&app_id)
        .ok_or(AuthError::UnknownApp)?
        .clone();
    tracing::Span::current().record("client", client.app_id.as_str());
    if client.require_mtls && !peer.cert_app_ids.contains(&client.app_id) {
        return Err(AuthError::Mtls.into());
    }
    let check_limit = || {
        gw.limiter
            .check_client(&client.app_id, service)
            .map_err(|l| GatewayError::RateLimited {
                retry_after_secs: l.retry_after_secs(),
            })
    };
    if cfg.auth.require_token {
        gw.tokens
            .check(authorization.as_deref(), &client.app_id, service)?;
        // The token says who calls: over its limit, the client is refused before any
        // reading, decoding or cryptography.
        check_limit()?;
    }
    let Some((client_dialect, creds)) = &client.dialect else {
        return Err(AuthError::Service(service).into());
    };
    if client_dialect.id != dialect.id || !client.may_call(service) {
        return Err(AuthError::Service(service).into());
    }

    let body = read_body(req, cfg.server.max_body_bytes, cfg.server.body_read_timeout).await?;
    let msg = codec::decode(dialect.codec, &body).map_err(|e| GatewayError::Domain {
        code: ReturnCode::BadFormat,
        msg: e.to_string(),
    })?;
    let now_ms = now_ms();
    // Only a signature over fields reads them as sent (a second parse of the body).
    let sent = match (&dialect.codec, &dialect.signing) {
        (crate::translate::Codec::Json, crate::translate::Signing::HmacSha256Concat { .. }) => {
            sign::SentText::of_json(&body)
        }
        _ => sign::SentText::default(),
    };
    sign::verify_as_sent(
        &dialect.signing,
        &msg,
        &sent,
        &headers,
        &Credentials {
            id: &creds.id,
            key: &creds.key,
            secret: &creds.secret,
        },
        i64::try_from(now_ms / 1000).unwrap_or(i64::MAX),
    )
    .map_err(|e| sign_error(&e))?;
    if !cfg.auth.require_token {
        // Without a token only the signature says who calls: the limit comes after it (a
        // forged request spends no one's quota), and before the nonce is recorded (a
        // request over the limit leaves nothing that refuses the client's later ones).
        check_limit()?;
    }
    // A verified request is one-time: its nonce is recorded, as the envelope's is, so a
    // captured request cannot be sent again within its window.
    let unix_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    if let Some(nonce) = sign::one_time_value(&dialect.signing, &msg, &headers, unix_s)
        .map_err(|e| sign_error(&e))?
    {
        let scoped = format!("dialect:{}", client.app_id);
        gw.nonces
            .check_and_insert(&scoped, &nonce, now_ms)
            .fresh()?;
    }

    let national = to_national(dialect, service, Direction::Request, &msg).map_err(|e| {
        GatewayError::Domain {
            code: ReturnCode::parse(e.return_code(Direction::Request))
                .unwrap_or(ReturnCode::BadFormat),
            msg: e.to_string(),
        }
    })?;
    losses.add(national.losses);
    let mut biz = national.body;
    losses.add(caller_defaults(service, &mut biz, &client));
    let request_id =
        crate::envelope::random_id().map_err(|e| GatewayError::Internal(e.to_string()))?;
    let call = Call {
        service,
        client,
        request_id,
        callers_request_id: false,
        losses: losses.clone(),
        code: CodeMemo::default(),
        person: PersonMemo::default(),
    };
    // The dialect's translation reads the answer as a value.
    serve_call(gw, &call, &biz, now_ms).await?.into_value()
}

/// What the gateway knows of a registered caller and a dialect may not carry: a verifier's
/// area (`location.region`) and its device (`verifier.deviceId`, the caller's `appId`).
/// Filled only where absent, each named in the loss report as defaulted.
fn caller_defaults(
    service: ServiceName,
    biz: &mut Value,
    client: &crate::config::Client,
) -> crate::translate::LossReport {
    let mut report = crate::translate::LossReport::default();
    if service != ServiceName::VerifyCode {
        return report;
    }
    let Some(obj) = biz.as_object_mut() else {
        return report;
    };
    for (outer, inner, value) in [
        ("location", "region", client.region.as_str()),
        ("verifier", "deviceId", client.app_id.as_str()),
    ] {
        let slot = obj
            .entry(outer)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(m) = slot.as_object_mut() {
            if !m.contains_key(inner) {
                m.insert(inner.to_owned(), Value::from(value));
                report.push(
                    crate::translate::LossKind::Defaulted,
                    Some(&format!("{outer}.{inner}")),
                    None,
                    "from the caller's registration",
                );
            }
        }
    }
    report
}

/// The answer to a dialect's caller, and the return code it says: the national outcome
/// (`code`, `national`) in the dialect. An answer that holds a value the dialect cannot say
/// (a colour outside its map, say) is not sent as its result code alone, which would read as
/// a success without data: the caller is told the gateway failed (9999), in its dialect.
/// A failure the dialect cannot say (it has no result codes, or none for this one) goes as
/// the national outcome, plainly, with the return code's HTTP status (never 2xx).
fn answer_in_dialect(
    d: &Dialect,
    service: ServiceName,
    std: &crate::standard::Standard,
    mut code: ReturnCode,
    mut national: Value,
    losses: &LossSink,
) -> (ReturnCode, Response<Full<Bytes>>) {
    // A dialect without result codes says an outcome by HTTP status alone.
    let says_outcome = d
        .service(service)
        .is_some_and(|m| m.response.result.is_some());
    if code == ReturnCode::Success || says_outcome {
        match dialect_answer(d, service, &national, losses) {
            Ok(r) => return (code, r),
            Err(e) => {
                tracing::warn!(dialect = %d.id, error = %e, "answer does not translate");
                if code == ReturnCode::Success {
                    code = ReturnCode::SystemError;
                    national = json!({"code": code.as_str(),
                        "msg": "the answer holds a value this dialect cannot express"});
                }
            }
        }
    }
    let status = std.return_code(code).http;
    let status = if (200..300).contains(&status) {
        500
    } else {
        status
    };
    let resp = if says_outcome {
        dialect_answer(d, service, &national, losses)
            .unwrap_or_else(|_| plain_answer(&national, status))
    } else {
        plain_answer(&national, status)
    };
    (code, resp)
}

/// The national outcome in the dialect: its result code and message, its fields.
fn dialect_answer(
    d: &Dialect,
    service: ServiceName,
    national: &Value,
    losses: &LossSink,
) -> Result<Response<Full<Bytes>>, crate::translate::TranslateError> {
    let t = to_dialect(d, service, Direction::Response, national)?;
    let body = codec::encode(d.response_codec, &t.body)?;
    losses.add(t.losses);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    if let Ok(v) = hyper::header::HeaderValue::from_str(d.response_codec.content_type()) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(r)
}

fn plain_answer(national: &Value, status: u16) -> Response<Full<Bytes>> {
    let body = json!({"code": national.get("code"), "msg": national.get("msg")});
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A dialect signature's failure as the caller sees it, with its return code.
fn sign_error(e: &sign::SignError) -> GatewayError {
    GatewayError::Domain {
        code: ReturnCode::parse(e.return_code()).unwrap_or(ReturnCode::SignatureInvalid),
        msg: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
