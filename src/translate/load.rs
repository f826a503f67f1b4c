//! Parsing and checking of dialect files: the TOML format of `config/regions/README.md`
//! into a [`Dialect`], with every problem of every file reported at once, each with file,
//! line and field. National paths are checked against the standard's schemas.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::dialect::{
    CALLBACK_FIELDS, CallbackField, CallbackMap, Codec, Dialect, HolderTypeRule, LoadError,
    MessageMap, Problem, ResultRule, Rule, ServiceMap, Signing,
};
use super::path;
use super::value::{DateFormat, JsonType, ValueMap};
use crate::standard::{Direction, Node, PersonalClass, ServiceName, Standard};

mod parts;
mod raw;

use raw::{RawCallback, RawCode, RawDialect, RawMessage, RawService, RawSigning};

/// Collects problems with the file's line numbers.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text
            .as_bytes()
            .iter()
            .take(offset)
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn at<T>(&mut self, spanned: &Spanned<T>, field: &str, message: impl Into<String>) {
        let line = Some(self.line(spanned.span().start));
        self.push(line, field, message);
    }

    fn push(&mut self, line: Option<usize>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line,
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

impl Dialect {
    /// Parses and checks one dialect file. `id` is what callers name it by; `file` is how
    /// problems name the file. National paths are checked against the standard's schemas.
    ///
    /// # Errors
    /// Every problem found: TOML syntax and unknown keys (the first such, with its line),
    /// then every semantic problem at once.
    pub fn from_toml(
        id: &str,
        file: &str,
        text: &str,
        standard: &Standard,
    ) -> Result<Self, LoadError> {
        let mut ck = Checker {
            file,
            text,
            problems: Vec::new(),
        };
        let raw: RawDialect = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map(|s| ck.line(s.start));
                ck.push(line, "(file)", e.message().to_owned());
                return Err(LoadError(ck.problems));
            }
        };
        let d = check(id, &raw, standard, &mut ck);
        if ck.problems.is_empty() {
            Ok(d)
        } else {
            // In file order, as an editor would walk them.
            ck.problems.sort_by_key(|p| p.line);
            Err(LoadError(ck.problems))
        }
    }

    /// Loads every `*.toml` of a directory, in name order.
    ///
    /// # Errors
    /// Every problem of every file, and unreadable files or directory.
    pub fn load_dir(dir: &Path, standard: &Standard) -> Result<Vec<Self>, LoadError> {
        let problem = |file: String, message: String| Problem {
            file,
            line: None,
            field: "(file)".to_owned(),
            message,
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| LoadError(vec![problem(dir.display().to_string(), e.to_string())]))?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        for f in files {
            let shown = f.display().to_string();
            let id = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            match std::fs::read_to_string(&f) {
                Err(e) => problems.push(problem(shown, e.to_string())),
                Ok(text) => match Self::from_toml(&id, &shown, &text, standard) {
                    Ok(d) => out.push(d),
                    Err(LoadError(p)) => problems.extend(p),
                },
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(LoadError(problems))
        }
    }
}

