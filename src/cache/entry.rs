//! What the cache stores and under which key, the freshness rule, and the clock it is
//! measured on.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::crypto::{Digest128, digest128, to_hex};
use crate::standard::ServiceName;
use crate::translate::LossReport;

/// The digest a key is stored under.
pub(super) type Digest = Digest128;

/// The key of a cached answer.
///
/// # Partitioned by what the caller may see
///
/// Two callers asking the same question do not share an answer unless they may see the same
/// things. The partition names the caller's rights: [`CacheKey::partition_for`] makes it from
/// the caller's `appId` and its scope set, so an answer fetched for a caller with wide
/// scopes (unmasked fields, regional detail) is never served to one with narrower rights,
/// and one client's answers never reach another client. The price is fewer hits across
/// clients; the cache exists to absorb repeated scans by one verifier, so that is cheap.
///
/// # One digest
///
/// The key is kept as one keyed 128-bit digest of service, partition and request
/// ([`crate::crypto::digest128`]): 16 bytes whatever their length, and no request text held
/// in memory. Callers cannot choose requests that collide. (An SM3 digest did the same work
/// at several times the cost, on every request.)
#[derive(Clone, PartialEq, Eq)]
pub struct CacheKey {
    digest: Digest,
}

impl CacheKey {
    /// A key for `normalised_request` (the fields that determine the answer, in canonical
    /// form; never the envelope's nonce, timestamp or signature) asked of `service` by a
    /// caller in `partition`.
    ///
    /// The three are hashed with a NUL after each of the first two. Neither a service name
    /// nor a partition (JSON text, where a NUL is always escaped) holds one, so distinct
    /// triples never hash the same input.
    pub fn new(
        service: ServiceName,
        partition: impl AsRef<str>,
        normalised_request: &[u8],
    ) -> Self {
        let digest = digest128(&[
            service.as_str().as_bytes(),
            b"\0",
            partition.as_ref().as_bytes(),
            b"\0",
            normalised_request,
        ]);
        Self { digest }
    }

    pub(super) fn digest(&self) -> Digest {
        self.digest
    }

    /// The partition of a caller with `app_id` and `scopes`: the order and repetition of
    /// scopes do not matter, and no two distinct (app, scope set) pairs collide (the parts
    /// are JSON-encoded, so separators inside them cannot be confused with the encoding's).
    pub fn partition_for<S: AsRef<str>>(
        app_id: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> String {
        let mut scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        serde_json::json!([app_id, scopes]).to_string()
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheKey")
            .field(&to_hex(&self.digest))
            .finish()
    }
}

/// The loss report of an answer nothing was lost from, shared by every such entry.
static NO_LOSSES: LazyLock<Arc<LossReport>> = LazyLock::new(Arc::default);

/// A cached answer.
#[derive(Clone, PartialEq)]
pub struct Cached {
    /// The answer (national schema) as compact JSON text: a few hundred bytes, where the
    /// parsed tree is several times that.
    body: Box<str>,
    /// The person the answer is about, as their pseudonym in hex, so that a status event
    /// can purge it ([`super::ResponseCache::purge_subject`]). `None` for answers about no
    /// one in particular; those are never purged, only expired.
    pub subject: Option<Arc<str>>,
    /// Unix milliseconds after which the answer must not be served: see
    /// [`freshness_deadline`]. At or before the cache's current time means "answer this
    /// request, keep nothing".
    pub expires_at_ms: u64,
    /// What the translations lost when the answer was fetched (a dialect region): every
    /// caller it is served to gets the same report.
    pub losses: Arc<LossReport>,
    /// The person the answer is about, when a region named them (a verification the link
    /// registry recorded): a cache hit still gets a ticket bound to them.
    pub person: Option<crate::audit::Pseudonym>,
    /// When the gateway ticket in the body expires (Unix seconds), if it holds one: the
    /// ticket is sealed once, when the answer is fetched, for the one verifier whose
    /// partition the entry is in; a hit only updates `ticketExpiresIn`.
    pub ticket_exp_s: Option<i64>,
}

impl Cached {
    /// An answer to keep until `deadline` ([`freshness_deadline`]'s result); `None` makes
    /// an answer that is served to the callers waiting for it and not kept.
    pub fn new(body: &Value, subject: Option<Arc<str>>, deadline: Option<u64>) -> Self {
        Self {
            // Serialising a Value cannot fail: its keys are strings.
            body: serde_json::to_string(body).unwrap_or_default().into(),
            subject,
            expires_at_ms: deadline.unwrap_or(0),
            losses: Arc::clone(&NO_LOSSES),
            person: None,
            ticket_exp_s: None,
        }
    }

    /// The answer, parsed again from its text.
    ///
    /// # Errors
    ///
    /// Only if the text is not JSON, which [`Cached::new`] never makes.
    pub fn body(&self) -> serde_json::Result<Value> {
        serde_json::from_str(&self.body)
    }

    /// The answer as compact JSON text.
    pub fn body_json(&self) -> &str {
        &self.body
    }
}

/// The body is personal data; it stays out of logs.
impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("body", &"<redacted>")
            .field("subject", &self.subject)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The instant (Unix ms) after which an answer must not be served, or `None` if it must not
/// be cached at all (it is already stale).
///
/// The health-code rule (DESIGN.md §5): a colour never outlives its freshness window, the
/// region's `updateTime` plus that region's configured validity, nor the code's `exp`; and no
/// entry lives longer than the cache's `max_ttl_ms`. So the deadline is
/// `min(update_time_ms + validity_ms, code_exp_ms, now_ms + max_ttl_ms)`, and `None` when
/// that is not after `now_ms`. An `updateTime` in the future (a region's clock running
/// fast) earns nothing: `max_ttl_ms` still caps the life. Sums saturate.
pub fn freshness_deadline(
    update_time_ms: u64,
    validity_ms: u64,
    code_exp_ms: Option<u64>,
    now_ms: u64,
    max_ttl_ms: u64,
) -> Option<u64> {
    let window_end = update_time_ms.saturating_add(validity_ms);
    let deadline = window_end
        .min(now_ms.saturating_add(max_ttl_ms))
        .min(code_exp_ms.unwrap_or(u64::MAX));
    (deadline > now_ms).then_some(deadline)
}

/// The clock the cache compares `expires_at_ms` with: Unix milliseconds.
///
/// Injected so that tests move time by hand; production uses [`MillisClock::system`]. Whether
/// an entry may be served is decided on this clock at every read, and the sweep
/// ([`super::ResponseCache::run_pending_tasks`]) frees entries by it too.
#[derive(Clone)]
pub struct MillisClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl MillisClock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self::from_fn(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        })
    }

    /// A clock that reads `now_ms`.
    pub fn from_fn(now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now_ms))
    }

    /// The current time, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl fmt::Debug for MillisClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MillisClock").field(&self.now_ms()).finish()
    }
}
