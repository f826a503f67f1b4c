//! The code page a traveler sees: GB/T 38961's presentation form (profile §2.4).
//!
//! This is the end of the issuing path: once a national code is issued (`code::issue`),
//! the gateway renders the page that carries it. The layout follows the provincial
//! health-code pages people know: a header band in the status colour with the issuing
//! region and the title, the masked name, the QR code drawn in the status colour, the
//! status word under it (colour is never the only signal), and "更新于 …".
//!
//! Two outputs share one layout: [`render_svg`] (text as `<text>` with a font-family
//! list, no font needed here) and [`render_png`] (text rasterised with a CJK font found
//! at run time, see [`font`]). A third form, [`page`], is the HTML page a phone opens at
//! the code page URL: its own responsive layout, but the same QR matrix, module colours,
//! path drawing and escaping as the SVG.
//!
//! Contrast: yellow `#F5D000` modules on white are faint (luma ≈ 195 of 255, against
//! ≈ 137 for the green), and so is grey `#9E9E9E`. `rqrr` still reads them from a clean
//! rendered image, but a phone camera under glare or a fixed-threshold venue scanner may
//! not, so modules and the status word are drawn in a darker shade of the same hue for
//! those two (`#AC9200`, `#6E6E6E`); the header band keeps the reference colour. Green
//! and red modules use the reference colour itself.

pub mod font;
pub mod page;
mod raster;

#[cfg(test)]
mod tests;

use crate::national::time::{BEIJING_OFFSET_SECS, DateTime};
use crate::standard::PersonalClass;
use std::fmt::Write as _;
use std::path::PathBuf;

use qrcode::{Color, EcLevel, QrCode};

pub use font::{DEFAULT_FONT_CANDIDATES, FontConfig};
pub use page::{CodePage, RegionAnswer, RegionRow, code_page_html};
pub use raster::{Renderer, render_png};

/// Errors of page rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No usable CJK font: none of the paths tried exists, parses, or has CJK glyphs.
    /// Install `fonts-wqy-microhei` or `fonts-noto-cjk`, or configure `font_path`.
    #[error("no CJK font found (tried {tried:?})")]
    NoFont {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The code content does not fit in a QR code at error-correction level M.
    #[error("code content does not fit in a QR code: {0}")]
    QrEncode(String),
    /// The PNG encoder failed (out of memory, or a bug).
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// Status colour of the page, from the two-digit `col` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusColour {
    /// `00`.
    Green,
    /// `01`.
    Yellow,
    /// `10`.
    Red,
    /// Anything else (`20`, unknown).
    Grey,
}

impl StatusColour {
    /// From the wire colour code; anything but `00`, `01`, `10` is grey.
    pub fn from_code(code: &str) -> Self {
        match code {
            "00" => StatusColour::Green,
            "01" => StatusColour::Yellow,
            "10" => StatusColour::Red,
            _ => StatusColour::Grey,
        }
    }

    /// Reference colour (header band): Hubei's values (profile §2.4).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            StatusColour::Green => [0x39, 0xB7, 0x78],
            StatusColour::Yellow => [0xF5, 0xD0, 0x00],
            StatusColour::Red => [0xD8, 0x24, 0x2B],
            StatusColour::Grey => [0x9E, 0x9E, 0x9E],
        }
    }

    /// Colour of QR modules and the status word: the reference colour, or a darker
    /// shade of the same hue where the reference is too light to scan (module docs).
    pub fn module_rgb(self) -> [u8; 3] {
        match self {
            // 0.7 × #F5D000: same hue (51°), luma ≈ 137, like the green.
            StatusColour::Yellow => [0xAC, 0x92, 0x00],
            StatusColour::Grey => [0x6E, 0x6E, 0x6E],
            other => other.rgb(),
        }
    }

    /// Colour of text on the header band: white, or dark on yellow (white on yellow has
    /// a contrast ratio near 1.5).
    ///
    /// White or near-black, whichever contrasts more with the band (WCAG), as on the HTML
    /// page: on the green, grey and yellow bands that is near-black, at least 4.5:1.
    pub fn band_text_rgb(self) -> [u8; 3] {
        page::text_on(self.rgb())
    }

    /// Colour of the status word under the code, on the white card: the module colour,
    /// darkened in its own hue until it reaches a contrast of 4.5:1 (WCAG AA for text).
    pub fn word_rgb(self) -> [u8; 3] {
        let mut c = self.module_rgb();
        while page::contrast_ratio(page::PAGE_BG, c) < 4.5 {
            c = c.map(|v| (u16::from(v) * 9 / 10) as u8);
        }
        c
    }

    /// The status word shown under the code.
    pub fn word(self) -> &'static str {
        match self {
            StatusColour::Green => "绿码",
            StatusColour::Yellow => "黄码",
            StatusColour::Red => "红码",
            StatusColour::Grey => "未知",
        }
    }
}

