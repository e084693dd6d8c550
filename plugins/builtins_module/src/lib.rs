//! The built-in plugins as a plugin module: the same source reactor links in, compiled as a
//! `cdylib` and loaded with `--load-plugin`, where each replaces the built-in of its key.
//!
//! It proves that a built-in needs nothing a vendor's plugin lacks: `tests/builtins_labels.rs`
//! and `tests/builtins_push.rs` run the same builds both ways, and check that every built-in is
//! here. An ops team could load it to run newer built-ins on an older reactor of the same
//! plugin-API major.

use reactor_builtins::*;

reactor_plugin_api::export_plugins!(
    DockerfileContent,
    DockerApi,
    AddLabelsInDockerfile,
    AssertLabels,
    DistributionScope,
    AddDockerfile,
    CpDockerfile,
    TagByLabels,
    TagFromConfig,
    TagAndPush,
    RunInImage,
    AllPackages,
    AllRpmPackages,
    StoreLogsToFile,
    StoreMetadata,
    NotifyWebhook,
    PullBaseImage,
    ChangeFromInDockerfile,
    RemoveBuiltImage,
);
