//! [`DialectUpstream`]: a region whose back-end speaks its own dialect (egress).
//!
//! A call goes: the national business content → [`crate::translate::to_dialect`] → the
//! dialect's signing scheme ([`crate::translate::sign`]) → its codec → the back-end's path,
//! over the same [`Transport`] as a national region (pool, deadlines, retries, breaker).
//! The answer comes back through the dialect's response codec and
//! [`crate::translate::to_national`], and is checked against `standard/` like any region's.
//! Both translations' loss reports travel with the answer to the audit record and the
//! `X-Hutong-Loss` header.
//!
//! Tickets (`bizExtData`) that a dialect region hands out are its own strings; the gateway
//! prefixes them with the region's first issuer id and a `.`, the way national tickets name
//! their issuer, so that a later `queryHealthInfo` routes back here. The prefix is removed
//! before the ticket goes back to the region.

use std::sync::Arc;

use http::Method;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::national::validate::{Context, validate_value};
use crate::standard::{Direction, ReturnCode, ServiceName, Standard};
use crate::translate::sign::{self, Credentials, Stamp};
use crate::translate::{Dialect, GatewayFilled, LossReport, codec, to_dialect, to_national};

use super::national::now_ms;
use super::transport::Transport;
use super::{
    BoxFuture, BreakerState, CircuitBreaker, DEFAULT_MAX_RESPONSE_BYTES, HolderId, Reply, Upstream,
    UpstreamConfigError, UpstreamError, UpstreamPolicy,
};

/// The gateway's credentials at a dialect region. `Debug` hides the key and secret.
#[derive(Clone, Default)]
pub struct DialectCredentials {
    /// The gateway's id at the region (appKey, paas id).
    pub id: String,
    /// The HMAC key, where the scheme has one.
    pub key: Zeroizing<Vec<u8>>,
    /// The shared secret or token.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for DialectCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialectCredentials")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Everything a [`DialectUpstream`] is built from.
#[derive(Debug, Clone)]
pub struct DialectUpstreamConfig {
    /// The region's GB/T 2260 code.
    pub region: String,
    /// Base URL of the back-end; each service goes to `{base_url}{path}` of its dialect.
    pub base_url: String,
    /// The region's dialect.
    pub dialect: Arc<Dialect>,
    /// The gateway's credentials at the region.
    pub credentials: DialectCredentials,
    /// The issuer id its tickets are prefixed with.
    pub ticket_issuer: Option<String>,
    /// CA certificates for an `https://` back-end.
    pub ca_pem: Option<String>,
    /// Timing, retries and breaker.
    pub policy: UpstreamPolicy,
    /// Largest answer body, bytes.
    pub max_response_bytes: usize,
    /// The breaker of the upstream this one replaces (a reload, same region and URL): its
    /// state carries over, so that a region that is down is not called afresh.
    pub breaker: Option<Arc<CircuitBreaker>>,
}

impl DialectUpstreamConfig {
    /// A configuration with the default policy.
    pub fn new(
        region: impl Into<String>,
        base_url: impl Into<String>,
        dialect: Arc<Dialect>,
        credentials: DialectCredentials,
    ) -> Self {
        Self {
            region: region.into(),
            base_url: base_url.into(),
            dialect,
            credentials,
            ticket_issuer: None,
            ca_pem: None,
            policy: UpstreamPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            breaker: None,
        }
    }
}

/// A region reached through its dialect.
pub struct DialectUpstream {
    transport: Transport,
    dialect: Arc<Dialect>,
    credentials: DialectCredentials,
    ticket_issuer: Option<String>,
    std: Arc<Standard>,
}

impl std::fmt::Debug for DialectUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialectUpstream")
            .field("region", &self.transport.region())
            .field("dialect", &self.dialect.id)
            .finish_non_exhaustive()
    }
}

impl DialectUpstream {
    /// Checks the configuration and builds the pooled client.
    ///
    /// # Errors
    /// Every problem of the base URL, CA, policy and credentials.
    pub fn new(config: DialectUpstreamConfig) -> Result<Self, UpstreamConfigError> {
        let mut problems = Vec::new();
        if matches!(
            config.dialect.signing,
            crate::translate::Signing::NationalSm2
        ) {
            problems.push(format!(
                "dialect `{}` speaks the national envelope: configure the region without a dialect",
                config.dialect.id
            ));
        }
        let transport = Transport::new(
            config.region.clone(),
            &config.base_url,
            config.ca_pem.as_deref(),
            &config.policy,
            config.max_response_bytes,
            config.breaker.clone(),
            problems,
        )?;
        Ok(Self {
            transport,
            dialect: config.dialect,
            credentials: config.credentials,
            ticket_issuer: config.ticket_issuer,
            std: Standard::embedded(),
        })
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.transport.breaker_state()
    }

