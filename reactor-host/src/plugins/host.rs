//! The host side of a plugin's [`Context`](reactor_plugin_api::Context): answers the requests a
//! running plugin makes (read the workflow, change what its phase allows, use the engine) and
//! prints its log lines under its key.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RErr, ROk, RResult, RStr, RString};
use reactor_plugin_api::ffi::{HostContext, HostContext_TO, HostCtx};
use reactor_plugin_api::protocol::{PushOutcome, Request};
use reactor_plugin_api::{BuildResult, ErrorKind, Phase, PluginError, RunOutput};
use serde_json::{json, Value};
use tokio::runtime::Handle;

use crate::cancel::Cancel;
use crate::engine::{BuildSpec, Engine};
use crate::state::{BuildState, PluginRun};

/// What every plugin run shares: the build's state, the engine, the runtime to reach it, and
/// the cancellation.
pub struct Shared {
    pub state: Mutex<BuildState>,
    pub engine: Mutex<Option<Engine>>,
    pub runtime: Handle,
    pub cancel: Cancel,
}

impl Shared {
    pub fn new(state: BuildState, runtime: Handle, cancel: Cancel) -> Arc<Shared> {
        Arc::new(Shared { state: Mutex::new(state), engine: Mutex::new(None), runtime, cancel })
    }

    pub fn set_engine(&self, engine: Engine) {
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine);
    }

    /// The state; a plugin thread that panicked while holding it cannot have left it half-changed
    /// in a way that matters more than losing the build, so poisoning is ignored.
    pub fn state(&self) -> MutexGuard<'_, BuildState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn engine(&self) -> Option<Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The context of one plugin run.
#[derive(Clone)]
pub struct PluginHost {
    key: String,
    phase: Phase,
    shared: Arc<Shared>,
}

impl PluginHost {
    /// The FFI handle of a run of plugin `key` in `phase`.
    pub fn handle(key: &str, phase: Phase, shared: Arc<Shared>) -> HostCtx {
        HostContext_TO::from_ptr(RArc::new(PluginHost { key: key.to_owned(), phase, shared }), TD_Opaque)
    }

