//! How an instance and etcd trust each other: a user and password
//! ([`EtcdAuth`]) and TLS ([`EtcdTls`]), read once at start into what
//! every connection (the first and each reconnect) uses.

use crate::{FleetError, FleetOptions};
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest first line a password file may have.
const MAX_PASSWORD_LEN: u64 = 4096;

/// A password that never shows: its `Debug` is `Password(<redacted>)`,
/// it has no `Display`, and no error of this crate contains it.
///
/// ```
/// let password = hotpath_fleet::Password::new("s3cret");
/// assert_eq!(format!("{password:?}"), "Password(<redacted>)");
/// assert_eq!(password.expose(), "s3cret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// A password held in memory (from a secret store, say).
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password in `path`: its first line without the line ending
    /// (`\n` or `\r\n`); other whitespace is kept, since etcd passwords
    /// may hold spaces. The line must be non-empty UTF-8 of at most 4 KiB.
    ///
    /// # Errors
    ///
    /// [`FleetError::File`] ([`EtcdFile::Password`]) if the file cannot be
    /// read or its first line is empty, too long or not UTF-8; the error
    /// never contains the password.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("etcd-password");
    /// std::fs::write(&path, "correct horse\nignored\n")?;
    /// assert_eq!(hotpath_fleet::Password::from_file(&path)?.expose(), "correct horse");
    /// std::fs::write(&path, "\n")?;
    /// assert!(hotpath_fleet::Password::from_file(&path).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file(path: &Path) -> Result<Self, FleetError> {
        let refused = |reason: String| FleetError::File {
            file: EtcdFile::Password,
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| refused(e.to_string()))?;
        let mut line = Vec::new();
        BufReader::new(file.take(MAX_PASSWORD_LEN + 1))
            .read_until(b'\n', &mut line)
            .map_err(|e| refused(e.to_string()))?;
        let ended = line.last() == Some(&b'\n');
        if !ended && line.len() as u64 > MAX_PASSWORD_LEN {
            return Err(refused(format!(
                "its first line is longer than {MAX_PASSWORD_LEN} bytes"
            )));
        }
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(refused("empty: the password is its first line".into()));
        }
        let password = String::from_utf8(line.to_vec())
            .map_err(|_| refused("the password is not UTF-8 text".into()))?;
        Ok(Self(password))
    }

    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// etcd authentication: the user an instance logs in as (it needs no
/// more than read and write on the prefix `/hotpath/fleet/<NAME>/`). The
/// client logs in on every connection and again when etcd says the token
/// expired.
///
/// ```
/// use hotpath_fleet::{EtcdAuth, Password};
///
/// let auth = EtcdAuth { user: "hotpath".into(), password: Password::new("s3cret") };
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdAuth {
    /// The etcd user.
    pub user: String,
    /// Its password.
    pub password: Password,
}

/// TLS to etcd. TLS is on when [`FleetOptions::tls`] is set or an endpoint
/// is `https://`; then every endpoint must be `https://`. The files are
/// read once, at start: restart an instance after rotating them.
///
/// ```
/// let mut options = hotpath_fleet::FleetOptions::new("checkout", vec!["https://etcd-0:2379".into()]);
/// options.tls = Some(hotpath_fleet::EtcdTls {
///     ca: Some("/etc/hotpath/etcd-ca.pem".into()),
///     cert: Some("/etc/hotpath/client.pem".into()),
///     key: Some("/etc/hotpath/client-key.pem".into()),
/// });
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// The PEM bundle of the certificate authorities that verify etcd's
    /// certificate (it must name the endpoint's host or IP address);
    /// `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// The PEM client certificate (chain) this instance presents, for an
    /// etcd started with `--client-cert-auth`; with [`Self::key`], both or
    /// neither.
    pub cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    pub key: Option<PathBuf>,
}

/// Which of an instance's etcd files is meant (and the `hotpath serve`
/// flag that names it).
///
/// ```
/// assert_eq!(hotpath_fleet::EtcdFile::Ca.to_string(), "etcd CA bundle (--etcd-ca)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EtcdFile {
    /// The password file.
    Password,
    /// The CA bundle.
    Ca,
    /// The client certificate.
    Cert,
    /// The client certificate's private key.
    Key,
}

impl std::fmt::Display for EtcdFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password => "etcd password file (--etcd-password-file)",
            Self::Ca => "etcd CA bundle (--etcd-ca)",
            Self::Cert => "etcd client certificate (--etcd-cert)",
            Self::Key => "etcd client key (--etcd-key)",
        })
    }
}

