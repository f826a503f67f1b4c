//! Reports of a run: a terminal summary, JSON, and JUnit XML (for CI systems). Personal
//! data in requests and answers is masked before it reaches any of them.

use std::fmt::Write as _;

use serde::Serialize;

use super::run::CaseResult;

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was tested (the target's URL).
    pub target: String,
    /// The suite's version (the crate's).
    pub suite_version: String,
    /// The standard the cases check.
    pub standard: String,
    /// Unix seconds at the start.
    pub started: i64,
    /// Milliseconds the run took.
    pub millis: u64,
    /// Every case.
    pub cases: Vec<CaseResult>,
    /// The load profile's figures and verdict, when it ran (`--load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<super::load::LoadReport>,
}

impl Report {
    /// Cases that passed (deviations excluded).
    pub fn passed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.passed && c.deviation.is_none())
            .count()
    }

    /// Cases that count against the target: a failure not listed as a deviation, or a
    /// listed deviation that passed (the list has gone stale).
    pub fn bad(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| !c.ok()).collect()
    }

    /// Whether the load profile ran and found the target unhealthy.
    pub fn load_failed(&self) -> bool {
        self.load.as_ref().is_some_and(|l| !l.healthy)
    }

    /// Whether the target conforms (every case good, and healthy under load if that ran).
    pub fn conforms(&self) -> bool {
        self.bad().is_empty() && !self.load_failed()
    }

    /// The terminal summary: one line per bad case with its failing stages, then totals.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        for c in self.bad() {
            let _ = writeln!(
                o,
                "FAIL {} ({}) {}: {}",
                c.id,
                c.clause,
                c.title,
                why_bad(c)
            );
        }
        if self.load_failed() {
            let _ = writeln!(o, "FAIL load profile: UNHEALTHY under the burst");
        }
        let deviations = self.cases.iter().filter(|c| c.deviation.is_some()).count();
        let _ = writeln!(
            o,
            "{} case(s): {} passed, {} failed, {} known deviation(s); {} ms; {}",
            self.cases.len(),
            self.passed(),
            self.bad().len(),
            deviations,
            self.millis,
            if self.conforms() {
                "CONFORMS"
            } else {
                "DOES NOT CONFORM"
            }
        );
        o
    }

    /// JUnit XML: one test case per case; a failure element per bad one that ran, an error
    /// element per one that could not, a skipped element per known deviation.
    pub fn junit(&self) -> String {
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            o,
            "<testsuite name=\"hutong conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.cases.len(),
            self.bad().iter().filter(|c| c.error.is_none()).count(),
            self.cases.iter().filter(|c| c.error.is_some()).count(),
            self.cases
                .iter()
                .filter(|c| c.ok() && c.deviation.is_some())
                .count(),
            self.millis as f64 / 1000.0
        );
        for c in &self.cases {
            let _ = write!(
                o,
                "  <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\"",
                xml(&c.service),
                xml(&c.id),
                xml(&c.title),
                c.millis as f64 / 1000.0
            );
            if c.ok() && c.deviation.is_none() {
                o.push_str("/>\n");
                continue;
            }
            o.push_str(">\n");
            if c.ok() {
                // A listed deviation that failed as expected: skipped, with its reason.
                let _ = writeln!(
                    o,
                    "    <skipped message=\"known deviation: {}\"/>",
                    xml(c.deviation.as_deref().unwrap_or_default())
                );
            } else {
                // A case that could not run is an error; one that ran and failed, a failure.
                let tag = if c.error.is_some() {
                    "error"
                } else {
                    "failure"
                };
                let _ = writeln!(
                    o,
                    "    <{tag} message=\"{}\">request: {}\nresponse: {}</{tag}>",
                    xml(&why_bad(c)),
                    xml(&c.request),
                    xml(&c.response)
                );
            }
            o.push_str("  </testcase>\n");
        }
        o.push_str("</testsuite>\n");
        o
    }
}

