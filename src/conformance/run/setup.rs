//! Set-up: the fixtures file, what the target's own services give for its persons (codes,
//! tickets, consents), and the templates filled from both (the placeholders are in
//! [`super`]'s docs).

use super::*;
use crate::standard::PersonalClass;

/// A person the target holds, named by the fixtures file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// ID type code.
    #[serde(rename = "idType")]
    pub id_type: String,
    /// ID number.
    #[serde(rename = "idNo")]
    pub id_no: String,
    /// Full name.
    pub name: String,
}

/// What the target's operator tells the suite (`--fixtures FILE`): persons it holds, by
/// label (`green`, `yellow`), and codes only it can make.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// Persons by label.
    #[serde(default)]
    pub person: BTreeMap<String, Person>,
    /// Codes by label (`expired`).
    #[serde(default)]
    pub code: BTreeMap<String, String>,
    /// BizExtData tickets by label (`expired`: one the target sealed for the suite's
    /// client, past its lifetime).
    #[serde(default)]
    pub ticket: BTreeMap<String, String>,
}

impl Fixtures {
    /// Reads a fixtures file.
    ///
    /// # Errors
    /// A message naming the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
    }
}

/// The values placeholders stand for, and the personal values no answer may show.
#[derive(Debug, Default)]
pub struct Context {
    pub(super) values: BTreeMap<String, Value>,
    /// Each with its class, which says how a report masks it.
    pub(super) secrets: Vec<(PersonalClass, String)>,
}

impl Context {
    /// Masks every personal value in `text` (for reports) as [`Context::leaks`] finds them:
    /// in any ASCII case (an ID number's `x`), and written as JSON's `\uXXXX` escapes (a
    /// target that writes ASCII-only JSON sends a name that way).
    pub fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |t, (class, s)| {
            let masked = crate::mask::mask(*class, s);
            let t = replace_any_case(&t, s, &masked);
            if s.is_ascii() {
                t
            } else {
                replace_any_case(&t, &json_escaped(s), &masked)
            }
        })
    }

    /// The first fixture value `text` carries whole: an ID number in either case (`…123x`
    /// is the same number), a name as written.
    pub(super) fn leaks(&self, text: &str) -> Option<&str> {
        let folded = text.to_ascii_lowercase();
        self.secrets
            .iter()
            .find(|(class, s)| {
                text.contains(s.as_str())
                    || (*class == PersonalClass::Id && folded.contains(&s.to_ascii_lowercase()))
            })
            .map(|(_, s)| s.as_str())
    }
}

/// `text` with every occurrence of `what`, in any ASCII case, replaced by `with`.
fn replace_any_case(text: &str, what: &str, with: &str) -> String {
    if what.is_empty() {
        return text.to_owned();
    }
    // ASCII case folding keeps every byte where it was, so offsets in the folded text are
    // offsets in `text`, on character boundaries.
    let (folded, what) = (text.to_ascii_lowercase(), what.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(at) = folded[from..].find(&what) {
        out.push_str(&text[from..from + at]);
        out.push_str(with);
        from += at + what.len();
    }
    out.push_str(&text[from..]);
    out
}

/// `s` with every character outside ASCII written as JSON's `\uXXXX` (a pair of them
/// beyond the Basic Multilingual Plane).
fn json_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// The first `nameMasked` or `idNoMasked`, at any depth of `v`, that shows more than the
/// profile's masking allows (the first character of a name; 2 + 2 of an ID number): as
/// its key and the value masked by the profile's rule (never the value itself). A value
/// masked by the rule is unchanged by it; one that is not, is.
pub(super) fn lax_mask(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let class = match k.as_str() {
                "nameMasked" => Some(PersonalClass::Name),
                "idNoMasked" => Some(PersonalClass::Id),
                _ => None,
            };
            match (class, x) {
                (Some(c), Value::String(s)) => {
                    let strict = crate::mask::mask(c, s);
                    (strict != *s).then(|| (k.clone(), strict))
                }
                (_, x) => lax_mask(x),
            }
        }),
        Value::Array(a) => a.iter().find_map(lax_mask),
        _ => None,
    }
}

