//! Tests of the simulator: the population, tickets, the clients file, and the services
//! over real HTTP on `127.0.0.1:0`.

use std::collections::HashSet;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::population::{ColourMix, Population};
use super::testutil::{TestClient, now_text, start_sim, upstream_to, user, verifier};
use super::ticket::{TicketError, TicketKey};
use super::*;
use crate::code::{Claims, CodeId, Colour, IssuerKey, issue};
use crate::envelope::{
    RequestEncryption, RequestHeader, RequestSigner, open_response, random_id, seal_request,
};
use crate::national::idno;
use crate::national::time::Date;
use crate::national::validate::{Context, validate_value};
use crate::standard::{Direction, ReturnCode, ServiceName, Standard};
use crate::upstream::{Upstream, UpstreamError, UpstreamPolicy};

mod refusals;

const NOW: i64 = 1_700_000_000;

#[test]
fn population_is_deterministic_with_valid_id_numbers() {
    let std = Standard::embedded();
    let a =
        Population::generate(7, 300, "330000", ColourMix::default(), &std.divisions, NOW).unwrap();
    let b =
        Population::generate(7, 300, "330000", ColourMix::default(), &std.divisions, NOW).unwrap();
    assert!(a.iter().eq(b.iter()), "same seed, same people");
    let c =
        Population::generate(8, 300, "330000", ColourMix::default(), &std.divisions, NOW).unwrap();
    assert!(!a.iter().eq(c.iter()), "another seed, other people");

    let today = Date::beijing_today(NOW);
    let mut codes = HashSet::new();
    for p in a.iter() {
        let info = idno::check(&p.id_no, &std.divisions, today).unwrap();
        assert!(p.id_no.starts_with("33"), "a person of Zhejiang");
        assert!(std.divisions.is_current(&p.household_region));
        assert_eq!(info.sex, p.sex);
        assert_eq!(info.birth, p.birth);
        assert!(p.name.chars().count() >= 2 && p.name.chars().count() <= 4);
        assert!(p.phone.len() == 11 && p.phone.starts_with('1'));
        assert!(p.vaccine.doses <= 4);
        assert!(codes.insert(p.code_id.clone()));
        assert_eq!(a.find_id("10", &p.id_no).and_then(|i| a.get(i)), Some(p));
        assert_eq!(a.find_token(&p.user_token).and_then(|i| a.get(i)), Some(p));
    }
    assert_eq!(
        a.find_id("20", &a.get(0).unwrap().id_no),
        None,
        "only ID cards"
    );
}

#[test]
fn colour_mix_is_roughly_honoured() {
    let std = Standard::embedded();
    let mix = ColourMix::parse("90:7:3").unwrap();
    let pop = Population::generate(1, 2000, "330000", mix, &std.divisions, NOW).unwrap();
    let count = |c: Colour| pop.iter().filter(|p| p.colour == c).count();
    assert!(
        (1700..1900).contains(&count(Colour::Green)),
        "{}",
        count(Colour::Green)
    );
    assert!((80..200).contains(&count(Colour::Yellow)));
    assert!((20..110).contains(&count(Colour::Red)));
    assert!(ColourMix::parse("0:0:0").is_err());
    assert!(ColourMix::parse("90:10").is_err());
}

#[test]
fn population_refuses_an_unknown_region() {
    let std = Standard::embedded();
    let r = Population::generate(1, 10, "990000", ColourMix::default(), &std.divisions, NOW);
    assert!(matches!(r, Err(SimError::Config(_))));
}

