//! The bearer token that guards the writing endpoints.
//!
//! The token is kept only as its SHA-256: a presented token is hashed and
//! the two digests compared in constant time ([`subtle`]), so neither the
//! comparison's time nor a memory dump tells the token. `Debug` never
//! shows it, and nothing here logs it.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The name of the generated token file inside the data directory.
pub const TOKEN_FILE: &str = "token";

/// Shortest token accepted from a file, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a token could not be read or made.
///
/// ```
/// use hotpath_server::{Token, TokenError};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("short");
/// std::fs::write(&path, "abc\n")?;
/// assert!(matches!(Token::from_file(&path), Err(TokenError::Invalid { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file could not be read or written.
    #[error("token file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a usable token.
    #[error("token file {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the token).
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate a token: {0}")]
    Random(String),
}

/// A bearer token, held as its hash.
///
/// ```
/// use hotpath_server::Token;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("token");
/// std::fs::write(&path, "correct-horse-battery-staple\n")?;
/// let token = Token::from_file(&path)?;
/// assert!(token.matches(b"correct-horse-battery-staple"));
/// assert!(!token.matches(b"correct-horse-battery-stapler"));
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Token {
    hash: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token `secret` (for embedding; a service reads a file).
    ///
    /// ```
    /// assert!(hotpath_server::Token::new("s3cret-s3cret-s3cret").matches(b"s3cret-s3cret-s3cret"));
    /// ```
    pub fn new(secret: &str) -> Self {
        Self {
            hash: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// `true` if `presented` is the token (constant time in its content).
    ///
    /// ```
    /// assert!(!hotpath_server::Token::new("a-token-of-sixteen").matches(b""));
    /// ```
    pub fn matches(&self, presented: &[u8]) -> bool {
        let hash: [u8; 32] = Sha256::digest(presented).into();
        hash.ct_eq(&self.hash).into()
    }

    /// Reads the token from `path`: its first line, surrounding whitespace
    /// removed; at least [`MIN_TOKEN_LEN`] visible ASCII characters.
    ///
    /// # Errors
    ///
    /// [`TokenError::Io`] if the file cannot be read,
    /// [`TokenError::Invalid`] if it holds no usable token.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("t");
    /// std::fs::write(&path, "  0123456789abcdef0123  \n")?;
    /// assert!(hotpath_server::Token::from_file(&path)?.matches(b"0123456789abcdef0123"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read(path).map_err(|source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: &str| TokenError::Invalid {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let secret = std::str::from_utf8(line.trim_ascii())
            .map_err(|_| invalid("the token is not UTF-8 text"))?;
        if secret.len() < MIN_TOKEN_LEN {
            return Err(invalid(&format!(
                "the token must be at least {MIN_TOKEN_LEN} characters"
            )));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("the token must be visible ASCII without spaces"));
        }
        Ok(Self::new(secret))
    }

    /// The token in `path` if the file exists (it must not be readable by
    /// group or others), otherwise a new random one (32 bytes from the
    /// operating system's generator, as 64 hex digits) written there with
    /// mode 0600 (a temporary file renamed into place).
    ///
    /// # Errors
    ///
    /// [`TokenError::Random`] if the generator fails, [`TokenError::Io`]
    /// if the file cannot be read or written, [`TokenError::Invalid`] for
    /// an existing file that is readable by others or holds no usable
    /// token.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("token");
    /// let made = hotpath_server::Token::load_or_generate(&path)?;
    /// let secret = std::fs::read_to_string(&path)?;
    /// assert_eq!(secret.trim().len(), 64);
    /// assert!(made.matches(secret.trim().as_bytes()));
    /// let again = hotpath_server::Token::load_or_generate(&path)?; // reused
    /// assert!(again.matches(secret.trim().as_bytes()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_or_generate(path: &Path) -> Result<Self, TokenError> {
        match std::fs::metadata(path) {
            Ok(meta) => {
                check_private(path, &meta)?;
                Self::from_file(path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::generate(path),
            Err(source) => Err(TokenError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn generate(path: &Path) -> Result<Self, TokenError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let io = |source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp = path.with_extension("tmp");
        let mut file = private_file(&tmp).map_err(io)?;
        file.write_all(secret.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = dir {
            // The rename is durable once the directory is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(Self::new(&secret))
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing temporary file keeps its mode: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), TokenError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "it is readable by others (mode {mode:o}); `chmod 600` it or remove it to have a new one made"
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<(), TokenError> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_token_is_private_and_an_open_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(TOKEN_FILE);
        Token::load_or_generate(&path).expect("generated");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = Token::load_or_generate(&path).expect_err("readable by others");
        assert!(e.to_string().contains("readable by others"), "{e}");
    }
}
