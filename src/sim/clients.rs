//! The clients file: which `appId`s may call the simulator, with their keys.
//!
//! TOML, one `[[client]]` table per client, unknown keys refused; every problem in the file
//! is reported at once. `config/sim-national.example.toml` documents it. Besides its keys, a
//! client may have a rate limit (`rate_limit_per_second`, `rate_limit_burst`); without one it
//! is unlimited.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::crypto::{MacKey, Sm4Key, VerifyingKey};
use crate::envelope::{ClientCredentials, MAX_ID_LEN};
use crate::ratelimit::RateLimitConfig;

use super::SimError;

/// Largest clients file read, bytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    client: Vec<Entry>,
}

/// One client as written. No `Debug`: it holds key material.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The client's `appId`.
    app_id: String,
    /// SM2 public key for `signType` SM2: SEC1 hex (`04‖x‖y`) or PEM text.
    sm2_public_key: Option<String>,
    /// Or the path of a PEM public key, relative to the clients file.
    sm2_public_key_file: Option<PathBuf>,
    /// HMAC-SM3 key for `signType` HMAC-SM3, hex, at least 16 bytes.
    mac_key_hex: Option<String>,
    /// Pre-shared SM4 key for `bizContent` when the request has no `encKey`, 32 hex digits.
    sm4_key_hex: Option<String>,
    /// Accept `encType` NONE from this client (test clients only).
    #[serde(default)]
    insecure_allow_plaintext: bool,
    /// Requests a second this client may send; absent: unlimited. Over it: 1007, HTTP 429.
    rate_limit_per_second: Option<u32>,
    /// Requests this client may send at once after an idle period; needs
    /// `rate_limit_per_second`, and defaults to it.
    rate_limit_burst: Option<u32>,
}

/// What a clients file says: who may call, with which keys, and how often.
#[derive(Debug, Clone, Default)]
pub struct SimClients {
    /// Each client's keys, by `appId` (for [`super::SimConfig::new`]).
    pub credentials: HashMap<String, ClientCredentials>,
    /// The rate limits of the clients that have one, by `appId`
    /// (for [`super::SimConfig::rate_limits`]).
    pub rate_limits: HashMap<String, RateLimitConfig>,
}

/// Reads and checks a clients file. Relative key paths are resolved against its directory.
pub fn load_clients(path: &Path) -> Result<SimClients, SimError> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text))
        .map_err(|e| SimError::Config(vec![format!("cannot read {}: {e}", path.display())]))?;
    parse_clients(&text, path.parent()).map_err(|e| e.in_file(&path.display().to_string()))
}

/// Parses the text of a clients file. `base` resolves relative `sm2_public_key_file` paths.
pub fn parse_clients(text: &str, base: Option<&Path>) -> Result<SimClients, SimError> {
    let file: File =
        toml::from_str(text).map_err(|e| SimError::Config(vec![e.message().to_owned()]))?;
    let mut problems = Vec::new();
    let mut out = HashMap::new();
    let mut rate_limits = HashMap::new();
    for (i, e) in file.client.into_iter().enumerate() {
        let at = format!("client {} (`{}`)", i + 1, e.app_id);
        let mut problem = |m: String| problems.push(format!("{at}: {m}"));
        let id_ok = !e.app_id.is_empty()
            && e.app_id.len() <= MAX_ID_LEN
            && e.app_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !id_ok {
            problem(format!(
                "app_id must be 1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 . _ -"
            ));
        }
        let pem_from_file = match (&e.sm2_public_key, &e.sm2_public_key_file) {
            (Some(_), Some(_)) => {
                problem("give sm2_public_key or sm2_public_key_file, not both".to_owned());
                None
            }
            (None, Some(p)) => {
                let full = base.map_or_else(|| p.clone(), |b| b.join(p));
                match std::fs::read_to_string(&full) {
                    Ok(t) => Some(t),
                    Err(err) => {
                        problem(format!("cannot read {}: {err}", full.display()));
                        None
                    }
                }
            }
            _ => None,
        };
        let verifying_key = match e.sm2_public_key.as_deref().or(pem_from_file.as_deref()) {
            None => None,
            Some(k) => {
                let k = k.trim();
                let parsed = if k.starts_with("-----BEGIN") {
                    VerifyingKey::from_pem(k)
                } else {
                    VerifyingKey::from_hex(k)
                };
                match parsed {
                    // It verifies every request of the client, as the gateway's would.
                    Ok(key) => Some(key.precompute()),
                    Err(err) => {
                        problem(format!("SM2 public key: {err}"));
                        None
                    }
                }
            }
        };
        let mac_key = e.mac_key_hex.as_deref().and_then(|h| {
            let bytes = decode_hex(h);
            match bytes.as_deref().map(MacKey::from_bytes) {
                Some(Ok(k)) => Some(k),
                Some(Err(err)) => {
                    problem(format!("mac_key_hex: {err}"));
                    None
                }
                None => {
                    problem("mac_key_hex is not hex".to_owned());
                    None
                }
            }
        });
        let sm4_key = e
            .sm4_key_hex
            .as_deref()
            .and_then(|h| match Sm4Key::from_hex(h) {
                Ok(k) => Some(k),
                Err(err) => {
                    problem(format!("sm4_key_hex: {err}"));
                    None
                }
            });
        if e.sm2_public_key.is_none() && e.sm2_public_key_file.is_none() && e.mac_key_hex.is_none()
        {
            problem("needs an SM2 public key or a MAC key to sign with".to_owned());
        }
        let creds = ClientCredentials {
            verifying_key,
            mac_key,
            sm4_key,
            insecure_allow_plaintext: e.insecure_allow_plaintext,
        };
        let rate_limit = match (e.rate_limit_per_second, e.rate_limit_burst) {
            (None, None) => None,
            (None, Some(_)) => {
                problem("rate_limit_burst needs rate_limit_per_second".to_owned());
                None
            }
            (Some(rate), burst) => {
                let per_second = NonZeroU32::new(rate);
                if per_second.is_none() {
                    problem("rate_limit_per_second must be at least 1".to_owned());
                }
                // An absent burst is the rate: a zero there was reported just above.
                let burst = match burst {
                    None => per_second,
                    Some(b) => {
                        let b = NonZeroU32::new(b);
                        if b.is_none() {
                            problem("rate_limit_burst must be at least 1".to_owned());
                        }
                        b
                    }
                };
                per_second
                    .zip(burst)
                    .map(|(per_second, burst)| RateLimitConfig { per_second, burst })
            }
        };
        if let Some(limit) = rate_limit {
            rate_limits.insert(e.app_id.clone(), limit);
        }
        if out.insert(e.app_id.clone(), creds).is_some() {
            problems.push(format!("{at}: app_id appears twice"));
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push("no [[client]] is listed: nobody could call the simulator".to_owned());
    }
    if problems.is_empty() {
        Ok(SimClients {
            credentials: out,
            rate_limits,
        })
    } else {
        Err(SimError::Config(problems))
    }
}

/// Decodes hex of even length (either case).
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}
