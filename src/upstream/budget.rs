//! A retry budget: retries may add at most `ratio` of the calls of the current window, plus
//! `min_retries` (so a quiet region can still be retried), as in Finagle and linkerd.
//!
//! The window is fixed: counts reset when it has passed. When a region fails hard, every
//! call wants a retry; the budget caps the extra load at, by default, 10 %.
//! Time is `tokio::time::Instant`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Budget settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// Retries allowed per call made, e.g. 0.1.
    pub ratio: f64,
    /// Retries allowed per window whatever the traffic.
    pub min_retries: u32,
    /// Length of a window.
    pub window: Duration,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    calls: u64,
    retries: u64,
}

/// A retry budget (see the module docs).
#[derive(Debug)]
pub struct RetryBudget {
    config: RetryBudgetConfig,
    window: Mutex<Window>,
}

impl RetryBudget {
    /// A budget with nothing spent.
    pub fn new(config: RetryBudgetConfig) -> Self {
        Self {
            config,
            window: Mutex::new(Window {
                start: Instant::now(),
                calls: 0,
                retries: 0,
            }),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(w.start) >= self.config.window {
            *w = Window {
                start: now,
                calls: 0,
                retries: 0,
            };
        }
        w
    }

    /// Counts a first attempt.
    pub fn record_call(&self) {
        self.current().calls += 1;
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_retry(&self) -> bool {
        let mut w = self.current();
        let allowed = u64::from(self.config.min_retries)
            + (w.calls as f64 * self.config.ratio.max(0.0)).floor() as u64;
        if w.retries < allowed {
            w.retries += 1;
            true
        } else {
            false
        }
    }
}
