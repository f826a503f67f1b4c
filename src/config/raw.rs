//! The configuration file as written: serde structs that refuse unknown keys. Keys are
//! snake_case and carry their unit. See `config/hutong.toml` for a documented example.

use std::path::PathBuf;

use serde::Deserialize;

/// Default public listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default admin listener.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";
/// Default largest request body: an envelope with five Base64 evidence files fits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Default largest request head.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default time to send the request head.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 5_000;
/// Default time to send the request body once its head is read.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 5_000;
/// Default deadline of a request.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Default requests in flight before shedding.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4_096;

/// Default connections open at once; a connection over it is closed at accept.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// Default connections open at once from one source (IPv6 by /64), so that one peer that
/// keeps its connections alive cannot take all of `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1_024;
/// Default requests in flight at once from one source: a quarter of the default
/// `max_concurrency`, so that one source leaves the rest to others.
pub const DEFAULT_MAX_REQUESTS_PER_IP: usize = 1_024;
/// Default time a connection stays open with no request in flight.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default shutdown grace.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// Default region call deadline.
pub const DEFAULT_REGION_TIMEOUT_MS: u64 = 3_000;
/// Default region connect deadline.
pub const DEFAULT_REGION_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Default freshness of a region's status: a colour stays valid for a day after the
/// region set it, unless the region says otherwise (its status events purge earlier).
pub const DEFAULT_REGION_VALIDITY_SECS: u64 = 86_400;
/// Default access-token lifetime.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3_600;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners and their limits.
    pub server: ServerConfig,
    /// The gateway's own identity and state.
    pub gateway: GatewayConfig,
    /// Access tokens (JWT).
    pub auth: AuthConfig,
    /// Rate limits.
    #[serde(default)]
    pub limits: crate::ratelimit::LimitsConfig,
    /// Response cache.
    #[serde(default)]
    pub cache: crate::cache::CacheConfig,
    /// `[replay]`: the replay store's window and caps.
    #[serde(default)]
    pub replay: crate::envelope::NonceStoreConfig,
    /// When audit records reach the disk.
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// How long what is kept is kept (`[retention]`).
    #[serde(default)]
    pub retention: crate::retention::RetentionPolicy,
    /// Offline verification of national codes (PHIC1) against a signed trust list.
    #[serde(default)]
    pub trust: Option<TrustConfig>,
    /// Registered clients.
    #[serde(default)]
    pub client: Vec<ClientConfig>,
    /// Regions the gateway relays to.
    #[serde(default)]
    pub region: Vec<RegionConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Public listener, `host:port`.
    #[serde(default = "d_listen")]
    pub listen: String,
    /// Admin listener for `/metrics`, `/live`, `/ready`.
    #[serde(default = "d_admin")]
    pub admin_listen: String,
    /// Serve plain HTTP instead of TLS. Development only, loopback only.
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// Server certificate chain (PEM).
    pub tls_cert_file: PathBuf,
    /// Server private key (PEM).
    pub tls_key_file: PathBuf,
    /// CA of client certificates (mTLS). Absent: no client certificates are asked for.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Generate a development CA and certificates when the files are missing.
    #[serde(default)]
    pub generate_dev_certs: bool,
    /// Largest request body, bytes.
    #[serde(default = "d_body")]
    pub max_body_bytes: usize,
    /// Largest request head, bytes.
    #[serde(default = "d_header")]
    pub max_header_bytes: usize,
    /// Time a client has to send its request head, ms (slow clients are cut off).
    #[serde(default = "d_header_timeout")]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send its request body once the head is read, ms: a body that
    /// trickles in holds a place of `max_concurrency` and its buffer no longer than this.
    #[serde(default = "d_body_timeout")]
    pub body_read_timeout_ms: u64,
    /// Deadline of one request inside the gateway, ms.
    #[serde(default = "d_request_timeout")]
    pub request_timeout_ms: u64,
    /// Requests in flight before new ones are shed with 9999.
    #[serde(default = "d_concurrency")]
    pub max_concurrency: usize,
    /// Connections open at once; more are closed at accept.
    #[serde(default = "d_connections")]
    pub max_connections: usize,
    /// Connections open at once from one source address (IPv6 by /64).
    #[serde(default = "d_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Requests in flight at once from one source address (IPv6 by /64); more are refused
    /// with 1007, so that one source cannot hold every place of `max_concurrency`.
    #[serde(default = "d_requests_per_ip")]
    pub max_requests_per_ip: usize,
    /// How long a connection may stay open with no request in flight, ms (HTTP/2: then
    /// closed with GOAWAY). HTTP/1.1 waits between requests under `header_read_timeout_ms`;
    /// this closes one whose client sends requests and never reads the answers.
    #[serde(default = "d_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// How long shutdown waits for requests in flight, ms.
    #[serde(default = "d_grace")]
    pub shutdown_grace_ms: u64,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The gateway's appId towards regions.
    pub app_id: String,
    /// Directory of the embedded store and generated files.
    pub data_dir: PathBuf,
    /// SM2 key that signs the gateway's responses (PKCS#8 PEM).
    pub signing_key_file: PathBuf,
    /// SM2 key that `encKey`s are encrypted to (PKCS#8 PEM).
    pub encryption_key_file: PathBuf,
    /// Secret of person pseudonyms (hex, at least 16 bytes).
    pub pseudonym_secret_file: PathBuf,
    /// Generate the key files when missing (development).
    #[serde(default)]
    pub generate_keys: bool,
    /// Directory of the regional dialect files (default `regions` next to this file).
    #[serde(default)]
    pub dialects_dir: Option<PathBuf>,
    /// Memory the embedded store may use to cache its file's pages, MiB
    /// ([`crate::store::Store::DEFAULT_CACHE_BYTES`] by default).
    #[serde(default = "d_store_cache")]
    pub store_cache_mib: usize,
    /// The host (and port, if not 443) of the gateway's public address, as phones reach it:
    /// the host of the national codes' and venue codes' URLs (`https://HOST/phic/c?…`).
    /// Absent: `localhost` and the listener's port, for development only.
    #[serde(default)]
    pub code_host: Option<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether every call needs `Authorization: Bearer <JWT>`.
    #[serde(default = "d_true")]
    pub require_token: bool,
    /// ES256 key that signs and verifies access tokens (PKCS#8 PEM); generated when
    /// missing and `gateway.generate_keys` is set.
    pub jwt_key_file: PathBuf,
    /// The tokens' issuer.
    #[serde(default = "d_issuer")]
    pub issuer: String,
    /// The tokens' audience.
    #[serde(default = "d_issuer")]
    pub audience: String,
    /// Lifetime of tokens `hutong token issue` makes, seconds.
    #[serde(default = "d_token_ttl")]
    pub token_ttl_secs: u64,
}

