//! The request path, stage by stage, in one function ([`handle`]). The stages are plain
//! async steps over typed values rather than tower layers, because each needs the typed
//! result of the one before (the parsed envelope, the client, the opened content). The two
//! generic concerns, load shedding and the deadline, wrap the rest.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::http::Peer;
use super::{Answer, Call, CodeMemo, Gateway, GatewayError, PersonMemo, services};
use crate::envelope::{Biz, OpenContext, Session, parse_request, seal_response_with};
use crate::national::validate::{self, Context};
use crate::standard::{Direction, ReturnCode, ServiceName};

/// The response header that carries a call's loss report (DESIGN.md §6).
pub const LOSS_HEADER: &str = "x-hutong-loss";

/// Path prefix of the national services.
pub const PATH_PREFIX: &str = "/phic/v1/";

/// Answers one HTTP request. Never fails: every error becomes a signed envelope. A HEAD
/// request gets the answer GET would, without its body and with the length it would have
/// (left to the protocol, HTTP/2 sends the body's frames all the same).
pub(super) async fn handle(
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let head = req.method() == hyper::Method::HEAD;
    let r = answer_request(gw, permits, peer, req).await;
    if !head {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    if let Some(len) = hyper::body::Body::size_hint(&body).exact() {
        parts.headers.insert(
            hyper::header::CONTENT_LENGTH,
            hyper::header::HeaderValue::from(len),
        );
    }
    Response::from_parts(parts, Full::new(Bytes::new()))
}

async fn answer_request(
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.uri().path().starts_with(super::ingress::INGRESS_PREFIX) {
        return super::ingress::handle(gw, permits, peer, req).await;
    }
    if super::published::is_published(req.uri().path()) {
        return match *req.method() {
            hyper::Method::GET | hyper::Method::HEAD => {
                super::published::serve(gw, permits, &peer, &req).await
            }
            _ => {
                let mut r = plain(405, "text/plain; charset=utf-8", b"GET or HEAD".to_vec());
                r.headers_mut().insert(
                    hyper::header::ALLOW,
                    hyper::header::HeaderValue::from_static("GET, HEAD"),
                );
                r
            }
        };
    }
    let started = Instant::now();
    let tail = req
        .uri()
        .path()
        .strip_prefix(PATH_PREFIX)
        .unwrap_or_default();
    let service = tail.parse::<ServiceName>().ok();
    let platform = PLATFORM_ENDPOINTS.into_iter().find(|p| *p == tail);
    // One span per request; fields are ids and codes only, never personal data.
    // The path is the caller's text: only a known name goes into the log.
    let label: &str = platform.unwrap_or_else(|| service.map_or("unknown", ServiceName::as_str));
    let span = tracing::info_span!(
        "request",
        service = %label,
        request_id = tracing::field::Empty,
        client = tracing::field::Empty,
        code = tracing::field::Empty,
    );
    let mut session: Option<Session> = None;
    let mut request_id: Option<String> = None;
    let losses = super::LossSink::default();

    let route = match platform {
        Some(p) => Route::Platform(p),
        None => Route::Service(service),
    };
    let deadline = gw.config.load().server.request_timeout;
    let outcome = admit(&gw, &permits, &peer, deadline, || {
        // Boxed: the stages' state machine is several kilobytes (every path a request may
        // take lives in it), and the deadline and the span would each move it again.
        Box::pin(stages(
            &gw,
            &peer,
            req,
            route,
            &mut session,
            &mut request_id,
            &losses,
        ))
        .instrument(span.clone())
    })
    .await;
    if matches!(outcome, Err(GatewayError::Shed)) {
        gw.metrics
            .shed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let (code, resp) = match outcome {
        Ok((sess, biz)) => (
            ReturnCode::Success,
            answer(
                &gw,
                &sess,
                ReturnCode::Success,
                "success",
                Some(biz.biz()),
                200,
                None,
            ),
        ),
        Err(e) => {
            let code = e.return_code();
            if let GatewayError::Internal(detail) = &e {
                tracing::error!(error = %detail, "internal error");
            }
            let status = e.http_status(&gw.standard);
            let resp = match (&session, &request_id) {
                // Refused before anything of the request was read: the same signed answer
                // serves every such refusal within a second.
                (None, None) if super::refusals::Refusals::covers(&e) => {
                    let body = gw.refusals.body(&gw.signing_key, code, &e.public_message());
                    respond(body, status, e.retry_after())
                }
                _ => {
                    let sess = session
                        .unwrap_or_else(|| Session::for_rejected_request(request_id.as_deref()));
                    answer(
                        &gw,
                        &sess,
                        code,
                        &e.public_message(),
                        None,
                        status,
                        e.retry_after(),
                    )
                }
            };
            (code, resp)
        }
    };
    let mut resp = resp;
    let report = losses.report();
    if !report.is_empty() {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&report.header_value()) {
            resp.headers_mut().insert(LOSS_HEADER, v);
        }
    }
    match platform {
        Some(name) => gw.metrics.record_own(name, code, started.elapsed()),
        None => gw.metrics.record(service, code, started.elapsed()),
    }
    span.record("request_id", request_id.as_deref().unwrap_or("-"));
    span.record("code", code.as_str());
    let _entered = span.enter(); // the summary line below belongs to the request
    tracing::info!(
        service = service.map_or("none", ServiceName::as_str),
        request_id = request_id.as_deref().unwrap_or("-"),
        peer = %peer.addr,
        code = code.as_str(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

/// Where the signed trust list is published: verifiers fetch it to check national codes
/// offline (DESIGN.md §3).
pub const TRUST_LIST_PATH: &str = "/phic/v1/trust-list";

/// A response that is not an envelope (a published document).
pub(super) fn plain(
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    // The type given is the type meant: no browser sniffs an error text into a page.
    r.headers_mut().insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    r
}

/// The last segment of the status-event endpoint, `POST /phic/v1/statusEvent`.
pub const STATUS_EVENT: &str = "statusEvent";

/// The last segment of the explicit link request, `POST /phic/v1/link`.
pub const LINK: &str = "link";

/// The last segment of a venue code request, `POST /phic/v1/venueCode`.
pub const VENUE_CODE: &str = "venueCode";

/// The last segment of a correction ticket's status, `POST /phic/v1/correctionStatus`.
pub const CORRECTION_STATUS: &str = "correctionStatus";

/// The gateway's own endpoints beside the seven services.
pub const PLATFORM_ENDPOINTS: [&str; 4] = [STATUS_EVENT, LINK, VENUE_CODE, CORRECTION_STATUS];

/// Where a request goes.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// One of the seven services (None: a path that names none).
    Service(Option<ServiceName>),
    /// A gateway endpoint outside the seven services: [`STATUS_EVENT`], [`LINK`],
    /// [`VENUE_CODE`] (regions and the platform only) or [`CORRECTION_STATUS`].
    Platform(&'static str),
}

/// The per-IP limit first, then shedding, then the work `make` gives, under the request's
/// `deadline` (a region call inside ends before it, as a timeout its breaker counts: see
/// crate::upstream::until_deadline). A flood from one address costs one hash lookup a
/// request and takes no place of the concurrency limit (it took one, until its body had
/// arrived, before the limit refused it); a request over the concurrency limit costs no
/// parsing or cryptography, and `make` is not called. Either refusal's signed answer is
/// shared by every such refusal of the second (refusals.rs). The national endpoints and the
/// dialect ingress both come in here.
pub(super) async fn admit<T, F>(
    gw: &Gateway,
    permits: &Semaphore,
    peer: &Peer,
    deadline: std::time::Duration,
    make: impl FnOnce() -> F,
) -> Result<T, GatewayError>
where
    F: Future<Output = Result<T, GatewayError>>,
{
    if let Err(l) = gw.limiter.check_ip(peer.addr.ip()) {
        return Err(GatewayError::RateLimited {
            retry_after_secs: l.retry_after_secs(),
        });
    }
    // A source with this many requests still in flight (bodies that trickle in, on many
    // HTTP/2 streams, say) waits for one of them rather than taking every place below.
    let per_source = gw.config.load().server.max_requests_per_ip;
    let Some(_source) =
        super::sources::Sources::enter(&gw.requests_by_source, peer.addr.ip(), per_source)
    else {
        return Err(GatewayError::RateLimited {
            retry_after_secs: 1,
        });
    };
    let Ok(_permit) = permits.try_acquire() else {
        return Err(GatewayError::Shed);
    };
    let until = tokio::time::Instant::now() + deadline;
    crate::upstream::until_deadline(until, make())
        .await
        .unwrap_or(Err(GatewayError::Deadline))
}

/// The stages after shedding and under the deadline.
async fn stages(
    gw: &Arc<Gateway>,
    peer: &Peer,
    req: Request<Incoming>,
    route: Route,
    session: &mut Option<Session>,
    request_id: &mut Option<String>,
    losses: &super::LossSink,
) -> Result<(Session, Answer), GatewayError> {
    // Route: only POST /phic/v1/{service} and /phic/v1/statusEvent exist.
    if req.method() != hyper::Method::POST {
        return Err(GatewayError::MethodNotAllowed);
    }
    let (service, path_name) = match route {
        Route::Service(s) => {
            let s = s.ok_or(GatewayError::NotFound)?;
            (Some(s), s.as_str())
        }
        Route::Platform(p) => (None, p),
    };
    let cfg = gw.config.load_full();
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let body = read_body(req, cfg.server.max_body_bytes, cfg.server.body_read_timeout).await?;

    // Envelope shape (1001/1002) before anything costly.
    let parsed = parse_request(&body, &gw.limits)?;
    *request_id = Some(parsed.envelope().request_id.clone());
    if parsed.envelope().service != path_name {
        return Err(GatewayError::Domain {
            code: ReturnCode::BadFormat,
            msg: "service differs from the path".into(),
        });
    }

    // Who: the access token (1005/1006), the registered client (1005) and its certificate
    // (1006); then what it may do: the service or, for the gateway's own endpoints, its role
    // (1006). With tokens the token comes first: a stranger without one is told only that,
    // not whether the appId is registered, nor whether it needs a certificate. What the
    // client may call comes after it has shown who it is (its token, or without tokens its
    // signature, below), so that a stranger is not told that either.
    if cfg.auth.require_token {
        match service {
            Some(service) => gw
                .tokens
                .check(authorization.as_deref(), parsed.app_id(), service)?,
            // The gateway's own endpoints: a valid token of the client (its service scopes
            // do not apply).
            None => gw
                .tokens
                .check_any(authorization.as_deref(), parsed.app_id())?,
        };
    }
    let client = cfg
        .clients
        .get(parsed.app_id())
        .ok_or(crate::auth::AuthError::UnknownApp)?
        .clone();
    // The certificate: before any cryptography of the envelope, which would spend the
    // request's nonce and the gateway's time on a caller the transport already refuses.
    // (Without tokens a stranger can tell from it which clients need a certificate: no
    // other check can come first.)
    if client.require_mtls && !peer.cert_app_ids.contains(&client.app_id) {
        return Err(crate::auth::AuthError::Mtls.into());
    }
    // Logged once the caller has shown it is this client: its token here, or without
    // tokens its signature, below.
    if cfg.auth.require_token {
        tracing::Span::current().record("client", client.app_id.as_str());
    }
    let permitted = || -> Result<(), GatewayError> {
        match service {
            Some(service) if !client.may_call(service) => {
                Err(crate::auth::AuthError::Service(service).into())
            }
            Some(_) => Ok(()),
            // Status events come from regions and the platform only; anyone may read the
            // correction tickets they filed.
            None if path_name != CORRECTION_STATUS
                && !matches!(
                    client.role,
                    crate::config::Role::Region | crate::config::Role::Platform
                ) =>
            {
                Err(crate::auth::AuthError::Role.into())
            }
            None => Ok(()),
        }
    };
    if cfg.auth.require_token {
        permitted()?;
    }

    // Per-client limits once the caller is known, so that nobody spends another client's
    // quota: after the access token when one is required (it names its client), which
    // refuses a flood before the envelope's cryptography; otherwise after the signature.
    let check_limit = || {
        match service {
            Some(service) => gw.limiter.check_client(&client.app_id, service),
            // The gateway's own endpoints: the client's own limit, no service's.
            None => gw.limiter.check_client_alone(&client.app_id),
        }
        .map_err(|l| GatewayError::RateLimited {
            retry_after_secs: l.retry_after_secs(),
        })
    };
    if cfg.auth.require_token {
        if let Err(e) = check_limit() {
            *session = Some(parsed.refusal_session(&client.credentials));
            return Err(e);
        }
    }

    // Signature (1003), replay window (1004), decryption (1008).
    let now_ms = now_ms();
    let ctx = OpenContext {
        limits: &gw.limits,
        decryption_key: Some(&gw.decryption_key),
        nonces: gw.nonces.as_ref(),
        now_ms,
    };
    let opened = if cfg.auth.require_token {
        parsed.open(&client.credentials, &ctx)?
    } else {
        let verified = parsed.verify(&client.credentials)?;
        tracing::Span::current().record("client", client.app_id.as_str());
        // A stale or replayed request is refused before it spends the client's quota: a
        // captured request sent again cannot hold the client at its limit.
        verified.check_fresh(&ctx)?;
        // The client's own quota first: a refusal of what it may not call is its request.
        // Both before its nonce is recorded, so that a refused request leaves nothing that
        // would refuse the client's later ones.
        if let Err(e) = check_limit().and_then(|()| permitted()) {
            *session = Some(verified.refusal_session(&client.credentials));
            return Err(e);
        }
        verified.open(&client.credentials, &ctx)?
    };
    *session = Some(opened.session.clone());

    let Some(service) = service else {
        let call = Call {
            service: ServiceName::DeclareHealth,
            client,
            request_id: opened.envelope.request_id.clone(),
            callers_request_id: true,
            losses: losses.clone(),
            code: CodeMemo::default(),
            person: PersonMemo::default(),
        };
        let (answer, subject, purpose) = match path_name {
            LINK => {
                let (a, s) = super::recognition::link_request(gw, &call, &opened.biz).await?;
                (a, s, "link")
            }
            CORRECTION_STATUS => {
                let (a, s) = super::recognition::correction_status(gw, &call, &opened.biz).await?;
                (a, s, "correction")
            }
            VENUE_CODE => (
                super::recognition::issue_venue(gw, &call, &opened.biz).await?,
                None,
                "venue code",
            ),
            _ => {
                let (a, s) = super::recognition::status_event(gw, &call, &opened.biz).await?;
                (a, s, "risk alert")
            }
        };
        services::audit(gw, &call, path_name, subject, ReturnCode::Success, purpose).await?;
        return Ok((opened.session, answer.into()));
    };

    let call = Call {
        service,
        client,
        request_id: opened.envelope.request_id.clone(),
        callers_request_id: true,
        losses: losses.clone(),
        code: CodeMemo::default(),
        person: PersonMemo::default(),
    };
    let answer = serve_call(gw, &call, &opened.biz, now_ms).await?;
    Ok((opened.session, answer))
}

/// Body limits: reads at most `limit` bytes, then refuses (413); a body the client broke off,
/// or did not finish sending within `within`, is a bad request (1002, the client's side: the
/// request's deadline would have called it 9001, as if a region had been slow).
pub(super) async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    within: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    // A body declared too large is refused before any of it is read (and, with
    // `Expect: 100-continue`, before the client is told to send it).
    if hyper::body::Body::size_hint(req.body())
        .exact()
        .is_some_and(|n| n > limit as u64)
    {
        return Err(GatewayError::BodyTooLarge(limit));
    }
    let read = Limited::new(req.into_body(), limit).collect();
    let Ok(read) = tokio::time::timeout(within, read).await else {
        return Err(GatewayError::Domain {
            code: ReturnCode::BadFormat,
            msg: format!(
                "the request body did not arrive within {} ms",
                within.as_millis()
            ),
        });
    };
    Ok(read
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                GatewayError::BodyTooLarge(limit)
            } else {
                GatewayError::Domain {
                    code: ReturnCode::BadFormat,
                    msg: "the request body could not be read".into(),
                }
            }
        })?
        .to_bytes())
}

