//! Mutual recognition, end to end, with real processes: `hutong serve` and three
//! `hutong sim --region` back-ends (Beijing, Zhejiang and Jiangsu styles) on loopback.
//!
//! The story (issue "Mutual recognition"): a traveler holds a Zhejiang code and travels to
//! Beijing. A Beijing venue verifies the Zhejiang code (mechanism 2) and asks for the
//! traveler's status across regions (mechanism 1): green. Zhejiang pushes red; Beijing hears
//! of it within a second by callback; Beijing's next verification shows red (the cache was
//! purged). A national code is issued (mechanism 3); it verifies offline against the trust
//! list and shows red. The holder's receipt lists every access.
//!
//! Throughout, every gateway answer is scanned for the traveler's full name and ID number;
//! the gateway restarts twice in the middle, and neither a link nor a pending callback (to
//! a Jiangsu back-end that was down at the time) is lost.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use hutong::client::{Exchange, GatewayClient};
use hutong::code::{SystemClock, Verifier, VerifierConfig};
use hutong::crypto::{VerifyingKey, to_hex};
use hutong::standard::ServiceName;
use hutong::trust::{TrustAnchors, TrustRegistry, verify_trust_list};

use crate::support::{Proc, http, root, temp_dir};

/// A valid ID number of someone the test never links (GB 11643 check digit X).
const OTHER_ID_NO: &str = "11010519491231002X";
const BJ: &str = "B1100000001";
/// A second Beijing client whose registration reads Beijing's and Zhejiang's data only.
const BJ2: &str = "B1100000002";
const ZJ: &str = "Z3300000001";
const JS: &str = "J3200000001";
const GW_KEY: &str = "hutong-gw";

/// A child process killed when dropped.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `hutong args…` and waits for its "listening on" line.
fn spawn(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{args:?}: {line}");
    Proc(child)
}

fn sim(dialect: &str, port: u16, secret: &str) -> Proc {
    let regions = root().join("config/regions");
    spawn(&[
        "sim",
        "--region",
        dialect,
        "--regions-dir",
        regions.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--population",
        "200",
        "--app-key",
        GW_KEY,
        "--secret",
        secret,
    ])
}

/// Gateway answers seen, for the privacy scan at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, x: &Exchange) -> Value {
        self.0.push(String::from_utf8_lossy(&x.raw).to_string());
        x.biz.clone().unwrap_or(Value::Null)
    }
}

