//! The request direction: [`seal_request`] on the client, [`parse_request`] and
//! [`ParsedRequest::open`] (or [`open_request`]) on the gateway.
//!
//! The gateway's checks run in this order, each refusing with its return code: parse and
//! field rules (1001, 1002), the client's registration (1005), the signature (1003), the
//! timestamp window and the nonce (1004), plaintext permission (1006), then decryption (1008).
//! Nothing is decrypted, and no nonce is recorded, before the signature has verified.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::canonical::{Alphabet, Field, MaxLen, Params, parse_params, text};
use super::{
    BASE64, ClientCredentials, EncType, EnvelopeError, EnvelopeLimits, MAX_ENC_KEY_LEN, MAX_ID_LEN,
    MAX_SIGN_LEN, MAX_TIMESTAMP_LEN, MAX_TYPE_LEN, MAX_VERSION_LEN, OpenContext, Session, SignType,
    Signer, decode_biz, encode_biz, parse_timestamp, sign_canonical, unwrap_enc_key,
    verify_canonical,
};
use crate::crypto::{EncryptionKey, MacKey, SigningKey, Sm4Key};
use base64::Engine;

/// The public parameters of a request, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestEnvelope {
    /// The calling client, as registered.
    pub app_id: String,
    /// The national service called (`verifyCode`…).
    pub service: String,
    /// Interface version (`1.0`).
    pub version: String,
    /// Unique per call; makes declarations and corrections idempotent.
    pub request_id: String,
    /// Unix milliseconds, as a decimal string.
    pub timestamp: String,
    /// Unique per client within the replay window.
    pub nonce: String,
    /// How `bizContent` is protected.
    pub enc_type: EncType,
    /// Base64 of the SM2-encrypted per-request SM4 key, when one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc_key: Option<String>,
    /// Base64 of the (encrypted) business JSON.
    pub biz_content: String,
    /// How the canonical string is authenticated.
    pub sign_type: SignType,
    /// Base64 signature or MAC over the canonical string.
    pub sign: String,
}

impl RequestEnvelope {
    /// The parameters, by [`REQUEST_FIELDS`], held to their rules (as a received body is).
    fn checked_params(&self) -> Result<Params<'_>, EnvelopeError> {
        Params::checked(
            &REQUEST_FIELDS,
            vec![
                text(&self.app_id),
                text(&self.service),
                text(&self.version),
                text(&self.request_id),
                text(&self.timestamp),
                text(&self.nonce),
                text(self.enc_type.as_str()),
                self.enc_key.as_deref().and_then(text),
                text(&self.biz_content),
                text(self.sign_type.as_str()),
                text(&self.sign),
            ],
            usize::MAX,
        )
    }
}

/// The request parameters and their rules.
pub(super) const REQUEST_FIELDS: [Field; 11] = [
    Field::required("appId", MaxLen::Fixed(MAX_ID_LEN), Alphabet::Id),
    Field::required("service", MaxLen::Fixed(MAX_ID_LEN), Alphabet::Id),
    Field::required("version", MaxLen::Fixed(MAX_VERSION_LEN), Alphabet::Id),
    Field::required("requestId", MaxLen::Fixed(MAX_ID_LEN), Alphabet::Id),
    Field::required(
        "timestamp",
        MaxLen::Fixed(MAX_TIMESTAMP_LEN),
        Alphabet::Digits,
    ),
    Field::required("nonce", MaxLen::Fixed(MAX_ID_LEN), Alphabet::Id),
    Field::required("encType", MaxLen::Fixed(MAX_TYPE_LEN), Alphabet::Id),
    Field::optional(
        "encKey",
        MaxLen::Fixed(MAX_ENC_KEY_LEN),
        Alphabet::Printable,
    ),
    Field::required("bizContent", MaxLen::Configured, Alphabet::Printable),
    Field::required("signType", MaxLen::Fixed(MAX_TYPE_LEN), Alphabet::Id),
    Field::required("sign", MaxLen::Fixed(MAX_SIGN_LEN), Alphabet::Printable),
];

// ---------------------------------------------------------------------------------------------
// Client side.

/// The caller-chosen public parameters of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestHeader<'a> {
    /// `appId`.
    pub app_id: &'a str,
    /// `service`.
    pub service: &'a str,
    /// `version`.
    pub version: &'a str,
    /// `requestId` (see [`super::random_id`]).
    pub request_id: &'a str,
    /// `nonce` (see [`super::random_id`]).
    pub nonce: &'a str,
    /// `timestamp`, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// How a client authenticates its request.