/// The stages after authentication, shared by the national endpoints and the dialect
/// ingress: the business content against standard/ (1001/1002), then idempotency, cache
/// and relay, then the audit record, whatever the outcome.
pub(super) async fn serve_call(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    now_ms: u64,
) -> Result<Answer, GatewayError> {
    let vcx = Context {
        now_unix: (now_ms / 1000) as i64,
    };
    // Purpose binding (DESIGN.md §8): reading beyond the colour needs a ticket from one's
    // own verification or the holder's consent; without either the answer is 2003, not a
    // schema error.
    if call.service == ServiceName::QueryHealthInfo
        && biz.get("bizExtData").is_none()
        && biz.get("authCode").is_none()
    {
        return Err(GatewayError::Domain {
            code: ReturnCode::NotAuthorised,
            msg: "neither a BizExtData ticket nor the holder's authCode".into(),
        });
    }
    let report =
        validate::validate_value(&gw.standard, call.service, Direction::Request, biz, &vcx);
    if !report.is_valid() {
        return Err(GatewayError::Invalid(report));
    }
    let subject = services::subject_of(gw, call, biz);
    let result = services::process(gw, call, biz, subject).await;
    // The person the gateway found (a ticket's, a consent's, the holder a region named)
    // is the one the answer is about, whatever `user` block came with the call: the audit
    // record, and so the holder's receipt, names them.
    // A refused call that carried a ticket or a consent is not recorded under its `user`
    // block: that names whoever the caller chose, not the person the grant is for.
    let (code, subject) = match &result {
        Ok((_, learned)) => (ReturnCode::Success, learned.or(subject)),
        Err(e) => {
            let grant = super::recognition::is_gateway_ticket(biz)
                || super::recognition::is_gateway_consent(biz);
            (e.return_code(), subject.filter(|_| !grant))
        }
    };
    let purpose = audit_purpose(biz, call.service);
    services::audit(gw, call, call.service.as_str(), subject, code, &purpose).await?;
    result.map(|(answer, _)| answer)
}

