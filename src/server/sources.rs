//! Counts per source address (IPv6 by /64), against a cap: connections open
//! (`server.max_connections_per_ip`) and requests in flight (`server.max_requests_per_ip`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What each source holds now.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One place a source holds; given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Sources {
    /// Counts one more for `ip`'s source, unless it already holds `cap`.
    pub(crate) fn enter(this: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<Held> {
        let ip = crate::ratelimit::ip_bucket(ip);
        let mut open = crate::store::lock(&this.open);
        let n = open.entry(ip).or_default();
        if *n >= cap {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(Held {
            sources: Arc::clone(this),
            ip,
        })
    }

    /// Sources that hold anything now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        crate::store::lock(&self.open).len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = crate::store::lock(&self.sources.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_cap_and_gives_places_back() {
        let sources = Arc::new(Sources::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = Sources::enter(&sources, a, 2).unwrap();
        let second = Sources::enter(&sources, a, 2).unwrap();
        assert!(Sources::enter(&sources, a, 2).is_none(), "over the cap");
        // Another source is not held back by the first.
        let other = Sources::enter(&sources, b, 2).unwrap();
        // One IPv6 /64 is one source.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let six = Sources::enter(&sources, v6("2001:db8::1"), 1).unwrap();
        assert!(Sources::enter(&sources, v6("2001:db8::ffff"), 1).is_none());
        drop(first);
        let again = Sources::enter(&sources, a, 2).unwrap();
        drop((second, again, other, six));
        assert_eq!(sources.len(), 0, "nothing is left behind");
        // A cap of nothing admits nothing and keeps nothing.
        assert!(Sources::enter(&sources, a, 0).is_none());
        assert_eq!(sources.len(), 0);
    }
}
