use std::path::Path;

use serde_json::json;

use super::*;
use crate::standard::Standard;

fn shipped() -> Vec<Dialect> {
    Dialect::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/regions"),
        &Standard::embedded(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn dialect(id: &str) -> Dialect {
    shipped().into_iter().find(|d| d.id == id).unwrap()
}

#[test]
fn loads_every_shipped_dialect() {
    let ids: Vec<_> = shipped().into_iter().map(|d| d.id).collect();
    assert!(ids.contains(&"zhejiang".to_owned()) && ids.contains(&"jiangsu".to_owned()));
}

#[test]
fn reports_every_problem_of_a_bad_dialect_with_lines() {
    let text = r#"
region = "33"
name = "bad"
codec = "yaml"
[signing]
scheme = "md5-please"
[maps.colour]
pairs = [["00", "green"]]
[services.verifyKode]
path = "/x"
[services.verifyCode]
path = "/v"
[services.verifyCode.response]
fields = [
  { national = "codeColor", dialect = "a..b", map = "color" },
  { national = "updateTime", dialect = "t", date = "dd/MM/yyyy" },
  { national = "codeColour", dialect = "c" },
]
"#;
    let LoadError(problems) =
        Dialect::from_toml("bad", "bad.toml", text, &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.line, p.field.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(2), "region"),
            (Some(4), "codec"),
            (Some(6), "signing.scheme"),
            (Some(9), "services.verifyKode"),
            (Some(15), "services.verifyCode.response.fields[0].dialect"),
            (Some(15), "services.verifyCode.response.fields[0].map"),
            (Some(16), "services.verifyCode.response.fields[1].date"),
            (Some(17), "services.verifyCode.response.fields[2].national"),
        ],
        "{problems:#?}"
    );
    assert!(problems.iter().all(|p| p.file == "bad.toml"));
}