    /// The dialect spoken.
    pub fn dialect(&self) -> &Arc<Dialect> {
        &self.dialect
    }

    async fn call_inner(
        &self,
        service: ServiceName,
        biz: &Value,
        idempotent: bool,
    ) -> Result<Reply, UpstreamError> {
        self.call_inner_keyed(service, biz, idempotent, None).await
    }

    /// [`Self::call_inner`]; with a key, the request id the signature covers
    /// (`requestId`, `request_id`) is the key, the same for every attempt, where an unkeyed
    /// call draws a fresh one per attempt.
    async fn call_inner_keyed(
        &self,
        service: ServiceName,
        biz: &Value,
        idempotent: bool,
        key: Option<&str>,
    ) -> Result<Reply, UpstreamError> {
        let Some(map) = self.dialect.service(service) else {
            return Err(UpstreamError::Business {
                code: ReturnCode::NoPermission,
                msg: format!("the region does not offer {}", service.as_str()),
            });
        };
        let biz = self.unwrap_ticket(biz);
        let mut request = to_dialect(&self.dialect, service, Direction::Request, &biz)
            .map_err(|e| UpstreamError::Build(format!("request does not translate: {e}")))?;
        // Retried only when the region can tell a retry from a new request: the key travels
        // in a signed request id that every attempt repeats. A dialect without one (no
        // signature, a date password, x-tif headers with a fresh nonce each time) would file
        // a second declaration for a first that timed out after the region acted.
        let carried = key.is_some_and(|k| carry_key(&self.dialect.signing, &mut request.body, k));
        let idempotent = idempotent && carried;
        let method = Method::from_bytes(map.method.as_bytes()).unwrap_or(Method::POST);
        let path = map.path.clone();
        self.transport
            .call(service, idempotent, || {
                self.attempt(
                    service,
                    method.clone(),
                    &path,
                    &request.body,
                    &request.losses,
                )
            })
            .await
    }

    /// One exchange: sign (a fresh stamp per attempt), encode, send, read, translate back.
    async fn attempt(
        &self,
        service: ServiceName,
        method: Method,
        path: &str,
        msg: &Value,
        request_losses: &LossReport,
    ) -> Result<Reply, UpstreamError> {
        let unix_s = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
        let (status, answer) = self.send(method, path, msg).await?;
        let decoded = match codec::decode(self.dialect.response_codec, &answer) {
            Ok(v) => v,
            Err(_) if !status.is_success() => return Err(UpstreamError::Status(status.as_u16())),
            Err(e) => return Err(UpstreamError::Garbage(format!("answer: {e}"))),
        };
        // An answer that does not translate is the region's (or a proxy's) failure, counted
        // against it; with an HTTP error status, that status (a 503 page in JSON).
        let back = match to_national(&self.dialect, service, Direction::Response, &decoded) {
            Ok(b) => b,
            Err(_) if !status.is_success() => return Err(UpstreamError::Status(status.as_u16())),
            Err(e) => return Err(UpstreamError::Garbage(format!("answer: {e}"))),
        };
        let holder =
            crate::translate::holder_id(&self.dialect, service, Direction::Response, &decoded).map(
                |(id_type, id_no)| HolderId {
                    id_type,
                    id_no: Zeroizing::new(id_no),
                },
            );
        let code = back
            .body
            .get("code")
            .and_then(Value::as_str)
            .and_then(ReturnCode::parse)
            .ok_or_else(|| {
                // A proxy's or server's error page that happens to decode (a 503 in JSON):
                // the HTTP status says what happened, and 502 to 504 may be retried.
                if status.is_success() {
                    UpstreamError::Garbage("answer has no known result code".into())
                } else {
                    UpstreamError::Status(status.as_u16())
                }
            })?;
        if !status.is_success()
            && matches!(code, ReturnCode::Success | ReturnCode::CorrectionAccepted)
        {
            // A success under an HTTP error status is an error page that reads as one (a
            // dialect without a result code reads every answer as a success): the status says
            // what happened, and 502 to 504 may be retried and count against the region.
            return Err(UpstreamError::Status(status.as_u16()));
        }
        if !matches!(code, ReturnCode::Success | ReturnCode::CorrectionAccepted) {
            let msg = back
                .body
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("the region refused the call")
                .to_owned();
            return Err(UpstreamError::Business { code, msg });
        }
        let mut biz = back
            .body
            .get("bizContent")
            .cloned()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        self.wrap_ticket(&mut biz);
        let report = validate_value(
            &self.std,
            service,
            Direction::Response,
            &biz,
            &Context { now_unix: unix_s },
        );
        if !report.is_valid() {
            return Err(UpstreamError::Invalid(format!(
                "translated, at {}",
                report.paths_for_log()
            )));
        }
        let mut losses = request_losses.clone();
        losses.extend(back.losses);
        Ok(Reply {
            biz,
            losses,
            holder,
        })
    }

