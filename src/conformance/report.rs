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

    /// Whether the target conforms (every case good).
    pub fn conforms(&self) -> bool {
        self.bad().is_empty()
    }

    /// The terminal summary: one line per bad case with its failing stages, then totals.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        for c in self.bad() {
            let why = if let Some(e) = &c.error {
                e.clone()
            } else if c.deviation.is_some() {
                "unexpected pass: remove it from the expectations file".into()
            } else {
                c.stages
                    .iter()
                    .filter(|s| !s.pass)
                    .map(|s| format!("{}: expected {}, got {}", s.stage, s.expected, s.actual))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let _ = writeln!(o, "FAIL {} ({}) {}: {why}", c.id, c.clause, c.title);
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

    /// JUnit XML: one test case per case, a failure element per bad one.
    pub fn junit(&self) -> String {
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            o,
            "<testsuite name=\"hutong conformance\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            self.cases.len(),
            self.bad().len(),
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
            if c.ok() {
                o.push_str("/>\n");
                continue;
            }
            o.push_str(">\n");
            let msg = c.error.clone().unwrap_or_else(|| {
                c.stages
                    .iter()
                    .filter(|s| !s.pass)
                    .map(|s| format!("{}: expected {}, got {}", s.stage, s.expected, s.actual))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            let _ = writeln!(
                o,
                "    <failure message=\"{}\">request: {}\nresponse: {}</failure>",
                xml(&msg),
                xml(&c.request),
                xml(&c.response)
            );
            o.push_str("  </testcase>\n");
        }
        o.push_str("</testsuite>\n");
        o
    }
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