fn check(id: &str, raw: &RawDialect, standard: &Standard, ck: &mut Checker<'_>) -> Dialect {
    let region = raw.region.get_ref();
    if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
        ck.at(
            &raw.region,
            "region",
            format!("`{region}` is not a 6-digit division code"),
        );
    }
    let codec_of =
        |s: &Spanned<String>, field: &str, ck: &mut Checker<'_>| match s.get_ref().as_str() {
            "json" => Codec::Json,
            "form" => Codec::Form,
            "xml" => Codec::Xml,
            other => {
                ck.at(
                    s,
                    field,
                    format!("`{other}` is not a codec (json, form, xml)"),
                );
                Codec::Json
            }
        };
    let codec = codec_of(&raw.codec, "codec", ck);
    let response_codec = raw
        .response_codec
        .as_ref()
        .map_or(codec, |c| codec_of(c, "response_codec", ck));
    let signing = raw
        .signing
        .as_ref()
        .map_or(Signing::None, |s| parts::check_signing(s, ck));
    let codes = raw
        .codes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| parts::check_code(c, &format!("codes[{i}]"), ck))
        .collect();
    let mut maps = BTreeMap::new();
    for (name, m) in &raw.maps {
        maps.insert(
            name.clone(),
            ValueMap::new(
                name,
                m.pairs
                    .iter()
                    .map(|[n, d]| (n.clone(), d.clone()))
                    .collect(),
                m.fallback_national.clone(),
                m.fallback_dialect.clone(),
            ),
        );
    }
    let mut services = BTreeMap::new();
    let mut ingress = Vec::new();
    for (name, s) in &raw.services {
        let Ok(service) = name.get_ref().parse::<ServiceName>() else {
            ck.at(name, &format!("services.{}", name.get_ref()), "not a national service (declareHealth, declareTrip, queryHealthInfo, applyCodeAccess, generateCode, verifyCode, correctHealthInfo)");
            continue;
        };
        let base = format!("services.{service}");
        let schema = standard.service(service);
        let request = check_message(
            &s.request,
            &format!("{base}.request"),
            codec,
            &maps,
            (schema.schema(Direction::Request), &schema.request_file),
            ck,
        );
        let response = check_message(
            &s.response,
            &format!("{base}.response"),
            response_codec,
            &maps,
            (schema.schema(Direction::Response), &schema.response_file),
            ck,
        );
        if request.result.is_some() {
            ck.push(
                None,
                &format!("{base}.request.result"),
                "a result code belongs to responses",
            );
        }
        // The region's own address, whether or not it is also the ingress path: joined to
        // the base URL as it is (`x/y` would make `https://hostx/y`).
        let egress = s.path.get_ref();
        if !egress.starts_with('/')
            || egress
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '#')
        {
            ck.at(
                &s.path,
                &format!("{base}.path"),
                "must start with `/` and have no fragment or space",
            );
        }
        if !matches!(s.method.as_str(), "GET" | "POST" | "PUT") {
            ck.push(
                None,
                &format!("{base}.method"),
                format!("`{}` is not GET, POST or PUT (in capitals)", s.method),
            );
        }
        if request.holder_type.is_some() {
            ck.push(
                None,
                &format!("{base}.request.holder_type"),
                "the holder's ID type is read from responses",
            );
        }
        let line = ck.line(name.span().start);
        parts::check_signed_fields(
            &signing,
            &request.constants,
            &request
                .rules
                .iter()
                .map(|r| r.dialect.as_str())
                .collect::<Vec<_>>(),
            (&format!("{base}.request"), line),
            ck,
        );
        if codec == Codec::Xml {
            let signed = signing.envelope_fields();
            parts::check_xml_root(&request, (&format!("{base}.request"), line), &signed, ck);
        }
        if response_codec == Codec::Xml {
            parts::check_xml_root(&response, (&format!("{base}.response"), line), &[], ck);
        }
        let ingress_path = parts::check_ingress(s, service, ck).map(|(p, line)| {
            ingress.push((service, p.clone(), line));
            p
        });
        services.insert(
            service,
            ServiceMap {
                path: s.path.get_ref().clone(),
                ingress_path,
                method: s.method.clone(),
                request,
                response,
            },
        );
    }
    parts::check_unique_ingress(&ingress, ck);
    let callback = raw.callback.as_ref().map(|c| {
        let callback = check_callback(c, &maps, codec, ck);
        let line = ck.line(c.path.span().start);
        parts::check_signed_fields(
            &signing,
            &callback.constants,
            &callback
                .fields
                .iter()
                .map(|f| f.dialect.as_str())
                .collect::<Vec<_>>(),
            ("callback", line),
            ck,
        );
        callback
    });
    Dialect {
        id: id.to_owned(),
        region: region.clone(),
        name: raw.name.clone(),
        codec,
        response_codec,
        signing,
        codes,
        services,
        callback,
    }
}

