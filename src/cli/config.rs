//! `leash config`: every setting's effective value and where it came from.

use super::Output;
use super::common::current_dir;
use super::json::Setting;
use crate::error::Error;
use crate::settings::{CONFIG_FILE, ConfigFile, Resolved};

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
        out.data(format!("{:<26} {:<20} SOURCE", "SETTING", "VALUE"));
        for row in &rows {
            let value = if row.value.is_empty() {
                "-"
            } else {
                &row.value
            };
            out.data(format!("{:<26} {:<20} {}", row.key, value, row.source));
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
