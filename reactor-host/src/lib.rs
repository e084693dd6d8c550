//! reactor as a library: everything the `reactor` binary does, so that its parts can be reached
//! by fuzz targets and benchmarks as well as by `main`. The surface is [`cli::Cli`],
//! [`logging::init`] and [`app::run`]; the modules below are the data flow of a build.
//! [`fuzzing`] feeds fuzz inputs to the readers of untrusted text, for `fuzz/` and the tests.

pub mod app;
mod build_image;
mod build_json;
mod build_log;
mod cancel;
pub mod cli;
mod credentials;
mod dockerfile;
mod engine;
pub mod fuzzing;
mod hostdocker;
mod inside;
pub mod live;
pub mod logging;
mod manual;
mod package;
mod plugins;
pub mod progress;
mod results;
mod results_dir;
mod scaffold;
mod secrets;
mod source;
mod state;
mod workflow;

#[cfg(test)]
mod errors_table;