#[test]
fn every_field_a_concatenated_signature_covers_must_be_carried() {
    // Zhejiang's file, as it shipped before its query request named a device: every
    // query through the gateway failed to sign (and counted against Zhejiang's breaker).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/regions/zhejiang.toml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    let with = r#"constants = { format = "json", version = "1.0", deviceId = "hutong-gateway" }"#;
    let old = shipped.replacen(
        with,
        r#"constants = { format = "json", version = "1.0" }"#,
        1,
    );
    assert_ne!(old, shipped, "the query request's constants were not found");
    let LoadError(problems) =
        Dialect::from_toml("zhejiang", "zhejiang.toml", &old, &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(got, ["services.queryHealthInfo.request"], "{problems:#?}");
    assert!(problems[0].message.contains("`deviceId`"), "{problems:#?}");
    // Fields the gateway fills itself (appKey, requestId, timestamp) and the top of a
    // mapped path (bizData) need nothing more: the shipped file loads.
    Dialect::from_toml("zhejiang", "zhejiang.toml", &shipped, &Standard::embedded()).unwrap();
    // A callback is checked too.
    let callback = shipped.replacen(
        r#"constants = { format = "json", version = "1.0", deviceId = "hutong-gateway" }
fields = [
  { event = "eventId""#,
        r#"constants = { format = "json", version = "1.0" }
fields = [
  { event = "eventId""#,
        1,
    );
    assert_ne!(callback, shipped, "the callback's constants were not found");
    let LoadError(problems) = Dialect::from_toml(
        "zhejiang",
        "zhejiang.toml",
        &callback,
        &Standard::embedded(),
    )
    .unwrap_err();
    let got: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(got, ["callback"], "{problems:#?}");
}

#[test]
fn an_xtif_window_is_at_most_what_the_replay_store_covers() {
    let text = |w: u32| {
        format!(
            r#"
region = "440000"
name = "gd"
codec = "json"
[signing]
scheme = "xtif-sha256"
window_s = {w}
[services.verifyCode]
path = "/v"
[services.verifyCode.request]
fields = [{{ national = "codeContent", dialect = "qrcode" }}]
"#
        )
    };
    Dialect::from_toml("gd", "gd.toml", &text(300), &Standard::embedded())
        .unwrap_or_else(|e| panic!("{e}"));
    let LoadError(problems) =
        Dialect::from_toml("gd", "gd.toml", &text(301), &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.line, p.field.as_str()))
        .collect();
    assert_eq!(got, vec![(Some(7), "signing.window_s")], "{problems:#?}");
}

#[test]
fn checks_ingress_paths_signing_keys_and_xml_roots() {
    let text = r#"
region = "420000"
name = "bad"
codec = "xml"
[signing]
scheme = "md5-date-password"
fields = ["a"]
sign_field = "Other.pwd"
[services.verifyCode]
path = "/v"
ingress_path = "v?x=1"
[services.verifyCode.request]
fields = [{ national = "codeContent", dialect = "Envelope.Body.v.qrCode" }]
[services.queryHealthInfo]
path = "/q"
ingress_path = "/v"
ingress = false
[services.generateCode]
path = "/v"
[services.generateCode.response]
constants = { "@xmlns" = "urn:x" }
"#;
    let LoadError(problems) =
        Dialect::from_toml("bad", "bad.toml", text, &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.line, p.field.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(6), "signing.fields"),
            (Some(9), "services.verifyCode.request"),
            (Some(11), "services.verifyCode.ingress_path"),
            (Some(16), "services.queryHealthInfo.ingress_path"),
            (Some(18), "services.generateCode.response"),
        ],
        "{problems:#?}"
    );
    // Ingress defaults to the back-end path, and two services cannot share one.
    let ok = text
        .replace("ingress_path = \"v?x=1\"\n", "")
        .replace("ingress_path = \"/v\"\n", "")
        .replace("fields = [\"a\"]\n", "")
        .replace("Other.pwd", "Envelope.Header.pwd")
        .replace("\"@xmlns\"", "\"Envelope.@xmlns\"");
    let LoadError(problems) =
        Dialect::from_toml("bad", "bad.toml", &ok, &Standard::embedded()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].field, "services.verifyCode.ingress_path");
    assert!(problems[0].message.contains("generateCode"), "{problems:?}");
    let ok = ok.replace(
        "[services.generateCode]\npath = \"/v\"",
        "[services.generateCode]\npath = \"/v\"\ningress_path = \"/g\"",
    );
    let d = Dialect::from_toml("hb", "hb.toml", &ok, &Standard::embedded())
        .unwrap_or_else(|e| panic!("{e}"));
    let ingress: Vec<_> = d
        .services
        .iter()
        .map(|(s, m)| (s.to_string(), m.path.as_str(), m.ingress_path.as_deref()))
        .collect();
    assert_eq!(
        ingress,
        vec![
            ("queryHealthInfo".to_owned(), "/q", None),
            ("generateCode".to_owned(), "/v", Some("/g")),
            ("verifyCode".to_owned(), "/v", Some("/v")),
        ]
    );
    assert_eq!(d.codec, Codec::Xml);
    assert_eq!(d.service_at_ingress("/g"), Some(ServiceName::GenerateCode));
    assert_eq!(d.service_at_ingress("/q"), None);
}

#[test]
fn shipped_dialects_declare_their_ingress() {
    let hb = dialect("hubei");
    assert_eq!(
        hb.service_at_ingress("/hbjkm/code/validateCode"),
        Some(ServiceName::VerifyCode)
    );
    for d in shipped() {
        for (name, s) in &d.services {
            assert_eq!(
                s.ingress_path.as_deref(),
                Some(s.path.as_str()),
                "{} {name}",
                d.id
            );
        }
    }
}

#[test]
fn reports_toml_syntax_errors_with_their_line() {
    let LoadError(p) = Dialect::from_toml(
        "x",
        "x.toml",
        "region = \"330000\"\nname = \n",
        &Standard::embedded(),
    )
    .unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(2));
    let LoadError(p) = Dialect::from_toml(
        "x",
        "x.toml",
        "region = \"330000\"\nname = \"x\"\ncodec = \"json\"\ncolour = 1\n",
        &Standard::embedded(),
    )
    .unwrap_err();
    assert!(p[0].message.contains("colour"), "{p:?}");
}

