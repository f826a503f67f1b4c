//! A caller of the gateway: builds, encrypts and signs a request, sends it over TLS (with a
//! client certificate and an access token when it has them), and opens the answer. It is
//! what `hutong client` runs, and what the tests and the conformance runner call the
//! gateway with, so no one has to sign by hand.
//!
//! The gateway's own relay to regions is `crate::upstream`; this is the other side: one
//! caller, one exchange at a time, the raw status and headers kept for inspection.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde::Deserialize;
use serde_json::Value;

use crate::config::SignTypeName;
use crate::crypto::{EncryptionKey, MacKey, SigningKey, Sm4Key, VerifyingKey};
use crate::envelope::{
    EnvelopeLimits, RequestEncryption, RequestHeader, RequestSigner, ResponseEnvelope,
    SealedRequest, open_response, random_id, seal_request,
};
use crate::standard::ServiceName;

/// Errors of a client exchange.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The profile or a file it names is missing or malformed.
    #[error("client profile: {0}")]
    Profile(String),
    /// Building or sealing the request failed.
    #[error("cannot seal the request: {0}")]
    Seal(#[from] crate::envelope::EnvelopeError),
    /// The connection failed or timed out.
    #[error("transport: {0}")]
    Transport(String),
}

/// `hutong client --as FILE`: who the caller is and how to reach the gateway (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Base URL of the gateway, e.g. `https://127.0.0.1:8443`.
    pub gateway: String,
    /// The caller's appId.
    pub app_id: String,
    /// `SM2` or `HMAC-SM3`.
    pub sign_type: SignTypeName,
    /// SM2 private key (PKCS#8 PEM), for `SM2`.
    #[serde(default)]
    pub sm2_key_file: Option<PathBuf>,
    /// MAC key (hex), for `HMAC-SM3`.
    #[serde(default)]
    pub mac_key_hex: Option<String>,
    /// Registered SM4 key (hex); absent: a fresh key per request, sent in `encKey`.
    #[serde(default)]
    pub sm4_key_hex: Option<String>,
    /// The gateway's response-signing key (PEM file).
    pub gateway_sign_key_file: PathBuf,
    /// The gateway's encryption key (PEM file), for `encKey`.
    #[serde(default)]
    pub gateway_encryption_key_file: Option<PathBuf>,
    /// CA of the gateway's TLS certificate (PEM).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mTLS (PEM).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Its key (PEM).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// File holding the access token (from `hutong token issue --out`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Request deadline, ms.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
}

fn d_timeout() -> u64 {
    15_000
}

/// Envelope fields a caller of [`GatewayClient::seal_with`] may choose; `None`/zero/false
/// is what a well-behaved client sends.
#[derive(Debug, Clone, Default)]
pub struct SealOptions {
    /// The `requestId` (default: fresh).
    pub request_id: Option<String>,
    /// The `nonce` (default: fresh).
    pub nonce: Option<String>,
    /// Milliseconds added to the current time for `timestamp` (negative: in the past).
    pub timestamp_offset_ms: i64,
    /// Another `appId` than the profile's.
    pub app_id: Option<String>,
    /// `encType` NONE.
    pub plaintext: bool,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, when present.
    pub retry_after: Option<String>,
    /// The answer's envelope, when it verified.
    pub envelope: Option<ResponseEnvelope>,
    /// The opened business content.
    pub biz: Option<Value>,
    /// The raw body.
    pub raw: Bytes,
    /// Why the answer could not be opened, if it could not.
    pub open_error: Option<String>,
}

impl Exchange {
    /// The answer's return code (`""` if it did not verify).
    pub fn code(&self) -> &str {
        self.envelope.as_ref().map_or("", |e| e.code.as_str())
    }
}

