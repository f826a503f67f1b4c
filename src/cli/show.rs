//! `hutong standard show <kind> [key]`.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::standard::{Element, Level, Node, ReturnCode, ServiceName, Standard};

/// What to show.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    /// A data element, by JSON key (`idNo`) or id (`PHIC.01.005`).
    Element,
    /// A code table by id (`colour`); without a key, the list of tables.
    Table,
    /// A service (`verifyCode`) with its parameters.
    Service,
    /// A GB/T 2260 division (`110105`), current or historic.
    Region,
    /// A GB/T 2659 country, by alpha-2, alpha-3 or numeric code.
    Country,
    /// A return code (`1007`).
    Code,
}

/// Arguments of `hutong standard show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to show.
    pub kind: Kind,
    /// Which one; omit it to list all of the kind.
    pub key: Option<String>,
}

pub(super) fn run(s: &Standard, a: &Args) -> anyhow::Result<ExitCode> {
    let out = match (a.kind, a.key.as_deref()) {
        (Kind::Element, None) => list_elements(s),
        (Kind::Element, Some(k)) => s.element(k).or_else(|| s.element_by_id(k)).map(|e| element(s, e)),
        (Kind::Table, None) => Some(s.tables.iter().fold(String::new(), |mut o, t| {
            let _ = writeln!(o, "{:<20} {} ({}), {} codes {}", t.id, t.name, t.name_en, t.codes.len(), t.label);
            o
        }) + "region               GB/T 2260 (hutong standard show region)\ncountry              GB/T 2659 (hutong standard show country)\n"),
        (Kind::Table, Some(k)) => s.table(k).map(|t| {
            let mut o = format!("{} {} ({}) {}\nstandard: {}\nsource: {}\n", t.id, t.name, t.name_en, t.label, or_dash(&t.standard), or_dash(&t.source));
            for c in &t.codes {
                let _ = writeln!(
                    o,
                    "  {:<6} {} ({}){}{}",
                    c.code,
                    c.name,
                    c.name_en,
                    c.hex.as_deref().map(|h| format!(" {h}")).unwrap_or_default(),
                    c.label.map(|l| format!(" {l}")).unwrap_or_default()
                );
            }
            o
        }),
        (Kind::Service, None) => Some(s.services().iter().fold(String::new(), |mut o, v| {
            let _ = writeln!(o, "{:<18} {:<4} {} ({}) {}", v.name.as_str(), v.clause, v.title, v.title_en, v.label);
            o
        })),
        (Kind::Service, Some(k)) => k.parse::<ServiceName>().ok().map(|n| {
            let v = s.service(n);
            let mut o = format!(
                "{} (GB/T 38963 {}) {} / {} {}\nkind: {:?}; idempotent by requestId: {}\nPOST /phic/v1/{}\n\nrequest ({}):\n",
                v.name, v.clause, v.title, v.title_en, v.label, v.kind, v.idempotent, v.name, v.request_file
            );
            tree(s, &v.request, 1, &mut o);
            let _ = writeln!(o, "\nresponse ({}):", v.response_file);
            tree(s, &v.response, 1, &mut o);
            o
        }),
        (Kind::Region, None) => Some(format!(
            "GB/T 2260: {} current codes, {} historic.\n{}\n",
            s.divisions.current_len(),
            s.divisions.historic_len(),
            s.divisions.provenance.first().cloned().unwrap_or_default()
        )),
        (Kind::Region, Some(k)) => region(s, k),
        (Kind::Country, None) => Some(s.countries.iter().fold(String::new(), |mut o, c| {
            let _ = writeln!(o, "{} {} {} {} {}", c.alpha2, c.alpha3, c.numeric, c.name_zh, c.name_en);
            o
        })),
        (Kind::Country, Some(k)) => s.countries.get(&k.to_ascii_uppercase()).map(|c| {
            format!("{} ({})\nalpha-2 {}  alpha-3 {}  numeric {}\n", c.name_zh, c.name_en, c.alpha2, c.alpha3, c.numeric)
        }),
        (Kind::Code, None) => Some(s.return_codes().iter().fold(String::new(), |mut o, r| {
            let _ = writeln!(o, "{:<5} {:<3} {:<8} {} ({})", r.code.as_str(), r.http, format!("{:?}", r.side).to_lowercase(), r.name, r.name_en);
            o
        })),
        (Kind::Code, Some(k)) => ReturnCode::parse(k).map(|c| {
            let r = s.return_code(c);
            format!(
                "{} {} ({}) {}\nHTTP {}; at fault: {:?}; retry may help: {}\nseen in the field: {}\n",
                c, r.name, r.name_en, r.label, r.http, r.side, r.retry, or_dash(&r.seen)
            )
        }),
    };
    match out {
        Some(text) => {
            say_raw!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            say!(
                "no {:?} `{}` in the standard",
                a.kind,
                a.key.as_deref().unwrap_or_default()
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn list_elements(s: &Standard) -> Option<String> {
    let mut o = String::new();
    for g in &s.groups {
        let _ = writeln!(o, "group {} {} ({}) {}", g.id, g.name, g.name_en, g.label);
        for e in s.elements.iter().filter(|e| e.group == g.id) {
            let _ = writeln!(
                o,
                "  {} {:<18} {:<8} {} {}",
                e.id,
                e.key,
                e.format.to_string(),
                e.name,
                e.label
            );
        }
    }
    Some(o)
}

fn element(s: &Standard, e: &Element) -> String {
    let mut o = format!(
        "{} {} ({}) {}\nkey: {}\ntype: {:?}, format: {} (JSON {}) {}\n",
        e.id,
        e.name,
        e.name_en,
        e.label,
        e.key,
        e.ty,
        e.format,
        e.wire_type().json_schema_name(),
        e.attributes_label
    );
    if let Some(t) = e.table {
        let t = &s.tables[t];
        let codes: Vec<String> = t
            .codes
            .iter()
            .map(|c| format!("{} {}", c.code, c.name))
            .collect();
        let _ = writeln!(o, "table: {} ({}): {}", t.id, t.name, codes.join(", "));
    }
    if let Some(sep) = e.multi {
        let _ = writeln!(o, "multi-valued, separated by `{sep}`");
    }
    if let Some((lo, hi)) = e.range {
        let _ = writeln!(o, "range: {lo} to {hi}");
    }
    if let Some(r) = e.rule {
        let _ = writeln!(o, "rule: {r:?}");
    }
    if let Some(p) = e.personal {
        let _ = writeln!(o, "personal: masked as {p:?} for anyone but the holder");
    }
    let _ = writeln!(
        o,
        "domain: {}\nsource: {}{}",
        e.description,
        or_dash(&e.source),
        if e.optional { "\noptional" } else { "" }
    );
    o
}

fn region(s: &Standard, k: &str) -> Option<String> {
    let d = &s.divisions;
    if let Some(full) = d.full_name(k) {
        let level = match Level::of(k.parse().ok()?) {
            Level::Province => "province",
            Level::Prefecture => "prefecture",
            Level::County => "county",
        };
        return Some(format!(
            "{k} {full}\nlevel: {level}; name: {}\n",
            d.name(k).unwrap_or_default()
        ));
    }
    d.historic(k).map(|h| {
        format!(
            "{k} {} (historic: in revisions {} to {}, not current)\n",
            h.name, h.first, h.last
        )
    })
}

fn tree(s: &Standard, node: &Node, depth: usize, o: &mut String) {
    let Node::Object(obj) = node.resolve() else {
        return;
    };
    for p in &obj.properties {
        let pad = "  ".repeat(depth);
        let req = if p.required { "required" } else { "optional" };
        let what = match p.node.resolve() {
            Node::Element(i) => {
                let e = &s.elements[*i];
                format!("{} {} {}", e.id, e.format, e.name)
            }
            Node::Plain(l) => l.ty.json_schema_name().to_owned(),
            Node::Array(a) => match a.items.resolve() {
                Node::Element(i) => format!("array of {}", s.elements[*i].id),
                _ => "array".to_owned(),
            },
            _ => "object".to_owned(),
        };
        let _ = writeln!(
            o,
            "{pad}{:<20} {:<8} {}  — {}",
            p.name, req, what, p.description
        );
        match p.node.resolve() {
            Node::Array(a) => tree(s, &a.items, depth + 1, o),
            n => tree(s, n, depth + 1, o),
        }
    }
    if !obj.any_of.is_empty() {
        let opts: Vec<String> = obj.any_of.iter().map(|b| b.join(" + ")).collect();
        let _ = writeln!(
            o,
            "{}(needs one of: {})",
            "  ".repeat(depth),
            opts.join(" | ")
        );
    }
}