    /// Signs (a fresh stamp), encodes and sends one message; the status and raw answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        msg: &Value,
    ) -> Result<(http::StatusCode, bytes::Bytes), UpstreamError> {
        let (headers, body) = sign_request(&self.dialect, &self.credentials, msg)?;
        let (status, answer) = self
            .transport
            .exchange(method, path, &headers, body)
            .await?;
        Ok((status, answer))
    }

    /// A national ticket `ISSUER.rest` of this region → the region's own `rest`.
    fn unwrap_ticket(&self, biz: &Value) -> Value {
        let mut biz = biz.clone();
        if let (Some(iss), Some(Value::String(t))) =
            (&self.ticket_issuer, biz.get_mut("bizExtData"))
        {
            if let Some(rest) = t
                .strip_prefix(iss.as_str())
                .and_then(|r| r.strip_prefix('.'))
            {
                *t = rest.to_owned();
            }
        }
        biz
    }

    /// The region's own ticket → `ISSUER.ticket`.
    fn wrap_ticket(&self, biz: &mut Value) {
        if let (Some(iss), Some(Value::String(t))) =
            (&self.ticket_issuer, biz.get_mut("bizExtData"))
        {
            *t = format!("{iss}.{t}");
        }
    }
}

impl Upstream for DialectUpstream {
    fn region(&self) -> &str {
        self.transport.region()
    }

    fn breaker(&self) -> Option<(&str, Arc<CircuitBreaker>)> {
        Some(self.transport.breaker())
    }

    fn call<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        idempotent: bool,
    ) -> BoxFuture<'a, Result<Value, UpstreamError>> {
        Box::pin(async move {
            self.call_inner(service, biz, idempotent)
                .await
                .map(|r| r.biz)
        })
    }

    fn call_reported<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        idempotent: bool,
    ) -> BoxFuture<'a, Result<Reply, UpstreamError>> {
        Box::pin(self.call_inner(service, biz, idempotent))
    }

    fn call_keyed<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Reply, UpstreamError>> {
        Box::pin(self.call_inner_keyed(service, biz, key.is_some(), key))
    }

    fn takes_callbacks(&self) -> bool {
        self.dialect.callback.is_some()
    }

    fn notify<'a>(&'a self, event: &'a Value) -> BoxFuture<'a, Result<(), UpstreamError>> {
        Box::pin(async move {
            let msg = crate::translate::callback_to_dialect(&self.dialect, event)
                .map_err(|e| UpstreamError::Build(format!("callback does not translate: {e}")))?
                .ok_or_else(|| UpstreamError::Business {
                    code: ReturnCode::NoPermission,
                    msg: "the region takes no callbacks".into(),
                })?;
            let path = self
                .dialect
                .callback
                .as_ref()
                .map(|c| c.path.clone())
                .unwrap_or_default();
            // Under the region's breaker: a region that is down is not called for each
            // callback due. What counts against it is what says it is not answering (no
            // connection, no answer in time, a 5xx, 408 or 429); a region that answered
            // and refused this callback (another 4xx) is up, and the delivery retries.
            let refused = self
                .transport
                .once(super::CALLBACK_TIMEOUT, async {
                    let (status, _) = self.send(Method::POST, &path, &msg).await?;
                    let code = status.as_u16();
                    if status.is_success() {
                        Ok(None)
                    } else if status.is_server_error() || code == 408 || code == 429 {
                        Err(UpstreamError::Status(code))
                    } else {
                        Ok(Some(code))
                    }
                })
                .await?;
            match refused {
                None => Ok(()),
                Some(code) => Err(UpstreamError::Status(code)),
            }
        })
    }
}

