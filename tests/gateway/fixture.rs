//! The gateway of `tests/gateway.rs` (and of the conformance run against it): a gateway
//! over TLS with one simulated national region behind it, its clients and keys.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use hutong::client::{GatewayClient, Profile};
use hutong::config::{Config, SignTypeName};
use hutong::crypto::{SigningKey, Sm4Key, to_hex};
use hutong::envelope::ClientCredentials;
use hutong::route::Router;
use hutong::server::{self, Gateway, Running};
use hutong::sim::{self, RunningSim, SimConfig, SimKeys};
use hutong::standard::ServiceName;
use hutong::tlsdev::DevCerts;

use crate::support::temp_dir;

pub const CLIENT: &str = "A3300010001";
pub const CLIENT_MAC: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const CLIENT_SM4: &str = "0123456789abcdeffedcba9876543210";
pub const GW_AT_SIM_SM4: &str = "00112233445566778899aabbccddeeff";
pub const REGION_APP: &str = "R3300000001";
pub const REGION_MAC: &str = "202122232425262728292a2b2c2d2e2f";

/// Options of one fixture.
#[derive(Clone)]
pub struct Opts {
    pub require_mtls: bool,
    pub region_timeout_ms: u64,
    pub extra_client_toml: String,
    /// Audit records written to the data directory before the gateway starts, each 400
    /// days old (past the default retention of 180 days).
    pub old_audit_records: u64,
    /// Appended to the configuration file (tables such as `[limits]`).
    pub extra_toml: String,
    /// Lines added to its `[server]` table.
    pub server_toml: String,
    /// Lines added to its `[auth]` table.
    pub auth_toml: String,
    /// Load the regional dialects of `config/regions` (for clients of the dialect ingress).
    pub dialects: bool,
    /// Deviations the simulated region is started with.
    pub sim_defects: sim::Defects,
    /// Lifetime of the authCodes the simulated region grants, seconds (default 300).
    pub sim_auth_code_ttl_secs: u32,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            require_mtls: true,
            region_timeout_ms: 1500,
            extra_client_toml: String::new(),
            old_audit_records: 0,
            extra_toml: String::new(),
            server_toml: String::new(),
            dialects: false,
            auth_toml: String::new(),
            sim_defects: sim::Defects::NONE,
            sim_auth_code_ttl_secs: sim::AUTH_CODE_TTL_SECS,
        }
    }
}

/// Unix milliseconds `days` days ago.
pub fn days_ago_ms(days: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    now - days * 86_400_000
}

/// A gateway over TLS with one simulated region (330000, issuer 33000001) behind it.
pub struct Fixture {
    pub dir: PathBuf,
    pub gw: Arc<Gateway>,
    /// The gateway's router, for reloads (`Router::reconfigure`, as SIGHUP does).
    pub router: Arc<Router>,
    pub running: Option<Running>,
    pub sim: Option<RunningSim>,
    /// The simulated region's code-signing key (to make codes it would issue, e.g. expired).
    pub issuer_key: SigningKey,
}

