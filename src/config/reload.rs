//! What a configuration reload (SIGHUP) can change, and what only a restart can.
//!
//! A reload swaps in the new configuration: clients, regions, dialects, the trust list,
//! rate limits, `auth.require_token`, `server.max_body_bytes`, `body_read_timeout_ms` and
//! `request_timeout`, the cache's `query_health_info` and a lower `max_ttl_ms`, and
//! retention take effect at once.
//! Some settings are read once, when the gateway starts: the listeners and their TLS files,
//! the connection limits, the gateway's own keys (both signing directions) and store, the
//! access tokens' key, the cache's size and its cap on entry lifetimes (which a higher
//! `max_ttl_ms` cannot pass), the audit writer, and the issuer key of the national codes
//! the gateway issues. A reload that changes any of those is applied for the rest, and the
//! gateway logs which of them differ from what it started with and so wait for the next
//! start ([`Validated::restart_only_changes`], called with the configuration of the start),
//! so that an operator is never told a change took effect when it did not. Key files are
//! read at start too: a file replaced under the same name (a rotated gateway or token key)
//! is read at the next start, and a reload cannot see that it changed.
//!
//! One change is refused outright ([`Validated::reload_refusal`]): a configuration without
//! `[trust]` for a gateway that issues national codes. The issuer key is not reloaded, so
//! the gateway would go on issuing codes whose page (`/phic/c`) it no longer serves.

use super::Validated;

impl Validated {
    /// Clients whose rate limit admits more requests over the replay window than the replay
    /// store holds for one client (`replay.max_entries_per_app`), one line each, by appId:
    /// past that many, their requests are refused 1007 however their limit stands. Logged
    /// at start and on reload; not an error, since a short burst over it is harmless.
    pub fn replay_shortfalls(&self) -> Vec<String> {
        let cap = self.replay.max_entries_per_app as u64;
        let mut out: Vec<String> = self
            .clients
            .values()
            .filter_map(|c| {
                let limit = c
                    .rate_limit
                    .per_client
                    .unwrap_or(self.limits.default_per_client);
                let need = self
                    .replay
                    .needed_for(limit.per_second.get(), limit.burst.get());
                (need > cap).then(|| {
                    format!(
                        "client {}: its rate limit admits {need} requests within the replay \
                         window, more than replay.max_entries_per_app ({cap})",
                        c.app_id
                    )
                })
            })
            .collect();
        out.sort();
        out
    }

    /// The settings `new` changes that the running gateway read at start, by their names
    /// in the file (empty when a reload applies everything).
    pub fn restart_only_changes(&self, new: &Validated) -> Vec<&'static str> {
        let (s, n) = (&self.server, &new.server);
        let (g, ng) = (&self.gateway, &new.gateway);
        let (a, na) = (&self.auth, &new.auth);
        // The issuer of the national codes the gateway issues, when it has one.
        let issuer = |v: &Validated| {
            let t = v.trust.as_ref()?;
            Some((t.dev_issuer_id.clone()?, t.dev_issuer_key_file.clone()?))
        };
        [
            ("server.listen", s.listen != n.listen),
            ("server.admin_listen", s.admin_listen != n.admin_listen),
            (
                "server.insecure_plain_http",
                s.insecure_plain_http != n.insecure_plain_http,
            ),
            ("server.tls_cert_file", s.tls_cert_file != n.tls_cert_file),
            ("server.tls_key_file", s.tls_key_file != n.tls_key_file),
            (
                "server.client_ca_file",
                s.client_ca_file != n.client_ca_file,
            ),
            (
                "server.max_header_bytes",
                s.max_header_bytes != n.max_header_bytes,
            ),
            (
                "server.header_read_timeout_ms",
                s.header_read_timeout != n.header_read_timeout,
            ),
            (
                "server.max_concurrency",
                s.max_concurrency != n.max_concurrency,
            ),
            (
                "server.max_connections",
                s.max_connections != n.max_connections,
            ),
            (
                "server.max_connections_per_ip",
                s.max_connections_per_ip != n.max_connections_per_ip,
            ),
            (
                "server.shutdown_grace_ms",
                s.shutdown_grace != n.shutdown_grace,
            ),
            ("gateway.data_dir", g.data_dir != ng.data_dir),
            ("gateway.code_host", g.code_host != ng.code_host),
            (
                "gateway.store_cache_mib",
                g.store_cache_mib != ng.store_cache_mib,
            ),
            (
                "gateway.signing_key_file",
                g.signing_key_file != ng.signing_key_file,
            ),
            (
                "gateway.encryption_key_file",
                g.encryption_key_file != ng.encryption_key_file,
            ),
            (
                "gateway.pseudonym_secret_file",
                g.pseudonym_secret_file != ng.pseudonym_secret_file,
            ),
            ("auth.jwt_key_file", a.jwt_key_file != na.jwt_key_file),
            ("replay", self.replay != new.replay),
            ("auth.issuer", a.issuer != na.issuer),
            ("auth.audience", a.audience != na.audience),
            (
                "cache.max_entries",
                self.cache.max_entries != new.cache.max_entries,
            ),
            (
                "cache.max_ttl_ms (raised)",
                new.cache.max_ttl_ms > self.cache.max_ttl_ms,
            ),
            ("audit", self.audit != new.audit),
            // Started, stopped or changed: the issuer key is loaded at start. (Removing
            // [trust] with it is refused: reload_refusal.)
            (
                "trust.dev_issuer_id, trust.dev_issuer_key_file",
                issuer(self) != issuer(new) && new.trust.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// Why a running gateway cannot take this configuration by a reload, if it cannot;
    /// `issuing` says whether it issues national codes (it loaded an issuer key at start,
    /// whatever the configurations loaded since say).
    pub fn reload_refusal(&self, issuing: bool) -> Option<String> {
        (issuing && self.trust.is_none()).then(|| {
            "removing [trust] needs a restart: this gateway issues national codes with the \
             [trust] issuer key, which a reload does not unload, and it would stop serving \
             their pages"
                .to_owned()
        })
    }
}
