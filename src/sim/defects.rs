//! Seeded defects: known deviations from the standard that `hutong sim --national --defect
//! NAME` switches on, one at a time or several together.
//!
//! A conformance suite that passes a broken implementation proves nothing. Standards teams
//! therefore run their suite against implementations with known defects, and the suite must
//! fail on every one (as TLS test suites keep deliberately broken peers). Each [`Defect`]
//! here is one such known-broken behaviour of a region back-end, from a forged signature
//! accepted to an ID number leaked unmasked.
//!
//! Each defect is a small deviation in the simulator's real request path, guarded by
//! `state.defects.contains(Defect::…)` and marked with a `DEFECT <name>` comment where it
//! happens (`handler.rs` for the envelope and the answer, `services.rs` for business
//! content, `mod.rs` for the answer-signing key). With no defect set — the default — none of
//! them runs, and the simulator behaves as a conforming region.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::ticket::{TicketError, TicketKey};
use crate::code::CodeUrl;

/// One known deviation from the standard. [`Defect::as_str`] is its name on the command
/// line; [`Defect::description`] says what it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Defect {
    /// Requests with a wrong `sign` are accepted (no 1003).
    SkipSignatureCheck,
    /// Answers are signed over the canonical string with its keys in reverse order.
    WrongCanonicalOrder,
    /// A repeated nonce is accepted (no 1004).
    AcceptReplay,
    /// A timestamp outside ±300 s is accepted (no 1004).
    AcceptStaleTimestamp,
    /// `verifyCode`'s `idNoMasked` carries the full ID number.
    LeakIdNumber,
    /// `verifyCode`'s `nameMasked` carries the full name.
    LeakName,
    /// An expired PHIC1 code gets 3001 instead of 3002.
    ExpiredCodeWrongCode,
    /// A client's rate limit is never applied (no 1007).
    IgnoreRateLimit,
    /// A yellow (01) person is answered as green (00) in `verifyCode` and `queryHealthInfo`.
    WrongColourMap,
    /// SM2-signed answers are signed with a key other than the published one.
    WrongResponseKey,
    /// `verifyCode` answers omit the required `updateTime`.
    DropRequiredField,
    /// An unknown `appId` gets 1003 instead of 1005.
    UnknownAppWrongCode,
    /// A BizExtData ticket is accepted from any client, not only the verifier it was issued to.
    TicketAnyClient,
    /// An expired BizExtData ticket is still accepted.
    TicketNoExpiry,
    /// `encType` NONE is accepted from a client not registered as a test client (no 1006).
    AcceptPlaintext,
    /// The answer's `requestId` differs from the request's.
    WrongRequestId,
    /// `verifyCode` of a PHIC1 code from an issuer outside the trust list succeeds (no 3003).
    UntrustedIssuerAccepted,
    /// `verifyCode`'s `updateTime` is written `yyyy/MM/dd HH:mm:ss`.
    BadTimeFormat,
    /// A correction repeating a `requestId` with other content is answered 4001 again
    /// (no 4002).
    DuplicateCorrectionAccepted,
    /// Answers with a non-zero code carry no `sign`.
    MissingSignatureOnError,
    /// Every answer, errors included, has HTTP status 200.
    WrongHttpStatus,
    /// Business content that breaks the standard (a missing parameter, a wrong type,
    /// format, length or code) is accepted: answered 0 with no business content (no 1001 or
    /// 1002).
    SkipBusinessValidation,
}

impl Defect {
    /// Every defect, in the order `--defect list` prints them.
    pub const ALL: [Defect; 22] = [
        Defect::SkipSignatureCheck,
        Defect::WrongCanonicalOrder,
        Defect::AcceptReplay,
        Defect::AcceptStaleTimestamp,
        Defect::LeakIdNumber,
        Defect::LeakName,
        Defect::ExpiredCodeWrongCode,
        Defect::IgnoreRateLimit,
        Defect::WrongColourMap,
        Defect::WrongResponseKey,
        Defect::DropRequiredField,
        Defect::UnknownAppWrongCode,
        Defect::TicketAnyClient,
        Defect::TicketNoExpiry,
        Defect::AcceptPlaintext,
        Defect::WrongRequestId,
        Defect::UntrustedIssuerAccepted,
        Defect::BadTimeFormat,
        Defect::DuplicateCorrectionAccepted,
        Defect::MissingSignatureOnError,
        Defect::WrongHttpStatus,
        Defect::SkipBusinessValidation,
    ];

