//! What the region simulator is told: the dialect it plays (loaded from
//! `config/regions/<id>.toml`), its callers and their credentials (flags or a callers file),
//! the population and the faults. Every problem is reported at once.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

use crate::standard::{ServiceName, Standard};
use crate::translate::Dialect;

use super::super::faults::Faults;
use super::super::population::{ColourMix, MAX_POPULATION};
use super::super::server::ServerConfig;
use super::{RegionSimError, answer, wire};

/// Where the shipped dialects live, relative to the working directory.
pub const DEFAULT_REGIONS_DIR: &str = "config/regions";

/// Default size of the population.
pub const DEFAULT_POPULATION: usize = 1000;

/// One caller of the simulated back-end: the gateway, as the region registered it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// The caller's key as the dialect's envelope names it (Zhejiang style: `appKey`, which
    /// is also the HMAC key). Tickets and authCodes are bound to it.
    pub app_key: String,
    /// The shared secret of the signing scheme (appended to the signed text in
    /// `hmac-sha256-concat`).
    pub secret: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

/// The callers file (`--config FILE`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallersFile {
    /// One table per caller.
    #[serde(default)]
    caller: Vec<Caller>,
}

/// Everything the region simulator is told, besides its dialect.
#[derive(Debug, Clone)]
pub struct RegionSimConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Seed of the population and of the fault rolls.
    pub seed: u64,
    /// Number of people (all of the dialect's region).
    pub population: usize,
    /// Colour mix of the population.
    pub colour_mix: ColourMix,
    /// Divisions whose visit turns a declared trip yellow.
    pub high_risk_regions: Vec<String>,
    /// Faults to inject.
    pub faults: Faults,
    /// Who may call, with which credentials; unused when the dialect signs nothing.
    pub callers: Vec<Caller>,
    /// The HTTP server's limits and TLS.
    pub server: ServerConfig,
}

impl Default for RegionSimConfig {
    /// Loopback on a free port, seed 1, [`DEFAULT_POPULATION`] people, no faults, no
    /// callers.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: 1,
            population: DEFAULT_POPULATION,
            colour_mix: ColourMix::default(),
            high_risk_regions: Vec::new(),
            faults: Faults::default(),
            callers: Vec::new(),
            server: ServerConfig::default(),
        }
    }
}

impl RegionSimConfig {
    /// Every problem with the configuration for `dialect`.
    pub fn problems(&self, dialect: &Dialect, std: &Standard) -> Vec<String> {
        let mut out = self.faults.problems();
        if self.population > MAX_POPULATION {
            out.push(format!(
                "population {} is over the limit of {MAX_POPULATION}",
                self.population
            ));
        }
        for r in &self.high_risk_regions {
            if !std.divisions.is_current(r) {
                out.push(format!(
                    "high-risk region `{r}` is not a current GB/T 2260 division"
                ));
            }
        }
        match wire::needs_credentials(&dialect.signing) {
            Err(p) => out.push(format!("dialect `{}`: {p}", dialect.id)),
            Ok(true) if self.callers.is_empty() => out.push(format!(
                "dialect `{}` signs its requests: give --secret (and --app-key) or --config FILE",
                dialect.id
            )),
            Ok(_) => {}
        }
        out.extend(caller_problems(&self.callers));
        out.extend(dialect_problems(dialect, std));
        out
    }
}

fn caller_problems(callers: &[Caller]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in callers.iter().enumerate() {
        if c.app_key.trim().is_empty() || c.app_key.chars().any(char::is_control) {
            out.push(format!(
                "caller {}: app_key must be non-empty printable text",
                i + 1
            ));
        }
        if c.secret.is_empty() {
            out.push(format!("caller {}: secret is empty", i + 1));
        }
        if !seen.insert(c.app_key.as_str()) {
            out.push(format!(
                "caller {}: app_key `{}` is listed twice",
                i + 1,
                c.app_key
            ));
        }
    }
    out
}

/// What makes a dialect impossible to simulate, whatever the flags.
fn dialect_problems(d: &Dialect, std: &Standard) -> Vec<String> {
    let mut out = Vec::new();
    if !std.divisions.is_current(&d.region) {
        out.push(format!(
            "dialect `{}`: region `{}` is not a current GB/T 2260 division",
            d.id, d.region
        ));
    }
    let mut routes = std::collections::HashMap::new();
    for (name, s) in &d.services {
        let key = (s.method.to_ascii_uppercase(), s.path.clone());
        if let Some(other) = routes.insert(key, *name) {
            out.push(format!(
                "dialect `{}`: {other} and {name} share {} {}; the simulator cannot tell them apart",
                d.id, s.method, s.path
            ));
        }
        if http::Method::from_bytes(s.method.to_ascii_uppercase().as_bytes()).is_err() {
            out.push(format!(
                "dialect `{}`: {name} method `{}` is not an HTTP method",
                d.id, s.method
            ));
        }
        if !s.path.starts_with('/') {
            out.push(format!(
                "dialect `{}`: {name} path `{}` does not start with /",
                d.id, s.path
            ));
        }
    }
    let issues_codes = [ServiceName::VerifyCode, ServiceName::GenerateCode]
        .iter()
        .any(|s| d.service(*s).is_some());
    if issues_codes {
        if let Err(p) = answer::check_code_patterns(d) {
            out.push(format!("dialect `{}`: {p}", d.id));
        }
    }
    out
}

/// Loads dialect `id` from `dir/<id>.toml`, checked against `std`.
///
/// # Errors
/// [`RegionSimError::Config`] for an id that is not a plain file stem or a file that cannot
/// be read; [`RegionSimError::Dialect`] with every problem of the file.
pub fn load_dialect(dir: &Path, id: &str, std: &Standard) -> Result<Dialect, RegionSimError> {
    let plain = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        return Err(RegionSimError::Config(vec![format!(
            "dialect `{id}` is not a file stem (letters, digits, - and _)"
        )]));
    }
    let path = dir.join(format!("{id}.toml"));
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        RegionSimError::Config(vec![format!("no dialect `{id}`: cannot read {shown}: {e}")])
    })?;
    Dialect::from_toml(id, &shown, &text, std).map_err(RegionSimError::Dialect)
}

/// Reads a callers file (`[[caller]]` tables with `app_key` and `secret`).
///
/// # Errors
/// [`RegionSimError::Config`] naming the file: unreadable, not TOML, unknown keys, or
/// every problem of its callers.
pub fn load_callers(path: &Path) -> Result<Vec<Caller>, RegionSimError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| RegionSimError::Config(vec![format!("cannot read {shown}: {e}")]))?;
    parse_callers(&text).map_err(|p| {
        RegionSimError::Config(p.into_iter().map(|m| format!("{shown}: {m}")).collect())
    })
}

/// [`load_callers`] from text; the problems do not name the file.
///
/// # Errors
/// Every problem found.
pub fn parse_callers(text: &str) -> Result<Vec<Caller>, Vec<String>> {
    let file: CallersFile = toml::from_str(text).map_err(|e| vec![e.message().to_owned()])?;
    if file.caller.is_empty() {
        return Err(vec!["no [[caller]] table".to_owned()]);
    }
    let problems = caller_problems(&file.caller);
    if problems.is_empty() {
        Ok(file.caller)
    } else {
        Err(problems)
    }
}
