//! Everything generated from the code so it can never disagree with it: shell
//! completions and man pages (from the clap definitions), and docs/json.md (from the
//! types every `--json` line is made of). `cargo run -p leash-gen` writes them; a test
//! fails when the checked-in copies are stale.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use clap_complete::Shell;
use schemars::Schema;
use serde_json::{Map, Value};

use crate::cli::json::{
    Check, ErrorLine, Finished, JsonLine, Setting, Stopped, WorkerRow, WorkerStatus,
};
use crate::git::HookChange;
use crate::protocol::{Event, Reply, SessionStatus};

pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Every generated file, as (path relative to the repository root, contents).
pub fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let name = match shell {
            Shell::Bash => "leash.bash",
            Shell::Zsh => "_leash",
            Shell::Fish => "leash.fish",
            _ => continue,
        };
        files.push((
            PathBuf::from("completions").join(name),
            crate::cli::completion_script(shell),
        ));
    }
    let command = crate::cli::command();
    collect_man_pages(&command, "leash", &mut files);
    files.push((PathBuf::from("docs/json.md"), json_docs().into_bytes()));
    files
}

/// One page per command and subcommand, named like git's: `leash-session-start.1`.
fn collect_man_pages(command: &clap::Command, name: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    if command.is_hide_set() {
        return;
    }
    let page = command
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(page).render(&mut out);
    files.push((PathBuf::from("man").join(format!("{name}.1")), out));
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        collect_man_pages(sub, &format!("{name}-{}", sub.get_name()), files);
    }
}

const INTRO: &str = "# leash `--json` output

<!-- Generated from the code by `cargo run -p leash-gen`; do not edit. -->

Every command takes `--json`. Its standard output is then **one JSON object per line**,
each with a stable `type` field, ready for `jq`; human notes stay on standard error. The
**last line is the outcome**: the end of the turn or step, the command's result, or an
`error`. Fields may be added in later versions; existing fields keep their meaning (a
change that breaks that promise bumps the socket protocol version).

```sh
leash session send --json \"hi\" | jq -r 'select(.type == \"turn_ended\") | .outcome.status'
leash loop --json --task \"...\" | jq -c 'select(.type == \"judged\") | .judgement | {step, verdict, phase}'
leash session status --json | jq .claude_pid
```

