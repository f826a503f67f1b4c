//! Conformance cases as data (`conformance/cases/<area>/*.toml`): what to send, how to
//! probe the envelope, and what each stage must show. An absent stage is not tested, as in
//! the EU `dgc-testdata` vectors; adding a case needs no Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The label of the requirement a case checks (standard-profile.md): found, known,
/// inferred or proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Label {
    /// Found in a public source.
    F,
    /// Known practice.
    K,
    /// Inferred.
    I,
    /// Proposed by this profile.
    P,
}

/// One case.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique id, `AREA-NNN`.
    pub id: String,
    /// The clause it checks (`GB/T 38963 5.3`).
    pub clause: String,
    /// The requirement's label.
    pub label: Label,
    /// What it checks, in a sentence.
    pub title: String,
    /// The endpoint: one of the seven services, or `statusEvent`.
    pub service: String,
    /// The kind of data-element constraint the case probes, for the coverage matrix: one
    /// of [`CONSTRAINTS`].
    #[serde(default)]
    pub constraint: Option<String>,
    /// The business content, with `{{placeholders}}` (see [`super::run`]).
    #[serde(default = "empty_object")]
    pub request: Value,
    /// How the envelope is bent, if at all.
    #[serde(default)]
    pub probe: Probe,
    /// What each stage must show.
    pub expect: Expect,
    /// The validation clock: `now` (default) or a `yyyy-MM-dd HH:mm:ss` time the case
    /// assumes. Online cases run at the target's own time; the clock documents when the
    /// case's data is valid.
    #[serde(default)]
    pub clock: Option<String>,
    /// Where the case was read from (set on load).
    #[serde(skip_deserializing)]
    pub file: PathBuf,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Envelope probes: each bends one rule of clause 5.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Flip a character of `sign` after sealing.
    #[serde(default)]
    pub corrupt_signature: bool,
    /// Seconds added to `timestamp` (negative: in the past).
    #[serde(default)]
    pub timestamp_offset_s: i64,
    /// Send the same sealed request twice; the second answer is the one judged.
    #[serde(default)]
    pub replay: bool,
    /// Sign as another `appId` (one the target does not know).
    #[serde(default)]
    pub app_id: Option<String>,
    /// `encType` NONE.
    #[serde(default)]
    pub plaintext: bool,
    /// Send once, then again with the same `requestId` and this change merged into the
    /// content; the second answer is judged.
    #[serde(default)]
    pub same_request_id_with: Option<Value>,
    /// Send this many at once; judged: every request answered, each answer 0 or an expected
    /// code (the `burst` stage), and the first with an expected code, stage by stage.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Send as the second registered client (`--client2`): another verifier, for the
    /// bindings of tickets and consents.
    #[serde(default)]
    pub second_client: bool,
}

/// Expected result per stage; `None` is not tested.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// HTTP statuses accepted.
    #[serde(default)]
    pub transport: Option<Vec<u16>>,
    /// `true`: the answer's signature verifies under the target's published key.
    #[serde(default)]
    pub signature: Option<bool>,
    /// `true`: `bizContent` decrypts.
    #[serde(default)]
    pub decryption: Option<bool>,
    /// `true`: the business content conforms to the service's response schema.
    #[serde(default)]
    pub schema: Option<bool>,
    /// Return codes accepted (more than one where the profile leaves a choice).
    #[serde(default)]
    pub code: Option<Vec<String>>,
    /// Fields the business content must hold, with these values (a subset match).
    #[serde(default)]
    pub result: Option<Value>,
    /// No fixture person's full name or ID number appears in the answer: checked on every
    /// answer unless `false`.
    #[serde(default)]
    pub masking: Option<bool>,
    /// `true`: the answer echoes the request's `requestId`.
    #[serde(default, rename = "requestId")]
    pub request_id: Option<bool>,
}

