//! reactor's end-to-end tests: the real `reactor` binary against a real Docker engine, real git
//! repositories, real plugin shared objects and a real HTTP listener. Nothing is mocked, and
//! nothing is skipped: without an engine (`scripts/setup.sh` starts one) these tests fail.

mod util;

mod atomic_reactor_examples;
mod build_image;
mod build_json;
mod build_log;
mod builtins_images;
mod builtins_labels;
mod builtins_push;
mod builtins_run;
mod cancel;
mod catalogue;
mod compat;
mod context;
mod deploy;
mod deploy_contract;
mod engine;
mod engines_podman;
mod engines_remote;
mod engines_ssh;
mod errors;
mod fault_engine;
mod fault_network;
mod fault_source;
mod git_transports;
mod help;
mod isolation;
mod output;
mod overlay;
mod plugin_dirs;
mod plugin_files;
mod plugin_install;
mod plugin_kit;
mod plugins;
mod private_engine;
mod secrets;
mod seed;
mod source;
mod tty;
mod workflow;
