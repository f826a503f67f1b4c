//! Where the files of `standard/` come from: the copy embedded in the binary at build time,
//! or a directory on disk (`--standard <dir>`).

use std::path::{Path, PathBuf};

/// The largest file the loader reads from disk. The shipped division table is about 100 KiB;
/// anything far beyond this is a mistake, not a table.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        /// Every file of the shipped `standard/`, embedded at build time.
        pub(crate) const EMBEDDED: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("../../standard/", $path)))),*
        ];
    };
}

embedded!(
    "manifest.toml",
    "elements.toml",
    "tables/tables.toml",
    "tables/gb2260.tsv",
    "tables/gb2260-historic.tsv",
    "tables/gb2659.tsv",
    "return-codes.toml",
    "services.toml",
    "schemas/common.json",
    "schemas/declareHealth.request.json",
    "schemas/declareHealth.response.json",
    "schemas/declareTrip.request.json",
    "schemas/declareTrip.response.json",
    "schemas/queryHealthInfo.request.json",
    "schemas/queryHealthInfo.response.json",
    "schemas/applyCodeAccess.request.json",
    "schemas/applyCodeAccess.response.json",
    "schemas/generateCode.request.json",
    "schemas/generateCode.response.json",
    "schemas/verifyCode.request.json",
    "schemas/verifyCode.response.json",
    "schemas/correctHealthInfo.request.json",
    "schemas/correctHealthInfo.response.json",
);

/// A place the standard's files are read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The copy compiled into this binary.
    Embedded,
    /// A directory laid out like the shipped `standard/`.
    Dir(PathBuf),
}

impl Source {
    /// Reads one file, by its path relative to the standard's root.
    ///
    /// # Errors
    /// A message naming the file when it is missing, unreadable, too large or not UTF-8.
    pub fn read(&self, rel: &str) -> Result<String, String> {
        match self {
            Self::Embedded => EMBEDDED
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, c)| (*c).to_owned())
                .ok_or_else(|| "not part of the embedded standard".to_owned()),
            Self::Dir(root) => read_bounded(&root.join(rel)),
        }
    }

    /// A human name for the source, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "embedded standard".to_owned(),
            Self::Dir(p) => p.display().to_string(),
        }
    }
}

fn read_bounded(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes is over the limit of {MAX_FILE_BYTES}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}
