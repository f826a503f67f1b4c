//! `queryHealthInfo` and `correctHealthInfo`: what a region tells of a person, to a
//! verifier with a ticket or to the holder's app, and a correction's ticket.

use super::*;

pub(super) fn query_health_info(
    state: &SimState,
    app_id: &str,
    r: &QueryHealthInfoRequest,
    now: i64,
) -> Result<Outcome> {
    let pop = state.population();
    // A verifier's ticket, or the holder's authorisation; the ticket wins when both come.
    let (i, holder) = match (&r.biz_ext_data, &r.user, &r.auth_code) {
        (Some(ticket), _, _) => {
            let cid = open_ticket(state, ticket, app_id, now).map_err(|_| {
                Outcome::fail(ReturnCode::TicketInvalid, "ticket invalid or expired")
            })?;
            let i = pop
                .find_code(&cid)
                .ok_or_else(|| Outcome::fail(ReturnCode::UserNotFound, "person not found"))?;
            (i, false)
        }
        (None, Some(user), Some(code)) => {
            let i = find_user(&pop, user)?;
            if granted(state, code, app_id, now)? != i {
                return Err(Outcome::fail(
                    ReturnCode::NotAuthorised,
                    "authCode is for another person",
                ));
            }
            (i, true)
        }
        _ => {
            return Err(Outcome::fail(
                ReturnCode::NotAuthorised,
                "a ticket or the holder's authCode is required",
            ));
        }
    };
    let p = person(&pop, i)?;
    let answer = health_info(
        &shown_colour(state, p),
        r.scope.as_deref(),
        holder,
        &state.issuer,
    );
    Ok(Outcome::answer(ReturnCode::Success, &answer))
}

/// The answer of `queryHealthInfo` about `p`: the parts `scope` names (`code` when it is
/// absent); the colour's reason only when the holder asks.
pub(in crate::sim) fn health_info(
    p: &Person,
    scope: Option<&[String]>,
    holder: bool,
    issuer: &IssuerId,
) -> QueryHealthInfoResponse {
    let default_scope = ["code".to_owned()];
    let scope = scope.unwrap_or(&default_scope);
    let wants = |s: &str| scope.iter().any(|x| x == s);
    let (name_masked, id_no_masked) = masked(p);
    QueryHealthInfoResponse {
        person: PersonBlock {
            name_masked,
            id_no_masked,
            id_type: Some(ID_TYPE.to_owned()),
        },
        code: wants("code").then(|| QueryCode {
            code_color: p.colour.as_str().to_owned(),
            update_time: time(p.update_time),
            // The reason is the holder's to read, not a venue's.
            color_reason: holder.then(|| p.color_reason.clone()),
            issuer_region: Some(issuer.region().as_str().to_owned()),
        }),
        health: p
            .declaration
            .as_ref()
            .filter(|_| wants("health"))
            .map(|d| QueryHealth {
                temperature: d.temperature,
                symptoms: Some(d.symptoms.clone()),
                high_risk_stay: Some(d.high_risk_stay.clone()),
                contact_history: Some(d.contact_history.clone()),
                declare_time: time(d.declare_time),
            }),
        nucleic: wants("nucleic").then(|| QueryNucleic {
            nucleic_result: p.nucleic.result.to_owned(),
            nucleic_time: p.nucleic.time.map(time),
            nucleic_org: p.nucleic.org.clone(),
        }),
        vaccine: wants("vaccine").then(|| QueryVaccine {
            vaccine_doses: p.vaccine.doses,
            vaccine_last_date: p.vaccine.last_date.map(|d| d.to_string()),
        }),
        // Cross-region status is the gateway's to merge; a region answers for itself only.
        region_status: None,
        partial: None,
        unavailable_regions: None,
    }
}

pub(super) fn correct_health_info(
    state: &SimState,
    app_id: &str,
    r: &CorrectHealthInfoRequest,
    now: i64,
) -> Result<Outcome> {
    let ticket_id = fresh_id("CT")?;
    let pop = state.population();
    let i = find_user(&pop, &r.user)?;
    drop(pop);
    if granted(state, &r.auth_code, app_id, now)? != i {
        return Err(Outcome::fail(
            ReturnCode::NotAuthorised,
            "authCode is for another person",
        ));
    }
    state.record_correction();
    Ok(Outcome::answer(
        ReturnCode::CorrectionAccepted,
        &CorrectHealthInfoResponse {
            ticket_id,
            status: "ACCEPTED".to_owned(),
            expected_time: Some(time(now + CORRECTION_DAYS * 86_400)),
        },
    ))
}
