//! The business semantics of the seven services, as a region's back-end would apply them.
//!
//! Each function takes the opened, validated business content and gives an [`Outcome`]:
//! a return code, a message without personal data, and the business answer. Envelopes,
//! faults and idempotency are handled around them (`mod.rs`). The seeded defects that change
//! business content (`defects.rs`) are applied here, each where it happens.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::code::{Claims, CodeUrl, Colour, issue};
use crate::envelope::random_id;
use crate::mask::mask;
use crate::national::model::{
    ApplyCodeAccessRequest, ApplyCodeAccessResponse, CorrectHealthInfoRequest,
    CorrectHealthInfoResponse, DeclareHealthRequest, DeclareHealthResponse, DeclareTripRequest,
    DeclareTripResponse, GenerateCodeRequest, GenerateCodeResponse, Person as PersonBlock,
    QueryCode, QueryHealth, QueryHealthInfoRequest, QueryHealthInfoResponse, QueryNucleic,
    QueryVaccine, User, VerifyCodeRequest, VerifyCodeResponse,
};
use crate::national::time::DateTime;
use crate::standard::{PersonalClass, ReturnCode, ServiceName, Standard};
use crate::trust::IssuerId;

use super::SimState;
use super::defects::{self, Defect};
use super::grants::Grant;
use super::population::{Declaration, FEVER_CELSIUS, ID_TYPE, Person, Population};
use super::ticket::{TICKET_TTL_SECS, TicketError, TicketKey};

mod query;
pub(super) use query::health_info;
use query::{correct_health_info, query_health_info};

/// Lifetime of an `authCode`, seconds (the schema's maximum `expiresIn`).
pub const AUTH_CODE_TTL_SECS: u32 = 300;

/// How often a code page should fetch a fresh code, seconds.
pub const REFRESH_INTERVAL_SECS: u32 = 60;

/// Days a correction is expected to take.
pub(super) const CORRECTION_DAYS: i64 = 3;

/// What one call comes to.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    /// The return code.
    pub code: ReturnCode,
    /// The message: never personal data.
    pub msg: String,
    /// The business answer.
    pub biz: Option<Value>,
}

impl Outcome {
    /// A success (or accepted) answer with `biz` as its business content.
    pub(super) fn answer(code: ReturnCode, biz: &impl Serialize) -> Self {
        match serde_json::to_value(biz) {
            Ok(v) => Self {
                code,
                msg: if code == ReturnCode::Success {
                    "success"
                } else {
                    "accepted"
                }
                .to_owned(),
                biz: Some(v),
            },
            Err(_) => Self::fail(ReturnCode::SystemError, "answer does not serialise"),
        }
    }

    pub(super) fn fail(code: ReturnCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            biz: None,
        }
    }
}

type Result<T> = std::result::Result<T, Outcome>;

/// Runs one service.
pub(super) fn dispatch(
    state: &SimState,
    service: ServiceName,
    app_id: &str,
    biz: &Value,
    now: i64,
) -> Outcome {
    let result = match service {
        ServiceName::DeclareHealth => parse(biz).and_then(|r| declare_health(state, &r, now)),
        ServiceName::DeclareTrip => parse(biz).and_then(|r| declare_trip(state, &r, now)),
        ServiceName::QueryHealthInfo => {
            parse(biz).and_then(|r| query_health_info(state, app_id, &r, now))
        }
        ServiceName::ApplyCodeAccess => {
            parse(biz).and_then(|r| apply_code_access(state, app_id, &r, now))
        }
        ServiceName::GenerateCode => parse(biz).and_then(|r| generate_code(state, app_id, &r, now)),
        ServiceName::VerifyCode => parse(biz).and_then(|r| verify_code(state, app_id, &r, now)),
        ServiceName::CorrectHealthInfo => {
            parse(biz).and_then(|r| correct_health_info(state, app_id, &r, now))
        }
    };
    result.unwrap_or_else(|o| o)
}

fn parse<T: serde::de::DeserializeOwned>(biz: &Value) -> Result<T> {
    serde_json::from_value(biz.clone()).map_err(|_| {
        Outcome::fail(
            ReturnCode::BadFormat,
            "business content does not fit the model",
        )
    })
}

/// `prefix` followed by 32 random hex digits.
pub(super) fn fresh_id(prefix: &str) -> Result<String> {
    random_id()
        .map(|id| format!("{prefix}{id}"))
        .map_err(|_| Outcome::fail(ReturnCode::SystemError, "random number generator failed"))
}