/// A configured caller. Cloning shares the connection pool.
#[derive(Clone)]
pub struct GatewayClient {
    http: Http,
    base: String,
    app_id: String,
    sm2: Option<SigningKey>,
    mac: Option<MacKey>,
    sm4: Option<Sm4Key>,
    gateway_enc: Option<EncryptionKey>,
    gateway_key: VerifyingKey,
    token: Option<String>,
    sign_type: SignTypeName,
    timeout: Duration,
    /// The largest answer read ([`GatewayClient::with_answer_limit`]).
    answer_limit: usize,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base", &self.base)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

fn read(p: &Path) -> Result<String, ClientError> {
    std::fs::read_to_string(p).map_err(|e| ClientError::Profile(format!("{}: {e}", p.display())))
}

/// A gateway URL is https, or http on loopback: the access token must not travel in clear.
fn check_base(url: &str) -> Result<(), ClientError> {
    if url.starts_with("https://") || crate::config::is_loopback_http(url) {
        Ok(())
    } else {
        Err(ClientError::Profile(format!(
            "{url}: the gateway must be https, or http on loopback (the token would travel in clear)"
        )))
    }
}

fn hex(h: &str) -> Result<Vec<u8>, ClientError> {
    crate::crypto::decode_hex(h, "key")
        .map(|k| k.to_vec())
        .map_err(|e| ClientError::Profile(e.to_string()))
}

impl GatewayClient {
    /// Loads a profile file; relative paths resolve against its directory.
    ///
    /// # Errors
    /// [`ClientError::Profile`].
    pub fn from_profile_file(path: &Path) -> Result<Self, ClientError> {
        let text = read(path)?;
        let mut p: Profile = toml::from_str(&text)
            .map_err(|e| ClientError::Profile(crate::config::toml_error(path, &text, &e)))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let fix = |f: &mut PathBuf| {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        };
        fix(&mut p.gateway_sign_key_file);
        for f in [
            &mut p.sm2_key_file,
            &mut p.gateway_encryption_key_file,
            &mut p.ca_file,
            &mut p.client_cert_file,
            &mut p.client_key_file,
            &mut p.token_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(f);
        }
        Self::new(&p)
    }

