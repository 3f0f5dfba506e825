//! Writes leash's generated files (`completions/`, `man/`, `docs/json.md`) from its
//! code. Run after changing any command, flag or JSON type: `cargo run -p leash-gen`.
//! A test fails when the checked-in copies are stale.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for dir in ["completions", "man"] {
        let _ = std::fs::remove_dir_all(root.join(dir));
    }
    for (path, contents) in leash::docs::generated_files() {
        let path = root.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, contents));
        if let Err(e) = written {
            eprintln!("leash-gen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap_or_default();
    let updated = match leash::docs::readme_generated(&readme) {
        Ok(updated) => updated,
        Err(markers) => {
            eprintln!(
                "leash-gen: {} lacks the markers {markers}",
                readme_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&readme_path, updated) {
        eprintln!("leash-gen: cannot write {}: {e}", readme_path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote the generated sections of {}", readme_path.display());
    ExitCode::SUCCESS
}