/// A national date-time text (`yyyy-MM-dd HH:mm:ss`, Beijing time).
pub(super) fn time(unix: i64) -> String {
    DateTime::from_unix(unix).to_string()
}

/// The person a `user` block names: 2001 when nobody holds the document, 2002 when the name
/// does not match it (not real-name verified).
fn find_user(pop: &Population, user: &User) -> Result<usize> {
    let i = pop
        .find_id(&user.id_type, &user.id_no)
        .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "person not found"))?;
    match pop.get(i) {
        Some(p) if p.name == user.name => Ok(i),
        Some(_) => Err(Outcome::fail(
            ReturnCode::NotRealName,
            "name does not match the ID document",
        )),
        None => Err(Outcome::fail(ReturnCode::UserNotFound, "person not found")),
    }
}

fn person(pop: &Population, i: usize) -> Result<&Person> {
    pop.get(i)
        .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "person not found"))
}

fn masked(p: &Person) -> (String, String) {
    (
        mask(PersonalClass::Name, &p.name),
        mask(PersonalClass::Id, &p.id_no),
    )
}

/// Keeps a health declaration and re-evaluates the colour: a fever, a contact or a stay in
/// a high-risk area asks for at least yellow.
pub(super) fn record_declaration(p: &mut Person, d: Declaration, now: i64) {
    let fever = d.temperature.is_some_and(|t| t >= FEVER_CELSIUS);
    p.health_flag = fever || d.contact_history == "1" || d.high_risk_stay == "1";
    p.declaration = Some(d);
    p.reevaluate(now);
}

/// Whether a trip touches a high-risk division or starts abroad.
pub(super) fn risky_trip(
    high_risk: &HashSet<String>,
    from_region: &str,
    to_region: &str,
    from_country: Option<&str>,
) -> bool {
    high_risk.contains(from_region)
        || high_risk.contains(to_region)
        || from_country.is_some_and(|c| c != "CHN" && c != "156")
}

fn declare_health(state: &SimState, r: &DeclareHealthRequest, now: i64) -> Result<Outcome> {
    let declare_id = fresh_id("DH")?;
    let mut pop = state.population_mut();
    let i = find_user(&pop, &r.user)?;
    let p = pop
        .get_mut(i)
        .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "person not found"))?;
    record_declaration(
        p,
        Declaration {
            temperature: r.temperature,
            symptoms: r.symptoms.clone(),
            high_risk_stay: r.high_risk_stay.clone(),
            contact_history: r.contact_history.clone(),
            declare_time: DateTime::parse(&r.declare_time).map_or(now, DateTime::unix),
        },
        now,
    );
    Ok(Outcome::answer(
        ReturnCode::Success,
        &DeclareHealthResponse {
            declare_id,
            code_color: p.colour.as_str().to_owned(),
            update_time: time(p.update_time),
        },
    ))
}

fn declare_trip(state: &SimState, r: &DeclareTripRequest, now: i64) -> Result<Outcome> {
    let trip_declare_id = fresh_id("DT")?;
    let visited = r.trips.iter().any(|t| {
        risky_trip(
            &state.high_risk,
            &t.from_region,
            &t.to_region,
            t.from_country.as_deref(),
        )
    });
    let mut pop = state.population_mut();
    let i = find_user(&pop, &r.user)?;
    let p = pop
        .get_mut(i)
        .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "person not found"))?;
    // A risky trip keeps the flag until the region lifts it; a clean trip does not clear it.
    p.trip_flag |= visited;
    p.reevaluate(now);
    Ok(Outcome::answer(
        ReturnCode::Success,
        &DeclareTripResponse {
            trip_declare_id,
            code_color: p.colour.as_str().to_owned(),
            risk_area_visited: if visited { "2" } else { "1" }.to_owned(),
        },
    ))
}

fn apply_code_access(
    state: &SimState,
    app_id: &str,
    r: &ApplyCodeAccessRequest,
    now: i64,
) -> Result<Outcome> {
    // The schema guarantees a non-empty proof; the simulator accepts any.
    let auth_code = fresh_id("ac")?;
    let pop = state.population();
    let i = find_user(&pop, &r.user)?;
    let user_token = person(&pop, i)?.user_token.clone();
    drop(pop);
    state.grants().insert(
        auth_code.clone(),
        Grant {
            person: i,
            app_id: app_id.to_owned(),
            expires_at: now + i64::from(state.auth_code_ttl_secs),
        },
        now,
    );
    Ok(Outcome::answer(
        ReturnCode::Success,
        &ApplyCodeAccessResponse {
            auth_code,
            user_token,
            expires_in: state.auth_code_ttl_secs,
            code_page_url: None,
        },
    ))
}

