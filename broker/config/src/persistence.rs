//! `broker.persistence`: where the broker keeps what must survive a restart.

use super::paths::RelativePath;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// Persistence: a directory and how often to save, or none (`persistence: off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// The store's directory (created if missing).
    pub path: PathBuf,
    /// Seconds between saves of what changed (also saved on a clean shutdown).
    pub autosave_interval_s: u64,
}

/// Seconds between saves when the file says nothing.
const DEFAULT_AUTOSAVE_S: u64 = 30;

/// The directory used when `path` is not given: `$WEIR_DATA_DIR`, else the XDG state
/// directory (`$XDG_STATE_HOME/weir`, else `~/.local/state/weir`).
pub fn default_path() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("WEIR_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(state) = var("XDG_STATE_HOME") {
        return PathBuf::from(state).join("weir");
    }
    let home = var("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/weir")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenPersistence {
    #[serde(default)]
    path: Option<RelativePath>,
    #[serde(default)]
    autosave_interval_s: Option<u64>,
}

/// Reads `persistence:`: `off` (or `false`) for none, else a map.
pub(super) fn persistence<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<PersistenceConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Switch(bool),
        Word(String),
        Settings(WrittenPersistence),
    }
    let settings = match Written::deserialize(d)? {
        Written::Switch(false) => return Ok(None),
        Written::Word(word) if word == "off" => return Ok(None),
        Written::Switch(true) => WrittenPersistence {
            path: None,
            autosave_interval_s: None,
        },
        Written::Word(word) => {
            return Err(serde::de::Error::custom(format_args!(
                "expected `off` or a map with `path` and `autosave_interval_s`, got `{word}`"
            )))
        }
        Written::Settings(settings) => settings,
    };
    let autosave_interval_s = settings.autosave_interval_s.unwrap_or(DEFAULT_AUTOSAVE_S);
    if autosave_interval_s == 0 {
        return Err(serde::de::Error::custom(
            "autosave_interval_s must be at least 1 (saving also happens at shutdown)",
        ));
    }
    Ok(Some(PersistenceConfig {
        path: settings
            .path
            .map_or_else(default_path, |p| p.path().to_path_buf()),
        autosave_interval_s,
    }))
}
