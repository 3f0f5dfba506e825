//! The shape of the source, measured from the outside (issue 26): no file imports one that
//! imports it back, types with behaviour stay small, and the daemon leaves the worker's
//! state to the one file that loads and saves it.
//!
//! The source is read as text, not compiled: a tiny tokenizer drops comments, string and
//! char literals, and every item under `#[cfg(test)]` (tests may import freely). The files
//! are the modules reached from `src/lib.rs` by `mod name;` (plus `src/main.rs`, whose
//! `leash::` paths are the library's). What counts as an arrow from a file to another:
//!
//! - every path in a `use` tree, anywhere in the file (`pub use` re-exports included), and
//! - every path written inline that starts with `crate::`, `self::`, `super::`, a child
//!   module declared in the file, or (in main.rs) `leash::`.
//!
//! A path points at the file of the deepest module it names: `crate::a::b::Item` is an arrow
//! to `a/b.rs` (or `a/b/mod.rs`) when that module exists, else to `a.rs` / `a/mod.rs`.
//! Paths from other crates (`std::`, `serde::`) and names brought in by a `use` and then
//! used bare are not arrows of their own: the `use` already was one. A path to the file's
//! own module or one of its ancestors (`super::Item`, `crate::a::Item` from inside `a/`) is
//! no arrow either: a module's children are its private parts, which Rust lets see all of
//! their parent, so a parent and its children are one room; the loops that cost are
//! between rooms (siblings, cousins), and a parent's `pub use` of a child still counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let crate_files = read_crate();
    let arrows = arrows(&crate_files);
    let cycles = cycles(&arrows);
    let report: Vec<String> = cycles
        .iter()
        .map(|files| describe_cycle(files, &arrows))
        .collect();
    assert!(
        cycles.is_empty(),
        "{} import loop(s) between files (each a set of files that reach each other):\n{}",
        cycles.len(),
        report.join("\n")
    );
}

#[test]
fn types_with_behaviour_stay_small() {
    let crate_files = read_crate();
    let oversized: Vec<String> = struct_shapes(&crate_files)
        .iter()
        .filter(|shape| shape.methods >= 5)
        .flat_map(|shape| {
            let in_daemon = shape.file.starts_with("src/daemon/");
            [
                (shape.fields > 12).then(|| format!("{} fields (at most 12)", shape.fields)),
                (shape.methods > 30).then(|| format!("{} methods (at most 30)", shape.methods)),
                (in_daemon && shape.pub_fields > 5)
                    .then(|| format!("{} pub fields (at most 5 in src/daemon)", shape.pub_fields)),
            ]
            .into_iter()
            .flatten()
            .map(|excess| format!("  {} in {}: {excess}", shape.name, shape.file))
        })
        .collect();
    assert!(
        oversized.is_empty(),
        "types with five or more inherent methods that grew too large:\n{}",
        oversized.join("\n")
    );
}

/// The daemon reads no field of the worker's state: short of a type checker, no file of the
/// daemon but the one that loads and saves it names `WorkerState` at all.
#[test]
fn the_daemon_leaves_the_worker_state_to_its_file() {
    let crate_files = read_crate();
    let naming: Vec<&str> = crate_files
        .iter()
        .filter(|file| file.path.starts_with("src/daemon/"))
        .filter(|file| file.path != "src/daemon/worker_file.rs")
        .filter(|file| file.tokens.iter().any(|token| token == "WorkerState"))
        .map(|file| file.path.as_str())
        .collect();
    assert!(
        naming.is_empty(),
        "daemon files other than worker_file.rs name WorkerState:\n  {}",
        naming.join("\n  ")
    );
}

