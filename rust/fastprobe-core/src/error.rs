//! The crate's single error type.

use std::path::PathBuf;

/// Every failure the core can report. The binding crate maps each variant onto one Python exception class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An array had a shape other than the one required; `what` names the argument.
    #[error("{what}: expected shape {expected}, got {got}")]
    Shape {
        /// The argument or quantity whose shape is wrong.
        what: String,
        /// The shape that was required, in words or as a tuple.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// A string option had a value outside its set of choices.
    #[error("unknown {kind} {given:?}; expected one of: {}", choices.join(", "))]
    UnknownOption {
        /// What kind of option it is (for example "pooling").
        kind: &'static str,
        /// The value that was given.
        given: String,
        /// Every accepted value.
        choices: Vec<&'static str>,
    },
    /// An argument had a value outside its domain (for example a prompt with no unmasked token).
    #[error("{0}")]
    InvalidInput(String),
    /// Stored data failed a check (checksum, magic, length): the message names the file and record.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// An encoder or decoder failed on data that passed its checks.
    #[error("codec error: {0}")]
    Codec(String),
    /// A key (prompt and site) is not in the store.
    #[error("{0}")]
    Missing(String),
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Builds a [`Error::Shape`] from displayable parts.
    pub fn shape(what: impl Into<String>, expected: impl std::fmt::Display, got: impl std::fmt::Display) -> Self {
        Self::Shape { what: what.into(), expected: expected.to_string(), got: got.to_string() }
    }
}

/// The crate's result alias.
pub type Result<T> = std::result::Result<T, Error>;
