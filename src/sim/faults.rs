//! Fault injection: what a badly behaved region does, at configurable rates.
//!
//! Every request first waits the configured latency (fixed plus uniform jitter). After its
//! envelope is opened, one roll decides whether it is answered normally, with a sealed
//! `9999`, with a non-JSON body, or not at all within any client's deadline. The rolls come
//! from a generator seeded from the simulator's seed, so a single-client run repeats.

use std::time::Duration;

use super::population::Rng;

/// How long a "timeout" fault holds a request: far past any client deadline. The wait
/// ends early when the simulator shuts down.
pub const HANG: Duration = Duration::from_secs(3600);

/// The body of a garbage answer: what a misconfigured proxy in front of a region sends.
pub const GARBAGE_BODY: &str =
    "<html><body><h1>502 Bad Gateway</h1>upstream sent too big header</body></html>";

/// A garbage answer: [`GARBAGE_BODY`] as `text/html`, what both simulators send for
/// [`Fault::Garbage`].
pub fn garbage_response() -> http::Response<bytes::Bytes> {
    let mut r = http::Response::new(bytes::Bytes::from_static(GARBAGE_BODY.as_bytes()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html"),
    );
    r
}

/// Fault settings. Rates are probabilities in `[0, 1]` whose sum is at most 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Added to every request, milliseconds.
    pub latency_ms: u64,
    /// Uniform extra latency in `[0, jitter_ms]`, milliseconds.
    pub jitter_ms: u64,
    /// Share of requests answered `9999` (sealed, signed).
    pub error_rate: f64,
    /// Share of requests never answered (the connection stays open).
    pub timeout_rate: f64,
    /// Share of requests answered `200` with a body that is not JSON.
    pub garbage_rate: f64,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered normally.
    None,
    /// Answered `9999`.
    Error,
    /// Not answered.
    Timeout,
    /// Answered with garbage.
    Garbage,
}

impl Faults {
    /// Every problem with the settings (empty when they are fine).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, rate) in [
            ("error rate", self.error_rate),
            ("timeout rate", self.timeout_rate),
            ("garbage rate", self.garbage_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                out.push(format!("{name} {rate} is not between 0 and 1"));
            }
        }
        if self.error_rate + self.timeout_rate + self.garbage_rate > 1.0 + f64::EPSILON {
            out.push("error, timeout and garbage rates add up to more than 1".to_owned());
        }
        out
    }

    /// The delay before a request is handled.
    pub fn delay(&self, rng: &mut Rng) -> Duration {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            rng.below(self.jitter_ms.saturating_add(1))
        };
        Duration::from_millis(self.latency_ms.saturating_add(jitter))
    }

    /// The fault for one request.
    pub fn roll(&self, rng: &mut Rng) -> Fault {
        if self.error_rate + self.timeout_rate + self.garbage_rate <= 0.0 {
            return Fault::None;
        }
        let u = rng.unit();
        if u < self.timeout_rate {
            Fault::Timeout
        } else if u < self.timeout_rate + self.garbage_rate {
            Fault::Garbage
        } else if u < self.timeout_rate + self.garbage_rate + self.error_rate {
            Fault::Error
        } else {
            Fault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_of_one_always_fault_and_zero_never() {
        let mut rng = Rng::new(7);
        let all = Faults {
            timeout_rate: 1.0,
            ..Faults::default()
        };
        assert!((0..100).all(|_| all.roll(&mut rng) == Fault::Timeout));
        let none = Faults::default();
        assert!((0..100).all(|_| none.roll(&mut rng) == Fault::None));
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let mut rng = Rng::new(1);
        let f = Faults {
            error_rate: 0.2,
            garbage_rate: 0.1,
            ..Faults::default()
        };
        let n = 10_000;
        let errors = (0..n).filter(|_| f.roll(&mut rng) == Fault::Error).count();
        assert!((1_700..2_300).contains(&errors), "{errors}");
    }

    #[test]
    fn refuses_rates_out_of_range() {
        let f = Faults {
            error_rate: 0.7,
            timeout_rate: 0.5,
            garbage_rate: -0.1,
            ..Faults::default()
        };
        assert_eq!(f.problems().len(), 2);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut rng = Rng::new(3);
        let f = Faults {
            latency_ms: 10,
            jitter_ms: 5,
            ..Faults::default()
        };
        for _ in 0..100 {
            let d = f.delay(&mut rng).as_millis();
            assert!((10..=15).contains(&d));
        }
    }
}
