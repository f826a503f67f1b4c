//! The region `userToken`s the gateway relayed from `applyCodeAccess`, with the person each
//! was issued for, until it expires: a `generateCode` that brings one back names that person,
//! so the code the region issues is linked to them ([`super::links::link_issued_code`]). A
//! national-envelope region's `verifyCode` answer names no one, so without this a status
//! event naming only the person could not find the cached verifications of that code.
//!
//! Tokens are kept as keyed digests (the pseudonym key) of the region that issued them and
//! the token, never as sent: two regions' tokens never meet. The map is bounded:
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
    /// Remembers that `region` issued `token` for `person`, until `expires_ms`.
    pub(crate) fn remember(
        &self,
        key: &MacKey,
        (region, token): (&str, &str),
        person: Pseudonym,
        expires_ms: u64,
        now_ms: u64,
    ) {
        let digest = digest(key, region, token);
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

    /// The person `region` issued `token` for, while it has not expired.
    pub(crate) fn person(
        &self,
        key: &MacKey,
        (region, token): (&str, &str),
        now_ms: u64,
    ) -> Option<Pseudonym> {
        let digest = digest(key, region, token);
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

/// The keyed digest of a region's token: the region's code, a separator, the token.
fn digest(key: &MacKey, region: &str, token: &str) -> [u8; 32] {
    let mut material = Vec::with_capacity(region.len() + 1 + token.len());
    material.extend_from_slice(region.as_bytes());
    material.push(0);
    material.extend_from_slice(token.as_bytes());
    key.tag(&material)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_person_until_it_expires_and_the_map_stays_bounded() {
        let key = MacKey::from_bytes(&[3u8; 32]).unwrap();
        let (a, b) = (Pseudonym([1u8; 32]), Pseudonym([2u8; 32]));
        let t = UserTokens::default();
        t.remember(&key, ("330000", "tok-a"), a, 2_000, 1_000);
        assert_eq!(t.person(&key, ("330000", "tok-a"), 1_500), Some(a));
        assert_eq!(t.person(&key, ("330000", "tok-a"), 2_000), None, "expired");
        assert_eq!(
            t.person(&key, ("330000", "tok-b"), 1_500),
            None,
            "never seen"
        );
        // The same token from another region is another token.
        assert_eq!(t.person(&key, ("440000", "tok-a"), 1_500), None);
        // Another key's digest is another token.
        let other = MacKey::from_bytes(&[4u8; 32]).unwrap();
        assert_eq!(t.person(&other, ("330000", "tok-a"), 1_500), None);
        // Full of live tokens: a new one is not remembered; once they expire, it is.
        for i in 0..MAX_TOKENS {
            t.remember(&key, ("330000", &format!("t{i}")), a, 10_000, 1_000);
        }
        t.remember(&key, ("330000", "late"), b, 20_000, 1_500);
        assert_eq!(t.person(&key, ("330000", "late"), 1_500), None);
        assert_eq!(t.len(), MAX_TOKENS);
        t.remember(&key, ("330000", "later"), b, 30_000, 11_000);
        assert_eq!(t.person(&key, ("330000", "later"), 11_000), Some(b));
        assert_eq!(t.len(), 1, "the expired ones were swept");
    }
}