#[test]
fn recognises_codes_by_url_and_prefix() {
    let mut ds = shipped();
    ds.push(
        Dialect::from_toml(
            "anhui",
            "anhui.toml",
            "region = \"340000\"\nname = \"a\"\ncodec = \"json\"\n[[codes]]\nprefix = \"akm:qrcode:\"\n", &Standard::embedded())
        .unwrap(),
    );
    let zj = recognise(
        &ds,
        "https://healthcode.zj.example.cn/healthAct/index.html?qrCode=V2ab12&stateCouncilBarCode=5c1e0b7a#/result",
    )
    .unwrap();
    assert_eq!(zj.dialect, "zhejiang");
    assert_eq!(zj.code_id, "V2ab12");
    assert_eq!(zj.national_code_id.as_deref(), Some("5c1e0b7a"));
    let ah = recognise(
        &ds,
        "https://akm.ah.example.cn/index.html#/myAkm?isScan=1&id=akm:qrcode:0123abcd&cityNo=340000000000",
    )
    .unwrap();
    assert_eq!(
        (ah.dialect.as_str(), ah.code_id.as_str()),
        ("anhui", "0123abcd")
    );
    assert_eq!(
        recognise(
            &ds,
            "https://evil.example.cn/healthAct/index.html?qrCode=V2"
        ),
        None
    );
}

#[test]
fn maps_jiangsu_result_codes_both_ways() {
    let js = dialect("jiangsu");
    for (res, code) in [
        (0, "0"),
        (1, "9999"),
        (111, "3002"),
        (112, "3001"),
        (116, "1006"),
        (118, "1006"),
        (119, "2002"),
        (7, "9002"),
    ] {
        let t = to_national(
            &js,
            ServiceName::VerifyCode,
            Direction::Response,
            &json!({"resCode": res}),
        )
        .unwrap();
        assert_eq!(t.body["code"], json!(code), "resCode {res}");
        assert_eq!(
            t.losses.is_empty(),
            res != 7,
            "resCode {res}: {:?}",
            t.losses
        );
    }
    let back = to_dialect(
        &js,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"code": "9002"}),
    )
    .unwrap();
    assert_eq!(back.body, json!({"resCode": 1}));
    assert_eq!(back.losses.0[0].kind, LossKind::Defaulted);
}

#[test]
fn names_the_field_path_of_a_bad_value() {
    let zj = dialect("zhejiang");
    let err = to_national(
        &zj,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"errCode": 0, "resultData": {"data": {"level": "purple"}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        TranslateError::UnknownValue {
            path: "resultData.data.level".into(),
            map: "colour".into()
        }
    );
    let err = to_national(
        &zj,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"errCode": 0, "resultData": {"data": {"zjgxsj": "yesterday"}}}),
    )
    .unwrap_err();
    assert!(
        matches!(err, TranslateError::BadValue { ref path, .. } if path == "resultData.data.zjgxsj")
    );
    assert_eq!(err.return_code(Direction::Response), "9002");
}

#[test]
fn reports_truncation_of_long_values_and_sub_second_times() {
    let zj = dialect("zhejiang");
    let t = to_dialect(
        &zj,
        ServiceName::VerifyCode,
        Direction::Request,
        &json!({"codeContent": "x", "verifier": {"orgName": "长".repeat(70)}}),
    )
    .unwrap();
    assert_eq!(
        t.body["bizData"]["unitName"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        64
    );
    assert_eq!(
        t.losses.header_value(),
        "defaulted:verifier.deviceId,truncated:verifier.orgName"
    );
    let t = to_national(
        &zj,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"errCode": 0, "resultData": {"data": {"zjgxsj": 1_795_393_805_123_i64}}}),
    )
    .unwrap();
    assert_eq!(
        t.body["bizContent"]["updateTime"],
        json!("2026-11-23 08:30:05")
    );
    assert_eq!(t.losses.header_value(), "truncated:updateTime");
}