/// Why the suite could not run at all.
#[derive(Debug, thiserror::Error)]
#[error("set-up: {why}")]
pub struct SetupError {
    /// What failed, masked.
    pub why: String,
    /// The target answered, and its answer breaks the standard (its signature does not
    /// verify, or it answers another request): the target does not conform, as a failed
    /// case would say, though no case could run.
    pub nonconforming: bool,
}

impl SetupError {
    /// A set-up that could not be done (the target unreachable, a fixture missing).
    pub fn new(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            nonconforming: false,
        }
    }
}

/// Asks the target for what the cases need: per fixture person, a consent, a code and a
/// verification ticket.
///
/// # Errors
/// [`SetupError`] when the target does not give them: then no case can be judged.
pub async fn setup(client: &GatewayClient, fixtures: &Fixtures) -> Result<Context, SetupError> {
    let mut ctx = Context::default();
    let now = i64::try_from(crate::auth::now_unix()).unwrap_or_default();
    ctx.values
        .insert("now".into(), json!(DateTime::from_unix(now).to_string()));
    ctx.values
        .insert("code.garbage".into(), json!("PHIC1.not-a-token"));
    ctx.values
        .insert("long.text".into(), json!("长".repeat(501)));
    ctx.values
        .insert("code.untrusted".into(), json!(untrusted_code(now)?));
    for (label, code) in &fixtures.code {
        ctx.values.insert(format!("code.{label}"), json!(code));
    }
    for (label, t) in &fixtures.ticket {
        ctx.values.insert(format!("ticket.{label}"), json!(t));
    }
    // The fixture persons' values: masked in the reports, and in what the target says
    // before it is printed here.
    for p in fixtures.person.values() {
        ctx.secrets.push((PersonalClass::Id, p.id_no.clone()));
        if p.name.chars().count() > 1 {
            ctx.secrets.push((PersonalClass::Name, p.name.clone()));
        }
    }
    let masker = Context {
        secrets: ctx.secrets.clone(),
        ..Context::default()
    };
    let fail = |what: &str, x: &crate::client::Exchange| {
        // The target's own message says why (`invalid business content: user.idNo`); it
        // may echo a person's values, masked here before the terminal and the CI log.
        let said = x
            .envelope
            .as_ref()
            .map(|e| e.msg.as_str())
            .unwrap_or_default();
        let why = x.open_error.as_deref().unwrap_or(said);
        // A signed envelope (it has its code and its sign) that does not verify, or
        // answers another request, is the target's; anything else (a proxy's HTML page, a
        // wrong path) says nothing of it.
        let envelope = serde_json::from_slice::<Value>(&x.raw)
            .ok()
            .is_some_and(|v| v.get("sign").is_some() && v.get("code").is_some());
        let nonconforming = envelope && x.open_error.is_some();
        let hint = if nonconforming {
            " (or the client profile's key of the target is not the one it signs with)"
        } else {
            ""
        };
        SetupError {
            why: masker
                .mask(&format!("{what}: code {} {}{hint}", x.code(), why))
                .trim_end()
                .to_owned(),
            nonconforming,
        }
    };
    for (label, p) in &fixtures.person {
        for (k, v) in [
            ("idType", &p.id_type),
            ("idNo", &p.id_no),
            ("name", &p.name),
        ] {
            ctx.values.insert(format!("person.{label}.{k}"), json!(v));
        }
        let user = json!({"idType": p.id_type, "idNo": p.id_no, "name": p.name});
        let x = client
            .call(
                ServiceName::ApplyCodeAccess,
                &json!({"user": user, "authType": "FACE", "authProof": "conformance-suite"}),
            )
            .await
            .map_err(|e| SetupError::new(e.to_string()))?;
        let biz = x
            .biz
            .clone()
            .ok_or_else(|| fail(&format!("applyCodeAccess for {label}"), &x))?;
        for k in ["authCode", "userToken"] {
            if let Some(v) = biz.get(k) {
                ctx.values.insert(format!("{k}.{label}"), v.clone());
            }
        }
        let x = client
            .call(
                ServiceName::GenerateCode,
                &json!({"userToken": biz.get("userToken").cloned().unwrap_or_default()}),
            )
            .await
            .map_err(|e| SetupError::new(e.to_string()))?;
        let code = x
            .biz
            .as_ref()
            .and_then(|b| b.get("codeContent"))
            .cloned()
            .ok_or_else(|| fail(&format!("generateCode for {label}"), &x))?;
        ctx.values.insert(format!("code.{label}"), code.clone());
        if label == "green" {
            // The same code with a character inside its signature changed (not the last:
            // that one carries padding bits, and would make it unparseable): 3004.
            ctx.values.insert(
                "code.tampered".into(),
                json!(tamper_signature(code.as_str().unwrap_or_default())),
            );
        }
        let x = client
            .call(
                ServiceName::VerifyCode,
                &json!({"codeContent": code, "verifier": {"orgName": "conformance", "deviceId": "CONF-01"}}),
            )
            .await
            .map_err(|e| SetupError::new(e.to_string()))?;
        if let Some(t) = x.biz.as_ref().and_then(|b| b.get("bizExtData")) {
            ctx.values.insert(format!("ticket.{label}"), t.clone());
        }
    }
    Ok(ctx)
}

