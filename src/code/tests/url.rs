//! The URL form, recognised content, return codes, and mutated tokens (property tests).

use super::*;

#[test]
fn url_form_round_trips_and_verifies() {
    let fx = fixture();
    let mut c = claims(NOW);
    c.nc = Some(CodeId::random().unwrap());
    let token = issue(&fx.key, &c).unwrap();
    let url = CodeUrl::for_token("Code.Example.cn", &token).unwrap();
    let text = url.to_url();
    assert!(
        text.starts_with("https://code.example.cn/phic/c?v=1&cid="),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("&pc={token}")),
        "token must pass unescaped"
    );
    assert_eq!(CodeUrl::parse(&text).unwrap(), url);
    assert_eq!(fx.verifier.verify_content(&text).unwrap().claims.cid, c.cid);
    assert_eq!(
        fx.verifier.verify_content(&token).unwrap().claims.cid,
        c.cid
    );

    // Upper-case scheme and host, a fragment, an unknown parameter, escaped token dots.
    let variant = format!(
        "HTTPS://CODE.EXAMPLE.CN/phic/c?v=1&cid={}&iss=33000001&utm=x&pc={}#/result",
        c.cid,
        token.replace('.', "%2E")
    );
    assert_eq!(
        CodeUrl::parse(&variant).unwrap().pc.as_deref(),
        Some(token.as_str())
    );
    assert!(fx.verifier.verify_content(&variant).is_ok());
}

#[test]
fn url_hints_must_match_the_signed_token() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let mut url = CodeUrl::for_token("code.example.cn", &token).unwrap();
    url.cid = CodeId::random().unwrap();
    assert_eq!(
        fx.verifier.verify_content(&url.to_url()).unwrap_err(),
        CodeError::UrlMismatch
    );
    // Nor are its ids taken for links and visits (the holder would be linked under the
    // URL's cid, which the caller wrote).
    let ids_match = |u: &CodeUrl| ids_match_token(&Phic1Format.recognise(&u.to_url()).unwrap());
    assert!(!ids_match(&url));
    let mut other_iss = CodeUrl::for_token("code.example.cn", &token).unwrap();
    other_iss.iss = IssuerId::parse("11000001").unwrap();
    assert!(!ids_match(&other_iss));
    let same = CodeUrl::for_token("code.example.cn", &token).unwrap();
    assert!(ids_match(&same));
    let mut no_token = same.clone();
    no_token.pc = None;
    assert!(ids_match(&no_token), "nothing signed to compare with");
    url = CodeUrl::for_token("code.example.cn", &token).unwrap();
    url.nc = Some(CodeId::random().unwrap());
    assert_eq!(code_of(fx.verifier.verify_content(&url.to_url())), "3001");
    url.nc = None;
    url.pc = None;
    assert_eq!(
        fx.verifier.verify_content(&url.to_url()).unwrap_err(),
        CodeError::NoToken
    );
}

#[test]
fn verifying_recognised_content_agrees_with_verifying_the_text() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let good = CodeUrl::for_token("code.example.cn", &token).unwrap();
    let mut other_cid = good.clone();
    other_cid.cid = CodeId::random().unwrap();
    let mut other_iss = good.clone();
    other_iss.iss = IssuerId::parse("32000001").unwrap();
    let mut other_nc = good.clone();
    other_nc.nc = Some(CodeId::random().unwrap());
    let mut no_token = good.clone();
    no_token.pc = None;
    let mut tampered = token.clone();
    tampered.pop();
    // A token that carries a national code id, under URLs that keep, omit or change it.
    let mut with_nc = claims(NOW);
    with_nc.nc = Some(CodeId::random().unwrap());
    let nc_token = issue(&fx.key, &with_nc).unwrap();
    let nc_url = CodeUrl::for_token("code.example.cn", &nc_token).unwrap();
    let mut nc_omitted = nc_url.clone();
    nc_omitted.nc = None;
    let mut nc_changed = nc_url.clone();
    nc_changed.nc = Some(CodeId::random().unwrap());
    let contents = [
        good.to_url(),
        token.clone(),
        other_cid.to_url(),
        other_iss.to_url(),
        other_nc.to_url(),
        no_token.to_url(),
        tampered.clone(),
        CodeUrl::for_token("code.example.cn", &token)
            .unwrap()
            .to_url()
            .replace(&token, &tampered),
        nc_url.to_url(),
        nc_omitted.to_url(),
        nc_changed.to_url(),
        nc_token.clone(),
        // Upper-case scheme and host, and the token's dots escaped.
        good.to_url()
            .replace("https://code.example.cn", "HTTPS://CODE.EXAMPLE.CN")
            .replace(&token, &token.replace('.', "%2E")),
        // A bare "token" whose payload does not parse.
        format!("{PREFIX}bm90IGpzb24.c2ln"),
    ];
    let mut outcomes = Vec::new();
    for content in &contents {
        let rec = Phic1Format.recognise(content).expect("PHIC1");
        let by_text = fx.verifier.verify_content(content).map(|v| v.claims.cid);
        let by_rec = fx.verifier.verify_recognised(&rec).map(|v| v.claims.cid);
        assert_eq!(by_text, by_rec, "{content}");
        outcomes.push(by_rec.map_or_else(|e| e.return_code().as_str().to_owned(), |_| "ok".into()));
    }
    // The cases do differ: six pass, the rest fail for their own reasons.
    assert_eq!(
        outcomes.iter().filter(|o| *o == "ok").count(),
        6,
        "{outcomes:?}"
    );
}