/// A request in a dialect's wire form: its headers (name, value) and its body.
pub type WireRequest = (Vec<(String, String)>, Vec<u8>);

/// One message in the dialect's wire form, as the gateway sends it to the region: the
/// signed fields filled, signed with a fresh stamp (a one-time nonce, the time now), and
/// encoded. The headers include the signature's and the content type.
///
/// # Errors
/// [`UpstreamError::Seal`] when no nonce can be drawn; [`UpstreamError::Build`] when the
/// message cannot be signed or encoded (the gateway's fault: the region is not blamed).
pub fn sign_request(
    dialect: &Dialect,
    credentials: &DialectCredentials,
    msg: &Value,
) -> Result<WireRequest, UpstreamError> {
    let mut msg = msg.clone();
    let nonce = crate::envelope::random_id().map_err(UpstreamError::Seal)?;
    let unix_s = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let creds = Credentials {
        id: &credentials.id,
        key: &credentials.key,
        secret: &credentials.secret,
    };
    fill_signed_fields(&dialect.signing, &mut msg, &credentials.id, &nonce, unix_s);
    let mut headers = sign::sign(
        &dialect.signing,
        &mut msg,
        &creds,
        &Stamp {
            unix_s,
            nonce: &nonce,
        },
    )
    .map_err(|e| UpstreamError::Build(format!("request cannot be signed: {e}")))?;
    headers.push((
        "content-type".to_owned(),
        dialect.codec.content_type().to_owned(),
    ));
    let body = codec::encode(dialect.codec, &msg)
        .map_err(|e| UpstreamError::Build(format!("request cannot be encoded: {e}")))?;
    Ok((headers, body))
}

/// Fills the signed envelope fields that the translation leaves absent (they are not
/// business content): an id field (`appKey`, `appId`) gets the gateway's id at the region,
/// `requestId` or `nonce` the attempt's one-time value, `timestamp` the time in epoch
/// milliseconds. A dialect file may still set any of them as a constant.
fn fill_signed_fields(
    signing: &crate::translate::Signing,
    msg: &mut Value,
    id: &str,
    nonce: &str,
    unix_s: i64,
) {
    let crate::translate::Signing::HmacSha256Concat { fields, .. } = signing else {
        return;
    };
    let Some(obj) = msg.as_object_mut() else {
        return;
    };
    for f in fields {
        if obj.contains_key(f.as_str()) {
            continue;
        }
        let v = match GatewayFilled::of(f) {
            Some(GatewayFilled::Id) => id.to_owned(),
            Some(GatewayFilled::RequestId | GatewayFilled::Nonce) => nonce.to_owned(),
            Some(GatewayFilled::Timestamp) => (unix_s * 1000).to_string(),
            None => continue,
        };
        obj.insert(f.clone(), Value::String(v));
    }
}