/// `#RRGGBB`.
pub fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2])
}

/// A name already masked for display (DESIGN.md §8). The type exists so that a raw name
/// cannot reach the page by mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedName(String);

impl MaskedName {
    /// Mask a full name: keep the first character, replace each other one with `*`
    /// (`张三` → `张*`, `欧阳娜娜` → `欧***`). A one-character name becomes `*`.
    pub fn mask(full_name: &str) -> Self {
        MaskedName(crate::mask::mask(PersonalClass::Name, full_name.trim()))
    }

    /// Accept a name masked elsewhere (e.g. `**双` from a region); `None` unless it has
    /// at least one `*` and at most 32 characters.
    pub fn from_masked(s: &str) -> Option<Self> {
        (s.contains('*') && s.chars().count() <= 32).then(|| MaskedName(s.to_owned()))
    }

    /// The masked name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeView {
    /// Content of the QR code: a PHIC1 token or URL.
    pub content: String,
    /// Two-digit colour code (`00`, `01`, `10`; anything else is grey).
    pub colour: String,
    /// The holder's masked name.
    pub masked_name: MaskedName,
    /// Update time, `yyyy-MM-dd HH:mm:ss` (see [`format_update_time`]).
    pub updated_at: String,
    /// Issuing region's name in Chinese, e.g. `浙江省`.
    pub region_name: String,
    /// Status word, e.g. `绿码`; usually [`StatusColour::word`].
    pub status_word: String,
}

impl CodeView {
    /// The status colour.
    pub fn status(&self) -> StatusColour {
        StatusColour::from_code(&self.colour)
    }
}

/// Format Unix seconds as `yyyy-MM-dd HH:mm:ss` at a UTC offset (China: `8 * 3600`).
pub fn format_update_time(unix_secs: i64, utc_offset_secs: i32) -> String {
    let shift = i64::from(utc_offset_secs) - BEIJING_OFFSET_SECS;
    DateTime::from_unix(unix_secs.saturating_add(shift)).to_string()
}

/// Title in the header band.
pub const TITLE: &str = "健康码";
/// Subtitle in the header band: the standard's name for the code.
pub const SUBTITLE: &str = "个人健康信息码";
/// Longest text shown per field, characters; longer text is cut with `…`.
const MAX_FIELD_CHARS: usize = 24;

pub(crate) const WIDTH: u32 = 720;
const BAND_HEIGHT: u32 = 180;
const QR_BOX: u32 = 440;
const QUIET_MODULES: u32 = 4;

/// Fonts sizes, px.
pub(crate) const REGION_SIZE: f32 = 28.0;
pub(crate) const TITLE_SIZE: f32 = 48.0;
pub(crate) const SUBTITLE_SIZE: f32 = 22.0;
pub(crate) const NAME_SIZE: f32 = 34.0;
pub(crate) const STATUS_SIZE: f32 = 44.0;
pub(crate) const UPDATED_SIZE: f32 = 24.0;
pub(crate) const UPDATED_RGB: [u8; 3] = [0x66, 0x66, 0x66];
pub(crate) const NAME_RGB: [u8; 3] = [0x33, 0x33, 0x33];

/// Where everything goes, in pixels; shared by PNG and SVG. Text positions are
/// baselines of centred lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub width: u32,
    pub height: u32,
    pub band_height: u32,
    pub region_y: u32,
    pub title_y: u32,
    pub subtitle_y: u32,
    pub name_y: u32,
    /// Top-left of module (0, 0), inside the quiet zone.
    pub qr_x: u32,
    pub qr_y: u32,
    pub module_px: u32,
    pub modules: u32,
    pub status_y: u32,
    pub updated_y: u32,
}

impl Layout {
    pub(crate) fn new(modules: u32) -> Self {
        let module_px = (QR_BOX / (modules + 2 * QUIET_MODULES)).max(2);
        let qr_total = (modules + 2 * QUIET_MODULES) * module_px;
        let width = WIDTH.max(qr_total + 40);
        let qr_top = 270;
        let qr_y = qr_top + QUIET_MODULES * module_px;
        let status_y = qr_top + qr_total + 48;
        let updated_y = status_y + 56;
        Layout {
            width,
            height: updated_y + 48,
            band_height: BAND_HEIGHT,
            region_y: 56,
            title_y: 118,
            subtitle_y: 158,
            name_y: 238,
            qr_x: (width - qr_total) / 2 + QUIET_MODULES * module_px,
            qr_y,
            module_px,
            modules,
            status_y,
            updated_y,
        }
    }
}