#[test]
fn round_trips_form_bodies() {
    let v =
        json!({"url": "https://a.example.cn/x?qrCode=V5&b=1#/result", "verifierDept": "某 站+"});
    let bytes = codec::encode(Codec::Form, &v).unwrap();
    assert_eq!(codec::decode(Codec::Form, &bytes).unwrap(), v);
    assert!(codec::decode(Codec::Form, b"a=1&a=2").is_err());
    assert!(codec::decode(Codec::Json, b"{").is_err());
    // A key twice in one JSON object is refused, as a repeated form field is: kept last,
    // `errCode` 0 after `errCode` 1 made a refusal a success.
    let twice = br#"{"errCode":1,"errMsg":"expired","errCode":0}"#;
    let err = codec::decode(Codec::Json, twice).unwrap_err().to_string();
    assert!(err.contains("appears twice"), "{err}");
    assert!(codec::decode(Codec::Json, br#"{"a":{"b":1},"c":{"b":2}}"#).is_ok());
}

#[test]
fn a_status_callback_crosses_into_each_dialect_and_back() {
    let event = json!({
        "eventId": "E1",
        "sourceRegion": "330000",
        "codeId": "abc123",
        "colour": "10",
        "statusTime": "2026-11-23 08:30:05",
    });
    let bj = dialect("beijing");
    let msg = callback_to_dialect(&bj, &event).unwrap().unwrap();
    assert_eq!(msg["data"]["status"], "集中观察");
    assert_eq!(msg["data"]["qrCode"], "abc123");
    assert_eq!(msg["type"], "STATUS_CHANGE");
    assert_eq!(callback_to_event(&bj, &msg).unwrap().unwrap(), event);
    let zj = dialect("zhejiang");
    let msg = callback_to_dialect(&zj, &event).unwrap().unwrap();
    assert_eq!(msg["bizData"]["level"], "red");
    assert_eq!(msg["bizData"]["changeTime"], json!(1_795_393_805_000_i64));
    assert_eq!(callback_to_event(&zj, &msg).unwrap().unwrap(), event);
    let js = dialect("jiangsu");
    let msg = callback_to_dialect(&js, &event).unwrap().unwrap();
    assert_eq!(msg["codeColor"], "3");
    assert_eq!(msg["changeTime"], "20261123083005");
    // A colour outside a map without a fallback is refused, not guessed.
    let grey = json!({"colour": "20"});
    assert!(callback_to_dialect(&zj, &grey).is_err());
    // A dialect without [callback] takes none.
    assert!(
        callback_to_dialect(&dialect("anhui"), &event)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_callback_section_is_checked_like_the_rest() {
    let text = r#"
region = "330000"
name = "cb"
codec = "json"
[maps.colour]
pairs = [["00", "green"]]
[callback]
path = "notify"
fields = [
  { event = "colour", dialect = "c", map = "color" },
  { event = "mood", dialect = "m" },
  { event = "statusTime", dialect = "t", date = "dd/MM" },
]
"#;
    let LoadError(problems) =
        Dialect::from_toml("cb", "cb.toml", text, &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "callback.path",
            "callback.fields[0].map",
            "callback.fields[1].event",
            "callback.fields[2].date"
        ],
        "{problems:#?}"
    );
}

#[test]
fn a_holder_of_an_id_type_the_map_does_not_know_is_not_guessed() {
    let d = dialect("beijing");
    let answer = |id_type: Option<&str>| {
        let mut data = json!({"name": "张三", "idCard": "110105194912310029", "status": "1"});
        if let Some(t) = id_type {
            data["idType"] = json!(t);
        }
        json!({"code": 0, "message": "ok", "data": data})
    };
    let holder = |a: &Value| holder_id(&d, ServiceName::QueryHealthInfo, Direction::Response, a);
    assert_eq!(
        holder(&answer(Some("ID_CARD"))).map(|h| h.0),
        Some("10".to_owned())
    );
    // A type outside the map: no holder (an ID card guess would make a second person).
    assert!(holder(&answer(Some("MILITARY_PASS"))).is_none());
    // No type at all: a resident ID card.
    assert_eq!(holder(&answer(None)).map(|h| h.0), Some("10".to_owned()));
}

#[test]
fn zhejiang_names_the_holder_type_the_national_verification_answer_lacks() {
    let d = dialect("zhejiang");
    let answer = |id_type: Option<&str>| {
        let mut data = json!({"name": "张三", "idcardNo": "E12345678", "level": "green"});
        if let Some(t) = id_type {
            data["idcardType"] = json!(t);
        }
        json!({"errCode": 0, "errMsg": "success", "resultData": {"data": data}})
    };
    let holder = |a: &Value| holder_id(&d, ServiceName::VerifyCode, Direction::Response, a);
    // A passport holder is filed as one: before, every verified holder was an ID card (10).
    assert_eq!(
        holder(&answer(Some("PASSPORT"))),
        Some(("20".to_owned(), "E12345678".to_owned()))
    );
    assert!(holder(&answer(Some("MILITARY_PASS"))).is_none());
    assert_eq!(holder(&answer(None)).map(|h| h.0), Some("10".to_owned()));
    // Read for the registry, it is no loss of the translation.
    let back = to_national(
        &d,
        ServiceName::VerifyCode,
        Direction::Response,
        &answer(Some("PASSPORT")),
    )
    .unwrap();
    let items = back.losses.items();
    assert!(!items.iter().any(|l| l.contains("idcardType")), "{items:?}");
}

#[test]
fn a_holder_type_is_read_from_responses_through_a_known_map() {
    let text = r#"
region = "330000"
name = "ht"
codec = "json"
[maps.id_type]
pairs = [["10", "ID"]]
[services.verifyCode]
path = "verify"
[services.verifyCode.request]
holder_type = { dialect = "t" }
[services.verifyCode.response]
holder_type = { dialect = "t", map = "kind" }
"#;
    let LoadError(problems) =
        Dialect::from_toml("ht", "ht.toml", text, &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(
        got.contains(&"services.verifyCode.response.holder_type.map"),
        "{problems:#?}"
    );
    assert!(
        got.contains(&"services.verifyCode.request.holder_type"),
        "{problems:#?}"
    );
}

#[test]
fn a_loss_report_is_bounded_and_its_header_is_ascii() {
    let mut r = LossReport::default();
    for i in 0..5_000 {
        r.push(LossKind::Unmapped, None, Some(&format!("k{i}")), "stray");
    }
    r.push(LossKind::Unmapped, None, Some(&"长".repeat(100)), "long");
    assert_eq!(r.0.len(), MAX_LOSSES + 1);
    assert!(r.0.last().unwrap().detail.contains("not listed"));
    // Another report's losses join under the same limit.
    let mut s = LossReport::default();
    s.push(LossKind::Unmapped, None, Some(&"名".repeat(100)), "long");
    let one = s.0[0].dialect.clone().unwrap();
    assert!(one.len() <= MAX_LOSS_PATH + '…'.len_utf8(), "{}", one.len());
    assert!(one.ends_with('…'));
    s.extend(r);
    assert_eq!(s.0.len(), MAX_LOSSES + 1);
    let h = s.header_value();
    assert!(hyper::header::HeaderValue::from_str(&h).is_ok());
    assert!(h.starts_with("unmapped:(d)%E5%90%8D"), "{}", &h[..40]);
    assert!(h.len() <= MAX_LOSS_HEADER, "{}", h.len());
    // Long Chinese paths, percent-encoded, would go far past it.
    let mut long = LossReport::default();
    for i in 0..MAX_LOSSES {
        long.push(
            LossKind::Unmapped,
            None,
            Some(&format!("{i}{}", "名".repeat(60))),
            "",
        );
    }
    let h = long.header_value();
    assert!(h.len() <= MAX_LOSS_HEADER, "{}", h.len());
    assert!(h.ends_with(",more"), "{}", &h[h.len() - 40..]);
    assert!(h.starts_with("unmapped:(d)0%E5%90%8D"), "{}", &h[..40]);
    // A short report is whole.
    let mut short = LossReport::default();
    short.push(LossKind::Unmapped, None, Some("a.b"), "stray");
    assert_eq!(short.header_value(), "unmapped:(d)a.b");
}

#[test]
fn a_message_path_shows_only_what_looks_like_field_names() {
    for (path, shown) in [
        ("resultData.data.zjgxsj", "resultData.data.zjgxsj"),
        ("data.members.110101199003071234", "data.members.(key)"),
        ("data.13800138000.x", "data.(key).x"),
        ("data.张三", "data.(key)"),
        ("data.[a.b]", "data.(key).(key)"),
        ("data.a@b", "data.(key)"),
        ("data.yq_2026-11", "data.yq_2026-11"),
        ("data.r330100x", "data.(key)"),
        ("data.9lives", "data.(key)"),
        ("data.@id", "data.@id"),
        ("data.#text", "data.#text"),
        ("data.@110101199003071234", "data.(key)"),
    ] {
        assert_eq!(message_path(path), shown, "{path}");
    }
}

/// A region that keys a map by ID number gets that map reported as lost: the report goes to
/// the caller in a header and into the audit record, so the key is not in it.
#[test]
fn an_unmapped_key_of_a_regions_answer_is_not_repeated() {
    let zj = dialect("zhejiang");
    let t = to_national(
        &zj,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"errCode": 0, "resultData": {"data": {"zjgxsj": 1_795_393_805_123_i64,
            "members": {"110101199003071234": "00"}}}}),
    )
    .unwrap();
    let h = t.losses.header_value();
    assert!(!h.contains("110101199003071234"), "{h}");
    assert!(
        h.contains("unmapped:(d)resultData.data.members.(key)"),
        "{h}"
    );
}

#[test]
fn a_field_shown_masked_needs_its_mask() {
    let text = r#"
region = "330000"
name = "nm"
codec = "json"
[services.verifyCode]
path = "/verify"
[services.verifyCode.response]
fields = [
  { national = "nameMasked", dialect = "n" },
  { national = "idNoMasked", dialect = "i", mask = "id" },
]
"#;
    let LoadError(problems) =
        Dialect::from_toml("nm", "nm.toml", text, &Standard::embedded()).unwrap_err();
    let got: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        got,
        ["services.verifyCode.response.fields[0].mask"],
        "{problems:#?}"
    );
}

/// Hubei's SOAP request carries its credentials in `Envelope.Header`, put in when the
/// request is signed, after the business content was written under `Envelope.Body`: the
/// Header came after the Body, which SOAP 1.1 does not allow.
#[test]
fn a_soap_header_comes_before_its_body() {
    let hb = dialect("hubei");
    let mut t = to_dialect(
        &hb,
        ServiceName::VerifyCode,
        Direction::Request,
        &json!({"codeContent": "x", "verifier": {"orgName": "武汉某站", "deviceId": "D-1"}}),
    )
    .unwrap();
    let creds = sign::Credentials {
        id: "hutong",
        key: b"",
        secret: "s3cret",
    };
    let at = sign::Stamp {
        unix_s: 1_795_393_805,
        nonce: "n",
    };
    sign::sign(&hb.signing, &mut t.body, &creds, &at).unwrap();
    let xml = String::from_utf8(codec::encode(hb.codec, &t.body).unwrap()).unwrap();
    let (header, body) = (xml.find("<Header").unwrap(), xml.find("<Body").unwrap());
    assert!(header < body, "{xml}");
    assert!(xml.contains("<appId>hutong</appId>"), "{xml}");
}

/// A refusal whose fields hold placeholders: Jiangsu's "no code" (112) with an empty colour
/// failed the whole translation, so the caller got 9002 and the region's breaker counted a
/// failure, instead of the refusal. A success with the same value still fails.
#[test]
fn a_refusal_is_read_though_its_fields_do_not() {
    let js = dialect("jiangsu");
    let t = to_national(
        &js,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"resCode": 112, "res": {"level": ""}}),
    )
    .unwrap();
    assert_eq!(t.body["code"], "3001", "{}", t.body);
    assert!(t.body.get("bizContent").is_none(), "{}", t.body);
    assert!(
        t.losses.header_value().contains("truncated:codeColor"),
        "{}",
        t.losses.header_value()
    );
    let e = to_national(
        &js,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"resCode": 0, "res": {"level": ""}}),
    )
    .unwrap_err();
    assert_eq!(e.return_code(Direction::Response), "9002");
}

