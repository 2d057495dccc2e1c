//! The workspace layout the README's table describes, held against the crates' real
//! dependencies: each crate uses exactly the faasload crates its row names (so the
//! dependency rules written there, e.g. that the loader never uses the platform or the
//! monitor, are what `cargo metadata` says).
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The README table: crate name -> the short names of the faasload crates it uses.
fn readme_table(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let layout = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("the README has a Layout section");
    let mut rows = BTreeMap::new();
    for line in layout.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `name` (`path`) | job | uses |
        if cells.len() != 5 || !cells[1].starts_with("`faasload") {
            continue;
        }
        let name = cells[1]
            .trim_start_matches('`')
            .split('`')
            .next()
            .expect("a crate name in backquotes")
            .to_owned();
        let uses: BTreeSet<String> = match cells[3] {
            "—" => BTreeSet::new(),
            "all of the above" => BTreeSet::from(["*".to_owned()]),
            list => list.split(',').map(|s| s.trim().to_owned()).collect(),
        };
        rows.insert(name, uses);
    }
    rows
}

/// Every workspace member's normal dependencies on faasload crates (short names).
fn metadata(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let mut crates = BTreeMap::new();
    for p in v["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("package name").to_owned();
        let uses = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| {
                d["name"]
                    .as_str()?
                    .strip_prefix("faasload-")
                    .map(str::to_owned)
            })
            .collect();
        crates.insert(name, uses);
    }
    crates
}

#[test]
fn the_readme_layout_table_is_the_dependency_graph() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let table = readme_table(&readme);
    let real = metadata(&root);
    let libraries: BTreeSet<String> = real
        .keys()
        .filter(|n| {
            n.starts_with("faasload") && !matches!(n.as_str(), "faasload" | "faasload-tests")
        })
        .cloned()
        .collect();
    let described: BTreeSet<String> = table.keys().filter(|n| *n != "faasload").cloned().collect();
    assert_eq!(
        described, libraries,
        "the README's table and the workspace's crates differ"
    );
    for (name, uses) in &table {
        let actual = &real[name];
        if uses.contains("*") {
            let all: BTreeSet<String> = libraries
                .iter()
                .filter_map(|l| l.strip_prefix("faasload-").map(str::to_owned))
                .filter(|l| l != "common")
                .collect();
            let missing: Vec<_> = all.difference(actual).collect();
            assert!(missing.is_empty(), "{name} does not use {missing:?}");
        } else {
            assert_eq!(actual, uses, "{name}: the README says it uses {uses:?}");
        }
    }
    // The rules the table implies, said once more in words.
    for (user, never) in [
        ("faasload-loader", ["platform", "monitor"]),
        ("faasload-platform", ["monitor", "loader"]),
    ] {
        for n in never {
            assert!(!real[user].contains(n), "{user} must not use faasload-{n}");
        }
    }
}
