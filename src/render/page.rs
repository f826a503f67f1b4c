//! The code page as HTML: what the traveler's phone shows at the code page URL
//! (`GET /phic/c?v=1&cid=…&iss=…&pc=TOKEN`, wired in by the HTTP route).
//!
//! It carries what the image page carries (module docs of [`super`]): the header band in
//! the status colour, the status word, the masked name, the QR code in the status colour's
//! module shade and "更新于 …". A page can say more than a picture for a scanner, so it
//! also says until when the code is valid (有效期至), who issued it, and which regions were
//! asked for the status and what each answered (查询地区).
//!
//! One self-contained HTML5 document: inline CSS, the QR code as inline SVG, no script and
//! no external resource. The page works offline once loaded, needs no exception in a strict
//! Content-Security-Policy, and tells no third party that someone opened a code (the URL
//! carries the token; `referrer` is off for the same reason).
//!
//! Colour is never the only signal: the status word is written in Chinese and English,
//! and each status has its own shape (green: a circle with a tick; yellow: a triangle with
//! `!`; red: an octagon with `×`; grey: a diamond with a bar).
//!
//! Contrast (WCAG 2, AA: 4.5:1 for text): the text colour on every coloured background is
//! chosen by computing the contrast ratio, not by taste. White on the reference green
//! (2.6:1) or grey (2.7:1) fails, so text on those bands is near-black; white stays on red
//! (5.0:1). The module shades of green (2.6:1) and yellow (3.1:1) fail on white, so no
//! text is ever drawn in a module shade: every status word sits on its status colour,
//! in the chosen text colour.
//!
//! Privacy: the page takes only masked personal data ([`MaskedName`]) and has no field for
//! an ID number.

use std::fmt::Write as _;

use super::{
    MaskedName, RenderError, SVG_FONT_FAMILY, StatusColour, hex, push_qr_path, qr_matrix,
    xml_escape as escape,
};
use crate::national::time::DateTime;
use crate::trust::{IssuerId, RegionCode};

/// White modules of quiet zone around the code on each side (ISO/IEC 18004 asks for 4).
const QUIET_MODULES: u32 = 4;
/// Target side of the QR code, CSS px: the largest whole number of px per module that
/// keeps the code (with its quiet zone) within this. Whole px keep module edges crisp on a
/// 1× screen; it fits a 360 px-wide phone with the page margins.
const QR_TARGET_PX: u32 = 300;
/// Smallest module, CSS px, for content so long that the target would give less.
const MIN_MODULE_PX: u32 = 2;

/// Page background.
pub(crate) const PAGE_BG: [u8; 3] = [0xFF, 0xFF, 0xFF];
/// Body text on the page background (contrast ≈ 17:1).
pub(crate) const INK: [u8; 3] = [0x1A, 0x1A, 0x1A];
/// Secondary text (labels, unavailable regions) on the page background (≈ 7:1).
pub(crate) const MUTED: [u8; 3] = [0x59, 0x59, 0x59];
/// Body text size, CSS px.
pub(crate) const BODY_PX: u32 = 18;
/// Size of the status word in the band, CSS px.
pub(crate) const STATUS_WORD_PX: u32 = 36;
// Large text for a phone held at arm's length by a checkpoint: body at least 18 px, the
// status word at least 32 px. Checked at compile time so a later edit cannot shrink them.
const _: () = assert!(BODY_PX >= 18 && STATUS_WORD_PX >= 32);

/// The four statuses, in the order of their CSS classes.
const ALL: [StatusColour; 4] = [
    StatusColour::Green,
    StatusColour::Yellow,
    StatusColour::Red,
    StatusColour::Grey,
];

/// What one consulted region answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionAnswer {
    /// The region answered with this status.
    Status(StatusColour),
    /// The region did not answer (down, timed out, or answered garbage).
    Unavailable,
}

/// One row of "查询地区 Regions consulted".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRow {
    /// The region's GB/T 2260 code, e.g. `420000`.
    pub code: RegionCode,
    /// The region's display name, e.g. `湖北省`.
    pub name: String,
    /// What it answered.
    pub answer: RegionAnswer,
}

