//! Cancellation: SIGINT or SIGTERM stops the build where it is, then the exit plugins run.
//!
//! The first signal cancels: the engine build is dropped (which makes the engine stop it), a
//! running plugin sees it through its context and its engine calls are interrupted, and a plugin
//! that has not returned within the grace period is abandoned. Only then does the exit phase
//! start. Further signals are noted and ignored while the exit plugins finish, within a time
//! limit (`--exit-timeout`), so a second Ctrl-C cannot lose the clean-up and the result file; an
//! exit plugin still running at that limit is abandoned too, and reactor ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The signal that cancelled the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// The shell's convention: 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// Shared by everything that must stop when the build is cancelled.
#[derive(Clone, Debug)]
pub struct Cancel {
    /// The signal, and when it came (the exit phase's limit counts from then).
    state: Arc<watch::Sender<Option<(Signal, Instant)>>>,
    /// How long a plugin may take to return once the build is cancelled.
    pub grace: Duration,
    /// How long the exit plugins may take once the build is cancelled.
    pub exit_timeout: Duration,
}

/// The grace period when `--cancel-grace` does not say.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The exit phase's limit when `--exit-timeout` does not say.
pub const DEFAULT_EXIT_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel::new(DEFAULT_GRACE)
    }
}

impl Cancel {
    /// Not cancelled yet, with this grace period.
    pub fn new(grace: Duration) -> Cancel {
        Cancel { state: Arc::new(watch::Sender::new(None)), grace, exit_timeout: DEFAULT_EXIT_TIMEOUT }
    }

    /// The same, with this limit on the exit phase.
    pub fn with_exit_timeout(mut self, exit_timeout: Duration) -> Cancel {
        self.exit_timeout = exit_timeout;
        self
    }

    /// When the exit phase that began at `phase_started` must end: `exit_timeout` after the
    /// cancellation, or after the phase began when the build was cancelled before it. `None`
    /// while the build is not cancelled (exit plugins then run to their end).
    pub fn exit_deadline(&self, phase_started: Instant) -> Option<Instant> {
        let (_, at) = (*self.state.borrow())?;
        Some(at.max(phase_started) + self.exit_timeout)
    }

    /// Completes when the exit phase that began at `phase_started` has had its time.
    pub async fn exit_limit_over(&self, phase_started: Instant) -> Signal {
        let signal = self.cancelled().await;
        if let Some(deadline) = self.exit_deadline(phase_started) {
            tokio::time::sleep_until(deadline.into()).await;
        }
        signal
    }

    /// Completes `grace` after the cancellation: when whatever still runs is abandoned.
    pub async fn grace_over(&self) -> Signal {
        let signal = self.cancelled().await;
        tokio::time::sleep(self.grace).await;
        signal
    }

    /// Cancels with `signal`; returns false when already cancelled.
    pub fn cancel(&self, signal: Signal) -> bool {
        self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some((signal, Instant::now()));
            true
        })
    }

    /// The signal that cancelled the build, if one did.
    pub fn signal(&self) -> Option<Signal> {
        self.state.borrow().map(|(signal, _)| signal)
    }

    pub fn is_cancelled(&self) -> bool {
        self.signal().is_some()
    }

    /// Waits until the build is cancelled.
    pub async fn cancelled(&self) -> Signal {
        let mut rx = self.state.subscribe();
        let signal = match rx.wait_for(Option::is_some).await {
            Ok(state) => state.map(|(signal, _)| signal),
            // The sender lives in `self`, so this cannot close while we wait.
            Err(_) => None,
        };
        match signal {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }

    /// Listens for SIGINT and SIGTERM on the current runtime for the rest of the process.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let cancel = self.clone();
        let exit_timeout_secs = self.exit_timeout.as_secs_f64();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    Some(()) = interrupt.recv() => Signal::Interrupt,
                    Some(()) = terminate.recv() => Signal::Terminate,
                    else => break,
                };
                if cancel.cancel(received) {
                    log::warn!("received {}: cancelling the build; the exit plugins will still run", received.name());
                } else {
                    log::warn!(
                        "received {} again: ignored while the exit plugins finish (at most {exit_timeout_secs} s)",
                        received.name()
                    );
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_signal_wins_and_waiters_see_it() {
        let cancel = Cancel::default();
        assert!(!cancel.is_cancelled());
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        assert!(cancel.cancel(Signal::Terminate));
        assert!(!cancel.cancel(Signal::Interrupt));
        assert_eq!(waiter.await.expect("join"), Signal::Terminate);
        // A waiter that comes late sees it at once.
        assert_eq!(cancel.cancelled().await, Signal::Terminate);
        assert_eq!(cancel.signal().map(Signal::exit_code), Some(143));
    }

    #[test]
    fn the_exit_limit_counts_from_the_cancellation_or_the_phase_whichever_is_later() {
        let cancel = Cancel::default().with_exit_timeout(Duration::from_secs(5));
        let phase_started = Instant::now();
        assert_eq!(cancel.exit_deadline(phase_started), None, "not cancelled: no limit");
        cancel.cancel(Signal::Interrupt);
        let cancelled_at = cancel.state.borrow().map(|(_, at)| at).expect("cancelled");
        let earlier = phase_started.min(cancelled_at);
        assert_eq!(cancel.exit_deadline(earlier), Some(cancelled_at + Duration::from_secs(5)));
        let later = cancelled_at + Duration::from_secs(60);
        assert_eq!(cancel.exit_deadline(later), Some(later + Duration::from_secs(5)));
    }
}
