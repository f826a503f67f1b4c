//! The HTML code page through a real browser. Debian's Chromium, headless, screenshots a
//! red page and a green page as a 420×900 phone screen; the QR code is found in each
//! screenshot the way a scanner finds it (rqrr), must decode to the page's content, and
//! must be drawn in the status colour's module shade. The green page's code must not pass
//! as red, so the colour check is shown to reject a wrong colour.
//!
//! Chromium is a test dependency like the OpenSSL CLI: `bash .ci/test` installs it. When it
//! is missing the test fails and says so; it never skips.

use std::collections::HashMap;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hutong::code::{Claims, CodeId, CodeUrl, Colour, IssuerKey, issue};
use hutong::crypto::SigningKey;
use hutong::national::time::DateTime;
use hutong::render::{CodePage, MaskedName, RegionAnswer, RegionRow, StatusColour, code_page_html};
use hutong::trust::{IssuerId, Kid, RegionCode};

use crate::support::temp_dir;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium takes about a second here; the limit only keeps a wedged browser from hanging
/// the suite.
const TIMEOUT: Duration = Duration::from_secs(60);
/// A phone-sized viewport, CSS px at a device scale factor of 1 (so 1 px = 1 pixel).
const VIEWPORT: (u32, u32) = (420, 900);
/// Largest per-channel difference between an expected colour and the screenshot's. The
/// page's colours are opaque sRGB with no gradients, and Chromium headless applies no
/// display colour profile, so this only absorbs rounding.
const TOLERANCE: u8 = 6;
const NOW: i64 = 1_714_000_000;

/// An RGB screenshot.
pub struct Image {
    pub width: u32,
    pub height: u32,
    rgb: Vec<u8>,
}

impl Image {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// A signed PHIC1 code page URL of colour `col`: real content, of real length.
fn code_url(col: Colour) -> String {
    let key = IssuerKey::new(
        IssuerId::parse("42000001").unwrap(),
        Kid::parse("hb-1").unwrap(),
        SigningKey::generate().unwrap(),
    );
    let claims = Claims {
        cid: CodeId::random().unwrap(),
        col,
        iat: NOW,
        exp: NOW + 300,
        nc: None,
    };
    let token = issue(&key, &claims).unwrap();
    CodeUrl::for_token("jkm.example.cn", &token)
        .unwrap()
        .to_url()
}

fn page_html(content: &str, status: StatusColour) -> String {
    let name = MaskedName::mask("张三");
    let issuer = IssuerId::parse("42000001").unwrap();
    let regions = [
        RegionRow {
            code: RegionCode::parse("420000").unwrap(),
            name: "湖北省".to_owned(),
            answer: RegionAnswer::Status(status),
        },
        RegionRow {
            code: RegionCode::parse("440000").unwrap(),
            name: "广东省".to_owned(),
            answer: RegionAnswer::Unavailable,
        },
    ];
    code_page_html(&CodePage {
        content,
        status,
        masked_name: &name,
        updated_at: DateTime::from_unix(NOW),
        expires_at: DateTime::from_unix(NOW + 300),
        issuer: &issuer,
        regions: &regions,
    })
    .unwrap()
}

/// Write `html` under `dir` and screenshot it with headless Chromium; the PNG's path.
fn screenshot(dir: &Path, tag: &str, html: &str) -> PathBuf {
    let html_path = dir.join(format!("{tag}.html"));
    std::fs::write(&html_path, html).unwrap();
    screenshot_url(dir, tag, &format!("file://{}", html_path.display()), &[])
}

/// Screenshot `url` with headless Chromium (extra flags in `extra`); the PNG's path.
pub fn screenshot_url(dir: &Path, tag: &str, url: &str, extra: &[&str]) -> PathBuf {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is needed for the code page screenshot test: bash .ci/test installs it \
         (apt-get install chromium)"
    );
    let png_path = dir.join(format!("{tag}.png"));
    let log_path = dir.join(format!("{tag}.chromium.log"));
    let log = File::create(&log_path).unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            // Root in a container has no user namespace for the sandbox; the page is ours.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            &format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1),
            // A profile of its own: nothing from ~/.config, and parallel tests do not share.
            &format!(
                "--user-data-dir={}",
                dir.join(format!("{tag}.profile")).display()
            ),
            &format!("--screenshot={}", png_path.display()),
        ])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{CHROMIUM} does not start ({e}): bash .ci/test installs it"));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            // The launcher script execs the browser, so this is the browser process; its
            // helpers exit when it does.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {TIMEOUT:?}; log: {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success() && png_path.exists(),
        "chromium failed ({status}), log {}:\n{log_text}",
        log_path.display()
    );
    println!("screenshot {tag}: {}", png_path.display());
    png_path
}

