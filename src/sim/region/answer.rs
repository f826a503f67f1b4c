//! The region's answers: the national business content of each service, computed from the
//! synthetic population as the region's back-end would, before the engine writes it in
//! the dialect.
//!
//! A dialect carries only part of the national request, so requests are read leniently:
//! a field the dialect cannot carry is not demanded unless the answer needs it (an ID type
//! absent means an ID card; a name absent is not checked). People are found by the code id
//! inside a code content (the dialect's `[[codes]]` patterns, through
//! [`translate::recognise`]), by a BizExtData ticket, by user token or authCode, or by ID
//! number. Where the dialect's response rules mask a field on its way to the national side
//! (`mask = "name"`), the answer carries the full value there, as the real back-end does:
//! the gateway masks it.

use serde::Serialize;
use serde_json::Value;

use crate::national::model::{
    ApplyCodeAccessResponse, CorrectHealthInfoResponse, DeclareHealthResponse, DeclareTripResponse,
};
use crate::national::time::DateTime;
use crate::standard::{PersonalClass, ReturnCode, ServiceName};
use crate::translate::{self, CodePattern, Dialect};

use super::super::grants::Grant;
use super::super::population::{Declaration, FEVER_CELSIUS, ID_TYPE, Person, Population};
use super::super::services::{self, AUTH_CODE_TTL_SECS, CORRECTION_DAYS, Outcome, fresh_id, time};
use super::RegionState;

type Result<T> = std::result::Result<T, Outcome>;

/// Runs one service for `caller` (the key tickets and authCodes are bound to).
pub(super) fn dispatch(
    state: &RegionState,
    service: ServiceName,
    caller: &str,
    biz: &Value,
    now: i64,
) -> Outcome {
    let result = match service {
        ServiceName::VerifyCode => verify_code(state, caller, biz, now),
        ServiceName::QueryHealthInfo => query_health_info(state, caller, biz, now),
        ServiceName::GenerateCode => generate_code(state, caller, biz, now),
        ServiceName::ApplyCodeAccess => apply_code_access(state, caller, biz, now),
        ServiceName::DeclareHealth => declare_health(state, biz, now),
        ServiceName::DeclareTrip => declare_trip(state, biz, now),
        ServiceName::CorrectHealthInfo => correct_health_info(state, caller, biz, now),
    };
    result.unwrap_or_else(|o| o)
}

/// The code content the dialect's first `[[codes]]` pattern gives `p`: a URL with the code
/// id in its parameter (and the national code id, when the pattern names one), or the
/// prefix followed by the code id. `None` when the dialect has no pattern.
pub fn code_content(d: &Dialect, p: &Person) -> Option<String> {
    content_for(d, p.code_id.as_str(), p.national_code_id.as_str())
}

fn content_for(d: &Dialect, code_id: &str, national_code_id: &str) -> Option<String> {
    let content = match d.codes.first()? {
        CodePattern::Url {
            host,
            path_prefix,
            param,
            national_param,
        } => {
            let sep = if path_prefix.contains('?') { '&' } else { '?' };
            let mut url = format!("https://{host}{path_prefix}{sep}{param}={code_id}");
            if let Some(np) = national_param {
                url.push_str(&format!("&{np}={national_code_id}"));
            }
            url
        }
        CodePattern::Prefix(prefix) => format!("{prefix}{code_id}"),
    };
    Some(content)
}

/// Checks that the codes the simulator issues are recognised as the dialect's, with the
/// right code id.
pub(super) fn check_code_patterns(d: &Dialect) -> std::result::Result<(), String> {
    const PROBE: &str = "0123456789abcdef0123456789abcdef";
    let content = content_for(d, PROBE, "fedcba9876543210fedcba9876543210")
        .ok_or("serves verifyCode or generateCode but has no [[codes]] pattern")?;
    match translate::recognise(std::iter::once(d), &content) {
        Some(m) if m.code_id == PROBE => Ok(()),
        _ => Err(format!(
            "a code content made from its first [[codes]] pattern is not recognised back: {}",
            content.replace(PROBE, "<code id>")
        )),
    }
}

