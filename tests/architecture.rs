//! Standing rules of the source tree: dependencies point down the layers that
//! `src/lib.rs` lists, and no source file grows past what one reader holds.

use std::fs;
use std::path::{Path, PathBuf};

/// The library's top-level modules, lowest first. A module may use its own
/// layer and the ones before it; `online` and `vendor` are two sides at the
/// same height and use neither each other nor anything above; `pool` (the
/// customer's license server) builds on the vendor server's accept loop.
const LAYERS: &[&[&str]] = &[
    &["base"],
    &["format"],
    &["machine"],
    &["documents"],
    &["workstation"],
    &["online", "vendor"],
    &["pool"],
];

/// Longest a source file may be; past it, split the file by job.
const MAX_LINES: usize = 700;

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::name` a file mentions.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.push(name);
    }
    found
}

#[test]
fn modules_use_only_their_layer_and_the_ones_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs");
        let Some(own) = rank(top) else { continue }; // lib.rs, main.rs, cli/
        let text = fs::read_to_string(file).unwrap();
        for used in crate_paths(&text) {
            let Some(theirs) = rank(&used) else {
                violations.push(format!("{}: crate::{used} is not a layer", relative.display()));
                continue;
            };
            if theirs > own || (theirs == own && used != top) {
                violations.push(format!("{}: {top} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that point up or sideways:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_layer_in_the_tree_is_listed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name == "cli" || rank(&name).is_some(),
                "src/{name}/ is in no layer; add it to LAYERS and to the map in src/lib.rs"
            );
        }
    }
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            lib.contains(&format!("//! {module} ")),
            "src/lib.rs's module map does not describe {module}"
        );
    }
}

#[test]
fn no_source_file_is_longer_than_one_reader_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES)
                .then(|| format!("{} ({lines} lines)", f.strip_prefix(root).unwrap().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by job (limit {MAX_LINES}):\n{}",
        long.join("\n")
    );
}
