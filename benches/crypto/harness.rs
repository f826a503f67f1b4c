//! The bench's measuring and printing: the timing loop (calibrated batches, warm-up, the
//! median of [`RUNS`] runs) and the table's columns.

use std::env;
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::MESSAGE;

/// Default seconds per measured run.
pub(crate) const DEFAULT_SECS: f64 = 1.0;

/// Runs of each row; the median is reported.
pub(crate) const RUNS: usize = 3;

/// Column widths of the table.
pub(crate) const W_OP: usize = 34;
pub(crate) const W_NUM: usize = 13;

/// The column headings, between rules, with `other` as the library beside hutong.
pub(crate) fn header(rule: &str, other: &str, ratio: &str) {
    println!("{rule}");
    println!(
        "{:<W_OP$} {:>5} {:>W_NUM$} {:>W_NUM$} {:>W_NUM$} {:>W_NUM$} {:>W_NUM$}",
        "operation",
        "size",
        "hutong op/s",
        "hutong MB/s",
        format!("{other} op/s"),
        format!("{other} MB/s"),
        ratio,
    );
    println!("{rule}");
}

/// Seconds per run from `HUTONG_BENCH_SECS`, and a note for the header when it was set.
pub(crate) fn run_seconds() -> (f64, String) {
    match env::var("HUTONG_BENCH_SECS") {
        Err(_) => (DEFAULT_SECS, String::new()),
        Ok(raw) => match raw.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs > 0.0 => {
                (secs, format!(" (HUTONG_BENCH_SECS={secs})"))
            }
            _ => (
                DEFAULT_SECS,
                format!(" (HUTONG_BENCH_SECS={raw:?} ignored: not a positive number)"),
            ),
        },
    }
}

/// The timing loop.
pub(crate) struct Bench {
    /// Minimum length of each measured run, seconds.
    pub(crate) secs: f64,
}

impl Bench {
    /// Median ops/s of [`RUNS`] runs of `op`, after calibration and warm-up.
    pub(crate) fn ops_per_sec<T>(&self, mut op: impl FnMut() -> T) -> f64 {
        let mut run_batch = |batch: u64| {
            for _ in 0..batch {
                black_box(op());
            }
        };

        // Calibrate: double the batch until one takes ~1/50 of a run (at least 1 ms). Slow
        // operations (sm-crypto's SM2, a few ms each) end up with batches of a handful.
        let batch_target = Duration::from_secs_f64((self.secs / 50.0).max(0.001));
        let mut batch = 1u64;
        loop {
            let start = Instant::now();
            run_batch(batch);
            if start.elapsed() >= batch_target || batch >= 1 << 32 {
                break;
            }
            batch *= 2;
        }

        // Warm up a little more at the final batch size.
        let warm_up = Duration::from_secs_f64(self.secs / 10.0);
        let start = Instant::now();
        while start.elapsed() < warm_up {
            run_batch(batch);
        }

        let run_len = Duration::from_secs_f64(self.secs);
        let mut rates = [0.0f64; RUNS];
        for rate in &mut rates {
            let start = Instant::now();
            let mut done = 0u64;
            let elapsed = loop {
                run_batch(batch);
                done += batch;
                let elapsed = start.elapsed();
                if elapsed >= run_len {
                    break elapsed;
                }
            };
            *rate = done as f64 / elapsed.as_secs_f64();
        }
        rates.sort_by(f64::total_cmp);
        rates[RUNS / 2]
    }
}

/// Prints one table row: hutong's ops/s beside the other library's (`sm-crypto`, or RustCrypto
/// in the second table), if it has the operation. `bytes` is the input size per operation;
/// MB/s is shown for it except on the signature rows, where it is `None`.
pub(crate) fn row(op: &str, bytes: Option<usize>, hutong: f64, other: Option<f64>) {
    let size = bytes.map_or_else(|| format!("{}", MESSAGE.len()), fmt_size);
    // Throughput in MB/s only means something for the hashes and ciphers.
    let mbps = |ops: f64| match bytes {
        Some(b) if b >= 64 && !op.starts_with("PHIC1") => fmt_num(ops * b as f64 / 1e6),
        _ => "-".to_owned(),
    };
    let (s_ops, s_mbps, ratio) = match other {
        Some(s) => (fmt_num(s), mbps(s), format!("{:.1}x", hutong / s)),
        None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
    };
    println!(
        "{op:<W_OP$} {size:>5} {:>W_NUM$} {:>W_NUM$} {s_ops:>W_NUM$} {s_mbps:>W_NUM$} {ratio:>W_NUM$}",
        fmt_num(hutong),
        mbps(hutong),
    );
}

/// A number with about three significant digits kept, without exponent notation.
pub(crate) fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `64`, `1K`, `16K`.
pub(crate) fn fmt_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{}K", bytes / 1024)
    } else {
        bytes.to_string()
    }
}
