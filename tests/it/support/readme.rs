//! The scripts README.md shows, as written there.

/// The code block that follows README's `<!-- fleet:NAME` marker.
pub fn fleet_script(name: &str) -> String {
    let readme = include_str!("../../../README.md");
    let marker = format!("<!-- fleet:{name}");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} in README.md"));
    let code = readme[at..]
        .split("```bash\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("its code block");
    code.to_string()
}
