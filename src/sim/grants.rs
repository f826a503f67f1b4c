//! `authCode`s: what `applyCodeAccess` grants a client, to act for one person for a few
//! minutes (`generateCode`, `queryHealthInfo`, `correctHealthInfo`). Both simulators keep
//! them in a [`Grants`] table.

use std::collections::HashMap;

/// Live `authCode`s at most; expired ones are dropped first when it is reached.
const MAX_GRANTS: usize = 200_000;

/// An `authCode` granted by `applyCodeAccess`.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    /// The person's index in the population.
    pub(super) person: usize,
    /// The client it was granted to.
    pub(super) app_id: String,
    /// Unix seconds.
    pub(super) expires_at: i64,
}

/// The live `authCode`s.
#[derive(Debug, Default)]
pub(super) struct Grants {
    map: HashMap<String, Grant>,
}

impl Grants {
    /// Keeps `grant` under `code`, dropping expired grants when the table is full.
    pub(super) fn insert(&mut self, code: String, grant: Grant, now: i64) {
        if self.map.len() >= MAX_GRANTS {
            self.map.retain(|_, g| g.expires_at > now);
        }
        if self.map.len() >= MAX_GRANTS {
            // Still full of live grants: drop one rather than grow without bound.
            if let Some(k) = self.map.keys().next().cloned() {
                self.map.remove(&k);
            }
        }
        self.map.insert(code, grant);
    }

    /// The person an `authCode` lets `app_id` act for at `now`.
    pub(super) fn check(&self, code: &str, app_id: &str, now: i64) -> Option<usize> {
        self.map
            .get(code)
            .filter(|g| g.app_id == app_id && now < g.expires_at)
            .map(|g| g.person)
    }
}
