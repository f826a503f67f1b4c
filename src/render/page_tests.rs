//! Tests of the HTML code page. The screenshot check, through a real browser, is the
//! integration test `tests/code_page.rs`.

use super::*;

const CONTENT: &str = "https://jkm.example.cn/phic/c?v=1&cid=0123456789abcdef&iss=42000001&pc=PHIC1.eyJjaWQiOiIwMTIzIn0.MEUCIQDabc";

fn rows() -> Vec<RegionRow> {
    let row = |code: &str, name: &str, answer| RegionRow {
        code: RegionCode::parse(code).unwrap(),
        name: name.to_owned(),
        answer,
    };
    vec![
        row("420000", "湖北省", RegionAnswer::Status(StatusColour::Red)),
        row(
            "330000",
            "浙江省",
            RegionAnswer::Status(StatusColour::Green),
        ),
        row("440000", "广东省", RegionAnswer::Unavailable),
    ]
}

/// The page for `status`, with the rows of [`rows`].
fn html(status: StatusColour, name: &MaskedName, regions: &[RegionRow]) -> String {
    let issuer = IssuerId::parse("42000001").unwrap();
    code_page_html(&CodePage {
        content: CONTENT,
        status,
        masked_name: name,
        updated_at: DateTime::from_unix(1_714_000_000),
        expires_at: DateTime::from_unix(1_714_000_300),
        issuer: &issuer,
        regions,
    })
    .unwrap()
}

