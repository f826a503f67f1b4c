//! Code tables: the small ones of `tables/tables.toml`, GB/T 2260 divisions (current and
//! historic) and GB/T 2659 countries from the TSV files.

use std::collections::{BTreeMap, HashMap};

use super::Label;
use super::error::Problems;

/// One code of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The code as it appears on the wire.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Label, when it differs from the table's.
    pub label: Option<Label>,
    /// Display colour (colour table only), `#RRGGBB`.
    pub hex: Option<String>,
    /// A note.
    pub note: String,
}

/// A small code table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTable {
    /// Table id, e.g. `sex`.
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// The standard it comes from, or empty when the profile made it up.
    pub standard: String,
    /// Evidence label.
    pub label: Label,
    /// Evidence ids.
    pub source: String,
    /// The codes, in file order.
    pub codes: Vec<Code>,
}

impl CodeTable {
    /// The code entry for `code`, if the table has it.
    pub fn get(&self, code: &str) -> Option<&Code> {
        self.codes.iter().find(|c| c.code == code)
    }
}

/// The level of a GB/T 2260 division, as its code shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `xx0000`.
    Province,
    /// `xxxx00`.
    Prefecture,
    /// Any other code.
    County,
}

impl Level {
    /// The level a 6-digit code denotes.
    pub fn of(code: u32) -> Self {
        if code % 10_000 == 0 {
            Self::Province
        } else if code % 100 == 0 {
            Self::Prefecture
        } else {
            Self::County
        }
    }
}

/// A division that was in an earlier revision of GB/T 2260 but is not in the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Historic {
    /// Its name then.
    pub name: String,
    /// First revision it appears in.
    pub first: String,
    /// Last revision it appears in.
    pub last: String,
}

/// GB/T 2260 administrative divisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Divisions {
    current: BTreeMap<u32, String>,
    historic: BTreeMap<u32, Historic>,
    /// Provenance comment lines of the current table.
    pub provenance: Vec<String>,
}

/// Placeholder names that stand for "the province's own districts" and add nothing to a
/// full name: `北京市市辖区朝阳区` reads `北京市朝阳区`.
const PLACEHOLDERS: [&str; 4] = [
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
];

impl Divisions {
    /// Number of codes in the current table.
    pub fn current_len(&self) -> usize {
        self.current.len()
    }

    /// Number of historic codes.
    pub fn historic_len(&self) -> usize {
        self.historic.len()
    }

    /// Parses a 6-digit code string.
    pub fn parse_code(code: &str) -> Option<u32> {
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            code.parse().ok()
        } else {
            None
        }
    }

    /// Whether `code` (6 digits) is in the current table.
    pub fn is_current(&self, code: &str) -> bool {
        Self::parse_code(code).is_some_and(|c| self.current.contains_key(&c))
    }

    /// Whether `code` is in the current table or any earlier revision: what the address
    /// prefix of an ID number must be.
    pub fn is_known(&self, code: &str) -> bool {
        Self::parse_code(code)
            .is_some_and(|c| self.current.contains_key(&c) || self.historic.contains_key(&c))
    }

    /// The plain name of a current code (`朝阳区`).
    pub fn name(&self, code: &str) -> Option<&str> {
        self.current
            .get(&Self::parse_code(code)?)
            .map(String::as_str)
    }

    /// The historic entry of a code no longer current.
    pub fn historic(&self, code: &str) -> Option<&Historic> {
        self.historic.get(&Self::parse_code(code)?)
    }

    /// The full name of a current code, province and prefecture first (`北京市朝阳区`).
    pub fn full_name(&self, code: &str) -> Option<String> {
        let c = Self::parse_code(code)?;
        let own = self.current.get(&c)?;
        let mut parts: Vec<&str> = Vec::with_capacity(3);
        let province = c / 10_000 * 10_000;
        let prefecture = c / 100 * 100;
        if province != c {
            if let Some(n) = self.current.get(&province) {
                parts.push(n);
            }
        }
        if prefecture != c && prefecture != province {
            if let Some(n) = self.current.get(&prefecture) {
                if !PLACEHOLDERS.contains(&n.as_str()) {
                    parts.push(n);
                }
            }
        }
        parts.push(own);
        Some(parts.concat())
    }

    /// The current codes and names, in code order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.current.iter().map(|(c, n)| (*c, n.as_str()))
    }

    /// The historic codes, in code order.
    pub fn iter_historic(&self) -> impl Iterator<Item = (u32, &Historic)> {
        self.historic.iter().map(|(c, h)| (*c, h))
    }

    pub(crate) fn parse(
        current: &str,
        historic: &str,
        files: (&str, &str),
        problems: &mut Problems,
    ) -> Self {
        let mut out = Self::default();
        for rec in tsv(current, files.0, &["code", "name"], problems) {
            let (line, f) = rec;
            match Self::parse_code(f[0]) {
                Some(c) if !f[1].is_empty() => {
                    if out.current.insert(c, f[1].to_owned()).is_some() {
                        problems.push(files.0, format!("line {line}"), "duplicate code");
                    }
                }
                _ => problems.push(
                    files.0,
                    format!("line {line}"),
                    "expected a 6-digit code and a name",
                ),
            }
        }
        out.provenance = comments(current);
        for (line, f) in tsv(
            historic,
            files.1,
            &["code", "name", "first", "last"],
            problems,
        ) {
            match Self::parse_code(f[0]) {
                Some(c) if !f[1].is_empty() => {
                    if out.current.contains_key(&c) {
                        problems.push(
                            files.1,
                            format!("line {line}"),
                            "code is in the current table",
                        );
                    }
                    let h = Historic {
                        name: f[1].to_owned(),
                        first: f[2].to_owned(),
                        last: f[3].to_owned(),
                    };
                    if out.historic.insert(c, h).is_some() {
                        problems.push(files.1, format!("line {line}"), "duplicate code");
                    }
                }
                _ => problems.push(
                    files.1,
                    format!("line {line}"),
                    "expected a 6-digit code and a name",
                ),
            }
        }
        out
    }
}

