//! `hutong bench chart`: the summary of a `benches/bench.sh` run as one SVG picture, where
//! each scenario is a bar measured against its own target.
//!
//! The scenarios have different units (a ratio to a baseline, req/s, milliseconds, MiB) and
//! different directions (more is better for throughput, less for latency and memory), so
//! every bar is drawn as a fraction of its target: the dashed line at 1 is the target for
//! all of them. A bar that must reach the line is met at or past it; one that must stay
//! under it is met at or before it. Green is met, red is not. The text beside each bar is
//! the measured figure as the script prints it, so nothing is read off the scale alone.
//!
//! The summary is a tab-separated file that the script writes, one scenario a line:
//!
//! ```text
//! label <TAB> value <TAB> target <TAB> higher|lower <TAB> yes|no <TAB> shown <TAB> target text [<TAB> ceiling]
//! ```
//!
//! The optional `ceiling`, in the value's unit, is the most the script estimates this
//! machine allows (its "ceiling" lines): it is drawn as a black tick across the bar, so a
//! target beyond the tick shows at a glance as out of reach here.
//!
//! `value` and `target` are numbers in the same unit; whether the target is met is the
//! script's verdict (`yes`/`no`), since some verdicts take more than the one number (the
//! burst scenario also counts errors). Lines that are empty or start with `#` are skipped.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};

use crate::render::xml_escape as escape;

/// One scenario's bar.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    /// The scenario, as the summary names it.
    pub label: String,
    /// The measured value, in the target's unit.
    pub value: f64,
    /// The target, positive.
    pub target: f64,
    /// Whether more is better (`higher`) or less (`lower`).
    pub higher_is_better: bool,
    /// The script's verdict.
    pub met: bool,
    /// The measured figure as text.
    pub shown: String,
    /// The target as text.
    pub target_text: String,
    /// The most this machine allows, in the value's unit, where the script measured it.
    pub ceiling: Option<f64>,
}

/// Parses the summary file. Each error names its line.
pub(super) fn parse(text: &str) -> anyhow::Result<Vec<Bar>> {
    let mut bars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let (label, value, target, better, met, shown, target_text, ceiling) = match f[..] {
            [l, v, t, b, m, s, tt] => (l, v, t, b, m, s, tt, None),
            [l, v, t, b, m, s, tt, c] => (l, v, t, b, m, s, tt, Some(c)),
            _ => bail!("line {n}: {} fields, not 7 or 8 (tab-separated)", f.len()),
        };
        let number = |s: &str, what: &str| -> anyhow::Result<f64> {
            let v: f64 = s
                .trim()
                .parse()
                .with_context(|| format!("line {n}: {what} {s:?} is not a number"))?;
            if !v.is_finite() {
                bail!("line {n}: {what} {s:?} is not finite");
            }
            Ok(v)
        };
        let value = number(value, "value")?;
        let target = number(target, "target")?;
        let ceiling = match ceiling.map(str::trim) {
            None | Some("") => None,
            Some(c) => Some(number(c, "ceiling")?.max(0.0)),
        };
        if target <= 0.0 {
            bail!("line {n}: the target must be positive (got {target})");
        }
        let higher_is_better = match better {
            "higher" => true,
            "lower" => false,
            other => bail!("line {n}: direction {other:?} is neither higher nor lower"),
        };
        let met = match met {
            "yes" => true,
            "no" | "NO" => false,
            other => bail!("line {n}: verdict {other:?} is neither yes nor no"),
        };
        bars.push(Bar {
            label: label.to_owned(),
            value,
            target,
            higher_is_better,
            met,
            shown: shown.to_owned(),
            target_text: target_text.to_owned(),
            ceiling,
        });
    }
    if bars.is_empty() {
        bail!("the summary has no scenario");
    }
    Ok(bars)
}

/// Layout, in SVG user units (pixels). The width grows with the longest figure's text.
const MIN_WIDTH: f64 = 900.0;
/// A generous average advance of a 13 px sans-serif character (bold digits and CJK are
/// wider than Latin text), so that the text beside a bar is not cut off.
const CHAR_W: f64 = 7.6;
const LABEL_W: f64 = 250.0;
const BAR_W: f64 = 330.0;
const ROW_H: f64 = 34.0;
const BAR_H: f64 = 18.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 46.0;
/// The scale runs from 0 to at least this many targets; further only if a bar needs it,
/// and never past [`MAX_SCALE`] (a longer bar is cut, with an arrow).
const MIN_SCALE: f64 = 1.5;
const MAX_SCALE: f64 = 3.0;
const MET: &str = "#2e7d32";
const MISSED: &str = "#c62828";