/// Whether these options speak TLS to etcd.
pub(crate) fn tls_on(options: &FleetOptions) -> bool {
    options.tls.is_some() || options.endpoints.iter().any(|e| e.starts_with("https://"))
}

/// What every connection to etcd is made with, read once at start.
pub(crate) struct Security {
    auth: Option<EtcdAuth>,
    tls: Option<TlsOptions>,
}

impl Security {
    /// Reads the TLS files of `options` (already validated).
    ///
    /// # Errors
    ///
    /// [`FleetError::File`] naming the file that cannot be read or holds
    /// no certificate or key.
    pub(crate) fn load(options: &FleetOptions) -> Result<Self, FleetError> {
        if options.auth.is_some() && !tls_on(options) {
            tracing::warn!(
                "fleet: the etcd password travels unencrypted: use TLS (--etcd-ca, https://) unless etcd is on this machine"
            );
        }
        let tls = match tls_on(options) {
            false => None,
            true => Some(load_tls(options.tls.as_ref())?),
        };
        Ok(Self {
            auth: options.auth.clone(),
            tls,
        })
    }

    /// `connect` with the user and TLS set.
    pub(crate) fn apply(&self, connect: ConnectOptions) -> ConnectOptions {
        let connect = match &self.auth {
            Some(auth) => connect
                .with_user(auth.user.clone(), auth.password.expose())
                .with_auto_token_refresh(true),
            None => connect,
        };
        match &self.tls {
            Some(tls) => connect.with_tls(tls.clone()),
            None => connect,
        }
    }

    /// `error` as this crate reports it: a login etcd refused becomes
    /// [`FleetError::Auth`] (etcd says so in the message, with codes
    /// that other failures share); with TLS on, a failure to connect
    /// becomes [`FleetError::OverTls`], which says what to check.
    pub(crate) fn explain(&self, error: FleetError) -> FleetError {
        let FleetError::Etcd(etcd) = error else {
            return error;
        };
        let status = match &etcd {
            etcd_client::Error::GRpcStatus(status) => status,
            etcd_client::Error::TransportError(_) if self.tls.is_some() => {
                return FleetError::OverTls(etcd)
            }
            _ => return FleetError::Etcd(etcd),
        };
        let message = status.message();
        let auth = matches!(
            status.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ) || ["authentication", "user name is empty", "auth token"]
            .iter()
            .any(|m| message.contains(m));
        let unreachable = matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        );
        match (auth, unreachable && self.tls.is_some()) {
            (true, _) => FleetError::Auth {
                user: self.auth.as_ref().map(|a| a.user.clone()),
                reason: message.to_string(),
            },
            (false, true) => FleetError::OverTls(etcd),
            (false, false) => FleetError::Etcd(etcd),
        }
    }
}

fn load_tls(tls: Option<&EtcdTls>) -> Result<TlsOptions, FleetError> {
    let mut options = TlsOptions::new();
    let tls = tls.cloned().unwrap_or_default();
    options = match &tls.ca {
        Some(path) => options.ca_certificate(Certificate::from_pem(read_certificates(
            EtcdFile::Ca,
            path,
        )?)),
        None => options.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let cert = read_certificates(EtcdFile::Cert, cert)?;
        let key = read_key(key)?;
        options = options.identity(Identity::from_pem(cert, key));
    }
    Ok(options)
}

