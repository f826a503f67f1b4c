//! Render tests. The PNG tests need a CJK font: Debian `fonts-wqy-microhei` (or another
//! of `DEFAULT_FONT_CANDIDATES`).

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::code::{
    Claims, CodeId, CodeUrl, Colour, FixedClock, IssuerKey, Verifier, VerifierConfig, issue,
};
use crate::crypto::SigningKey;
use crate::trust::testutil::{issuer, list};
use crate::trust::{IssuerId, KeyStatus, Kid, TrustRegistry, TrustedKey};

const NOW: i64 = 1_714_000_000;

struct Issued {
    verifier: Verifier,
    key: IssuerKey,
}

fn setup() -> Issued {
    let key = IssuerKey::new(
        IssuerId::parse("42000001").unwrap(),
        Kid::parse("hb-1").unwrap(),
        SigningKey::generate().unwrap(),
    );
    let entry = TrustedKey {
        kid: key.kid().clone(),
        public_key: key.verifying_key(),
        not_before: NOW - 86_400,
        not_after: NOW + 86_400,
        status: KeyStatus::Active,
    };
    let registry =
        Arc::new(TrustRegistry::new(list(1, vec![issuer("42000001", vec![entry])])).unwrap());
    let verifier = Verifier::new(
        registry,
        Arc::new(FixedClock::new(NOW)),
        VerifierConfig::default(),
    );
    Issued { verifier, key }
}

fn token(fx: &Issued, col: Colour) -> String {
    let claims = Claims {
        cid: CodeId::random().unwrap(),
        col,
        iat: NOW,
        exp: NOW + 300,
        nc: None,
    };
    issue(&fx.key, &claims).unwrap()
}

fn view(content: String, colour: &str) -> CodeView {
    CodeView {
        content,
        colour: colour.to_owned(),
        masked_name: MaskedName::mask("张三"),
        updated_at: format_update_time(NOW, 8 * 3600),
        region_name: "湖北省".to_owned(),
        status_word: StatusColour::from_code(colour).word().to_owned(),
    }
}

fn renderer() -> Renderer {
    Renderer::new(&FontConfig::default()).expect("a CJK font: apt-get install fonts-wqy-microhei")
}

