//! Checks of the parts of a dialect file around the field rules: the signing scheme and the
//! fields it covers, the code patterns, the ingress paths, and the one root element of an
//! XML message.

use std::collections::BTreeMap;

use toml::Spanned;

use super::super::dialect::{CodePattern, GatewayFilled, MessageMap, SignTarget, Signing};
use super::super::path;
use super::super::sign::DEFAULT_WINDOW_S;
use super::{Checker, RawCode, RawService, RawSigning};
use crate::standard::ServiceName;

/// The schemes a file may name, for the error message.
/// Largest `window_s` of a date password, seconds.
const MAX_DATE_WINDOW_S: u32 = 3_600;
const SCHEMES: &str = "none, hmac-sha256-concat, md5-date-password, xtif-sha256, national-sm2";

pub(super) fn check_signing(s: &RawSigning, ck: &mut Checker<'_>) -> Signing {
    let scheme = s.scheme.get_ref().as_str();
    // Keys that only some schemes read; another scheme naming them is a mistake.
    let given = [
        ("fields", !s.fields.is_empty()),
        ("sign_field", s.sign_field.is_some()),
        ("header", s.header.is_some()),
        ("id_field", s.id_field.is_some()),
        ("window_s", s.window_s.is_some()),
    ];
    let allowed: &[&str] = match scheme {
        "hmac-sha256-concat" => &["fields", "sign_field"],
        "md5-date-password" => &["sign_field", "header", "id_field", "window_s"],
        "xtif-sha256" => &["window_s"],
        _ => &[],
    };
    for (key, present) in given {
        if present && !allowed.contains(&key) {
            ck.at(
                &s.scheme,
                &format!("signing.{key}"),
                format!("`{scheme}` does not read `{key}`"),
            );
        }
    }
    let field = |f: &Spanned<String>, name: &str, ck: &mut Checker<'_>| {
        if !path::is_valid(f.get_ref()) {
            ck.at(
                f,
                &format!("signing.{name}"),
                format!("`{}` is not a dotted field path", f.get_ref()),
            );
        }
        f.get_ref().clone()
    };
    let window_s = s
        .window_s
        .as_ref()
        .map_or(DEFAULT_WINDOW_S, |w| *w.get_ref());
    // A request is refused as a replay while its nonce is remembered, twice the national
    // skew (crate::envelope::DEFAULT_NONCE_TTL_MS): a wider window would accept it again.
    // A date password holds for its Beijing date; the window is the slack at midnight.
    if let (Some(w), "md5-date-password") = (&s.window_s, scheme) {
        if *w.get_ref() > MAX_DATE_WINDOW_S {
            ck.at(
                w,
                "signing.window_s",
                format!("at most {MAX_DATE_WINDOW_S} s, the slack around midnight"),
            );
        }
    }
    if let (Some(w), "xtif-sha256") = (&s.window_s, scheme) {
        if *w.get_ref() > DEFAULT_WINDOW_S {
            ck.at(
                w,
                "signing.window_s",
                format!(
                    "at most {DEFAULT_WINDOW_S} s: the gateway remembers a nonce for twice that"
                ),
            );
        }
    }
    match scheme {
        "none" => Signing::None,
        "national-sm2" => Signing::NationalSm2,
        "hmac-sha256-concat" => {
            if s.fields.is_empty() {
                ck.at(
                    &s.scheme,
                    "signing.fields",
                    "hmac-sha256-concat needs the fields to concatenate",
                );
            }
            for (i, f) in s.fields.iter().enumerate() {
                if !path::is_valid(f) {
                    ck.at(
                        &s.scheme,
                        &format!("signing.fields[{i}]"),
                        format!("`{f}` is not a dotted field path"),
                    );
                }
            }
            Signing::HmacSha256Concat {
                fields: s.fields.clone(),
                sign_field: s
                    .sign_field
                    .as_ref()
                    .map_or_else(|| "sign".to_owned(), |f| field(f, "sign_field", ck)),
            }
        }
        "md5-date-password" => {
            let target = match (&s.sign_field, &s.header) {
                (Some(f), None) => SignTarget::Field(field(f, "sign_field", ck)),
                (None, Some(h)) => {
                    let name = h.get_ref();
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        ck.at(
                            h,
                            "signing.header",
                            format!("`{name}` is not a header name"),
                        );
                    }
                    SignTarget::Header(name.to_ascii_lowercase())
                }
                _ => {
                    ck.at(
                        &s.scheme,
                        "signing.sign_field",
                        "md5-date-password needs one of `sign_field` and `header`",
                    );
                    SignTarget::Field("pwd".to_owned())
                }
            };
            Signing::Md5DatePassword {
                target,
                id_field: s.id_field.as_ref().map(|f| field(f, "id_field", ck)),
                window_s,
            }
        }
        "xtif-sha256" => Signing::XtifSha256 { window_s },
        other => {
            ck.at(
                &s.scheme,
                "signing.scheme",
                format!("`{other}` is not a signing scheme ({SCHEMES})"),
            );
            Signing::None
        }
    }
}

