//! Signed answers to requests refused before anything of them was read.

use bytes::Bytes;

use super::GatewayError;
use super::pipeline::{now_ms, seal_answer};
use crate::envelope::Session;
use crate::standard::ReturnCode;

/// Signed answers to requests refused before anything of them was read, one per return
/// code, message and second. Such an answer echoes nothing of the request (no requestId, a fixed
/// message), so one signature serves every refusal of its kind within the second; its
/// nonce repeats within that second, which costs nothing for a refusal. Without it, shedding
/// and the per-IP limit each cost an SM2 signature per request: a flood they refuse would
/// still have the gateway signing at full speed.
#[derive(Debug, Default)]
pub(crate) struct Refusals(std::sync::Mutex<Vec<(ReturnCode, String, u64, Bytes)>>);

impl Refusals {
    /// Whether `e`'s answer is one of these: shed, over the per-IP limit, no such endpoint,
    /// not POST.
    pub(super) fn covers(e: &GatewayError) -> bool {
        matches!(
            e,
            GatewayError::Shed
                | GatewayError::RateLimited { .. }
                | GatewayError::NotFound
                | GatewayError::MethodNotAllowed
        )
    }

    /// The signed answer of `code` with `msg` for this second.
    pub(crate) fn body(
        &self,
        key: &crate::crypto::SigningKey,
        code: ReturnCode,
        msg: &str,
    ) -> Bytes {
        let second = now_ms() / 1000;
        // By code and message: 404 and 405 are both 1002, with their own words.
        if let Some((.., b)) = crate::store::lock(&self.0)
            .iter()
            .find(|(c, m, s, _)| *c == code && m == msg && *s == second)
        {
            return b.clone();
        }
        let session = Session::for_rejected_request(None);
        // A seal that failed is sent, not kept.
        let body = match seal_answer(&session, key, code, msg, None) {
            Ok(b) => b,
            Err(unsigned) => return unsigned,
        };
        let mut kept = crate::store::lock(&self.0);
        kept.retain(|(c, m, s, _)| (*c != code || m != msg) && *s == second);
        kept.push((code, msg.to_owned(), second, body.clone()));
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    #[test]
    fn one_signature_serves_a_seconds_refusals_of_a_kind() {
        let key = SigningKey::generate().unwrap();
        let r = Refusals::default();
        // Two refusals in the same second: the same bytes (one signature). Within a test
        // the second may turn between the calls; then a third call is in the new second.
        let a = r.body(&key, ReturnCode::RateLimited, "rate limit exceeded");
        let b = r.body(&key, ReturnCode::RateLimited, "rate limit exceeded");
        let c = r.body(&key, ReturnCode::RateLimited, "rate limit exceeded");
        assert!(a == b || b == c, "no two refusals shared a body");
        let other = r.body(&key, ReturnCode::SystemError, "the gateway is overloaded");
        assert_ne!(other, c);
        // One code, two messages (404 and 405 are both 1002): each its own answer.
        let not_found = r.body(&key, ReturnCode::BadFormat, "no such endpoint");
        let not_post = r.body(&key, ReturnCode::BadFormat, "method not allowed");
        let text =
            |b: &Bytes| serde_json::from_slice::<serde_json::Value>(b).unwrap()["msg"].clone();
        assert_eq!(text(&not_found), "no such endpoint");
        assert_eq!(text(&not_post), "method not allowed");
        // Each is a signed envelope with its code.
        let v: serde_json::Value = serde_json::from_slice(&c).unwrap();
        assert_eq!(v["code"], "1007");
        assert!(v["sign"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
        assert!(Refusals::covers(&GatewayError::Shed));
        assert!(!Refusals::covers(&GatewayError::Internal("x".into())));
    }
}
