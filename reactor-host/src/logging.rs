//! Logging: env_logger's format and filter, with every line passed through the redaction of
//! credentials in URLs and of secret plugin args (see `secrets`), whoever logs it (reactor, a
//! library, or a plugin through the bridge). With `--progress json` the lines are JSON objects
//! (see `progress`), filtered and redacted the same way; with `--progress tty` they go
//! through the live view (`live`).

/// reactor's own lines and plugins' at info (debug with -v, warnings only with -q); other
/// crates' at warn. RUST_LOG, when set, replaces this entirely. Every line goes through
/// [`RedactingLogger`]; `progress` says whether it is written as plain lines or JSON.
pub fn init(verbose: bool, quiet: bool, progress: crate::progress::Mode) {
    crate::progress::set_json(progress.is_json());
    // `-q` asks for warnings only: no view of the plugins either.
    if progress.resolve() == crate::progress::Mode::Tty && !quiet {
        crate::live::start();
    }
    let level = if verbose {
        "debug"
    } else if quiet {
        "warn"
    } else {
        "info"
    };
    let default = format!("warn,reactor={level},plugin={level}");
    let logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp_millis()
        .build();
    log::set_max_level(logger.filter());
    // Fails only when a logger is already set, which nothing here does.
    let _ = log::set_boxed_logger(Box::new(RedactingLogger(logger)));
}

/// Takes the password out of every URL in a log line (a git URI or a webhook URL with
/// credentials in it), and every masked secret, whoever logs it: reactor, a library, or a plugin.
struct RedactingLogger(env_logger::Logger);

impl log::Log for RedactingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        // Formatted once here; env_logger then copies the text.
        let text = record.args().to_string();
        if crate::progress::is_json() {
            // The JSON line redacts every string it holds, this text included: once is enough.
            crate::progress::write_log_line(record.level(), record.target(), &text);
            return;
        }
        let text = crate::secrets::redact_text(&text);
        if crate::live::log_line(record.level(), record.target(), &text) {
            return;
        }
        self.0.log(&log::Record::builder().metadata(record.metadata().clone()).args(format_args!("{text}")).build());
    }

    fn flush(&self) {
        self.0.flush();
    }
}
