//! The error a plugin returns, and that crosses the boundary as JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of failure a [`PluginError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The plugin ran and failed.
    Failed,
    /// The args did not fit what the plugin takes.
    InvalidArgs,
    /// The plugin panicked; the panic was caught at the boundary.
    Panicked,
    /// A request to the host failed or was refused.
    Host,
    /// The build was cancelled while the plugin ran.
    Cancelled,
    /// A buildstep plugin that cannot build this image: the next buildstep plugin is tried.
    Declined,
    /// The host does not offer a feature the request needs (it is older than the plugin).
    Unsupported,
    /// A kind this side does not know (sent by a newer peer).
    #[serde(other)]
    Other,
}

/// A plugin's failure: a kind and a one-line message.
///
/// Like `anyhow::Error`, it converts from any `std::error::Error` (so `?` works on reqwest,
/// serde_json or io errors), and for that reason does not implement `std::error::Error` itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// One line saying what failed and why.
    pub message: String,
}

impl PluginError {
    /// A plain failure with this message.
    pub fn new(message: impl fmt::Display) -> PluginError {
        PluginError::with_kind(ErrorKind::Failed, message)
    }

    /// A failure of the given kind.
    pub fn with_kind(kind: ErrorKind, message: impl fmt::Display) -> PluginError {
        PluginError { kind, message: message.to_string() }
    }

    /// A buildstep plugin declines to build this image, so the next one is tried (atomic-reactor's
    /// `InappropriateBuildStepError`).
    pub fn declined(message: impl fmt::Display) -> PluginError {
        PluginError::with_kind(ErrorKind::Declined, message)
    }

    /// The args did not fit.
    pub fn invalid_args(message: impl fmt::Display) -> PluginError {
        PluginError::with_kind(ErrorKind::InvalidArgs, message)
    }

    /// Prefixes the message with what was being done, as `context: message`.
    pub fn context(mut self, what: impl fmt::Display) -> PluginError {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The JSON text that crosses the boundary.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }

    /// Reads an error sent across the boundary; text that is not one becomes its message.
    pub fn from_json(text: &str) -> PluginError {
        serde_json::from_str(text).unwrap_or_else(|_| PluginError::new(text))
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for PluginError {
    fn from(err: E) -> PluginError {
        // Keep the whole chain on one line: reqwest's Display alone says only "error sending request".
        PluginError::new(error_chain(&err))
    }
}

/// An error and its causes on one line, `error: cause: cause`, leaving out a cause whose text
/// the line already holds.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
