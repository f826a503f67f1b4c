//! Consent: the gateway's `authCode`, and the region's own inside it.

use super::*;
use crate::crypto::Sm4Key;

/// A relayed call that carries the gateway's consent token goes to the region with the
/// region's own authCode inside it; a consent of another client, or an expired one, is
/// 2003, and one the region never saw (a region vouched for its resident) too.
pub(in crate::server) fn unwrap_consent(
    gw: &Gateway,
    call: &Call,
    biz: &Value,
) -> Result<Value, GatewayError> {
    let grant = grant_of_consent(gw, call, biz)?;
    let Some((_, rac)) = grant.inner else {
        return Err(refuse(
            ReturnCode::NotAuthorised,
            "the consent carries no authorisation of the region",
        ));
    };
    let mut out = biz.clone();
    if let Some(o) = out.as_object_mut() {
        o.insert("authCode".into(), Value::String(rac));
    }
    Ok(out)
}

/// `applyCodeAccess`: the caller's region authenticates the holder; the gateway links the
/// person to that region and answers with its own consent token, which carries the
/// region's authCode inside.
pub(in crate::server) async fn apply_code_access(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let Some((t, n)) = user_id(biz) else {
        return Err(refuse(ReturnCode::MissingParameter, "user is required"));
    };
    let p = pseudonym(&gw.pseudonym_key, t, n);
    // A region's own code service has authenticated its resident itself (authType,
    // authProof are its record): the gateway takes its word. Anyone else goes to the
    // region that holds the person, whose authCode the consent then carries.
    let relayed = if call.client.role == crate::config::Role::Region {
        Relayed {
            biz: json!({ "userToken": user_token(gw, &call.client.app_id, &p) }),
            region: Some(home_region(gw, &call.client.region)),
            holder: None,
            losses: crate::translate::LossReport::default(),
        }
    } else {
        gw.relay.relay_reply(call, biz).await?
    };
    let region = relayed
        .region
        .clone()
        .unwrap_or_else(|| call.client.region.clone());
    let who = holder_of_user(biz, t, n);
    let link = RegionLink::without_code(region.clone(), Source::Request, now_ms());
    let links = Arc::clone(&gw.links);
    let now = now_ms();
    blocking(move || links.link(&p, link, &who, now))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let region_ttl = relayed
        .biz
        .get("expiresIn")
        .and_then(Value::as_u64)
        .unwrap_or(CONSENT_TTL_SECS);
    let ttl = region_ttl.clamp(1, CONSENT_TTL_SECS);
    // The region's own token, should the caller bring it back to generateCode: the code
    // issued for it is then this person's (issuance.rs).
    if let Some(token) = text(&relayed.biz, &["userToken"]) {
        let expires = now.saturating_add(ttl.saturating_mul(1000));
        gw.user_tokens
            .remember(&gw.pseudonym_key, (&region, token), p, expires, now);
    }
    let iat = crate::auth::now_unix();
    let claims = ConsentClaims {
        sub: seal_subject(&gw.consent_subjects, &p)?,
        iss: String::new(),
        aud: String::new(),
        azp: call.client.app_id.clone(),
        iat,
        exp: iat + ttl,
        scope: "code regions".into(),
        rgn: region,
        rac: text(&relayed.biz, &["authCode"]).map(str::to_owned),
    };
    let mut token = gw
        .tokens
        .issue_consent(&claims)
        .map_err(GatewayError::Internal)?;
    if token.len() > MAX_AUTH_CODE_LEN {
        // The region's authCode is too long to carry inside the gateway's (the schema bounds
        // authCode at 2,048 characters, and the next call would be refused): the consent
        // goes without it. The national code and the cross-region status still work; what
        // needs the region's own consent is refused as not granted.
        tracing::info!("region authCode too long to carry; the gateway's consent goes without it");
        token = gw
            .tokens
            .issue_consent(&ConsentClaims {
                rac: None,
                ..claims
            })
            .map_err(GatewayError::Internal)?;
    }
    let mut answer = relayed.biz;
    if let Some(o) = answer.as_object_mut() {
        o.insert("authCode".into(), Value::String(token));
        o.insert("expiresIn".into(), json!(ttl));
    }
    Ok((answer, Some(p)))
}

/// Longest `authCode` a call may carry (the standard's schemas).
const MAX_AUTH_CODE_LEN: usize = 2048;

/// The user token the gateway gives a region's client for a person: stable for that client,
/// opaque, unlinkable to their pseudonym without the gateway's secret, and different for
/// every client.
pub(super) fn user_token(gw: &Gateway, app_id: &str, p: &Pseudonym) -> String {
    // Per client: two regions' code services holding one person's token cannot match it.
    let mut m = b"hutong user token v2".to_vec();
    m.extend_from_slice(&(app_id.len() as u64).to_be_bytes());
    m.extend_from_slice(app_id.as_bytes());
    m.extend_from_slice(&p.0);
    format!(
        "hut-{}",
        &crate::crypto::to_hex(&gw.pseudonym_key.tag(&m))[..32]
    )
}

/// A consent's `sub`: the person's pseudonym, SM4-encrypted under a key derived from the
/// gateway's secret with a fresh IV, Base64url. Every consent names the person differently,
/// so the apps that hold consents cannot match them with each other's, or with their own
/// over time. The token's signature covers it.
pub(super) fn seal_subject(key: &Sm4Key, p: &Pseudonym) -> Result<String, GatewayError> {
    use base64::Engine as _;
    let sealed = key
        .encrypt_cbc(&p.0)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
}

/// The person a consent's `sub` names ([`seal_subject`]); `None` when it does not open (the
/// token was checked first: only a token of another gateway, or of a build before the
/// sealed subject, gets here).
pub(super) fn open_subject(key: &Sm4Key, sub: &str) -> Option<Pseudonym> {
    use base64::Engine as _;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sub)
        .ok()?;
    let plain = key.decrypt_cbc(&sealed).ok()?;
    <[u8; 32]>::try_from(plain.as_slice()).ok().map(Pseudonym)
}
