//! The PNG form of the page: an RGB canvas, text through `ab_glyph`, `png` encoding.

use std::sync::OnceLock;

use ab_glyph::{Font, FontArc, GlyphId, PxScale, ScaleFont, point};

use super::font::{self, FontConfig};
use super::{CodeView, Layout, RenderError, qr_matrix, text_lines};

/// Horizontal margin kept free of text, px.
const TEXT_MARGIN: f32 = 24.0;

/// Renders PNG pages with one loaded font. Load once, render many.
#[derive(Clone)]
pub struct Renderer {
    font: FontArc,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer(..)")
    }
}

impl Renderer {
    /// A renderer with the font `config` names (or the first default found).
    ///
    /// Errors: [`RenderError::NoFont`].
    pub fn new(config: &FontConfig) -> Result<Self, RenderError> {
        Ok(Renderer {
            font: font::load(config)?,
        })
    }

    /// A renderer with an already loaded font.
    pub fn with_font(font: FontArc) -> Self {
        Renderer { font }
    }

    /// The page as PNG (8-bit RGB).
    ///
    /// Errors: [`RenderError::QrEncode`] if the content does not fit in a QR code,
    /// [`RenderError::Png`] if encoding fails.
    pub fn render_png(&self, view: &CodeView) -> Result<Vec<u8>, RenderError> {
        let (side, dark) = qr_matrix(&view.content)?;
        let l = Layout::new(side);
        let status = view.status();
        let mut canvas = Canvas::new(l.width, l.height, [0xFF; 3]);
        canvas.fill_rect(0, 0, l.width, l.band_height, status.rgb());
        let m = l.module_px;
        for y in 0..side {
            for x in 0..side {
                if dark[(y * side + x) as usize] {
                    canvas.fill_rect(l.qr_x + x * m, l.qr_y + y * m, m, m, status.module_rgb());
                }
            }
        }
        for (text, y, size, rgb) in text_lines(view, &l) {
            self.draw_centred(&mut canvas, &text, size, y as f32, rgb);
        }
        canvas.to_png()
    }

    fn measure(&self, text: &str, scale: PxScale) -> f32 {
        let scaled = self.font.as_scaled(scale);
        let mut width = 0.0;
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        width
    }

    /// Draw one line centred on the canvas with its baseline at `baseline`, shrunk to
    /// fit between the margins.
    fn draw_centred(
        &self,
        canvas: &mut Canvas,
        text: &str,
        size: f32,
        baseline: f32,
        rgb: [u8; 3],
    ) {
        let max_width = canvas.width as f32 - 2.0 * TEXT_MARGIN;
        let mut scale = PxScale::from(size);
        let width = self.measure(text, scale);
        let width = if width > max_width {
            scale = PxScale::from(size * max_width / width);
            self.measure(text, scale)
        } else {
            width
        };
        let scaled = self.font.as_scaled(scale);
        let mut x = (canvas.width as f32 - width) / 2.0;
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            if let Some(outlined) = self.font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    let px = bounds.min.x as i64 + i64::from(gx);
                    let py = bounds.min.y as i64 + i64::from(gy);
                    canvas.blend(px, py, rgb, coverage);
                });
            }
            x += scaled.h_advance(id);
            prev = Some(id);
        }
    }
}

static DEFAULT_RENDERER: OnceLock<Renderer> = OnceLock::new();

/// The page as PNG, with the first usable default font ([`font::DEFAULT_FONT_CANDIDATES`]).
/// The font is loaded on first success and kept; while none is found, each call searches
/// again (so installing a font needs no restart).
///
/// Errors: [`RenderError::NoFont`], [`RenderError::QrEncode`], [`RenderError::Png`].
pub fn render_png(view: &CodeView) -> Result<Vec<u8>, RenderError> {
    let renderer = match DEFAULT_RENDERER.get() {
        Some(r) => r,
        None => {
            let r = Renderer::new(&FontConfig::default())?;
            DEFAULT_RENDERER.get_or_init(|| r)
        }
    };
    renderer.render_png(view)
}

/// An 8-bit RGB image.
pub(crate) struct Canvas {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let pixels = rgb
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Canvas {
            width,
            height,
            pixels,
        }
    }

    fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                let i = (yy as usize * self.width as usize + xx as usize) * 3;
                self.pixels[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// Blend `rgb` over the pixel at (`x`, `y`) with `coverage` in 0..=1; outside the
    /// canvas is ignored.
    fn blend(&mut self, x: i64, y: i64, rgb: [u8; 3], coverage: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let a = coverage.clamp(0.0, 1.0);
        let i = (y as usize * self.width as usize + x as usize) * 3;
        for (dst, src) in self.pixels[i..i + 3].iter_mut().zip(rgb) {
            *dst = (f32::from(*dst) * (1.0 - a) + f32::from(src) * a).round() as u8;
        }
    }

    fn to_png(&self) -> Result<Vec<u8>, RenderError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| RenderError::Png(e.to_string()))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| RenderError::Png(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| RenderError::Png(e.to_string()))?;
        Ok(out)
    }
}
