//! Cross-region, over real sockets: a Jiangsu-style verifier posts its usual form to the
//! gateway's ingress (`/dialect/jiangsu/skm/verify`) with a Zhejiang-style code; the gateway
//! routes it by the code's pattern to the Zhejiang back-end (a `hutong sim --region
//! zhejiang` on loopback), calls it in the Zhejiang dialect (JSON, HMAC-SHA256), and answers
//! in Jiangsu's format with the person's name and ID number masked.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use hutong::client::{GatewayClient, Profile};
use hutong::config::{Config, SignTypeName};
use hutong::crypto::to_hex;
use hutong::route::Router;
use hutong::server::{self, Gateway};
use hutong::sim::region::{self as region_sim, Caller, RegionSimConfig};
use hutong::standard::{ReturnCode, ServiceName, Standard};
use hutong::translate::Dialect;

use crate::support::{root, temp_dir};

const VERIFIER: &str = "J3200010001";
const GW_AT_ZJ: &str = "hutong-gw";
const ZJ_SECRET: &str = "zj-shared-secret";

fn dialect(id: &str) -> Dialect {
    let dir = root().join("config/regions");
    Dialect::load_dir(&dir, &Standard::embedded())
        .unwrap()
        .into_iter()
        .find(|d| d.id == id)
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jiangsu_verifier_verifies_a_zhejiang_code_and_gets_a_masked_jiangsu_answer() {
    let dir = temp_dir("cross-region");
    let zj = region_sim::start(
        dialect("zhejiang"),
        RegionSimConfig {
            callers: vec![Caller {
                app_key: GW_AT_ZJ.into(),
                secret: ZJ_SECRET.into(),
            }],
            ..RegionSimConfig::default()
        },
    )
    .await
    .unwrap();

    crate::support::gateway_files(&dir, &[VERIFIER], 9);
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w("zj.secret", &format!("{ZJ_SECRET}\n"));
    w(
        "hutong.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
tls_cert_file = "certs/server.crt.pem"
tls_key_file = "certs/server.key.pem"
client_ca_file = "certs/ca.crt.pem"

[gateway]
app_id = "GW0000000001"
data_dir = "data"
signing_key_file = "gw-sign.key.pem"
encryption_key_file = "gw-enc.key.pem"
pseudonym_secret_file = "pseudonym.hex"
dialects_dir = "{dialects}"

[auth]
jwt_key_file = "jwt.key.pem"

# A Jiangsu verifier at a Nanjing station: its systems speak the Jiangsu dialect.
[[client]]
app_id = "{VERIFIER}"
region = "320102"
role = "verifier"
services = ["verifyCode"]
regions = ["*"]
sign_types = []
dialect = "jiangsu"

# The Zhejiang back-end, reached in its own dialect.
[[region]]
code = "330000"
name = "浙江"
url = "{url}"
issuer_ids = ["33000001"]
dialect = "zhejiang"
dialect_credentials = {{ id = "{GW_AT_ZJ}", key_hex = "{key_hex}", secret = "@zj.secret" }}
timeout_ms = 2000
"#,
            dialects = root().join("config/regions").display(),
            url = zj.base_url(),
            key_hex = to_hex(GW_AT_ZJ.as_bytes()),
        ),
    );
    let cfg = Config::load(&dir.join("hutong.toml")).unwrap();
    let router = Arc::new(Router::from_config(&cfg).unwrap());
    let gw = Arc::new(Gateway::new(cfg, router).unwrap());
    let running = server::start(Arc::clone(&gw)).await.unwrap();

    let profile = Profile {
        gateway: format!("https://localhost:{}", running.addr.port()),
        app_id: VERIFIER.into(),
        sign_type: SignTypeName::HmacSm3,
        sm2_key_file: None,
        // The profile wants a key for its sign type; the ingress never uses it.
        mac_key_hex: Some(to_hex(&[1u8; 32])),
        sm4_key_hex: Some(to_hex(&[2u8; 16])),
        gateway_sign_key_file: dir.join("gw-sign.pub.pem"),
        gateway_encryption_key_file: None,
        ca_file: Some(dir.join("certs/ca.crt.pem")),
        client_cert_file: Some(dir.join(format!("certs/client-{VERIFIER}.crt.pem"))),
        client_key_file: Some(dir.join(format!("certs/client-{VERIFIER}.key.pem"))),
        token_file: None,
        timeout_ms: 10_000,
    };
    let mut client = GatewayClient::new(&profile).unwrap();
    client.set_token(Some(
        gw.tokens
            .issue(VERIFIER, &[ServiceName::VerifyCode], 600)
            .unwrap(),
    ));

    // Three people of the Zhejiang population, of each colour the simulator mixes in.
    let mut seen_colours = std::collections::BTreeSet::new();
    for i in 0..40 {
        let s = zj.sample(i).unwrap();
        let content = s.code_content.clone().unwrap();
        let body = form(&[
            ("url", &content),
            ("source", VERIFIER),
            ("verifierDept", "南京站"),
            ("position", "江苏省,南京市,玄武区,中山路1号"),
            ("token", "t0k3n"),
        ]);
        let (status, loss, raw) = client
            .post_dialect(
                "jiangsu/skm/verify",
                "application/x-www-form-urlencoded",
                Bytes::from(body),
            )
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_slice(&raw).unwrap();
        // Jiangsu's format: resCode 0 and res.{level 1/2/3, name, idcardNo}.
        assert_eq!(answer["resCode"], Value::from(0), "{text}");
        let level = answer["res"]["level"].as_str().unwrap().to_owned();
        let expected = match s.person.colour.as_str() {
            "00" => "1",
            "01" => "2",
            _ => "3",
        };
        assert_eq!(level, expected, "person {i}: {text}");
        seen_colours.insert(level);
        // Masked: neither the full name nor the full ID number crosses.
        assert!(!text.contains(&s.person.name), "full name leaked: {text}");
        assert!(
            !text.contains(&s.person.id_no),
            "full ID number leaked: {text}"
        );
        let masked_id = answer["res"]["idcardNo"].as_str().unwrap();
        assert!(masked_id.contains('*'), "{text}");
        assert_eq!(&masked_id[..1], &s.person.id_no[..1]);
        // What Jiangsu cannot carry is named in the loss report.
        assert!(loss.is_some(), "no X-Hutong-Loss header");
    }
    assert!(seen_colours.len() >= 2, "colours seen: {seen_colours:?}");
    assert!(zj.requests() >= 1, "the Zhejiang back-end was called");

    // A code no dialect recognises is the standard's 3001, in Jiangsu's words (resCode 112).
    let (_, _, raw) = client
        .post_dialect(
            "jiangsu/skm/verify",
            "application/x-www-form-urlencoded",
            Bytes::from(form(&[
                ("url", "https://nowhere.example.cn/x?q=1"),
                ("verifierDept", "南京站"),
                ("token", "t"),
            ])),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["resCode"], Value::from(112), "{answer}");

    // Without a token the caller is unknown: 1005/1006 in Jiangsu's words, never a 200 answer
    // with data.
    // Each refusal's national code, as the gateway counted it (Jiangsu writes 9999, 9002 and
    // every code it has no pair for as the same resCode 1).
    let counted = |code: ReturnCode| gw.metrics.requests(Some(ServiceName::VerifyCode), code);
    let counts_before =
        |codes: &[ReturnCode]| codes.iter().map(|c| counted(*c)).collect::<Vec<_>>();
    let auth_before = counts_before(&[ReturnCode::UnknownApp, ReturnCode::NoPermission]);
    let mut anonymous = GatewayClient::new(&profile).unwrap();
    anonymous.set_token(None);
    let (_, _, raw) = anonymous
        .post_dialect(
            "jiangsu/skm/verify",
            "application/x-www-form-urlencoded",
            Bytes::from(form(&[("url", "x"), ("token", "t")])),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_ne!(answer["resCode"], Value::from(0), "{answer}");
    assert!(answer.get("res").is_none(), "{answer}");
    assert_ne!(
        counts_before(&[ReturnCode::UnknownApp, ReturnCode::NoPermission]),
        auth_before,
        "the anonymous call was not refused as unknown (1005) or not permitted (1006)"
    );

    // A body that is not a form (bad percent-encoding, not UTF-8) is the caller's fault,
    // answered in Jiangsu's words, never a panic.
    let bad_form = counted(ReturnCode::BadFormat);
    let (status, _, raw) = client
        .post_dialect(
            "jiangsu/skm/verify",
            "application/x-www-form-urlencoded",
            Bytes::from_static(b"url=%zz&token=\xff\xfe"),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(status, 200);
    assert_ne!(answer["resCode"], Value::from(0), "{answer}");
    assert_eq!(
        counted(ReturnCode::BadFormat),
        bad_form + 1,
        "the caller's form: 1002"
    );

    // The Zhejiang back-end answers garbage: the region's fault (9002), in Jiangsu's words,
    // with no person data.
    zj.set_faults(hutong::sim::Faults {
        garbage_rate: 1.0,
        ..hutong::sim::Faults::default()
    })
    .unwrap();
    let fresh = zj.sample(45).unwrap().code_content.unwrap();
    let garbage = counted(ReturnCode::UpstreamFailed);
    let (_, _, raw) = client
        .post_dialect(
            "jiangsu/skm/verify",
            "application/x-www-form-urlencoded",
            Bytes::from(form(&[
                ("url", &fresh),
                ("verifierDept", "南京站"),
                ("token", "t"),
            ])),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_ne!(answer["resCode"], Value::from(0), "{answer}");
    assert!(answer.get("res").is_none(), "{answer}");
    assert_eq!(
        counted(ReturnCode::UpstreamFailed),
        garbage + 1,
        "the region's garbage: 9002"
    );

    // The audit chain holds a record per verification, with the loss report.
    let report = gw.audit.log().verify().unwrap();
    assert!(report.ok && report.records >= 40, "{report:?}");
    let recent = gw.audit.log().tail(100).unwrap();
    let verified: Vec<_> = recent
        .iter()
        .filter(|r| r.actor == VERIFIER && r.action == "verifyCode" && r.result == "0")
        .collect();
    assert_eq!(verified.len(), 40, "one record per answered verification");
    for r in verified {
        // What the caller's registration filled in, and what Jiangsu cannot carry.
        assert!(
            r.loss.iter().any(|l| l == "defaulted:verifier.deviceId"),
            "{:?}",
            r.loss
        );
    }

    running.shutdown().await;
    zj.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