fn fail(code: ReturnCode, msg: &str) -> Outcome {
    Outcome::fail(code, msg)
}

/// The text at a dotted national path, if present and not empty.
fn text<'a>(biz: &'a Value, path: &str) -> Option<&'a str> {
    let mut v = biz;
    for key in path.split('.') {
        v = v.get(key)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// A number at a dotted national path: a JSON number, or its text (form dialects).
fn number(biz: &Value, path: &str) -> Option<f64> {
    let mut v = biz;
    for key in path.split('.') {
        v = v.get(key)?;
    }
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The person the `user` block names: 2001 when nobody holds the document, 2002 when a
/// name is given and does not match. An absent ID type means an ID card.
fn find_user(pop: &Population, biz: &Value) -> Result<usize> {
    let id_no = text(biz, "user.idNo")
        .ok_or_else(|| fail(ReturnCode::MissingParameter, "user.idNo is required"))?;
    let id_type = text(biz, "user.idType").unwrap_or(ID_TYPE);
    let i = pop
        .find_id(id_type, id_no)
        .ok_or_else(|| fail(ReturnCode::UserNotFound, "person not found"))?;
    match (pop.get(i), text(biz, "user.name")) {
        (Some(p), Some(name)) if p.name != name => Err(fail(
            ReturnCode::NotRealName,
            "name does not match the ID document",
        )),
        (Some(_), _) => Ok(i),
        (None, _) => Err(fail(ReturnCode::UserNotFound, "person not found")),
    }
}

fn person(pop: &Population, i: usize) -> Result<&Person> {
    pop.get(i)
        .ok_or_else(|| fail(ReturnCode::UserNotFound, "person not found"))
}

/// The person an `authCode` lets `caller` act for: 2003 when it is unknown, expired or
/// another caller's.
fn granted(state: &RegionState, code: &str, caller: &str, now: i64) -> Result<usize> {
    state
        .grants()
        .check(code, caller, now)
        .ok_or_else(|| fail(ReturnCode::NotAuthorised, "authCode unknown or expired"))
}

/// A success answer about `p`, with full values where the dialect's back-end gives them.
fn reply(
    state: &RegionState,
    service: ServiceName,
    code: ReturnCode,
    biz: &impl Serialize,
    p: &Person,
) -> Outcome {
    let mut o = Outcome::answer(code, biz);
    if let Some(b) = o.biz.as_mut() {
        unmask(&state.dialect, service, b, p);
    }
    o
}

/// Writes `p`'s full name, ID number or phone at each national path of the answer that a
/// response rule of the dialect masks on its way to the national side.
fn unmask(d: &Dialect, service: ServiceName, biz: &mut Value, p: &Person) {
    let Some(s) = d.service(service) else {
        return;
    };
    for r in &s.response.rules {
        let Some(class) = r.mask else { continue };
        let full = match class {
            PersonalClass::Name => &p.name,
            PersonalClass::Id => &p.id_no,
            PersonalClass::Phone => &p.phone,
        };
        let pointer = format!("/{}", r.national.replace('.', "/"));
        if let Some(slot) = biz.pointer_mut(&pointer) {
            *slot = Value::String(full.clone());
        }
    }
}

fn verify_code(state: &RegionState, caller: &str, biz: &Value, now: i64) -> Result<Outcome> {
    let content = text(biz, "codeContent")
        .ok_or_else(|| fail(ReturnCode::MissingParameter, "codeContent is required"))?;
    let found = translate::recognise(std::iter::once(state.dialect.as_ref()), content)
        .ok_or_else(|| fail(ReturnCode::CodeInvalid, "code not recognised"))?;
    let pop = state.population();
    let i = pop
        .find_code(&found.code_id)
        .or_else(|| pop.find_national_code(&found.code_id))
        .or_else(|| {
            found
                .national_code_id
                .as_deref()
                .and_then(|n| pop.find_national_code(n))
        })
        .ok_or_else(|| fail(ReturnCode::CodeInvalid, "unknown code id"))?;
    let p = person(&pop, i)?;
    let fever = number(biz, "temperature").is_some_and(|t| t >= FEVER_CELSIUS);
    let answer = services::verify_answer(p, fever, &state.issuer, &state.ticket, caller, now)?;
    Ok(reply(
        state,
        ServiceName::VerifyCode,
        ReturnCode::Success,
        &answer,
        p,
    ))
}

fn query_health_info(state: &RegionState, caller: &str, biz: &Value, now: i64) -> Result<Outcome> {
    let pop = state.population();
    let (i, holder) = if let Some(ticket) = text(biz, "bizExtData") {
        let cid = state
            .ticket
            .open(ticket, caller, now)
            .map_err(|_| fail(ReturnCode::TicketInvalid, "ticket invalid or expired"))?;
        let i = pop
            .find_code(&cid)
            .ok_or_else(|| fail(ReturnCode::UserNotFound, "person not found"))?;
        (i, false)
    } else if biz.get("user").is_some() {
        let i = find_user(&pop, biz)?;
        // The holder's authCode opens the colour's reason; without one the caller, already
        // authenticated by the dialect's signature, reads what a verifier reads.
        let holder = match text(biz, "authCode") {
            Some(code) if granted(state, code, caller, now)? != i => {
                return Err(fail(
                    ReturnCode::NotAuthorised,
                    "authCode is for another person",
                ));
            }
            Some(_) => true,
            None => false,
        };
        (i, holder)
    } else {
        return Err(fail(
            ReturnCode::MissingParameter,
            "a ticket or a user is required",
        ));
    };
    let p = person(&pop, i)?;
    let scope: Option<Vec<String>> = biz.get("scope").map(|s| match s {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        // Form dialects carry a list as comma-separated text.
        Value::String(s) => s.split([',', '^']).map(str::to_owned).collect(),
        _ => Vec::new(),
    });
    let answer = services::health_info(p, scope.as_deref(), holder, &state.issuer);
    Ok(reply(
        state,
        ServiceName::QueryHealthInfo,
        ReturnCode::Success,
        &answer,
        p,
    ))
}

fn generate_code(state: &RegionState, caller: &str, biz: &Value, now: i64) -> Result<Outcome> {
    let by_auth = match text(biz, "authCode") {
        Some(c) => Some(granted(state, c, caller, now)?),
        None => None,
    };
    let pop = state.population();
    let by_token = match text(biz, "userToken") {
        Some(t) => Some(
            pop.find_token(t)
                .ok_or_else(|| fail(ReturnCode::UserNotFound, "unknown user token"))?,
        ),
        None => None,
    };
    let by_user = match biz.get("user") {
        Some(_) if by_auth.is_none() && by_token.is_none() => Some(find_user(&pop, biz)?),
        _ => None,
    };
    let i = match (by_token, by_auth) {
        (Some(a), Some(b)) if a != b => {
            return Err(fail(
                ReturnCode::NotAuthorised,
                "authCode is for another person",
            ));
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => by_user.ok_or_else(|| {
            fail(
                ReturnCode::NotAuthorised,
                "userToken, authCode or user is required",
            )
        })?,
    };
    let p = person(&pop, i)?;
    let content = code_content(&state.dialect, p)
        .ok_or_else(|| fail(ReturnCode::SystemError, "the dialect has no code pattern"))?;
    // A regional code is a static link to the holder's page: it does not expire.
    let answer = services::code_answer(&state.std, p, content, None, text(biz, "output"))?;
    Ok(reply(
        state,
        ServiceName::GenerateCode,
        ReturnCode::Success,
        &answer,
        p,
    ))
}

fn apply_code_access(state: &RegionState, caller: &str, biz: &Value, now: i64) -> Result<Outcome> {
    let auth_code = fresh_id("ac")?;
    let pop = state.population();
    let i = find_user(&pop, biz)?;
    let p = person(&pop, i)?;
    state.grants().insert(
        auth_code.clone(),
        Grant {
            person: i,
            app_id: caller.to_owned(),
            expires_at: now + i64::from(AUTH_CODE_TTL_SECS),
        },
        now,
    );
    let answer = ApplyCodeAccessResponse {
        auth_code,
        user_token: p.user_token.clone(),
        expires_in: AUTH_CODE_TTL_SECS,
        code_page_url: None,
    };
    Ok(reply(
        state,
        ServiceName::ApplyCodeAccess,
        ReturnCode::Success,
        &answer,
        p,
    ))
}

fn declare_health(state: &RegionState, biz: &Value, now: i64) -> Result<Outcome> {
    let declare_id = fresh_id("DH")?;
    let mut pop = state.population_mut();
    let i = find_user(&pop, biz)?;
    let p = pop
        .get_mut(i)
        .ok_or_else(|| fail(ReturnCode::UserNotFound, "person not found"))?;
    let declaration = Declaration {
        temperature: number(biz, "temperature"),
        symptoms: text(biz, "symptoms").unwrap_or_default().to_owned(),
        high_risk_stay: text(biz, "highRiskStay").unwrap_or("2").to_owned(),
        contact_history: text(biz, "contactHistory").unwrap_or("3").to_owned(),
        declare_time: text(biz, "declareTime")
            .and_then(DateTime::parse)
            .map_or(now, DateTime::unix),
    };
    services::record_declaration(p, declaration, now);
    let answer = DeclareHealthResponse {
        declare_id,
        code_color: p.colour.as_str().to_owned(),
        update_time: time(p.update_time),
    };
    let p = p.clone();
    drop(pop);
    Ok(reply(
        state,
        ServiceName::DeclareHealth,
        ReturnCode::Success,
        &answer,
        &p,
    ))
}

fn declare_trip(state: &RegionState, biz: &Value, now: i64) -> Result<Outcome> {
    let trip_declare_id = fresh_id("DT")?;
    let trips = biz.get("trips").and_then(Value::as_array);
    let visited = trips.is_some_and(|ts| {
        ts.iter().any(|t| {
            services::risky_trip(
                &state.high_risk,
                text(t, "fromRegion").unwrap_or_default(),
                text(t, "toRegion").unwrap_or_default(),
                text(t, "fromCountry"),
            )
        })
    });
    let mut pop = state.population_mut();
    let i = find_user(&pop, biz)?;
    let p = pop
        .get_mut(i)
        .ok_or_else(|| fail(ReturnCode::UserNotFound, "person not found"))?;
    // A risky trip keeps the flag until the region lifts it; a clean trip does not clear it.
    p.trip_flag |= visited;
    p.reevaluate(now);
    let answer = DeclareTripResponse {
        trip_declare_id,
        code_color: p.colour.as_str().to_owned(),
        risk_area_visited: if visited { "2" } else { "1" }.to_owned(),
    };
    let p = p.clone();
    drop(pop);
    Ok(reply(
        state,
        ServiceName::DeclareTrip,
        ReturnCode::Success,
        &answer,
        &p,
    ))
}

fn correct_health_info(
    state: &RegionState,
    caller: &str,
    biz: &Value,
    now: i64,
) -> Result<Outcome> {
    let ticket_id = fresh_id("CT")?;
    let pop = state.population();
    let i = find_user(&pop, biz)?;
    let p = person(&pop, i)?.clone();
    drop(pop);
    if let Some(code) = text(biz, "authCode") {
        if granted(state, code, caller, now)? != i {
            return Err(fail(
                ReturnCode::NotAuthorised,
                "authCode is for another person",
            ));
        }
    }
    state.record_correction();
    let answer = CorrectHealthInfoResponse {
        ticket_id,
        status: "ACCEPTED".to_owned(),
        expected_time: Some(time(now + CORRECTION_DAYS * 86_400)),
    };
    Ok(reply(
        state,
        ServiceName::CorrectHealthInfo,
        ReturnCode::CorrectionAccepted,
        &answer,
        &p,
    ))
}
