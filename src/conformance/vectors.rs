//! Offline conformance of code verification (`hutong conformance vectors`): fixed PHIC1
//! tokens and regional code contents (`conformance/vectors/vectors.toml`), each with the
//! verdict a conforming verifier gives at the vector's validation clock, checked against
//! this build's verifier and dialect recognition. The same file serves anyone who writes a
//! verifier: the expectations are data.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::code::{CodeUrl, SystemClock, Verifier, VerifierConfig};
use crate::translate::Dialect;
use crate::trust::{TrustAnchors, TrustRegistry, verify_trust_list};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    trust_list: String,
    anchor_key: String,
    anchor_kid: String,
    #[serde(default)]
    vector: Vec<Vector>,
    #[serde(default)]
    regional: Vec<Regional>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: String,
    title: String,
    content: String,
    clock: i64,
    expect: VectorExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorExpect {
    code: String,
    #[serde(default)]
    colour: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Regional {
    id: String,
    content: String,
    expect: RegionalExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionalExpect {
    dialect: String,
    code_id: String,
}

/// One vector's verdict: `(id, Ok or what differs)`.
pub type Outcome = (String, Result<(), String>);

/// Checks every vector of `dir/vectors.toml` (trust list and anchor beside it) and every
/// regional content against `dialects`.
///
/// # Errors
/// A message when the file, trust list or anchor does not load.
pub fn check(dir: &Path, dialects: &[Dialect]) -> Result<Vec<Outcome>, String> {
    let p = dir.join("vectors.toml");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let f: File = toml::from_str(&text).map_err(|e| format!("{}: {}", p.display(), e.message()))?;
    let wire =
        std::fs::read(dir.join(&f.trust_list)).map_err(|e| format!("{}: {e}", f.trust_list))?;
    let pem = std::fs::read_to_string(dir.join(&f.anchor_key))
        .map_err(|e| format!("{}: {e}", f.anchor_key))?;
    let anchor = crate::crypto::VerifyingKey::from_pem(&pem).map_err(|e| e.to_string())?;
    let list = verify_trust_list(
        &wire,
        &TrustAnchors::new().with(f.anchor_kid.clone(), anchor),
    )
    .map_err(|e| format!("trust list: {e}"))?;
    let registry = TrustRegistry::new(list).map_err(|e| e.to_string())?;
    let verifier = Verifier::new(
        Arc::new(registry),
        Arc::new(SystemClock),
        VerifierConfig::default(),
    );
    let mut out = Vec::new();
    for v in &f.vector {
        // The URL form carries the token in `pc`.
        let token = CodeUrl::parse(&v.content)
            .ok()
            .and_then(|u| u.pc)
            .unwrap_or_else(|| v.content.clone());
        let r = match verifier.verify_at(&token, v.clock) {
            Ok(ok) => {
                let c = &ok.claims;
                if v.expect.code != "0" {
                    Err(format!("verified, want {} ({})", v.expect.code, v.title))
                } else if v
                    .expect
                    .colour
                    .as_deref()
                    .is_some_and(|x| x != c.col.as_str())
                {
                    Err(format!(
                        "colour {}, want {:?}",
                        c.col.as_str(),
                        v.expect.colour
                    ))
                } else if v
                    .expect
                    .issuer
                    .as_deref()
                    .is_some_and(|x| x != c.iss.as_str())
                {
                    Err(format!("issuer {}, want {:?}", c.iss, v.expect.issuer))
                } else {
                    Ok(())
                }
            }
            Err(e) => {
                let got = e.return_code().as_str().to_owned();
                if got == v.expect.code {
                    Ok(())
                } else {
                    Err(format!("{got} ({e}), want {} ({})", v.expect.code, v.title))
                }
            }
        };
        out.push((v.id.clone(), r));
    }
    for r in &f.regional {
        let got = crate::translate::recognise(dialects.iter(), &r.content);
        let (dialect, code_id) = got.map(|m| (m.dialect, m.code_id)).unwrap_or_default();
        let res = if dialect == r.expect.dialect && code_id == r.expect.code_id {
            Ok(())
        } else {
            Err(format!(
                "recognised as `{dialect}` code `{code_id}`, want `{}` code `{}`",
                r.expect.dialect, r.expect.code_id
            ))
        };
        out.push((r.id.clone(), res));
    }
    Ok(out)
}