    fn answer(&self, request: Request) -> Result<Value, PluginError> {
        // Once cancelled, only the exit plugins get anything done; the others are told so.
        if self.phase != Phase::Exit && self.shared.cancel.is_cancelled() && request != Request::IsCancelled {
            return Err(PluginError::with_kind(ErrorKind::Cancelled, "the build was cancelled"));
        }
        match request {
            Request::Workflow => to_json(self.shared.state().snapshot()),
            Request::SetDockerfile { text } => {
                self.only_in(&[Phase::Prebuild], "change the Dockerfile")?;
                let path =
                    self.shared.state().dockerfile.clone().ok_or_else(|| host_error("there is no Dockerfile yet"))?;
                std::fs::write(&path, text).map_err(|e| host_error(format!("cannot write {}: {e}", path.display())))?;
                Ok(Value::Null)
            }
            Request::SetLabels { labels } => {
                self.only_in(&[Phase::Prebuild], "set labels")?;
                self.shared.state().labels.extend(labels);
                Ok(Value::Null)
            }
            Request::SetBuildArgs { args } => {
                self.only_in(&[Phase::Prebuild], "set build args")?;
                self.shared.state().build_args.extend(args);
                Ok(Value::Null)
            }
            Request::AddTags { tags } => {
                self.only_in(&[Phase::Prebuild, Phase::Buildstep, Phase::Prepublish, Phase::Postbuild], "add tags")?;
                let mut state = self.shared.state();
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
            Request::PushImage { name } => {
                let engine = self.engine()?;
                let digest = self.block_on(engine.push_image(&name))?;
                if let Some(digest) = &digest {
                    self.shared.state().digests.insert(name, digest.clone());
                }
                to_json(PushOutcome { digest })
            }
            Request::RemoveImage { name, force } => {
                let engine = self.engine()?;
                self.block_on(engine.remove_image(&name, force))?;
                Ok(Value::Null)
            }
            Request::RunContainer { image, command } => {
                let engine = self.engine()?;
                let out = self.block_on(engine.run_container(&image, &command))?;
                to_json(RunOutput { exit_code: out.exit_code, stdout: out.stdout, stderr: out.stderr })
            }
            Request::IsCancelled => Ok(json!(self.shared.cancel.is_cancelled())),
            Request::BuildImage => {
                self.only_in(&[Phase::Buildstep], "build the image")?;
                to_json(self.build_image()?)
            }
            Request::SetBuildResult { result } => {
                self.only_in(&[Phase::Buildstep], "set the build result")?;
                self.shared.state().build_result = Some(result);
                Ok(Value::Null)
            }
        }
    }

    /// Builds on the engine from the state as it stands, streaming the output to the log, and
    /// records the result and the build's own timing (as `dockerbuild`).
    fn build_image(&self) -> Result<BuildResult, PluginError> {
        let engine = self.engine()?;
        let (dockerfile, tag, build_args, labels) = {
            let state = self.shared.state();
            let dockerfile = state.dockerfile.clone().ok_or_else(|| host_error("there is no Dockerfile to build"))?;
            (dockerfile, state.image.clone(), state.build_args.clone(), state.labels.clone())
        };
        let context_dir = dockerfile.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let name = dockerfile.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let spec = BuildSpec {
            context_dir: &context_dir,
            dockerfile: &name,
            tag: &tag,
            build_args: &build_args,
            labels: &labels,
        };
        log::info!("building {tag} from {}", dockerfile.display());
        let (started, clock) = (SystemTime::now(), Instant::now());
        let cancel = self.shared.cancel.clone();
        let output = self.shared.runtime.block_on(async {
            // Dropping the build stream on cancellation makes the engine stop the build.
            tokio::select! {
                output = engine.build(&spec, |line| log::info!(target: "reactor::build", "{line}")) => Some(output),
                _ = cancel.cancelled() => None,
            }
        });
        let output = match output {
            Some(output) => output.map_err(|e| host_error(e.to_string()))?,
            None => return Err(PluginError::with_kind(ErrorKind::Cancelled, "the build was cancelled")),
        };
        let result = BuildResult {
            failed: output.error.is_some(),
            fail_reason: output.error,
            image_id: output.image_id,
            logs: output.logs,
        };
        let mut state = self.shared.state();
        state.runs.push(PluginRun {
            phase: Phase::Buildstep,
            key: "dockerbuild".to_owned(),
            started,
            duration: clock.elapsed(),
            error: result.fail_reason.clone(),
        });
        state.build_result = Some(result.clone());
        Ok(result)
    }

    fn only_in(&self, phases: &[Phase], what: &str) -> Result<(), PluginError> {
        if phases.contains(&self.phase) {
            return Ok(());
        }
        let allowed: Vec<&str> = phases.iter().map(|p| p.name()).collect();
        Err(host_error(format!("a plugin may {what} only in {}, not in {}", allowed.join("/"), self.phase)))
    }

    fn engine(&self) -> Result<Engine, PluginError> {
        self.shared.engine().ok_or_else(|| host_error("the Docker engine is not available to this build"))
    }

    /// Plugins run on blocking threads, where waiting on the runtime is allowed.
    fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, crate::engine::Error>>,
    ) -> Result<T, PluginError> {
        self.shared.runtime.block_on(future).map_err(|e| host_error(e.to_string()))
    }
}

fn host_error(message: impl std::fmt::Display) -> PluginError {
    PluginError::with_kind(ErrorKind::Host, message)
}

fn to_json(value: impl serde::Serialize) -> Result<Value, PluginError> {
    serde_json::to_value(value).map_err(|e| host_error(e.to_string()))
}

impl HostContext for PluginHost {
    fn log(&self, level: u8, _target: RStr<'_>, message: RStr<'_>) {
        let level = match level {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        };
        let target = format!("plugin::{}", self.key);
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
                    "this reactor does not understand the request ({e}); is the plugin newer than reactor?"
                ))
            })
            .and_then(|request| self.answer(request))
            .and_then(|value| serde_json::to_string(&value).map_err(|e| host_error(e.to_string())));
        match answer {
            Ok(json) => ROk(json.into()),
            Err(e) => RErr(e.to_json().into()),
        }
    }
}