/// `[trust]`: the signed trust list the gateway verifies PHIC1 codes against, for issuers
/// no configured region answers for (mechanism 3, the direct national code).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The signed trust list (from `hutong keys trust-list`).
    pub list_file: PathBuf,
    /// The trust anchor's public key (PEM).
    pub anchor_key_file: PathBuf,
    /// The anchor's key id.
    #[serde(default = "d_anchor_kid")]
    pub anchor_kid: String,
    /// Development: when the list is missing and `gateway.generate_keys` is set, generate an
    /// anchor, an issuer key (`dev_issuer_key_file`) with this issuer id, and the list.
    #[serde(default)]
    pub dev_issuer_id: Option<String>,
    /// Where the development issuer's private key goes.
    #[serde(default)]
    pub dev_issuer_key_file: Option<PathBuf>,
    /// Load a list older than one this gateway has loaded before. Off by default: an older
    /// list, validly signed, may trust again a key that a newer one revoked.
    #[serde(default)]
    pub allow_rollback: bool,
    /// Longest lifetime (`exp - iat`) of a code verified against the list, seconds (1 to
    /// 86400, the default). Longer codes are refused (3001): the bound is what an issuer's
    /// stolen key, before its revocation reaches the list, can mint. The profile's example
    /// token lives an hour, and it proposes at most 300 s: an operator whose issuers keep
    /// to that sets it so.
    #[serde(default = "d_max_code_lifetime")]
    pub max_code_lifetime_secs: u32,
    /// Clock difference tolerated between an issuer and the gateway, seconds (0 to 300).
    #[serde(default = "d_code_clock_skew")]
    pub clock_skew_secs: u32,
}

fn d_anchor_kid() -> String {
    "anchor-1".into()
}

fn d_max_code_lifetime() -> u32 {
    crate::code::DEFAULT_MAX_LIFETIME_SECS
}

fn d_code_clock_skew() -> u32 {
    crate::code::DEFAULT_SKEW_SECS
}

/// What a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A venue, transport or device verifier.
    Verifier,
    /// An app showing a holder's code.
    App,
    /// A region's code service.
    Region,
    /// The national platform.
    Platform,
}

/// A sign type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SignTypeName {
    /// SM3withSM2.
    #[serde(rename = "SM2")]
    Sm2,
    /// HMAC-SM3.
    #[serde(rename = "HMAC-SM3")]
    HmacSm3,
}