/// `content` with the sixth character of its last dot-separated segment (a PHIC1 token's
/// signature) changed.
fn tamper_signature(content: &str) -> String {
    let mut b = content.as_bytes().to_vec();
    if let Some(dot) = content.rfind('.') {
        if let Some(c) = b.get_mut(dot + 6) {
            *c = if *c == b'A' { b'B' } else { b'A' };
        }
    }
    String::from_utf8(b).unwrap_or_default()
}

/// A well-formed PHIC1 code from an issuer no trust list knows.
fn untrusted_code(now: i64) -> Result<String, SetupError> {
    let err = |e: &dyn std::fmt::Display| SetupError::new(format!("untrusted code: {e}"));
    let key = crate::crypto::SigningKey::generate().map_err(|e| err(&e))?;
    let iss = crate::trust::IssuerId::parse("99000001").map_err(|e| err(&e))?;
    let kid = crate::trust::Kid::parse("conformance-1").map_err(|e| err(&e))?;
    let cid = crate::code::CodeId::random().map_err(|e| err(&e))?;
    let claims = crate::code::Claims {
        cid,
        col: crate::code::Colour::Green,
        iat: now,
        exp: now + 300,
        nc: None,
    };
    crate::code::issue(&crate::code::IssuerKey::new(iss, kid, key), &claims).map_err(|e| err(&e))
}

/// The value of a placeholder: a context value, or `long.N`, N characters of text (for
/// length limits).
fn lookup(ctx: &Context, key: &str) -> Option<Value> {
    if let Some(n) = key
        .strip_prefix("long.")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return (n <= 1 << 20).then(|| json!("长".repeat(n)));
    }
    ctx.values.get(key).cloned()
}

/// Replaces placeholders: a string that is one placeholder becomes its value (any JSON
/// type); placeholders inside a longer string are replaced by their text.
///
/// # Errors
/// The first unknown placeholder.
pub fn fill(template: &Value, ctx: &Context) -> Result<Value, String> {
    Ok(match template {
        Value::String(s) => {
            if let Some(key) = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
                if !key.contains("{{") {
                    return lookup(ctx, key.trim())
                        .ok_or_else(|| format!("unknown placeholder {{{{{key}}}}}"));
                }
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("{{") {
                out.push_str(&rest[..i]);
                let after = &rest[i + 2..];
                let j = after
                    .find("}}")
                    .ok_or_else(|| format!("unclosed placeholder in `{s}`"))?;
                let key = after[..j].trim();
                let v =
                    lookup(ctx, key).ok_or_else(|| format!("unknown placeholder {{{{{key}}}}}"))?;
                match &v {
                    Value::String(t) => out.push_str(t),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[j + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, ctx)).collect::<Result<_, _>>()?),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| fill(v, ctx).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}