/// Two `<yqReports>` in Hubei's answer are an array, where one is an object: the rules
/// under it read nothing, and the declaration's temperature, symptoms and time were lost
/// with only the array reported.
#[test]
fn a_repeated_element_is_read_from_its_first() {
    let hb = dialect("hubei");
    let xml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dialects/hubei/query.response.xml"),
    )
    .unwrap();
    let twice = xml.replace(
        "</yqReports>",
        "</yqReports>\n<yqReports><date>2026-11-22 07:00:00</date><temperature>36.5</temperature><symptom>1</symptom></yqReports>",
    );
    let once = codec::decode(hb.codec, xml.as_bytes()).unwrap();
    let twice = codec::decode(hb.codec, twice.as_bytes()).unwrap();
    let one = to_national(
        &hb,
        ServiceName::QueryHealthInfo,
        Direction::Response,
        &once,
    )
    .unwrap();
    let two = to_national(
        &hb,
        ServiceName::QueryHealthInfo,
        Direction::Response,
        &twice,
    )
    .unwrap();
    assert_eq!(
        two.body["bizContent"]["health"], one.body["bizContent"]["health"],
        "{}",
        two.body
    );
    assert_eq!(two.body["bizContent"]["health"]["temperature"], json!(37.4));
    let h = two.losses.header_value();
    assert!(h.contains("truncated:health.temperature"), "{h}");
    assert!(
        !h.contains("unmapped:(d)Envelope.Body.validateInfoResponse.content.data.yqReports,"),
        "{h}"
    );
    assert!(
        !one.losses.header_value().contains("truncated:health"),
        "{}",
        one.losses.header_value()
    );
}

