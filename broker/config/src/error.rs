//! Configuration errors, each pointing at the file, line and column the user wrote.

use std::path::PathBuf;
use thiserror::Error;

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read configuration: {reason}", file.display())]
    Read {
        file: PathBuf,
        /// Why (the reason is part of the message, not a separate cause).
        reason: std::io::Error,
    },
    /// The file was read but something in it is wrong. `message` starts with the key's path
    /// (for example `broker.listeners[0].tls.cert: ...`) when the error belongs to a key.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Keys that are each valid do not make sense together; `message` names them.
    #[error("{file}: {message}")]
    Inconsistent { file: String, message: String },
}