/// The person an `authCode` lets `app_id` act for: 2003 when it is unknown, expired, or
/// another client's.
fn granted(state: &SimState, auth_code: &str, app_id: &str, now: i64) -> Result<usize> {
    state
        .grants()
        .check(auth_code, app_id, now)
        .ok_or_else(|| Outcome::fail(ReturnCode::NotAuthorised, "authCode unknown or expired"))
}

fn generate_code(
    state: &SimState,
    app_id: &str,
    r: &GenerateCodeRequest,
    now: i64,
) -> Result<Outcome> {
    let by_auth = match &r.auth_code {
        Some(c) => Some(granted(state, c, app_id, now)?),
        None => None,
    };
    let pop = state.population();
    let by_token = match &r.user_token {
        Some(t) => Some(
            pop.find_token(t)
                .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "unknown user token"))?,
        ),
        None => None,
    };
    let i = match (by_token, by_auth) {
        (Some(a), Some(b)) if a != b => {
            return Err(Outcome::fail(
                ReturnCode::NotAuthorised,
                "authCode is for another person",
            ));
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(Outcome::fail(
                ReturnCode::NotAuthorised,
                "userToken or authCode is required",
            ));
        }
    };
    let p = person(&pop, i)?;
    let claims = Claims {
        cid: p.code_id.clone(),
        col: p.colour,
        iat: now,
        exp: now + i64::from(state.code_ttl_secs),
        nc: r
            .with_national
            .unwrap_or(false)
            .then(|| p.national_code_id.clone()),
    };
    let fail = |_| Outcome::fail(ReturnCode::SystemError, "code could not be issued");
    let token = issue(&state.issuer_key, &claims).map_err(fail)?;
    let code_content = CodeUrl::for_token(&state.code_host, &token)
        .map_err(fail)?
        .to_url();
    let answer = code_answer(
        &state.std,
        p,
        code_content,
        Some(claims.exp),
        r.output.as_deref(),
    )?;
    Ok(Outcome::answer(ReturnCode::Success, &answer))
}

/// The answer of `generateCode` for `p`'s `code_content`, with the QR matrix when `output`
/// asks for `MATRIX`.
pub(super) fn code_answer(
    std: &Standard,
    p: &Person,
    code_content: String,
    expires_at: Option<i64>,
    output: Option<&str>,
) -> Result<GenerateCodeResponse> {
    let (matrix, width) = if output == Some("MATRIX") {
        let (side, dark) = crate::render::qr_matrix(&code_content)
            .map_err(|_| Outcome::fail(ReturnCode::SystemError, "code could not be drawn"))?;
        let bits: String = dark.iter().map(|d| if *d { '1' } else { '0' }).collect();
        (Some(bits), Some(side))
    } else {
        (None, None)
    };
    let (name_masked, id_no_masked) = masked(p);
    let color_hex = std
        .table("colour")
        .and_then(|t| t.get(p.colour.as_str()))
        .and_then(|c| c.hex.clone());
    Ok(GenerateCodeResponse {
        code_content,
        code_image: None,
        matrix,
        width,
        code_color: p.colour.as_str().to_owned(),
        color_hex,
        name_masked: Some(name_masked),
        id_no_masked: Some(id_no_masked),
        update_time: time(p.update_time),
        expire_time: expires_at.map(time),
        refresh_interval: Some(REFRESH_INTERVAL_SECS),
    })
}

fn verify_code(state: &SimState, app_id: &str, r: &VerifyCodeRequest, now: i64) -> Result<Outcome> {
    let d = state.defects;
    let cid = verified_code_id(state, &r.code_content)?;
    let pop = state.population();
    let i = pop
        .find_code(&cid)
        .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "unknown code id"))?;
    let p = person(&pop, i)?;
    // The issuer answers with the colour now, which may be newer than the token's.
    let fever = r.temperature.is_some_and(|t| t >= FEVER_CELSIUS);
    let shown = shown_colour(state, p);
    let mut answer = verify_answer(&shown, fever, &state.issuer, &state.ticket, app_id, now)?;
    if d.contains(Defect::LeakName) {
        // DEFECT leak-name: the "masked" name is the name.
        answer.name_masked = Some(p.name.clone());
    }
    if d.contains(Defect::LeakIdNumber) {
        // DEFECT leak-id-number: the "masked" ID number is the ID number.
        answer.id_no_masked = Some(p.id_no.clone());
    }
    let mut outcome = Outcome::answer(ReturnCode::Success, &answer);
    if let Some(Value::Object(biz)) = &mut outcome.biz {
        if d.contains(Defect::BadTimeFormat) {
            // DEFECT bad-time-format: `yyyy/MM/dd HH:mm:ss` instead of `yyyy-MM-dd HH:mm:ss`.
            if let Some(Value::String(t)) = biz.get_mut("updateTime") {
                *t = t.replace('-', "/");
            }
        }
        if d.contains(Defect::DropRequiredField) {
            // DEFECT drop-required-field: a required field of the answer is left out.
            biz.remove("updateTime");
        }
    }
    Ok(outcome)
}

