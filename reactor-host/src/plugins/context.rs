//! The host side of a plugin's [`Context`](reactor_plugin_api::Context): translates the requests
//! a running plugin makes (read the workflow, change what its phase allows, use the engine and
//! registries, share state) into calls on the build's [`Session`], and prints its log lines
//! under `plugin::<key>::<target>`.
//!
//! Once the build is cancelled, a plugin outside the exit phase gets every request but
//! `is_cancelled` refused, and an engine call it has in flight is interrupted (a container it
//! runs is killed and removed).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RErr, ROk, RResult, RStr, RString};
use reactor_plugin_api::ffi::{HostContext, HostContext_TO, HostCtx};
use reactor_plugin_api::protocol::{PulledImage, PushOutcome, Request};
use reactor_plugin_api::{ErrorKind, Phase, PluginError};
use serde_json::{json, Value};

use crate::build_log::BuildLog;
use crate::credentials::{self, Credentials};
use crate::engine::{registry_of, Engine, Stopped};
use crate::state::Session;

/// The context of one plugin run.
#[derive(Clone)]
pub struct PluginContext {
    key: String,
    phase: Phase,
    session: Arc<Session>,
}

impl PluginContext {
    /// The FFI handle of a run of plugin `key` in `phase`.
    pub fn handle(key: &str, phase: Phase, session: Arc<Session>) -> HostCtx {
        HostContext_TO::from_ptr(RArc::new(PluginContext { key: key.to_owned(), phase, session }), TD_Opaque)
    }

    fn answer(&self, request: Request) -> Result<Value, PluginError> {
        let cancelled = self.session.cancel.is_cancelled();
        request.admit(self.phase, cancelled)?;
        match request {
            Request::Workflow => to_json(self.session.state().snapshot()),
            Request::SetDockerfile { text } => {
                let path =
                    self.session.state().dockerfile.clone().ok_or_else(|| host_error("there is no Dockerfile yet"))?;
                std::fs::write(&path, text).map_err(|e| host_error(format!("cannot write {}: {e}", path.display())))?;
                Ok(Value::Null)
            }
            Request::SetLabels { labels } => {
                self.session.state().labels.extend(labels);
                Ok(Value::Null)
            }
            Request::SetBuildArgs { args } => {
                self.session.state().build_args.extend(args);
                Ok(Value::Null)
            }
            Request::AddTags { tags } => {
                let mut state = self.session.state();
                for tag in tags {
                    if !state.tags.contains(&tag) {
                        state.tags.push(tag);
                    }
                }
                Ok(Value::Null)
            }
            Request::InspectImage { name } => {
                let engine = self.engine()?;
                match self.block_on(engine.inspect_image(&name))? {
                    Some(inspect) => Ok(inspect),
                    None => Err(host_error(format!("no such image: {name}"))),
                }
            }
            Request::TagImage { source, target } => {
                let engine = self.engine()?;
                self.block_on(engine.tag_image(&source, &target))?;
                Ok(Value::Null)
            }
            Request::PushImage { name, registry_secret_dir, insecure } => {
                let engine = self.engine()?;
                self.check_insecure(&engine, &name, insecure)?;
                let credentials = registry_credentials(&name, registry_secret_dir.as_deref())?;
                let mut reports = crate::progress::LayerReports::default();
                let mut on_layer = |layer: crate::engine::LayerProgress| {
                    let all_sent = layer.total.is_some_and(|total| total > 0 && layer.current >= Some(total));
                    if reports.due(&layer.layer, &layer.status, all_sent, std::time::Instant::now()) {
                        crate::progress::emit(&crate::progress::Event::PushLayer {
                            name: name.clone(),
                            layer: layer.layer,
                            status: layer.status,
                            current: layer.current,
                            total: layer.total,
                        });
                    }
                };
                let digest = self.block_on(engine.push_image(&name, credentials.as_ref(), &mut on_layer))?;
                if let Some(digest) = &digest {
                    let event = crate::progress::Event::PushDigest { name: name.clone(), digest: digest.clone() };
                    crate::progress::emit(&event);
                    self.session.state().digests.insert(name, digest.clone());
                }
                to_json(PushOutcome { digest })
            }
            Request::PullImage { name, registry_secret_dir, insecure } => {
                let engine = self.engine()?;
                self.check_insecure(&engine, &name, insecure)?;
                let credentials = registry_credentials(&name, registry_secret_dir.as_deref())?;
                let pulled = self.block_on(engine.pull_image(&name, credentials.as_ref()))?;
                let pulled = PulledImage { name, id: pulled.id, digest: pulled.digest };
                self.session.state().pulled_images.push(pulled.clone());
                to_json(pulled)
            }
            Request::RemoveImage { name, force } => {
                let engine = self.engine()?;
                self.block_on(engine.remove_image(&name, force))?;
                Ok(Value::Null)
            }
            Request::RunContainer { image, command, options } => {
                let engine = self.engine()?;
                let target = format!("plugin::{}::container", self.key);
                let on_line = |line: &str| log::info!(target: &target, "{line}");
                let stop = self.interruption();
                let run = engine.run_container(&image, &command, &options, stop, on_line);
                match self.session.runtime.block_on(run) {
                    Ok(output) => to_json(output),
                    Err(Ok(Stopped::Cancelled)) => Err(cancelled_error()),
                    Err(Ok(Stopped::TimedOut(after))) => Err(host_error(format!(
                        "the container of {image} was stopped after its timeout of {} s",
                        after.as_secs_f64()
                    ))),
                    Err(Err(e)) => Err(host_error(e)),
                }
            }
            Request::IsCancelled => Ok(json!(cancelled)),
            Request::BuildImage => to_json(self.session.runtime.block_on(crate::workflow::build_image(&self.session))?),
            Request::SetBuildResult { mut result } => {
                // The other builder's log is spooled as the engine's is; the snapshot shows its end.
                let log = BuildLog::from_lines(&result.logs)
                    .map_err(|e| host_error(format!("cannot keep the build log: {e}")))?;
                result.logs = Vec::new();
                result.log_lines = log.lines();
                result.logs_omitted = 0;
                let mut state = self.session.state();
                state.build_result = Some(result);
                state.build_log = Some(Arc::new(log));
                Ok(Value::Null)
            }
            Request::ReadBuildLog { offset, max_bytes } => {
                let log = self.session.state().build_log.clone();
                let log = log.ok_or_else(|| host_error("the image has not been built yet"))?;
                to_json(log.page(offset, max_bytes).map_err(host_error)?)
            }
            Request::GetWorkspace { key } => {
                Ok(self.session.state().workspace.get(&key).cloned().unwrap_or(Value::Null))
            }
            Request::SetWorkspace { key, value } => {
                self.session.state().workspace.insert(key, value);
                Ok(Value::Null)
            }
            Request::RecordDigest { name, digest } => {
                self.session.state().digests.insert(name, digest);
                Ok(Value::Null)
            }
        }
    }