fn check_callback(
    raw: &RawCallback,
    maps: &BTreeMap<String, ValueMap>,
    codec: Codec,
    ck: &mut Checker<'_>,
) -> CallbackMap {
    if !raw.path.get_ref().starts_with('/') {
        ck.at(&raw.path, "callback.path", "must start with `/`");
    }
    let mut fields = Vec::new();
    for (i, f) in raw.fields.iter().enumerate() {
        let at = format!("callback.fields[{i}]");
        if !CALLBACK_FIELDS.contains(&f.event.get_ref().as_str()) {
            ck.at(
                &f.event,
                &format!("{at}.event"),
                format!(
                    "`{}` is not a callback field ({})",
                    f.event.get_ref(),
                    CALLBACK_FIELDS.join(", ")
                ),
            );
        }
        let dialect = f.dialect.get_ref();
        if !path::is_valid(dialect) {
            ck.at(
                &f.dialect,
                &format!("{at}.dialect"),
                format!("`{dialect}` is not a dotted field path"),
            );
        } else if codec == Codec::Form && dialect.contains('.') {
            // Every callback would fail as it is written, and be given up.
            ck.at(
                &f.dialect,
                &format!("{at}.dialect"),
                "a form has no nested fields",
            );
        }
        let map = f.map.as_ref().and_then(|m| {
            let found = maps.get(m.get_ref()).cloned();
            if found.is_none() {
                ck.at(m, &format!("{at}.map"), format!("no map `{}`", m.get_ref()));
            }
            found
        });
        let date = f.date.as_ref().and_then(|d| {
            let parsed = DateFormat::parse(d.get_ref());
            if parsed.is_none() {
                ck.at(
                    d,
                    &format!("{at}.date"),
                    format!(
                        "`{}` is not a date format ({})",
                        d.get_ref(),
                        DateFormat::NAMES
                    ),
                );
            }
            parsed
        });
        fields.push(CallbackField {
            event: f.event.get_ref().clone(),
            dialect: f.dialect.get_ref().clone(),
            map,
            date,
        });
    }
    CallbackMap {
        path: raw.path.get_ref().clone(),
        constants: raw
            .constants
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        fields,
    }
}

