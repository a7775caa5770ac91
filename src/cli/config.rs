//! Where the activation server is: the `--server` flag, then
//! `$NODELOCK_SERVER`, then `server = "…"` in the config file
//! (`$NODELOCK_CONFIG`, else `<config dir>/nodelock/config.toml`, e.g.
//! `~/.config/nodelock/config.toml`).

use std::path::PathBuf;

use serde::Deserialize;

use super::exit::{CliError, Exit};

#[derive(Deserialize)]
struct ConfigFile {
    server: Option<String>,
}

/// The config file's path.
pub fn config_path() -> Option<PathBuf> {
    std::env::var_os("NODELOCK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("nodelock").join("config.toml")))
}

/// The server URL and where it came from (`flag`, `environment`, or the config file's path).
pub fn server(flag: Option<&str>) -> Result<Option<(String, String)>, CliError> {
    if let Some(url) = flag {
        return Ok(Some((url.to_owned(), "--server".into())));
    }
    if let Ok(url) = std::env::var("NODELOCK_SERVER")
        && !url.trim().is_empty()
    {
        return Ok(Some((url, "NODELOCK_SERVER".into())));
    }
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::new(
                Exit::Io,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    let parsed: ConfigFile = toml::from_str(&text).map_err(|e| {
        CliError::new(
            Exit::BadInput,
            format!("{} is not a valid config file: {}", path.display(), e.message()),
        )
    })?;
    Ok(parsed.server.map(|url| (url, path.display().to_string())))
}
