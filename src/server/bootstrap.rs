//! First start on a development machine: the files the default configuration names are
//! generated when missing, so `hutong serve` runs on a fresh machine with no set-up.
//! Only when the configuration asks for it (`generate_dev_certs`, `generate_keys`); a
//! production configuration sets neither and names files that exist.

use std::path::{Path, PathBuf};

use crate::auth::TokenKeys;
use crate::cli::{write_public, write_secret};
use crate::config::Config;
use crate::crypto::{DecryptionKey, SigningKey, to_hex};
use crate::tlsdev::DevCerts;

use super::ServerError;

/// Generates what is missing; returns what it wrote, for the log.
///
/// # Errors
/// [`ServerError::Bootstrap`] naming the file that could not be written.
pub fn bootstrap(raw: &Config, base: &Path) -> Result<Vec<String>, ServerError> {
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mut wrote = Vec::new();
    let fail = |what: &Path, e: &dyn std::fmt::Display| {
        ServerError::Bootstrap(format!("{}: {e}", what.display()))
    };
    // Development files only for a gateway on loopback: a production configuration copied
    // from the shipped one, whose volume with its real files did not mount, must not come
    // up with new certificates and keys that no client or region knows.
    let on_loopback = [&raw.server.listen, &raw.server.admin_listen]
        .iter()
        .all(|a| on_loopback(a));
    let may_generate = |what: &Path| {
        if on_loopback {
            Ok(())
        } else {
            Err(ServerError::Bootstrap(format!(
                "{}: missing; development files are generated only for a gateway whose \
                 listeners are on loopback (server.listen {}, server.admin_listen {}): put \
                 the file in place (a production configuration also sets \
                 server.generate_dev_certs and gateway.generate_keys to false)",
                what.display(),
                raw.server.listen,
                raw.server.admin_listen
            )))
        }
    };
    // Never over a file that is there: one missing file is no leave to replace the others.
    let refuse_over = |missing: &Path, present: &Path| {
        if present.exists() {
            Err(ServerError::Bootstrap(format!(
                "{}: missing while {} is there; development files are not generated over \
                 existing ones: put the missing file back, or move the other away",
                missing.display(),
                present.display()
            )))
        } else {
            Ok(())
        }
    };
    // App ids name files here (certificates, profiles) before validation has seen them.
    if let Some(c) = raw
        .client
        .iter()
        .find(|c| !crate::config::valid_client_app_id(&c.app_id))
    {
        return Err(ServerError::Bootstrap(format!(
            "client {:?}: app_id must be 1-32 ASCII letters and digits; nothing generated",
            c.app_id
        )));
    }
    // The data directory first, its owner's alone (0700): what follows creates files in it.
    let data = resolve(&raw.gateway.data_dir);
    crate::store::create_private_dir(&data).map_err(|e| fail(&data, &e))?;
    if raw.server.generate_dev_certs {
        let cert = resolve(&raw.server.tls_cert_file);
        if !cert.exists() {
            may_generate(&cert)?;
            refuse_over(&cert, &resolve(&raw.server.tls_key_file))?;
            if let Some(ca) = &raw.server.client_ca_file {
                refuse_over(&cert, &resolve(ca))?;
            }
            let dir = cert.parent().map(Path::to_path_buf).unwrap_or_default();
            let apps: Vec<String> = raw.client.iter().map(|c| c.app_id.clone()).collect();
            let set = DevCerts::generate(&["localhost".into(), "127.0.0.1".into()], &apps)
                .map_err(|e| fail(&cert, &e))?;
            // The set's own files beside the certificate: the CA's key above all.
            for name in set.file_names() {
                refuse_over(&cert, &dir.join(name))?;
            }
            std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, &e))?;
            set.write_to(&dir).map_err(|e| fail(&dir, &e))?;
            write_public(&cert, set.server.cert_pem.as_bytes()).map_err(|e| fail(&cert, &e))?;
            let key = resolve(&raw.server.tls_key_file);
            write_secret(&key, set.server.key_pem.as_bytes()).map_err(|e| fail(&key, &e))?;
            if let Some(ca) = &raw.server.client_ca_file {
                let ca = resolve(ca);
                write_public(&ca, set.ca.cert_pem.as_bytes()).map_err(|e| fail(&ca, &e))?;
            }
            wrote.push(format!("development certificates in {}", dir.display()));
        }
    }
    if raw.gateway.generate_keys {
        let g = &raw.gateway;
        let sign = resolve(&g.signing_key_file);
        if !sign.exists() {
            may_generate(&sign)?;
            let k = SigningKey::generate().map_err(|e| fail(&sign, &e))?;
            write_key_pair(
                &sign,
                &k.to_pem().map_err(|e| fail(&sign, &e))?,
                &k.verifying_key().to_pem().map_err(|e| fail(&sign, &e))?,
            )?;
            wrote.push(sign.display().to_string());
        }
        let enc = resolve(&g.encryption_key_file);
        if !enc.exists() {
            may_generate(&enc)?;
            let k = DecryptionKey::generate().map_err(|e| fail(&enc, &e))?;
            write_key_pair(
                &enc,
                &k.to_pem().map_err(|e| fail(&enc, &e))?,
                &k.encryption_key().to_pem().map_err(|e| fail(&enc, &e))?,
            )?;
            wrote.push(enc.display().to_string());
        }
        let secret = resolve(&g.pseudonym_secret_file);
        if !secret.exists() {
            may_generate(&secret)?;
            // The store's data is sealed under keys derived from the secret: a new one
            // would leave every link, record and saved nonce in it unreadable.
            refuse_over(&secret, &data.join(crate::store::Store::FILE_NAME))?;
            let mut b = [0u8; 32];
            crate::crypto::fill_key(&mut b).map_err(|e| fail(&secret, &e))?;
            ensure_parent(&secret)?;
            write_secret(&secret, to_hex(&b).as_bytes()).map_err(|e| fail(&secret, &e))?;
            wrote.push(secret.display().to_string());
        }
        let jwt = resolve(&raw.auth.jwt_key_file);
        if !jwt.exists() {
            may_generate(&jwt)?;
            let pem = TokenKeys::generate_pem().map_err(|e| fail(&jwt, &e))?;
            ensure_parent(&jwt)?;
            write_secret(&jwt, pem.as_bytes()).map_err(|e| fail(&jwt, &e))?;
            wrote.push(jwt.display().to_string());
        }
        // Development clients whose public key file is missing get a key pair.
        for c in &raw.client {
            let Some(file) = c
                .sm2_public_key
                .as_deref()
                .and_then(|k| k.strip_prefix('@'))
            else {
                continue;
            };
            let public = resolve(Path::new(file));
            if public.exists() {
                continue;
            }
            may_generate(&public)?;
            let k = SigningKey::generate().map_err(|e| fail(&public, &e))?;
            let private = private_for(&public);
            ensure_parent(&public)?;
            write_secret(
                &private,
                k.to_pem().map_err(|e| fail(&private, &e))?.as_bytes(),
            )
            .map_err(|e| fail(&private, &e))?;
            write_public(
                &public,
                k.verifying_key()
                    .to_pem()
                    .map_err(|e| fail(&public, &e))?
                    .as_bytes(),
            )
            .map_err(|e| fail(&public, &e))?;
            wrote.push(format!("client key pair {}", private.display()));
        }
        // A development trust list: an anchor, one issuer key, the signed list.
        if let Some(t) = &raw.trust {
            let list = resolve(&t.list_file);
            if let (false, Some(iss), Some(key_file)) =
                (list.exists(), &t.dev_issuer_id, &t.dev_issuer_key_file)
            {
                may_generate(&list)?;
                let anchor = resolve(&t.anchor_key_file);
                let issuer = resolve(key_file);
                for present in [
                    anchor.clone(),
                    private_for(&anchor),
                    issuer.clone(),
                    public_for(&issuer),
                ] {
                    refuse_over(&list, &present)?;
                }
                dev_trust_list(
                    &list,
                    &resolve(&t.anchor_key_file),
                    &t.anchor_kid,
                    iss,
                    &resolve(key_file),
                )?;
                wrote.push(format!(
                    "development trust list {} (issuer {iss}, key id {DEV_ISSUER_KID})",
                    list.display()
                ));
            }
        }
        // A profile per development client, for `hutong client --as`: its keys and a
        // bearer token, so only for a gateway on loopback.
        for c in raw.client.iter().filter(|_| on_loopback) {
            let profile = resolve(&g.data_dir)
                .join("clients")
                .join(format!("{}.toml", c.app_id));
            if profile.exists() {
                continue;
            }
            ensure_parent(&profile)?;
            let text = dev_profile(raw, base, c).map_err(|e| fail(&profile, &e))?;
            write_secret(&profile, text.as_bytes()).map_err(|e| fail(&profile, &e))?;
            wrote.push(format!("client profile {}", profile.display()));
        }
    }
    Ok(wrote)
}