fn check_message(
    raw: &RawMessage,
    base: &str,
    codec: Codec,
    maps: &BTreeMap<String, ValueMap>,
    (schema, schema_file): (&Node, &str),
    ck: &mut Checker<'_>,
) -> MessageMap {
    let dialect_path = |p: &Spanned<String>, field: &str, ck: &mut Checker<'_>| {
        let s = p.get_ref();
        if !path::is_valid(s) {
            ck.at(p, field, format!("`{s}` is not a dotted field path"));
        } else if codec == Codec::Form && s.contains('.') {
            ck.at(
                p,
                field,
                format!("`{s}`: form fields are flat, a path cannot nest"),
            );
        }
        s.clone()
    };
    let lookup_map = |m: &Spanned<String>, field: &str, ck: &mut Checker<'_>| {
        let found = maps.get(m.get_ref()).cloned();
        if found.is_none() {
            ck.at(m, field, format!("no map `{}` in [maps]", m.get_ref()));
        }
        found
    };
    let mut rules = Vec::new();
    for (i, r) in raw.fields.iter().enumerate() {
        let f = format!("{base}.fields[{i}]");
        if !path::is_valid(r.national.get_ref()) {
            ck.at(
                &r.national,
                &format!("{f}.national"),
                format!("`{}` is not a dotted field path", r.national.get_ref()),
            );
        }
        if path::is_valid(r.national.get_ref()) && !has_path(schema, r.national.get_ref()) {
            ck.at(
                &r.national,
                &format!("{f}.national"),
                format!("`{}` is not a field of {schema_file}", r.national.get_ref()),
            );
        }
        let dialect = dialect_path(&r.dialect, &format!("{f}.dialect"), ck);
        let map = r
            .map
            .as_ref()
            .and_then(|m| lookup_map(m, &format!("{f}.map"), ck));
        let date = r.date.as_ref().and_then(|d| {
            let parsed = DateFormat::parse(d.get_ref());
            if parsed.is_none() {
                ck.at(
                    d,
                    &format!("{f}.date"),
                    format!(
                        "`{}` is not a date format ({})",
                        d.get_ref(),
                        DateFormat::NAMES
                    ),
                );
            }
            parsed
        });
        let region_digits = r.region_digits.as_ref().map(|w| {
            if ![6, 12].contains(w.get_ref()) {
                ck.at(
                    w,
                    &format!("{f}.region_digits"),
                    "region codes have 6 or 12 digits",
                );
            }
            *w.get_ref()
        });
        let ty = |t: &Option<Spanned<String>>, name: &str, ck: &mut Checker<'_>| {
            t.as_ref().and_then(|t| {
                let parsed = JsonType::parse(t.get_ref());
                if parsed.is_none() {
                    ck.at(
                        t,
                        &format!("{f}.{name}"),
                        format!("`{}` is not a type (string, number, bool)", t.get_ref()),
                    );
                }
                parsed
            })
        };
        let dialect_type = ty(&r.dialect_type, "type", ck);
        let national_type = ty(&r.national_type, "national_type", ck);
        if [map.is_some(), date.is_some(), region_digits.is_some()]
            .iter()
            .filter(|&&b| b)
            .count()
            > 1
        {
            ck.at(
                &r.national,
                &f,
                "a field has at most one of map, date, region_digits",
            );
        }
        // A national field that is shown masked must be masked on its way in: without the
        // rule's `mask`, a region's full name would reach every verifier.
        if r.national.get_ref().ends_with("Masked") && r.mask.is_none() {
            ck.at(
                &r.national,
                &format!("{f}.mask"),
                format!(
                    "`{}` is shown masked: the rule needs `mask` (name, id or phone)",
                    r.national.get_ref()
                ),
            );
        }
        rules.push(Rule {
            national: r.national.get_ref().clone(),
            dialect,
            map,
            date,
            region_digits,
            dialect_type,
            national_type,
            max_len: r.max_len,
            dialect_default: r.dialect_default.clone(),
            national_default: r.national_default.clone(),
            mask: r.mask.as_ref().and_then(|m| {
                let class = match m.get_ref().as_str() {
                    "name" => Some(PersonalClass::Name),
                    "id" => Some(PersonalClass::Id),
                    "phone" => Some(PersonalClass::Phone),
                    _ => None,
                };
                if class.is_none() {
                    ck.at(
                        m,
                        &format!("{f}.mask"),
                        format!("`{}` is not a mask (name, id, phone)", m.get_ref()),
                    );
                }
                class
            }),
        });
    }
    let result = raw.result.as_ref().and_then(|r| {
        let dialect = dialect_path(&r.dialect, &format!("{base}.result.dialect"), ck);
        let map = lookup_map(&r.map, &format!("{base}.result.map"), ck)?;
        let dialect_type = r.dialect_type.as_ref().and_then(|t| {
            let parsed = JsonType::parse(t.get_ref());
            if parsed.is_none() {
                ck.at(
                    t,
                    &format!("{base}.result.type"),
                    format!("`{}` is not a type (string, number, bool)", t.get_ref()),
                );
            }
            parsed
        });
        if let Some(m) = r.message.as_deref().filter(|m| !path::is_valid(m)) {
            ck.push(
                None,
                &format!("{base}.result.message"),
                format!("`{m}` is not a dotted field path"),
            );
        }
        Some(ResultRule {
            dialect,
            map,
            dialect_type,
            message: r.message.clone(),
        })
    });
    let holder_type = raw.holder_type.as_ref().map(|h| HolderTypeRule {
        dialect: dialect_path(&h.dialect, &format!("{base}.holder_type.dialect"), ck),
        map: h
            .map
            .as_ref()
            .and_then(|m| lookup_map(m, &format!("{base}.holder_type.map"), ck)),
    });
    for (i, p) in raw.ignore.iter().chain(raw.constants.keys()).enumerate() {
        if !path::is_valid(p) {
            ck.push(
                None,
                &format!("{base}.ignore/constants[{i}]"),
                format!("`{p}` is not a dotted field path"),
            );
        }
    }
    MessageMap {
        constants: raw
            .constants
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        rules,
        ignore: raw.ignore.clone(),
        result,
        holder_type,
    }
}

/// Whether a dotted path names a property of a schema (through objects; an array is a leaf).
fn has_path(schema: &Node, p: &str) -> bool {
    p.split('.')
        .try_fold(schema, |node, key| match node.resolve() {
            Node::Object(o) => o.properties.iter().find(|q| q.name == key).map(|q| &q.node),
            _ => None,
        })
        .is_some()
}