/// What the HTML code page shows.
///
/// It holds masked personal data only: the name is a [`MaskedName`] (`张*`), and there is
/// no field for an ID number, so neither an unmasked name nor an ID number can reach the
/// page. Keep it that way when adding fields.
#[derive(Debug, Clone, Copy)]
pub struct CodePage<'a> {
    /// Content of the QR code: the code page URL or the PHIC1 token. Only drawn as the QR
    /// code, never written as text.
    pub content: &'a str,
    /// The status the page shows.
    pub status: StatusColour,
    /// The holder's name, masked.
    pub masked_name: &'a MaskedName,
    /// When the status was last updated (Beijing time).
    pub updated_at: DateTime,
    /// When the code expires (Beijing time).
    pub expires_at: DateTime,
    /// The issuer of the code.
    pub issuer: &'a IssuerId,
    /// The regions asked for the status, in the order to show them; may be empty.
    pub regions: &'a [RegionRow],
}

/// The status word in Chinese and in English: `("红码", "Red code")`.
///
/// Grey is `灰码` here, where the image page says `未知` ([`StatusColour::word`]): the page
/// names all four codes the same way, and the English says what it means.
pub fn status_words(status: StatusColour) -> (&'static str, &'static str) {
    match status {
        StatusColour::Green => ("绿码", "Green code"),
        StatusColour::Yellow => ("黄码", "Yellow code"),
        StatusColour::Red => ("红码", "Red code"),
        StatusColour::Grey => ("灰码", "Grey code"),
    }
}

/// The words for a region that did not answer.
pub const UNAVAILABLE_WORDS: (&str, &str) = ("未响应", "unavailable");

/// WCAG 2 relative luminance of an sRGB colour, 0 (black) to 1 (white).
pub(crate) fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// WCAG 2 contrast ratio of two colours, 1 to 21, whichever is lighter.
pub(crate) fn contrast_ratio(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Text colour on `bg`: white or [`INK`], whichever contrasts more.
pub(crate) fn text_on(bg: [u8; 3]) -> [u8; 3] {
    if contrast_ratio(PAGE_BG, bg) >= contrast_ratio(INK, bg) {
        PAGE_BG
    } else {
        INK
    }
}

/// Every (text colour, background) pair the page can use, with what it is for: the tests
/// hold each to WCAG AA. [`css`] writes the same values; a new text colour goes in both.
#[cfg(test)]
pub(crate) fn text_colour_pairs() -> Vec<(String, [u8; 3], [u8; 3])> {
    let mut pairs = vec![
        ("body text".to_owned(), INK, PAGE_BG),
        ("secondary text".to_owned(), MUTED, PAGE_BG),
    ];
    for s in ALL {
        pairs.push((format!("{s:?} band and chip"), text_on(s.rgb()), s.rgb()));
    }
    pairs
}

/// CSS class of a status: `s-green`, …
fn class(status: StatusColour) -> &'static str {
    match status {
        StatusColour::Green => "s-green",
        StatusColour::Yellow => "s-yellow",
        StatusColour::Red => "s-red",
        StatusColour::Grey => "s-grey",
    }
}

/// The status's shape as a small inline SVG, `px` square, drawn in `ink` with its mark cut
/// out in `paper`. Decorative (`aria-hidden`): the word next to it says the same.
pub(crate) fn icon_svg(status: StatusColour, px: u32, ink: [u8; 3], paper: [u8; 3]) -> String {
    let (ink, paper) = (hex(ink), hex(paper));
    let stroke = format!(
        r#"fill="none" stroke="{paper}" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round""#
    );
    let (shape, body) = match status {
        StatusColour::Green => (
            "tick",
            format!(
                r#"<circle cx="12" cy="12" r="11" fill="{ink}"/><path d="M6.5 12.5l3.5 3.5 7.5-8" {stroke}/>"#
            ),
        ),
        StatusColour::Yellow => (
            "warning",
            format!(
                r#"<path d="M12 1.5L23 21.5H1z" fill="{ink}"/><path d="M12 8.5v6" {stroke}/><circle cx="12" cy="18.2" r="1.5" fill="{paper}"/>"#
            ),
        ),
        StatusColour::Red => (
            "stop",
            format!(
                r#"<path d="M7.8 1.8h8.4l6 6v8.4l-6 6H7.8l-6-6V7.8z" fill="{ink}"/><path d="M8 8l8 8M16 8l-8 8" {stroke}/>"#
            ),
        ),
        StatusColour::Grey => (
            "unknown",
            format!(
                r#"<path d="M12 1l11 11-11 11L1 12z" fill="{ink}"/><path d="M7.5 12h9" {stroke}/>"#
            ),
        ),
    };
    format!(
        r#"<svg class="icon icon-{shape}" width="{px}" height="{px}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">{body}</svg>"#
    )
}