/// The inline QR `<svg class="qr" …>…</svg>` of a page.
fn qr_of(html: &str) -> &str {
    let start = html.find(r#"<svg class="qr""#).expect("a QR svg");
    let len = html[start..].find("</svg>").expect("closed") + "</svg>".len();
    &html[start..start + len]
}

#[test]
fn page_is_a_self_contained_html5_document() {
    let name = MaskedName::mask("张三");
    let page = html(StatusColour::Red, &name, &rows());
    assert!(page.starts_with("<!doctype html>\n<html lang=\"zh-CN\">"));
    assert!(page.trim_end().ends_with("</html>"));
    for needle in [
        r#"<meta charset="utf-8">"#,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#,
        "<title>健康码 红码 Red code</title>",
        "<style>",
        "张*",
        "更新于",
        "2024-04-25 07:06:40",
        r#"datetime="2024-04-25T07:06:40+08:00""#,
        "有效期至",
        "2024-04-25 07:11:40",
        "42000001",
        "查询地区",
        "Regions consulted",
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
    // Nothing is fetched and nothing runs: no script, no external reference of any kind.
    let lower = page.to_ascii_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "http://",
        "https://",
    ] {
        // The SVG namespace is an identifier, not a fetch.
        let stripped = lower.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!stripped.contains(banned), "page contains {banned}");
    }
    // No event handler attribute (` onload=`, …).
    for (at, _) in lower.match_indices(" on") {
        let rest = &lower[at + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        assert!(!rest[name_len..].starts_with('='), "handler at {at}");
    }
    // The content (a URL, here) is only in the QR code, never written out.
    assert!(!page.contains("jkm.example.cn"));
}

#[test]
fn escapes_every_text() {
    assert_eq!(
        escape(r#"<script>alert("x")</script>&'"#),
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&apos;"
    );
    assert_eq!(escape("a\u{0}b\u{1b}c"), "abc");
    assert_eq!(escape("a\u{FFFE}b\u{FFFF}c\u{FFFD}"), "abc\u{FFFD}");

    let name = MaskedName::from_masked(r#"<script>alert('*')</script>"#).unwrap();
    let regions = vec![RegionRow {
        code: RegionCode::parse("420000").unwrap(),
        name: r#"湖北"><img src=x onerror=alert(1)>"#.to_owned(),
        answer: RegionAnswer::Unavailable,
    }];
    let page = html(StatusColour::Green, &name, &regions);
    assert!(!page.contains("<script"));
    assert!(!page.contains("<img"));
    assert!(page.contains("&lt;script&gt;alert(&apos;*&apos;)&lt;/script&gt;"));
    assert!(page.contains("湖北&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn each_status_has_its_words_and_its_own_shape() {
    let name = MaskedName::mask("张三");
    let mut shapes = Vec::new();
    for (status, zh, en) in [
        (StatusColour::Green, "绿码", "Green code"),
        (StatusColour::Yellow, "黄码", "Yellow code"),
        (StatusColour::Red, "红码", "Red code"),
        (StatusColour::Grey, "灰码", "Grey code"),
    ] {
        let page = html(status, &name, &[]);
        let band = &page[page.find("<header").unwrap()..page.find("</header>").unwrap()];
        assert!(
            band.contains(&format!("<span class=\"word\">{zh}</span>")),
            "{zh}"
        );
        assert!(band.contains(en), "{en}");
        assert!(band.contains(&format!("band {}", class(status))));
        let icon = icon_svg(status, STATUS_WORD_PX, text_on(status.rgb()), status.rgb());
        assert!(band.contains(&icon), "{zh}: icon in the band");
        shapes.push(icon[..icon.find(" width").unwrap()].to_owned());
        assert!(page.contains("<p class=\"none\">"), "no regions: says so");
    }
    shapes.sort();
    shapes.dedup();
    assert_eq!(shapes.len(), 4, "four distinct shapes: {shapes:?}");
}

#[test]
fn qr_modules_are_in_the_module_shade_and_labelled() {
    let name = MaskedName::mask("张三");
    for status in [
        StatusColour::Green,
        StatusColour::Yellow,
        StatusColour::Red,
        StatusColour::Grey,
    ] {
        let page = html(status, &name, &[]);
        let qr = qr_of(&page);
        let (zh, en) = status_words(status);
        assert!(qr.contains(&format!(r#"role="img" aria-label="健康码 {zh} {en}""#)));
        assert!(
            qr.contains(&format!(
                r#"<path fill="{}" d="M"#,
                hex(status.module_rgb())
            )),
            "{status:?}: {qr:.300}"
        );
        // One fill for the modules, one white for the quiet zone: no third colour.
        assert_eq!(qr.matches("fill=").count(), 2);
    }
    // Yellow and grey modules are the darker shade, not the band colour.
    let qr = html(StatusColour::Yellow, &name, &[]);
    assert!(qr_of(&qr).contains("#AC9200") && !qr_of(&qr).contains("#F5D000"));
}

#[test]
fn qr_has_a_quiet_zone_and_whole_px_modules() {
    let (side, dark) = qr_matrix(CONTENT).unwrap();
    let qr = qr_svg(CONTENT, StatusColour::Red).unwrap();
    let total = side + 2 * QUIET_MODULES;
    assert!(qr.contains(&format!(r#"viewBox="0 0 {total} {total}""#)));
    let width: u32 = qr
        .split("width=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(width % total, 0, "whole px per module");
    assert!(width <= QR_TARGET_PX && width / total >= MIN_MODULE_PX);
    // The path starts at the top-left finder pattern, inside the quiet zone.
    assert!(dark[0]);
    assert!(qr.contains(&format!(r#"d="M{QUIET_MODULES} {QUIET_MODULES}h"#)));
    assert!(matches!(
        qr_svg(&"A".repeat(4000), StatusColour::Red),
        Err(RenderError::QrEncode(_))
    ));
}

#[test]
fn text_colours_meet_wcag_aa_for_every_status() {
    // The formula against known values: black on white is 21:1, a colour on itself 1:1,
    // and #767676 is the lightest grey that passes 4.5:1 on white.
    assert!((contrast_ratio([0; 3], [0xFF; 3]) - 21.0).abs() < 1e-9);
    assert!((contrast_ratio(MUTED, MUTED) - 1.0).abs() < 1e-9);
    assert!(contrast_ratio([0x76; 3], PAGE_BG) >= 4.5);
    assert!(contrast_ratio([0x77; 3], PAGE_BG) < 4.5);

    let pairs = text_colour_pairs();
    assert_eq!(pairs.len(), 2 + 4, "body, secondary, and each status");
    for (what, fg, bg) in &pairs {
        let ratio = contrast_ratio(*fg, *bg);
        assert!(
            ratio >= 4.5,
            "{what}: {} on {} is {ratio:.2}:1",
            hex(*fg),
            hex(*bg)
        );
    }
    // Why the choice is computed: white on the reference green fails, so it is ink there.
    assert!(contrast_ratio(PAGE_BG, StatusColour::Green.rgb()) < 3.0);
    assert_eq!(text_on(StatusColour::Green.rgb()), INK);
    assert_eq!(text_on(StatusColour::Red.rgb()), PAGE_BG);

    // The stylesheet uses exactly those pairs.
    let css = css();
    for s in ALL {
        assert!(css.contains(&format!(
            ".{}{{background:{};color:{}}}",
            class(s),
            hex(s.rgb()),
            hex(text_on(s.rgb()))
        )));
    }
    assert!(css.contains(&format!("font-size:{BODY_PX}px")));
    assert!(css.contains(&format!(".word{{font-size:{STATUS_WORD_PX}px")));
}

#[test]
fn regions_list_each_answer_including_unavailable() {
    let name = MaskedName::mask("张三");
    let page = html(StatusColour::Red, &name, &rows());
    let table = &page[page.find("<table>").unwrap()..page.find("</table>").unwrap()];
    let body_rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("<tr><td>"))
        .collect();
    assert_eq!(body_rows.len(), 3);
    assert!(body_rows[0].starts_with("<tr><td>湖北省</td><td>420000</td>"));
    assert!(body_rows[0].contains("chip s-red") && body_rows[0].contains("红码"));
    assert!(body_rows[1].starts_with("<tr><td>浙江省</td><td>330000</td>"));
    assert!(body_rows[1].contains("chip s-green") && body_rows[1].contains("绿码"));
    assert!(body_rows[1].contains("icon-tick"));
    assert!(body_rows[2].starts_with("<tr><td>广东省</td><td>440000</td>"));
    assert!(body_rows[2].contains("未响应") && body_rows[2].contains("unavailable"));
    assert!(!body_rows[2].contains("chip"));
}

#[test]
fn page_never_shows_an_unmasked_name() {
    // The only way in for a name is MaskedName; a full name goes through `mask`.
    let name = MaskedName::mask("欧阳娜娜");
    let page = html(StatusColour::Green, &name, &[]);
    assert!(page.contains("欧***"));
    assert!(!page.contains("欧阳"));
}
