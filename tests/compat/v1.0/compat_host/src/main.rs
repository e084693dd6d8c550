//! `compat_host FILE`: loads a plugin module as a host of protocol 1.0 would (the frozen layout,
//! the handshake, the refusal of a plugin that requires a feature it lacks), then runs each
//! plugin once, answering the requests of protocol 1.0 from a fixed workflow. Prints one JSON
//! line per plugin run; exits 3 when the module is refused.

use abi_stable::library::lib_header_from_path;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RErr, ROk, RResult, RStr, RString};
use reactor_plugin_api::ffi::{HostContext, HostContext_TO, PluginModule_Ref};
use serde_json::{json, Value};

#[derive(Clone)]
struct Host;

impl HostContext for Host {
    fn log(&self, _level: u8, target: RStr<'_>, message: RStr<'_>) {
        eprintln!("{target}: {message}");
    }

    fn max_level(&self) -> u8 {
        3
    }

    fn call(&self, request: RStr<'_>) -> RResult<RString, RString> {
        let request: Value = serde_json::from_str(request.as_str()).unwrap_or_default();
        match request["op"].as_str() {
            Some("workflow") => ROk(json!({"image": "compat", "phase": "postbuild",
                "build_result": {"logs": ["Step 1/1 : FROM busybox:latest", " ---> 0123"], "image_id": "sha256:0123"}})
                .to_string()
                .into()),
            Some("is_cancelled") => ROk("false".into()),
            other => RErr(json!({"kind": "host", "message": format!("this reactor does not understand the request {other:?}")})
                .to_string()
                .into()),
        }
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: compat_host FILE");
    let hello = json!({"reactor_version": "0.2.0-protocol-1.0", "api_version": reactor_plugin_api::API_VERSION,
                       "protocol": reactor_plugin_api::PROTOCOL, "features": []});
    let module = match lib_header_from_path(path.as_ref()).and_then(|h| h.init_root_module::<PluginModule_Ref>()) {
        Ok(module) => module,
        Err(e) => {
            eprintln!("{path}: cannot load: {}", e.to_string().lines().next().unwrap_or_default());
            std::process::exit(3);
        }
    };
    let answer = match (module.handshake())(RStr::from(hello.to_string().as_str())).into_result() {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("{path}: handshake failed: {e}");
            std::process::exit(3);
        }
    };
    let module_hello: Value = serde_json::from_str(answer.as_str()).expect("handshake JSON");
    let plugins = module_hello["plugins"].as_array().cloned().unwrap_or_default();
    for plugin in &plugins {
        for feature in plugin["requires"].as_array().into_iter().flatten() {
            let since = module_hello["features"]
                .as_array()
                .and_then(|known| known.iter().find(|k| k["name"] == *feature))
                .map_or("a release that offers it".to_owned(), |k| k["reactor"].as_str().unwrap_or_default().to_owned());
            eprintln!(
                "{path}: plugin '{}' (reactor-plugin-api {}) needs the host feature {feature}, which this reactor lacks: upgrade reactor to ≥ {since}",
                plugin["key"].as_str().unwrap_or_default(),
                module_hello["api_version"].as_str().unwrap_or_default()
            );
            std::process::exit(3);
        }
    }
    for (index, plugin) in plugins.iter().enumerate() {
        let key = plugin["key"].as_str().unwrap_or_default();
        let request = json!({"op": "run", "index": index, "key": key, "phase": "postbuild",
                             "args": {"from": "compat_host"}, "host": hello});
        let ctx = HostContext_TO::from_ptr(RArc::new(Host), TD_Opaque);
        let line = match (module.call())(ctx, RStr::from(request.to_string().as_str())).into_result() {
            Ok(result) => json!({"key": key, "result": serde_json::from_str::<Value>(result.as_str()).unwrap_or_default()}),
            Err(error) => json!({"key": key, "error": serde_json::from_str::<Value>(error.as_str()).unwrap_or_default()}),
        };
        println!("{line}");
    }
}