fn write_config(dir: &Path, port: u16, admin: u16, sims: [(u16, &str); 3]) -> PathBuf {
    for (name, secret) in [
        ("bj", "bj-secret"),
        ("zj", "zj-secret"),
        ("js", "js-secret"),
    ] {
        std::fs::write(dir.join(format!("{name}.secret")), format!("{secret}\n")).unwrap();
    }
    let key_hex = to_hex(GW_KEY.as_bytes());
    let client = |app: &str, region: &str, services: &str, mac: u8, regions: &str| {
        format!(
            r#"
[[client]]
app_id = "{app}"
region = "{region}"
role = "region"
services = [{services}]
regions = [{regions}]
sign_types = ["HMAC-SM3"]
mac_key_hex = "{}"
sm4_key_hex = "{}"
"#,
            to_hex(&[mac; 32]),
            to_hex(&[mac ^ 0x5a; 16])
        )
    };
    let region =
        |code: &str, name: &str, url_port: u16, issuer: &str, dialect: &str, file: &str| {
            format!(
                r#"
[[region]]
code = "{code}"
name = "{name}"
url = "http://127.0.0.1:{url_port}"
issuer_ids = ["{issuer}"]
dialect = "{dialect}"
dialect_credentials = {{ id = "{GW_KEY}", key_hex = "{key_hex}", secret = "@{file}" }}
timeout_ms = 1500
validity_secs = 691200
"#
            )
        };
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
tls_cert_file = "data/certs/server.crt.pem"
tls_key_file = "data/certs/server.key.pem"
client_ca_file = "data/certs/ca.crt.pem"
generate_dev_certs = true

[gateway]
app_id = "GW0000000001"
data_dir = "data"
signing_key_file = "data/keys/gateway-sign.key.pem"
encryption_key_file = "data/keys/gateway-enc.key.pem"
pseudonym_secret_file = "data/keys/pseudonym.hex"
generate_keys = true
dialects_dir = "{dialects}"

[auth]
jwt_key_file = "data/keys/jwt-es256.key.pem"

[audit]
sync = "commit"

[trust]
list_file = "data/trust/trust-list.json"
anchor_key_file = "data/keys/trust-anchor.pub.pem"
anchor_kid = "anchor-1"
dev_issuer_id = "10000099"
dev_issuer_key_file = "data/keys/dev-issuer.key.pem"
{bj}{bj2}{zj}{js}{rbj}{rzj}{rjs}"#,
        dialects = root().join("config/regions").display(),
        bj = client(
            BJ,
            "110105",
            "\"verifyCode\", \"queryHealthInfo\"",
            1,
            "\"*\""
        ),
        bj2 = client(
            BJ2,
            "110105",
            "\"verifyCode\", \"queryHealthInfo\"",
            4,
            "\"110000\", \"330000\""
        ),
        zj = client(
            ZJ,
            "330106",
            "\"applyCodeAccess\", \"generateCode\"",
            2,
            "\"*\""
        ),
        js = client(
            JS,
            "320102",
            "\"verifyCode\", \"queryHealthInfo\"",
            3,
            "\"*\""
        ),
        rbj = region(
            "110000", "北京", sims[0].0, "11000001", "beijing", sims[0].1
        ),
        rzj = region(
            "330000", "浙江", sims[1].0, "33000001", "zhejiang", sims[1].1
        ),
        rjs = region(
            "320000", "江苏", sims[2].0, "32000001", "jiangsu", sims[2].1
        ),
    );
    let path = dir.join("hutong.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn serve(config: &Path) -> Proc {
    spawn(&["serve", "--config", config.to_str().unwrap()])
}

/// Stops the gateway the way an operator does (SIGTERM, drain) and waits for it.
fn stop(mut p: Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let _ = p.0.wait();
    std::mem::forget(p);
}

fn client(dir: &Path, app: &str) -> GatewayClient {
    GatewayClient::from_profile_file(&dir.join(format!("data/clients/{app}.toml"))).unwrap()
}