impl Fixture {
    pub async fn start(opts: Opts) -> Self {
        let dir = temp_dir("gw");
        let certs = DevCerts::generate(&["localhost".into(), "127.0.0.1".into()], &[CLIENT.into()])
            .unwrap();
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        certs.write_to(&dir.join("certs")).unwrap();
        let gw_sign = SigningKey::generate().unwrap();
        let gw_enc = hutong::crypto::DecryptionKey::generate().unwrap();
        let client_key = SigningKey::generate().unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        w("gw-sign.key.pem", &gw_sign.to_pem().unwrap());
        w(
            "gw-sign.pub.pem",
            &gw_sign.verifying_key().to_pem().unwrap(),
        );
        w("gw-enc.key.pem", &gw_enc.to_pem().unwrap());
        w("gw-enc.pub.pem", &gw_enc.encryption_key().to_pem().unwrap());
        w("pseudonym.hex", &to_hex(&[7u8; 32]));
        w(
            "jwt.key.pem",
            &hutong::auth::TokenKeys::generate_pem().unwrap(),
        );
        w(
            "client.pub.pem",
            &client_key.verifying_key().to_pem().unwrap(),
        );
        w("client.key.pem", &client_key.to_pem().unwrap());

        // The region: the gateway is its registered client.
        let mut clients = HashMap::new();
        clients.insert(
            "GW0000000001".to_owned(),
            ClientCredentials {
                verifying_key: Some(gw_sign.verifying_key()),
                mac_key: None,
                sm4_key: Some(Sm4Key::from_hex(GW_AT_SIM_SM4).unwrap()),
                insecure_allow_plaintext: false,
            },
        );
        let keys = SimKeys::generate().unwrap();
        let sim_pub = keys.public();
        let issuer_key = keys.issuer.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut sim_config = SimConfig::new(clients);
        sim_config.defects = opts.sim_defects;
        sim_config.auth_code_ttl_secs = opts.sim_auth_code_ttl_secs;
        let sim = sim::start(sim_config, keys, listener).await.unwrap();

        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
tls_cert_file = "certs/server.crt.pem"
tls_key_file = "certs/server.key.pem"
client_ca_file = "certs/ca.crt.pem"
request_timeout_ms = 5000
{server_extra}

[gateway]
app_id = "GW0000000001"
data_dir = "data"
signing_key_file = "gw-sign.key.pem"
encryption_key_file = "gw-enc.key.pem"
pseudonym_secret_file = "pseudonym.hex"
{gateway_extra}

[auth]
jwt_key_file = "jwt.key.pem"
{auth_extra}

[[client]]
app_id = "{CLIENT}"
region = "330106"
role = "verifier"
services = ["declareHealth", "declareTrip", "queryHealthInfo", "applyCodeAccess", "generateCode", "verifyCode", "correctHealthInfo"]
regions = ["*"]
sign_types = ["SM2", "HMAC-SM3"]
sm2_public_key = "@client.pub.pem"
mac_key_hex = "{CLIENT_MAC}"
sm4_key_hex = "{CLIENT_SM4}"
require_mtls = {mtls}
{extra}

[[client]]
app_id = "R3300000001"
region = "330000"
role = "region"
services = []
regions = ["330000"]
sign_types = ["HMAC-SM3"]
mac_key_hex = "{REGION_MAC}"
sm4_key_hex = "{CLIENT_SM4}"

[[region]]
code = "330000"
name = "浙江"
url = "{url}"
issuer_ids = ["{issuer}"]
public_key = "{region_key}"
gateway_sm4_key_hex = "{GW_AT_SIM_SM4}"
timeout_ms = {timeout}
connect_timeout_ms = 500
validity_secs = 691200
"#,
            server_extra = opts.server_toml,
            auth_extra = opts.auth_toml,
            gateway_extra = if opts.dialects {
                format!(
                    "dialects_dir = \"{}\"",
                    crate::support::root().join("config/regions").display()
                )
            } else {
                String::new()
            },
            mtls = opts.require_mtls,
            extra = opts.extra_client_toml,
            url = sim.base_url(),
            issuer = sim.issuer().as_str(),
            region_key = sim_pub.response.to_hex(),
            timeout = opts.region_timeout_ms,
        );
        w("hutong.toml", &format!("{toml}\n{}\n", opts.extra_toml));
        if opts.old_audit_records > 0 {
            use hutong::audit::{AuditLog, NewRecord, RedbAuditLog};
            let log = RedbAuditLog::new(hutong::store::Store::open(&dir.join("data")).unwrap());
            for i in 0..opts.old_audit_records {
                log.append(NewRecord {
                    time_ms: days_ago_ms(400) + i,
                    actor: CLIENT.to_owned(),
                    action: "verifyCode".to_owned(),
                    subject: None,
                    purpose: "test".to_owned(),
                    result: "0".to_owned(),
                    loss: vec![],
                    request_id: format!("old-{i}"),
                })
                .unwrap();
            }
        }
        let cfg = Config::load(&dir.join("hutong.toml")).unwrap();
        let router = Arc::new(Router::from_config(&cfg).unwrap());
        let gw = Arc::new(Gateway::new(cfg, Arc::clone(&router) as _).unwrap());
        let running = server::start(Arc::clone(&gw)).await.unwrap();
        Self {
            dir,
            gw,
            router,
            running: Some(running),
            sim: Some(sim),
            issuer_key,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    pub fn admin(&self) -> std::net::SocketAddr {
        self.running.as_ref().unwrap().admin_addr
    }

    /// A client profile: `sign` SM2 or HMAC-SM3, with or without a client certificate.
    pub fn profile(&self, sign: SignTypeName, with_cert: bool) -> Profile {
        let d = &self.dir;
        Profile {
            gateway: format!("https://localhost:{}", self.addr().port()),
            app_id: CLIENT.into(),
            sign_type: sign,
            sm2_key_file: Some(d.join("client.key.pem")),
            mac_key_hex: Some(CLIENT_MAC.into()),
            sm4_key_hex: Some(CLIENT_SM4.into()),
            gateway_sign_key_file: d.join("gw-sign.pub.pem"),
            gateway_encryption_key_file: Some(d.join("gw-enc.pub.pem")),
            ca_file: Some(d.join("certs/ca.crt.pem")),
            client_cert_file: with_cert.then(|| d.join(format!("certs/client-{CLIENT}.crt.pem"))),
            client_key_file: with_cert.then(|| d.join(format!("certs/client-{CLIENT}.key.pem"))),
            token_file: None,
            timeout_ms: 10_000,
        }
    }

    /// A fully credentialed client (certificate and token).
    pub fn client(&self, sign: SignTypeName) -> GatewayClient {
        let mut c = GatewayClient::new(&self.profile(sign, true)).unwrap();
        c.set_token(Some(self.token(&ServiceName::ALL)));
        c
    }

    pub fn token(&self, services: &[ServiceName]) -> String {
        self.gw.tokens.issue(CLIENT, services, 600).unwrap()
    }

    /// A person of the simulated population: (idType, idNo, name).
    pub fn person(&self, i: usize) -> (String, String, String) {
        self.sim.as_ref().unwrap().with_population(|p| {
            let x = p.get(i).unwrap();
            ("10".to_owned(), x.id_no.clone(), x.name.clone())
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