`session send`, `plan`, `implement`, `nudge`, `loop` and `session logs` print the
daemon's events as they happen; the event log (`events.jsonl`, `leash session logs
--json`) holds the same objects. Every event has `seq` (increasing by one per event in
the worker's log), `ts` (Unix milliseconds) and `turn` (the turn or step id, `null` for
events outside a turn). `nudge --no-wait` prints only `queued`.
";

/// A documented line: its `type`, who prints it, and its schema (an object).
struct Line {
    kind: String,
    printed_by: String,
    schema: Value,
}

/// docs/json.md: every line type and its fields, every object and value they use.
pub fn json_docs() -> String {
    let mut defs = Map::new();
    let mut lines = Vec::new();
    let events = take(schemars::schema_for!(Event<Value>), &mut defs);
    for variant in variants(&events) {
        lines.push(tagged_line(
            variant,
            "the daemon, while a turn or step runs",
        ));
    }
    let replies = take(schemars::schema_for!(Reply), &mut defs);
    for variant in variants(&replies) {
        let kind = tag_of(variant);
        let printed_by = match kind.as_str() {
            "queued" => "the first line of `send` and of each step: the request was accepted",
            "ok" => "`session interrupt`, `session model`",
            _ => continue,
        };
        lines.push(tagged_line(variant, printed_by));
    }
    lines.push(command_line::<Finished>(&mut defs));
    lines.push(command_line::<SessionStatus>(&mut defs));
    lines.push(command_line::<WorkerRow>(&mut defs));
    lines.push(command_line::<Stopped>(&mut defs));
    lines.push(command_line::<WorkerStatus>(&mut defs));
    lines.push(command_line::<HookChange>(&mut defs));
    lines.push(command_line::<Check>(&mut defs));
    lines.push(command_line::<Setting>(&mut defs));
    lines.push(command_line::<ErrorLine>(&mut defs));

    let mut doc = String::from(INTRO);
    doc.push_str("\n## Lines\n\n| `type` | printed by | what it is |\n| ------ | ---------- | ---------- |\n");
    for line in &lines {
        let _ = writeln!(
            doc,
            "| `{}` | {} | {} |",
            line.kind,
            line.printed_by,
            one_line(description(&line.schema))
        );
    }
    doc.push_str("\n## Fields of each line\n");
    for line in &lines {
        let _ = write!(doc, "\n### `{}`\n\n", line.kind);
        fields_table(&mut doc, &line.schema, &defs);
    }
    let (objects, values): (Vec<_>, Vec<_>) = defs
        .iter()
        .partition(|(_, schema)| schema.get("properties").is_some());
    doc.push_str("\n## Objects inside lines\n");
    for (name, schema) in objects {
        let _ = write!(doc, "\n### {name}\n\n");
        if let Some(text) = schema.get("description").and_then(Value::as_str) {
            let _ = write!(doc, "{}\n\n", one_line(text));
        }
        fields_table(&mut doc, schema, &defs);
    }
    doc.push_str("\n## Values\n");
    for (name, schema) in values {
        let _ = write!(doc, "\n### {name}\n\n");
        if let Some(text) = schema.get("description").and_then(Value::as_str) {
            let _ = write!(doc, "{}\n\n", one_line(text));
        }
        for (value, meaning) in enum_values(schema) {
            match meaning {
                Some(meaning) => {
                    let _ = writeln!(doc, "- `{value}`: {}", one_line(&meaning));
                }
                None => {
                    let _ = writeln!(doc, "- `{value}`");
                }
            }
        }
    }
    doc
}

/// The schema's own object, its definitions moved into `defs`.
fn take(schema: Schema, defs: &mut Map<String, Value>) -> Value {
    let mut value = schema.to_value();
    if let Some(Value::Object(found)) = value.as_object_mut().and_then(|o| o.remove("$defs")) {
        defs.extend(found);
    }
    value
}

fn command_line<T: JsonLine>(defs: &mut Map<String, Value>) -> Line {
    let schema = take(schemars::schema_for!(T), defs);
    // A command's line is the type's own object under its `type`; its own entry in
    // the definitions (a nested use) is not an object of its own.
    let name = T::schema_name();
    defs.remove(name.as_ref());
    Line {
        kind: T::TYPE.to_string(),
        printed_by: T::PRINTED_BY.to_string(),
        schema,
    }
}

fn variants(schema: &Value) -> impl Iterator<Item = &Value> {
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn tag_of(variant: &Value) -> String {
    variant["properties"]["type"]["const"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn tagged_line(variant: &Value, printed_by: &str) -> Line {
    let mut schema = variant.clone();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.remove("type");
    }
    Line {
        kind: tag_of(variant),
        printed_by: printed_by.to_string(),
        schema,
    }
}

fn description(schema: &Value) -> &str {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Doc comments span lines and link with rustdoc's brackets; a table cell does
/// neither.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("[`", "`")
        .replace("`]", "`")
}

fn fields_table(doc: &mut String, schema: &Value, defs: &Map<String, Value>) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        doc.push_str("No fields besides `type`.\n");
        return;
    };
    doc.push_str("| field | type | meaning |\n| ----- | ---- | ------- |\n");
    // The declared order, which `required` keeps; optional fields after.
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut properties: Vec<(&String, &Value)> = properties.iter().collect();
    properties.sort_by_key(|(name, _)| {
        required
            .iter()
            .position(|r| r == name)
            .unwrap_or(required.len())
    });
    for (name, field) in properties {
        // A field without words of its own says what its type says.
        let meaning = match description(field) {
            "" => field
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| defs.get(r.rsplit('/').next().unwrap_or(r)))
                .map_or("", description),
            own => own,
        };
        let _ = writeln!(
            doc,
            "| `{name}` | {} | {} |",
            type_of(field),
            one_line(meaning)
        );
    }
}

/// A field's type in words, linking the objects and value lists it names.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let kinds: Vec<String> = options.iter().map(type_of).collect();
        return kinds.join(" or ");
    }
    if schema.get("oneOf").is_some() || schema.get("enum").is_some() {
        let values: Vec<String> = enum_values(schema)
            .into_iter()
            .map(|(v, _)| format!("`{v}`"))
            .collect();
        return values.join(", ");
    }
    let kinds: Vec<String> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.clone()],
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => return "any JSON".to_string(),
    };
    kinds
        .iter()
        .map(|kind| match kind.as_str() {
            "array" => format!(
                "list of {}",
                type_of(schema.get("items").unwrap_or(&Value::Null))
            ),
            "integer" | "number" | "string" | "boolean" | "null" | "object" => kind.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The values a string enum takes, with what each means when documented.
fn enum_values(schema: &Value) -> Vec<(String, Option<String>)> {
    let mut values: BTreeMap<usize, (String, Option<String>)> = BTreeMap::new();
    if let Some(list) = schema.get("enum").and_then(Value::as_array) {
        for (i, v) in list.iter().enumerate() {
            values.insert(i, (v.as_str().unwrap_or("?").to_string(), None));
        }
    }
    for (i, option) in variants(schema).enumerate() {
        let meaning = option
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(value) = option.get("const").and_then(Value::as_str) {
            values.insert(1000 + i, (value.to_string(), meaning));
        } else if let Some(list) = option.get("enum").and_then(Value::as_array) {
            for (j, v) in list.iter().enumerate() {
                let value = v.as_str().unwrap_or("?").to_string();
                values.insert(1000 + i * 100 + j, (value, meaning.clone()));
            }
        }
    }
    values.into_values().collect()
}
