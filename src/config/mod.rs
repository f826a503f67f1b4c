//! The gateway's configuration: `config/hutong.toml` and its client and region registries.
//!
//! Parsed in two steps, as linkerd does: serde structs that refuse unknown keys, then
//! [`Config::validate`] into a [`Validated`] value whose types cannot hold bad values
//! (parsed keys, `Duration`s, `NonZero` limits). Every problem is reported at once. A reload
//! (SIGHUP) repeats both steps; on failure the running configuration stays.

pub mod dialects;
pub mod raw;
mod reload;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use raw::{
    AuthConfig, ClientConfig, Config, GatewayConfig, RegionConfig, Role, ServerConfig, SignTypeName,
};

use crate::crypto::{EncryptionKey, KeyTables, MacKey, Sm4Key, VerifyingKey};
use crate::envelope::ClientCredentials;
use crate::standard::ServiceName;

/// Largest `max_concurrency`, `max_connections` and `max_connections_per_ip`.
pub const MAX_SERVER_COUNT: usize = 1 << 24;

/// Problems found in a configuration, all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// A client after validation: keys parsed, services as values of the standard.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its `appId`.
    pub app_id: String,
    /// Its GB/T 2260 region.
    pub region: String,
    /// What it is.
    pub role: Role,
    /// Services it may call.
    pub services: Vec<ServiceName>,
    /// Regions whose data it may read; `*` for all.
    pub regions: Vec<String>,
    /// Its keys, as the envelope checks them: SM2 public key (sign type SM2), MAC key
    /// (HMAC-SM3), registered SM4 key (else `encKey`), plaintext for test clients.
    pub credentials: ClientCredentials,
    /// Whether a client certificate naming this appId is required.
    pub require_mtls: bool,
    /// Its own rate limits.
    pub rate_limit: crate::ratelimit::ClientLimitsConfig,
    /// The dialect its systems speak at ingress, and its credentials there.
    pub dialect: Option<(
        Arc<crate::translate::Dialect>,
        crate::upstream::DialectCredentials,
    )>,
}

impl Client {
    /// Whether the client may call `service`.
    pub fn may_call(&self, service: ServiceName) -> bool {
        self.services.contains(&service)
    }

    /// Whether the client may read data of `region`.
    pub fn may_read_region(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == "*" || r == region)
    }
}

/// A region after validation. Its Debug output leaves out the gateway's keys there.
#[derive(Clone)]
pub struct Region {
    /// GB/T 2260 code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Base URL of its national-envelope endpoint.
    pub url: String,
    /// The issuer ids whose codes it answers for.
    pub issuer_ids: Vec<String>,
    /// Its response-signing key (a national-envelope region).
    pub public_key: Option<VerifyingKey>,
    /// Its dialect and the gateway's credentials there (a dialect region).
    pub dialect: Option<(
        Arc<crate::translate::Dialect>,
        crate::upstream::DialectCredentials,
    )>,
    /// CA for its TLS certificate, when https.
    pub ca_file: Option<PathBuf>,
    /// Whole-call deadline.
    pub timeout: Duration,
    /// Connect deadline.
    pub connect_timeout: Duration,
    /// How long a status it reports stays fresh.
    pub validity: Duration,
    /// The gateway's HMAC-SM3 key registered at the region, if any.
    pub gateway_mac_key: Option<Vec<u8>>,
    /// The gateway's SM4 key registered at the region, if any (else `encKey`).
    pub gateway_sm4_key: Option<Vec<u8>>,
    /// The region's SM2 encryption key, for `encKey`.
    pub encryption_key: Option<EncryptionKey>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |k: &Option<Vec<u8>>| k.as_ref().map(|_| "(set)");
        f.debug_struct("Region")
            .field("code", &self.code)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("issuer_ids", &self.issuer_ids)
            .field("public_key", &self.public_key)
            .field("dialect", &self.dialect.as_ref().map(|(d, _)| &d.id))
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("validity", &self.validity)
            .field("gateway_mac_key", &set(&self.gateway_mac_key))
            .field("gateway_sm4_key", &set(&self.gateway_sm4_key))
            .field("encryption_key", &self.encryption_key)
            .finish()
    }
}

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Listener settings.
    pub server: ServerSettings,
    /// The gateway's own identity and files.
    pub gateway: GatewayConfig,
    /// Access tokens.
    pub auth: AuthConfig,
    /// Clients by appId.
    pub clients: HashMap<String, Client>,
    /// Regions by code.
    pub regions: HashMap<String, Region>,
    /// Offline code verification, with paths resolved.
    pub trust: Option<raw::TrustConfig>,
    /// Rate limits.
    pub limits: crate::ratelimit::LimitsConfig,
    /// Cache settings.
    pub cache: crate::cache::CacheConfig,
    /// The replay store's window and caps.
    pub replay: crate::envelope::NonceStoreConfig,
    /// Audit writer settings.
    pub audit: crate::audit::AuditConfig,
    /// Retention periods and the purge interval.
    pub retention: crate::retention::RetentionPolicy,
    /// Where relative paths are resolved from (the config file's directory).
    pub base_dir: PathBuf,
    /// The regional dialects, by id, and the directory they were loaded from.
    pub dialects: Arc<dialects::Dialects>,
    /// Where the dialect files are.
    pub dialects_dir: PathBuf,
}

