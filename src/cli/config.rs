//! `leash config`: every setting's effective value and where it came from.

use super::Output;
use super::common::current_dir;
use super::json::Setting;
use crate::error::Error;
use crate::settings::{CONFIG_FILE, ConfigFile, Resolved};

/// Columns a value takes on a terminal (a CJK character takes two).
fn width_of(text: &str) -> usize {
    console::measure_text_width(text)
}

pub fn run(out: &Output) -> Result<u8, Error> {
    let cwd = current_dir()?;
    let file = ConfigFile::find(&cwd)?;
    let resolved = Resolved::load(&cwd, &[])?;
    // Show the values, then insist they are usable.
    let rows: Vec<Setting> = resolved
        .entries()
        .map(|(key, value, source)| Setting {
            key: key.name,
            value: value.to_string(),
            source: source.to_string(),
            env: key.env,
            default: key.default,
            scope: key.scope,
            help: key.doc,
        })
        .collect();
    if out.json {
        for row in &rows {
            out.json(row);
        }
    } else {
        out.data(match &file {
            Some(file) => format!("config file: {}", file.path.display()),
            None => format!("config file: none ({CONFIG_FILE} at the repository root)"),
        });
        let values: Vec<String> = rows
            .iter()
            .map(|row| match row.value.is_empty() {
                true => "-".to_string(),
                false => crate::human::safe(&row.value).into_owned(),
            })
            .collect();
        // Columns as wide as their widest cell, so a long value shifts the source, not
        // the alignment.
        let key_width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0).max(7);
        let value_width = values.iter().map(|v| width_of(v)).max().unwrap_or(0).max(5);
        let line = |key: &str, value: &str, source: &str| {
            let pad = " ".repeat(value_width - width_of(value));
            format!("{key:<key_width$}  {value}{pad}  {source}")
        };
        out.data(line("SETTING", "VALUE", "SOURCE"));
        for (row, value) in rows.iter().zip(&values) {
            out.data(line(row.key, value, &row.source));
        }
        if out.verbose > 0 {
            out.data("");
            for row in &rows {
                out.data(format!("{:<26} {} (env {})", row.key, row.help, row.env));
            }
        }
    }
    resolved.settings()?;
    Ok(0)
}