/// The chart of `bars` under `title`, as a standalone SVG document.
pub(super) fn render(title: &str, bars: &[Bar]) -> String {
    let fraction = |b: &Bar| (b.value / b.target).max(0.0);
    // The scale takes in the ceilings too, so that a tick is drawn where it belongs.
    let scale = bars
        .iter()
        .flat_map(|b| [Some(fraction(b)), b.ceiling.map(|c| c / b.target)])
        .flatten()
        .fold(MIN_SCALE, f64::max)
        .min(MAX_SCALE);
    let x_of = |f: f64| LABEL_W + BAR_W * f.min(scale) / scale;
    let height = TOP + ROW_H * bars.len() as f64 + BOTTOM;
    let text_x = LABEL_W + BAR_W + 18.0;
    let longest = bars
        .iter()
        .map(|b| b.shown.chars().count() + b.target_text.chars().count() + " target ".len())
        .max()
        .unwrap_or(0);
    let width = (text_x + CHAR_W * longest as f64 + 12.0)
        .max(MIN_WIDTH)
        .ceil();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="12" y="24" font-size="16" font-weight="bold">{}</text>
<text x="12" y="44" fill="#555">Each bar is the measured figure as a fraction of its target (dashed line). Green: met; red: not met.{}</text>
"##,
        escape(title),
        if bars.iter().any(|b| b.ceiling.is_some()) {
            " Black tick: the ceiling the run estimates for this machine."
        } else {
            ""
        }
    );
    // Grid: every half target, labelled as a fraction of the target.
    let mut tick = 0.0;
    while tick <= scale + 1e-9 {
        let x = x_of(tick);
        let (stroke, dash) = if (tick - 1.0).abs() < 1e-9 {
            ("#222", r#" stroke-dasharray="6 4" stroke-width="1.5""#)
        } else {
            ("#ddd", "")
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{:.1}" stroke="{stroke}"{dash}/>"#,
            TOP - 6.0,
            height - BOTTOM + 4.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            height - BOTTOM + 20.0,
            if (tick - 1.0).abs() < 1e-9 {
                "target".to_owned()
            } else {
                format!("{tick}×")
            }
        );
        tick += 0.5;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let f = fraction(b);
        let end = x_of(f);
        let colour = if b.met { MET } else { MISSED };
        let verdict = if b.met { "met" } else { "not met" };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABEL_W - 10.0,
            y + BAR_H - 4.0,
            escape(&b.label)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{LABEL_W}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{colour}"><title>{}: {} ({}; {verdict})</title></rect>"#,
            end - LABEL_W,
            escape(&b.label),
            escape(&b.shown),
            escape(&b.target_text)
        );
        if f > scale {
            // Cut at the scale's end: an arrowhead says the bar goes on.
            let (xe, ym) = (LABEL_W + BAR_W, y + BAR_H / 2.0);
            let _ = writeln!(
                s,
                r#"<path d="M{:.1} {:.1} L{:.1} {ym:.1} L{:.1} {:.1} Z" fill="{colour}"/>"#,
                xe,
                y - 3.0,
                xe + 10.0,
                xe,
                y + BAR_H + 3.0
            );
        }
        if let Some(c) = b.ceiling {
            let x = x_of((c / b.target).max(0.0));
            let _ = writeln!(
                s,
                r#"<rect class="ceiling" x="{:.1}" y="{:.1}" width="3" height="{:.1}" fill="black"><title>ceiling on this machine: {}</title></rect>"#,
                x - 1.5,
                y - 4.0,
                BAR_H + 8.0,
                fmt_number(c)
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}"><tspan fill="{colour}" font-weight="bold">{}</tspan><tspan fill="#555"> target {}</tspan></text>"##,
            text_x,
            y + BAR_H - 4.0,
            escape(&b.shown),
            escape(&b.target_text)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A figure as the tooltip shows it: two decimals below 100, whole above.
fn fmt_number(v: f64) -> String {
    if v.abs() < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "# scenario\tvalue\ttarget\tbetter\tmet\tshown\ttarget text\n\
        (a) cold verify\t0.23\t0.9\thigher\tNO\t0.23× raw SM2 verify\t≥ 0.90×\n\
        \n\
        (f) memory\t249\t256\tlower\tyes\t249 MiB\t≤ 256 MiB\n\
        (b) <req/s> & more\t40000\t20000\thigher\tyes\t40,000 req/s\t≥ 20,000 req/s\n";

    /// The `width` of the rect whose title starts with `label`.
    fn bar_width(svg: &str, label: &str) -> f64 {
        let at = svg
            .find(&format!("<title>{label}"))
            .unwrap_or_else(|| panic!("no bar for {label}"));
        let rect = &svg[svg[..at].rfind("<rect").unwrap()..at];
        let w = rect.split("width=\"").nth(1).unwrap();
        w[..w.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn bars_are_fractions_of_their_targets_and_coloured_by_the_verdict() {
        let bars = parse(SUMMARY).unwrap();
        assert_eq!(bars.len(), 3);
        assert!(!bars[0].met && bars[1].met && !bars[1].higher_is_better);
        let svg = render("run of 2026-12-06", &bars);
        // The longest bar (2 targets) sets the scale: 2 targets span the whole width.
        let unit = BAR_W / 2.0;
        assert!((bar_width(&svg, "(a) cold verify") - 0.23 / 0.9 * unit).abs() < 0.1);
        assert!((bar_width(&svg, "(f) memory") - 249.0 / 256.0 * unit).abs() < 0.1);
        assert!((bar_width(&svg, "(b) &lt;req/s&gt; &amp; more") - 2.0 * unit).abs() < 0.1);
        // The target line sits at one target.
        assert!(svg.contains(&format!(r#"x1="{:.1}""#, LABEL_W + unit)));
        let red = svg.find(&format!(r#"fill="{MISSED}"><title>(a)"#));
        let green = svg.find(&format!(r#"fill="{MET}"><title>(f)"#));
        assert!(red.is_some() && green.is_some(), "{svg}");
        // Markup in a label is escaped, never emitted.
        assert!(!svg.contains("<req/s>"));
        // A long figure widens the picture instead of running off its edge.
        let long = "x".repeat(200);
        let wide = render(
            "t",
            &parse(&format!("a\t1\t1\thigher\tyes\t{long}\t≥ 1\n")).unwrap(),
        );
        let w: f64 = wide
            .split("width=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(w > LABEL_W + BAR_W + 200.0 * CHAR_W, "{w}");
    }

    #[test]
    fn a_ceiling_is_a_tick_at_its_fraction_of_the_target() {
        let bars = parse(
            "(b) vs nginx\t0.22\t0.7\thigher\tNO\t0.22×\t≥ 0.70×\t0.55\n\
             (f) memory\t249\t256\tlower\tyes\t249 MiB\t≤ 256 MiB\t\n",
        )
        .unwrap();
        assert_eq!(bars[0].ceiling, Some(0.55));
        assert_eq!(bars[1].ceiling, None);
        let svg = render("t", &bars);
        // The scale is the minimum, 1.5 targets: the tick's middle is at 0.55 / 0.7 of one.
        let unit = BAR_W / MIN_SCALE;
        let x = LABEL_W + unit * 0.55 / 0.7 - 1.5;
        assert!(
            svg.contains(&format!(r#"<rect class="ceiling" x="{x:.1}""#)),
            "{svg}"
        );
        assert_eq!(svg.matches(r#"class="ceiling""#).count(), 1);
        assert!(svg.contains("ceiling on this machine: 0.55"));
        assert!(svg.contains("Black tick"));
        // A ceiling past every bar widens the scale instead of being drawn at its edge.
        let wide = render(
            "t",
            &parse("x\t0.5\t1\thigher\tNO\t0.5×\t≥ 1×\t2.4\n").unwrap(),
        );
        let x = LABEL_W + BAR_W - 1.5;
        assert!(
            wide.contains(&format!(r#"<rect class="ceiling" x="{x:.1}""#)),
            "{wide}"
        );
        // Without ceilings, neither ticks nor their legend.
        let plain = render("t", &parse(SUMMARY).unwrap());
        assert!(!plain.contains("ceiling") && !plain.contains("Black tick"));
    }

    #[test]
    fn a_bar_past_the_scale_is_cut_with_an_arrow() {
        let bars = parse("far\t10\t1\thigher\tyes\t10×\t≥ 1×\n").unwrap();
        let svg = render("t", &bars);
        assert!((bar_width(&svg, "far") - BAR_W).abs() < 0.1);
        assert!(svg.contains("<path d="));
        let near = render(
            "t",
            &parse("near\t1.2\t1\thigher\tyes\t1.2×\t≥ 1×\n").unwrap(),
        );
        assert!(!near.contains("<path d="));
    }

    #[test]
    fn bad_summaries_are_refused_with_their_line() {
        for (text, want) in [
            ("a\t1\t2\thigher\tyes\tx\n", "line 1: 6 fields"),
            ("a\t1\t2\thigher\tyes\tx\ty\tz\tw\n", "line 1: 9 fields"),
            ("a\t1\t2\thigher\tyes\tx\ty\tmuch\n", "line 1: ceiling"),
            ("# c\na\tone\t2\thigher\tyes\tx\ty\n", "line 2: value"),
            (
                "a\t1\t0\thigher\tyes\tx\ty\n",
                "line 1: the target must be positive",
            ),
            ("a\t1\t2\tup\tyes\tx\ty\n", "line 1: direction"),
            ("a\t1\t2\thigher\tmaybe\tx\ty\n", "line 1: verdict"),
            ("a\tNaN\t2\thigher\tyes\tx\ty\n", "line 1: value"),
            ("# only a comment\n", "no scenario"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{text:?}: {err:#}");
        }
    }
}
