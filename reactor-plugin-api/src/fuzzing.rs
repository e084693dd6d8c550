//! What a fuzz input means for the Dockerfile parser and editor, and what must hold for any
//! input: the one place both the `cargo fuzz` target (`fuzz/fuzz_targets/dockerfile.rs`) and
//! the proptest run of every `cargo test` (`tests/dockerfile_fuzz.rs`) call, so that the two
//! fuzz the same code. Not part of the plugin API: hidden from its documentation, and free to
//! change in any release.
//!
//! An input is fields separated by NUL bytes: the Dockerfile's text, then the image a
//! `FROM` edit sets, then labels to add as `KEY=VALUE` (at most 8); missing fields take
//! defaults, and invalid UTF-8 is replaced, as text read from a file would be refused.

use std::collections::BTreeMap;

use crate::dockerfile::Dockerfile;

/// The most labels an input adds: more only repeat the same code.
const MAX_LABELS: usize = 8;

/// Decodes a fuzz input (see the module's documentation) and runs [`check_dockerfile`] on it.
pub fn dockerfile(data: &[u8]) {
    let mut fields = data.split(|&b| b == 0).map(String::from_utf8_lossy);
    let text = fields.next().unwrap_or_default();
    let image = fields.next().filter(|image| !image.is_empty()).unwrap_or_else(|| "busybox".into());
    let labels: Vec<(String, String)> = fields
        .take(MAX_LABELS)
        .map(|label| match label.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (label.into_owned(), String::new()),
        })
        .collect();
    check_dockerfile(&text, &labels, &image);
}

/// Parses `text` and, when it parses, makes every kind of edit; panics when an invariant
/// breaks: whatever the input, nothing panics inside the parser or editor; what parses renders
/// back byte for byte; and every edit either fails with an error or yields a Dockerfile that
/// parses again and reads back what was written.
pub fn check_dockerfile(text: &str, labels: &[(String, String)], image: &str) {
    let Ok(df) = Dockerfile::parse(text) else { return };
    assert_eq!(df.edit().render(), text, "an editor without edits renders the source");
    // Every read-side accessor is total.
    let _ = (df.stages().len(), df.parent_images(), df.labels(), df.base_image(), df.global_args());

    let mut editor = df.edit();
    if editor.add_labels(labels).is_ok() {
        let out = editor.render();
        let again = Dockerfile::parse(&out).unwrap_or_else(|e| panic!("labels made {out:?} unparseable: {e}"));
        let read = again.final_stage().map(|s| s.labels().to_vec()).unwrap_or_default();
        // A key given twice ends up with its last value, as docker reads it.
        let written: BTreeMap<&str, &str> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for (key, value) in written {
            let last = read.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            assert_eq!(last, Some(value), "label {key:?} reads back from {out:?}");
        }
    }
    for stage in 0..df.stages().len() {
        let mut editor = df.edit();
        if editor.set_from_image(stage, image).is_ok() {
            let out = editor.render();
            let again = Dockerfile::parse(&out).unwrap_or_else(|e| panic!("FROM edit made {out:?} unparseable: {e}"));
            let stages = again.stages();
            assert!(stage < stages.len(), "FROM edit lost stage {stage} of {out:?}");
            assert_eq!(stages[stage].raw_image(), image, "in {out:?}");
        }
        let mut editor = df.edit();
        if editor.insert_after_from(stage, "RUN inserted").is_ok()
            && editor.add_instruction_at_end_of_stage(stage, "USER root").is_ok()
        {
            let out = editor.render();
            let again = Dockerfile::parse(&out).unwrap_or_else(|e| panic!("insertions made {out:?} unparseable: {e}"));
            assert_eq!(again.stages().len(), df.stages().len(), "in {out:?}");
        }
    }
    for index in 0..df.instructions().len() {
        let mut editor = df.edit();
        if editor.remove_instruction(index).is_ok() {
            let _ = Dockerfile::parse(&editor.render());
        }
    }
}
