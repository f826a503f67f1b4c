//! Person pseudonyms (DESIGN.md §8): HMAC-SM3 under the gateway's pseudonym secret over the
//! ID type and number. State is keyed by these; a raw ID number is never stored.

use std::fmt;

use crate::crypto::{MacKey, SM3_LEN, to_hex};

/// Separator between the ID type and the ID number in the MAC input: ASCII unit separator,
/// which neither can contain.
const SEPARATOR: u8 = 0x1f;

/// A person's pseudonym: `HMAC-SM3(secret, idType ‖ 0x1f ‖ idNo)`.
///
/// Stable for a given secret, unlinkable without it. Safe to store and to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym(pub [u8; SM3_LEN]);

impl Pseudonym {
    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits (either case); `None` for anything else.
    pub fn parse_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; SM3_LEN];
        crate::crypto::decode_hex_into(s, &mut out, "pseudonym").ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({})", self.to_hex())
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The pseudonym of the person with ID type `id_type` (a code of the ID-type table, `10`
/// for a resident ID card) and number `id_no`.
///
/// Both are normalised first, so that one person always gets one pseudonym: surrounding
/// whitespace is removed, and ASCII letters in the number are upper-cased (a GB 11643 check
/// character is `X`, but is often typed `x`; passport numbers are upper-case).
pub fn pseudonym(secret: &MacKey, id_type: &str, id_no: &str) -> Pseudonym {
    let id_type = id_type.trim();
    let id_no = id_no.trim();
    let mut msg = zeroize::Zeroizing::new(Vec::with_capacity(id_type.len() + 1 + id_no.len()));
    msg.extend_from_slice(id_type.as_bytes());
    msg.push(SEPARATOR);
    msg.extend(id_no.bytes().map(|b| b.to_ascii_uppercase()));
    Pseudonym(secret.tag(&msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac_sm3;

    fn secret() -> MacKey {
        MacKey::from_bytes(b"0123456789abcdef0123456789abcdef").expect("key")
    }

    #[test]
    fn is_hmac_sm3_over_type_separator_number() {
        let p = pseudonym(&secret(), "10", "11010519491231002X");
        let expected = hmac_sm3(secret().as_bytes(), b"10\x1f11010519491231002X");
        assert_eq!(p.0, expected);
    }

    #[test]
    fn normalises_case_and_whitespace() {
        let a = pseudonym(&secret(), "10", "11010519491231002X");
        let b = pseudonym(&secret(), " 10", "11010519491231002x \n");
        assert_eq!(a, b);
    }

    #[test]
    fn separates_type_from_number() {
        // Without the separator, ("1", "01…") and ("10", "1…") would collide.
        let a = pseudonym(&secret(), "1", "0123");
        let b = pseudonym(&secret(), "10", "123");
        assert_ne!(a, b);
    }

    #[test]
    fn depends_on_the_secret() {
        let other = MacKey::from_bytes(&[7u8; 16]).expect("key");
        assert_ne!(
            pseudonym(&secret(), "10", "11010519491231002X"),
            pseudonym(&other, "10", "11010519491231002X")
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let p = pseudonym(&secret(), "10", "11010519491231002X");
        let hex = p.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(Pseudonym::parse_hex(&hex), Some(p));
        assert_eq!(Pseudonym::parse_hex(&hex.to_uppercase()), Some(p));
        assert_eq!(Pseudonym::parse_hex(&hex[..62]), None);
        assert_eq!(Pseudonym::parse_hex(&format!("{}zz", &hex[..62])), None);
    }
}
