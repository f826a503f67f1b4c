//! Running cases against a target: set-up (the target's own services give the codes,
//! tickets and consents the cases need), then each case: fill its template, seal (bent by
//! its probe), send, judge every stage it names.
//!
//! # Placeholders
//!
//! `{{person.L.idType}}`, `{{person.L.idNo}}`, `{{person.L.name}}` for each fixture person
//! `L`; `{{authCode.L}}`, `{{userToken.L}}`, `{{code.L}}` and `{{ticket.L}}` got from the
//! target for them at set-up; `{{code.X}}` for codes the fixtures file names (an expired
//! code: only the target's issuer can sign one) and `{{ticket.X}}` for tickets it names (an
//! expired one); `{{code.untrusted}}`, a PHIC1 code signed
//! by a key no trust list holds; `{{code.garbage}}`; `{{now}}`, the time as
//! `yyyy-MM-dd HH:mm:ss`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::case::{Case, Deviation};
use crate::client::{GatewayClient, SealOptions};
use crate::envelope::{EnvelopeError, EnvelopeLimits, open_response};
use crate::national::time::DateTime;
use crate::national::validate::{Context as VContext, validate_value};
use crate::standard::{Direction, ServiceName, Standard};

mod setup;
#[cfg(test)]
mod tests;

pub use setup::{Context, Fixtures, Person, SetupError, fill, setup};

/// One stage's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct StageOutcome {
    /// The stage.
    pub stage: &'static str,
    /// What the case expects.
    pub expected: String,
    /// What the target did.
    pub actual: String,
    /// Whether they agree.
    pub pass: bool,
}

/// A case's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Its title, clause and label.
    pub title: String,
    /// The clause.
    pub clause: String,
    /// The requirement's label.
    pub label: super::case::Label,
    /// The service.
    pub service: String,
    /// Every stage judged.
    pub stages: Vec<StageOutcome>,
    /// All stages passed.
    pub passed: bool,
    /// A known deviation of this target (expected to fail).
    pub deviation: Option<String>,
    /// The case could not be run (placeholder, transport): the reason.
    pub error: Option<String>,
    /// The request's business content, personal data masked.
    pub request: String,
    /// The answer as received, personal data masked.
    pub response: String,
    /// Milliseconds.
    pub millis: u64,
}

impl CaseResult {
    /// Whether the run counts this case as good: a pass, or an expected failure (a listed
    /// deviation that ran and failed; one that errored is not good).
    pub fn ok(&self) -> bool {
        if self.error.is_some() {
            // A case that could not be run tested nothing: never good, listed or not.
            false
        } else if self.deviation.is_some() {
            !self.passed
        } else {
            self.passed
        }
    }
}

fn corrupt_sign(body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    if let Some(Value::String(s)) = v.get_mut("sign") {
        let mut b = s.clone().into_bytes();
        if let Some(c) = b.get_mut(4) {
            *c = if *c == b'A' { b'B' } else { b'A' };
        }
        *s = String::from_utf8(b).unwrap_or_default();
    }
    v.to_string()
}

fn merge(base: &Value, with: &Value) -> Value {
    match (base, with) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = a.clone();
            for (k, v) in b {
                let merged = out.get(k).map_or_else(|| v.clone(), |old| merge(old, v));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, w) => w.clone(),
    }
}

/// Whether `actual` holds every field of `expected` with its value.
fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| subset(v, x))),
        (e, a) => e == a,
    }
}

/// Pause after a burst case, so the next case does not meet the quota it drained.
const BURST_COOL_DOWN: std::time::Duration = std::time::Duration::from_millis(1500);

struct Answer {
    status: u16,
    raw: bytes::Bytes,
}

