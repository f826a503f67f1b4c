use std::path::Path;

use super::*;

/// Every file under `config/` parses as what it documents (STYLE: config/ holds documented
/// examples, and a test parses every one).
#[test]
fn every_shipped_config_file_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        if name.starts_with("sim-region") {
            crate::sim::region::parse_callers(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        } else if name.starts_with("sim-") {
            crate::sim::parse_clients(&text, Some(&dir)).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            toml::from_str::<Config>(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        seen += 1;
    }
    assert!(seen >= 1);
    // The regional dialects, checked against the standard.
    crate::translate::Dialect::load_dir(
        &dir.join("regions"),
        &crate::standard::Standard::embedded(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn minimal(extra: &str) -> String {
    format!(
        r#"
[server]
tls_cert_file = "c.pem"
tls_key_file = "k.pem"
[gateway]
app_id = "GW1"
data_dir = "d"
signing_key_file = "s.pem"
encryption_key_file = "e.pem"
pseudonym_secret_file = "p.hex"
[auth]
jwt_key_file = "j.pem"
{extra}"#
    )
}

/// What validation says of configuration `text` (paths under /tmp), which must be refused.
fn refusal(text: &str) -> String {
    toml::from_str::<Config>(text)
        .unwrap()
        .validate(Path::new("/tmp"))
        .unwrap_err()
        .to_string()
}

#[test]
fn reports_every_problem_at_once() {
    let text = minimal(
        r#"
[[client]]
app_id = "bad id!"
region = "999999"
role = "verifier"
services = ["verifyCode", "flyToMoon"]
sign_types = ["SM2"]

require_mtls = true

[[client]]
app_id = ""
region = "330106"
role = "verifier"
services = ["verifyCode"]
sign_types = ["HMAC-SM3"]

[[region]]
code = "330000"
name = "浙江"
url = "http://10.1.2.3:80"
public_key = "04zz"
timeout_ms = 18446744073709551615
validity_secs = 86400000
issuer_ids = ["33000001", "32000001"]

[[region]]
code = "310000"
name = "上海"
url = "http://127.0.0.1:7001"
public_key = "KEY"
issuer_ids = ["33000001"]
gateway_sm4_key_hex = "00112233"
gateway_mac_key_hex = "0011"
"#,
    )
    .replace("app_id = \"GW1\"", "app_id = \"GW 1\"")
    .replace(
        "KEY",
        &crate::crypto::SigningKey::generate()
            .unwrap()
            .verifying_key()
            .to_hex(),
    );
    let all = refusal(&text);
    for needle in [
        "app_id must be",
        "region 999999",
        "flyToMoon",
        "sign type SM2 needs sm2_public_key",
        "https, or http on loopback",
        "public_key",
        "timeout_ms must be 1 to 600000",
        "validity_secs must be at most 2592000",
        "client bad id!: require_mtls needs server.client_ca_file",
        "client #2 (the 2nd [[client]] table): app_id must be",
        "client #2 (the 2nd [[client]] table): sign type HMAC-SM3 needs mac_key_hex",
        "region 330000: issuer id 32000001 is not of this region",
        "issuer id 33000001 is listed under region",
        "region 310000: gateway_sm4_key_hex",
        "region 310000: gateway_mac_key_hex",
        "gateway.app_id \"GW 1\" must be",
    ] {
        assert!(all.contains(needle), "missing `{needle}` in:\n{all}");
    }
}

#[test]
fn the_trust_lists_code_lifetime_and_skew_are_bounded() {
    let trust = |extra: &str| {
        minimal(&format!(
            "[trust]\nlist_file = \"l.json\"\nanchor_key_file = \"a.pem\"\n{extra}"
        ))
    };
    let cfg: Config = toml::from_str(&trust("")).unwrap();
    let t = cfg.trust.as_ref().unwrap();
    assert_eq!((t.max_code_lifetime_secs, t.clock_skew_secs), (86_400, 60));
    let e = refusal(&trust("max_code_lifetime_secs = 0\nclock_skew_secs = 301"));
    assert!(
        e.contains("trust.max_code_lifetime_secs must be 1 to 86400"),
        "{e}"
    );
    assert!(
        e.contains("trust.clock_skew_secs must be at most 300"),
        "{e}"
    );
}

#[test]
fn a_region_speaks_a_dialect_of_its_own_province() {
    let region = |code: &str, dialect: &str| {
        minimal(&format!(
            "[[region]]\ncode = \"{code}\"\nname = \"x\"\nurl = \"http://127.0.0.1:7001\"\n\
             dialect = \"{dialect}\"\ndialect_credentials = {{ id = \"gw\", secret = \"s\" }}\n"
        ))
    };
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let problems = |text: String| {
        let cfg: Config = toml::from_str(&text).unwrap();
        cfg.validate(&config_dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = problems(region("330000", "jiangsu"));
    assert!(
        e.contains("region 330000: dialect jiangsu is the dialect of province 320000"),
        "{e}"
    );
    assert!(!problems(region("320000", "jiangsu")).contains("the dialect of province"));
}

#[test]
fn the_debug_output_of_a_configuration_holds_no_key() {
    let key = crate::crypto::SigningKey::generate()
        .unwrap()
        .verifying_key()
        .to_hex();
    let (mac, sm4) = (
        "a1a2a3a4a5a6a7a8a9aaabacadaeafb0",
        "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0",
    );
    let text = minimal(&format!(
        "[[client]]\napp_id = \"A1\"\nregion = \"330106\"\nrole = \"verifier\"\n\
         services = [\"verifyCode\"]\nsign_types = [\"HMAC-SM3\"]\nmac_key_hex = \"{mac}\"\n\
         sm4_key_hex = \"{sm4}\"\n\n[[region]]\ncode = \"330000\"\nname = \"x\"\n\
         url = \"http://127.0.0.1:7001\"\npublic_key = \"{key}\"\n\
         gateway_mac_key_hex = \"{mac}\"\ngateway_sm4_key_hex = \"{sm4}\"\n"
    ));
    let cfg: Config = toml::from_str(&text).unwrap();
    let v = cfg.validate(Path::new("/tmp")).unwrap();
    assert!(v.regions["330000"].gateway_sm4_key.is_some());
    let shown = format!("{v:?}").to_lowercase();
    for secret in [mac, sm4] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // Nor as the bytes' list.
    assert!(!shown.contains("[161, 162"), "{shown}");
    assert!(!shown.contains("[193, 194"), "{shown}");
}

#[test]
fn a_syntax_error_names_its_own_line() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n\nbogus\n";
    let e = toml::from_str::<Config>(text).unwrap_err();
    let m = toml_error(Path::new("h.toml"), text, &e);
    assert!(m.starts_with("h.toml (line 4): "), "{m}");
}

#[test]
fn regions_hold_their_own_divisions() {
    assert!(within_region("330106", "330000"));
    assert!(within_region("330106", "330100"));
    assert!(!within_region("330206", "330100"));
    assert!(within_region("330106", "330106"));
    assert!(!within_region("330107", "330106"));
    assert!(!within_region("320000", "330000"));
}

#[test]
fn plain_http_means_a_loopback_host_not_a_prefix() {
    assert!(is_loopback_http("http://127.0.0.1:7001"));
    assert!(is_loopback_http("http://localhost:80/x"));
    assert!(is_loopback_http("http://[::1]:8080"));
    assert!(!is_loopback_http("http://127.evil.example"));
    assert!(!is_loopback_http("http://localhost.evil.example"));
    assert!(!is_loopback_http("https://127.0.0.1"));
}

#[test]
fn refuses_plain_http_off_loopback_and_unknown_keys() {
    let text = minimal("").replace(
        "[server]",
        "[server]\nlisten = \"0.0.0.0:80\"\ninsecure_plain_http = true",
    );
    assert!(refusal(&text).contains("loopback only"));
    let text = minimal("").replace("[auth]", "[auth]\ncolour = 1");
    assert!(toml::from_str::<Config>(&text).is_err());
}

#[test]
fn a_reload_keeps_the_tables_of_keys_that_did_not_change() {
    let kept = crate::crypto::SigningKey::generate()
        .unwrap()
        .verifying_key();
    let region = crate::crypto::SigningKey::generate()
        .unwrap()
        .verifying_key();
    let before = crate::crypto::SigningKey::generate()
        .unwrap()
        .verifying_key();
    let changed_signer = crate::crypto::SigningKey::generate().unwrap();
    let changed = changed_signer.verifying_key();
    let client = |app_id: &str, key: &str| {
        format!(
            r#"
[[client]]
app_id = "{app_id}"
region = "330106"
role = "verifier"
services = ["verifyCode"]
sign_types = ["SM2"]
sm2_public_key = "{key}"
"#
        )
    };
    let text = |second_client: &str| {
        minimal(&format!(
            r#"{}{}
[[region]]
code = "330000"
name = "浙江"
url = "https://zj.example.cn"
issuer_ids = ["33000001"]
public_key = "{}"
"#,
            client("A3300010001", &kept.to_hex()),
            client("A3300010002", second_client),
            region.to_hex()
        ))
    };
    let load = |text: &str, previous: Option<&Validated>| {
        toml::from_str::<Config>(text)
            .unwrap()
            .validate_reusing(Path::new("/tmp"), previous)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let key = |v: &Validated, id: &str| v.clients[id].credentials.verifying_key.clone().unwrap();
    let first = load(&text(&before.to_hex()), None);
    assert!(key(&first, "A3300010001").is_precomputed());
    let second = load(&text(&changed.to_hex()), Some(&first));
    assert!(key(&second, "A3300010001").shares_table_with(&key(&first, "A3300010001")));
    let region_key = |v: &Validated| v.regions["330000"].public_key.clone().unwrap();
    assert!(region_key(&second).shares_table_with(&region_key(&first)));
    // A client whose key changed gets a table of its own, for its own key.
    let new = key(&second, "A3300010002");
    assert!(new.is_precomputed() && !new.shares_table_with(&key(&first, "A3300010002")));
    assert_eq!(new, changed);
    // And it verifies with that table: a signature of the changed key passes, one of the
    // key it replaced (the same client's) does not.
    let sig = changed_signer.sign(b"reloaded");
    assert!(new.verify(b"reloaded", &sig).is_ok());
    assert!(
        key(&first, "A3300010002")
            .verify(b"reloaded", &sig)
            .is_err()
    );
    // Without the configuration in force, every table is built afresh.
    let alone = load(&text(&before.to_hex()), None);
    assert!(!key(&alone, "A3300010001").shares_table_with(&key(&first, "A3300010001")));
}

#[test]
fn a_reload_names_the_settings_only_a_restart_applies() {
    let load = |text: &str| {
        toml::from_str::<Config>(text)
            .unwrap()
            .validate(Path::new("/tmp"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let trust = "\n[trust]\nlist_file = \"tl.json\"\nanchor_key_file = \"a.pem\"\n";
    let issuing = format!("{trust}dev_issuer_id = \"33000099\"\ndev_issuer_key_file = \"i.pem\"\n");
    let base = load(&minimal(&issuing));
    assert!(base.restart_only_changes(&base).is_empty());
    assert_eq!(base.reload_refusal(true), None);
    // What a reload applies: limits, the cache's lifetime, the body limit, the token rule.
    let applied = minimal(&format!(
        "[limits]\nper_ip = {{ per_second = 7, burst = 7 }}\n[cache]\nmax_ttl_ms = 1000\n{issuing}"
    ))
    .replace(
        "[server]",
        "[server]\nmax_body_bytes = 1000\nrequest_timeout_ms = 1900",
    )
    .replace("[auth]", "[auth]\nrequire_token = false");
    assert_eq!(
        base.restart_only_changes(&load(&applied)),
        Vec::<&str>::new()
    );
    // What waits for the next start.
    let later = minimal(&format!(
        "[cache]\nmax_entries = 5\n[audit]\nsync = \"interval\"\n{issuing}"
    ))
    .replace(
        "[server]",
        "[server]\nlisten = \"127.0.0.1:9443\"\nmax_concurrency = 3\nheader_read_timeout_ms = 7\nmax_connections_per_ip = 9",
    )
    .replace("data_dir = \"d\"", "data_dir = \"elsewhere\"\nstore_cache_mib = 16")
    .replace("jwt_key_file = \"j.pem\"", "jwt_key_file = \"j2.pem\"")
    .replace("33000099", "33000098");
    assert_eq!(
        base.restart_only_changes(&load(&later)),
        vec![
            "server.listen",
            "server.header_read_timeout_ms",
            "server.max_concurrency",
            "server.max_connections_per_ip",
            "gateway.data_dir",
            "gateway.store_cache_mib",
            "auth.jwt_key_file",
            "cache.max_entries",
            "audit",
            "trust.dev_issuer_id, trust.dev_issuer_key_file",
        ]
    );
    // A lifetime cap lowered applies (each answer's deadline is read from the configuration
    // in force); raised, it waits for the cache built at start.
    let raised = minimal(&format!("[cache]\nmax_ttl_ms = 400000\n{issuing}"));
    assert_eq!(
        base.restart_only_changes(&load(&raised)),
        vec!["cache.max_ttl_ms (raised)"]
    );
    // No [trust] for a gateway that issues codes is refused, whatever the configuration
    // before said; for one that does not issue, it is a reload.
    let without = load(&minimal(""));
    assert!(without.reload_refusal(true).unwrap().contains("[trust]"));
    assert_eq!(without.reload_refusal(false), None);
    let verifying = load(&minimal(trust));
    assert_eq!(verifying.reload_refusal(true), None);
    assert!(without.restart_only_changes(&verifying).is_empty());
    // An issuer added or dropped with [trust] kept waits for the next start.
    let issuer = ["trust.dev_issuer_id, trust.dev_issuer_key_file"];
    assert_eq!(verifying.restart_only_changes(&base), issuer);
    assert_eq!(base.restart_only_changes(&verifying), issuer);
}

#[test]
fn caps_and_the_store_cache_must_be_positive() {
    let text = minimal("")
        .replace(
            "[server]",
            "[server]\nmax_connections = 0\nmax_connections_per_ip = 0\n\
             header_read_timeout_ms = 0\nbody_read_timeout_ms = 0\nrequest_timeout_ms = 0",
        )
        .replace("data_dir = \"d\"", "data_dir = \"d\"\nstore_cache_mib = 0")
        .replace(
            "jwt_key_file = \"j.pem\"",
            "jwt_key_file = \"j.pem\"\ntoken_ttl_secs = 3600000",
        );
    let err = refusal(&text);
    for want in [
        "server.max_connections must be positive",
        "server.max_connections_per_ip must be positive",
        "server.header_read_timeout_ms must be 1 to 600000",
        "server.body_read_timeout_ms must be 1 to 600000",
        "server.request_timeout_ms must be 1000 to 600000",
        "gateway.store_cache_mib must be positive",
        "auth.token_ttl_secs must be 1 to 2678400",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    // A deadline past ten minutes is a mistake, and added to the clock it could overflow.
    let text = minimal("").replace(
        "[server]",
        "[server]\nrequest_timeout_ms = 9223372036854775807\nbody_read_timeout_ms = 600001",
    );
    let err = refusal(&text);
    assert!(
        err.contains("server.request_timeout_ms must be 1000 to 600000"),
        "{err}"
    );
    assert!(
        err.contains("server.body_read_timeout_ms must be 1 to 600000"),
        "{err}"
    );
    // A count past any machine is refused here rather than panicking at start.
    let text = minimal("").replace(
        "[server]",
        "[server]\nmax_concurrency = 2305843009213693952\nmax_connections_per_ip = 16777217",
    );
    let err = refusal(&text);
    for want in [
        "server.max_concurrency must be at most 16777216",
        "server.max_connections_per_ip must be at most 16777216",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    // Their defaults.
    let ok = toml::from_str::<Config>(&minimal("")).unwrap();
    assert_eq!(ok.gateway.store_cache_mib, 64);
    // A code host must be one a code URL can name.
    for (host, ok) in [
        ("jkm.example.cn", true),
        ("jkm.example.cn:8443", true),
        ("JKM.example.cn", false),
        ("a b", false),
    ] {
        let text = minimal("").replace(
            "data_dir = \"d\"",
            &format!("data_dir = \"d\"\ncode_host = {host:?}"),
        );
        let v = toml::from_str::<Config>(&text)
            .unwrap()
            .validate(Path::new("/tmp"));
        assert_eq!(
            v.is_ok(),
            ok,
            "{host}: {:?}",
            v.err().map(|e| e.to_string())
        );
    }
}

#[test]
fn the_replay_store_is_sized_by_config_and_named_when_a_client_outgrows_it() {
    // The store's caps were fixed: one client was held to 500,000 nonces, about 830
    // requests a second over the window, below the default per-client limit (1,000), whose
    // requests past that were refused 1007 with nothing in the configuration to say why.
    let key = crate::crypto::SigningKey::generate()
        .unwrap()
        .verifying_key()
        .to_hex();
    let client = |app_id: &str, limit: &str| {
        format!(
            "\n[[client]]\napp_id = \"{app_id}\"\nregion = \"330106\"\nrole = \"verifier\"\n\
             services = [\"verifyCode\"]\nsign_types = [\"SM2\"]\nsm2_public_key = \"{key}\"\n{limit}\n"
        )
    };
    let load = |text: &str| {
        toml::from_str::<Config>(text)
            .unwrap()
            .validate(Path::new("/tmp"))
    };
    let defaults = load(&minimal(&client("A1", ""))).unwrap();
    assert_eq!(
        defaults.replay,
        crate::envelope::NonceStoreConfig::default()
    );
    assert!(
        defaults.replay_shortfalls().is_empty(),
        "the default limit fits the default store: {:?}",
        defaults.replay_shortfalls()
    );
    let fast = "[client.rate_limit]\nper_client = { per_second = 2000, burst = 10 }";
    let both = format!("{}{}", client("A2", fast), client("A1", ""));
    let v = load(&minimal(&both)).unwrap();
    assert_eq!(
        v.replay_shortfalls(),
        [
            "client A2: its rate limit admits 1202010 requests within the replay window, \
             more than replay.max_entries_per_app (640000)"
        ]
    );
    let roomy = format!("{both}\n[replay]\nmax_entries_per_app = 1300000\n");
    let v = load(&minimal(&roomy)).unwrap();
    assert!(v.replay_shortfalls().is_empty());
    assert_eq!(v.replay.max_entries_per_app, 1_300_000);
    // A window shorter than the timestamps accepted, or caps out of order, are refused.
    let bad = minimal("[replay]\nttl_ms = 60000\nmax_entries = 10\nmax_entries_per_app = 11\n");
    let err = load(&bad).unwrap_err().to_string();
    for want in [
        "replay.ttl_ms must be 601000",
        "replay.max_entries_per_app must be 1 to replay.max_entries",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}