pub fn decode(path: &Path) -> Image {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        // Opaque page, so alpha is 255 everywhere and can be dropped.
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    Image {
        width: info.width,
        height: info.height,
        rgb,
    }
}

/// The bounding box `(x0, y0, x1, y1)`, exclusive ends, of the QR code in `img` that
/// decodes to `content`, found as a scanner finds it: no assumption about the layout.
pub fn find_qr(img: &Image, content: &str) -> (u32, u32, u32, u32) {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let [r, g, b] = img.pixel(x as u32, y as u32).map(u32::from);
        ((r * 299 + g * 587 + b * 114) / 1000) as u8
    });
    let grids = prepared.detect_grids();
    let grid = grids
        .iter()
        .find(|g| g.decode().map(|(_, text)| text == content).unwrap_or(false))
        .unwrap_or_else(|| {
            panic!(
                "no QR code decoding to the content in the screenshot ({} found)",
                grids.len()
            )
        });
    let xs = grid.bounds.iter().map(|p| p.x.clamp(0, w as i32) as u32);
    let ys = grid.bounds.iter().map(|p| p.y.clamp(0, h as i32) as u32);
    let (x0, x1) = (xs.clone().min().unwrap(), xs.max().unwrap());
    let (y0, y1) = (ys.clone().min().unwrap(), ys.max().unwrap());
    assert!(
        x1 - x0 >= 100 && y1 - y0 >= 100,
        "QR code too small: {x0},{y0}..{x1},{y1}"
    );
    (x0, y0, x1, y1)
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&a, b)| a.abs_diff(b) <= TOLERANCE)
}

/// Whether the QR code area's dominant non-white colour is `expected`, and covers nearly
/// all of its non-white pixels (the modules are one colour with crisp edges).
pub fn check_qr_colour(
    img: &Image,
    bbox: (u32, u32, u32, u32),
    expected: [u8; 3],
) -> Result<(), String> {
    let (x0, y0, x1, y1) = bbox;
    let mut counts: HashMap<[u8; 3], u32> = HashMap::new();
    let mut non_white = 0u32;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.pixel(x, y);
            if p.iter().any(|&c| c < 0xF0) {
                non_white += 1;
                *counts.entry(p).or_default() += 1;
            }
        }
    }
    let (dominant, n) = counts
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .ok_or("no non-white pixel in the QR area")?;
    let share = f64::from(n) / f64::from(non_white);
    if !close(dominant, expected) {
        return Err(format!(
            "dominant colour {dominant:02X?} is not {expected:02X?} (±{TOLERANCE})"
        ));
    }
    if share < 0.9 {
        return Err(format!(
            "dominant colour covers only {:.0}% of the code",
            share * 100.0
        ));
    }
    Ok(())
}

#[test]
fn red_page_screenshot_has_a_red_code_that_scans() {
    let dir = temp_dir("code-page-red");
    let content = code_url(Colour::Red);
    let png = screenshot(&dir, "red", &page_html(&content, StatusColour::Red));
    let img = decode(&png);
    assert_eq!((img.width, img.height), VIEWPORT);
    let bbox = find_qr(&img, &content);
    let red = StatusColour::Red;
    check_qr_colour(&img, bbox, red.module_rgb()).unwrap();
    // The header band at the top is the reference red.
    assert!(close(img.pixel(img.width / 2, 2), red.rgb()), "band colour");
}

#[test]
fn green_page_screenshot_is_green_not_red() {
    let dir = temp_dir("code-page-green");
    let content = code_url(Colour::Green);
    let png = screenshot(&dir, "green", &page_html(&content, StatusColour::Green));
    let img = decode(&png);
    let bbox = find_qr(&img, &content);
    check_qr_colour(&img, bbox, StatusColour::Green.module_rgb()).unwrap();
    let wrong = check_qr_colour(&img, bbox, StatusColour::Red.module_rgb());
    assert!(
        wrong.is_err(),
        "a green code passed the check for red: the check cannot tell colours apart"
    );
    assert!(close(
        img.pixel(img.width / 2, 2),
        StatusColour::Green.rgb()
    ));
}