/// Whether listener address `a` (`host:port`) is on loopback: an IP address that is, or
/// `localhost`. Anything else, unparsable included, is not (validation says why later).
fn on_loopback(a: &str) -> bool {
    if let Ok(addr) = a.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    a.rsplit_once(':').is_some_and(|(host, port)| {
        host.eq_ignore_ascii_case("localhost") && port.parse::<u16>().is_ok()
    })
}

/// Key id of the development issuer key.
pub const DEV_ISSUER_KID: &str = "dev-1";

fn dev_trust_list(
    list: &Path,
    anchor_pub: &Path,
    anchor_kid: &str,
    iss: &str,
    issuer_key: &Path,
) -> Result<(), ServerError> {
    use crate::trust::{Issuer, IssuerId, KeyStatus, Kid, TrustList, TrustedKey, sign_trust_list};
    let err =
        |e: &dyn std::fmt::Display| ServerError::Bootstrap(format!("{}: {e}", list.display()));
    let anchor = SigningKey::generate().map_err(|e| err(&e))?;
    write_key_pair(
        &private_for(anchor_pub),
        &anchor.to_pem().map_err(|e| err(&e))?,
        &anchor.verifying_key().to_pem().map_err(|e| err(&e))?,
    )?;
    let issuer = SigningKey::generate().map_err(|e| err(&e))?;
    write_key_pair(
        issuer_key,
        &issuer.to_pem().map_err(|e| err(&e))?,
        &issuer.verifying_key().to_pem().map_err(|e| err(&e))?,
    )?;
    let id = IssuerId::parse(iss).map_err(|e| err(&e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let trust = TrustList {
        version: 1,
        issued_at: now,
        issuers: vec![Issuer {
            region: id.region(),
            name: "hutong development issuer".into(),
            id,
            keys: vec![TrustedKey {
                kid: Kid::parse(DEV_ISSUER_KID).map_err(|e| err(&e))?,
                public_key: issuer.verifying_key(),
                not_before: now - 60,
                not_after: now + 365 * 86_400,
                status: KeyStatus::Active,
            }],
        }],
    };
    let signed = sign_trust_list(&trust, anchor_kid, &anchor).map_err(|e| err(&e))?;
    ensure_parent(list)?;
    write_public(list, signed.to_json().as_bytes()).map_err(|e| err(&e))
}

/// Lifetime of the access tokens written into development profiles: 30 days.
const DEV_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;

/// A development client's profile: absolute paths to the files bootstrap wrote.
fn dev_profile(
    raw: &Config,
    base: &Path,
    c: &crate::config::ClientConfig,
) -> Result<String, String> {
    // Absolute paths: the profile is read from its own directory, not from here.
    // A config file named without a directory has an empty base: that is the current one.
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let base = &std::path::absolute(base).map_err(|e| e.to_string())?;
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let q = |p: &Path| toml_string(&p.display().to_string());
    let cert_dir = resolve(&raw.server.tls_cert_file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let port = raw.server.listen.rsplit(':').next().unwrap_or("8443");
    let scheme = if raw.server.insecure_plain_http {
        "http"
    } else {
        "https"
    };
    let mut out = format!(
        "# Development profile of client {app}, written by `hutong serve` on first start.\n\
         gateway = \"{scheme}://localhost:{port}\"\napp_id = \"{app}\"\n",
        app = c.app_id
    );
    let sm2 = c
        .sm2_public_key
        .as_deref()
        .and_then(|k| k.strip_prefix('@'))
        .map(|f| private_for(&resolve(Path::new(f))));
    let sign = if c.sign_types.contains(&crate::config::SignTypeName::HmacSm3)
        && c.mac_key_hex.is_some()
    {
        "HMAC-SM3"
    } else {
        "SM2"
    };
    out.push_str(&format!("sign_type = \"{sign}\"\n"));
    if let Some(k) = &sm2 {
        out.push_str(&format!("sm2_key_file = {}\n", q(k)));
    }
    if let Some(m) = &c.mac_key_hex {
        out.push_str(&format!("mac_key_hex = \"{m}\"\n"));
    }
    if let Some(k) = &c.sm4_key_hex {
        out.push_str(&format!("sm4_key_hex = \"{k}\"\n"));
    }
    out.push_str(&format!(
        "gateway_sign_key_file = {}\n",
        q(&public_for(&resolve(&raw.gateway.signing_key_file)))
    ));
    out.push_str(&format!(
        "gateway_encryption_key_file = {}\n",
        q(&public_for(&resolve(&raw.gateway.encryption_key_file)))
    ));
    let ca = raw
        .server
        .client_ca_file
        .as_deref()
        .map_or_else(|| cert_dir.join("ca.crt.pem"), &resolve);
    out.push_str(&format!("ca_file = {}\n", q(&ca)));
    out.push_str(&format!(
        "client_cert_file = {}\n",
        q(&cert_dir.join(format!("client-{}.crt.pem", c.app_id)))
    ));
    out.push_str(&format!(
        "client_key_file = {}\n",
        q(&cert_dir.join(format!("client-{}.key.pem", c.app_id)))
    ));
    let services: Vec<crate::standard::ServiceName> =
        c.services.iter().filter_map(|s| s.parse().ok()).collect();
    let keys = TokenKeys::load(
        &resolve(&raw.auth.jwt_key_file),
        &raw.auth.issuer,
        &raw.auth.audience,
    )
    .map_err(|e| e.to_string())?;
    let token = keys.issue(&c.app_id, &services, DEV_TOKEN_TTL_SECS)?;
    let token_file = resolve(&raw.gateway.data_dir)
        .join("clients")
        .join(format!("{}.token", c.app_id));
    write_secret(&token_file, token.as_bytes()).map_err(|e| e.to_string())?;
    out.push_str(&format!("token_file = {}\n", q(&token_file)));
    Ok(out)
}

fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `x.pub.pem` → `x.key.pem`.
pub fn private_for(public: &Path) -> PathBuf {
    let s = public.display().to_string();
    PathBuf::from(
        s.strip_suffix(".pub.pem")
            .map_or_else(|| format!("{s}.key.pem"), |p| format!("{p}.key.pem")),
    )
}

/// `x.key.pem` → `x.pub.pem`.
pub fn public_for(private: &Path) -> PathBuf {
    let s = private.display().to_string();
    PathBuf::from(
        s.strip_suffix(".key.pem")
            .map_or_else(|| format!("{s}.pub.pem"), |p| format!("{p}.pub.pem")),
    )
}

fn ensure_parent(p: &Path) -> Result<(), ServerError> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| ServerError::Bootstrap(format!("{}: {e}", d.display())))?;
    }
    Ok(())
}