/// Decode a PNG into (width, height, RGB bytes).
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn pixel(img: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 3] {
    let i = ((y * img.0 + x) * 3) as usize;
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

/// Read the QR code back with `rqrr`, as a scanner would.
fn scan(img: &(u32, u32, Vec<u8>)) -> String {
    let (w, h, rgb) = img;
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(*w as usize, *h as usize, |x, y| {
            let i = (y * *w as usize + x) * 3;
            let [r, g, b] = [rgb[i], rgb[i + 1], rgb[i + 2]].map(u32::from);
            ((r * 299 + g * 587 + b * 114) / 1000) as u8
        });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code on the page");
    grids[0].decode().unwrap().1
}

#[test]
fn png_code_decodes_and_verifies() {
    let fx = setup();
    let r = renderer();
    let t = token(&fx, Colour::Green);
    let png = r.render_png(&view(t.clone(), "00")).unwrap();
    std::fs::write("/tmp/hutong-render-sample.png", &png).unwrap();
    let scanned = scan(&decode_png(&png));
    assert_eq!(scanned, t);
    let v = fx.verifier.verify_content(&scanned).unwrap();
    assert_eq!(v.claims.col, Colour::Green);

    // The URL form, on a red page.
    let t = token(&fx, Colour::Red);
    let url = CodeUrl::for_token("jkm.example.cn", &t).unwrap().to_url();
    let png = r.render_png(&view(url.clone(), "10")).unwrap();
    std::fs::write("/tmp/hutong-render-sample-red.png", &png).unwrap();
    let scanned = scan(&decode_png(&png));
    assert_eq!(scanned, url);
    assert_eq!(
        fx.verifier.verify_content(&scanned).unwrap().claims.col,
        Colour::Red
    );
}

#[test]
fn every_colour_scans() {
    let fx = setup();
    let r = renderer();
    for (col, code) in [(Colour::Yellow, "01"), (Colour::Unknown, "20")] {
        let t = token(&fx, col);
        let png = r.render_png(&view(t.clone(), code)).unwrap();
        std::fs::write(format!("/tmp/hutong-render-sample-{code}.png"), &png).unwrap();
        assert_eq!(scan(&decode_png(&png)), t, "colour {code}");
    }
}

#[test]
fn modules_and_band_are_in_the_status_colour() {
    let fx = setup();
    let r = renderer();
    for (code, expected) in [("00", [0x39, 0xB7, 0x78]), ("10", [0xD8, 0x24, 0x2B])] {
        let t = token(&fx, Colour::Green);
        let img = decode_png(&r.render_png(&view(t.clone(), code)).unwrap());
        let (side, _) = qr_matrix(&t).unwrap();
        let l = Layout::new(side);
        assert_eq!((img.0, img.1), (l.width, l.height));
        let half = l.module_px / 2;
        // Module (0, 0) and (side-1, 0) are corners of finder patterns: always dark.
        assert_eq!(
            pixel(&img, l.qr_x + half, l.qr_y + half),
            expected,
            "{code}"
        );
        let right = l.qr_x + (side - 1) * l.module_px + half;
        assert_eq!(pixel(&img, right, l.qr_y + half), expected, "{code}");
        // Module (1, 1) is inside the finder's light ring: white.
        let one = l.qr_x + l.module_px + half;
        assert_eq!(pixel(&img, one, l.qr_y + l.module_px + half), [0xFF; 3]);
        // The quiet zone is white, the header band is the status colour.
        assert_eq!(
            pixel(&img, l.qr_x - l.module_px * 2, l.qr_y + half),
            [0xFF; 3]
        );
        assert_eq!(pixel(&img, 2, 2), expected);
    }
}

#[test]
fn yellow_modules_are_a_darker_shade_of_the_same_hue() {
    let y = StatusColour::Yellow;
    assert_eq!(hex(y.rgb()), "#F5D000");
    let [r, g, b] = y.module_rgb();
    let [r0, g0, _] = y.rgb();
    assert_eq!(b, 0);
    // Same hue: the same r:g ratio, within rounding.
    assert!((f32::from(g) / f32::from(r) - f32::from(g0) / f32::from(r0)).abs() < 0.01);
    let luma =
        |[r, g, b]: [u8; 3]| 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
    assert!(luma(y.module_rgb()) < 150.0 && luma(y.rgb()) > 190.0);
    assert_eq!(
        StatusColour::from_code("00").module_rgb(),
        StatusColour::Green.rgb()
    );
    assert_eq!(StatusColour::from_code("99"), StatusColour::Grey);
    assert_eq!(hex(StatusColour::Grey.rgb()), "#9E9E9E");
}

#[test]
fn missing_font_is_a_clear_error() {
    let cfg = FontConfig {
        font_path: Some(PathBuf::from("/nonexistent/font.ttc")),
        font_index: 0,
    };
    let err = Renderer::new(&cfg).unwrap_err();
    assert!(
        matches!(&err, RenderError::NoFont { tried } if tried.len() == 1),
        "{err}"
    );
    // A file that is not a font, and a font file with a face index it does not have.
    assert!(matches!(
        font::load_first([(PathBuf::from("/etc/hostname"), 0)]),
        Err(RenderError::NoFont { .. })
    ));
    let wqy = PathBuf::from(DEFAULT_FONT_CANDIDATES[0].0);
    assert!(font::load_first([(wqy.clone(), 99)]).is_err());
    // .ttc collections load by index: face 1 of WenQuanYi Micro Hei is its Mono face.
    if wqy.exists() {
        assert!(font::load_first([(wqy, 1)]).is_ok());
    }
}

#[test]
fn default_render_png_uses_the_search_list() {
    let fx = setup();
    let png = render_png(&view(token(&fx, Colour::Green), "00")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[test]
fn content_too_long_for_a_qr_code_is_an_error() {
    let v = view("A".repeat(4000), "00");
    assert!(matches!(
        renderer().render_png(&v),
        Err(RenderError::QrEncode(_))
    ));
    assert!(matches!(render_svg(&v), Err(RenderError::QrEncode(_))));
}

#[test]
fn svg_has_the_page_elements_and_escapes_text() {
    let fx = setup();
    let mut v = view(token(&fx, Colour::Red), "10");
    v.region_name = "湖北<省>&\"".to_owned();
    let svg = render_svg(&v).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains("湖北&lt;省&gt;&amp;&quot;"));
    assert!(!svg.contains("<省>"));
    for text in [
        "健康码",
        "个人健康信息码",
        "张*",
        "红码",
        "更新于 2024-04-25 07:06:40",
    ] {
        assert!(svg.contains(text), "missing {text}");
    }
    assert!(svg.contains(r##"<rect width="720" height="180" fill="#D8242B"/>"##));
    assert!(svg.contains(r##"<path fill="#D8242B""##));
    assert!(svg.contains("font-family=\"'WenQuanYi Micro Hei'"));
}

#[test]
fn names_are_masked_and_times_formatted() {
    assert_eq!(MaskedName::mask("张三").as_str(), "张*");
    assert_eq!(MaskedName::mask("欧阳娜娜").as_str(), "欧***");
    assert_eq!(MaskedName::mask("王").as_str(), "*");
    assert_eq!(MaskedName::mask("").as_str(), "");
    assert!(MaskedName::from_masked("张三").is_none());
    assert_eq!(MaskedName::from_masked("**双").unwrap().as_str(), "**双");
    assert_eq!(format_update_time(0, 8 * 3600), "1970-01-01 08:00:00");
    assert_eq!(format_update_time(NOW, 0), "2024-04-24 23:06:40");
    assert_eq!(format_update_time(951_782_400, 0), "2000-02-29 00:00:00");
    assert_eq!(format_update_time(-1, 0), "1969-12-31 23:59:59");
    assert_eq!(clip(&"长".repeat(30)).chars().count(), 24);
}

#[test]
fn the_image_text_reads_at_4_5_to_1_on_every_colour() {
    use crate::render::page::{PAGE_BG, contrast_ratio};
    for s in [
        StatusColour::Green,
        StatusColour::Yellow,
        StatusColour::Red,
        StatusColour::Grey,
    ] {
        let band = contrast_ratio(s.band_text_rgb(), s.rgb());
        assert!(band >= 4.5, "{s:?}: band text {band:.2}:1");
        let word = contrast_ratio(s.word_rgb(), PAGE_BG);
        assert!(word >= 4.5, "{s:?}: status word {word:.2}:1");
    }
}
