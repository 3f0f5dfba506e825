//! The checked-in completions and man pages must match the clap definitions.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let expected = leash::docs::generated_files();
    let mut stale = Vec::new();
    for (path, contents) in &expected {
        match std::fs::read(root.join(path)) {
            Ok(on_disk) if on_disk == *contents => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    for dir in ["completions", "man"] {
        for entry in std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = Path::new(dir).join(entry.file_name());
            if !expected.iter().any(|(p, _)| *p == path) {
                stale.push(format!("{} is no longer generated", path.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "completions/ or man/ are stale; run `cargo run -p leash-gen` and commit:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn every_exit_code_is_in_the_readme_and_the_man_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let man = std::fs::read_to_string(root.join("man/leash.1")).unwrap();
    for (code, _) in leash::error::EXIT_CODES {
        assert!(
            readme.contains(&format!("| {code} ")),
            "README lacks exit code {code}"
        );
        assert!(
            man.contains(&format!("{code:>3}  ")),
            "man page lacks exit code {code}"
        );
    }
}

#[test]
fn the_readmes_generated_sections_are_the_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let expected = leash::docs::readme_generated(&readme).expect("the README has the markers");
    assert!(
        readme == expected,
        "the README's settings table, exit codes or claude versions are stale; run `cargo run -p leash-gen` and commit"
    );
    for key in leash::settings::KEYS {
        assert!(readme.contains(&format!("| `{}` | `{}` |", key.name, key.env)));
    }
}