#[test]
fn malformed_urls_are_refused() {
    let cid = "0123456789abcdef0123456789abcdef";
    for bad in [
        format!("http://h.cn/phic/c?v=1&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/x?v=1&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=2&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=1&cid={cid}"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&pc=abc"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&pc=%FF"),
        format!("https://h_x.cn/phic/c?v=1&cid={cid}&iss=33000001"),
        format!("https://user@h.cn/phic/c?v=1&cid={cid}&iss=33000001"),
        format!("https://h.cn:99999/phic/c?v=1&cid={cid}&iss=33000001"),
        // Our names spelled another way: a region's parser may read these instead.
        format!("https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&%69ss=11000001"),
        format!("https://h.cn/phic/c?v=1&CID={cid}&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&P%43=x"),
        "https://".to_owned(),
        "https://h.cn/phic/c".to_owned(),
    ] {
        assert!(CodeUrl::parse(&bad).is_err(), "{bad}");
    }
    let ok = CodeUrl::parse(&format!(
        "https://h.cn:8443/phic/c?v=1&cid={cid}&iss=33000001"
    ))
    .unwrap();
    assert_eq!((ok.host.as_str(), ok.pc), ("h.cn:8443", None));
    // Other parameters are passed over, however spelled.
    assert!(
        CodeUrl::parse(&format!(
            "https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&utm%5Fsource=x&Ref=y"
        ))
        .is_ok()
    );
}

#[test]
fn phic1_format_recognises_both_forms() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let f = Phic1Format;
    assert_eq!(f.name(), "phic1");
    let r = f.recognise(&token).unwrap();
    assert_eq!(r.issuer_hint.as_deref(), Some("33000001"));
    assert_eq!(r.token.as_deref(), Some(token.as_str()));
    let url = CodeUrl::for_token("code.example.cn", &token)
        .unwrap()
        .to_url();
    let r = f.recognise(&url).unwrap();
    assert_eq!(r.host.as_deref(), Some("code.example.cn"));
    assert_eq!(r.token.as_deref(), Some(token.as_str()));
    assert!(f.recognise("https://hbjkm.example.cn/code?id=1").is_none());
    // Still PHIC1 when broken; verification says why.
    assert_eq!(f.recognise("PHIC1.garbage").unwrap().issuer_hint, None);

    let formats: [&dyn CodeFormat; 1] = [&f];
    assert_eq!(recognise_any(&formats, &url).unwrap().format, "phic1");
    assert_eq!(
        recognise_any(&formats, "hello").unwrap_err().return_code(),
        ReturnCode::CodeInvalid
    );
    let long = "P".repeat(MAX_CONTENT_BYTES + 1);
    assert_eq!(
        recognise_any(&formats, &long).unwrap_err(),
        CodeError::TooLong(long.len())
    );
}

#[test]
fn return_codes_follow_the_profile() {
    use CodeError::*;
    let cases = [
        (Malformed("x"), "3001"),
        (TooLong(1), "3001"),
        (Expired, "3002"),
        (NotYetValid, "3002"),
        (UnknownIssuer, "3003"),
        (KeyNotValid, "3003"),
        (KeyRevoked, "3004"),
        (BadSignature, "3004"),
    ];
    for (e, code) in cases {
        assert_eq!(e.return_code().as_str(), code, "{e:?}");
    }
}

fn mutation() -> impl Strategy<Value = (prop::sample::Index, char)> {
    (
        any::<prop::sample::Index>(),
        prop_oneof![
            prop::char::range(' ', '~'),
            Just('\u{0}'),
            Just('é'),
            Just('码'),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_single_character_change_is_rejected((idx, ch) in mutation()) {
        let fx = fixture();
        let token = issue(&fx.key, &claims(NOW)).unwrap();
        let i = idx.index(token.len());
        prop_assume!(token.as_bytes()[i] as char != ch);
        let mut forged = token.clone();
        forged.replace_range(i..=i, ch.encode_utf8(&mut [0; 4]));
        let code = code_of(fx.verifier.verify(&forged));
        // 3003 is right only when the change landed on `iss` or `kid`, naming an issuer
        // or key the list does not have: the trust check comes before the signature.
        let renamed = token::parse(&forged)
            .is_ok_and(|p| p.claims.iss.as_str() != "33000001" || p.claims.kid.as_str() != "zj-2024a");
        prop_assert!(
            code == "3001" || code == "3004" || (code == "3003" && renamed),
            "{} at {} gave {}", ch, i, code
        );
    }

    #[test]
    fn truncation_is_rejected(cut in 0usize..400) {
        let fx = fixture();
        let token = issue(&fx.key, &claims(NOW)).unwrap();
        let cut = cut % token.len();
        let code = code_of(fx.verifier.verify(&token[..cut]));
        prop_assert!(code == "3001" || code == "3004", "cut {} gave {}", cut, code);
    }

    #[test]
    fn arbitrary_content_never_panics(s in "\\PC{0,300}") {
        let fx = fixture();
        let _ = fx.verifier.verify_content(&s);
        let _ = Phic1Format.recognise(&s);
        let _ = fx.verifier.verify_content(&format!("PHIC1.{s}"));
        let _ = CodeUrl::parse(&format!("https://h.cn/phic/c?{s}"));
    }
}
