//! Forwards a plugin's `log` records to the host's logger.
//!
//! A shared object has its own copy of the `log` crate, whose logger is unset (and whose level is
//! `Off`) unless someone sets it: without this bridge, `log::info!` in a plugin goes nowhere.
//! The bridge sends each record through the host context of the run in progress; the host
//! prints it under the plugin's key.

use std::cell::RefCell;
use std::sync::RwLock;

use log::{LevelFilter, Log, Metadata, Record};

use crate::ffi::HostCtx;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

// The context of the run on this thread; records from other threads a plugin spawned go to
// the most recent run's context.
thread_local! {
    static CURRENT: RefCell<Option<HostCtx>> = const { RefCell::new(None) };
}
static LATEST: RwLock<Option<HostCtx>> = RwLock::new(None);

/// Points the plugin's logging at `host` for the run on this thread.
pub(crate) fn attach(host: &HostCtx) {
    // Fails only when already set, by this bridge or by the plugin itself; both are fine.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level_filter(host.max_level()));
    CURRENT.with(|c| *c.borrow_mut() = Some(host.clone()));
    if let Ok(mut latest) = LATEST.write() {
        *latest = Some(host.clone());
    }
}

/// Ends the run on this thread.
pub(crate) fn detach() {
    CURRENT.with(|c| c.borrow_mut().take());
}

fn level_filter(value: u8) -> LevelFilter {
    match value {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

impl Log for HostLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let send = |host: &HostCtx| {
            let message = record.args().to_string();
            host.log(record.level() as u8, record.target().into(), message.as_str().into());
        };
        let sent = CURRENT.with(|c| c.borrow().as_ref().map(send).is_some());
        if !sent {
            if let Ok(latest) = LATEST.read() {
                if let Some(host) = latest.as_ref() {
                    send(host);
                }
            }
        }
    }

    fn flush(&self) {}
}
