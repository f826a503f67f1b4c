//! Request signatures of the dialects that have their own (not the national envelope):
//! HMAC-SHA256 over concatenated parameters (Zhejiang parse-jkm style,
//! `HmacSHA256(key = appKey, appKey+bizData+…+version+secret)`).
//!
//! Pure: the caller fills the envelope fields (`appKey`, `requestId`, `timestamp`) from its
//! credentials and clock, then signs; an ingress verifies before translating.

use ring::hmac;
use serde_json::Value;

use super::Signing;

/// A caller's credentials at a region.
#[derive(Clone)]
pub struct Credentials<'a> {
    /// The HMAC key (the appKey in Zhejiang style).
    pub key: &'a [u8],
    /// The secret appended to the concatenation.
    pub secret: &'a str,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// Why a message could not be signed or its signature verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A field the scheme signs is absent (or not a scalar or object).
    #[error("{0}: missing, but the signing scheme covers it")]
    MissingField(String),
    /// The message is not a JSON object.
    #[error("(message): not an object")]
    NotObject,
    /// The signature is absent, malformed or wrong (return code 1003).
    #[error("{0}: signature invalid")]
    BadSignature(String),
    /// The scheme is not one this module computes (`national-sm2` is the envelope's).
    #[error("the dialect's signing scheme is not computed here")]
    Unsupported,
}

fn concatenation(fields: &[String], msg: &Value, secret: &str) -> Result<String, SignError> {
    let obj = msg.as_object().ok_or(SignError::NotObject)?;
    let mut out = String::new();
    for f in fields {
        match obj.get(f) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
            // A nested business object (`bizData`) is signed as its compact JSON text.
            Some(v @ Value::Object(_)) => out.push_str(&v.to_string()),
            _ => return Err(SignError::MissingField(f.clone())),
        }
    }
    out.push_str(secret);
    Ok(out)
}

/// Signs a dialect message in place. With [`Signing::None`] it does nothing.
///
/// # Errors
/// [`SignError::MissingField`] naming an absent signed field; [`SignError::Unsupported`]
/// for the national envelope.
pub fn sign(signing: &Signing, msg: &mut Value, creds: &Credentials<'_>) -> Result<(), SignError> {
    match signing {
        Signing::None => Ok(()),
        Signing::NationalSm2 => Err(SignError::Unsupported),
        Signing::HmacSha256Concat { fields, sign_field } => {
            let text = concatenation(fields, msg, creds.secret)?;
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, creds.key),
                text.as_bytes(),
            );
            let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            msg.as_object_mut()
                .ok_or(SignError::NotObject)?
                .insert(sign_field.clone(), Value::String(hex));
            Ok(())
        }
    }
}

/// Verifies a dialect message's signature, in constant time.
///
/// # Errors
/// [`SignError::BadSignature`] naming the signature field; [`SignError::MissingField`].
pub fn verify(signing: &Signing, msg: &Value, creds: &Credentials<'_>) -> Result<(), SignError> {
    match signing {
        Signing::None => Ok(()),
        Signing::NationalSm2 => Err(SignError::Unsupported),
        Signing::HmacSha256Concat { fields, sign_field } => {
            let bad = || SignError::BadSignature(sign_field.clone());
            let given = msg
                .get(sign_field)
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            let tag = unhex(given).ok_or_else(bad)?;
            let text = concatenation(fields, msg, creds.secret)?;
            hmac::verify(
                &hmac::Key::new(hmac::HMAC_SHA256, creds.key),
                text.as_bytes(),
                &tag,
            )
            .map_err(|_| bad())
        }
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zhejiang() -> Signing {
        Signing::HmacSha256Concat {
            fields: [
                "appKey",
                "bizData",
                "deviceId",
                "format",
                "requestId",
                "timestamp",
                "version",
            ]
            .map(str::to_owned)
            .to_vec(),
            sign_field: "sign".into(),
        }
    }

    #[test]
    fn signs_like_zhejiang_parse_jkm_and_verifies() {
        let creds = Credentials {
            key: b"zj-demo-app",
            secret: "s3cret",
        };
        let mut msg = json!({"appKey": "zj-demo-app", "bizData": {"qrCode": "V2a1b2"}, "deviceId": "G-01",
            "format": "json", "requestId": "r-0001", "timestamp": "1795393805000", "version": "1.0"});
        sign(&zhejiang(), &mut msg, &creds).unwrap();
        // Python: hmac.new(b"zj-demo-app", concatenation, hashlib.sha256).hexdigest()
        assert_eq!(
            msg["sign"],
            json!("326e007fcaa359742401aa886dc8c812c67baa21ce780cf2d65dac3febb18d08")
        );
        verify(&zhejiang(), &msg, &creds).unwrap();
        msg["deviceId"] = json!("G-02");
        assert_eq!(
            verify(&zhejiang(), &msg, &creds),
            Err(SignError::BadSignature("sign".into()))
        );
        msg.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(
            sign(&zhejiang(), &mut msg, &creds),
            Err(SignError::MissingField("timestamp".into()))
        );
    }
}
