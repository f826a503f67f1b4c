//! Tests of the region simulator over real HTTP on `127.0.0.1:0`: the two shipped dialects
//! (Zhejiang JSON with its HMAC signature checked, Jiangsu form answered in JSON), a dialect
//! written inline as data alone, faults, routing and configuration problems.

use std::path::Path;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::super::faults::{Faults, GARBAGE_BODY};
use super::super::ticket::TICKET_TTL_SECS;
use super::*;
use crate::code::Colour;
use crate::mask::mask;
use crate::standard::{Direction, PersonalClass, ServiceName, Standard};
use crate::translate;

fn shipped(id: &str) -> Dialect {
    crate::testutil::shipped_dialect(id)
}

fn caller(app_key: &str, secret: &str) -> Caller {
    Caller {
        app_key: app_key.to_owned(),
        secret: secret.to_owned(),
    }
}

async fn start_with(dialect: Dialect, callers: Vec<Caller>) -> RegionSimHandle {
    let config = RegionSimConfig {
        population: 200,
        callers,
        ..RegionSimConfig::default()
    };
    start(dialect, config).await.unwrap()
}

/// The first person of each colour, with their code content.
fn one_of_each_colour(sim: &RegionSimHandle) -> Vec<Sample> {
    let firsts: Vec<usize> = sim.with_population(|pop| {
        [Colour::Green, Colour::Yellow, Colour::Red]
            .iter()
            .map(|c| pop.iter().position(|p| p.colour == *c).unwrap())
            .collect()
    });
    firsts.into_iter().map(|i| sim.sample(i).unwrap()).collect()
}

async fn send(method: &str, url: &str, headers: HeaderMap, body: Bytes) -> (u16, HeaderMap, Bytes) {
    let http: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body))
        .unwrap();
    *req.headers_mut() = headers;
    let resp = http.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

