//! A circuit breaker for one region.
//!
//! Closed: calls go through; consecutive failures are counted and a success resets the
//! count. After `failure_threshold` failures in a row it opens: calls are refused at once
//! ([`CircuitBreaker::try_acquire`] gives `None`) for `cool_down`. Then it is half-open: one
//! call, the probe, goes through while the others are still refused. The probe's success
//! closes the breaker; its failure opens it for another cool-down; a probe that is dropped
//! unfinished (the caller gave up) lets the next call probe instead.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`.

use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: NonZeroU32,
    /// How long it stays open before a probe is let through.
    pub cool_down: Duration,
}

/// What a breaker is doing, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused.
    Open,
    /// The cool-down is over: the next call (or the one in flight) is the probe.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A circuit breaker (see the module docs).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Leave to make one call. Report its result with [`Permit::success`] or
/// [`Permit::failure`]; dropping it unreported counts as neither.
#[derive(Debug)]
#[must_use = "report the call's result on the permit"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    reported: bool,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Leave to call, or `None` while the breaker is open (or half-open with a probe in
    /// flight).
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() < until => return None,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => return None,
        };
        Some(Permit {
            breaker: self,
            probe,
            reported: false,
        })
    }
}

impl Permit<'_> {
    /// The call succeeded (the region answered).
    pub fn success(mut self) {
        self.reported = true;
        let mut state = self.breaker.lock();
        match *state {
            State::Closed { .. } => *state = State::Closed { failures: 0 },
            State::HalfOpen { .. } if self.probe => *state = State::Closed { failures: 0 },
            // A call admitted before the breaker opened says nothing about now.
            State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }

    /// The call failed in a way that counts against the region.
    pub fn failure(mut self) {
        self.reported = true;
        let config = self.breaker.config;
        let mut state = self.breaker.lock();
        let open = State::Open {
            until: Instant::now() + config.cool_down,
        };
        match *state {
            State::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *state = if failures >= config.failure_threshold.get() {
                    open
                } else {
                    State::Closed { failures }
                };
            }
            State::HalfOpen { .. } if self.probe => *state = open,
            State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            let mut state = self.breaker.lock();
            if let State::HalfOpen { probing: true } = *state {
                *state = State::HalfOpen { probing: false };
            }
        }
    }
}