    /// The name on the command line (`--defect skip-signature-check`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Defect::SkipSignatureCheck => "skip-signature-check",
            Defect::WrongCanonicalOrder => "wrong-canonical-order",
            Defect::AcceptReplay => "accept-replay",
            Defect::AcceptStaleTimestamp => "accept-stale-timestamp",
            Defect::LeakIdNumber => "leak-id-number",
            Defect::LeakName => "leak-name",
            Defect::ExpiredCodeWrongCode => "expired-code-wrong-code",
            Defect::IgnoreRateLimit => "ignore-rate-limit",
            Defect::WrongColourMap => "wrong-colour-map",
            Defect::WrongResponseKey => "wrong-response-key",
            Defect::DropRequiredField => "drop-required-field",
            Defect::UnknownAppWrongCode => "unknown-app-wrong-code",
            Defect::TicketAnyClient => "ticket-any-client",
            Defect::TicketNoExpiry => "ticket-no-expiry",
            Defect::AcceptPlaintext => "accept-plaintext",
            Defect::WrongRequestId => "wrong-request-id",
            Defect::UntrustedIssuerAccepted => "untrusted-issuer-accepted",
            Defect::BadTimeFormat => "bad-time-format",
            Defect::DuplicateCorrectionAccepted => "duplicate-correction-accepted",
            Defect::MissingSignatureOnError => "missing-signature-on-error",
            Defect::WrongHttpStatus => "wrong-http-status",
            Defect::SkipBusinessValidation => "skip-business-validation",
        }
    }

    /// What the defect breaks, in one line.
    pub const fn description(self) -> &'static str {
        match self {
            Defect::SkipSignatureCheck => "requests with a wrong `sign` are accepted (no 1003)",
            Defect::WrongCanonicalOrder => {
                "answers are signed over the canonical string with its keys in reverse order"
            }
            Defect::AcceptReplay => "a repeated nonce is accepted (no 1004)",
            Defect::AcceptStaleTimestamp => "a timestamp outside ±300 s is accepted (no 1004)",
            Defect::LeakIdNumber => "verifyCode's idNoMasked carries the full ID number",
            Defect::LeakName => "verifyCode's nameMasked carries the full name",
            Defect::ExpiredCodeWrongCode => "an expired PHIC1 code gets 3001 instead of 3002",
            Defect::IgnoreRateLimit => "a client's rate limit is never applied (no 1007)",
            Defect::WrongColourMap => {
                "a yellow (01) person is answered as green (00) in verifyCode and queryHealthInfo"
            }
            Defect::WrongResponseKey => {
                "SM2-signed answers are signed with a key other than the published one"
            }
            Defect::DropRequiredField => "verifyCode answers omit the required updateTime",
            Defect::UnknownAppWrongCode => "an unknown appId gets 1003 instead of 1005",
            Defect::TicketAnyClient => "a BizExtData ticket is accepted from any client",
            Defect::TicketNoExpiry => "an expired BizExtData ticket is still accepted",
            Defect::AcceptPlaintext => {
                "encType NONE is accepted from a client not registered as a test client (no 1006)"
            }
            Defect::WrongRequestId => "the answer's requestId differs from the request's",
            Defect::UntrustedIssuerAccepted => {
                "verifyCode of a code from an untrusted issuer succeeds (no 3003)"
            }
            Defect::BadTimeFormat => "verifyCode's updateTime is written yyyy/MM/dd HH:mm:ss",
            Defect::DuplicateCorrectionAccepted => {
                "a correction reusing a requestId with other content gets 4001 again (no 4002)"
            }
            Defect::MissingSignatureOnError => "answers with a non-zero code carry no sign",
            Defect::WrongHttpStatus => "every answer, errors included, has HTTP status 200",
            Defect::SkipBusinessValidation => {
                "business content that breaks the standard is answered 0 (no 1001 or 1002)"
            }
        }
    }

    /// This defect's bit in [`Defects`].
    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every defect's name and description, one a line, indented: what `--defect list` prints
