//! Cache configuration, as a serde struct with named defaults.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

/// Default cap on cached answers. An answer is a small JSON document (a colour, masked
/// fields, a few regions): about 500 bytes with its key and index entry
/// (`hutong bench memory-parts`), so the default costs about 50 MB at the cap.
pub const DEFAULT_MAX_ENTRIES: NonZeroU64 = match NonZeroU64::new(100_000) {
    Some(n) => n,
    None => panic!("nonzero"),
};

/// Default longest life of any entry: 5 minutes, whatever the region's validity says. It
/// bounds how long an answer can be served if a status event is lost on the way.
pub const DEFAULT_MAX_TTL_MS: NonZeroU64 = match NonZeroU64::new(300_000) {
    Some(n) => n,
    None => panic!("nonzero"),
};

/// Configuration of [`super::ResponseCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct CacheConfig {
    /// Most answers held at once ([`DEFAULT_MAX_ENTRIES`]); beyond it the clock hand
    /// evicts an answer not read since it last passed (second chance).
    #[serde(default = "default_max_entries")]
    pub max_entries: NonZeroU64,
    /// Longest any answer is kept, in milliseconds ([`DEFAULT_MAX_TTL_MS`]). An entry's own
    /// deadline (see [`super::freshness_deadline`]) is usually sooner.
    #[serde(default = "default_max_ttl_ms")]
    pub max_ttl_ms: NonZeroU64,
    /// Whether `queryHealthInfo` answers are cached too (default true). `false` relays
    /// every query, which `benches/bench.sh` uses to time the relay alone.
    #[serde(default = "default_true")]
    pub query_health_info: bool,
}

fn default_true() -> bool {
    true
}

fn default_max_entries() -> NonZeroU64 {
    DEFAULT_MAX_ENTRIES
}
fn default_max_ttl_ms() -> NonZeroU64 {
    DEFAULT_MAX_TTL_MS
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_ttl_ms: DEFAULT_MAX_TTL_MS,
            query_health_info: true,
        }
    }
}
