//! The committed seeds of the `cargo fuzz` targets (and the inputs they once failed on), read
//! by the proptest suites of three crates that share no test crate: each includes this file
//! with `#[path = "../../fuzz/seeds.rs"] mod seeds;`.

use std::path::Path;

/// The seeds of `target` (a directory under `fuzz/seeds/`), sorted; fails when there are none.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds.sort();
    seeds
}