/// Sends `msg` (signed as `caller` when given) to `service` and decodes the answer.
async fn call(
    sim: &RegionSimHandle,
    service: ServiceName,
    caller: Option<&Caller>,
    msg: Value,
) -> (u16, Value) {
    let (headers, body) = wire::seal(sim.dialect(), caller, msg).unwrap();
    let url = sim.service_url(service).unwrap();
    let (status, headers, body) = send("POST", &url, headers, body).await;
    let answer = wire::read(sim.dialect(), &headers, &body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
    (status, answer)
}

/// The answer as the gateway reads it: `{code, msg, bizContent}`.
fn national(sim: &RegionSimHandle, service: ServiceName, answer: &Value) -> Value {
    translate::to_national(sim.dialect(), service, Direction::Response, answer)
        .unwrap()
        .body
}

fn zhejiang_verify(content: &str, app_key: &str) -> Value {
    json!({
        "appKey": app_key,
        "bizData": {"qrCode": content, "unitName": "某地铁站", "cityNo": "330106"},
        "deviceId": "G-01",
        "format": "json",
        "requestId": "r-0001",
        "timestamp": "1795393805000",
        "version": "1.0"
    })
}

#[tokio::test]
async fn zhejiang_answers_with_full_values_that_the_engine_masks() {
    let gw = caller("zj-demo-app", "6b1f0c3e9a8d4f2b7c5e1a0d3f9b8c7e");
    let sim = start_with(shipped("zhejiang"), vec![gw.clone()]).await;
    for s in one_of_each_colour(&sim) {
        let content = s.code_content.clone().unwrap();
        assert!(content.starts_with("https://healthcode.zj.example.cn/healthAct/index.html?"));
        let msg = zhejiang_verify(&content, &gw.app_key);
        let (status, answer) = call(&sim, ServiceName::VerifyCode, Some(&gw), msg).await;
        assert_eq!(status, 200);
        assert_eq!(answer["errCode"], json!(0), "{answer}");
        let data = &answer["resultData"]["data"];
        assert_eq!(
            data["name"],
            json!(s.person.name),
            "the back-end sends it whole"
        );
        assert_eq!(data["idcardNo"], json!(s.person.id_no));
        assert_eq!(data["barcode"], json!(s.person.national_code_id.as_str()));

        let n = national(&sim, ServiceName::VerifyCode, &answer);
        assert_eq!(n["code"], json!("0"));
        let biz = &n["bizContent"];
        assert_eq!(biz["codeColor"], json!(s.person.colour.as_str()));
        let verdict = match s.person.colour {
            Colour::Green => "PASS",
            Colour::Red => "DENY",
            _ => "WARN",
        };
        assert_eq!(biz["verifyResult"], json!(verdict));
        assert_eq!(
            biz["nameMasked"],
            json!(mask(PersonalClass::Name, &s.person.name))
        );
        assert_eq!(
            biz["idNoMasked"],
            json!(mask(PersonalClass::Id, &s.person.id_no))
        );
        assert_eq!(biz["issuerRegion"], json!("330000"));
    }
    assert_eq!(sim.requests(), 3);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn zhejiang_refuses_a_bad_signature() {
    let gw = caller("zj-demo-app", "6b1f0c3e9a8d4f2b7c5e1a0d3f9b8c7e");
    let other = caller("zj-other-app", "0000111122223333");
    let sim = start_with(shipped("zhejiang"), vec![gw.clone(), other.clone()]).await;
    let content = sim.sample(0).unwrap().code_content.unwrap();

    // Signed, then changed on the way.
    let (headers, body) = wire::seal(
        sim.dialect(),
        Some(&gw),
        zhejiang_verify(&content, &gw.app_key),
    )
    .unwrap();
    let tampered = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("G-01", "G-02");
    let url = sim.service_url(ServiceName::VerifyCode).unwrap();
    let (status, headers, body) = send("POST", &url, headers, tampered.into()).await;
    assert_eq!(status, 200, "Zhejiang tells failures in errCode");
    let answer = wire::read(sim.dialect(), &headers, &body).unwrap();
    assert_eq!(answer["errCode"], json!(1), "{answer}");
    assert!(
        answer["errMsg"].as_str().unwrap().contains("signature"),
        "{answer}"
    );
    assert!(answer.get("resultData").is_none(), "no data on a refusal");

    // Signed with a secret the simulator does not know.
    let stranger = caller("zj-demo-app", "not-the-secret");
    let msg = zhejiang_verify(&content, &gw.app_key);
    let (_, answer) = call(&sim, ServiceName::VerifyCode, Some(&stranger), msg).await;
    assert_eq!(answer["errCode"], json!(1));
    let n = national(&sim, ServiceName::VerifyCode, &answer);
    assert_eq!(
        n["code"],
        json!("9002"),
        "errCode 1 reads back as the fallback"
    );

    // Unsigned.
    let (headers, body) =
        wire::seal(sim.dialect(), None, zhejiang_verify(&content, &gw.app_key)).unwrap();
    let (_, headers, body) = send("POST", &url, headers, body).await;
    let answer = wire::read(sim.dialect(), &headers, &body).unwrap();
    assert_eq!(answer["errCode"], json!(1));

    // The second caller's own credentials verify.
    let msg = zhejiang_verify(&content, &other.app_key);
    let (_, answer) = call(&sim, ServiceName::VerifyCode, Some(&other), msg).await;
    assert_eq!(answer["errCode"], json!(0), "{answer}");
}

#[tokio::test]
async fn zhejiang_query_reads_a_live_ticket_of_the_caller_only() {
    let gw = caller("zj-demo-app", "6b1f0c3e9a8d4f2b7c5e1a0d3f9b8c7e");
    let sim = start_with(shipped("zhejiang"), vec![gw.clone()]).await;
    let s = sim.sample(3).unwrap();
    let now = i64::try_from(now_ms() / 1000).unwrap();
    let query = |ticket: &str| {
        json!({"appKey": gw.app_key, "bizData": {"ticket": ticket}, "deviceId": "G-01",
            "format": "json", "requestId": "r-0002", "timestamp": "1795393805000",
            "version": "1.0"})
    };
    let ticket = sim
        .state
        .ticket
        .seal(s.person.code_id.as_str(), &gw.app_key, now, TICKET_TTL_SECS)
        .unwrap();
    let (_, answer) = call(
        &sim,
        ServiceName::QueryHealthInfo,
        Some(&gw),
        query(&ticket),
    )
    .await;
    assert_eq!(answer["errCode"], json!(0), "{answer}");
    assert_eq!(answer["resultData"]["data"]["name"], json!(s.person.name));
    let n = national(&sim, ServiceName::QueryHealthInfo, &answer);
    assert_eq!(
        n["bizContent"]["code"]["codeColor"],
        json!(s.person.colour.as_str())
    );
    assert_eq!(n["bizContent"]["person"]["idType"], json!("10"));

    let foreign = sim
        .state
        .ticket
        .seal(
            s.person.code_id.as_str(),
            "someone-else",
            now,
            TICKET_TTL_SECS,
        )
        .unwrap();
    let (_, answer) = call(
        &sim,
        ServiceName::QueryHealthInfo,
        Some(&gw),
        query(&foreign),
    )
    .await;
    assert_eq!(answer["errCode"], json!(1));
    assert_eq!(answer["errMsg"], json!("ticket invalid or expired"));
}

fn jiangsu_verify(content: &str) -> Value {
    json!({"url": content, "source": "A3200010001", "verifierDept": "南京站",
        "verifierName": "王五", "verifierPhone": "13912345678", "token": "t0k3n"})
}

#[tokio::test]
async fn jiangsu_form_is_answered_in_json_with_its_colours() {
    let sim = start_with(shipped("jiangsu"), Vec::new()).await;
    for s in one_of_each_colour(&sim) {
        let content = s.code_content.clone().unwrap();
        let (status, answer) = call(
            &sim,
            ServiceName::VerifyCode,
            None,
            jiangsu_verify(&content),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(answer["resCode"], json!(0), "{answer}");
        let level = match s.person.colour {
            Colour::Green => "1",
            Colour::Yellow => "2",
            _ => "3",
        };
        assert_eq!(answer["res"]["level"], json!(level));
        assert_eq!(answer["res"]["name"], json!(s.person.name));
        let n = national(&sim, ServiceName::VerifyCode, &answer);
        assert_eq!(
            n["bizContent"]["codeColor"],
            json!(s.person.colour.as_str())
        );
        assert_eq!(
            n["bizContent"]["idNoMasked"],
            json!(mask(PersonalClass::Id, &s.person.id_no))
        );
    }
}

#[tokio::test]
async fn jiangsu_unknown_codes_and_bad_bodies_get_its_result_codes() {
    let sim = start_with(shipped("jiangsu"), Vec::new()).await;
    let unknown =
        "https://skm.js.example.cn/healthAct/index.html?qrCode=ffffffffffffffffffffffffffffffff";
    let foreign = "https://healthcode.zj.example.cn/healthAct/index.html?qrCode=V2a1b2";
    for content in [unknown, foreign] {
        let (_, answer) = call(&sim, ServiceName::VerifyCode, None, jiangsu_verify(content)).await;
        assert_eq!(
            answer["resCode"],
            json!(112),
            "3001 is resCode 112: {answer}"
        );
        let n = national(&sim, ServiceName::VerifyCode, &answer);
        assert_eq!(n["code"], json!("3001"));
    }
    // No url at all: 1001, which Jiangsu has no code for.
    let (_, answer) = call(&sim, ServiceName::VerifyCode, None, json!({"token": "t"})).await;
    assert_eq!(answer["resCode"], json!(1));
    // Not UTF-8.
    let url = sim.service_url(ServiceName::VerifyCode).unwrap();
    let (status, headers, body) = send(
        "POST",
        &url,
        HeaderMap::new(),
        Bytes::from_static(b"url=\xff\xfe"),
    )
    .await;
    assert_eq!(status, 200);
    let answer = wire::read(sim.dialect(), &headers, &body).unwrap();
    assert_eq!(answer["resCode"], json!(1), "{answer}");
}

#[tokio::test]
async fn faults_give_garbage_and_errors_in_the_dialect() {
    let sim = start_with(shipped("jiangsu"), Vec::new()).await;
    let content = sim.sample(0).unwrap().code_content.unwrap();
    sim.set_faults(Faults {
        garbage_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    let (headers, body) = wire::seal(sim.dialect(), None, jiangsu_verify(&content)).unwrap();
    let url = sim.service_url(ServiceName::VerifyCode).unwrap();
    let (status, _, answer) = send("POST", &url, headers.clone(), body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(answer, GARBAGE_BODY.as_bytes());

    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    let (_, answer) = call(
        &sim,
        ServiceName::VerifyCode,
        None,
        jiangsu_verify(&content),
    )
    .await;
    assert_eq!(answer, json!({"resCode": 1}));
    let n = national(&sim, ServiceName::VerifyCode, &answer);
    assert_eq!(n["code"], json!("9999"));

    assert!(
        sim.set_faults(Faults {
            error_rate: 2.0,
            ..Faults::default()
        })
        .is_err()
    );
    assert_eq!(sim.requests(), 2);
}

#[tokio::test]
async fn serves_the_dialect_paths_only() {
    let sim = start_with(shipped("jiangsu"), Vec::new()).await;
    let url = sim.service_url(ServiceName::VerifyCode).unwrap();
    assert!(url.ends_with("/skm/verify"));
    let (status, _, _) = send("GET", &url, HeaderMap::new(), Bytes::new()).await;
    assert_eq!(status, 405);
    let other = format!("{}/phic/v1/verifyCode", sim.base_url());
    let (status, _, _) = send("POST", &other, HeaderMap::new(), Bytes::new()).await;
    assert_eq!(status, 404);
    assert_eq!(sim.requests(), 0, "only routed requests count");
    assert!(sim.service_url(ServiceName::GenerateCode).is_none());
}

/// A dialect that exists only as data: JSON, unsigned, prefixed codes, four services.
const TESTLAND: &str = include_str!("testland.toml");

fn testland() -> Dialect {
    Dialect::from_toml("testland", "testland.toml", TESTLAND, &Standard::embedded()).unwrap()
}

#[tokio::test]
async fn a_dialect_written_as_data_alone_is_simulated() {
    let sim = start_with(testland(), Vec::new()).await;
    let i = sim.with_population(|pop| pop.iter().position(|p| p.colour == Colour::Green).unwrap());
    let p = sim.sample(i).unwrap().person;

    let grant = json!({"idcard": p.id_no, "name": p.name});
    let (_, answer) = call(&sim, ServiceName::ApplyCodeAccess, None, grant).await;
    assert_eq!(answer["status"], json!("ok"), "{answer}");
    assert_eq!(answer["uid"], json!(p.user_token));

    let (_, answer) = call(
        &sim,
        ServiceName::GenerateCode,
        None,
        json!({"uid": p.user_token}),
    )
    .await;
    let qr = answer["qr"].as_str().unwrap().to_owned();
    assert_eq!(
        qr,
        format!("tl:qr:{}", p.code_id.as_str()),
        "its own code format"
    );
    assert_eq!(
        answer["holder"],
        json!(p.name),
        "full where the dialect masks"
    );
    assert_eq!(answer["colour"], json!("G"));

    let (_, answer) = call(&sim, ServiceName::VerifyCode, None, json!({"qr": qr})).await;
    assert_eq!(answer["colour"], json!("G"), "{answer}");
    // A rule to a masked national field must mask (the loader says so): the back-end
    // answers in full, and the gateway masks on the way.
    assert_eq!(
        answer["holder"],
        json!(p.name),
        "full where the dialect masks"
    );

    // A fever turns the code yellow, and the next scan says so.
    let declare = json!({"idcard": p.id_no, "temp": 38.2});
    let (_, answer) = call(&sim, ServiceName::DeclareHealth, None, declare).await;
    assert_eq!(answer["colour"], json!("Y"), "{answer}");
    let (_, answer) = call(&sim, ServiceName::VerifyCode, None, json!({"qr": qr})).await;
    assert_eq!(answer["colour"], json!("Y"));

    let (_, answer) = call(
        &sim,
        ServiceName::VerifyCode,
        None,
        json!({"qr": "tl:qr:00ff"}),
    )
    .await;
    assert_eq!(answer["status"], json!("bad-code"));
    let (_, answer) = call(
        &sim,
        ServiceName::DeclareHealth,
        None,
        json!({"idcard": "110101199001011234"}),
    )
    .await;
    assert_eq!(answer["status"], json!("no-person"));
}

#[test]
fn issued_codes_are_recognised_for_every_shipped_dialect() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_REGIONS_DIR);
    let std = Standard::embedded();
    let all = Dialect::load_dir(&dir, &std).unwrap();
    assert!(all.len() >= 2);
    let pop = Population::generate(
        1,
        5,
        "330000",
        Default::default(),
        &std.divisions,
        1_700_000_000,
    )
    .unwrap();
    for d in all.iter().chain(std::iter::once(&testland())) {
        answer::check_code_patterns(d).unwrap_or_else(|e| panic!("{}: {e}", d.id));
        for p in pop.iter() {
            let content = code_content(d, p).unwrap();
            let m = translate::recognise(all.iter().chain(std::iter::once(d)), &content).unwrap();
            assert_eq!(m.dialect, d.id, "{content}");
            assert_eq!(m.code_id, p.code_id.as_str());
        }
    }
}

#[test]
fn configuration_problems_are_all_reported() {
    let std = Standard::embedded();
    let config = RegionSimConfig {
        population: usize::MAX,
        high_risk_regions: vec!["999999".into()],
        faults: Faults {
            error_rate: 3.0,
            ..Faults::default()
        },
        callers: vec![caller("a", ""), caller("a", "s")],
        ..RegionSimConfig::default()
    };
    let problems = config.problems(&shipped("zhejiang"), &std);
    for needle in [
        "error rate 3",
        "population",
        "high-risk region `999999`",
        "caller 1: secret is empty",
        "caller 2: app_key `a` is listed twice",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "`{needle}` missing from {problems:?}"
        );
    }
    let none = RegionSimConfig::default().problems(&shipped("zhejiang"), &std);
    assert!(none.iter().any(|p| p.contains("--secret")), "{none:?}");
    assert!(
        RegionSimConfig::default()
            .problems(&shipped("jiangsu"), &std)
            .is_empty()
    );

    // Two services on one back-end path (their ingress paths stay distinct).
    let shared = TESTLAND.replace(
        "path = \"/api/code\"",
        "path = \"/api/scan\"\ningress_path = \"/api/code\"",
    );
    let d = Dialect::from_toml("shared", "shared.toml", &shared, &std).unwrap();
    let problems = RegionSimConfig::default().problems(&d, &std);
    assert!(
        problems.iter().any(|p| p.contains("share POST /api/scan")),
        "{problems:?}"
    );
    let national = TESTLAND.replace("scheme = \"none\"", "scheme = \"national-sm2\"");
    let d = Dialect::from_toml("nat", "nat.toml", &national, &std).unwrap();
    let problems = RegionSimConfig::default().problems(&d, &std);
    assert!(
        problems.iter().any(|p| p.contains("--national")),
        "{problems:?}"
    );

    assert!(matches!(
        load_dialect(&std::env::temp_dir(), "../etc/passwd", &std),
        Err(RegionSimError::Config(_))
    ));
    assert!(matches!(
        load_dialect(&std::env::temp_dir(), "no-such-dialect", &std),
        Err(RegionSimError::Config(p)) if p[0].contains("no dialect `no-such-dialect`")
    ));
}

#[test]
fn callers_file_reports_every_problem() {
    let ok = parse_callers("[[caller]]\napp_key = \"k\"\nsecret = \"s\"\n").unwrap();
    assert_eq!(ok, vec![caller("k", "s")]);
    let err = parse_callers(
        "[[caller]]\napp_key = \"\"\nsecret = \"\"\n[[caller]]\napp_key = \"\"\nsecret = \"x\"\n",
    )
    .unwrap_err();
    assert_eq!(err.len(), 4, "{err:?}");
    let err = parse_callers("[[caller]]\napp_key = \"k\"\nsecret = \"s\"\nkey = 1\n").unwrap_err();
    assert!(err[0].contains("unknown field"), "{err:?}");
    assert!(parse_callers("").is_err());
    assert!(!format!("{:?}", caller("k", "hidden")).contains("hidden"));
}
