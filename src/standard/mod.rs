//! The standard as data: the profile of GB/T 38961/38962/38963-2020 under `standard/`,
//! loaded once at start into an immutable [`Standard`] that every request shares.
//!
//! Loading parses every file into typed values (parse, don't validate): an element's format
//! is a [`Format`], a service is a [`ServiceName`], a table reference is an index that exists.
//! Every problem in every file is collected into one [`LoadError`]. The file format is
//! described in `standard/FORMAT.md`.

mod element;
mod error;
mod load;
pub mod openapi;
mod return_code;
mod schema;
mod service;
mod source;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

pub use element::{BadFormat, Element, ElementType, Format, Group, PersonalClass, Rule, WireType};
pub use error::{LoadError, Problem};
pub use return_code::{ReturnCode, ReturnCodeInfo, Side};
pub use schema::{ArrayNode, Node, ObjectNode, PlainLeaf, Property};
pub use service::{Direction, Service, ServiceKind, ServiceName, UnknownService};
pub use source::{MAX_FILE_BYTES, Source};
pub use table::{Code, CodeTable, Countries, Country, Divisions, Historic, Level};

/// An evidence label of the profile (standard-profile.md §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Label {
    /// Found in a public source.
    F,
    /// Known from another published standard or algorithm.
    K,
    /// Inferred from found evidence.
    I,
    /// Proposed by this profile.
    P,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F => "[F]",
            Self::K => "[K]",
            Self::I => "[I]",
            Self::P => "[P]",
        })
    }
}

/// Identity of the loaded profile (`manifest.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// Its version; bumped on any change to the data.
    pub version: String,
    /// The standards it profiles.
    pub standards: Vec<String>,
}

/// The whole standard, loaded and validated. Cheap to share behind an [`Arc`].
#[derive(Debug)]
pub struct Standard {
    /// The manifest's identity.
    pub profile: Profile,
    /// Element groups.
    pub groups: Vec<Group>,
    /// Data elements, in file order.
    pub elements: Vec<Element>,
    /// Small code tables, in file order.
    pub tables: Vec<CodeTable>,
    /// GB/T 2260 divisions.
    pub divisions: Divisions,
    /// GB/T 2659 countries.
    pub countries: Countries,
    return_codes: Vec<ReturnCodeInfo>,
    services: Vec<Service>,
    element_by_key: HashMap<String, usize>,
    element_by_id: HashMap<String, usize>,
    table_by_id: HashMap<String, usize>,
    /// Shared blocks of `schemas/common.json`, by name.
    pub defs: Vec<(String, Arc<Node>)>,
}

impl Standard {
    /// Loads and validates the standard from `source`.
    ///
    /// # Errors
    /// Every problem found in every file, at once.
    pub fn load(source: &Source) -> Result<Self, LoadError> {
        load::load(source)
    }

    /// The standard embedded in this binary, loaded on first use and shared after.
    ///
    /// # Panics
    /// If the embedded copy does not load. A test loads it on every build, so a binary
    /// that reaches users cannot carry a broken copy.
    pub fn embedded() -> Arc<Standard> {
        static EMBEDDED: OnceLock<Arc<Standard>> = OnceLock::new();
        Arc::clone(EMBEDDED.get_or_init(|| {
            // Invariant: the `shipped_standard_loads_cleanly` test loads the same bytes.
            #[allow(clippy::expect_used)]
            Arc::new(Standard::load(&Source::Embedded).expect("the embedded standard loads"))
        }))
    }

    /// An element by its JSON key (`idNo`).
    pub fn element(&self, key: &str) -> Option<&Element> {
        self.element_by_key.get(key).map(|&i| &self.elements[i])
    }

    /// An element by its id (`PHIC.01.005`).
    pub fn element_by_id(&self, id: &str) -> Option<&Element> {
        self.element_by_id.get(id).map(|&i| &self.elements[i])
    }

    /// A small code table by id (`sex`).
    pub fn table(&self, id: &str) -> Option<&CodeTable> {
        self.table_by_id.get(id).map(|&i| &self.tables[i])
    }

    /// One of the seven services.
    pub fn service(&self, name: ServiceName) -> &Service {
        &self.services[name.index()]
    }

    /// The seven services, in clause order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// What the standard says of a return code.
    pub fn return_code(&self, code: ReturnCode) -> &ReturnCodeInfo {
        // The loader guarantees one entry per variant, in `ReturnCode::ALL` order.
        &self.return_codes[ReturnCode::ALL
            .iter()
            .position(|c| *c == code)
            .unwrap_or_default()]
    }

    /// Every return code with its metadata.
    pub fn return_codes(&self) -> &[ReturnCodeInfo] {
        &self.return_codes
    }
}

#[cfg(test)]
mod tests;