/// The purpose an audit record keeps: the caller's `scene` when it is a scene code (`VENUE`,
/// `TRANSPORT`: capitals, digits, `_`), `other` for any other text (the record is kept for
/// the retention period and shown in the holder's receipts, and free text could name
/// someone), the service's name without one.
fn audit_purpose(biz: &Value, service: ServiceName) -> String {
    match biz.get("scene").and_then(Value::as_str) {
        None => service.as_str().to_owned(),
        Some(s)
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            s.to_owned()
        }
        Some(_) => "other".to_owned(),
    }
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Seals an answer. If sealing fails (the OS random source), answers 9999 unsigned: there
/// is nothing better to send, and the client will refuse it.
fn answer(
    gw: &Gateway,
    session: &Session,
    code: ReturnCode,
    msg: &str,
    biz: Option<Biz<'_>>,
    status: u16,
    retry_after: Option<u64>,
) -> Response<Full<Bytes>> {
    let body = seal_answer(session, &gw.signing_key, code, msg, biz).unwrap_or_else(|b| b);
    respond(body, status, retry_after)
}

/// The sealed answer; when sealing fails (the OS random source), logged, and `Err` with the
/// unsigned 9999 that is sent instead.
pub(super) fn seal_answer(
    session: &Session,
    key: &crate::crypto::SigningKey,
    code: ReturnCode,
    msg: &str,
    biz: Option<Biz<'_>>,
) -> Result<Bytes, Bytes> {
    match seal_response_with(session, key, code, msg, biz, now_ms()) {
        Ok(s) => Ok(Bytes::from(s.body)),
        Err(e) => {
            tracing::error!(error = %e, "cannot seal a response");
            Err(Bytes::from(format!(
                "{{\"code\":\"9999\",\"msg\":\"internal error\",\"requestId\":\"{}\"}}",
                session.request_id()
            )))
        }
    }
}