    /// A registry the plugin says is insecure must be one the engine may reach insecurely: the
    /// engine, not reactor, talks to it, and would otherwise fail later with a TLS error.
    fn check_insecure(&self, engine: &Engine, image: &str, insecure: bool) -> Result<(), PluginError> {
        let Some(registry) = registry_of(image).filter(|_| insecure) else {
            return Ok(());
        };
        if self.block_on(engine.treats_as_insecure(registry))? {
            return Ok(());
        }
        Err(host_error(format!(
            "{registry} is marked insecure, but the Docker engine treats it as secure (TLS verified): add it to \"insecure-registries\" in the engine's daemon.json (loopback registries are insecure by default)"
        )))
    }

    fn engine(&self) -> Result<Engine, PluginError> {
        self.session.engine().ok_or_else(|| host_error("the Docker engine is not available to this build"))
    }

    /// What interrupts an engine call: the cancellation, except for exit plugins, which run to
    /// the end (within the exit phase's own time limit).
    fn interruption(&self) -> impl Future<Output = ()> + 'static {
        let cancel = self.session.cancel.clone();
        let interruptible = self.phase != Phase::Exit;
        async move {
            if interruptible {
                cancel.cancelled().await;
            } else {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits for an engine call on this blocking thread, interrupted by [`Self::interruption`]:
    /// dropping the call's future drops its connection, which stops a pull or push on the engine.
    fn block_on<T>(&self, call: impl Future<Output = Result<T, crate::engine::Error>>) -> Result<T, PluginError> {
        let stop = self.interruption();
        self.session.runtime.block_on(async {
            tokio::select! {
                biased;
                () = stop => Err(cancelled_error()),
                outcome = call => outcome.map_err(host_error),
            }
        })
    }
}

/// The credentials for the registry `image` names: from `secret_dir`'s `.dockercfg` when given,
/// else Docker's `config.json`; none for an image without a registry.
fn registry_credentials(image: &str, secret_dir: Option<&str>) -> Result<Option<Credentials>, PluginError> {
    let Some(registry) = registry_of(image) else {
        return Ok(None);
    };
    credentials::for_registry(registry, secret_dir.map(Path::new)).map_err(host_error)
}

fn cancelled_error() -> PluginError {
    PluginError::with_kind(ErrorKind::Cancelled, "the build was cancelled")
}

fn host_error(message: impl std::fmt::Display) -> PluginError {
    PluginError::with_kind(ErrorKind::Host, message)
}

fn to_json(value: impl serde::Serialize) -> Result<Value, PluginError> {
    serde_json::to_value(value).map_err(host_error)
}

impl HostContext for PluginContext {
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>) {
        let level = reactor_plugin_api::protocol::log_level(level);
        // The plugin's own target stays visible, so its lines can be filtered like the host's.
        let target = format!("plugin::{}::{}", self.key, target.as_str());
        if level <= log::max_level() {
            log::logger().log(
                &log::Record::builder().level(level).target(&target).args(format_args!("{}", message.as_str())).build(),
            );
        }
    }

    fn max_level(&self) -> u8 {
        log::max_level() as u8
    }

    fn call(&self, request: RStr<'_>) -> RResult<RString, RString> {
        let answer = serde_json::from_str::<Request>(request.as_str())
            .map_err(|e| {
                host_error(format!(
                    "this reactor ({}) does not understand the request ({e}); is the plugin newer than reactor?",
                    env!("CARGO_PKG_VERSION")
                ))
            })
            .and_then(|request| self.answer(request))
            .and_then(|value| serde_json::to_string(&value).map_err(host_error));
        match answer {
            Ok(json) => ROk(json.into()),
            Err(e) => RErr(e.to_json().into()),
        }
    }
}