/// The QR matrix of `content`: side length and dark modules, row-major.
pub(crate) fn qr_matrix(content: &str) -> Result<(u32, Vec<bool>), RenderError> {
    let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M)
        .map_err(|e| RenderError::QrEncode(e.to_string()))?;
    let side = u32::try_from(code.width()).map_err(|_| RenderError::QrEncode("too wide".into()))?;
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((side, dark))
}

/// `s`, cut to [`MAX_FIELD_CHARS`] with `…` if longer.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_FIELD_CHARS {
        s.to_owned()
    } else {
        s.chars().take(MAX_FIELD_CHARS - 1).chain(['…']).collect()
    }
}

/// The text lines of the page, with their place, size and colour.
pub(crate) fn text_lines(view: &CodeView, l: &Layout) -> [(String, u32, f32, [u8; 3]); 6] {
    let status = view.status();
    [
        (
            clip(&view.region_name),
            l.region_y,
            REGION_SIZE,
            status.band_text_rgb(),
        ),
        (
            TITLE.to_owned(),
            l.title_y,
            TITLE_SIZE,
            status.band_text_rgb(),
        ),
        (
            SUBTITLE.to_owned(),
            l.subtitle_y,
            SUBTITLE_SIZE,
            status.band_text_rgb(),
        ),
        (
            clip(view.masked_name.as_str()),
            l.name_y,
            NAME_SIZE,
            NAME_RGB,
        ),
        (
            clip(&view.status_word),
            l.status_y,
            STATUS_SIZE,
            status.word_rgb(),
        ),
        (
            format!("更新于 {}", clip(&view.updated_at)),
            l.updated_y,
            UPDATED_SIZE,
            UPDATED_RGB,
        ),
    ]
}

/// Font families for SVG text, CJK first.
pub const SVG_FONT_FAMILY: &str = "'WenQuanYi Micro Hei','Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif";

/// `s` with `& < > " '` as character references, and control characters and the
/// noncharacters U+FFFE and U+FFFF dropped: safe as
/// XML text and attribute values, and as HTML5 text and quoted attribute values (HTML5
/// knows `&apos;` too), so the HTML page ([`page`]) uses it as well.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters and the noncharacters U+FFFE and U+FFFF are not allowed
            // in XML 1.0 text.
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

/// The page as SVG. Needs no font here; the viewer picks one from [`SVG_FONT_FAMILY`].
///
/// Errors: [`RenderError::QrEncode`] if the content does not fit in a QR code.
pub fn render_svg(view: &CodeView) -> Result<String, RenderError> {
    let (side, dark) = qr_matrix(&view.content)?;
    let l = Layout::new(side);
    let status = view.status();
    let mut svg = String::with_capacity(16 * 1024);
    let label = xml_escape(&format!(
        "{} {TITLE} {}",
        clip(&view.region_name),
        clip(&view.status_word)
    ));
    // `write!` into a String cannot fail.
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">"#,
        w = l.width,
        h = l.height
    );
    let _ = write!(
        svg,
        r##"<rect width="{}" height="{}" fill="#FFFFFF"/>"##,
        l.width, l.height
    );
    let _ = write!(
        svg,
        r#"<rect width="{}" height="{}" fill="{}"/>"#,
        l.width,
        l.band_height,
        hex(status.rgb())
    );
    let _ = write!(
        svg,
        r#"<g font-family="{SVG_FONT_FAMILY}" text-anchor="middle">"#
    );
    for (text, y, size, rgb) in text_lines(view, &l) {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{y}" font-size="{size}" fill="{}">{}</text>"#,
            l.width / 2,
            hex(rgb),
            xml_escape(&text)
        );
    }
    svg.push_str("</g>");
    let _ = write!(
        svg,
        r#"<path fill="{}" shape-rendering="crispEdges" d=""#,
        hex(status.module_rgb())
    );
    push_qr_path(&mut svg, side, &dark, (l.qr_x, l.qr_y), l.module_px);
    svg.push_str(r#""/></svg>"#);
    Ok(svg)
}

/// Append the SVG path data of the dark modules of a `side`×`side` matrix: one rectangle
/// per horizontal run of dark modules, module (0, 0) at `origin`, each module `m` units
/// square. Shared by [`render_svg`] and the HTML page ([`page`]), so both draw the same
/// code the same way.
pub(crate) fn push_qr_path(out: &mut String, side: u32, dark: &[bool], origin: (u32, u32), m: u32) {
    let is_dark = |x: u32, y: u32| dark.get((y * side + x) as usize).copied().unwrap_or(false);
    for y in 0..side {
        let mut x = 0;
        while x < side {
            if !is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < side && is_dark(x, y) {
                x += 1;
            }
            let w = (x - start) * m;
            // `write!` into a String cannot fail.
            let _ = write!(
                out,
                "M{} {}h{w}v{m}h-{w}z",
                origin.0 + start * m,
                origin.1 + y * m
            );
        }
    }
}
