//! Finding and loading a CJK font for PNG text, at run time.
//!
//! A configured path is tried alone; otherwise [`DEFAULT_FONT_CANDIDATES`] in order. A
//! font counts only if it parses (`.ttc` collections by face index) and has glyphs for
//! the page's Chinese text. Nothing here panics: a missing font is
//! [`RenderError::NoFont`].

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontArc, FontVec};
use serde::Deserialize;

use super::RenderError;

/// Font files tried when none is configured: path and face index in the collection.
/// Debian packages: `fonts-wqy-microhei`, `fonts-wqy-zenhei`, `fonts-noto-cjk` (face 2 of
/// the collection is Simplified Chinese), `fonts-droid-fallback`, `fonts-arphic-uming`.
pub const DEFAULT_FONT_CANDIDATES: &[(&str, u32)] = &[
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
        0,
    ),
    (
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        0,
    ),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
];

/// Largest font file read, bytes (CJK collections run to ~30 MB).
const MAX_FONT_BYTES: u64 = 64 * 1024 * 1024;

/// Characters a font must have to be used: the fixed text of the page.
const REQUIRED_CHARS: &str = "健康码个人信息更新于绿黄红未知";

/// Which font the PNG renderer uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FontConfig {
    /// Font file (`.ttf`, `.otf` or `.ttc`). When unset, [`DEFAULT_FONT_CANDIDATES`] are
    /// searched.
    pub font_path: Option<PathBuf>,
    /// Face index within a `.ttc` collection (0 for single fonts).
    pub font_index: u32,
}

fn load_one(path: &Path, index: u32) -> Option<FontArc> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FONT_BYTES {
        return None;
    }
    let data = std::fs::read(path).ok()?;
    let font = FontVec::try_from_vec_and_index(data, index).ok()?;
    let covers = REQUIRED_CHARS.chars().all(|c| font.glyph_id(c).0 != 0);
    covers.then(|| FontArc::new(font))
}

/// Load the configured font, or the first usable default.
pub fn load(config: &FontConfig) -> Result<FontArc, RenderError> {
    match &config.font_path {
        Some(path) => load_one(path, config.font_index).ok_or_else(|| RenderError::NoFont {
            tried: vec![path.clone()],
        }),
        None => load_first(
            DEFAULT_FONT_CANDIDATES
                .iter()
                .map(|&(p, i)| (PathBuf::from(p), i)),
        ),
    }
}

/// The first usable font among `candidates`.
pub fn load_first(
    candidates: impl IntoIterator<Item = (PathBuf, u32)>,
) -> Result<FontArc, RenderError> {
    let mut tried = Vec::new();
    for (path, index) in candidates {
        if let Some(font) = load_one(&path, index) {
            return Ok(font);
        }
        tried.push(path);
    }
    Err(RenderError::NoFont { tried })
}
