//! The region `userToken`s the gateway relayed from `applyCodeAccess`, with the person each
//! was issued for, until it expires: a `generateCode` that brings one back names that person,
//! so the code the region issues is linked to them ([`super::links::link_issued_code`]). A
//! national-envelope region's `verifyCode` answer names no one, so without this a status
//! event naming only the person could not find the cached verifications of that code.
//!
//! Tokens are kept as keyed digests (the pseudonym key), never as sent. The map is bounded:
//! when it is full of tokens not yet expired, a new one is not remembered, and its code is
//! linked only if an event names it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::audit::Pseudonym;
use crate::crypto::MacKey;

/// Tokens remembered at once.
const MAX_TOKENS: usize = 100_000;

/// Least time between two sweeps of expired tokens when the map is full, milliseconds.
const SWEEP_EVERY_MS: u64 = 1_000;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct UserTokens {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Digest of the token → (the person, expiry in Unix milliseconds).
    tokens: HashMap<[u8; 32], (Pseudonym, u64)>,
    last_sweep_ms: u64,
}

impl UserTokens {
    /// Remembers that `token` was issued for `person` until `expires_ms`.
    pub(crate) fn remember(
        &self,
        key: &MacKey,
        token: &str,
        person: Pseudonym,
        expires_ms: u64,
        now_ms: u64,
    ) {
        let digest = key.tag(token.as_bytes());
        let mut inner = crate::store::lock(&self.inner);
        if inner.tokens.len() >= MAX_TOKENS
            && now_ms.saturating_sub(inner.last_sweep_ms) >= SWEEP_EVERY_MS
        {
            inner.tokens.retain(|_, (_, exp)| *exp > now_ms);
            inner.last_sweep_ms = now_ms;
        }
        if inner.tokens.len() < MAX_TOKENS || inner.tokens.contains_key(&digest) {
            inner.tokens.insert(digest, (person, expires_ms));
        }
    }

    /// The person `token` was issued for, while it has not expired.
    pub(crate) fn person(&self, key: &MacKey, token: &str, now_ms: u64) -> Option<Pseudonym> {
        let digest = key.tag(token.as_bytes());
        let inner = crate::store::lock(&self.inner);
        inner
            .tokens
            .get(&digest)
            .filter(|(_, exp)| *exp > now_ms)
            .map(|(p, _)| *p)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        crate::store::lock(&self.inner).tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_person_until_it_expires_and_the_map_stays_bounded() {
        let key = MacKey::from_bytes(&[3u8; 32]).unwrap();
        let (a, b) = (Pseudonym([1u8; 32]), Pseudonym([2u8; 32]));
        let t = UserTokens::default();
        t.remember(&key, "tok-a", a, 2_000, 1_000);
        assert_eq!(t.person(&key, "tok-a", 1_500), Some(a));
        assert_eq!(t.person(&key, "tok-a", 2_000), None, "expired");
        assert_eq!(t.person(&key, "tok-b", 1_500), None, "never seen");
        // Another key's digest is another token.
        let other = MacKey::from_bytes(&[4u8; 32]).unwrap();
        assert_eq!(t.person(&other, "tok-a", 1_500), None);
        // Full of live tokens: a new one is not remembered; once they expire, it is.
        for i in 0..MAX_TOKENS {
            t.remember(&key, &format!("t{i}"), a, 10_000, 1_000);
        }
        t.remember(&key, "late", b, 20_000, 1_500);
        assert_eq!(t.person(&key, "late", 1_500), None);
        assert_eq!(t.len(), MAX_TOKENS);
        t.remember(&key, "later", b, 30_000, 11_000);
        assert_eq!(t.person(&key, "later", 11_000), Some(b));
        assert_eq!(t.len(), 1, "the expired ones were swept");
    }
}
