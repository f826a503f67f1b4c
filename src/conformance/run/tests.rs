//! The judging of answers, without a target: answers sealed here, judged per stage.

use super::*;
use crate::crypto::SigningKey;
use crate::envelope::{Session, seal_response};
use crate::standard::ReturnCode;

const RID: &str = "conf-test-1";

fn case(toml_text: &str) -> Case {
    toml::from_str(toml_text).unwrap()
}

/// A verifyCode case expecting success with the stages `expect` names.
fn success_case(expect: &str) -> Case {
    case(&format!(
        "id = \"T-001\"\nclause = \"x\"\nlabel = \"P\"\ntitle = \"t\"\n\
         service = \"verifyCode\"\n[expect]\n{expect}\n"
    ))
}

/// An answer signed by `key` with `code`, `msg` and `biz`; its sign altered if `corrupt`.
fn answer(
    key: &SigningKey,
    code: ReturnCode,
    msg: &str,
    biz: Option<&Value>,
    corrupt: bool,
) -> (
    Answer,
    Result<crate::envelope::OpenedResponse, EnvelopeError>,
) {
    let session = Session::for_rejected_request(Some(RID));
    let sealed = seal_response(&session, key, code, msg, biz, 1_800_000_000_000).unwrap();
    let body = if corrupt {
        corrupt_sign(&sealed.body)
    } else {
        sealed.body.clone()
    };
    let raw = bytes::Bytes::from(body);
    let opened = open_response(
        &raw,
        &session,
        Some(&key.verifying_key()),
        &EnvelopeLimits::default(),
    );
    (Answer { status: 200, raw }, opened)
}

fn verdicts(out: &[StageOutcome]) -> Vec<(&'static str, bool)> {
    out.iter().map(|s| (s.stage, s.pass)).collect()
}

#[test]
fn a_signed_success_without_content_fails_the_schema_and_decryption_stages() {
    let key = SigningKey::generate().unwrap();
    let c = success_case("signature = true\ndecryption = true\nschema = true\ncode = [\"0\"]");
    let ctx = Context::default();
    let (a, opened) = answer(&key, ReturnCode::Success, "success", None, false);
    assert!(opened.as_ref().is_ok_and(|o| o.biz.is_none()));
    let out = judge(&c, &ctx, &a, &opened, RID);
    assert_eq!(
        verdicts(&out)
            .into_iter()
            .filter(|(s, _)| *s != "masking")
            .collect::<Vec<_>>(),
        [
            ("signature", true),
            ("decryption", false),
            ("schema", false),
            ("code", true)
        ]
    );
    let schema = out.iter().find(|s| s.stage == "schema").unwrap();
    assert_eq!(schema.actual, "no content");

    // Content that conforms passes both.
    let biz = json!({"verifyResult": "PASS", "codeColor": "00",
        "updateTime": "2026-01-01 08:00:00"});
    let (a, opened) = answer(&key, ReturnCode::Success, "success", Some(&biz), false);
    let out = judge(&c, &ctx, &a, &opened, RID);
    assert!(out.iter().all(|s| s.pass), "{out:?}");
}

#[test]
fn an_answer_that_does_not_verify_has_no_conforming_content() {
    let key = SigningKey::generate().unwrap();
    let c = success_case("signature = true\nschema = true\ncode = [\"0\"]");
    let (a, opened) = answer(&key, ReturnCode::Success, "success", None, true);
    assert!(matches!(opened, Err(EnvelopeError::SignatureInvalid)));
    let out = judge(&c, &Context::default(), &a, &opened, RID);
    let schema = out.iter().find(|s| s.stage == "schema").unwrap();
    assert!(!schema.pass, "{schema:?}");
    // An error answer without content, where the case expects one: no content to judge.
    let c = success_case("schema = true\ncode = [\"1002\"]");
    let (a, opened) = answer(&key, ReturnCode::BadFormat, "bad", None, false);
    let out = judge(&c, &Context::default(), &a, &opened, RID);
    assert!(out.iter().all(|s| s.pass), "{out:?}");
}

fn result(passed: bool, deviation: bool, error: bool) -> CaseResult {
    CaseResult {
        id: "T-001".into(),
        title: String::new(),
        clause: String::new(),
        label: super::super::case::Label::P,
        service: "verifyCode".into(),
        stages: Vec::new(),
        passed,
        deviation: deviation.then(|| "known".to_owned()),
        error: error.then(|| "timed out".to_owned()),
        request: String::new(),
        response: String::new(),
        millis: 0,
    }
}