#[test]
fn tickets_bind_code_client_and_time() {
    let iss = IssuerId::parse("33000001").unwrap();
    let key = TicketKey::new(iss.clone(), Sm4Key::generate().unwrap()).unwrap();
    let cid = "0123456789abcdef0123456789abcdef";
    let t = key.seal(cid, "A1", NOW, 600).unwrap();
    assert!(t.starts_with("33000001.") && t.len() <= 1024);
    assert_eq!(key.open(&t, "A1", NOW + 599).unwrap(), cid);
    assert_eq!(key.open(&t, "A2", NOW), Err(TicketError::WrongClient));
    assert_eq!(key.open(&t, "A1", NOW + 600), Err(TicketError::Expired));

    let mut tampered = t.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(key.open(&tampered, "A1", NOW), Err(TicketError::Malformed));
    let other = TicketKey::new(iss, Sm4Key::generate().unwrap()).unwrap();
    assert_eq!(other.open(&t, "A1", NOW), Err(TicketError::Malformed));
    assert_eq!(key.open("garbage", "A1", NOW), Err(TicketError::Malformed));
}

#[test]
fn clients_file_reports_every_problem() {
    let text = r#"
        [[client]]
        app_id = "bad id!"
        mac_key_hex = "00"

        [[client]]
        app_id = "A2"
        sm4_key_hex = "xyz"

        [[client]]
        app_id = "A2"
        mac_key_hex = "000102030405060708090a0b0c0d0e0f"
    "#;
    let Err(SimError::Config(problems)) = parse_clients(text, None) else {
        panic!("the file is invalid");
    };
    let all = problems.join("\n");
    assert!(all.contains("app_id must be"), "{all}");
    assert!(all.contains("mac_key_hex"), "{all}");
    assert!(all.contains("sm4_key_hex"), "{all}");
    assert!(
        all.contains("needs an SM2 public key or a MAC key"),
        "{all}"
    );
    assert!(all.contains("appears twice"), "{all}");
    assert!(parse_clients("[[client]]\napp_id = \"A\"\ncolour = 1\n", None).is_err());

    let limits = r#"
        [[client]]
        app_id = "A1"
        mac_key_hex = "000102030405060708090a0b0c0d0e0f"
        rate_limit_per_second = 0

        [[client]]
        app_id = "A2"
        mac_key_hex = "000102030405060708090a0b0c0d0e0f"
        rate_limit_burst = 5

        [[client]]
        app_id = "A3"
        mac_key_hex = "000102030405060708090a0b0c0d0e0f"
        rate_limit_per_second = 3
    "#;
    let Err(SimError::Config(problems)) = parse_clients(limits, None) else {
        panic!("the file is invalid");
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("`A1`") && problems[0].contains("at least 1"));
    assert!(problems[1].contains("`A2`") && problems[1].contains("needs rate_limit_per_second"));
    let fixed = limits.replace("rate_limit_per_second = 0", "rate_limit_per_second = 2");
    let fixed = fixed.replace("rate_limit_burst = 5", "");
    let ok = parse_clients(&fixed, None).unwrap();
    let a3 = ok.rate_limits["A3"];
    assert_eq!(
        (a3.per_second.get(), a3.burst.get()),
        (3, 3),
        "burst defaults to the rate"
    );
    assert!(!ok.rate_limits.contains_key("A2"));
}

#[test]
fn example_clients_file_parses() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sim-national.example.toml");
    let clients = load_clients(&path).unwrap();
    assert!(!clients.credentials.is_empty());
    assert!(
        clients
            .credentials
            .values()
            .any(|c| c.verifying_key.is_some())
    );
    let limit = clients.rate_limits["R0000000001"];
    assert_eq!((limit.per_second.get(), limit.burst.get()), (1, 2));
    // The conformance suite's client has a quota its rate-limit case can meet.
    let suite = clients.rate_limits["C3300000001"];
    assert_eq!((suite.per_second.get(), suite.burst.get()), (100, 50));
    assert_eq!(clients.rate_limits.len(), 2, "the others are unlimited");
}