/// What made every call or every callback fail at run time is refused at load: an egress
/// path that is not absolute when ingress is off, a lowercase method, a result message
/// that is no path, a nested callback field of a form dialect, a date password's window of
/// a day.
#[test]
fn a_dialect_that_would_fail_at_run_time_is_refused_at_load() {
    let text = r#"
region = "330000"
name = "nm"
codec = "form"
response_codec = "json"
[signing]
scheme = "md5-date-password"
sign_field = "pwd"
window_s = 86400
[maps.res]
pairs = [["0", "0"]]
[services.verifyCode]
path = "x/y"
method = "post"
ingress = false
[services.verifyCode.request]
fields = [{ national = "codeContent", dialect = "qrcode" }]
[services.verifyCode.response]
result = { dialect = "code", map = "res", message = "a..b" }
[callback]
path = "/cb"
fields = [{ event = "eventId", dialect = "event.id" }]
"#;
    let LoadError(problems) =
        Dialect::from_toml("bad", "bad.toml", text, &Standard::embedded()).unwrap_err();
    let mut got: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            "callback.fields[0].dialect",
            "services.verifyCode.method",
            "services.verifyCode.path",
            "services.verifyCode.response.result.message",
            "signing.window_s",
        ],
        "{problems:#?}"
    );
}