/// Listener settings with units applied.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Public listener.
    pub listen: SocketAddr,
    /// Admin listener (metrics, liveness, readiness).
    pub admin_listen: SocketAddr,
    /// Plain HTTP instead of TLS (development, loopback only).
    pub insecure_plain_http: bool,
    /// Server certificate chain, PEM.
    pub tls_cert_file: PathBuf,
    /// Server key, PEM.
    pub tls_key_file: PathBuf,
    /// CA whose client certificates are accepted (mTLS); none disables client certs.
    pub client_ca_file: Option<PathBuf>,
    /// Generate development certificates when the files are missing.
    pub generate_dev_certs: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Time a client has to send its request head.
    pub header_read_timeout: Duration,
    /// Time a client has to send its request body once the head is read.
    pub body_read_timeout: Duration,
    /// Deadline of one request inside the gateway.
    pub request_timeout: Duration,
    /// Requests in flight before new ones are shed.
    pub max_concurrency: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one source (IPv6 by /64).
    pub max_connections_per_ip: usize,
    /// Requests in flight at once from one source (IPv6 by /64).
    pub max_requests_per_ip: usize,
    /// How long an HTTP/2 connection stays open with no request in flight.
    pub idle_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Config {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// Every problem found, at once.
    pub fn load(path: &Path) -> Result<Validated, ConfigError> {
        Self::load_reusing(path, None)
    }

    /// [`load`](Self::load) for a reload: an SM2 key that `previous` (the configuration in
    /// force) already holds keeps its verification table instead of building it again
    /// (about 2 ms of CPU a key, for every client and region on every reload).
    ///
    /// # Errors
    /// Every problem found, at once.
    pub fn load_reusing(
        path: &Path,
        previous: Option<&Validated>,
    ) -> Result<Validated, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?;
        let raw: Config =
            toml::from_str(&text).map_err(|e| ConfigError(vec![toml_error(path, &text, &e)]))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        raw.validate_reusing(&base, previous)
    }

    /// Validates a parsed configuration; relative paths resolve against `base`.
    ///
    /// # Errors
    /// Every problem found, at once.
    pub fn validate(self, base: &Path) -> Result<Validated, ConfigError> {
        self.validate_reusing(base, None)
    }

    /// [`validate`](Self::validate), sharing the key tables `previous` holds (see
    /// [`load_reusing`](Self::load_reusing)).
    ///
    /// # Errors
    /// Every problem found, at once.
    pub fn validate_reusing(
        self,
        base: &Path,
        previous: Option<&Validated>,
    ) -> Result<Validated, ConfigError> {
        // The client and region keys of the configuration in force.
        let tables = KeyTables::of(previous.into_iter().flat_map(|v| {
            let clients = v.clients.values();
            let clients = clients.filter_map(|c| c.credentials.verifying_key.as_ref());
            clients.chain(v.regions.values().filter_map(|r| r.public_key.as_ref()))
        }));
        let mut p = Vec::new();
        let resolve = |f: &Path| {
            if f.is_absolute() {
                f.to_path_buf()
            } else {
                base.join(f)
            }
        };
        let s = &self.server;
        let listen = parse_addr(&s.listen, "server.listen", &mut p);
        let admin = parse_addr(&s.admin_listen, "server.admin_listen", &mut p);
        if s.insecure_plain_http {
            if let Some(a) = listen {
                if !a.ip().is_loopback() {
                    p.push(format!(
                        "server.insecure_plain_http is allowed on loopback only, not {a}"
                    ));
                }
            }
        }
        for (name, v) in [
            ("max_body_bytes", s.max_body_bytes),
            ("max_header_bytes", s.max_header_bytes),
            ("max_concurrency", s.max_concurrency),
            ("max_connections", s.max_connections),
            ("max_connections_per_ip", s.max_connections_per_ip),
            ("max_requests_per_ip", s.max_requests_per_ip),
        ] {
            if v == 0 {
                p.push(format!("server.{name} must be positive"));
            }
        }
        // Each sizes a semaphore or a count: a bound far past any machine keeps a typing
        // slip from panicking at start (a semaphore holds at most usize::MAX >> 3 permits).
        for (name, v) in [
            ("max_concurrency", s.max_concurrency),
            ("max_connections", s.max_connections),
            ("max_connections_per_ip", s.max_connections_per_ip),
            ("max_requests_per_ip", s.max_requests_per_ip),
        ] {
            if v > MAX_SERVER_COUNT {
                p.push(format!("server.{name} must be at most {MAX_SERVER_COUNT}"));
            }
        }
        // Each is added to the clock. A request's deadline leaves a region call the time its
        // breaker needs to count a region that hangs (upstream::MIN_COUNTED_WAIT).
        let max = crate::upstream::MAX_WAIT_MS;
        for (name, v, min) in [
            ("header_read_timeout_ms", s.header_read_timeout_ms, 1),
            ("body_read_timeout_ms", s.body_read_timeout_ms, 1),
            ("idle_timeout_ms", s.idle_timeout_ms, 1),
            ("request_timeout_ms", s.request_timeout_ms, 1_000),
        ] {
            if v < min || v > max {
                p.push(format!("server.{name} must be {min} to {max} (10 minutes)"));
            }
        }
        if self.gateway.store_cache_mib == 0 {
            p.push("gateway.store_cache_mib must be positive".to_owned());
        }
        let ttl = self.auth.token_ttl_secs;
        if ttl == 0 || ttl > crate::auth::MAX_TOKEN_TTL_SECS {
            p.push(format!(
                "auth.token_ttl_secs must be 1 to {} (31 days)",
                crate::auth::MAX_TOKEN_TTL_SECS
            ));
        }
        if let Some(h) = &self.gateway.code_host {
            if !crate::code::valid_host(h) {
                p.push(format!(
                    "gateway.code_host {h:?} is not a lowercase host name with an optional port"
                ));
            }
        }
        p.extend(self.audit.problems());
        p.extend(self.replay.problems());
        let std = crate::standard::Standard::embedded();
        let (dialects_dir, dialects) =
            dialects::load(self.gateway.dialects_dir.as_deref(), base, &std, &mut p);
        let mut clients = HashMap::new();
        for (n, c) in self.client.into_iter().enumerate() {
            let at = if c.app_id.is_empty() {
                format!(
                    "client #{} (the {} [[client]] table)",
                    n + 1,
                    ordinal(n + 1)
                )
            } else {
                format!("client {}", c.app_id)
            };
            if c.require_mtls && (s.client_ca_file.is_none() || s.insecure_plain_http) {
                p.push(format!(
                    "{at}: require_mtls needs server.client_ca_file, and TLS (not \
                     server.insecure_plain_http): without them no certificate is asked for, \
                     and every call of this client would be refused"
                ));
            }
            if !valid_client_app_id(&c.app_id) {
                p.push(format!(
                    "{at}: app_id must be 1-32 ASCII letters and digits"
                ));
            }
            if !std.divisions.is_current(&c.region) {
                p.push(format!(
                    "{at}: region {} is not a current GB/T 2260 code",
                    c.region
                ));
            }
            let mut services = Vec::new();
            for name in &c.services {
                match name.parse::<ServiceName>() {
                    Ok(s) => services.push(s),
                    Err(e) => p.push(format!("{at}: {e}")),
                }
            }
            let sm2 =
                c.sm2_public_key
                    .as_deref()
                    .and_then(|k| match read_public_key(k, &resolve) {
                        // It verifies every SM2-signed request of the client: its table is
                        // built here, at load, not on a request.
                        Ok(k) => Some(tables.precompute(k)),
                        Err(e) => {
                            p.push(format!("{at}: sm2_public_key: {e}"));
                            None
                        }
                    });
            let mac = c.mac_key_hex.as_deref().and_then(|h| {
                match hex_bytes(h).and_then(|b| MacKey::from_bytes(&b).map_err(|e| e.to_string())) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        p.push(format!("{at}: mac_key_hex: {e}"));
                        None
                    }
                }
            });
            let sm4 = c
                .sm4_key_hex
                .as_deref()
                .and_then(|h| match Sm4Key::from_hex(h) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        p.push(format!("{at}: sm4_key_hex: {e}"));
                        None
                    }
                });
            for t in &c.sign_types {
                let has = match t {
                    SignTypeName::Sm2 => sm2.is_some() || c.sm2_public_key.is_some(),
                    SignTypeName::HmacSm3 => mac.is_some() || c.mac_key_hex.is_some(),
                };
                if !has {
                    let key = match t {
                        SignTypeName::Sm2 => "SM2 needs sm2_public_key",
                        SignTypeName::HmacSm3 => "HMAC-SM3 needs mac_key_hex",
                    };
                    p.push(format!("{at}: sign type {key}"));
                }
            }
            let rate_limit = c.rate_limit;
            let dialect = dialects::resolve_dialect(
                c.dialect.as_deref(),
                c.dialect_credentials.as_ref(),
                &dialects,
                &at,
                &resolve,
                &mut p,
            );
            let client = Client {
                app_id: c.app_id.clone(),
                region: c.region,
                role: c.role,
                services,
                regions: c.regions,
                credentials: ClientCredentials {
                    verifying_key: if c.sign_types.contains(&SignTypeName::Sm2) {
                        sm2
                    } else {
                        None
                    },
                    mac_key: if c.sign_types.contains(&SignTypeName::HmacSm3) {
                        mac
                    } else {
                        None
                    },
                    sm4_key: sm4,
                    insecure_allow_plaintext: c.insecure_test_client,
                },
                require_mtls: c.require_mtls,
                rate_limit,
                dialect,
            };
            if clients.insert(c.app_id.clone(), client).is_some() {
                p.push(format!("{at}: duplicate app_id"));
            }
        }
        if let Some(t) = &self.trust {
            if !(1..=crate::code::DEFAULT_MAX_LIFETIME_SECS).contains(&t.max_code_lifetime_secs) {
                p.push(format!(
                    "trust.max_code_lifetime_secs must be 1 to {}",
                    crate::code::DEFAULT_MAX_LIFETIME_SECS
                ));
            }
            if t.clock_skew_secs > 300 {
                p.push("trust.clock_skew_secs must be at most 300".to_owned());
            }
        }
        if !crate::envelope::valid_id(&self.gateway.app_id) {
            p.push(format!(
                "gateway.app_id {:?} must be 1 to 64 letters, digits, '.', '-' or '_' (the \
                 envelope's appId)",
                self.gateway.app_id
            ));
        }
        let mut regions = HashMap::new();
        let mut issuer_region: HashMap<String, String> = HashMap::new();
        for r in self.region {
            let at = format!("region {}", r.code);
            if !std.divisions.is_current(&r.code) {
                p.push(format!("{at}: not a current GB/T 2260 code"));
            }
            if !(r.url.starts_with("https://") || is_loopback_http(&r.url)) {
                p.push(format!("{at}: url must be https, or http on loopback"));
            }
            let dialect = dialects::resolve_dialect(
                r.dialect.as_deref(),
                r.dialect_credentials.as_ref(),
                &dialects,
                &at,
                &resolve,
                &mut p,
            );
            if let Some((d, _)) = &dialect {
                // A dialect's code patterns are credited to the region that speaks it.
                if d.region.get(..2) != r.code.get(..2) {
                    p.push(format!(
                        "{at}: dialect {} is the dialect of province {}, not of this region",
                        d.id, d.region
                    ));
                }
            }
            let key = match (&r.public_key, &r.dialect) {
                (Some(k), _) => match read_public_key(k, &resolve) {
                    // It verifies every response of the region.
                    Ok(k) => Some(Some(tables.precompute(k))),
                    Err(e) => {
                        p.push(format!("{at}: public_key: {e}"));
                        None
                    }
                },
                (None, Some(_)) => Some(None),
                (None, None) => {
                    p.push(format!(
                        "{at}: needs public_key (a national-envelope region) or dialect"
                    ));
                    None
                }
            };
            for (name, v) in [
                ("timeout_ms", r.timeout_ms),
                ("connect_timeout_ms", r.connect_timeout_ms),
            ] {
                if v == 0 || v > crate::upstream::MAX_WAIT_MS {
                    p.push(format!(
                        "{at}: {name} must be 1 to {} (10 minutes)",
                        crate::upstream::MAX_WAIT_MS
                    ));
                }
            }
            if r.validity_secs > 30 * 86_400 {
                p.push(format!(
                    "{at}: validity_secs must be at most 2592000 (30 days)"
                ));
            }
            for i in &r.issuer_ids {
                if i.len() != 8 || !i.bytes().all(|b| b.is_ascii_digit()) {
                    p.push(format!("{at}: issuer id {i} must be 8 digits"));
                } else if !within_region(&i[..6], &r.code) {
                    // Codes are routed by their issuer: one listed under a region it is not
                    // in would send that region's people's codes elsewhere.
                    p.push(format!(
                        "{at}: issuer id {i} is not of this region (its first 6 digits name \
                         the division it belongs to)"
                    ));
                }
                if let Some(other) = issuer_region.insert(i.clone(), r.code.clone()) {
                    if other != r.code {
                        p.push(format!(
                            "{at}: issuer id {i} is listed under region {other} too (each \
                             issuer's codes go to one region)"
                        ));
                    }
                }
            }
            if let Some(k) = key {
                let region = Region {
                    code: r.code.clone(),
                    name: r.name,
                    url: r.url.trim_end_matches('/').to_owned(),
                    issuer_ids: r.issuer_ids,
                    public_key: k,
                    dialect,
                    ca_file: r.ca_file.as_deref().map(resolve),
                    timeout: Duration::from_millis(r.timeout_ms),
                    connect_timeout: Duration::from_millis(r.connect_timeout_ms),
                    validity: Duration::from_secs(r.validity_secs),
                    gateway_mac_key: r.gateway_mac_key_hex.as_deref().and_then(|h| {
                        hex_bytes(h)
                            .and_then(|k| {
                                MacKey::from_bytes(&k).map(|_| k).map_err(|e| e.to_string())
                            })
                            .map_err(|e| p.push(format!("{at}: gateway_mac_key_hex: {e}")))
                            .ok()
                    }),
                    encryption_key: r.encryption_key.as_deref().and_then(
                        |k| match read_public_key(k, &resolve) {
                            Ok(v) => EncryptionKey::from_sec1_bytes(&v.to_sec1_bytes())
                                .map_err(|e| p.push(format!("{at}: encryption_key: {e}")))
                                .ok(),
                            Err(e) => {
                                p.push(format!("{at}: encryption_key: {e}"));
                                None
                            }
                        },
                    ),
                    gateway_sm4_key: r.gateway_sm4_key_hex.as_deref().and_then(|h| {
                        hex_bytes(h)
                            .and_then(|k| {
                                Sm4Key::from_bytes(&k).map(|_| k).map_err(|e| e.to_string())
                            })
                            .map_err(|e| p.push(format!("{at}: gateway_sm4_key_hex: {e}")))
                            .ok()
                    }),
                };
                if regions.insert(r.code.clone(), region).is_some() {
                    p.push(format!("{at}: duplicate region"));
                }
            }
        }
        if !p.is_empty() {
            return Err(ConfigError(p));
        }
        let (Some(listen), Some(admin_listen)) = (listen, admin) else {
            return Err(ConfigError(vec!["listen addresses".into()]));
        };
        let mut gateway = self.gateway;
        for f in [
            &mut gateway.data_dir,
            &mut gateway.signing_key_file,
            &mut gateway.encryption_key_file,
            &mut gateway.pseudonym_secret_file,
        ] {
            *f = resolve(f);
        }
        let trust = self.trust.map(|mut t| {
            t.list_file = resolve(&t.list_file);
            t.anchor_key_file = resolve(&t.anchor_key_file);
            t.dev_issuer_key_file = t.dev_issuer_key_file.as_deref().map(resolve);
            t
        });
        let mut auth = self.auth;
        auth.jwt_key_file = resolve(&auth.jwt_key_file);
        Ok(Validated {
            server: ServerSettings {
                listen,
                admin_listen,
                insecure_plain_http: s.insecure_plain_http,
                tls_cert_file: resolve(&s.tls_cert_file),
                tls_key_file: resolve(&s.tls_key_file),
                client_ca_file: s.client_ca_file.as_deref().map(resolve),
                generate_dev_certs: s.generate_dev_certs,
                max_body_bytes: s.max_body_bytes,
                max_header_bytes: s.max_header_bytes,
                header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
                body_read_timeout: Duration::from_millis(s.body_read_timeout_ms),
                request_timeout: Duration::from_millis(s.request_timeout_ms),
                max_concurrency: s.max_concurrency,
                max_connections: s.max_connections,
                max_connections_per_ip: s.max_connections_per_ip,
                max_requests_per_ip: s.max_requests_per_ip,
                idle_timeout: Duration::from_millis(s.idle_timeout_ms),
                shutdown_grace: Duration::from_millis(s.shutdown_grace_ms),
            },
            gateway,
            auth,
            clients,
            regions,
            trust,
            limits: self.limits,
            cache: self.cache,
            replay: self.replay,
            audit: self.audit,
            retention: self.retention,
            base_dir: base.to_path_buf(),
            dialects: Arc::new(dialects),
            dialects_dir,
        })
    }
}