/// The QR code of `content` as inline SVG: modules in the status's module shade (module
/// docs of [`super`]) on white with a quiet zone, whole CSS px per module, and an
/// accessible name (`健康码 红码 Red code`).
///
/// Errors: [`RenderError::QrEncode`] if the content does not fit in a QR code.
pub(crate) fn qr_svg(content: &str, status: StatusColour) -> Result<String, RenderError> {
    let (side, dark) = qr_matrix(content)?;
    let total = side + 2 * QUIET_MODULES;
    let px = total * (QR_TARGET_PX / total).max(MIN_MODULE_PX);
    let (zh, en) = status_words(status);
    let mut svg = String::with_capacity(8 * 1024);
    // `write!` into a String cannot fail.
    let _ = write!(
        svg,
        r#"<svg class="qr" xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}" viewBox="0 0 {total} {total}" shape-rendering="crispEdges" role="img" aria-label="{}">"#,
        escape(&format!("{} {zh} {en}", super::TITLE))
    );
    let _ = write!(
        svg,
        r#"<rect width="{total}" height="{total}" fill="{}"/><path fill="{}" d=""#,
        hex(PAGE_BG),
        hex(status.module_rgb())
    );
    // Viewbox units are modules; the width attribute scales them to whole px.
    push_qr_path(&mut svg, side, &dark, (QUIET_MODULES, QUIET_MODULES), 1);
    svg.push_str(r#""/></svg>"#);
    Ok(svg)
}

/// The stylesheet: layout, sizes, and one class per status with its colours.
fn css() -> String {
    let mut css = format!(
        "*{{box-sizing:border-box}}\
         html{{-webkit-text-size-adjust:100%;text-size-adjust:100%}}\
         body{{margin:0;background:{bg};color:{ink};font-family:{font};font-size:{body}px;line-height:1.45}}\
         .band{{padding:20px 16px 22px;text-align:center}}\
         .band p{{margin:0}}\
         .title{{font-size:24px;font-weight:bold}}\
         .subtitle{{font-size:{body}px}}\
         .status{{margin-top:12px!important;display:flex;align-items:center;justify-content:center;gap:12px;flex-wrap:wrap}}\
         .word{{font-size:{word}px;font-weight:bold;line-height:1.2}}\
         .word-en{{font-size:22px;font-weight:bold}}\
         main{{max-width:480px;margin:0 auto;padding:0 16px 32px}}\
         .name{{font-size:28px;text-align:center;margin:16px 0 8px}}\
         .qr-box{{display:flex;justify-content:center;margin:0 0 12px}}\
         svg.qr{{display:block;max-width:100%;height:auto}}\
         dl{{margin:0 0 20px;display:grid;grid-template-columns:auto 1fr;gap:4px 12px}}\
         dt{{color:{muted}}}dd{{margin:0;font-variant-numeric:tabular-nums}}\
         h2{{font-size:20px;margin:0 0 8px}}\
         table{{width:100%;border-collapse:collapse}}\
         th,td{{text-align:left;padding:8px 6px;border-bottom:1px solid {muted};vertical-align:middle}}\
         th{{color:{muted};font-weight:normal}}\
         .chip{{display:inline-block;padding:2px 10px;border-radius:14px;font-weight:bold}}\
         .chip>span{{white-space:nowrap}}\
         .chip .icon{{vertical-align:-3px;margin-right:6px}}\
         .unavailable{{color:{muted}}}\
         .none{{color:{muted}}}\
         [lang=en]{{font-family:sans-serif}}",
        bg = hex(PAGE_BG),
        ink = hex(INK),
        muted = hex(MUTED),
        font = SVG_FONT_FAMILY,
        body = BODY_PX,
        word = STATUS_WORD_PX,
    );
    for s in ALL {
        let _ = write!(
            css,
            ".{}{{background:{};color:{}}}",
            class(s),
            hex(s.rgb()),
            hex(text_on(s.rgb()))
        );
    }
    css
}

/// `<time>` for a Beijing date-time, with a machine-readable `datetime`.
fn time_element(t: DateTime) -> String {
    let text = t.to_string();
    format!(
        r#"<time datetime="{}+08:00">{text}</time>"#,
        text.replacen(' ', "T", 1)
    )
}

/// The page as one self-contained HTML5 document (module docs).
///
/// Every text is escaped; the content appears only inside the QR code.
///
/// Errors: [`RenderError::QrEncode`] if the content does not fit in a QR code.
pub fn code_page_html(page: &CodePage<'_>) -> Result<String, RenderError> {
    let status = page.status;
    let (zh, en) = status_words(status);
    let qr = qr_svg(page.content, status)?;
    let band_fg = text_on(status.rgb());
    let mut html = String::with_capacity(qr.len() + 8 * 1024);
    // `write!` into a String cannot fail.
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{title} {zh} {en}</title>\n\
         <style>{css}</style>\n\
         </head>\n<body>\n",
        title = super::TITLE,
        css = css(),
    );
    let _ = writeln!(
        html,
        "<header class=\"band {class}\">\
         <p class=\"title\">{title} <span lang=\"en\">Health code</span></p>\
         <p class=\"subtitle\">{subtitle}</p>\
         <p class=\"status\">{icon}<span class=\"word\">{zh}</span> <span class=\"word-en\" lang=\"en\">{en}</span></p>\
         </header>",
        class = class(status),
        title = super::TITLE,
        subtitle = super::SUBTITLE,
        icon = icon_svg(status, STATUS_WORD_PX, band_fg, status.rgb()),
    );
    let _ = write!(
        html,
        "<main>\n<p class=\"name\">{name}</p>\n<div class=\"qr-box\">{qr}</div>\n\
         <dl>\
         <dt>更新于 <span lang=\"en\">Updated</span></dt><dd>{updated}</dd>\
         <dt>有效期至 <span lang=\"en\">Valid until</span></dt><dd>{expires}</dd>\
         <dt>签发方 <span lang=\"en\">Issuer</span></dt><dd>{issuer}</dd>\
         </dl>\n",
        name = escape(page.masked_name.as_str()),
        updated = time_element(page.updated_at),
        expires = time_element(page.expires_at),
        issuer = escape(page.issuer.as_str()),
    );
    html.push_str(
        "<section aria-labelledby=\"regions\">\
         <h2 id=\"regions\">查询地区 <span lang=\"en\">Regions consulted</span></h2>\n",
    );
    if page.regions.is_empty() {
        html.push_str("<p class=\"none\">无 <span lang=\"en\">none</span></p>\n");
    } else {
        html.push_str(
            "<table>\n<thead><tr><th scope=\"col\">地区 <span lang=\"en\">Region</span></th>\
             <th scope=\"col\">代码 <span lang=\"en\">Code</span></th>\
             <th scope=\"col\">状态 <span lang=\"en\">Status</span></th></tr></thead>\n<tbody>\n",
        );
        for row in page.regions {
            let answer = match row.answer {
                RegionAnswer::Status(s) => {
                    let (zh, en) = status_words(s);
                    format!(
                        // Each word stays whole; a narrow screen may break between them.
                        "<span class=\"chip {}\"><span>{}{zh}</span> <span lang=\"en\">{en}</span></span>",
                        class(s),
                        icon_svg(s, BODY_PX, text_on(s.rgb()), s.rgb()),
                    )
                }
                RegionAnswer::Unavailable => format!(
                    "<span class=\"unavailable\">{} <span lang=\"en\">{}</span></span>",
                    UNAVAILABLE_WORDS.0, UNAVAILABLE_WORDS.1
                ),
            };
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{answer}</td></tr>",
                escape(&row.name),
                escape(row.code.as_str()),
            );
        }
        html.push_str("</tbody>\n</table>\n");
    }
    html.push_str("</section>\n</main>\n</body>\n</html>\n");
    Ok(html)
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
