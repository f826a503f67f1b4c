//! Test helpers shared by the simulator's and the upstream's tests: a client identity
//! registered with an in-process simulator on `127.0.0.1:0`.

use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::crypto::{MacKey, SigningKey, Sm4Key};
use crate::envelope::ClientCredentials;
use crate::national::time::DateTime;
use crate::upstream::{ClientIdentity, NationalUpstream, NationalUpstreamConfig, UpstreamPolicy};

use super::{Faults, RunningSim, SimConfig, SimKeys, start};

/// A client with every kind of key, registered with the simulators started here.
pub(crate) struct TestClient {
    pub(crate) app_id: String,
    pub(crate) sm2: SigningKey,
    pub(crate) mac: MacKey,
    pub(crate) sm4: Sm4Key,
}

impl TestClient {
    pub(crate) fn new(app_id: &str) -> Self {
        Self {
            app_id: app_id.to_owned(),
            sm2: SigningKey::generate().unwrap(),
            mac: MacKey::generate().unwrap(),
            sm4: Sm4Key::generate().unwrap(),
        }
    }

    /// What the simulator holds about it.
    pub(crate) fn credentials(&self) -> ClientCredentials {
        ClientCredentials {
            verifying_key: Some(self.sm2.verifying_key()),
            mac_key: Some(self.mac.clone()),
            sm4_key: Some(self.sm4.clone()),
            insecure_allow_plaintext: false,
        }
    }

    /// Its identity for a [`NationalUpstream`].
    pub(crate) fn identity(&self) -> ClientIdentity {
        ClientIdentity {
            app_id: self.app_id.clone(),
            sm2_key: Some(self.sm2.clone()),
            mac_key: Some(self.mac.clone()),
            sm4_key: Some(self.sm4.clone()),
            region_encryption_key: None,
            insecure_plaintext: false,
        }
    }
}

/// A simulator of 200 people in region 330000 that `clients` may call.
pub(crate) async fn start_sim(clients: &[&TestClient], faults: Faults) -> RunningSim {
    let mut config = SimConfig::new(
        clients
            .iter()
            .map(|c| (c.app_id.clone(), c.credentials()))
            .collect(),
    );
    config.population = 200;
    config.faults = faults;
    config.high_risk_regions = vec!["420106".to_owned()];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(config, SimKeys::generate().unwrap(), listener)
        .await
        .unwrap()
}

/// A national upstream to `sim` as `client`.
pub(crate) fn upstream_to(
    sim: &RunningSim,
    client: &TestClient,
    policy: UpstreamPolicy,
) -> NationalUpstream {
    let mut config = NationalUpstreamConfig::new(
        "330000",
        sim.base_url(),
        client.identity(),
        sim.public_keys().response.clone(),
    );
    config.policy = policy;
    NationalUpstream::new(config).unwrap()
}

/// The `user` block of the `i`-th person of `sim`.
pub(crate) fn user(sim: &RunningSim, i: usize) -> Value {
    sim.with_population(|p| {
        let p = p.get(i).unwrap();
        json!({"idType": "10", "idNo": p.id_no, "name": p.name})
    })
}

/// Now as `yyyy-MM-dd HH:mm:ss`, a minute ago (declarations may not be in the future).
pub(crate) fn now_text() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    DateTime::from_unix(now - 60).to_string()
}

/// A verifier block.
pub(crate) fn verifier() -> Value {
    json!({"orgName": "测试场所", "deviceId": "dev-001"})
}