fn read(file: EtcdFile, path: &Path) -> Result<Vec<u8>, FleetError> {
    std::fs::read(path).map_err(|e| FleetError::File {
        file,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A PEM file's bytes once it holds at least one certificate and every
/// certificate in it parses.
fn read_certificates(file: EtcdFile, path: &Path) -> Result<Vec<u8>, FleetError> {
    let bytes = read(file, path)?;
    let mut found = false;
    for certificate in CertificateDer::pem_slice_iter(&bytes) {
        certificate.map_err(|e| pem_refused(file, path, &e))?;
        found = true;
    }
    match found {
        true => Ok(bytes),
        false => Err(pem_refused(file, path, &pem::Error::NoItemsFound)),
    }
}

/// A PEM file's bytes once it holds a private key (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<Vec<u8>, FleetError> {
    let bytes = read(EtcdFile::Key, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| pem_refused(EtcdFile::Key, path, &e))?;
    Ok(bytes)
}

/// Why a PEM file was refused, in words that quote none of its content
/// (a key file's lines are secret).
fn pem_refused(file: EtcdFile, path: &Path, error: &pem::Error) -> FleetError {
    let wanted = match file {
        EtcdFile::Key => "PRIVATE KEY",
        _ => "CERTIFICATE",
    };
    let reason = match error {
        pem::Error::NoItemsFound => format!("no PEM {wanted} in it"),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a malformed PEM BEGIN line".into(),
        pem::Error::Base64Decode(_) => "invalid base64 in a PEM section".into(),
        pem::Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "unreadable PEM".into(),
    };
    FleetError::File {
        file,
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    #[test]
    fn a_password_is_the_first_line_and_never_shown() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(&dir, "p", b" two words \r\nsecond line\n");
        let password = Password::from_file(&path).expect("read");
        assert_eq!(password.expose(), " two words ");
        let auth = EtcdAuth {
            user: "root".into(),
            password,
        };
        assert!(!format!("{auth:?}").contains("two words"));
        let path = write(&dir, "q", b"no newline");
        assert_eq!(
            Password::from_file(&path).expect("read").expose(),
            "no newline"
        );
    }

    #[test]
    fn an_unusable_password_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let refused = |path: &Path| match Password::from_file(path) {
            Err(e @ FleetError::File { file, .. }) => {
                assert_eq!(file, EtcdFile::Password);
                e.to_string()
            }
            other => panic!("not a file error: {other:?}"),
        };
        let missing = dir.path().join("missing");
        let text = refused(&missing);
        assert!(text.contains("--etcd-password-file") && text.contains("missing"));
        assert!(refused(&write(&dir, "empty", b"")).contains("empty"));
        assert!(refused(&write(&dir, "blank", b"\nsecret\n")).contains("empty"));
        let long = vec![b'x'; 5000];
        let text = refused(&write(&dir, "long", &long));
        assert!(text.contains("longer than 4096") && !text.contains("xxxx"));
        let text = refused(&write(&dir, "latin1", b"caf\xe9\n"));
        assert!(text.contains("not UTF-8"));
    }

    #[test]
    fn pem_files_without_what_they_should_hold_are_refused_without_quoting_them() {
        let dir = tempfile::tempdir().expect("dir");
        let not_pem = write(&dir, "ca", b"hello\n");
        let e = read_certificates(EtcdFile::Ca, &not_pem).expect_err("refused");
        assert!(
            e.to_string().contains("no PEM CERTIFICATE") && e.to_string().contains("--etcd-ca")
        );
        let broken = write(
            &dir,
            "key",
            b"-----BEGIN PRIVATE KEY-----\nsecretmaterial!!\n-----END PRIVATE KEY-----\n",
        );
        let e = read_key(&broken).expect_err("refused").to_string();
        assert!(
            e.contains("--etcd-key") && !e.contains("secretmaterial"),
            "{e}"
        );
        let unended = write(&dir, "cert", b"-----BEGIN CERTIFICATE-----\nAAAA\n");
        let e = read_certificates(EtcdFile::Cert, &unended).expect_err("refused");
        assert!(e.to_string().contains("no END line"), "{e}");
    }

    #[test]
    fn refusals_of_a_login_become_auth_errors_and_others_stay() {
        let security = Security {
            auth: Some(EtcdAuth {
                user: "root".into(),
                password: Password::new("pw"),
            }),
            tls: None,
        };
        let status = |code, message: &str| {
            FleetError::Etcd(etcd_client::Error::GRpcStatus(tonic::Status::new(
                code, message,
            )))
        };
        let failed = status(
            tonic::Code::InvalidArgument,
            "etcdserver: authentication failed, invalid user ID or password",
        );
        let text = security.explain(failed).to_string();
        assert!(
            text.contains("root") && text.contains("authentication failed"),
            "{text}"
        );
        let other = || status(tonic::Code::Unavailable, "connection closed");
        assert!(matches!(security.explain(other()), FleetError::Etcd(_)));
        let over_tls = Security {
            tls: Some(TlsOptions::new()),
            ..security
        };
        let text = over_tls.explain(other()).to_string();
        assert!(
            text.contains("over TLS") && text.contains("--etcd-cert"),
            "{text}"
        );
        let timeout = FleetError::Timeout(std::time::Duration::from_secs(1));
        assert!(matches!(over_tls.explain(timeout), FleetError::Timeout(_)));
    }
}