/// The checks above pass on a crate they cannot see: every file of src/ must be read,
/// but the test modules (`tests.rs`, `tests/`), which `#[cfg(test)] mod tests;` leaves out.
#[test]
fn every_source_file_is_read() {
    fn walk(dir: &Path, root: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(root).unwrap();
                found.insert(relative.to_string_lossy().into_owned());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut on_disk = BTreeSet::new();
    walk(&root.join("src"), root, &mut on_disk);
    let crate_files = read_crate();
    let read: BTreeSet<String> = crate_files.iter().map(|f| f.path.clone()).collect();
    let unread: Vec<&String> = on_disk
        .difference(&read)
        .filter(|path| !path.ends_with("/tests.rs") && !path.contains("/tests/"))
        .collect();
    assert!(
        unread.is_empty(),
        "files the module walk missed: {unread:?}"
    );
    let arrow_count: usize = arrows(&crate_files).values().map(BTreeMap::len).sum();
    assert!(arrow_count > 100, "only {arrow_count} arrows between files");
}

/// One source file: where it is, the module it defines, and its code as tokens.
struct SourceFile {
    path: String,
    module: Vec<String>,
    tokens: Vec<String>,
    /// Modules declared in it by `mod name;`: a path may start with their names.
    children: Vec<String>,
    /// main.rs names the library `leash::`.
    is_binary: bool,
}

fn read_crate() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_module(root, "src/lib.rs", Vec::new(), false, &mut files);
    read_module(root, "src/main.rs", Vec::new(), true, &mut files);
    files
}