fn parse_addr(s: &str, name: &str, p: &mut Vec<String>) -> Option<SocketAddr> {
    s.parse()
        .map_err(|_| p.push(format!("{name}: `{s}` is not host:port")))
        .ok()
}

/// A public key given inline as SEC1 hex, or as `@file` (PEM or hex).
fn read_public_key(v: &str, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<VerifyingKey, String> {
    let text = match v.strip_prefix('@') {
        Some(f) => {
            let path = resolve(Path::new(f));
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => v.to_owned(),
    };
    if text.contains("-----BEGIN") {
        VerifyingKey::from_pem(&text).map_err(|e| e.to_string())
    } else {
        VerifyingKey::from_hex(text.trim()).map_err(|e| e.to_string())
    }
}

/// A TOML file's parse error as an operator reads it: the file, the line, the message.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let at = e
        .span()
        .map(|s| {
            let start = s.start.min(text.len());
            // Lines before the error's start, plus its own (counting newlines, not lines:
            // an error at the start of a line is on that line).
            format!(
                " (line {})",
                text.as_bytes()[..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1
            )
        })
        .unwrap_or_default();
    format!("{}{at}: {}", path.display(), e.message())
}

/// A client's `appId`: 1 to 32 ASCII letters and digits (it names the client's
/// certificate and profile files too).
pub(crate) fn valid_client_app_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// "1st", "2nd", "3rd", "4th", …
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn hex_bytes(h: &str) -> Result<Vec<u8>, String> {
    crate::crypto::decode_hex(h, "key")
        .map(|k| k.to_vec())
        .map_err(|e| e.to_string())
}

/// Whether 6-digit division `division` lies within configured region `region`: a
/// province (`xx0000`) holds its prefectures and counties, a prefecture (`xxxx00`) its
/// counties, a county itself.
fn within_region(division: &str, region: &str) -> bool {
    if let Some(p) = region.strip_suffix("0000") {
        division.starts_with(p)
    } else if let Some(p) = region.strip_suffix("00") {
        division.starts_with(p)
    } else {
        division == region
    }
}

/// Whether `url` is `http://` to a loopback host (parsed, not prefix-matched:
/// `http://127.evil.example` is not loopback).
pub fn is_loopback_http(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