/// `stage: expected …, got …` of every stage a case failed, `; `-joined.
fn failing_stages(c: &CaseResult) -> String {
    c.stages
        .iter()
        .filter(|s| !s.pass)
        .map(|s| format!("{}: expected {}, got {}", s.stage, s.expected, s.actual))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Escapes text for XML content and attributes.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

impl Report {
    /// The HTML report: the verdict, the coverage matrix, and every case with its stages;
    /// failures show their request and answer (personal data masked). One self-contained
    /// page: inline CSS, no script.
    pub fn html(&self, matrix: &super::coverage::Matrix) -> String {
        let mut o = String::from(
            "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>hutong conformance report</title><style>\
             body{font:16px/1.5 system-ui,sans-serif;margin:1.5rem;color:#1a1a1a}\
             table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:center}\
             th.s,td.s{text-align:left}.cov{background:#c8e6c9}.alt{background:#fff9c4}.na{background:#eee;color:#555}.gap{background:#ffcdd2}\
             .pass{color:#1b5e20}.fail{color:#b71c1c;font-weight:bold}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem}\
             .verdict{font-size:1.6rem;padding:.5rem 1rem;display:inline-block;border-radius:6px}\
             .ok{background:#c8e6c9}.no{background:#ffcdd2}</style></head><body>\n",
        );
        let _ = writeln!(
            o,
            "<h1>Conformance report</h1><p>Target <b>{}</b>; suite {}; {}; {} ms.</p>",
            xml(&self.target),
            xml(&self.suite_version),
            xml(&self.standard),
            self.millis
        );
        let _ = writeln!(
            o,
            "<p class=\"verdict {}\">{} — {} of {} cases passed, {} failed</p>",
            if self.conforms() { "ok" } else { "no" },
            if self.conforms() {
                "CONFORMS 符合"
            } else {
                "DOES NOT CONFORM 不符合"
            },
            self.passed(),
            self.cases.len(),
            self.bad().len()
        );
        o.push_str("<h2>Coverage 覆盖矩阵</h2>");
        matrix_table(&mut o, &matrix.codes, &matrix.rows);
        o.push_str("<h3>Data-element constraints 数据元约束</h3>");
        matrix_table(&mut o, &matrix.constraints, &matrix.constraint_rows);
        o.push_str("<p>● covered (hover: the cases) · ○ only accepted among other codes · – not applicable (hover: why) · ✗ gap</p>\n");
        o.push_str("<h2>Cases 用例</h2><table><tr><th>id</th><th class=\"s\">check</th><th>clause</th><th>label</th><th>verdict</th><th class=\"s\">stages</th></tr>\n");
        for c in &self.cases {
            let stages: Vec<String> = c
                .stages
                .iter()
                .map(|s| {
                    format!(
                        "<span class=\"{}\">{}</span>",
                        if s.pass { "pass" } else { "fail" },
                        xml(s.stage)
                    )
                })
                .collect();
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"s\">{}</td><td>{}</td><td>{:?}</td><td class=\"{}\">{}</td><td class=\"s\">{}</td></tr>",
                xml(&c.id),
                xml(&c.title),
                xml(&c.clause),
                c.label,
                if c.ok() { "pass" } else { "fail" },
                if c.ok() { "pass" } else { "FAIL" },
                stages.join(" ")
            );
        }
        o.push_str("</table>\n");
        for c in self.bad() {
            let _ = writeln!(
                o,
                "<h3 class=\"fail\">{} {}</h3><ul>",
                xml(&c.id),
                xml(&c.title)
            );
            if let Some(e) = &c.error {
                let _ = writeln!(o, "<li>{}</li>", xml(e));
            } else if c.deviation.is_some() && c.stages.iter().all(|s| s.pass) {
                let _ = writeln!(o, "<li>{}</li>", xml(&why_bad(c)));
            }
            for s in c.stages.iter().filter(|s| !s.pass) {
                let _ = writeln!(
                    o,
                    "<li><b>{}</b>: expected {}, got {}</li>",
                    xml(s.stage),
                    xml(&s.expected),
                    xml(&s.actual)
                );
            }
            let _ = writeln!(
                o,
                "</ul><p>request</p><pre>{}</pre><p>response</p><pre>{}</pre>",
                xml(&c.request),
                xml(&c.response)
            );
        }
        o.push_str("</body></html>\n");
        o
    }
}

/// One plane of the coverage matrix as an HTML table: services down, `columns` across.
fn matrix_table(
    o: &mut String,
    columns: &[String],
    rows: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, super::coverage::Cell>,
    >,
) {
    use super::coverage::Cell;
    o.push_str("<table><tr><th class=\"s\">service</th>");
    for c in columns {
        let _ = write!(o, "<th>{}</th>", xml(c));
    }
    o.push_str("</tr>\n");
    for (s, row) in rows {
        let _ = write!(o, "<tr><td class=\"s\">{}</td>", xml(s));
        for c in columns {
            match row.get(c) {
                Some(Cell::Covered { cases }) => {
                    let _ = write!(
                        o,
                        "<td class=\"cov\" title=\"{}\">●</td>",
                        xml(&cases.join(", "))
                    );
                }
                Some(Cell::Alternative { cases }) => {
                    let _ = write!(
                        o,
                        "<td class=\"alt\" title=\"only accepted among other codes: {}\">○</td>",
                        xml(&cases.join(", "))
                    );
                }
                Some(Cell::NotApplicable { reason }) => {
                    let _ = write!(o, "<td class=\"na\" title=\"{}\">–</td>", xml(reason));
                }
                _ => o.push_str("<td class=\"gap\" title=\"gap\">✗</td>"),
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

/// Why a bad case is bad, as every report says it: the error that kept it from running, a
/// listed deviation that now passes, or its failing stages.
fn why_bad(c: &CaseResult) -> String {
    if let Some(e) = &c.error {
        e.clone()
    } else if c.deviation.is_some() && c.stages.iter().all(|s| s.pass) {
        "unexpected pass: remove it from the expectations file".into()
    } else {
        failing_stages(c)
    }
}