#[test]
fn a_case_that_errored_is_never_good_even_as_a_listed_deviation() {
    assert!(result(true, false, false).ok());
    assert!(!result(false, false, false).ok());
    assert!(result(false, true, false).ok());
    assert!(!result(true, true, false).ok());
    assert!(!result(false, true, true).ok());
    assert!(!result(false, false, true).ok());
}

#[test]
fn a_burst_fails_on_any_answer_but_0_or_the_expected_code_and_on_a_lost_request() {
    let wanted = ["1007".to_owned()];
    let codes = |spec: &[(&str, usize)]| -> Vec<String> {
        spec.iter()
            .flat_map(|(c, n)| std::iter::repeat_n((*c).to_owned(), *n))
            .collect()
    };
    let good = judge_burst(&codes(&[("0", 50), ("1007", 150)]), &[], 0, &wanted);
    assert!(good.pass, "{good:?}");
    // 199 server errors and one 1007: the 1007 alone does not make the burst healthy.
    let bad = judge_burst(&codes(&[("9999", 199), ("1007", 1)]), &[], 0, &wanted);
    assert!(!bad.pass);
    assert!(bad.actual.contains("199× 9999"), "{}", bad.actual);
    // A request without an answer fails the burst.
    let lost = judge_burst(
        &codes(&[("1007", 199)]),
        &["connection reset".to_owned()],
        0,
        &wanted,
    );
    assert!(!lost.pass);
    assert!(lost.actual.contains("1× no answer"), "{}", lost.actual);
    // A 1007 that does not say when to come back fails it too.
    let silent = judge_burst(&codes(&[("0", 50), ("1007", 150)]), &[], 3, &wanted);
    assert!(!silent.pass);
    assert!(
        silent.actual.contains("3× 1007 without Retry-After"),
        "{}",
        silent.actual
    );
}

#[test]
fn every_answer_is_checked_for_the_fixture_persons_values() {
    let key = SigningKey::generate().unwrap();
    let id_no = "110101199003071234";
    let mut ctx = Context::default();
    ctx.secrets
        .push((crate::standard::PersonalClass::Id, id_no.to_owned()));
    // An error case that names no masking stage: its answer echoes the ID number in msg.
    let c = success_case("code = [\"1002\"]");
    let (a, opened) = answer(
        &key,
        ReturnCode::BadFormat,
        &format!("bad idNo {id_no}"),
        None,
        false,
    );
    let out = judge(&c, &ctx, &a, &opened, RID);
    let masking = out.iter().find(|s| s.stage == "masking").unwrap();
    assert!(!masking.pass, "{out:?}");
    assert!(
        !masking.actual.contains(id_no),
        "the report shows the ID unmasked"
    );
    // An answer without it passes; `masking = false` turns the check off.
    let (a, opened) = answer(&key, ReturnCode::BadFormat, "bad idNo", None, false);
    assert!(judge(&c, &ctx, &a, &opened, RID).iter().all(|s| s.pass));
    let off = success_case("code = [\"1002\"]\nmasking = false");
    let (a, opened) = answer(&key, ReturnCode::BadFormat, id_no, None, false);
    let out = judge(&off, &ctx, &a, &opened, RID);
    assert!(out.iter().all(|s| s.stage != "masking"), "{out:?}");
}

#[test]
fn reports_mask_a_name_by_the_name_rule() {
    use crate::standard::PersonalClass;
    let mut ctx = Context::default();
    ctx.secrets
        .push((PersonalClass::Name, "司马测试员".to_owned()));
    ctx.secrets
        .push((PersonalClass::Id, "110101199003071234".to_owned()));
    let masked = ctx.mask("{\"name\":\"司马测试员\",\"idNo\":\"110101199003071234\"}");
    // The name keeps its first character only; the ID number its first and last two.
    assert!(masked.contains("\"司****\""), "{masked}");
    assert!(masked.contains("\"11**************34\""), "{masked}");
}

