use serde_json::json;

use super::*;
use crate::standard::Standard;
use crate::testutil::shipped_dialect;

async fn text_of(r: Response<Full<Bytes>>) -> String {
    use http_body_util::BodyExt as _;
    let body = r.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Jiangsu's colour map knows green, yellow and red; a code another region reports as 20
/// went back to a Jiangsu checkpoint as `{"code":"0","msg":"success"}`, which reads as a
/// success with no colour.
#[tokio::test]
async fn an_answer_the_dialect_cannot_say_is_a_failure_in_the_dialect() {
    let js = shipped_dialect("jiangsu");
    let std = Standard::embedded();
    let answer = |colour: &str| {
        json!({"code": "0", "msg": "success", "bizContent": {
            "codeColor": colour, "verifyResult": "PASS", "updateTime": "2026-11-23 08:30:05"}})
    };
    let losses = LossSink::default();
    let (code, said) = answer_in_dialect(
        &js,
        ServiceName::VerifyCode,
        &std,
        ReturnCode::Success,
        answer("00"),
        &losses,
    );
    assert_eq!(code, ReturnCode::Success);
    assert_eq!(said.status(), 200);
    let body = text_of(said).await;
    assert!(body.contains("\"level\""), "{body}");

    let (code, said) = answer_in_dialect(
        &js,
        ServiceName::VerifyCode,
        &std,
        ReturnCode::Success,
        answer("20"),
        &losses,
    );
    assert_eq!(code, ReturnCode::SystemError);
    let body = text_of(said).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    // Jiangsu's own result code for a system error (9999 is its resCode 1), not success.
    assert_eq!(v["resCode"], json!(1), "{body}");
    assert!(!body.contains("\"level\""), "{body}");
}

/// A dialect without result codes says an outcome by HTTP status alone: a refusal translated
/// into it came out as 200 with nothing but its constants, a success.
#[tokio::test]
async fn a_refusal_in_a_dialect_without_result_codes_is_not_a_2xx() {
    let std = Standard::embedded();
    let text = r#"
region = "330000"
name = "nm"
codec = "json"
[services.verifyCode]
path = "/v"
[services.verifyCode.request]
fields = [{ national = "codeContent", dialect = "qrcode" }]
[services.verifyCode.response]
fields = [{ national = "codeColor", dialect = "colour" }]
"#;
    let d = Dialect::from_toml("plain", "plain.toml", text, &std).unwrap();
    let refused = json!({"code": "1007", "msg": "too many requests"});
    let (code, said) = answer_in_dialect(
        &d,
        ServiceName::VerifyCode,
        &std,
        ReturnCode::RateLimited,
        refused,
        &LossSink::default(),
    );
    assert_eq!(code, ReturnCode::RateLimited);
    assert_eq!(said.status(), 429);
    assert!(text_of(said).await.contains("\"1007\""));
}