/// and what an unknown name is answered with.
pub fn defect_list() -> String {
    let width = Defect::ALL
        .iter()
        .map(|d| d.as_str().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for d in Defect::ALL {
        out.push_str(&format!("  {:width$}  {}\n", d.as_str(), d.description()));
    }
    out
}

/// A name that is not a [`Defect`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown defect `{name}`; the defects are:\n{}", defect_list())]
pub struct UnknownDefect {
    /// The name given.
    pub name: String,
}

impl FromStr for Defect {
    type Err = UnknownDefect;

    /// Parses a name exactly as [`Defect::as_str`] writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Defect::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDefect { name: s.to_owned() })
    }
}

/// A set of defects; the default is empty (a conforming simulator). A bitset: checking it is
/// one AND on every request, and it is `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defects(u32);

// Every defect has a bit of its own.
const _: () = assert!(Defect::ALL.len() <= u32::BITS as usize);

impl Defects {
    /// No defect.
    pub const NONE: Defects = Defects(0);

    /// Whether `d` is switched on.
    pub const fn contains(self, d: Defect) -> bool {
        self.0 & d.bit() != 0
    }

    /// Switches `d` on.
    pub fn insert(&mut self, d: Defect) {
        self.0 |= d.bit();
    }

    /// Whether no defect is switched on.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The defects switched on, in [`Defect::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Defect> {
        Defect::ALL.into_iter().filter(move |d| self.contains(*d))
    }
}

impl From<Defect> for Defects {
    fn from(d: Defect) -> Self {
        Defects(d.bit())
    }
}

impl FromIterator<Defect> for Defects {
    fn from_iter<I: IntoIterator<Item = Defect>>(iter: I) -> Self {
        let mut set = Defects::NONE;
        for d in iter {
            set.insert(d);
        }
        set
    }
}

impl fmt::Display for Defects {
    /// The names, comma-separated; `none` for the empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, d) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(d.as_str())?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The parts of deviations that take more than a line. The deviations themselves, and the
// `DEFECT` comments, stay where they happen.

/// The code id a PHIC1 token or URL claims, read without verifying anything: how
/// `untrusted-issuer-accepted` takes a code at its word.
pub(super) fn unverified_code_id(content: &str) -> Option<String> {
    let url;
    let token = if content.starts_with("PHIC1.") {
        content
    } else {
        url = CodeUrl::parse(content).ok()?;
        url.pc.as_deref()?
    };
    let parsed = crate::code::token::parse(token).ok()?;
    Some(parsed.claims.cid.as_str().to_owned())
}

/// What a ticket says about who may use it and from when.
#[derive(Deserialize)]
struct TicketBinding {
    app: String,
    iat: i64,
}

/// [`TicketKey::open`] with the bindings that `defects` lift: the caller is taken for the
/// ticket's own verifier (`ticket-any-client`), and now for the moment it was issued
/// (`ticket-no-expiry`). Tampered or foreign tickets are still refused.
pub(super) fn open_ticket_loosely(
    key: &TicketKey,
    defects: Defects,
    ticket: &str,
    app_id: &str,
    now: i64,
) -> Result<String, TicketError> {
    let binding: TicketBinding = key.open_json(ticket)?;
    let app = if defects.contains(Defect::TicketAnyClient) {
        binding.app.as_str()
    } else {
        app_id
    };
    let at = if defects.contains(Defect::TicketNoExpiry) {
        binding.iat
    } else {
        now
    };
    key.open(ticket, app, at)
}