/// One GB/T 2659 country or region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// Alpha-2.
    pub alpha2: String,
    /// Alpha-3.
    pub alpha3: String,
    /// Numeric-3.
    pub numeric: String,
    /// English name.
    pub name_en: String,
    /// Chinese name.
    pub name_zh: String,
}

/// GB/T 2659 countries and regions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Countries {
    rows: Vec<Country>,
    index: HashMap<String, usize>,
}

impl Countries {
    /// Number of countries.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Looks a country up by alpha-2, alpha-3 or numeric-3 code (alpha codes upper-case).
    pub fn get(&self, code: &str) -> Option<&Country> {
        self.index.get(code).map(|&i| &self.rows[i])
    }

    /// All countries, by alpha-2.
    pub fn iter(&self) -> impl Iterator<Item = &Country> {
        self.rows.iter()
    }

    pub(crate) fn parse(text: &str, file: &str, problems: &mut Problems) -> Self {
        let mut out = Self::default();
        let header = ["alpha2", "alpha3", "numeric", "name_en", "name_zh"];
        for (line, f) in tsv(text, file, &header, problems) {
            let alpha =
                |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_uppercase());
            let digits = f[2].len() == 3 && f[2].bytes().all(|b| b.is_ascii_digit());
            if !alpha(f[0], 2) || !alpha(f[1], 3) || !digits || f[3].is_empty() {
                problems.push(
                    file,
                    format!("line {line}"),
                    "expected alpha-2, alpha-3, numeric-3 and names",
                );
                continue;
            }
            let i = out.rows.len();
            for key in [f[0], f[1], f[2]] {
                if out.index.insert(key.to_owned(), i).is_some() {
                    problems.push(
                        file,
                        format!("line {line}"),
                        format!("duplicate code {key}"),
                    );
                }
            }
            out.rows.push(Country {
                alpha2: f[0].to_owned(),
                alpha3: f[1].to_owned(),
                numeric: f[2].to_owned(),
                name_en: f[3].to_owned(),
                name_zh: f[4].to_owned(),
            });
        }
        out
    }
}

/// The `#` comment lines at the top of a TSV file, without the `#`.
fn comments(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_owned())
        .collect()
}

/// The records of a TSV file: `(line number, fields)`, after checking the header. Records
/// with the wrong number of fields are reported and skipped.
fn tsv<'a>(
    text: &'a str,
    file: &str,
    header: &[&str],
    problems: &mut Problems,
) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    let mut seen_header = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.starts_with('#') || (line.is_empty() && !seen_header) {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if !seen_header {
            seen_header = true;
            if fields != header {
                problems.push(
                    file,
                    format!("line {n}"),
                    format!("header must be `{}`", header.join("\\t")),
                );
            }
            continue;
        }
        if fields.len() != header.len() || fields.iter().any(|f| f.trim() != *f) {
            problems.push(
                file,
                format!("line {n}"),
                format!(
                    "expected {} TAB-separated fields without stray spaces",
                    header.len()
                ),
            );
            continue;
        }
        out.push((n, fields));
    }
    if !seen_header {
        problems.push(file, "", "no header line");
    }
    out
}
