//! Problems found while loading `standard/`.
//!
//! The loader never stops at the first problem: it collects every one, with the file and the
//! item it concerns, so whoever edits the profile sees the whole list in one run.

use std::fmt;

/// One problem in one file of `standard/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, relative to the standard's directory (e.g. `elements.toml`).
    pub file: String,
    /// The item within the file: an element id, a table code, a JSON pointer, a line number.
    pub item: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.item.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.item, self.message)
        }
    }
}

/// The standard could not be loaded; `problems` lists every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the standard has {} problem(s):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Collects problems for one file.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub(crate) list: Vec<Problem>,
}

impl Problems {
    pub(crate) fn push(&mut self, file: &str, item: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            file: file.to_owned(),
            item: item.into(),
            message: message.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