/// The leak check reads the decoded answer, in any case; the report's masking read the raw
/// text as written, so a name sent as `\uXXXX` escapes (ASCII-only JSON) or an ID number's
/// `x` in the other case failed the masking stage and went into the report whole.
#[test]
fn reports_mask_what_the_leak_check_finds() {
    use crate::standard::PersonalClass;
    let mut ctx = Context::default();
    ctx.secrets.push((PersonalClass::Name, "张三丰".to_owned()));
    ctx.secrets
        .push((PersonalClass::Id, "11010119900307002X".to_owned()));
    for raw in [
        r#"{"msg":"\u5f20\u4e09\u4e30"}"#,
        r#"{"msg":"\u5F20\u4E09\u4E30"}"#,
        r#"{"idNo":"11010119900307002x"}"#,
    ] {
        let masked = ctx.mask(raw);
        assert!(ctx.leaks(&masked).is_none(), "{masked}");
        for whole in ["5f20\\u4e09\\u4e30", "900307002"] {
            assert!(!masked.to_ascii_lowercase().contains(whole), "{masked}");
        }
    }
    assert_eq!(ctx.mask(r#"{"msg":"\u5f20"}"#), r#"{"msg":"\u5f20"}"#);
}

#[test]
fn a_leak_is_found_in_another_case_in_escapes_or_in_part() {
    let key = SigningKey::generate().unwrap();
    let id_no = "11010119900307123X";
    let mut ctx = Context::default();
    ctx.secrets
        .push((crate::standard::PersonalClass::Id, id_no.to_owned()));
    ctx.secrets
        .push((crate::standard::PersonalClass::Name, "欧阳娜娜".to_owned()));
    let c = success_case("code = [\"0\"]");
    let masking = |msg: &str, biz: Option<&Value>| {
        let (a, opened) = answer(&key, ReturnCode::Success, msg, biz, false);
        let out = judge(&c, &ctx, &a, &opened, RID);
        let s = out.into_iter().find(|s| s.stage == "masking").unwrap();
        (s.pass, s.actual)
    };
    // The ID number with a lower-case x.
    let (pass, actual) = masking(&id_no.to_ascii_lowercase(), None);
    assert!(!pass && !actual.contains("0307"), "{actual}");
    // The name in \u escapes, as the envelope's JSON may carry it.
    let (a, opened) = answer(&key, ReturnCode::Success, "欧阳娜娜", None, false);
    let escaped =
        String::from_utf8_lossy(&a.raw).replace("欧阳娜娜", "\\u6b27\\u9633\\u5a1c\\u5a1c");
    let a = Answer {
        status: 200,
        raw: bytes::Bytes::from(escaped),
    };
    assert!(!String::from_utf8_lossy(&a.raw).contains("欧阳娜娜"));
    let out = judge(&c, &ctx, &a, &opened, RID);
    assert!(
        out.iter().any(|s| s.stage == "masking" && !s.pass),
        "{out:?}"
    );
    // Masked, but less than the profile says: 15 of 18 characters, three of four.
    for biz in [
        json!({"idNoMasked": "110101199003071***"}),
        json!({"person": {"nameMasked": "欧阳娜*"}}),
    ] {
        let (pass, actual) = masking("success", Some(&biz));
        assert!(!pass, "{biz}: {actual}");
        assert!(
            actual.contains("shows more than the profile allows"),
            "{actual}"
        );
    }
    // Masked as the profile says: passes.
    let ok = json!({"idNoMasked": "11**************3X", "nameMasked": "欧***"});
    assert_eq!(masking("success", Some(&ok)), (true, "masked".to_owned()));
}

#[test]
fn a_huge_answer_is_kept_clipped_in_the_reports() {
    let short = "短".repeat(10);
    assert_eq!(clip(short.clone()), short);
    let long = "长".repeat(100_000);
    let kept = clip(long.clone());
    assert!(kept.len() < KEPT_TEXT + 64, "{}", kept.len());
    assert!(
        kept.ends_with(&format!("({} bytes in all)", long.len())),
        "{kept}"
    );
}

#[test]
fn an_answer_to_another_request_fails_the_request_id_stage() {
    let key = SigningKey::generate().unwrap();
    let c = success_case("code = [\"0\"]\nrequestId = true");
    let (a, opened) = answer(&key, ReturnCode::Success, "success", None, false);
    let stage = |rid: &str| {
        judge(&c, &Context::default(), &a, &opened, rid)
            .into_iter()
            .find(|s| s.stage == "requestId")
            .map(|s| s.pass)
    };
    assert_eq!(stage(RID), Some(true));
    assert_eq!(
        stage("conf-test-2"),
        Some(false),
        "the answer echoes another request"
    );
}
