//! Cancellation: SIGINT or SIGTERM stops the build where it is, then the exit plugins run.
//!
//! The first signal cancels: the engine build is dropped (which makes the engine stop it), a
//! running plugin sees it through its context and its engine calls are interrupted, and a plugin
//! that has not returned within the grace period is abandoned. Only then does the exit phase
//! start. Further signals are noted and ignored while the exit plugins finish, within a time
//! limit, so a second Ctrl-C cannot lose the clean-up and the result file.

use std::sync::Arc;
use std::time::Duration;

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
    state: Arc<watch::Sender<Option<Signal>>>,
    /// How long a plugin may take to return once the build is cancelled.
    pub grace: Duration,
}

/// The grace period when `--cancel-grace` does not say.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel::new(DEFAULT_GRACE)
    }
}

impl Cancel {
    /// Not cancelled yet, with this grace period.
    pub fn new(grace: Duration) -> Cancel {
        Cancel { state: Arc::new(watch::Sender::new(None)), grace }
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
            *state = Some(signal);
            true
        })
    }

    /// The signal that cancelled the build, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *self.state.borrow()
    }

    pub fn is_cancelled(&self) -> bool {
        self.signal().is_some()
    }

    /// Waits until the build is cancelled.
    pub async fn cancelled(&self) -> Signal {
        let mut rx = self.state.subscribe();
        let signal = match rx.wait_for(Option::is_some).await {
            Ok(signal) => *signal,
            // The sender lives in `self`, so this cannot close while we wait.
            Err(_) => None,
        };
        match signal {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }

    /// Listens for SIGINT and SIGTERM on the current runtime for the rest of the process.
    pub fn listen_for_signals(&self, exit_timeout_secs: u64) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let cancel = self.clone();
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
}
