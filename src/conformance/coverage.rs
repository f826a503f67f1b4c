//! The coverage matrix: the seven services × the standard's return codes. Every cell holds
//! the cases that expect exactly that code of that service (or, marked apart, the cases
//! that accept it among other codes), or is marked not applicable in
//! `conformance/coverage.toml` with a reason; a cell with neither is a gap, and the suite's
//! own test fails on a gap.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Case;
use crate::standard::{ServiceName, Standard};

/// A rule marking cells not applicable.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotApplicable {
    /// Services (`*`: all).
    pub services: Vec<String>,
    /// Return codes.
    pub codes: Vec<String>,
    /// Why.
    pub reason: String,
}

/// A rule marking constraint cells not applicable.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintNotApplicable {
    /// Services (`*`: all).
    pub services: Vec<String>,
    /// Constraint kinds ([`super::case::CONSTRAINTS`]).
    pub constraints: Vec<String>,
    /// Why.
    pub reason: String,
}

/// The not-applicable rules of both axes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Return-code cells.
    #[serde(rename = "not_applicable", default)]
    pub codes: Vec<NotApplicable>,
    /// Constraint cells.
    #[serde(rename = "constraint_not_applicable", default)]
    pub constraints: Vec<ConstraintNotApplicable>,
}

/// Reads `coverage.toml`.
///
/// # Errors
/// A message naming the file.
pub fn load(path: &Path) -> Result<Rules, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str::<Rules>(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
}

/// One cell.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Cell {
    /// Cases that expect this code of this service.
    Covered {
        /// Case ids.
        cases: Vec<String>,
    },
    /// Only cases that accept this code among others: a target that never answers it can
    /// still pass them, so the code is reached but not required.
    Alternative {
        /// Case ids.
        cases: Vec<String>,
    },
    /// Marked not applicable.
    NotApplicable {
        /// Why.
        reason: String,
    },
    /// Neither: a gap.
    Gap,
}

/// The matrix: service → code → cell, and service → constraint kind → cell.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Return codes, in the standard's order.
    pub codes: Vec<String>,
    /// Rows by service.
    pub rows: BTreeMap<String, BTreeMap<String, Cell>>,
    /// Constraint kinds.
    pub constraints: Vec<String>,
    /// Rows by service.
    pub constraint_rows: BTreeMap<String, BTreeMap<String, Cell>>,
}

impl Matrix {
    /// Builds the matrix of `cases` under `rules`.
    pub fn build(cases: &[Case], all_rules: &Rules) -> Self {
        let rules = &all_rules.codes;
        let std = Standard::embedded();
        let codes: Vec<String> = std
            .return_codes()
            .iter()
            .map(|c| c.code.as_str().to_owned())
            .collect();
        let mut rows = BTreeMap::new();
        for s in ServiceName::ALL {
            let name = s.as_str().to_owned();
            let mut row = BTreeMap::new();
            for code in &codes {
                let accepting: Vec<&Case> = cases
                    .iter()
                    .filter(|c| c.service == name)
                    .filter(|c| c.expect.code.as_ref().is_some_and(|v| v.contains(code)))
                    .collect();
                // Covered: a case requires exactly this code.
                let exact: Vec<String> = accepting
                    .iter()
                    .filter(|c| c.expect.code.as_ref().is_some_and(|v| v.len() == 1))
                    .map(|c| c.id.clone())
                    .collect();
                let cell = if !exact.is_empty() {
                    Cell::Covered { cases: exact }
                } else if !accepting.is_empty() {
                    Cell::Alternative {
                        cases: accepting.iter().map(|c| c.id.clone()).collect(),
                    }
                } else if let Some(r) = rules.iter().find(|r| {
                    (r.services.iter().any(|x| x == "*" || *x == name))
                        && r.codes.iter().any(|x| x == code)
                }) {
                    Cell::NotApplicable {
                        reason: r.reason.clone(),
                    }
                } else {
                    Cell::Gap
                };
                row.insert(code.clone(), cell);
            }
            rows.insert(name, row);
        }
        let constraints: Vec<String> = super::case::CONSTRAINTS
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let mut constraint_rows = BTreeMap::new();
        for s in ServiceName::ALL {
            let name = s.as_str().to_owned();
            let mut row = BTreeMap::new();
            for k in &constraints {
                let covering: Vec<String> = cases
                    .iter()
                    .filter(|c| c.service == name && c.constraint.as_deref() == Some(k))
                    .map(|c| c.id.clone())
                    .collect();
                let cell = if !covering.is_empty() {
                    Cell::Covered { cases: covering }
                } else if let Some(r) = all_rules.constraints.iter().find(|r| {
                    r.services.iter().any(|x| x == "*" || *x == name)
                        && r.constraints.iter().any(|x| x == k)
                }) {
                    Cell::NotApplicable {
                        reason: r.reason.clone(),
                    }
                } else {
                    Cell::Gap
                };
                row.insert(k.clone(), cell);
            }
            constraint_rows.insert(name, row);
        }
        Self {
            codes,
            rows,
            constraints,
            constraint_rows,
        }
    }

    /// `(service, code or constraint kind)` of every gap.
    pub fn gaps(&self) -> Vec<(String, String)> {
        self.rows
            .iter()
            .chain(&self.constraint_rows)
            .flat_map(|(s, row)| {
                row.iter()
                    .filter(|(_, c)| matches!(c, Cell::Gap))
                    .map(move |(code, _)| (s.clone(), code.clone()))
            })
            .collect()
    }

    /// A text table: `●` covered, `–` not applicable, `✗` gap.
    pub fn text(&self) -> String {
        let mut o = format!("{:<18}", "service \\ code");
        for c in &self.codes {
            o.push_str(&format!("{c:>5}"));
        }
        o.push('\n');
        for (s, row) in &self.rows {
            o.push_str(&format!("{s:<18}"));
            for c in &self.codes {
                let mark = match row.get(c) {
                    Some(Cell::Covered { .. }) => "●",
                    Some(Cell::Alternative { .. }) => "○",
                    Some(Cell::NotApplicable { .. }) => "–",
                    _ => "✗",
                };
                o.push_str(&format!("{mark:>5}"));
            }
            o.push('\n');
        }
        o.push_str(
            "● covered by a case   ○ only accepted among other codes   – not applicable \
             (coverage.toml gives the reason)   ✗ gap\n",
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, codes: &str) -> Case {
        toml::from_str(&format!(
            "id = \"{id}\"\nclause = \"x\"\nlabel = \"P\"\ntitle = \"t\"\n\
             service = \"correctHealthInfo\"\n[expect]\ncode = {codes}\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_code_accepted_only_among_others_is_not_covered() {
        let cases = [case("T-001", "[\"0\", \"4001\"]"), case("T-002", "[\"0\"]")];
        let m = Matrix::build(&cases, &Rules::default());
        let row = &m.rows["correctHealthInfo"];
        assert!(matches!(&row["0"], Cell::Covered { cases } if cases == &["T-002"]));
        assert!(matches!(&row["4001"], Cell::Alternative { cases } if cases == &["T-001"]));
        assert!(m.text().contains('○'));
    }
}
