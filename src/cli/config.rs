//! `leash config`: every setting's effective value and where it came from.

use serde::Serialize;

use super::render::Output;
use super::settings;
use crate::config::{CONFIG_FILE, ConfigFile, KEYS};
use crate::error::Error;

#[derive(Serialize)]
struct Setting<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    key: &'a str,
    value: &'a str,
    source: String,
    env: &'static str,
    help: &'static str,
}

pub fn run(out: &Output) -> Result<u8, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let file = ConfigFile::find(&cwd)?;
    let resolved = settings(&[])?;
    // Show the values, then insist they are usable.
    let rows: Vec<Setting> = resolved
        .entries()
        .filter_map(|(key, value, source)| {
            let meta = KEYS.iter().find(|k| k.name == key)?;
            Some(Setting {
                kind: "setting",
                key,
                value,
                source: source.to_string(),
                env: meta.env,
                help: meta.help,
            })
        })
        .collect();
    if out.json {
        for row in &rows {
            out.json_line(row);
        }
    } else {
        match &file {
            Some(file) => println!("config file: {}", file.path.display()),
            None => println!("config file: none ({CONFIG_FILE} at the repository root)"),
        }
        println!("{:<26} {:<20} SOURCE", "SETTING", "VALUE");
        for row in &rows {
            let value = if row.value.is_empty() { "-" } else { row.value };
            println!("{:<26} {:<20} {}", row.key, value, row.source);
        }
        if out.verbose > 0 {
            println!();
            for row in &rows {
                println!("{:<26} {} (env {})", row.key, row.help, row.env);
            }
        }
    }
    resolved.worker_config()?;
    resolved.session_model()?;
    Ok(0)
}