fn write_key_pair(private: &Path, private_pem: &str, public_pem: &str) -> Result<(), ServerError> {
    ensure_parent(private)?;
    write_secret(private, private_pem.as_bytes())
        .map_err(|e| ServerError::Bootstrap(format!("{}: {e}", private.display())))?;
    let public = public_for(private);
    write_public(&public, public_pem.as_bytes())
        .map_err(|e| ServerError::Bootstrap(format!("{}: {e}", public.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped configuration, with `listen` as given, in a fresh directory (`config/`
    /// beside the `data/` its paths name).
    fn shipped(tag: &str, listen: &str) -> (Config, PathBuf) {
        let root = crate::testutil::fresh_dir(tag);
        let base = root.join("config");
        std::fs::create_dir_all(&base).unwrap();
        let text = include_str!("../../config/hutong.toml").replace(
            "listen = \"127.0.0.1:8443\"",
            &format!("listen = \"{listen}\""),
        );
        (toml::from_str(&text).unwrap(), base)
    }

    #[test]
    fn a_first_start_on_loopback_generates_what_is_missing() {
        let (raw, base) = shipped("boot-first", "127.0.0.1:8443");
        let wrote = bootstrap(&raw, &base).unwrap();
        assert!(wrote.len() >= 6, "{wrote:?}");
        assert!(base.join("../data/certs/server.crt.pem").exists());
        // A second start has nothing to do.
        assert!(bootstrap(&raw, &base).unwrap().is_empty());
    }

    #[test]
    fn nothing_is_generated_for_a_gateway_off_loopback() {
        let (raw, base) = shipped("boot-public", "0.0.0.0:8443");
        let e = bootstrap(&raw, &base).unwrap_err().to_string();
        assert!(e.contains("loopback"), "{e}");
        assert!(!base.join("../data/certs/server.crt.pem").exists());
        assert!(!base.join("../data/keys/gateway-sign.key.pem").exists());
        // Every file in place (made on loopback): a public gateway starts, and writes no
        // client profile with its keys and a bearer token.
        let (dev, _) = shipped("boot-public-dev", "127.0.0.1:8443");
        bootstrap(&dev, &base).unwrap();
        let profiles = base.join("../data/clients");
        std::fs::remove_dir_all(&profiles).unwrap();
        assert!(bootstrap(&raw, &base).unwrap().is_empty());
        assert!(!profiles.exists());
        // `localhost` is loopback.
        assert!(on_loopback("localhost:8443") && on_loopback("[::1]:1"));
        assert!(!on_loopback("0.0.0.0:8443") && !on_loopback("localhost.example:1"));
    }

    #[test]
    fn an_app_id_that_would_name_a_file_badly_stops_it_before_any_file() {
        let (raw, base) = shipped("boot-appid", "127.0.0.1:8443");
        let text = include_str!("../../config/hutong.toml")
            .replace("app_id = \"A3300010001\"", "app_id = \"../../A1\"");
        let bad: Config = toml::from_str(&text).unwrap();
        let e = bootstrap(&bad, &base).unwrap_err().to_string();
        assert!(e.contains("app_id must be"), "{e}");
        assert!(!base.join("../data").exists(), "nothing generated");
        assert!(bootstrap(&raw, &base).is_ok());
    }

    #[test]
    fn one_missing_file_does_not_replace_the_others() {
        let (raw, base) = shipped("boot-over", "127.0.0.1:8443");
        bootstrap(&raw, &base).unwrap();
        let data = base.join("../data");
        let key = std::fs::read(data.join("certs/server.key.pem")).unwrap();
        // The certificate is lost; its key and the client CA are kept, not replaced.
        std::fs::remove_file(data.join("certs/server.crt.pem")).unwrap();
        let e = bootstrap(&raw, &base).unwrap_err().to_string();
        assert!(e.contains("server.key.pem"), "{e}");
        assert_eq!(
            std::fs::read(data.join("certs/server.key.pem")).unwrap(),
            key
        );
        assert!(!data.join("certs/server.crt.pem").exists());
        // The pseudonym secret is lost while the store it sealed is there.
        std::fs::write(data.join("certs/server.crt.pem"), b"kept").unwrap();
        std::fs::write(data.join(crate::store::Store::FILE_NAME), b"").unwrap();
        std::fs::remove_file(data.join("keys/pseudonym.hex")).unwrap();
        let e = bootstrap(&raw, &base).unwrap_err().to_string();
        assert!(e.contains(crate::store::Store::FILE_NAME), "{e}");
        assert!(!data.join("keys/pseudonym.hex").exists());
    }
}