/// Runs one case; `second` is the second client, for cases that send as another one.
pub async fn run_case(
    client: &GatewayClient,
    second: Option<&GatewayClient>,
    case: &Case,
    ctx: &Context,
    deviation: Option<&Deviation>,
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        clause: case.clause.clone(),
        label: case.label,
        service: case.service.clone(),
        stages: Vec::new(),
        passed: false,
        deviation: deviation.map(|d| d.reason.clone()),
        error: None,
        request: String::new(),
        response: String::new(),
        millis: 0,
    };
    let biz = match fill(&case.request, ctx) {
        Ok(b) => b,
        Err(e) => {
            result.error = Some(format!("case {}: {e}", case.id));
            return result;
        }
    };
    result.request = clip(ctx.mask(&biz.to_string()));
    let p = &case.probe;
    let client = if p.second_client {
        match second {
            Some(c) => c,
            None => {
                result.error = Some(format!(
                    "case {} sends as a second client: give --client2",
                    case.id
                ));
                return result;
            }
        }
    } else {
        client
    };
    let opts = SealOptions {
        timestamp_offset_ms: p.timestamp_offset_s.saturating_mul(1000),
        app_id: p.app_id.clone(),
        plaintext: p.plaintext,
        ..SealOptions::default()
    };
    let sealed = match client.seal_with(&case.service, &biz, &opts) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    let mut body = sealed.body.clone();
    if p.corrupt_signature {
        body = corrupt_sign(&body);
    }
    let mut session = sealed.session.clone();
    let mut request_id = sealed.envelope.request_id.clone();
    let send = |b: String| async move {
        client
            .post_named(&case.service, bytes::Bytes::from(b))
            .await
            .map(|(status, _, raw)| Answer { status, raw })
    };
    let mut burst_stage = None;
    let answer = if let Some(n) = p.burst {
        // Many at once: every answer must be admitted (0) or have an expected code, and
        // every request must get one; the answer judged stage by stage is the first with an
        // expected code, if any.
        // Sealed first, then sent together: sealing each between the sends spread the
        // burst over the time its cryptography took, which on a loaded machine let the
        // quota refill and the burst pass unrefused.
        let sealed: Vec<_> = (0..n)
            .map(|_| client.seal_with(&case.service, &biz, &opts))
            .collect();
        let mut set = tokio::task::JoinSet::new();
        // A burst's answers are short refusals: each is read up to 1 MiB, so that a target
        // answering every one with a huge body cannot take gigabytes.
        let burst_client = client.clone().with_answer_limit(BURST_ANSWER_LIMIT);
        for sealed in sealed {
            let c = burst_client.clone();
            let service = case.service.clone();
            set.spawn(async move {
                let s = sealed.map_err(|e| crate::client::ClientError::Transport(e.to_string()))?;
                let (status, retry_after, raw) = c
                    .post_named(&service, bytes::Bytes::from(s.body.clone()))
                    .await?;
                Ok::<_, crate::client::ClientError>((s, Answer { status, raw }, retry_after))
            });
        }
        let wanted = case.expect.code.clone().unwrap_or_default();
        // Each answer is kept as its code, but for the one judged: the first with a wanted
        // code, else the first.
        let mut codes = Vec::new();
        let mut lost = Vec::new();
        // A 1007 says when to come back (Retry-After, in whole seconds).
        let mut no_retry_after = 0;
        let mut kept: Option<(_, Answer, bool)> = None;
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok((s, a, retry_after))) => {
                    let code = raw_code(&a.raw);
                    let says_when = retry_after
                        .as_deref()
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
                    if code == "1007" && !says_when {
                        no_retry_after += 1;
                    }
                    let is_wanted = wanted.contains(&code);
                    codes.push(code);
                    if kept.as_ref().is_none_or(|(_, _, w)| !w && is_wanted) {
                        kept = Some((s, a, is_wanted));
                    }
                }
                Ok(Err(e)) => lost.push(e.to_string()),
                Err(e) => lost.push(e.to_string()),
            }
        }
        let Some((s, a, _)) = kept else {
            result.error = Some("no answer to the burst".into());
            return result;
        };
        burst_stage = Some(judge_burst(&codes, &lost, no_retry_after, &wanted));
        session = s.session;
        request_id = s.envelope.request_id;
        // Let the target's quota refill before the next case.
        tokio::time::sleep(BURST_COOL_DOWN).await;
        Ok(a)
    } else if p.replay {
        match send(body.clone()).await {
            Ok(_) => send(body).await,
            Err(e) => Err(e),
        }
    } else if let Some(with) = &p.same_request_id_with {
        match send(body).await {
            Ok(_) => {
                let changed = match fill(with, ctx) {
                    Ok(w) => merge(&biz, &w),
                    Err(e) => {
                        result.error = Some(e);
                        return result;
                    }
                };
                let again = client.seal_with(
                    &case.service,
                    &changed,
                    &SealOptions {
                        request_id: Some(request_id.clone()),
                        ..opts.clone()
                    },
                );
                match again {
                    Ok(s) => {
                        session = s.session.clone();
                        send(s.body).await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    } else {
        send(body).await
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            result.error = Some(e.to_string());
            result.millis = started.elapsed().as_millis() as u64;
            return result;
        }
    };
    result.response = clip(ctx.mask(&String::from_utf8_lossy(&answer.raw)));
    let opened = open_response(
        &answer.raw,
        &session,
        Some(client.gateway_key()),
        &EnvelopeLimits::default(),
    );
    result.stages = judge(case, ctx, &answer, &opened, &request_id);
    result.stages.extend(burst_stage);
    result.passed = result.stages.iter().all(|s| s.pass);
    result.millis = started.elapsed().as_millis() as u64;
    result
}

/// How much of a burst's answer is read.
const BURST_ANSWER_LIMIT: usize = 1024 * 1024;

/// How much of a request or an answer a case's result keeps for the reports.
const KEPT_TEXT: usize = 8 * 1024;

/// `text` cut to [`KEPT_TEXT`] bytes (at a character boundary), saying how long it was: a
/// report shows what a case sent and got, and a target's huge answer is not copied into
/// every report.
fn clip(text: String) -> String {
    if text.len() <= KEPT_TEXT {
        return text;
    }
    let mut end = KEPT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// The `burst` stage: every request of a burst answered, each with 0 or one of `wanted`,
/// and every 1007 with a Retry-After. `codes` are the answers' codes; `lost`, why the others
/// got none; `no_retry_after`, the 1007s without one.
fn judge_burst(
    codes: &[String],
    lost: &[String],
    no_retry_after: usize,
    wanted: &[String],
) -> StageOutcome {
    let mut other: BTreeMap<&str, usize> = BTreeMap::new();
    for c in codes.iter().filter(|c| *c != "0" && !wanted.contains(c)) {
        *other
            .entry(if c.is_empty() { "(none)" } else { c })
            .or_insert(0) += 1;
    }
    let mut problems: Vec<String> = other.iter().map(|(c, n)| format!("{n}× {c}")).collect();
    if let Some(first) = lost.first() {
        problems.push(format!("{}× no answer ({first})", lost.len()));
    }
    if no_retry_after > 0 {
        problems.push(format!("{no_retry_after}× 1007 without Retry-After"));
    }
    StageOutcome {
        stage: "burst",
        expected: format!("every answer 0 or {}", wanted.join(" or ")),
        actual: if problems.is_empty() {
            format!("{} answers, all 0 or expected", codes.len())
        } else {
            problems.join(", ")
        },
        pass: problems.is_empty(),
    }
}

fn raw_code(raw: &[u8]) -> String {
    serde_json::from_slice::<Value>(raw)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// Whether the case's answer must have business content: it expects success (0) or an
/// accepted correction (4001), whose response schemas require fields.
fn content_required(case: &Case) -> bool {
    case.expect
        .code
        .as_ref()
        .is_some_and(|c| c.iter().any(|x| x == "0" || x == "4001"))
}

fn judge(
    case: &Case,
    ctx: &Context,
    answer: &Answer,
    opened: &Result<crate::envelope::OpenedResponse, EnvelopeError>,
    request_id: &str,
) -> Vec<StageOutcome> {
    let e = &case.expect;
    let mut out = Vec::new();
    let mut stage = |stage: &'static str, expected: String, actual: String, pass: bool| {
        out.push(StageOutcome {
            stage,
            expected,
            actual,
            pass,
        });
    };
    if let Some(ok) = &e.transport {
        stage(
            "transport",
            format!("HTTP {ok:?}"),
            format!("HTTP {}", answer.status),
            ok.contains(&answer.status),
        );
    }
    let sig_error = matches!(
        opened,
        Err(EnvelopeError::SignatureInvalid
            | EnvelopeError::KeyUnknown(_)
            | EnvelopeError::MissingParameter("sign"))
    );
    if let Some(want) = e.signature {
        let actual = match opened {
            Ok(_) => "verifies".to_owned(),
            Err(err) => err.to_string(),
        };
        stage(
            "signature",
            if want { "verifies" } else { "does not verify" }.into(),
            actual,
            // `false` wants a signature that does not verify: another failure (an answer
            // that is not an envelope at all) is not that.
            if want { opened.is_ok() } else { sig_error },
        );
    }
    let biz = opened.as_ref().ok().and_then(|o| o.biz.clone());
    if let Some(want) = e.decryption {
        // "Decrypts" is an answer that opens and has content; "fails" is a decryption
        // failure. Nothing to decrypt, or an answer that does not open, is neither.
        let decrypt_error = matches!(opened, Err(EnvelopeError::DecryptFailed(_)));
        let actual = match opened {
            Ok(_) if biz.is_some() => "decrypts".to_owned(),
            Ok(_) => "no content".to_owned(),
            Err(_) if decrypt_error => "fails".to_owned(),
            Err(err) => err.to_string(),
        };
        stage(
            "decryption",
            if want { "decrypts" } else { "fails" }.into(),
            actual,
            if want { biz.is_some() } else { decrypt_error },
        );
    }
    if let Some(want) = e.schema {
        let (valid, actual) = match (&biz, case.service.parse::<ServiceName>()) {
            (Some(b), Ok(s)) => {
                let now = i64::try_from(crate::auth::now_unix()).unwrap_or_default();
                let r = validate_value(
                    &Standard::embedded(),
                    s,
                    Direction::Response,
                    b,
                    &VContext { now_unix: now },
                );
                let paths: Vec<String> = r.violations.iter().map(|v| v.path.clone()).collect();
                (
                    r.is_valid(),
                    if paths.is_empty() {
                        "conforms".to_owned()
                    } else {
                        format!("violations at {}", paths.join(", "))
                    },
                )
            }
            // No content: a success answer must have some (its schema requires fields), and
            // an answer that does not open cannot be said to conform.
            (None, _) => match opened {
                Err(err) => (false, err.to_string()),
                Ok(_) if content_required(case) => (false, "no content".to_owned()),
                Ok(_) => (true, "no content".to_owned()),
            },
            (Some(_), Err(_)) => (true, "not a service".into()),
        };
        stage(
            "schema",
            if want { "conforms" } else { "violates" }.into(),
            actual,
            want == valid,
        );
    }
    let code = raw_code(&answer.raw);
    if let Some(codes) = &e.code {
        stage(
            "code",
            codes.join(" or "),
            if code.is_empty() {
                "(none)".into()
            } else {
                code.clone()
            },
            codes.contains(&code),
        );
    }
    if let Some(want) = &e.result {
        let got = biz.clone().unwrap_or(Value::Null);
        stage(
            "result",
            want.to_string(),
            ctx.mask(&got.to_string()),
            subset(want, &got),
        );
    }
    // Every answer is checked for the fixture persons' values, unless the case says
    // `masking = false`.
    if e.masking != Some(false) {
        // The body as sent, the envelope decoded (a `msg` may spell a name in `\u` escapes)
        // and the business content.
        let envelope = serde_json::from_slice::<Value>(&answer.raw).ok();
        let text = format!(
            "{}\n{}\n{}",
            String::from_utf8_lossy(&answer.raw),
            envelope.as_ref().map(Value::to_string).unwrap_or_default(),
            biz.as_ref().map(Value::to_string).unwrap_or_default()
        );
        let lax = biz.as_ref().and_then(setup::lax_mask);
        let (actual, ok) = match (ctx.leaks(&text), lax) {
            (Some(s), _) => (format!("leaks {}", ctx.mask(s)), false),
            (None, Some((key, strict))) => (
                format!("{key} shows more than the profile allows (masked by it: {strict})"),
                false,
            ),
            (None, None) => ("masked".to_owned(), true),
        };
        stage(
            "masking",
            "no full name or ID number; names and ID numbers masked as the profile says".into(),
            actual,
            ok,
        );
    }
    if let Some(true) = e.request_id {
        let got = serde_json::from_slice::<Value>(&answer.raw)
            .ok()
            .and_then(|v| {
                v.get("requestId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        stage(
            "requestId",
            request_id.to_owned(),
            got.clone(),
            got == request_id,
        );
    }
    out
}
