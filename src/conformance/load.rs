//! The load profile (`--load`): a steady phase at the given rate, then a bounded burst at
//! ten times it (the 西安一码通 failure mode, DESIGN.md §9). It reports, per phase, the
//! answers by return code, the errors (any answer but 0 and 1007, or no answer), and p50/p99
//! latency of the admitted requests, and whether rate limiting answered 1007 rather than
//! letting the target fall over.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::client::GatewayClient;
use crate::standard::ServiceName;

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// `steady` or `burst`.
    pub name: String,
    /// Requests per second asked for.
    pub rate: u32,
    /// Seconds.
    pub secs: u32,
    /// Answers by return code (`transport` for none).
    pub codes: BTreeMap<String, u64>,
    /// Answers other than 0 and 1007, and requests without an answer.
    pub errors: u64,
    /// Latency of admitted (code 0) answers, milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
}

/// The profile's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The two phases.
    pub phases: Vec<Phase>,
    /// The burst met 1007s.
    pub rate_limited: bool,
    /// No errors in either phase, most of the steady phase and some of the burst admitted,
    /// and the burst's admitted p99 at most twice the steady one (see [`healthy`]).
    pub healthy: bool,
}

impl LoadReport {
    /// A few lines for the terminal.
    pub fn text(&self) -> String {
        let mut o = String::new();
        for p in &self.phases {
            o.push_str(&format!(
                "load {:<6} {:>5} req/s × {:>2} s: codes {:?}, errors {}, admitted p50 {:.1} ms, p99 {:.1} ms\n",
                p.name, p.rate, p.secs, p.codes, p.errors, p.p50_ms, p.p99_ms
            ));
        }
        o.push_str(&format!(
            "load: rate limiting {}; {}\n",
            if self.rate_limited {
                "answered 1007"
            } else {
                "did not answer 1007"
            },
            if self.healthy {
                "no errors, steady and burst admitted, admitted p99 within 2× steady"
            } else {
                "UNHEALTHY under the burst"
            }
        ));
        o
    }
}

async fn phase(client: &GatewayClient, biz: &Value, name: &str, rate: u32, secs: u32) -> Phase {
    let mut set = tokio::task::JoinSet::new();
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = u64::from(rate) * u64::from(secs);
    for _ in 0..total {
        tick.tick().await;
        let (c, b) = (client.clone(), biz.clone());
        set.spawn(async move {
            let t0 = Instant::now();
            let code = match c.call(ServiceName::VerifyCode, &b).await {
                Ok(x) => {
                    let raw: Option<Value> = serde_json::from_slice(&x.raw).ok();
                    raw.and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_else(|| "unreadable".into())
                }
                Err(_) => "transport".into(),
            };
            (code, t0.elapsed())
        });
    }
    let mut codes = BTreeMap::new();
    let mut admitted = Vec::new();
    while let Some(r) = set.join_next().await {
        let (code, took) = r.unwrap_or_else(|_| ("transport".into(), Duration::ZERO));
        if code == "0" {
            admitted.push(took.as_secs_f64() * 1000.0);
        }
        *codes.entry(code).or_insert(0) += 1;
    }
    admitted.sort_by(f64::total_cmp);
    let q = |p: f64| {
        admitted
            .get(((admitted.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    let errors = codes
        .iter()
        .filter(|(k, _)| k.as_str() != "0" && k.as_str() != "1007")
        .map(|(_, n)| n)
        .sum();
    Phase {
        name: name.to_owned(),
        rate,
        secs,
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        codes,
        errors,
    }
}

/// The share of the steady phase that must be admitted (code 0): the steady rate is one the
/// target's quota for the client should serve.
pub const STEADY_ADMITTED: f64 = 0.9;

impl Phase {
    fn sent(&self) -> u64 {
        self.codes.values().sum()
    }

    fn admitted(&self) -> u64 {
        self.codes.get("0").copied().unwrap_or(0)
    }
}

/// Healthy: both phases sent something and met no error; most of the steady phase
/// ([`STEADY_ADMITTED`]) and some of the burst were admitted, not refused with 1007; and the
/// burst's admitted p99 is at most twice the steady one.
fn healthy(steady: &Phase, burst: &Phase) -> bool {
    steady.sent() > 0
        && burst.sent() > 0
        && steady.errors == 0
        && burst.errors == 0
        && steady.admitted() as f64 >= STEADY_ADMITTED * steady.sent() as f64
        && burst.admitted() > 0
        && burst.p99_ms <= 2.0 * steady.p99_ms.max(1.0)
}

/// Runs the profile: `rate` req/s of `verifyCode` with `biz` for `secs` s, then ten times
/// the rate for as long.
pub async fn run(client: &GatewayClient, biz: &Value, rate: u32, secs: u32) -> LoadReport {
    let steady = phase(client, biz, "steady", rate, secs).await;
    let burst = phase(client, biz, "burst", rate.saturating_mul(10), secs).await;
    let rate_limited = burst.codes.get("1007").copied().unwrap_or(0) > 0;
    let healthy = healthy(&steady, &burst);
    LoadReport {
        phases: vec![steady, burst],
        rate_limited,
        healthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(codes: &[(&str, u64)], p99_ms: f64) -> Phase {
        let codes: BTreeMap<String, u64> =
            codes.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect();
        let errors = codes
            .iter()
            .filter(|(k, _)| k.as_str() != "0" && k.as_str() != "1007")
            .map(|(_, n)| n)
            .sum();
        Phase {
            name: "p".into(),
            rate: 1,
            secs: 1,
            codes,
            errors,
            p50_ms: p99_ms / 2.0,
            p99_ms,
        }
    }

    #[test]
    fn a_target_that_refuses_everything_or_is_sent_nothing_is_not_healthy() {
        let steady = phase(&[("0", 200)], 10.0);
        assert!(healthy(
            &steady,
            &phase(&[("0", 900), ("1007", 1100)], 15.0)
        ));
        // Every request refused with 1007, in both phases.
        let refused = phase(&[("1007", 200)], 0.0);
        assert!(!healthy(&refused, &phase(&[("1007", 2000)], 0.0)));
        // The steady phase served, the burst refused whole.
        assert!(!healthy(&steady, &phase(&[("1007", 2000)], 0.0)));
        // Half the steady phase refused.
        let half = phase(&[("0", 100), ("1007", 100)], 10.0);
        assert!(!healthy(&half, &phase(&[("0", 900), ("1007", 1100)], 15.0)));
        // Nothing sent (a rate of 0).
        assert!(!healthy(&phase(&[], 0.0), &phase(&[], 0.0)));
        // Errors, or a burst much slower than steady.
        assert!(!healthy(&steady, &phase(&[("0", 900), ("9999", 1)], 15.0)));
        assert!(!healthy(
            &steady,
            &phase(&[("0", 900), ("1007", 1100)], 25.0)
        ));
    }
}