/// Puts `key` in the request id field a concatenated signature covers (`requestId`,
/// `request_id`), unless the message already has one, before the attempts: their fill leaves
/// it (it fills only what is absent), so each attempt carries the same id. Whether the
/// message now carries a request id that every attempt repeats.
fn carry_key(signing: &crate::translate::Signing, body: &mut Value, key: &str) -> bool {
    let crate::translate::Signing::HmacSha256Concat { fields, .. } = signing else {
        return false;
    };
    let Some(o) = body.as_object_mut() else {
        return false;
    };
    let mut carried = false;
    for f in fields {
        if GatewayFilled::of(f) == Some(GatewayFilled::RequestId) {
            o.entry(f.clone())
                .or_insert_with(|| Value::String(key.to_owned()));
            carried = true;
        }
    }
    carried
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use zeroize::Zeroizing;

    use super::{DialectCredentials, DialectUpstream, DialectUpstreamConfig, carry_key};
    use crate::standard::ServiceName;
    use crate::translate::Signing;
    use crate::upstream::{Upstream as _, UpstreamError};

    #[tokio::test]
    async fn an_error_page_that_decodes_is_its_http_status() {
        // A proxy in front of the region answers 503 with a JSON page of its own, which no
        // dialect result code names: 9002 for the status (retryable), not garbage.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = sock.read(&mut buf).await;
                    let body = br#"{"message":"upstream overloaded"}"#;
                    let head = format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(body).await;
                });
            }
        });
        let dialect = crate::testutil::shipped_dialect("zhejiang");
        let creds = DialectCredentials {
            id: "hutong-gw".into(),
            key: Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec()),
            secret: Zeroizing::new("s".into()),
        };
        let up = DialectUpstream::new(DialectUpstreamConfig::new(
            "330000",
            format!("http://{addr}"),
            Arc::new(dialect),
            creds,
        ))
        .unwrap();
        let biz = json!({"codeContent": "x", "verifier": {"orgName": "站", "deviceId": "G-01"}});
        let e = up
            .call(ServiceName::VerifyCode, &biz, false)
            .await
            .unwrap_err();
        assert_eq!(e, UpstreamError::Status(503));
    }

    /// A Zhejiang region on loopback that answers every request with `status_line` and no
    /// body, whose breaker opens after two failures: the upstream, and how many connections
    /// the region has taken.
    async fn callback_region(
        status_line: &'static str,
    ) -> (DialectUpstream, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&asked);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = sock.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 {status_line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                });
            }
        });
        let mut config = DialectUpstreamConfig::new(
            "330000",
            format!("http://{addr}"),
            Arc::new(crate::testutil::shipped_dialect("zhejiang")),
            DialectCredentials {
                id: "hutong-gw".into(),
                key: Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec()),
                secret: Zeroizing::new("s".into()),
            },
        );
        config.policy.breaker_failures = 2;
        config.policy.breaker_cool_down_ms = 60_000;
        (DialectUpstream::new(config).unwrap(), asked)
    }

    /// A status callback as the outbox sends it.
    fn status_event() -> serde_json::Value {
        serde_json::to_value(crate::link::outbox::CallbackEvent {
            kind: crate::link::outbox::KIND_STATUS.into(),
            event_id: "E1".into(),
            source_region: "110000".into(),
            code_id: Some(format!("{:032x}", 7)),
            colour: "10".into(),
            status_time: Some("2026-12-07 10:00:00".into()),
            venue_code: None,
            visit_region: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn callbacks_to_a_failing_region_open_its_breaker_and_then_make_no_call() {
        // Status callbacks went to a region whatever its breaker said: one connection and
        // one timeout for each callback due, however long the region was down.
        let (up, asked) = callback_region("503 Service Unavailable").await;
        let event = status_event();
        for _ in 0..2 {
            assert_eq!(up.notify(&event).await, Err(UpstreamError::Status(503)));
        }
        assert_eq!(up.breaker_state(), crate::upstream::BreakerState::Open);
        for _ in 0..3 {
            assert_eq!(up.notify(&event).await, Err(UpstreamError::CircuitOpen));
        }
        assert_eq!(
            asked.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "no call while the breaker is open"
        );
    }

    #[tokio::test]
    async fn a_region_that_refuses_a_callback_is_up_for_its_breaker() {
        // A 4xx says the region answered: the callback failed (and is retried), but the
        // region's calls are not refused for it.
        let (up, asked) = callback_region("422 Unprocessable Entity").await;
        let event = status_event();
        for _ in 0..4 {
            assert_eq!(up.notify(&event).await, Err(UpstreamError::Status(422)));
        }
        assert_eq!(up.breaker_state(), crate::upstream::BreakerState::Closed);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn only_a_signed_request_id_carries_a_key() {
        let concat = |fields: &[&str]| Signing::HmacSha256Concat {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            sign_field: "sign".into(),
        };
        let mut body = json!({"a": 1});
        assert!(carry_key(&concat(&["a", "requestId"]), &mut body, "k-1"));
        assert_eq!(body["requestId"], "k-1");
        // One the message has already is kept, and repeated by every attempt.
        let mut body = json!({"request_id": "mine"});
        assert!(carry_key(&concat(&["request_id"]), &mut body, "k-1"));
        assert_eq!(body["request_id"], "mine");
        // No request id signed, or no signature to carry one: no retries.
        for signing in [
            concat(&["a", "timestamp"]),
            Signing::None,
            Signing::XtifSha256 { window_s: 300 },
        ] {
            let mut body = json!({"a": 1});
            assert!(!carry_key(&signing, &mut body, "k-1"), "{signing:?}");
            assert_eq!(body, json!({"a": 1}));
        }
    }
}
