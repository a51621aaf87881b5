//! mosquitto's password file, read and written as `mosquitto_passwd` does.
//!
//! One `user:hash` per line; empty lines and lines starting with `#` are skipped. Two hash
//! forms are understood:
//! - `$7$ITERATIONS$SALT$HASH` (mosquitto 2.0's default): PBKDF2-HMAC-SHA512 of the password
//!   with SALT, ITERATIONS rounds, 64 bytes;
//! - `$6$SALT$HASH` (older files): SHA-512 over the password then the salt bytes.
//!
//! SALT and HASH are standard base64. Passwords are compared in constant time.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Rounds `mosquitto_passwd` uses, and so does [`hash_line`].
pub const ITERATIONS: u32 = 101;

/// Salt bytes `mosquitto_passwd` uses.
const SALT_LEN: usize = 12;

/// A password file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// The file could not be read.
    #[error("cannot read password file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `user:hash` with a hash Weir understands.
    #[error("{path}:{line}:{column}: {what}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column of the offending part.
        column: usize,
        /// What is wrong.
        what: String,
    },
}

/// One user's stored password.
#[derive(Clone, PartialEq, Eq)]
enum Stored {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512 over password then salt.
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
}

impl Stored {
    fn matches(&self, password: &[u8]) -> bool {
        match self {
            Stored::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                let mut derived = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut derived);
                bool::from(derived.ct_eq(hash))
            }
            Stored::Sha512 { salt, hash } => {
                let mut digest = Sha512::new();
                digest.update(password);
                digest.update(salt);
                bool::from(digest.finalize().as_slice().ct_eq(hash))
            }
        }
    }
}

/// The users of a password file and their hashes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: HashMap<String, Stored>,
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("PasswordFile")
            .field("users", &users)
            .finish()
    }
}

impl PasswordFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<PasswordFile, PasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswdError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PasswordFile::parse(&text, path)
    }

    /// Parses `text`, naming `path` in errors.
    ///
    /// ```
    /// use weir_door::security::passwd::{hash_line, PasswordFile};
    /// use std::path::Path;
    /// let text = format!("# users\n{}\n", hash_line("alice", "secret"));
    /// let file = PasswordFile::parse(&text, Path::new("passwd")).unwrap();
    /// assert_eq!(file.verify("alice", b"secret"), Some(true));
    /// assert_eq!(file.verify("alice", b"guess"), Some(false));
    /// assert_eq!(file.verify("bob", b"secret"), None);
    /// let bad = PasswordFile::parse("alice:plain\n", Path::new("passwd")).unwrap_err();
    /// assert!(bad.to_string().starts_with("passwd:1:7: "), "{bad}");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<PasswordFile, PasswdError> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |column: usize, what: String| PasswdError::Line {
                path: path.to_path_buf(),
                line: index + 1,
                column,
                what,
            };
            let Some((user, hash)) = line.split_once(':') else {
                return Err(error(1, "expected `user:hash`".into()));
            };
            if user.is_empty() {
                return Err(error(1, "empty user name".into()));
            }
            let stored = parse_hash(hash).map_err(|what| error(user.len() + 2, what))?;
            users.insert(user.to_string(), stored);
        }
        Ok(PasswordFile { users })
    }

    /// Whether `password` is `user`'s (`None`: no such user).
    pub fn verify(&self, user: &str, password: &[u8]) -> Option<bool> {
        self.users.get(user).map(|stored| stored.matches(password))
    }

    /// Whether the file lists no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }
}

fn parse_hash(hash: &str) -> Result<Stored, String> {
    let decode = |what: &str, text: &str| {
        BASE64
            .decode(text)
            .map_err(|e| format!("the {what} is not base64 ({e})"))
    };
    let parts: Vec<&str> = hash.split('$').collect();
    match parts.as_slice() {
        ["", "7", iterations, salt, digest] => {
            let iterations = iterations
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("`{iterations}` is not a number of iterations"))?;
            let hash = decode("hash", digest)?;
            if hash.len() != 64 {
                return Err(format!("a $7$ hash has 64 bytes, this one {}", hash.len()));
            }
            Ok(Stored::Pbkdf2 {
                iterations,
                salt: decode("salt", salt)?,
                hash,
            })
        }
        ["", "6", salt, digest] => {
            let hash = decode("hash", digest)?;
            if hash.len() != 64 {
                return Err(format!("a $6$ hash has 64 bytes, this one {}", hash.len()));
            }
            Ok(Stored::Sha512 {
                salt: decode("salt", salt)?,
                hash,
            })
        }
        _ => Err(
            "expected a hash written by mosquitto_passwd or `weir passwd` ($7$... or $6$...); \
             plain-text passwords are not accepted"
                .into(),
        ),
    }
}

/// A password file line for `user` with `password`, hashed as `mosquitto_passwd` does
/// (`$7$`, PBKDF2-HMAC-SHA512, 101 rounds, a random 12-byte salt).
pub fn hash_line(user: &str, password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).expect("the system's random source");
    let mut hash = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, ITERATIONS, &mut hash);
    format!(
        "{user}:$7${ITERATIONS}${}${}",
        BASE64.encode(salt),
        BASE64.encode(hash)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_sha512_form_is_understood() {
        let salt = b"0123456789ab";
        let mut digest = Sha512::new();
        digest.update(b"pw");
        digest.update(salt);
        let line = format!(
            "old:$6${}${}",
            BASE64.encode(salt),
            BASE64.encode(digest.finalize())
        );
        let file = PasswordFile::parse(&line, Path::new("p")).unwrap();
        assert_eq!(file.verify("old", b"pw"), Some(true));
        assert_eq!(file.verify("old", b"pw2"), Some(false));
    }

    #[test]
    fn bad_lines_are_located() {
        let text = "alice:$7$101$c2FsdA==$c2hvcnQ=\n";
        let error = PasswordFile::parse(text, Path::new("pw")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "pw:1:7: a $7$ hash has 64 bytes, this one 5"
        );
        let error = PasswordFile::parse("\n#c\nnocolon\n", Path::new("pw")).unwrap_err();
        assert_eq!(error.to_string(), "pw:3:1: expected `user:hash`");
    }

    #[test]
    fn a_written_line_reads_back() {
        let line = hash_line("u", "p");
        assert!(line.starts_with("u:$7$101$"));
        let file = PasswordFile::parse(&line, Path::new("p")).unwrap();
        assert_eq!(file.verify("u", b"p"), Some(true));
    }
}
