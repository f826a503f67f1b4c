//! What a simulator publishes for its callers: its public keys and an unsigned trust list
//! naming its issuer, and the fixtures a conformance run against it needs.

use std::path::Path;

use super::{RunningSim, SimError, SimPublicKeys, issuer_kid};
use crate::code::{Claims, CodeId, Colour, IssuerKey};
use crate::conformance::{Fixtures, run::Person};
use crate::crypto::{SigningKey, Sm4Key};
use crate::trust::{Issuer, IssuerId, KeyStatus, TrustList, TrustedKey};

/// Writes the public keys a caller needs into `dir` (created if missing):
/// `sim-response.pub.pem` (answers), `sim-issuer.pub.pem` (codes), `sim-encryption.pub.pem`
/// (`encKey`), and `sim-trust-list.json`, an unsigned trust list naming the issuer, ready
/// for `hutong keys trust-list`.
pub fn write_public_keys(
    dir: &Path,
    keys: &SimPublicKeys,
    issuer: &IssuerId,
    now: i64,
) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let list = TrustList {
        version: 1,
        issued_at: now,
        issuers: vec![Issuer {
            id: issuer.clone(),
            region: issuer.region(),
            name: format!("{issuer} 模拟发码机构"),
            keys: vec![TrustedKey {
                kid: issuer_kid(),
                public_key: keys.issuer.clone(),
                not_before: now - 86_400,
                not_after: now + 365 * 86_400,
                status: KeyStatus::Active,
            }],
        }],
    };
    let files = [
        (
            "sim-response.pub.pem",
            keys.response.to_pem().map_err(SimError::Crypto)?,
        ),
        (
            "sim-issuer.pub.pem",
            keys.issuer.to_pem().map_err(SimError::Crypto)?,
        ),
        (
            "sim-encryption.pub.pem",
            keys.encryption.to_pem().map_err(SimError::Crypto)?,
        ),
        (
            "sim-trust-list.json",
            crate::trust::unsigned_list_json(&list),
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| SimError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The conformance fixtures of a running national simulator (`--fixtures`,
/// `conformance/fixtures.example.toml`): its first green and first yellow person, a code of
/// its issuer that expired an hour before `now`, and a ticket it sealed for the suite's
/// client `app` that expired ten minutes before. `issuer_key` and `ticket_key` are the
/// simulator's own ([`super::SimKeys`]).
///
/// # Errors
/// [`SimError::Config`] when the population has no green or no yellow person;
/// [`SimError::Internal`] when the code or the ticket cannot be sealed.
pub fn conformance_fixtures(
    running: &RunningSim,
    issuer_key: &SigningKey,
    ticket_key: Sm4Key,
    app: &str,
    now: i64,
) -> Result<Fixtures, SimError> {
    let mut fixtures = Fixtures::default();
    let mut ticket_code = None;
    for (label, colour) in [("green", Colour::Green), ("yellow", Colour::Yellow)] {
        let (person, cid) = running
            .with_population(|p| {
                p.iter().find(|x| x.colour == colour).map(|x| {
                    let person = Person {
                        id_type: "10".into(),
                        id_no: x.id_no.clone(),
                        name: x.name.clone(),
                    };
                    (person, x.code_id.as_str().to_owned())
                })
            })
            .ok_or_else(|| {
                SimError::Config(vec![format!(
                    "the population has no {label} person: raise --population"
                )])
            })?;
        fixtures.person.insert(label.into(), person);
        ticket_code.get_or_insert(cid);
    }
    let issuer = IssuerKey::new(running.issuer().clone(), issuer_kid(), issuer_key.clone());
    let code = crate::code::issue(
        &issuer,
        &Claims {
            cid: CodeId::random().map_err(|_| SimError::Internal("the OS random source failed"))?,
            col: Colour::Green,
            iat: now - 7200,
            exp: now - 3600,
            nc: None,
        },
    )
    .map_err(|_| SimError::Internal("an expired code could not be signed"))?;
    fixtures.code.insert("expired".into(), code);
    let ticket = crate::ticket::TicketKey::new(running.issuer().clone(), ticket_key)
        .and_then(|k| k.seal(&ticket_code.unwrap_or_default(), app, now - 1200, 600))
        .map_err(|_| SimError::Internal("an expired ticket could not be sealed"))?;
    fixtures.ticket.insert("expired".into(), ticket);
    Ok(fixtures)
}
