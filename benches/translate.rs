//! Translation throughput of the dialect mapping engine, for every shipped dialect, every
//! service it serves and both directions, on one thread (the issue's goal: at least
//! 100,000 translations a second on one core for the JSON dialects).
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench translate
//! HUTONG_BENCH_SECS=1 cargo bench --bench translate
//! ```
//!
//! It prints one table and asserts nothing about speed. Each row takes the first golden
//! pair of `tests/fixtures/dialects/<region>/cases.toml` that reads the dialect's message
//! for that service and direction, and measures, in translations a second:
//!
//! - `nat->dia`: national value → dialect value;
//! - `dia->nat`: dialect value → national value (both without the codec);
//! - `wire->nat`: the dialect's bytes decoded, translated, and the national JSON written;
//! - `json baseline`: plain `serde_json` parse and serialise of the same message as JSON
//!   text (for form and XML dialects, of its JSON form): the floor any JSON hop costs.
//!
//! Method: a batch of 1,000 runs repeatedly until `HUTONG_BENCH_SECS` (default 0.2) have
//! passed, three times; the median is reported.

// A benchmark binary: a failed setup step is a bug in the bench, and `expect` says which.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use hutong::standard::{Direction, ServiceName, Standard};
use hutong::translate::{self, Codec, Dialect, codec};
use serde::Deserialize;
use serde_json::Value;

fn rate(secs: f64, mut f: impl FnMut()) -> f64 {
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs_f64(secs) {
                for _ in 0..1000 {
                    f();
                }
                n += 1000;
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

/// The part of a fixture case the bench reads.
#[derive(Deserialize)]
struct Case {
    service: String,
    direction: String,
    national: String,
    dialect: String,
    ways: Vec<String>,
}

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

fn main() {
    let secs: f64 = std::env::var("HUTONG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ds = Dialect::load_dir(&root.join("config/regions"), &Standard::embedded())
        .expect("dialects load");
    let fixtures = root.join("tests/fixtures/dialects");
    println!(
        "{:<10} {:<16} {:<9} {:<5} {:>10} {:>10} {:>10} {:>14}",
        "dialect",
        "service",
        "direction",
        "codec",
        "nat->dia",
        "dia->nat",
        "wire->nat",
        "json baseline"
    );
    for d in &ds {
        let text = std::fs::read_to_string(fixtures.join(&d.id).join("cases.toml"))
            .expect("every dialect has golden pairs");
        let cases: Cases = toml::from_str(&text).expect("cases.toml");
        for service in d.services.keys() {
            for dir in [Direction::Request, Direction::Response] {
                let dirname = match dir {
                    Direction::Request => "request",
                    Direction::Response => "response",
                };
                let Some(c) = cases.case.iter().find(|c| {
                    c.service == service.to_string()
                        && c.direction == dirname
                        && c.ways.iter().any(|w| w == "to_national")
                }) else {
                    continue;
                };
                row(d, *service, dir, c, &fixtures.join(&d.id), secs);
            }
        }
    }
}

fn row(d: &Dialect, s: ServiceName, dir: Direction, c: &Case, dir_path: &Path, secs: f64) {
    let wire = if dir == Direction::Request {
        d.codec
    } else {
        d.response_codec
    };
    let n: Value =
        serde_json::from_slice(&std::fs::read(dir_path.join(&c.national)).expect("fixture"))
            .expect("json");
    let raw = std::fs::read(dir_path.join(&c.dialect)).expect("fixture");
    let v = codec::decode(wire, &raw).expect("decodes");
    let as_json = serde_json::to_vec(&v).expect("encodes");
    let to_d = rate(secs, || {
        black_box(translate::to_dialect(d, s, dir, black_box(&n)).expect("translates"));
    });
    let to_n = rate(secs, || {
        black_box(translate::to_national(d, s, dir, black_box(&v)).expect("translates"));
    });
    let wire_to_n = rate(secs, || {
        let v = codec::decode(wire, black_box(&raw)).expect("decodes");
        let t = translate::to_national(d, s, dir, &v).expect("translates");
        black_box(serde_json::to_vec(&t.body).expect("encodes"));
    });
    let baseline = rate(secs, || {
        let v: Value = serde_json::from_slice(black_box(&as_json)).expect("parses");
        black_box(serde_json::to_vec(&v).expect("encodes"));
    });
    let codec_name = match wire {
        Codec::Json => "json",
        Codec::Form => "form",
        Codec::Xml => "xml",
    };
    println!(
        "{:<10} {:<16} {:<9} {codec_name:<5} {to_d:>10.0} {to_n:>10.0} {wire_to_n:>10.0} {baseline:>14.0}",
        d.id,
        s.to_string(),
        c.direction
    );
}
