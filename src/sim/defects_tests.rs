//! Tests of the seeded defects: for every [`Defect`], one probe that the clean simulator
//! answers as the standard says and the simulator with that one defect answers otherwise.
//!
//! Each probe is what a conformance suite would send (sealed with `crate::envelope`, over
//! real HTTP on `127.0.0.1:0`), reduced to a short observation string, so the table at the
//! bottom reads as "defect: probe, clean answer, defective answer".

use std::collections::HashSet;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::testutil::{TestClient, user, verifier};
use super::*;
use crate::code::{Claims, CodeId, Colour, IssuerKey, issue};
use crate::envelope::{
    EnvelopeError, EnvelopeLimits, OpenedResponse, RequestEncryption, RequestHeader, RequestSigner,
    SealedRequest, Session, open_response, random_id, seal_request,
};
use crate::mask::mask;
use crate::national::validate::{Context, validate_value};
use crate::standard::{Direction, PersonalClass, ServiceName, Standard};

/// A simulator with three clients, and the secret keys a test needs to make what a
/// conformance suite would have to wait for (expired codes and tickets).
struct Harness {
    sim: RunningSim,
    /// A verifier (venue), unlimited.
    venue: TestClient,
    /// A holder's app, unlimited.
    app: TestClient,
    /// A client limited to 1 request a second, burst 2.
    limited: TestClient,
    /// The simulator's own issuer key.
    issuer: IssuerKey,
    /// The simulator's own ticket key.
    tickets: TicketKey,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// One answer as it came off the wire.
struct Raw {
    status: u16,
    retry_after: Option<String>,
    body: Bytes,
    session: Session,
}

/// How to seal a probe; the default is an SM2-signed, SM4-encrypted, fresh request.
#[derive(Default)]
struct Opts {
    request_id: Option<String>,
    timestamp_ms: Option<u64>,
    mac: bool,
    plaintext: bool,
    forge_sign: bool,
}

impl Harness {
    async fn start(defects: Defects) -> Self {
        let venue = TestClient::new("V1");
        let app = TestClient::new("P1");
        let limited = TestClient::new("R1");
        let mut config = SimConfig::new(
            [&venue, &app, &limited]
                .iter()
                .map(|c| (c.app_id.clone(), c.credentials()))
                .collect(),
        );
        config.population = 200;
        config.rate_limits = [(
            "R1".to_owned(),
            RateLimitConfig {
                per_second: 1.try_into().unwrap(),
                burst: 2.try_into().unwrap(),
            },
        )]
        .into();
        config.defects = defects;
        let keys = SimKeys::generate().unwrap();
        let issuer = IssuerKey::new(config.issuer.clone(), issuer_kid(), keys.issuer.clone());
        let tickets = TicketKey::new(config.issuer.clone(), keys.ticket.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = start(config, keys, listener).await.unwrap();
        Self {
            sim,
            venue,
            app,
            limited,
            issuer,
            tickets,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn seal(
        &self,
        client: &TestClient,
        service: ServiceName,
        biz: &Value,
        o: &Opts,
    ) -> SealedRequest {
        let nonce = random_id().unwrap();
        let request_id = o.request_id.clone().unwrap_or_else(|| random_id().unwrap());
        let header = RequestHeader {
            app_id: &client.app_id,
            service: service.as_str(),
            version: "1.0",
            request_id: &request_id,
            nonce: &nonce,
            timestamp_ms: o.timestamp_ms.unwrap_or_else(now_ms),
        };
        let signer = if o.mac {
            RequestSigner::HmacSm3(&client.mac)
        } else {
            RequestSigner::Sm2(&client.sm2)
        };
        let encryption = if o.plaintext {
            RequestEncryption::InsecurePlaintext
        } else {
            RequestEncryption::RegisteredKey(&client.sm4)
        };
        let mut sealed = seal_request(&header, biz, signer, encryption).unwrap();
        if o.forge_sign {
            // Signed over another nonce: a well-formed signature that does not verify.
            sealed.envelope.nonce = random_id().unwrap();
            sealed.body = serde_json::to_string(&sealed.envelope).unwrap();
        }
        sealed
    }

    async fn send(&self, service: ServiceName, sealed: &SealedRequest) -> Raw {
        let req = http::Request::post(format!("{}/phic/v1/{service}", self.sim.base_url()))
            .body(Full::new(Bytes::from(sealed.body.clone())))
            .unwrap();
        let resp = self.http.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Raw {
            status,
            retry_after,
            body,
            session: sealed.session.clone(),
        }
    }

    async fn call(&self, client: &TestClient, service: ServiceName, biz: &Value, o: &Opts) -> Raw {
        let sealed = self.seal(client, service, biz, o);
        self.send(service, &sealed).await
    }

    /// Opens an answer as a conforming client does, trusting the published response key.
    fn open(&self, raw: &Raw) -> Result<OpenedResponse, EnvelopeError> {
        open_response(
            &raw.body,
            &raw.session,
            Some(&self.sim.public_keys().response),
            &EnvelopeLimits::default(),
        )
    }

    /// The return code of an answer a conforming client accepts, or why it refuses it.
    fn read(&self, raw: &Raw) -> String {
        match self.open(raw) {
            Ok(o) => o.envelope.code,
            Err(e) => format!("refused {e:?}"),
        }
    }

    /// The business content of a success; panics on anything else.
    async fn ok(&self, client: &TestClient, service: ServiceName, biz: &Value) -> Value {
        let raw = self.call(client, service, biz, &Opts::default()).await;
        let opened = self.open(&raw).unwrap();
        assert_eq!(
            opened.envelope.code, "0",
            "{service}: {}",
            opened.envelope.msg
        );
        opened.biz.unwrap()
    }

    /// The first person of `colour`.
    fn first(&self, colour: Colour) -> usize {
        self.sim
            .with_population(|p| p.iter().position(|x| x.colour == colour))
            .unwrap()
    }

    /// A fresh code of person `i`, from `generateCode` by the holder's app.
    async fn code_of(&self, i: usize) -> String {
        let token = self
            .sim
            .with_population(|p| p.get(i).unwrap().user_token.clone());
        let biz = json!({"userToken": token});
        let code = self.ok(&self.app, ServiceName::GenerateCode, &biz).await;
        code["codeContent"].as_str().unwrap().to_owned()
    }

    /// `verifyCode` of `content` by the venue.
    async fn verify(&self, content: &str) -> Raw {
        let biz = json!({"codeContent": content, "verifier": verifier()});
        self.call(&self.venue, ServiceName::VerifyCode, &biz, &Opts::default())
            .await
    }

    /// The venue's verifyCode answer about person `i`.
    async fn verified(&self, i: usize) -> Value {
        let content = self.code_of(i).await;
        let raw = self.verify(&content).await;
        self.open(&raw).unwrap().biz.unwrap()
    }

    /// A PHIC1 token for person `i`'s code id, signed by `key`, valid from `iat` to `exp`.
    fn token(&self, key: &IssuerKey, i: usize, iat: i64, exp: i64) -> String {
        let cid = self
            .sim
            .with_population(|p| p.get(i).unwrap().code_id.clone());
        let claims = Claims {
            cid: CodeId::parse(cid.as_str()).unwrap(),
            col: Colour::Green,
            iat,
            exp,
            nc: None,
        };
        issue(key, &claims).unwrap()
    }

    fn access(&self, i: usize) -> Value {
        json!({"user": user(&self.sim, i), "authType": "FACE", "authProof": "ok"})
    }
}

fn now_secs() -> i64 {
    (now_ms() / 1000) as i64
}

fn valid_answer(service: ServiceName, biz: &Value) -> bool {
    validate_value(
        &Standard::embedded(),
        service,
        Direction::Response,
        biz,
        &Context::now(),
    )
    .is_valid()
}

mod probes;

use probes::*;

// ---------------------------------------------------------------------------------------------
// The table: defect, probe, what the clean simulator answers, what the defective one does.

macro_rules! defect_probes {
    ($($test:ident: $defect:ident => $probe:ident, clean $clean:expr, defective $broken:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                let clean = Harness::start(Defects::NONE).await;
                assert_eq!($probe(&clean).await, $clean, "the clean simulator");
                clean.sim.shutdown().await.unwrap();
                let broken = Harness::start(Defect::$defect.into()).await;
                assert_eq!(
                    $probe(&broken).await,
                    $broken,
                    "with --defect {}",
                    Defect::$defect
                );
                broken.sim.shutdown().await.unwrap();
            }
        )*

        /// The defects the table probes.
        const PROBED: &[Defect] = &[$(Defect::$defect),*];
    };
}

defect_probes! {
    skip_signature_check_accepts_a_forged_sign: SkipSignatureCheck => forged_sign,
        clean "1003", defective "0";
    wrong_canonical_order_fails_the_clients_signature_check: WrongCanonicalOrder =>
        answer_signatures,
        clean "0, 0", defective "refused SignatureInvalid, refused SignatureInvalid";
    accept_replay_answers_a_repeated_nonce: AcceptReplay => replayed_nonce,
        clean "1004", defective "0";
    accept_stale_timestamp_answers_a_request_outside_the_window: AcceptStaleTimestamp =>
        stale_timestamp,
        clean "1004", defective "0";
    leak_id_number_shows_the_whole_id_number: LeakIdNumber => id_number_masking,
        clean "masked", defective "full";
    leak_name_shows_the_whole_name: LeakName => name_masking,
        clean "masked", defective "full";
    expired_code_wrong_code_answers_3001: ExpiredCodeWrongCode => expired_code,
        clean "3002", defective "3001";
    ignore_rate_limit_never_answers_1007: IgnoreRateLimit => over_the_rate_limit,
        clean "1007 429 retry-after 1", defective "none refused";
    wrong_colour_map_shows_yellow_as_green: WrongColourMap => yellow_person,
        clean "verify 01 query 01", defective "verify 00 query 00";
    wrong_response_key_fails_the_published_key: WrongResponseKey => sm2_answer,
        clean "0", defective "refused SignatureInvalid";
    drop_required_field_leaves_out_update_time: DropRequiredField => verify_answer_shape,
        clean "updateTime yyyy-MM, valid", defective "no updateTime, invalid";
    unknown_app_wrong_code_answers_1003: UnknownAppWrongCode => unknown_app,
        clean "1005 401", defective "1003 401";
    ticket_any_client_lets_another_client_read: TicketAnyClient => someone_elses_ticket,
        clean "3005", defective "0";
    ticket_no_expiry_accepts_an_expired_ticket: TicketNoExpiry => expired_ticket,
        clean "3005", defective "0";
    accept_plaintext_from_a_production_client: AcceptPlaintext =>
        plaintext_from_a_production_client,
        clean "1006 403", defective "0 200";
    wrong_request_id_fails_the_clients_request_id_check: WrongRequestId => sm2_answer,
        clean "0", defective "refused RequestIdMismatch";
    untrusted_issuer_accepted_answers_success: UntrustedIssuerAccepted => untrusted_issuer,
        clean "3003", defective "0";
    bad_time_format_breaks_the_schema: BadTimeFormat => verify_answer_shape,
        clean "updateTime yyyy-MM, valid", defective "updateTime yyyy/MM, invalid";
    duplicate_correction_accepted_answers_4001_again: DuplicateCorrectionAccepted =>
        reused_correction_request_id,
        clean "4001 202, 4002 409", defective "4001 202, 4001 202";
    missing_signature_on_error_sends_unsigned_errors: MissingSignatureOnError =>
        error_and_success_signatures,
        clean "error 1005, success 0",
        defective "error refused MissingParameter(\"sign\"), success 0";
    wrong_http_status_answers_errors_with_200: WrongHttpStatus => error_statuses,
        clean "1005 401, 2001 404", defective "1005 200, 2001 200";
    skip_business_validation_answers_a_request_without_parameters: SkipBusinessValidation =>
        no_parameters,
        clean "1001", defective "0";
}

#[test]
fn every_defect_is_probed_once() {
    let probed: HashSet<Defect> = PROBED.iter().copied().collect();
    assert_eq!(probed.len(), PROBED.len(), "a defect is probed twice");
    let all: HashSet<Defect> = Defect::ALL.into_iter().collect();
    assert_eq!(probed, all);
}

#[test]
fn defect_names_round_trip_and_are_unique() {
    let mut names = HashSet::new();
    for d in Defect::ALL {
        assert_eq!(d.as_str().parse::<Defect>(), Ok(d));
        assert_eq!(d.to_string(), d.as_str());
        assert!(names.insert(d.as_str()), "{d} twice");
        assert!(
            d.as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{d} is kebab-case"
        );
        assert!(!d.description().is_empty() && !d.description().contains('\n'));
    }
    assert_eq!(names.len(), 22);
}

#[test]
fn an_unknown_defect_is_answered_with_the_list() {
    let e = "skip-signatures".parse::<Defect>().unwrap_err();
    assert_eq!(e.name, "skip-signatures");
    let text = e.to_string();
    assert!(
        text.starts_with("unknown defect `skip-signatures`"),
        "{text}"
    );
    for d in Defect::ALL {
        assert!(text.contains(d.as_str()) && text.contains(d.description()));
    }
    assert!(
        "Skip-Signature-Check".parse::<Defect>().is_err(),
        "exact names only"
    );
}

#[test]
fn a_defect_set_holds_what_was_put_in() {
    let none = Defects::default();
    assert!(none.is_empty() && Defect::ALL.iter().all(|d| !none.contains(*d)));
    assert_eq!(none.to_string(), "none");
    let set: Defects = [Defect::LeakName, Defect::WrongHttpStatus]
        .into_iter()
        .collect();
    assert!(set.contains(Defect::LeakName) && set.contains(Defect::WrongHttpStatus));
    assert!(!set.contains(Defect::LeakIdNumber));
    assert_eq!(set.iter().count(), 2);
    assert_eq!(set.to_string(), "leak-name,wrong-http-status");
    let all: Defects = Defect::ALL.into_iter().collect();
    assert_eq!(all.iter().collect::<Vec<_>>(), Defect::ALL.to_vec());
}