/// The code id of scanned content whose PHIC1 token verifies; the verifier's return code
/// (3001 to 3004) otherwise.
fn verified_code_id(state: &SimState, content: &str) -> Result<String> {
    let d = state.defects;
    let e = match state.verifier.verify_content(content) {
        Ok(verified) => return Ok(verified.claims.cid.as_str().to_owned()),
        Err(e) => e,
    };
    let mut code = e.return_code();
    if code == ReturnCode::CodeIssuerUntrusted && d.contains(Defect::UntrustedIssuerAccepted) {
        // DEFECT untrusted-issuer-accepted: a code from an issuer outside the trust list is
        // taken at its word, its claims read without any signature check.
        if let Some(cid) = defects::unverified_code_id(content) {
            return Ok(cid);
        }
    }
    if code == ReturnCode::CodeExpired && d.contains(Defect::ExpiredCodeWrongCode) {
        // DEFECT expired-code-wrong-code: an expired code is called unparseable.
        code = ReturnCode::CodeInvalid;
    }
    let msg = match code {
        ReturnCode::CodeExpired => "code expired",
        ReturnCode::CodeIssuerUntrusted => "code not issued here",
        ReturnCode::CodeSignatureInvalid => "code signature invalid",
        _ => "code not recognised",
    };
    Err(Outcome::fail(code, msg))
}

/// `p` as the answers show it: `p` itself, or with the `wrong-colour-map` defect, a yellow
/// person recoloured green.
fn shown_colour<'p>(state: &SimState, p: &'p Person) -> Cow<'p, Person> {
    if state.defects.contains(Defect::WrongColourMap) && p.colour == Colour::Yellow {
        // DEFECT wrong-colour-map: yellow (01) is mapped to green (00).
        Cow::Owned(Person {
            colour: Colour::Green,
            ..p.clone()
        })
    } else {
        Cow::Borrowed(p)
    }
}

/// The code id a BizExtData ticket lets `app_id` read at `now` ([`TicketKey::open`]).
fn open_ticket(
    state: &SimState,
    ticket: &str,
    app_id: &str,
    now: i64,
) -> std::result::Result<String, TicketError> {
    let d = state.defects;
    if d.contains(Defect::TicketAnyClient) || d.contains(Defect::TicketNoExpiry) {
        // DEFECT ticket-any-client, ticket-no-expiry: a binding is not checked.
        return defects::open_ticket_loosely(&state.ticket, d, ticket, app_id, now);
    }
    state.ticket.open(ticket, app_id, now)
}

/// The answer of `verifyCode` about `p` with its colour now, and a ticket for `app_id`.
pub(super) fn verify_answer(
    p: &Person,
    fever: bool,
    issuer: &IssuerId,
    tickets: &TicketKey,
    app_id: &str,
    now: i64,
) -> Result<VerifyCodeResponse> {
    let verify_result = match p.colour {
        Colour::Green if !fever => "PASS",
        Colour::Red => "DENY",
        _ => "WARN",
    };
    let ticket = tickets
        .seal(p.code_id.as_str(), app_id, now, TICKET_TTL_SECS)
        .map_err(|_| Outcome::fail(ReturnCode::SystemError, "ticket could not be sealed"))?;
    let (name_masked, id_no_masked) = masked(p);
    Ok(VerifyCodeResponse {
        verify_result: verify_result.to_owned(),
        code_color: p.colour.as_str().to_owned(),
        name_masked: Some(name_masked),
        id_no_masked: Some(id_no_masked),
        update_time: time(p.update_time),
        issuer: Some(issuer.as_str().to_owned()),
        issuer_region: Some(issuer.region().as_str().to_owned()),
        national_code_id: Some(p.national_code_id.as_str().to_owned()),
        biz_ext_data: Some(ticket),
        ticket_expires_in: Some(TICKET_TTL_SECS),
        commuter: p.commuter.then_some(true),
    })
}
