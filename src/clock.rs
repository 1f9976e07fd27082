//! Time as the application sees it.
//!
//! Every domain decision that depends on "now" (expiry, timeouts, audit
//! timestamps) asks the [`Clock`] so that tests can drive time by hand instead
//! of sleeping.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once the clock reads `instant` or later (a timer that a
    /// test clock fires when it is moved, without anyone sleeping).
    fn sleep_until(&self, instant: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// A boxed future, as a trait object can return one.
pub(crate) type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The clock shared by every part of one application instance.
pub(crate) type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, instant: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Re-checked after waking: the wall clock may have been stepped.
            loop {
                let left = instant - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// A clock that only moves when told to: for deterministic tests.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: watch::Sender::new(start),
        }
    }

    /// Moves the clock to `instant` (firing the timers it reaches).
    pub fn set(&self, instant: DateTime<Utc>) {
        self.now.send_replace(instant);
    }

    /// Moves the clock forward by `by` (firing the timers it reaches).
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, instant: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; a dropped clock never fires.
            if now.wait_for(|now| *now >= instant).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), start + Duration::minutes(5));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn a_manual_timer_fires_when_the_clock_reaches_it_and_not_before() {
        use futures_util::FutureExt;
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = ManualClock::new(start);
        let mut timer = clock.sleep_until(start + Duration::minutes(10));
        assert!((&mut timer).now_or_never().is_none());
        clock.advance(Duration::minutes(9));
        assert!((&mut timer).now_or_never().is_none(), "a minute early");
        clock.advance(Duration::minutes(1));
        assert!(timer.now_or_never().is_some(), "due");
        assert!(
            clock.sleep_until(start).now_or_never().is_some(),
            "a timer in the past fires at once"
        );
    }
}