/// An envelope answer with its status and `Retry-After`.
fn respond(body: Bytes, status: u16, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(secs) = retry_after {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&secs.to_string()) {
            h.insert(hyper::header::RETRY_AFTER, v);
        }
    }
    // The services take POST only (a 405 names what the resource allows, RFC 9110).
    if status == 405 {
        h.insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("POST"),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::audit_purpose;
    use crate::standard::ServiceName;

    #[test]
    fn every_platform_endpoint_has_its_metrics_label() {
        for p in super::PLATFORM_ENDPOINTS {
            assert!(crate::metrics::OWN_ENDPOINTS.contains(&p), "{p}");
        }
        for label in ["trust-list", "code-page"] {
            assert!(crate::metrics::OWN_ENDPOINTS.contains(&label), "{label}");
        }
    }

    #[test]
    fn an_audit_purpose_is_a_scene_code_never_free_text() {
        let p = |biz| audit_purpose(&biz, ServiceName::VerifyCode);
        assert_eq!(p(json!({"scene": "TRANSPORT"})), "TRANSPORT");
        assert_eq!(p(json!({"scene": "VENUE_2"})), "VENUE_2");
        assert_eq!(p(json!({"scene": "张三 去医院"})), "other");
        assert_eq!(p(json!({"scene": "venue"})), "other");
        assert_eq!(p(json!({"scene": ""})), "other");
        assert_eq!(p(json!({})), "verifyCode");
    }
}
