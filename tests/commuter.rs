//! Beijing's commuter identification (通勤人员标识) between Beijing and a neighbour, over
//! real sockets: a Hebei checkpoint, in Hebei's own format (`/dialect/hebei/…`), verifies
//! Beijing codes through the gateway and gets Beijing's commuter flag in its own field
//! (`tqry` Y); and a Beijing venue, in the national envelope, verifies Hebei codes and gets
//! Hebei's flag as `commuter`. The flag crosses both ways, with no loss reported for it.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use hutong::client::{GatewayClient, Profile};
use hutong::config::{Config, SignTypeName};
use hutong::crypto::to_hex;
use hutong::route::Router;
use hutong::server::{self, Gateway};
use hutong::sim::region::{self as region_sim, Caller, RegionSimConfig};
use hutong::standard::{ServiceName, Standard};
use hutong::translate::Dialect;

use crate::support::{root, temp_dir};

const HEBEI_CHECKPOINT: &str = "H1300010001";
const BEIJING_VENUE: &str = "B1100010001";
const GW: &str = "hutong-gw";

fn dialect(id: &str) -> Dialect {
    Dialect::load_dir(&root().join("config/regions"), &Standard::embedded())
        .unwrap()
        .into_iter()
        .find(|d| d.id == id)
        .unwrap()
}

async fn sim(id: &str, secret: &str) -> region_sim::RegionSimHandle {
    region_sim::start(
        dialect(id),
        RegionSimConfig {
            callers: vec![Caller {
                app_key: GW.into(),
                secret: secret.into(),
            }],
            ..RegionSimConfig::default()
        },
    )
    .await
    .unwrap()
}

/// The index of a commuter and of a non-commuter in a simulator's population.
fn commuter_and_not(s: &region_sim::RegionSimHandle) -> (usize, usize) {
    s.with_population(|p| {
        let c = p.iter().position(|x| x.commuter).unwrap();
        let n = p.iter().position(|x| !x.commuter).unwrap();
        (c, n)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commuter_flag_crosses_between_beijing_and_hebei_both_ways() {
    let dir = temp_dir("commuter");
    let bj = sim("beijing", "bj-secret").await;
    let he = sim("hebei", "he-secret").await;
    crate::support::gateway_files(&dir, &[HEBEI_CHECKPOINT, BEIJING_VENUE], 5);
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w("bj.secret", "bj-secret\n");
    w("he.secret", "he-secret\n");
    let key_hex = to_hex(GW.as_bytes());
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

# A Langfang checkpoint: its systems speak Hebei's format.
[[client]]
app_id = "{HEBEI_CHECKPOINT}"
region = "131002"
role = "verifier"
services = ["verifyCode"]
regions = ["*"]
sign_types = []
dialect = "hebei"

# A Beijing venue, in the national envelope.
[[client]]
app_id = "{BEIJING_VENUE}"
region = "110105"
role = "verifier"
services = ["verifyCode"]
regions = ["*"]
sign_types = ["HMAC-SM3"]
mac_key_hex = "{mac}"
sm4_key_hex = "{sm4}"

[[region]]
code = "110000"
name = "北京"
url = "{bj}"
issuer_ids = ["11000001"]
dialect = "beijing"
dialect_credentials = {{ id = "{GW}", key_hex = "{key_hex}", secret = "@bj.secret" }}

[[region]]
code = "130000"
name = "河北"
url = "{he}"
issuer_ids = ["13000001"]
dialect = "hebei"
dialect_credentials = {{ id = "{GW}", key_hex = "{key_hex}", secret = "@he.secret" }}
"#,
            dialects = root().join("config/regions").display(),
            bj = bj.base_url(),
            he = he.base_url(),
            mac = to_hex(&[6u8; 32]),
            sm4 = to_hex(&[7u8; 16]),
        ),
    );
    let cfg = Config::load(&dir.join("hutong.toml")).unwrap();
    let router = Arc::new(Router::from_config(&cfg).unwrap());
    let gw = Arc::new(Gateway::new(cfg, router).unwrap());
    let running = server::start(Arc::clone(&gw)).await.unwrap();
    let profile = |app: &str| Profile {
        gateway: format!("https://localhost:{}", running.addr.port()),
        app_id: app.into(),
        sign_type: SignTypeName::HmacSm3,
        sm2_key_file: None,
        mac_key_hex: Some(to_hex(&[6u8; 32])),
        sm4_key_hex: Some(to_hex(&[7u8; 16])),
        gateway_sign_key_file: dir.join("gw-sign.pub.pem"),
        gateway_encryption_key_file: None,
        ca_file: Some(dir.join("certs/ca.crt.pem")),
        client_cert_file: Some(dir.join(format!("certs/client-{app}.crt.pem"))),
        client_key_file: Some(dir.join(format!("certs/client-{app}.key.pem"))),
        token_file: None,
        timeout_ms: 10_000,
    };
    let mut hebei = GatewayClient::new(&profile(HEBEI_CHECKPOINT)).unwrap();
    hebei.set_token(Some(
        gw.tokens
            .issue(HEBEI_CHECKPOINT, &[ServiceName::VerifyCode], 600)
            .unwrap(),
    ));
    let mut beijing = GatewayClient::new(&profile(BEIJING_VENUE)).unwrap();
    beijing.set_token(Some(
        gw.tokens
            .issue(BEIJING_VENUE, &[ServiceName::VerifyCode], 600)
            .unwrap(),
    ));

    // Beijing → Hebei: a Hebei checkpoint scans Beijing codes, in Hebei's format.
    let (c, n) = commuter_and_not(&bj);
    for (i, expect) in [(c, Some("Y")), (n, None)] {
        let content = bj.sample(i).unwrap().code_content.unwrap();
        let body = json!({"data": {"qr": content, "dw": "廊坊某检查站", "sb": "HB-LF-07"}});
        let (status, loss, raw) = hebei
            .post_dialect(
                "hebei/jkm/api/verify",
                "application/json",
                Bytes::from(body.to_string()),
            )
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(answer["ret"], 0, "{text}");
        assert_eq!(
            answer["data"]["tqry"].as_str(),
            expect,
            "person {i}: {text}"
        );
        // The flag is carried, not lost: no loss item names it.
        let loss = loss.unwrap_or_default();
        assert!(!loss.contains("commuter"), "{loss}");
    }

    // Hebei → Beijing: a Beijing venue scans Hebei codes, in the national envelope.
    let (c, n) = commuter_and_not(&he);
    for (i, expect) in [(c, Some(true)), (n, None)] {
        let content = he.sample(i).unwrap().code_content.unwrap();
        let x = beijing
            .call(
                ServiceName::VerifyCode,
                &json!({"codeContent": content, "verifier": {"orgName": "北京某商场", "deviceId": "BJ-1"}}),
            )
            .await
            .unwrap();
        assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
        let b = x.biz.unwrap();
        assert_eq!(b["commuter"].as_bool(), expect, "person {i}: {b}");
    }

    running.shutdown().await;
    bj.shutdown().await.unwrap();
    he.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