#[derive(Debug, Clone, Copy)]
pub enum RequestSigner<'a> {
    /// SM3withSM2 with the client's private key.
    Sm2(&'a SigningKey),
    /// HMAC-SM3 with the client's registered MAC key.
    HmacSm3(&'a MacKey),
}

/// How a client protects `bizContent`.
#[derive(Debug, Clone, Copy)]
pub enum RequestEncryption<'a> {
    /// SM4 under the client's registered (pre-shared) key; no `encKey`.
    RegisteredKey(&'a Sm4Key),
    /// SM4 under a fresh key, sent in `encKey` encrypted to the gateway's SM2 key.
    PerRequestKey(&'a EncryptionKey),
    /// `encType` `NONE`: Base64 of the JSON. Only test clients may send it.
    InsecurePlaintext,
}

/// A sealed request: the body to send and the session to open the answer with.
#[derive(Debug, Clone)]
pub struct SealedRequest {
    /// The public parameters, signed.
    pub envelope: RequestEnvelope,
    /// The JSON body.
    pub body: String,
    /// Keys for [`super::open_response`].
    pub session: Session,
}

/// Builds, encrypts and signs a request carrying the business object `biz`.
///
/// Errors: [`EnvelopeError::BadFormat`] / [`EnvelopeError::TooLong`] when a header value
/// breaks the field rules the gateway applies, or `biz` is not a JSON object;
/// [`EnvelopeError::Seal`] if the OS RNG fails.
pub fn seal_request(
    header: &RequestHeader<'_>,
    biz: &Value,
    signer: RequestSigner<'_>,
    encryption: RequestEncryption<'_>,
) -> Result<SealedRequest, EnvelopeError> {
    let (enc_type, enc_key, sm4_key) = match encryption {
        RequestEncryption::RegisteredKey(key) => (EncType::Sm4, None, Some(key.clone())),
        RequestEncryption::PerRequestKey(gateway) => {
            let key = Sm4Key::generate()?;
            let wrapped = gateway.encrypt(key.as_bytes())?;
            (EncType::Sm4, Some(BASE64.encode(wrapped)), Some(key))
        }
        RequestEncryption::InsecurePlaintext => (EncType::None, None, None),
    };
    let (sign_type, mac_key) = match signer {
        RequestSigner::Sm2(_) => (SignType::Sm2, None),
        RequestSigner::HmacSm3(key) => (SignType::HmacSm3, Some(key.clone())),
    };
    let mut envelope = RequestEnvelope {
        app_id: header.app_id.to_string(),
        service: header.service.to_string(),
        version: header.version.to_string(),
        request_id: header.request_id.to_string(),
        timestamp: header.timestamp_ms.to_string(),
        nonce: header.nonce.to_string(),
        enc_type,
        enc_key,
        biz_content: encode_biz(biz, sm4_key.as_ref())?,
        sign_type,
        // A placeholder that passes the field rules; the canonical string leaves `sign` out.
        sign: "-".to_string(),
    };

    let canonical = envelope.checked_params()?.canonical();
    envelope.sign = sign_canonical(
        &canonical,
        match signer {
            RequestSigner::Sm2(key) => Signer::Sm2(key),
            RequestSigner::HmacSm3(key) => Signer::Mac(key),
        },
    );
    let body = serde_json::to_string(&envelope)
        .map_err(|_| EnvelopeError::Internal("request does not serialise"))?;
    let session = Session {
        request_id: envelope.request_id.clone(),
        sign_type,
        mac_key,
        sm4_key,
    };
    Ok(SealedRequest {
        envelope,
        body,
        session,
    })
}

// ---------------------------------------------------------------------------------------------
// Gateway side.

/// A request whose format is valid but whose signature, freshness and content are not checked
/// yet. Look its client up by [`ParsedRequest::app_id`], then [`ParsedRequest::open`] it.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    envelope: RequestEnvelope,
    canonical: String,
    timestamp_ms: u64,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct OpenedRequest {
    /// The public parameters as received (`bizContent` still encrypted).
    pub envelope: RequestEnvelope,
    /// `timestamp` as Unix milliseconds.
    pub timestamp_ms: u64,
    /// The business parameters: a JSON object.
    pub biz: Value,
    /// Keys for [`super::seal_response`].
    pub session: Session,
}

/// Parses a request body and checks its parameters' presence and format.
///
/// Errors, all before any cryptography: [`EnvelopeError::MissingParameter`] (1001);
/// [`EnvelopeError::NotAnObject`], [`EnvelopeError::DuplicateParameter`],
/// [`EnvelopeError::UnknownParameter`], [`EnvelopeError::NotAString`],
/// [`EnvelopeError::TooLong`], [`EnvelopeError::BadFormat`] (1002).
pub fn parse_request(body: &[u8], limits: &EnvelopeLimits) -> Result<ParsedRequest, EnvelopeError> {
    let mut params = parse_params(body, &REQUEST_FIELDS, limits.max_biz_content_len)?;
    let enc_type = params.get("encType").and_then(EncType::parse);
    let sign_type = params.get("signType").and_then(SignType::parse);
    let (Some(enc_type), Some(sign_type)) = (enc_type, sign_type) else {
        let name = if enc_type.is_none() {
            "encType"
        } else {
            "signType"
        };
        return Err(EnvelopeError::BadFormat(name));
    };
    let canonical = params.canonical();
    // An empty `encKey` is left out of the canonical string, so it means "absent".
    let enc_key = params.take("encKey").filter(|k| !k.is_empty());
    // Every required parameter is there (`parse_params` checked): `unwrap_or_default` only
    // satisfies the types.
    let mut take = |name| params.take(name).unwrap_or_default();
    let envelope = RequestEnvelope {
        app_id: take("appId"),
        service: take("service"),
        version: take("version"),
        request_id: take("requestId"),
        timestamp: take("timestamp"),
        nonce: take("nonce"),
        enc_type,
        enc_key,
        biz_content: take("bizContent"),
        sign_type,
        sign: take("sign"),
    };
    if envelope.enc_type == EncType::None && envelope.enc_key.is_some() {
        return Err(EnvelopeError::BadFormat("encKey"));
    }
    let timestamp_ms = parse_timestamp(&envelope.timestamp)?;
    Ok(ParsedRequest {
        envelope,
        canonical,
        timestamp_ms,
    })
}

impl ParsedRequest {
    /// The public parameters (not yet authenticated).
    pub fn envelope(&self) -> &RequestEnvelope {
        &self.envelope
    }

    /// The claimed `appId`, to look the client up by.
    pub fn app_id(&self) -> &str {
        &self.envelope.app_id
    }

    /// The canonical string the signature must cover.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The session of an answer that refuses this request before it is opened (a rate
    /// limit met once the caller's access token named it): in the request's sign type when
    /// the client has the key for it (an HMAC-SM3 answer costs no SM2 signature), SM2
    /// otherwise; never business content. Nothing of the request is trusted but its
    /// `requestId`, echoed only if well formed.
    pub fn refusal_session(&self, client: &ClientCredentials) -> Session {
        let mut session = Session::for_rejected_request(Some(&self.envelope.request_id));
        if self.envelope.sign_type == SignType::HmacSm3 {
            if let Some(k) = &client.mac_key {
                session.sign_type = SignType::HmacSm3;
                session.mac_key = Some(k.clone());
            }
        }
        session
    }

    /// Authenticates, checks freshness, and decrypts, for the client `client`.
    ///
    /// Errors in order: [`EnvelopeError::KeyUnknown`] (1005) when the client has no key for
    /// the sign type; [`EnvelopeError::SignatureInvalid`] (1003); [`EnvelopeError::Stale`],
    /// [`EnvelopeError::Replayed`] (1004); [`EnvelopeError::NonceStoreFull`] (1007),
    /// [`EnvelopeError::NonceStoreUnavailable`] (9999); [`EnvelopeError::PlaintextNotAllowed`]
    /// (1006); [`EnvelopeError::MissingParameter`] for `encKey` when the client has no
    /// registered SM4 key (1001); [`EnvelopeError::DecryptFailed`] (1008); and
    /// [`EnvelopeError::BadFormat`] when the decrypted content is not a JSON object (1002).
    pub fn open(
        self,
        client: &ClientCredentials,
        ctx: &OpenContext<'_>,
    ) -> Result<OpenedRequest, EnvelopeError> {
        self.verify(client)?.open(client, ctx)
    }

    /// The signature alone: [`EnvelopeError::KeyUnknown`] (1005) or
    /// [`EnvelopeError::SignatureInvalid`] (1003). The caller may refuse the verified request
    /// for its own reasons (a rate limit, a permission) before [`VerifiedRequest::open`]
    /// records its nonce, so that such a refusal leaves nothing behind.
    pub fn verify(self, client: &ClientCredentials) -> Result<VerifiedRequest, EnvelopeError> {
        let env = &self.envelope;
        verify_canonical(
            &self.canonical,
            &env.sign,
            env.sign_type,
            client.verifying_key.as_ref(),
            client.mac_key.as_ref(),
        )?;
        Ok(VerifiedRequest(self))
    }

    /// [`ParsedRequest::open`] without the signature check: whatever `sign` holds, the
    /// request goes on to the freshness checks and decryption as if it had verified.
    ///
    /// DANGER: this accepts forged requests. It exists only for the simulator's seeded
    /// `skip-signature-check` defect (`hutong sim --national --defect`), the known-broken
    /// implementation a conformance suite must fail; nothing else may call it.
    pub fn danger_open_without_signature_check(
        self,
        client: &ClientCredentials,
        ctx: &OpenContext<'_>,
    ) -> Result<OpenedRequest, EnvelopeError> {
        self.open_authenticated(client, ctx)
    }

    /// The timestamp within the clock skew of `ctx`'s now: [`EnvelopeError::Stale`] (1004)
    /// otherwise.
    fn within_window(&self, ctx: &OpenContext<'_>) -> Result<(), EnvelopeError> {
        if self.timestamp_ms.abs_diff(ctx.now_ms) > ctx.limits.max_clock_skew_ms {
            return Err(EnvelopeError::Stale);
        }
        Ok(())
    }

    /// The checks after the signature: freshness, nonce, plaintext permission, decryption.
    fn open_authenticated(
        self,
        client: &ClientCredentials,
        ctx: &OpenContext<'_>,
    ) -> Result<OpenedRequest, EnvelopeError> {
        let env = &self.envelope;
        self.within_window(ctx)?;
        ctx.nonces
            .check_and_insert(&env.app_id, &env.nonce, ctx.now_ms)
            .fresh()?;

        let sm4_key = match env.enc_type {
            EncType::None if !client.insecure_allow_plaintext => {
                return Err(EnvelopeError::PlaintextNotAllowed);
            }
            EncType::None => None,
            EncType::Sm4 => Some(match &env.enc_key {
                Some(enc_key) => unwrap_enc_key(enc_key, ctx.decryption_key)?,
                None => client
                    .sm4_key
                    .clone()
                    .ok_or(EnvelopeError::MissingParameter("encKey"))?,
            }),
        };
        let biz = decode_biz(&env.biz_content, sm4_key.as_ref())?;

        let session = Session {
            request_id: env.request_id.clone(),
            sign_type: env.sign_type,
            mac_key: match env.sign_type {
                SignType::HmacSm3 => client.mac_key.clone(),
                SignType::Sm2 => None,
            },
            sm4_key,
        };
        Ok(OpenedRequest {
            envelope: self.envelope,
            timestamp_ms: self.timestamp_ms,
            biz,
            session,
        })
    }
}

/// A request whose signature has verified ([`ParsedRequest::verify`]); its freshness, nonce
/// and content are not checked yet.
#[derive(Debug, Clone)]
pub struct VerifiedRequest(ParsedRequest);

impl VerifiedRequest {
    /// [`ParsedRequest::refusal_session`].
    pub fn refusal_session(&self, client: &ClientCredentials) -> Session {
        self.0.refusal_session(client)
    }

    /// The timestamp window and a look for the nonce, recording nothing:
    /// [`EnvelopeError::Stale`] or [`EnvelopeError::Replayed`] (1004). A caller that
    /// refuses for its own reasons after this (a rate limit) refuses only requests that
    /// could still be taken: a captured request sent again spends none of the client's
    /// quota. [`VerifiedRequest::open`] checks both again, and records the nonce.
    pub fn check_fresh(&self, ctx: &OpenContext<'_>) -> Result<(), EnvelopeError> {
        let p = &self.0;
        p.within_window(ctx)?;
        if ctx
            .nonces
            .seen(&p.envelope.app_id, &p.envelope.nonce, ctx.now_ms)
        {
            return Err(EnvelopeError::Replayed);
        }
        Ok(())
    }

    /// The rest of [`ParsedRequest::open`]: freshness and nonce (1004), plaintext permission
    /// (1006), decryption (1008), for the client whose key verified it.
    pub fn open(
        self,
        client: &ClientCredentials,
        ctx: &OpenContext<'_>,
    ) -> Result<OpenedRequest, EnvelopeError> {
        self.0.open_authenticated(client, ctx)
    }
}

/// [`parse_request`], then `lookup` of the client by `appId` ([`EnvelopeError::UnknownApp`],
/// 1005, when it returns `None`), then [`ParsedRequest::open`].
///
/// When the registry lookup is asynchronous, call the two steps directly instead.
pub fn open_request<'c>(
    body: &[u8],
    ctx: &OpenContext<'_>,
    lookup: impl FnOnce(&str) -> Option<&'c ClientCredentials>,
) -> Result<OpenedRequest, EnvelopeError> {
    let parsed = parse_request(body, ctx.limits)?;
    let client = lookup(parsed.app_id()).ok_or(EnvelopeError::UnknownApp)?;
    parsed.open(client, ctx)
}
