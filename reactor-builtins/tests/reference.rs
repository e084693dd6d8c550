//! `docs/plugins.md` is what the manifests render to: a plugin whose args change without the page
//! fails here. `REACTOR_UPDATE_DOCS=1` writes the page instead.

use std::path::Path;

#[test]
fn docs_plugins_md_is_rendered_from_the_current_manifests() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins.md");
    let rendered = reactor_builtins::reference::markdown();
    if std::env::var_os("REACTOR_UPDATE_DOCS").is_some() {
        std::fs::write(&page, &rendered).expect("write docs/plugins.md");
        return;
    }
    let committed = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/plugins.md is out of date with the built-ins' manifests; regenerate it with \
         REACTOR_UPDATE_DOCS=1 cargo test -p reactor-builtins --test reference"
    );
}

#[test]
fn every_builtin_says_what_it_returns() {
    for plugin in reactor_builtins::all() {
        let key = plugin.manifest().key;
        assert!(reactor_builtins::returns(&key).is_some(), "reactor_builtins::returns has no entry for '{key}'");
    }
}