#[test]
fn writes_public_keys_a_gateway_can_load() {
    let dir = std::env::temp_dir().join(format!("hutong-sim-keys-{}", std::process::id()));
    let keys = SimKeys::generate().unwrap();
    let iss = IssuerId::parse("33000001").unwrap();
    write_public_keys(&dir, &keys.public(), &iss, NOW).unwrap();
    let pem = std::fs::read_to_string(dir.join("sim-response.pub.pem")).unwrap();
    assert_eq!(
        VerifyingKey::from_pem(&pem).unwrap(),
        keys.response.verifying_key()
    );
    let pem = std::fs::read_to_string(dir.join("sim-issuer.pub.pem")).unwrap();
    assert_eq!(
        VerifyingKey::from_pem(&pem).unwrap(),
        keys.issuer.verifying_key()
    );
    let list = std::fs::read(dir.join("sim-trust-list.json")).unwrap();
    let list = crate::trust::parse_unsigned_list(&list).unwrap();
    assert_eq!(list.issuers[0].id, iss);
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends one raw envelope and opens the answer: for what `NationalUpstream` hides
/// (repeated requestIds, foreign clients, bad signatures).
async fn raw_call(
    sim: &RunningSim,
    client: &TestClient,
    service: ServiceName,
    request_id: &str,
    biz: &Value,
    tamper: bool,
) -> (u16, String, Option<Value>) {
    let nonce = random_id().unwrap();
    let header = RequestHeader {
        app_id: &client.app_id,
        service: service.as_str(),
        version: "1.0",
        request_id,
        nonce: &nonce,
        timestamp_ms: now_ms(),
    };
    let mut sealed = seal_request(
        &header,
        biz,
        RequestSigner::Sm2(&client.sm2),
        RequestEncryption::RegisteredKey(&client.sm4),
    )
    .unwrap();
    if tamper {
        sealed.envelope.nonce = random_id().unwrap();
        sealed.body = serde_json::to_string(&sealed.envelope).unwrap();
    }
    let http: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(format!("{}/phic/v1/{service}", sim.base_url()))
        .body(Full::new(Bytes::from(sealed.body)))
        .unwrap();
    let resp = http.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let opened = open_response(
        &body,
        &sealed.session,
        Some(&sim.public_keys().response),
        &EnvelopeLimits::default(),
    )
    .unwrap();
    (status, opened.envelope.code, opened.biz)
}

fn assert_valid_response(service: ServiceName, biz: &Value) {
    let report = validate_value(
        &Standard::embedded(),
        service,
        Direction::Response,
        biz,
        &Context::now(),
    );
    assert!(report.is_valid(), "{service}: {:?}", report.violations);
}

#[tokio::test]
async fn every_answer_validates_against_the_response_schema() {
    let client = TestClient::new("A3300010001");
    let sim = start_sim(&[&client], Faults::default()).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let user = user(&sim, 0);

    let mut answers = Vec::new();
    let declare = json!({"user": user, "temperature": 36.5, "symptoms": "1",
        "highRiskStay": "2", "contactHistory": "2", "declareRegion": "330106",
        "declareTime": now_text()});
    answers.push((
        ServiceName::DeclareHealth,
        up.call(ServiceName::DeclareHealth, &declare, true)
            .await
            .unwrap(),
    ));
    let trip = json!({"user": user, "declareTime": now_text(), "trips": [{"fromRegion": "330106",
        "toRegion": "110105", "transport": "2", "transportNo": "G20", "departTime": now_text()}]});
    answers.push((
        ServiceName::DeclareTrip,
        up.call(ServiceName::DeclareTrip, &trip, true)
            .await
            .unwrap(),
    ));
    let access = json!({"user": user, "authType": "FACE", "authProof": "liveness-ok"});
    let granted = up
        .call(ServiceName::ApplyCodeAccess, &access, false)
        .await
        .unwrap();
    let auth = granted["authCode"].as_str().unwrap().to_owned();
    answers.push((ServiceName::ApplyCodeAccess, granted));
    let generate = json!({"authCode": auth, "output": "MATRIX", "withNational": true});
    let code = up
        .call(ServiceName::GenerateCode, &generate, false)
        .await
        .unwrap();
    let content = code["codeContent"].as_str().unwrap().to_owned();
    assert!(content.starts_with("https://code.sim-330000.example.cn/phic/c?v=1&cid="));
    assert!(content.contains("&pc=PHIC1."));
    let width = code["width"].as_u64().unwrap() as usize;
    assert_eq!(code["matrix"].as_str().unwrap().len(), width * width);
    answers.push((ServiceName::GenerateCode, code));
    let verify = json!({"codeContent": content, "verifier": verifier()});
    let verified = up
        .call(ServiceName::VerifyCode, &verify, false)
        .await
        .unwrap();
    let ticket = verified["bizExtData"].as_str().unwrap().to_owned();
    answers.push((ServiceName::VerifyCode, verified));
    let query = json!({"bizExtData": ticket, "scope": ["code", "health", "nucleic", "vaccine"]});
    answers.push((
        ServiceName::QueryHealthInfo,
        up.call(ServiceName::QueryHealthInfo, &query, false)
            .await
            .unwrap(),
    ));
    let correct = json!({"user": user, "authCode": auth, "reason": "核酸结果有误",
        "items": [{"element": "nucleicResult", "currentValue": "2", "claimedValue": "1"}]});
    answers.push((
        ServiceName::CorrectHealthInfo,
        up.call(ServiceName::CorrectHealthInfo, &correct, true)
            .await
            .unwrap(),
    ));

    assert_eq!(answers.len(), 7);
    for (service, biz) in &answers {
        assert_valid_response(*service, biz);
    }
    assert_eq!(sim.corrections(), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn declarations_reevaluate_the_colour() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let green = sim
        .with_population(|p| p.iter().position(|x| x.colour == Colour::Green))
        .unwrap();
    let user = user(&sim, green);
    let base = json!({"user": user, "symptoms": "1", "highRiskStay": "2",
        "contactHistory": "2", "declareRegion": "330106", "declareTime": now_text()});

    let mut fever = base.clone();
    fever["temperature"] = json!(38.1);
    let a = up
        .call(ServiceName::DeclareHealth, &fever, true)
        .await
        .unwrap();
    assert_eq!(a["codeColor"], "01");
    let mut well = base.clone();
    well["temperature"] = json!(36.4);
    let a = up
        .call(ServiceName::DeclareHealth, &well, true)
        .await
        .unwrap();
    assert_eq!(
        a["codeColor"], "00",
        "a healthy declaration lifts its own yellow"
    );
    let mut contact = base.clone();
    contact["contactHistory"] = json!("1");
    assert_eq!(
        up.call(ServiceName::DeclareHealth, &contact, true)
            .await
            .unwrap()["codeColor"],
        "01"
    );

    let trip = json!({"user": user, "declareTime": now_text(), "trips": [{"fromRegion": "420106",
        "toRegion": "330106", "transport": "1", "departTime": now_text()}]});
    let a = up
        .call(ServiceName::DeclareTrip, &trip, true)
        .await
        .unwrap();
    assert_eq!(
        (a["codeColor"].as_str(), a["riskAreaVisited"].as_str()),
        (Some("01"), Some("2"))
    );
}

#[tokio::test]
async fn repeated_request_id_gets_the_same_answer() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let user = user(&sim, 3);
    let access = json!({"user": user, "authType": "SMS", "authProof": "123456"});
    let auth = up
        .call(ServiceName::ApplyCodeAccess, &access, false)
        .await
        .unwrap()["authCode"]
        .clone();
    let correct = json!({"user": user, "authCode": auth, "reason": "信息有误",
        "items": [{"element": "vaccineDoses", "claimedValue": "3"}]});
    let rid = random_id().unwrap();
    let first = raw_call(
        &sim,
        &client,
        ServiceName::CorrectHealthInfo,
        &rid,
        &correct,
        false,
    )
    .await;
    let again = raw_call(
        &sim,
        &client,
        ServiceName::CorrectHealthInfo,
        &rid,
        &correct,
        false,
    )
    .await;
    assert_eq!(first.0, 202);
    assert_eq!(first.1, "4001");
    assert_eq!(first.2, again.2, "same ticket for the same requestId");
    assert_eq!(sim.corrections(), 1);
    let other = raw_call(
        &sim,
        &client,
        ServiceName::CorrectHealthInfo,
        &random_id().unwrap(),
        &correct,
        false,
    )
    .await;
    assert_ne!(first.2, other.2);
}