fn read_module(
    root: &Path,
    path: &str,
    module: Vec<String>,
    is_binary: bool,
    files: &mut Vec<SourceFile>,
) {
    let text = std::fs::read_to_string(root.join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let tokens = without_tests(tokens(&text));
    let children = declared_modules(&tokens);
    let dir = children_dir(path);
    for child in &children {
        let flat = format!("{dir}/{child}.rs");
        let nested = format!("{dir}/{child}/mod.rs");
        let child_path = if root.join(&flat).is_file() {
            flat
        } else {
            nested
        };
        let mut child_module = module.clone();
        child_module.push(child.clone());
        read_module(root, &child_path, child_module, false, files);
    }
    files.push(SourceFile {
        path: path.to_string(),
        module,
        tokens,
        children,
        is_binary,
    });
}

/// Where the files of a file's child modules live: beside a `mod.rs` or crate root, in a
/// directory named after any other file.
fn children_dir(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    match name {
        "mod.rs" | "lib.rs" | "main.rs" => dir.to_string(),
        _ => format!("{dir}/{}", name.trim_end_matches(".rs")),
    }
}

/// `mod name;` declarations (inline `mod name { }` blocks are part of their file).
fn declared_modules(tokens: &[String]) -> Vec<String> {
    tokens
        .windows(3)
        .filter(|w| w[0] == "mod" && is_word(&w[1]) && w[2] == ";")
        .map(|w| w[1].clone())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tokenizer: words, `::`, `->`, `=>` and single punctuation; no comments, no literals
// (strings, chars, byte strings, raw strings), no lifetimes.

fn tokens(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = after_block_comment(&chars, i);
        } else if c == '"' {
            i = after_string(&chars, i + 1);
        } else if c == '\'' {
            i = after_char_or_lifetime(&chars, i);
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match (word.as_str(), chars.get(i).copied()) {
                ("r" | "br", Some('"' | '#')) if is_raw_string(&chars, i) => {
                    i = after_raw_string(&chars, i);
                }
                ("r", Some('#')) => i += 1, // a raw identifier: the word follows
                ("b", Some('"')) => i = after_string(&chars, i + 1),
                ("b", Some('\'')) => i = after_char_or_lifetime(&chars, i),
                _ => out.push(word),
            }
        } else {
            let pair: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if matches!(pair.as_str(), "::" | "->" | "=>") {
                out.push(pair);
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        }
    }
    out
}

fn after_block_comment(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    i
}

/// `start` is just past the opening quote.
fn after_string(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `start` is at the quote: `'x'`, `'\n'`, `'\''` are chars; `'a` is a lifetime.
fn after_char_or_lifetime(chars: &[char], start: usize) -> usize {
    let at = |k: usize| chars.get(start + k).copied();
    if at(1) == Some('\\') {
        let mut i = start + 3;
        while i < chars.len() && chars[i] != '\'' {
            i += 1;
        }
        i + 1
    } else if at(2) == Some('\'') {
        start + 3
    } else {
        let mut i = start + 1;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        i
    }
}

/// `start` is just past the `r` / `br`: some `#`, then a quote.
fn is_raw_string(chars: &[char], start: usize) -> bool {
    let hashes = chars[start..].iter().take_while(|c| **c == '#').count();
    chars.get(start + hashes) == Some(&'"')
}

fn after_raw_string(chars: &[char], start: usize) -> usize {
    let hashes = chars[start..].iter().take_while(|c| **c == '#').count();
    let mut i = start + hashes + 1;
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

fn is_word(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Drops every item under `#[cfg(test)]`: up to its `;`, or through its `{ }` block.
fn without_tests(tokens: Vec<String>) -> Vec<String> {
    const CFG_TEST: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&CFG_TEST.map(String::from)) {
            i = after_item(&tokens, i + CFG_TEST.len());
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    out
}

fn after_item(tokens: &[String], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth = depth.saturating_sub(1),
            ";" if depth == 0 => return i + 1,
            "{" if depth == 0 => return after_matching(tokens, i, "{", "}"),
            _ => {}
        }
        i += 1;
    }
    i
}

/// `start` is at an opening token; the index just past its match.
fn after_matching(tokens: &[String], start: usize, open: &str, close: &str) -> usize {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(start) {
        if token == open {
            depth += 1;
        } else if token == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    tokens.len()
}

// ---------------------------------------------------------------------------------------
// Paths a file names.

/// Every path a file names that may be another file of the crate, as written.
fn named_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let tokens = &file.tokens;
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        let after_colons = i > 0 && tokens[i - 1] == "::";
        if token == "use" && tokens.get(i + 1).is_some_and(|next| next != "<") {
            i += 1;
            use_tree(tokens, &mut i, &[], &mut paths);
        } else if is_word(token) && !after_colons && tokens.get(i + 1).is_some_and(|t| t == "::") {
            let mut path = vec![tokens[i].clone()];
            i += 1;
            while tokens.get(i).is_some_and(|t| t == "::")
                && tokens.get(i + 1).is_some_and(|t| is_word(t))
            {
                path.push(tokens[i + 1].clone());
                i += 2;
            }
            let first = path[0].as_str();
            let ours = matches!(first, "crate" | "self" | "super")
                || file.children.iter().any(|child| child == first)
                || (file.is_binary && first == "leash");
            if ours {
                paths.push(path);
            }
        } else {
            i += 1;
        }
    }
    paths
}

/// The paths of one `use` tree starting at `*i` (past `use`), each in full:
/// `a::{b, c::d as e, self, f::*}` names `a::b`, `a::c::d`, `a` and `a::f`.
fn use_tree(tokens: &[String], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    if tokens.get(*i).is_some_and(|t| t == "::") {
        *i += 1;
    }
    loop {
        let Some(token) = tokens.get(*i).map(String::as_str) else {
            return;
        };
        match token {
            "{" => {
                *i += 1;
                while tokens.get(*i).is_some_and(|t| t != "}") {
                    use_tree(tokens, i, &path, out);
                    if tokens.get(*i).is_some_and(|t| t == ",") {
                        *i += 1;
                    } else {
                        break;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push(path);
                return;
            }
            word if is_word(word) => {
                *i += 1;
                let more = tokens.get(*i).is_some_and(|t| t == "::");
                if !(word == "self" && !more && !path.is_empty()) {
                    path.push(word.to_string());
                }
                if more {
                    *i += 1;
                    continue;
                }
                if tokens.get(*i).is_some_and(|t| t == "as") {
                    *i += 2;
                }
                out.push(path);
                return;
            }
            _ => return,
        }
    }
}

/// The module path a written path means, from the crate root; None for other crates.
fn absolute(file: &SourceFile, path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    match first {
        "crate" => Some(path[1..].to_vec()),
        "leash" if file.is_binary => Some(path[1..].to_vec()),
        "self" => Some([&file.module[..], &path[1..]].concat()),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            let base = file.module.len().checked_sub(ups)?;
            Some([&file.module[..base], &path[ups..]].concat())
        }
        _ if file.children.iter().any(|child| child == first) => {
            Some([&file.module[..], path].concat())
        }
        _ => None,
    }
}

type Arrows = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// File → file it imports from → what it names there.
fn arrows(files: &[SourceFile]) -> Arrows {
    let file_of_module: BTreeMap<&[String], &str> = files
        .iter()
        .filter(|file| !file.is_binary)
        .map(|file| (file.module.as_slice(), file.path.as_str()))
        .collect();
    let mut arrows = Arrows::new();
    for file in files {
        let from = arrows.entry(file.path.clone()).or_default();
        for path in named_paths(file) {
            let Some(absolute) = absolute(file, &path) else {
                continue;
            };
            let Some(target_module) = (0..=absolute.len())
                .rev()
                .map(|len| &absolute[..len])
                .find(|module| file_of_module.contains_key(module))
            else {
                continue;
            };
            if !file.is_binary && file.module.starts_with(target_module) {
                continue; // itself or an ancestor
            }
            from.entry(file_of_module[target_module].to_string())
                .or_default()
                .insert(path.join("::"));
        }
    }
    arrows
}

// ---------------------------------------------------------------------------------------
// Cycles: the strongly connected components of more than one file (Tarjan).

fn cycles(arrows: &Arrows) -> Vec<Vec<String>> {
    let mut search = Tarjan::default();
    for file in arrows.keys() {
        if !search.index.contains_key(file) {
            search.visit(file, arrows);
        }
    }
    let mut found: Vec<Vec<String>> = search
        .components
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|mut component| {
            component.sort();
            component
        })
        .collect();
    found.sort();
    found
}

#[derive(Default)]
struct Tarjan {
    index: BTreeMap<String, usize>,
    low: BTreeMap<String, usize>,
    stack: Vec<String>,
    on_stack: BTreeSet<String>,
    components: Vec<Vec<String>>,
}

impl Tarjan {
    fn visit(&mut self, file: &str, arrows: &Arrows) {
        let order = self.index.len();
        self.index.insert(file.to_string(), order);
        self.low.insert(file.to_string(), order);
        self.stack.push(file.to_string());
        self.on_stack.insert(file.to_string());
        for target in arrows.get(file).into_iter().flat_map(BTreeMap::keys) {
            if !self.index.contains_key(target) {
                self.visit(target, arrows);
                let lowest = self.low[file].min(self.low[target]);
                self.low.insert(file.to_string(), lowest);
            } else if self.on_stack.contains(target) {
                let lowest = self.low[file].min(self.index[target]);
                self.low.insert(file.to_string(), lowest);
            }
        }
        if self.low[file] == self.index[file] {
            let mut component = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(&member);
                let done = member == file;
                component.push(member);
                if done {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

fn describe_cycle(files: &[String], arrows: &Arrows) -> String {
    let mut lines = vec![format!("- {} files: {}", files.len(), files.join(", "))];
    for from in files {
        for (to, names) in &arrows[from] {
            if files.contains(to) {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                lines.push(format!("    {from} -> {to} ({})", names.join(", ")));
            }
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------
// Structs: named fields, and the methods of their inherent `impl Type { }` blocks.

#[derive(Debug)]
struct StructShape {
    name: String,
    file: String,
    module: Vec<String>,
    fields: usize,
    pub_fields: usize,
    methods: usize,
}

/// Tuple and unit structs count no fields. An `impl Name` block counts for the struct of
/// that name closest to it in the module tree (its own file, then its ancestors').
fn struct_shapes(files: &[SourceFile]) -> Vec<StructShape> {
    let mut shapes: Vec<StructShape> = files
        .iter()
        .flat_map(|file| {
            structs(&file.tokens)
                .into_iter()
                .map(|(name, fields, pub_fields)| StructShape {
                    name,
                    file: file.path.clone(),
                    module: file.module.clone(),
                    fields,
                    pub_fields,
                    methods: 0,
                })
        })
        .collect();
    for file in files {
        for (name, methods) in inherent_impls(&file.tokens) {
            let closest = shapes
                .iter_mut()
                .filter(|shape| shape.name == name)
                .max_by_key(|shape| {
                    let shared = shape
                        .module
                        .iter()
                        .zip(&file.module)
                        .take_while(|(a, b)| a == b)
                        .count();
                    (shape.file == file.path, shared)
                });
            if let Some(shape) = closest {
                shape.methods += methods;
            }
        }
    }
    shapes
}

/// Each `struct Name { ... }`: its name, its fields, its `pub` fields.
fn structs(tokens: &[String]) -> Vec<(String, usize, usize)> {
    let mut found = Vec::new();
    for (at, token) in tokens.iter().enumerate() {
        let Some(name) = tokens.get(at + 1).filter(|_| token == "struct") else {
            continue;
        };
        let mut angle = 0usize;
        let body = tokens[at + 2..].iter().enumerate().find_map(|(k, t)| {
            match t.as_str() {
                "<" => angle += 1,
                ">" => angle = angle.saturating_sub(1),
                "(" | ";" if angle == 0 => return Some(None),
                "{" => return Some(Some(at + 2 + k)),
                _ => {}
            }
            None
        });
        let (fields, pub_fields) = match body.flatten() {
            Some(open) => count_fields(tokens, open + 1),
            None => (0, 0),
        };
        found.push((name.clone(), fields, pub_fields));
    }
    found
}

/// Fields are the `name: Type` at the body's first level; `start` is past the `{`.
fn count_fields(tokens: &[String], start: usize) -> (usize, usize) {
    let (mut depth, mut fields, mut pub_fields) = (0usize, 0, 0);
    for token in &tokens[start..] {
        match token.as_str() {
            "{" | "(" | "[" | "<" => depth += 1,
            "}" if depth == 0 => break,
            "}" | ")" | "]" | ">" => depth = depth.saturating_sub(1),
            ":" if depth == 0 => fields += 1,
            "pub" if depth == 0 => pub_fields += 1,
            _ => {}
        }
    }
    (fields, pub_fields)
}

/// Each inherent `impl<..> Name<..> { ... }` (not `impl Trait for Name`, not `-> impl Trait`):
/// the type's name and the `fn`s at the block's first level.
fn inherent_impls(tokens: &[String]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (at, token) in tokens.iter().enumerate() {
        let item_start = at == 0 || matches!(tokens[at - 1].as_str(), "}" | ";" | "{" | "]");
        if token != "impl" || !item_start {
            continue;
        }
        let mut i = at + 1;
        if tokens.get(i).is_some_and(|t| t == "<") {
            i = after_matching(tokens, i, "<", ">");
        }
        let mut name = None;
        let mut angle = 0usize;
        while let Some(t) = tokens.get(i).map(String::as_str) {
            match t {
                "<" => angle += 1,
                ">" => angle = angle.saturating_sub(1),
                "{" | "where" if angle == 0 => break,
                "for" if angle == 0 => {
                    name = None;
                    break;
                }
                word if angle == 0 && is_word(word) => name = Some(word.to_string()),
                _ => {}
            }
            i += 1;
        }
        let Some(name) = name else {
            continue;
        };
        let Some(open) = (i..tokens.len()).find(|&k| tokens[k] == "{") else {
            continue;
        };
        found.push((name, methods_in_block(tokens, open)));
    }
    found
}

/// `open` is at the `{`: the `fn name` at the block's first level.
fn methods_in_block(tokens: &[String], open: usize) -> usize {
    let mut depth = 0usize;
    let mut methods = 0;
    for (k, token) in tokens.iter().enumerate().skip(open) {
        match token.as_str() {
            "{" | "(" | "[" => depth += 1,
            "}" | ")" | "]" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "fn" if depth == 1 && tokens.get(k + 1).is_some_and(|t| is_word(t)) => methods += 1,
            _ => {}
        }
    }
    methods
}

// ---------------------------------------------------------------------------------------
// The reader itself, on small strings.

fn file(path: &str, module: &[&str], source: &str) -> SourceFile {
    let tokens = without_tests(tokens(source));
    SourceFile {
        path: path.to_string(),
        module: module.iter().map(|s| s.to_string()).collect(),
        children: declared_modules(&tokens),
        tokens,
        is_binary: false,
    }
}

fn joined(paths: Vec<Vec<String>>) -> Vec<String> {
    paths.into_iter().map(|path| path.join("::")).collect()
}

#[test]
fn comments_literals_and_lifetimes_are_not_code() {
    let source = r##"
        // use crate::a;
        /* use crate::b; /* nested */ use crate::c; */
        let s = "use crate::d; \" still a string";
        let r = r#"use crate::e; "quoted""#;
        let c = '"'; let q = '\''; let b = b"crate::f";
        fn f<'a>(x: &'a str) -> &'a str { x }
    "##;
    let words: Vec<String> = tokens(source).into_iter().filter(|t| is_word(t)).collect();
    assert_eq!(
        words,
        [
            "let", "s", "let", "r", "let", "c", "let", "q", "let", "b", "fn", "f", "x", "str",
            "str", "x"
        ]
    );
}

#[test]
fn use_trees_expand_to_full_paths() {
    let f = file(
        "src/a/b.rs",
        &["a", "b"],
        "use crate::x::{y::{Z, W as V}, self, q::*};\n\
         pub use super::c::D;\n\
         use std::collections::BTreeMap;\n\
         fn g() { use self::inner::h; }",
    );
    assert_eq!(
        joined(named_paths(&f)),
        [
            "crate::x::y::Z",
            "crate::x::y::W",
            "crate::x",
            "crate::x::q",
            "super::c::D",
            "std::collections::BTreeMap",
            "self::inner::h"
        ]
    );
}

#[test]
fn inline_paths_count_when_they_start_inside_the_crate() {
    let f = file(
        "src/a/mod.rs",
        &["a"],
        "mod child;\n\
         fn g() { crate::x::y::f(); std::mem::take(&mut v); child::Thing::new(); Self::h(); }",
    );
    assert_eq!(
        joined(named_paths(&f)),
        ["crate::x::y::f", "child::Thing::new"]
    );
}

#[test]
fn test_items_are_left_out() {
    let f = file(
        "src/a.rs",
        &["a"],
        "use crate::kept;\n\
         #[cfg(test)]\nuse crate::test_only;\n\
         #[cfg(test)]\nmod tests { use crate::b; fn f() { crate::c::d(); } }\n\
         #[cfg(test)]\nmod more;\n\
         fn after() { crate::also_kept::f(); }",
    );
    assert_eq!(
        joined(named_paths(&f)),
        ["crate::kept", "crate::also_kept::f"]
    );
    assert!(f.children.is_empty());
}

#[test]
fn paths_point_at_the_deepest_file_and_loops_are_found() {
    let files = [
        file("src/lib.rs", &[], "mod a; mod b; mod c;"),
        file(
            "src/a/mod.rs",
            &["a"],
            "mod inner; mod up; pub use inner::X; use crate::c::Free;",
        ),
        file("src/a/inner.rs", &["a", "inner"], "use crate::b::Y;"),
        file("src/b.rs", &["b"], "use super::a::inner::X as Z;"),
        file("src/c.rs", &["c"], "use crate::a::X;"),
        file(
            "src/a/up.rs",
            &["a", "up"],
            "use super::X; use crate::a::inner::X as Y;",
        ),
    ];
    let arrows = arrows(&files);
    let targets = |from: &str| -> Vec<&str> { arrows[from].keys().map(String::as_str).collect() };
    assert_eq!(targets("src/a/mod.rs"), ["src/a/inner.rs", "src/c.rs"]);
    assert_eq!(targets("src/b.rs"), ["src/a/inner.rs"]);
    assert_eq!(targets("src/c.rs"), ["src/a/mod.rs"]);
    assert_eq!(
        targets("src/a/up.rs"),
        ["src/a/inner.rs"],
        "an ancestor is no arrow"
    );
    assert_eq!(
        cycles(&arrows),
        [
            vec!["src/a/inner.rs", "src/b.rs"],
            vec!["src/a/mod.rs", "src/c.rs"]
        ]
    );
}

#[test]
fn struct_shapes_count_fields_and_inherent_methods() {
    let files = [
        file("src/lib.rs", &[], "mod m;"),
        file(
            "src/m.rs",
            &["m"],
            "pub struct S<T: Clone> { pub a: Vec<(u8, u8)>, b: HashMap<String, T>, \
             #[serde(default)] pub(crate) c: fn(u8) -> u8 }\n\
             struct Unit; struct Tuple(u8, u8);\n\
             impl<T: Clone> S<T> { pub fn one(&self) -> impl Iterator<Item = u8> { fn nested() {} todo!() } \
             fn two(f: fn(u8)) {} }\n\
             impl Clone for S<u8> { fn clone(&self) -> Self { todo!() } }\n\
             impl super::m::S<u8> where u8: Copy { const fn three() {} }",
        ),
    ];
    let shapes = struct_shapes(&files);
    let summary: Vec<(&str, usize, usize, usize)> = shapes
        .iter()
        .map(|s| (s.name.as_str(), s.fields, s.pub_fields, s.methods))
        .collect();
    assert_eq!(
        summary,
        [("S", 3, 2, 3), ("Unit", 0, 0, 0), ("Tuple", 0, 0, 0)]
    );
}