/// `[[client]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `appId`.
    pub app_id: String,
    /// GB/T 2260 region of the client.
    pub region: String,
    /// What it is.
    pub role: Role,
    /// Services it may call.
    pub services: Vec<String>,
    /// Regions whose data it may read (`*` for all).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Sign types it may use.
    pub sign_types: Vec<SignTypeName>,
    /// SM2 public key: SEC1 hex, or `@file` (PEM or hex).
    #[serde(default)]
    pub sm2_public_key: Option<String>,
    /// HMAC-SM3 key, hex.
    #[serde(default)]
    pub mac_key_hex: Option<String>,
    /// Registered SM4 key, hex; absent means the client sends `encKey`.
    #[serde(default)]
    pub sm4_key_hex: Option<String>,
    /// Allow `encType` NONE. For test clients only.
    #[serde(default)]
    pub insecure_test_client: bool,
    /// Require a client certificate naming this appId.
    #[serde(default)]
    pub require_mtls: bool,
    /// Its own rate limits (per client, and per client and service).
    #[serde(default)]
    pub rate_limit: crate::ratelimit::ClientLimitsConfig,
    /// The dialect its systems speak at the gateway's ingress (`/dialect/<id>/…`).
    #[serde(default)]
    pub dialect: Option<String>,
    /// Its credentials in that dialect, which its signatures are checked with.
    #[serde(default)]
    pub dialect_credentials: Option<super::dialects::DialectCredentialsConfig>,
}

/// `[[region]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// GB/T 2260 code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Base URL of its national-envelope endpoint.
    pub url: String,
    /// Issuer ids of its codes.
    #[serde(default)]
    pub issuer_ids: Vec<String>,
    /// Its response-signing SM2 key: SEC1 hex or `@file` (a national-envelope region).
    #[serde(default)]
    pub public_key: Option<String>,
    /// The dialect its back-end speaks (a file of `gateway.dialects_dir`); absent: the
    /// national envelope.
    #[serde(default)]
    pub dialect: Option<String>,
    /// The gateway's credentials at its back-end, in that dialect.
    #[serde(default)]
    pub dialect_credentials: Option<super::dialects::DialectCredentialsConfig>,
    /// CA of its TLS certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whole-call deadline, ms.
    #[serde(default = "d_region_timeout")]
    pub timeout_ms: u64,
    /// Connect deadline, ms.
    #[serde(default = "d_region_connect")]
    pub connect_timeout_ms: u64,
    /// How long a status it reports stays fresh, seconds.
    #[serde(default = "d_validity")]
    pub validity_secs: u64,
    /// The gateway's HMAC-SM3 key as registered at the region (hex); absent: SM2 only.
    #[serde(default)]
    pub gateway_mac_key_hex: Option<String>,
    /// The region's SM2 encryption key for `encKey` (SEC1 hex or `@file`), used when no
    /// SM4 key is registered.
    #[serde(default)]
    pub encryption_key: Option<String>,
    /// The gateway's SM4 key as registered at the region (hex); absent: `encKey`.
    #[serde(default)]
    pub gateway_sm4_key_hex: Option<String>,
}

fn d_listen() -> String {
    DEFAULT_LISTEN.into()
}
fn d_admin() -> String {
    DEFAULT_ADMIN_LISTEN.into()
}
fn d_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn d_header() -> usize {
    DEFAULT_MAX_HEADER_BYTES
}
fn d_header_timeout() -> u64 {
    DEFAULT_HEADER_READ_TIMEOUT_MS
}
fn d_body_timeout() -> u64 {
    DEFAULT_BODY_READ_TIMEOUT_MS
}
fn d_request_timeout() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}
fn d_concurrency() -> usize {
    DEFAULT_MAX_CONCURRENCY
}
fn d_store_cache() -> usize {
    crate::store::Store::DEFAULT_CACHE_BYTES >> 20
}
fn d_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
fn d_connections_per_ip() -> usize {
    DEFAULT_MAX_CONNECTIONS_PER_IP
}
fn d_requests_per_ip() -> usize {
    DEFAULT_MAX_REQUESTS_PER_IP
}
fn d_idle_timeout() -> u64 {
    DEFAULT_IDLE_TIMEOUT_MS
}
fn d_grace() -> u64 {
    DEFAULT_SHUTDOWN_GRACE_MS
}
fn d_true() -> bool {
    true
}
fn d_issuer() -> String {
    "hutong".into()
}
fn d_token_ttl() -> u64 {
    DEFAULT_TOKEN_TTL_SECS
}
fn d_region_timeout() -> u64 {
    DEFAULT_REGION_TIMEOUT_MS
}
fn d_region_connect() -> u64 {
    DEFAULT_REGION_CONNECT_TIMEOUT_MS
}
fn d_validity() -> u64 {
    DEFAULT_REGION_VALIDITY_SECS
}
