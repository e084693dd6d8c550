//! A fixture plugin whose key is the name of the file it was loaded from (`libNAME.so` → `NAME`),
//! so that copies of one shared object make as many distinct plugins: the plugin-directory
//! benchmark fills a directory with them. It returns its key.

use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::Value;

pub struct Named;

/// Any address inside this module's mapping.
static HERE: u8 = 0;

/// The name of the file this module was mapped from, found in /proc/self/maps by an address
/// inside it (no unsafe code, no libc).
fn own_key() -> String {
    let here = std::ptr::addr_of!(HERE) as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
            let path = fields.nth(4)?;
            (start <= here && here < end).then(|| path.to_owned())
        })
        .and_then(|path| {
            let name = path.rsplit('/').next()?;
            Some(name.strip_prefix("lib")?.strip_suffix(".so")?.to_owned())
        })
        .unwrap_or_else(|| "test_named".to_owned())
}

impl Plugin for Named {
    fn manifest(&self) -> Manifest {
        Manifest::new(&own_key(), [Phase::Postbuild], env!("CARGO_PKG_VERSION"))
            .description("returns its key, its file's name")
    }

    fn run(&self, _ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        Ok(Value::String(own_key()))
    }
}

export_plugins!(Named);