pub(super) fn check_code(c: &RawCode, field: &str, ck: &mut Checker<'_>) -> Option<CodePattern> {
    match (&c.prefix, &c.host, &c.param) {
        (Some(p), None, None) if !p.is_empty() => Some(CodePattern::Prefix(p.clone())),
        (None, Some(host), Some(param)) => Some(CodePattern::Url {
            host: host.clone(),
            path_prefix: c.path_prefix.clone().unwrap_or_else(|| "/".to_owned()),
            param: param.clone(),
            national_param: c.national_param.clone(),
        }),
        _ => {
            ck.push(
                None,
                field,
                "a code pattern is either `prefix`, or `host` and `param`",
            );
            None
        }
    }
}

/// The ingress path of a service: `ingress_path`, else `path`; `None` when disabled.
/// Checks its form; [`check_unique_ingress`] checks the set.
pub(super) fn check_ingress(
    s: &RawService,
    service: ServiceName,
    ck: &mut Checker<'_>,
) -> Option<(String, usize)> {
    let base = format!("services.{service}");
    if !s.ingress {
        if let Some(p) = &s.ingress_path {
            ck.at(
                p,
                &format!("{base}.ingress_path"),
                "given, but `ingress = false` disables ingress",
            );
        }
        return None;
    }
    let (p, field) = match &s.ingress_path {
        Some(p) => (p, "ingress_path"),
        None => (&s.path, "path"),
    };
    let text = p.get_ref();
    let line = ck.line(p.span().start);
    if !text.starts_with('/')
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        let why = if field == "path" {
            "is also the ingress path, which must start with `/` and have no query, fragment or space (or give `ingress_path`, or `ingress = false`)"
        } else {
            "must start with `/` and have no query, fragment or space"
        };
        ck.at(p, &format!("{base}.{field}"), format!("`{text}` {why}"));
        return None;
    }
    Some((text.clone(), line))
}

/// Two services of one dialect cannot share an ingress path.
pub(super) fn check_unique_ingress(paths: &[(ServiceName, String, usize)], ck: &mut Checker<'_>) {
    let mut seen: BTreeMap<&str, ServiceName> = BTreeMap::new();
    for (service, p, line) in paths {
        if let Some(first) = seen.insert(p, *service) {
            ck.push(
                Some(*line),
                &format!("services.{service}.ingress_path"),
                format!("`{p}` is already the ingress path of {first}"),
            );
        }
    }
}

/// Every dialect path of an XML message starts at one root element; `extra` are paths the
/// signing scheme writes into requests.
pub(super) fn check_xml_root(
    m: &MessageMap,
    (base, line): (&str, usize),
    extra: &[&str],
    ck: &mut Checker<'_>,
) {
    let mut paths: Vec<&str> = m.rules.iter().map(|r| r.dialect.as_str()).collect();
    paths.extend(m.constants.iter().map(|(p, _)| p.as_str()));
    paths.extend(m.ignore.iter().map(String::as_str));
    if let Some(r) = &m.result {
        paths.push(&r.dialect);
        paths.extend(r.message.as_deref());
    }
    paths.extend(extra);
    let mut roots: Vec<&str> = paths
        .iter()
        .map(|p| p.split('.').next().unwrap_or_default())
        .collect();
    roots.sort_unstable();
    roots.dedup();
    if roots.len() > 1 {
        ck.push(
            Some(line),
            base,
            format!(
                "an XML message has one root element, but its paths start at {}",
                roots
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if roots.iter().any(|r| r.starts_with('@') || *r == "#text") {
        ck.push(
            Some(line),
            base,
            "an XML message starts at an element, not an attribute or text",
        );
    }
}

/// Every field an `hmac-sha256-concat` signature covers must be on each message the
/// gateway sends (a request, or a callback): a constant, the top of a mapped field's path, or one
/// the gateway fills itself ([`GatewayFilled`]). Otherwise every call of that service
/// fails to sign, after the translation, with nothing said at load.
pub(super) fn check_signed_fields(
    signing: &Signing,
    constants: &[(String, serde_json::Value)],
    mapped: &[&str],
    (at, line): (&str, usize),
    ck: &mut Checker<'_>,
) {
    let Signing::HmacSha256Concat { fields, .. } = signing else {
        return;
    };
    for f in fields {
        let present = GatewayFilled::of(f).is_some()
            || constants.iter().any(|(k, _)| k == f)
            || mapped
                .iter()
                .any(|d| d.split('.').next() == Some(f.as_str()));
        if !present {
            ck.push(
                Some(line),
                at,
                format!(
                    "the signature covers `{f}`, which this message never carries: add it to \
                     `constants` or map a field to it"
                ),
            );
        }
    }
}
