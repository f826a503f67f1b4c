//! Translation throughput of the dialect mapping engine, per dialect, service direction
//! and way, on one thread (the issue's goal: at least 100,000 translations a second on one
//! core for the JSON dialects).
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench translate
//! HUTONG_BENCH_SECS=3 cargo bench --bench translate
//! ```
//!
//! It prints one table and asserts nothing about speed. Each row translates the golden
//! fixture of `tests/fixtures/dialects/<region>/` in one way, as values already decoded
//! (the codec is measured separately in the `+codec` rows: decode, translate, encode).
//! Method: a batch of 1,000 runs repeatedly until `HUTONG_BENCH_SECS` (default 1.0) have
//! passed, three times; the median translations/s is reported.

// A benchmark binary: a failed setup step is a bug in the bench, and `expect` says which.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use hutong::standard::{Direction, ServiceName, Standard};
use hutong::translate::{self, Dialect, codec};
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

fn main() {
    let secs: f64 = std::env::var("HUTONG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ds = Dialect::load_dir(&root.join("config/regions"), &Standard::embedded())
        .expect("dialects load");
    let fixtures = root.join("tests/fixtures/dialects");
    let rows: [(&str, Direction, &str, &str); 4] = [
        (
            "zhejiang",
            Direction::Request,
            "verify.request.signed.national.json",
            "verify.request.dialect.json",
        ),
        (
            "zhejiang",
            Direction::Response,
            "verify.response.national.json",
            "verify.response.dialect.json",
        ),
        (
            "jiangsu",
            Direction::Request,
            "verify.request.form.national.json",
            "verify.request.form",
        ),
        (
            "jiangsu",
            Direction::Response,
            "verify.response.national.json",
            "verify.response.dialect.json",
        ),
    ];
    println!(
        "{:<10} {:<9} {:<24} {:>14}",
        "dialect", "direction", "way", "translations/s"
    );
    for (id, dir, national, dialect) in rows {
        let d = ds.iter().find(|d| d.id == id).expect("dialect");
        let wire = if dir == Direction::Request {
            d.codec
        } else {
            d.response_codec
        };
        let n: Value = serde_json::from_slice(
            &std::fs::read(fixtures.join(id).join(national)).expect("fixture"),
        )
        .expect("json");
        let raw = std::fs::read(fixtures.join(id).join(dialect)).expect("fixture");
        let v = codec::decode(wire, &raw).expect("decodes");
        let s = ServiceName::VerifyCode;
        let dirname = if dir == Direction::Request {
            "request"
        } else {
            "response"
        };
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
        println!(
            "{id:<10} {dirname:<9} {:<24} {to_d:>14.0}",
            "national -> dialect"
        );
        println!(
            "{id:<10} {dirname:<9} {:<24} {to_n:>14.0}",
            "dialect -> national"
        );
        println!(
            "{id:<10} {dirname:<9} {:<24} {wire_to_n:>14.0}",
            "dialect -> national +codec"
        );
    }
}
