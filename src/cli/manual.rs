//! `nodelock completions SHELL` and `nodelock man`: generated from the same
//! clap model that parses the command line, so they cannot drift from it
//! (`docs/man/nodelock.1` is checked against `nodelock man` by a test).

use std::path::Path;

use clap::CommandFactory;
use serde_json::json;

use super::Cli;
use super::exit::{CliError, Exit};
use super::output::Outcome;

pub fn completions(shell: clap_complete::Shell) -> Result<Outcome, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "nodelock", &mut script);
    let script = String::from_utf8(script).map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
    Ok(Outcome::new(
        script.clone(),
        json!({ "shell": shell.to_string(), "script": script }),
    ))
}

pub fn man(out: Option<&Path>) -> Result<Outcome, CliError> {
    let command = Cli::command();
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
        let page = String::from_utf8(page).map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
        return Ok(Outcome::new(page.clone(), json!({ "page": page })));
    };
    std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::generate_to(command, dir))
        .map_err(|e| {
            CliError::new(
                Exit::Io,
                format!("cannot write the manual pages into {}: {e}", dir.display()),
            )
        })?;
    Ok(Outcome::new(
        format!("wrote nodelock.1 and one page per command into {}", dir.display()),
        json!({ "dir": dir.display().to_string() }),
    ))
}