/// Person `i` of a simulator whose colour is `colour`, searching from `from`.
fn person_with(port: u16, colour: &str, from: usize) -> (usize, Value) {
    (from..200)
        .map(|i| (i, http(port, "GET", &format!("/sim/sample/{i}"), "").1))
        .find(|(_, p)| p["colour"] == colour)
        .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zhejiang_traveler_in_beijing_across_three_regions_and_two_restarts() {
    let dir = temp_dir("recognition");
    std::fs::create_dir_all(&dir).unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let _bj_sim = sim("beijing", ports[0], "bj-secret");
    let _zj_sim = sim("zhejiang", ports[1], "zj-secret");
    let js_sim = sim("jiangsu", ports[2], "js-secret");
    let (gw_port, admin_port) = (free_port(), free_port());
    let config = write_config(
        &dir,
        gw_port,
        admin_port,
        [
            (ports[0], "bj.secret"),
            (ports[1], "zj.secret"),
            (ports[2], "js.secret"),
        ],
    );
    let gw = serve(&config);
    let mut seen = Seen::default();

    // The traveler: a green Zhejiang code holder; Jiangsu, where they also hold a green
    // code, links that code to them (an explicit link request).
    let (zi, traveler) = person_with(ports[1], "00", 0);
    let zj_code = traveler["codeContent"].as_str().unwrap().to_owned();
    let (name, id_no) = (
        traveler["name"].as_str().unwrap().to_owned(),
        traveler["idNo"].as_str().unwrap().to_owned(),
    );
    let (_, js_person) = person_with(ports[2], "00", 0);
    let js_code = js_person["codeContent"].as_str().unwrap().to_owned();
    let user = json!({"idType": "10", "idNo": id_no, "name": name});
    let js = client(&dir, JS);
    // What a link keeps is checked as a status event's is: a colour of the table, a time.
    // And what it keeps on disk is within the standard's lengths (the gateway's own
    // endpoints are not checked against its schemas).
    let long_code = format!("{js_code}{}", "A".repeat(513));
    let long_user = json!({"idType": "10", "idNo": id_no, "name": "张".repeat(51)});
    for (k, v) in [
        ("codeColor", json!("zz")),
        ("updateTime", json!("x")),
        ("codeContent", json!(long_code)),
        ("user", long_user),
    ] {
        let mut body = json!({"user": user, "codeContent": js_code});
        body[k] = v;
        let x = js.call_raw_service("link", &body).await.unwrap();
        assert_eq!(x.code(), "1002", "{k}: {}", String::from_utf8_lossy(&x.raw));
        seen.keep(&x);
    }
    let x = js
        .call_raw_service(
            "statusEvent",
            &json!({"codeIds": ["A".repeat(513)], "codeColor": "10"}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "1002", "{}", String::from_utf8_lossy(&x.raw));
    seen.keep(&x);
    let x = js
        .call_raw_service("link", &json!({"user": user, "codeContent": js_code}))
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    assert_eq!(seen.keep(&x)["linked"], true);
    // A region links only its own codes.
    let x = js
        .call_raw_service("link", &json!({"user": user, "codeContent": zj_code}))
        .await
        .unwrap();
    assert_eq!(x.code(), "1006", "{}", String::from_utf8_lossy(&x.raw));
    seen.keep(&x);

    // 2. A Beijing venue, with a venue code (场所码) the gateway issued for Beijing,
    // verifies the Zhejiang code (mechanism 2): green, masked, and a ticket of the
    // gateway's own, bound to Beijing.
    let bj = client(&dir, BJ);
    let x = bj
        .call_raw_service(
            "venueCode",
            &json!({"venueName": "北京某商场", "region": "110101", "address": "路".repeat(201)}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "1002", "{}", String::from_utf8_lossy(&x.raw));
    seen.keep(&x);
    let x = bj
        .call_raw_service(
            "venueCode",
            &json!({"venueName": "北京某商场", "region": "110101"}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let venue = seen.keep(&x)["venueCode"].as_str().unwrap().to_owned();
    let verify = json!({
        "codeContent": zj_code,
        "verifier": {"orgName": "北京某商场", "deviceId": "BJ-GATE-01"},
        "scene": "VENUE",
        "bizExtData": venue,
    });
    let x = bj.call(ServiceName::VerifyCode, &verify).await.unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let v = seen.keep(&x);
    assert_eq!(v["codeColor"], "00");
    assert_eq!(v["verifyResult"], "PASS");
    assert!(v["nameMasked"].as_str().unwrap().contains('*'));
    let ticket = v["bizExtData"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("00000000."), "{ticket}");
    assert_eq!(v["ticketExpiresIn"], 300);
    // The scan at the venue sends the trip to the traveler's home region, Zhejiang.
    wait_for(
        "the visit reaching Zhejiang",
        Duration::from_secs(5),
        || {
            http(ports[1], "GET", "/sim/callbacks", "")
                .1
                .as_array()
                .is_some_and(|a| {
                    a.iter()
                        .any(|c| c["kind"] == "visit" && c["venueCode"] == venue)
                })
        },
    );

    // The ticket is Beijing's alone: Jiangsu cannot use it (3005).
    let query = json!({"bizExtData": ticket, "scope": ["code", "regions"]});
    let x = js.call(ServiceName::QueryHealthInfo, &query).await.unwrap();
    assert_eq!(x.code(), "3005", "{}", String::from_utf8_lossy(&x.raw));
    seen.keep(&x);
    // Neither a ticket nor an authCode: 2003.
    let x = bj
        .call(ServiceName::QueryHealthInfo, &json!({"scope": ["code"]}))
        .await
        .unwrap();
    assert_eq!(x.code(), "2003", "{}", String::from_utf8_lossy(&x.raw));
    seen.keep(&x);

    // Restart 1: the links survive, and so does the ticket (its key is derived from the
    // gateway's secret).
    stop(gw);
    let gw = serve(&config);

    // 3. Mechanism 1: Beijing asks for the status across regions and gets green, from both
    // Zhejiang and Jiangsu.
    let bj = client(&dir, BJ);
    let x = bj.call(ServiceName::QueryHealthInfo, &query).await.unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let q = seen.keep(&x);
    assert_eq!(q["code"]["codeColor"], "00", "{q}");
    assert_eq!(q["partial"], false, "{q}");
    let regions: Vec<&str> = q["regionStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["320000", "330000"], "{q}");
    assert!(q["person"]["idNoMasked"].as_str().unwrap().contains('*'));
    // The same ticket with someone else's `user` block: the answer is the ticket's person's,
    // and so is the audit record (the other person's receipt does not show it; step 7).
    let mut other_user = query.clone();
    other_user["user"] = json!({"idType": "10", "idNo": OTHER_ID_NO, "name": "李四"});
    let x = bj
        .call(ServiceName::QueryHealthInfo, &other_user)
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    assert_eq!(seen.keep(&x)["person"], q["person"]);
    // A client registered for Beijing's and Zhejiang's data verifies the same code and asks
    // the same question: Jiangsu's status is not in its answer.
    let bj2 = client(&dir, BJ2);
    let mut verify2 = verify.clone();
    verify2.as_object_mut().unwrap().remove("bizExtData");
    let x = bj2.call(ServiceName::VerifyCode, &verify2).await.unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let ticket2 = seen.keep(&x)["bizExtData"].as_str().unwrap().to_owned();
    let query2 = json!({"bizExtData": ticket2, "scope": ["code", "regions"]});
    let x = bj2
        .call(ServiceName::QueryHealthInfo, &query2)
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let q2 = seen.keep(&x);
    let regions2: Vec<&str> = q2["regionStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions2, ["330000"], "{q2}");

    // Beijing's venue scans the code again: still green, and now cached at the gateway.
    let x = bj.call(ServiceName::VerifyCode, &verify).await.unwrap();
    assert_eq!(seen.keep(&x)["codeColor"], "00");

    // 4. Jiangsu's back-end goes down; Zhejiang's health office turns the traveler red and
    // Zhejiang pushes the event.
    drop(js_sim);
    let (_, set) = http(
        ports[1],
        "POST",
        "/sim/status",
        &json!({"index": zi, "colour": "10"}).to_string(),
    );
    assert_eq!(set["colour"], "10");
    let zj = client(&dir, ZJ);
    let red =
        json!({"codeIds": [set["codeId"]], "codeColor": "10", "updateTime": set["updateTime"]});
    let x = zj.call_raw_service("statusEvent", &red).await.unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let e = seen.keep(&x);
    assert_eq!(e["notified"], 2, "Beijing and Jiangsu: {e}");
    assert!(e["purged"].as_u64().unwrap() >= 1, "{e}");
    // The same event again (a retry, a periodic sync): no second alert under a fresh id.
    let x = zj.call_raw_service("statusEvent", &red).await.unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    assert_eq!(
        seen.keep(&x)["notified"],
        0,
        "a repeat told the regions again"
    );
    // Within a second, Beijing's back-end has the callback, in its own dialect.
    let took = wait_for("Beijing callback", Duration::from_secs(1), || {
        http(ports[0], "GET", "/sim/callbacks", "")
            .1
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["colour"] == "10"))
    });
    let (_, got) = http(ports[0], "GET", "/sim/callbacks", "");
    assert_eq!(got[0]["sourceRegion"], "330000", "{got}");
    assert_eq!(got[0]["codeId"], set["codeId"], "{got}");
    println!("Beijing received the callback after {took:?}");
    // The admin listener counts it (after the visit callback to Zhejiang earlier in this
    // run: two delivered), and the failed attempt for Jiangsu (down), whose callback is
    // the one pending. The counts follow the outbox's records, which may come a moment
    // after the simulator has the callback.
    let metric = |name: &str| -> u64 {
        let text = crate::support::http_text(admin_port, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    wait_for("callback metrics", Duration::from_secs(5), || {
        metric("hutong_callbacks_delivered_total") == 2
            && metric("hutong_callbacks_pending") == 1
            && metric("hutong_callback_failures_total") >= 1
    });
    assert_eq!(metric("hutong_callbacks_abandoned_total"), 0);
    // With Jiangsu down, a cross-region query answers with what the others say, marked
    // partial, and the admin listener counts the region that gave nothing.
    let unanswered = metric("hutong_regions_unanswered_total");
    let asked = metric("hutong_upstream_calls_total");
    let x = bj.call(ServiceName::QueryHealthInfo, &query).await.unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let q = seen.keep(&x);
    assert_eq!(q["partial"], true, "{q}");
    assert_eq!(q["unavailableRegions"], json!(["320000"]), "{q}");
    assert_eq!(metric("hutong_regions_unanswered_total"), unanswered + 1);
    assert_eq!(
        metric("hutong_upstream_calls_total"),
        asked + 2,
        "both linked regions were asked, the one down included"
    );

    // 5. Beijing's next verification shows red: the cached green was purged.
    let x = bj.call(ServiceName::VerifyCode, &verify).await.unwrap();
    let v = seen.keep(&x);
    assert_eq!(v["codeColor"], "10", "{v}");
    assert_eq!(v["verifyResult"], "DENY");

    // Restart 2, with Jiangsu's callback still pending; then Jiangsu's back-end returns and
    // receives it.
    stop(gw);
    let gw = serve(&config);
    let _js_sim = sim("jiangsu", ports[2], "js-secret");
    wait_for(
        "Jiangsu callback after the restart",
        Duration::from_secs(30),
        || {
            http(ports[2], "GET", "/sim/callbacks", "")
                .1
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["colour"] == "10"))
        },
    );

    // 6. Mechanism 3: Zhejiang, for its resident, gets a consent and a national code.
    let x = zj
        .call(
            ServiceName::ApplyCodeAccess,
            &json!({"user": user, "authType": "FACE", "authProof": "face-match-0.98"}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let consent = seen.keep(&x);
    let auth_code = consent["authCode"].as_str().unwrap().to_owned();
    let x = zj
        .call(ServiceName::GenerateCode, &json!({"authCode": auth_code}))
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    let code = seen.keep(&x);
    assert_eq!(code["codeColor"], "10", "{code}");
    let url = code["codeContent"].as_str().unwrap();
    assert!(url.contains("/phic/c?"), "{url}");
    // The page may not be framed by another site, nor its type sniffed.
    let page_path = &url[url.find("/phic/c?").unwrap()..];
    let (status, csp, _) = zj
        .get_with(page_path, "content-security-policy")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(csp.unwrap_or_default().contains("frame-ancestors 'none'"));
    let (_, frames, _) = zj.get_with(page_path, "x-frame-options").await.unwrap();
    assert_eq!(frames.as_deref(), Some("DENY"));
    let (_, sniff, _) = zj
        .get_with(page_path, "x-content-type-options")
        .await
        .unwrap();
    assert_eq!(sniff.as_deref(), Some("nosniff"));
    // Offline, against the signed trust list: red.
    let wire = std::fs::read(dir.join("data/trust/trust-list.json")).unwrap();
    let anchor = VerifyingKey::from_pem(
        &std::fs::read_to_string(dir.join("data/keys/trust-anchor.pub.pem")).unwrap(),
    )
    .unwrap();
    let list = verify_trust_list(&wire, &TrustAnchors::new().with("anchor-1", anchor)).unwrap();
    let verifier = Verifier::new(
        std::sync::Arc::new(TrustRegistry::new(list).unwrap()),
        std::sync::Arc::new(SystemClock),
        VerifierConfig::default(),
    );
    let checked = verifier.verify_content(url).unwrap();
    assert_eq!(checked.claims.col.as_str(), "10");
    // The gateway publishes that list, the one in force: a file overwritten since (a stale
    // mirror's older list, a half-written copy) is not what verifiers fetch.
    let (status, _, published) = zj.get("/phic/v1/trust-list").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(published.as_ref(), wire.as_slice());
    // HEAD is the same answer without its body: its length and its ETag.
    let (status, etag, body) = zj.head_with("/phic/v1/trust-list", "etag").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.is_empty(), "HEAD sent a body");
    assert_eq!(
        etag.as_deref(),
        Some(hutong::trust::list::etag_of(&wire).as_str())
    );
    let (_, length, _) = zj
        .head_with("/phic/v1/trust-list", "content-length")
        .await
        .unwrap();
    assert_eq!(length, Some(wire.len().to_string()));
    let list_file = dir.join("data/trust/trust-list.json");
    std::fs::write(&list_file, b"{\"version\": 1, \"half").unwrap();
    let (status, _, published) = zj.get("/phic/v1/trust-list").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        published.as_ref(),
        wire.as_slice(),
        "served the file as it is now"
    );
    std::fs::write(&list_file, &wire).unwrap();
    // Signed tokens live at most five minutes (the profile, §8.2), and the answer says when
    // to fetch the next.
    assert_eq!(checked.claims.exp - checked.claims.iat, 300);
    assert_eq!(code["refreshInterval"], 300, "{code}");
    // The traveler's phone opens the URL: the gateway's page, in headless Chromium, shows
    // a QR code that scans back to the URL, drawn in red.
    let shots = dir.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = crate::code_page::screenshot_url(
        &shots,
        "served-page",
        url,
        &["--ignore-certificate-errors"],
    );
    let img = crate::code_page::decode(&png);
    let bbox = crate::code_page::find_qr(&img, url);
    crate::code_page::check_qr_colour(&img, bbox, hutong::render::StatusColour::Red.module_rgb())
        .unwrap();
    // A consent is for its client: Beijing cannot use it.
    let x = bj
        .call(
            ServiceName::QueryHealthInfo,
            &json!({"user": user, "authCode": auth_code, "scope": ["code"]}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "2003", "{}", String::from_utf8_lossy(&x.raw));
    seen.keep(&x);

    // Privacy: no gateway answer carried the full name or ID number.
    for body in &seen.0 {
        assert!(!body.contains(&id_no), "ID number leaked: {body}");
        assert!(!body.contains(&name), "name leaked: {body}");
    }

    // 7. The holder's receipt lists every access.
    stop(gw);
    let receipt_of = |id_no: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args([
                "audit",
                "receipt",
                "--data-dir",
                dir.join("data").to_str().unwrap(),
                "--secret-file",
                dir.join("data/keys/pseudonym.hex").to_str().unwrap(),
                "--id-no",
                id_no,
                "--json",
            ])
            .output()
            .unwrap();
        let receipt = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{receipt}");
        receipt
    };
    let receipt = receipt_of(&id_no);
    for action in [
        "link",
        "venueScan",
        "verifyCode",
        "queryHealthInfo",
        "statusEvent",
        "applyCodeAccess",
        "generateCode",
    ] {
        assert!(
            receipt.contains(action),
            "{action} missing from the receipt: {receipt}"
        );
    }
    for app in [BJ, ZJ, JS] {
        assert!(receipt.contains(app), "{app} missing from the receipt");
    }
    let other = receipt_of(OTHER_ID_NO);
    assert!(
        !other.contains("queryHealthInfo"),
        "a query about the ticket's person is in another's receipt: {other}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