impl Expect {
    /// Whether it names at least one stage to judge.
    pub fn names_a_stage(&self) -> bool {
        self.transport.is_some()
            || self.signature.is_some()
            || self.decryption.is_some()
            || self.schema.is_some()
            || self.code.is_some()
            || self.result.is_some()
            || self.masking == Some(true)
            || self.request_id == Some(true)
    }
}

/// Kinds of data-element constraint (the third axis of the coverage matrix): a required
/// element missing, a value of the wrong JSON type, outside its code table, too long or
/// too short, in the wrong format, and masking of personal elements in answers.
pub const CONSTRAINTS: [&str; 6] = ["required", "type", "enum", "length", "format", "masking"];

/// The stages, in the order they are judged.
pub const STAGES: [&str; 9] = [
    "burst",
    "transport",
    "signature",
    "decryption",
    "schema",
    "code",
    "result",
    "masking",
    "requestId",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

/// Why the cases could not be loaded: every problem, with its file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct CaseError(pub Vec<String>);

/// Loads every `*.toml` under `dir` (recursively), sorted by id; ids must be unique, every
/// service known, and every case must name a stage to judge.
///
/// # Errors
/// [`CaseError`] listing every unreadable file, malformed case and duplicate id.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, CaseError> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|e| CaseError(vec![format!("{}: {e}", dir.display())]))?;
    files.sort();
    let mut problems = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        match toml::from_str::<CaseFile>(&text) {
            Ok(cf) => cases.extend(cf.cases.into_iter().map(|mut c| {
                c.file.clone_from(&f);
                c
            })),
            Err(e) => problems.push(format!("{}: {}", f.display(), e.message())),
        }
    }
    let mut seen = BTreeMap::new();
    for c in &cases {
        if let Some(prev) = seen.insert(c.id.clone(), c.file.clone()) {
            problems.push(format!(
                "{}: case id {} also in {}",
                c.file.display(),
                c.id,
                prev.display()
            ));
        }
        let known =
            c.service == "statusEvent" || c.service.parse::<crate::standard::ServiceName>().is_ok();
        if let Some(k) = &c.constraint {
            if !CONSTRAINTS.contains(&k.as_str()) {
                problems.push(format!(
                    "{}: case {}: constraint `{k}` is not one of {}",
                    c.file.display(),
                    c.id,
                    CONSTRAINTS.join(", ")
                ));
            }
        }
        if !c.expect.names_a_stage() {
            problems.push(format!(
                "{}: case {}: [case.expect] names no stage: it would test nothing",
                c.file.display(),
                c.id
            ));
        }
        if !known {
            problems.push(format!(
                "{}: case {}: unknown service `{}`",
                c.file.display(),
                c.id,
                c.service
            ));
        }
    }
    if problems.is_empty() {
        cases.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(cases)
    } else {
        Err(CaseError(problems))
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    Ok(())
}

/// A known deviation of one target: the case is expected to fail, for a reason.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// The case id.
    pub case: String,
    /// Why the target deviates.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectationsFile {
    #[serde(rename = "deviation", default)]
    deviations: Vec<Deviation>,
}

/// Reads an expectations file (`[[deviation]] case = … reason = …`).
///
/// # Errors
/// A message naming the file.
pub fn load_expectations(path: &Path) -> Result<Vec<Deviation>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str::<ExpectationsFile>(&text)
        .map(|f| f.deviations)
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_whose_expect_names_no_stage_is_refused() {
        let dir = std::env::temp_dir().join(format!("hutong-case-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let case = |id: &str, expect: &str| {
            format!(
                "[[case]]\nid = \"{id}\"\nclause = \"x\"\nlabel = \"P\"\ntitle = \"t\"\n\
                 service = \"verifyCode\"\n[case.expect]\n{expect}\n"
            )
        };
        std::fs::write(dir.join("a.toml"), case("T-001", "code = [\"0\"]")).unwrap();
        assert_eq!(load_dir(&dir).unwrap().len(), 1);
        std::fs::write(dir.join("b.toml"), case("T-002", "")).unwrap();
        let err = load_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("T-002") && err.contains("names no stage"),
            "{err}"
        );
        assert!(!err.contains("T-001"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