    /// Builds a client from a profile whose paths are already resolved.
    ///
    /// # Errors
    /// [`ClientError::Profile`].
    pub fn new(p: &Profile) -> Result<Self, ClientError> {
        let perr = |e: &dyn std::fmt::Display| ClientError::Profile(e.to_string());
        let sm2 = p
            .sm2_key_file
            .as_deref()
            .map(|f| read(f).and_then(|t| SigningKey::from_pem(&t).map_err(|e| perr(&e))))
            .transpose()?;
        let mac = p
            .mac_key_hex
            .as_deref()
            .map(|h| hex(h).and_then(|b| MacKey::from_bytes(&b).map_err(|e| perr(&e))))
            .transpose()?;
        let sm4 = p
            .sm4_key_hex
            .as_deref()
            .map(|h| Sm4Key::from_hex(h).map_err(|e| perr(&e)))
            .transpose()?;
        let gateway_key =
            VerifyingKey::from_pem(&read(&p.gateway_sign_key_file)?).map_err(|e| perr(&e))?;
        let gateway_enc = p
            .gateway_encryption_key_file
            .as_deref()
            .map(|f| read(f).and_then(|t| EncryptionKey::from_pem(&t).map_err(|e| perr(&e))))
            .transpose()?;
        let token = p
            .token_file
            .as_deref()
            .map(|f| read(f).map(|t| t.trim().to_owned()))
            .transpose()?;
        let client_cert = match (p.client_cert_file.as_deref(), p.client_key_file.as_deref()) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ClientError::Profile(
                    "client_cert_file and client_key_file go together (mutual TLS needs both)"
                        .into(),
                ));
            }
        };
        check_base(&p.gateway)?;
        if p.gateway.starts_with("https://") && p.ca_file.is_none() {
            return Err(ClientError::Profile(
                "the gateway is https: set ca_file to the CA that signed its certificate".into(),
            ));
        }
        let http = http_client(p.ca_file.as_deref(), client_cert)?;
        match p.sign_type {
            SignTypeName::Sm2 if sm2.is_none() => {
                return Err(ClientError::Profile(
                    "sign_type SM2 needs sm2_key_file".into(),
                ));
            }
            SignTypeName::HmacSm3 if mac.is_none() => {
                return Err(ClientError::Profile(
                    "sign_type HMAC-SM3 needs mac_key_hex".into(),
                ));
            }
            _ => {}
        }
        if sm4.is_none() && gateway_enc.is_none() {
            return Err(ClientError::Profile(
                "needs sm4_key_hex or gateway_encryption_key_file".into(),
            ));
        }
        Ok(Self {
            http,
            base: p.gateway.trim_end_matches('/').to_owned(),
            app_id: p.app_id.clone(),
            sm2,
            mac,
            sm4,
            gateway_enc,
            gateway_key,
            token,
            sign_type: p.sign_type,
            timeout: Duration::from_millis(p.timeout_ms),
            answer_limit: MAX_ANSWER_BYTES,
        })
    }

    /// Replaces the access token.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// Seals a request for `service` (for tests that send it twice, or alter it).
    ///
    /// # Errors
    /// [`ClientError::Seal`].
    pub fn seal(&self, service: ServiceName, biz: &Value) -> Result<SealedRequest, ClientError> {
        self.seal_named(service.as_str(), biz, &random_id()?)
    }

    /// Seals a request that reuses `request_id` (a retry after a lost answer), with a
    /// fresh nonce and timestamp.
    ///
    /// # Errors
    /// [`ClientError::Seal`].
    pub fn reseal_with_request_id(
        &self,
        service: ServiceName,
        biz: &Value,
        request_id: &str,
    ) -> Result<SealedRequest, ClientError> {
        self.seal_named(service.as_str(), biz, request_id)
    }

    /// Seals and sends a call to an endpoint that is not one of the seven services
    /// (`statusEvent`).
    ///
    /// # Errors
    /// As [`GatewayClient::call`].
    pub async fn call_raw_service(&self, name: &str, biz: &Value) -> Result<Exchange, ClientError> {
        let sealed = self.seal_named(name, biz, &random_id()?)?;
        self.send_to(name, &sealed).await
    }

    fn seal_named(
        &self,
        service: &str,
        biz: &Value,
        rid: &str,
    ) -> Result<SealedRequest, ClientError> {
        self.seal_with(
            service,
            biz,
            &SealOptions {
                request_id: Some(rid.to_owned()),
                ..SealOptions::default()
            },
        )
    }

    /// Seals a request with the envelope's fields chosen by the caller (the conformance
    /// runner's probes: a stale timestamp, a reused nonce, another appId, plaintext).
    ///
    /// # Errors
    /// [`ClientError::Seal`].
    pub fn seal_with(
        &self,
        service: &str,
        biz: &Value,
        opts: &SealOptions,
    ) -> Result<SealedRequest, ClientError> {
        let rid = match &opts.request_id {
            Some(r) => r.clone(),
            None => random_id()?,
        };
        let nonce = match &opts.nonce {
            Some(n) => n.clone(),
            None => random_id()?,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let now = now.saturating_add_signed(opts.timestamp_offset_ms);
        let header = RequestHeader {
            app_id: opts.app_id.as_deref().unwrap_or(&self.app_id),
            service,
            version: "1.0",
            request_id: &rid,
            nonce: &nonce,
            timestamp_ms: now,
        };
        let signer = match (self.sign_type, &self.sm2, &self.mac) {
            (SignTypeName::HmacSm3, _, Some(m)) => RequestSigner::HmacSm3(m),
            (_, Some(k), _) => RequestSigner::Sm2(k),
            _ => return Err(ClientError::Profile("no signing key".into())),
        };
        let enc = match (&self.sm4, &self.gateway_enc) {
            _ if opts.plaintext => RequestEncryption::InsecurePlaintext,
            (Some(k), _) => RequestEncryption::RegisteredKey(k),
            (None, Some(g)) => RequestEncryption::PerRequestKey(g),
            (None, None) => RequestEncryption::InsecurePlaintext,
        };
        Ok(seal_request(&header, biz, signer, enc)?)
    }

    /// Seals, sends and opens one call.
    ///
    /// # Errors
    /// [`ClientError`] when the request cannot be sealed or sent; an answer that does not
    /// verify is an [`Exchange`] with `open_error` set.
    pub async fn call(&self, service: ServiceName, biz: &Value) -> Result<Exchange, ClientError> {
        let sealed = self.seal(service, biz)?;
        self.send(service, &sealed).await
    }

    /// Sends a sealed request (again, if the test wants a replay) and opens the answer.
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn send(
        &self,
        service: ServiceName,
        sealed: &SealedRequest,
    ) -> Result<Exchange, ClientError> {
        self.send_to(service.as_str(), sealed).await
    }

    async fn send_to(&self, path: &str, sealed: &SealedRequest) -> Result<Exchange, ClientError> {
        let (status, retry_after, raw) = self
            .post_path(path, Bytes::from(sealed.body.clone()))
            .await?;
        let opened = open_response(
            &raw,
            &sealed.session,
            Some(&self.gateway_key),
            &EnvelopeLimits::default(),
        );
        Ok(match opened {
            Ok(o) => Exchange {
                status,
                retry_after,
                envelope: Some(o.envelope),
                biz: o.biz,
                raw,
                open_error: None,
            },
            Err(e) => Exchange {
                status,
                retry_after,
                envelope: None,
                biz: None,
                raw,
                open_error: Some(e.to_string()),
            },
        })
    }

    /// Posts raw bytes to `/phic/v1/{name}` (a service or another endpoint): (status,
    /// Retry-After, body).
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn post_named(
        &self,
        name: &str,
        body: Bytes,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        self.post_path(name, body).await
    }

    /// This client, reading answers of at most `bytes` (16 MiB by default): a larger one is
    /// a transport error. For many calls at once (a burst) against a target that may answer
    /// each with a huge body.
    pub fn with_answer_limit(mut self, bytes: usize) -> Self {
        self.answer_limit = bytes.min(MAX_ANSWER_BYTES);
        self
    }

    /// The key the gateway (or target) signs its answers with.
    pub fn gateway_key(&self) -> &VerifyingKey {
        &self.gateway_key
    }

    /// The base URL it calls.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Points the client at another base URL (the conformance runner's `--target`), under
    /// the profile's rule: https, or http on loopback.
    ///
    /// # Errors
    /// [`ClientError::Profile`] for plain http to another host.
    pub fn set_base(&mut self, url: &str) -> Result<(), ClientError> {
        check_base(url)?;
        self.base = url.trim_end_matches('/').to_owned();
        Ok(())
    }

    /// The caller's appId.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Posts raw bytes to `/phic/v1/{service}`: (status, Retry-After, body).
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn post(
        &self,
        service: ServiceName,
        body: Bytes,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        self.post_path(service.as_str(), body).await
    }

    /// GETs a document the gateway publishes (`/phic/v1/trust-list`, a code page
    /// `/phic/c?…`): (status, Retry-After, body).
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn get(
        &self,
        path_and_query: &str,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        self.get_with(path_and_query, hyper::header::RETRY_AFTER.as_str())
            .await
    }

    /// [`GatewayClient::get`], giving the answer's `header` in place of Retry-After.
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn get_with(
        &self,
        path_and_query: &str,
        header: &str,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        let req = hyper::Request::get(format!("{}{path_and_query}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        self.exchange(req, header).await
    }

    /// HEAD of a published document: the status, the answer's `header`, and the body
    /// (which a server must leave out).
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn head_with(
        &self,
        path_and_query: &str,
        header: &str,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        let req = hyper::Request::head(format!("{}{path_and_query}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        self.exchange(req, header).await
    }

    /// Posts a body in a region's dialect to the gateway's ingress, `path` under
    /// `/dialect/` (`jiangsu/skm/verify`), with the profile's token. Gives the status, the
    /// `X-Hutong-Loss` header, and the raw answer.
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn post_dialect(
        &self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        self.post_url(
            &format!("{}{}{path}", self.base, crate::server::INGRESS_PREFIX),
            content_type,
            crate::server::LOSS_HEADER,
            body,
        )
        .await
    }

    async fn post_path(
        &self,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        self.post_url(
            &format!("{}/phic/v1/{}", self.base, path),
            "application/json",
            hyper::header::RETRY_AFTER.as_str(),
            body,
        )
        .await
    }

    /// POSTs `body`; the status, the value of `header_name`, and the answer.
    async fn post_url(
        &self,
        url: &str,
        content_type: &str,
        header_name: &str,
        body: Bytes,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        let mut req = hyper::Request::post(url).header(hyper::header::CONTENT_TYPE, content_type);
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        self.exchange(req, header_name).await
    }

    /// Sends `req`; the status, the value of `header_name`, and the answer, each step under
    /// the profile's timeout.
    async fn exchange(
        &self,
        req: hyper::Request<Full<Bytes>>,
        header_name: &str,
    ) -> Result<(u16, Option<String>, Bytes), ClientError> {
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| ClientError::Transport("timed out".into()))?
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header_name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = http_body_util::Limited::new(resp.into_body(), self.answer_limit);
        let raw = tokio::time::timeout(self.timeout, body.collect())
            .await
            .map_err(|_| ClientError::Transport("timed out reading the answer".into()))?
            .map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, retry_after, raw))
    }
}

mod http;
use http::{Http, MAX_ANSWER_BYTES, error_chain, http_client};

#[cfg(test)]
mod tests;
