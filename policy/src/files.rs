//! Checks of the files a configuration names: certificates, CA bundles,
//! revocation lists, private keys, ticket keys and passwords. A service
//! that would fail at its first handshake is refused here instead.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// Why a named file is not usable.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("no PEM certificate in {path}")]
    NoCertificate { path: String },
    #[error("a certificate in {path} cannot be parsed: {reason}")]
    BadCertificate { path: String, reason: String },
    #[error("no CA certificate in {path} (none has basicConstraints CA:TRUE)")]
    NoCaCertificate { path: String },
    #[error("no certificate revocation list (PEM or DER) in {path}")]
    NoCrl { path: String },
    #[error("the CRL {path} is not signed by any CA certificate in {ca_path}")]
    CrlNotSignedByCa { path: String, ca_path: String },
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) in {path}")]
    NoPrivateKey { path: String },
    #[error(
        "line {line} of {path} is not a ticket key: 96 hex digits (a 16-byte name and a 32-byte key)"
    )]
    BadTicketKey { path: String, line: usize },
    #[error("no ticket key in {path}")]
    NoTicketKey { path: String },
    #[error(
        "the TCP-MD5 password in {path} must be 1 to 80 bytes (RFC 2385, TCP_MD5SIG_MAXKEYLEN)"
    )]
    BadMd5Password { path: String },
}

fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|source| FileError::Unreadable {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in a PEM file.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| FileError::BadCertificate {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(FileError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    for cert in &certs {
        X509Certificate::from_der(cert).map_err(|error| FileError::BadCertificate {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
    }
    Ok(certs)
}

/// A certificate chain to present: at least one parseable certificate.
pub fn check_certificate_chain(path: &Path) -> Result<(), FileError> {
    certificates(path).map(drop)
}

/// A CA bundle: parseable certificates, at least one of them a CA.
/// Returns them for checking revocation lists against.
pub fn check_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let certs = certificates(path)?;
    let has_ca = certs
        .iter()
        .any(|der| X509Certificate::from_der(der).is_ok_and(|(_, cert)| cert.is_ca()));
    if has_ca {
        Ok(certs)
    } else {
        Err(FileError::NoCaCertificate {
            path: path.display().to_string(),
        })
    }
}

/// A revocation list signed by one of the CA certificates in `cas`, which
/// were read from `ca_path`.
pub fn check_crl(
    path: &Path,
    cas: &[CertificateDer<'static>],
    ca_path: &Path,
) -> Result<(), FileError> {
    let bytes = read(path)?;
    let der = CertificateRevocationListDer::from_pem_slice(&bytes)
        .map_or_else(|_| bytes.clone(), |der| der.to_vec());
    let no_crl = || FileError::NoCrl {
        path: path.display().to_string(),
    };
    let (_, crl) = CertificateRevocationList::from_der(&der).map_err(|_| no_crl())?;
    let signed_by_a_ca = cas.iter().any(|der| {
        X509Certificate::from_der(der).is_ok_and(|(_, ca)| {
            ca.is_ca()
                && ca.subject() == crl.issuer()
                && crl
                    .verify_signature(&ca.tbs_certificate.subject_pki)
                    .is_ok()
        })
    });
    if signed_by_a_ca {
        Ok(())
    } else {
        Err(FileError::CrlNotSignedByCa {
            path: path.display().to_string(),
            ca_path: ca_path.display().to_string(),
        })
    }
}

/// A PEM private key.
pub fn check_private_key(path: &Path) -> Result<(), FileError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map(drop)
        .map_err(|_| FileError::NoPrivateKey {
            path: path.display().to_string(),
        })
}

/// Hex digits in one ticket key: a 16-byte key name and a 32-byte key.
const TICKET_KEY_HEX_DIGITS: usize = 2 * (16 + 32);

/// A ticket-key file: one key per line (blank lines and `#` comments
/// allowed), at least one key.
pub fn check_ticket_keys(path: &Path) -> Result<usize, FileError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut keys = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() != TICKET_KEY_HEX_DIGITS || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FileError::BadTicketKey {
                path: path.display().to_string(),
                line: index + 1,
            });
        }
        keys += 1;
    }
    if keys == 0 {
        return Err(FileError::NoTicketKey {
            path: path.display().to_string(),
        });
    }
    Ok(keys)
}

/// The longest TCP-MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
const MD5_MAX_KEY_LEN: usize = 80;

/// A TCP-MD5 password file: the password, optionally with a final newline.
pub fn check_md5_password(path: &Path) -> Result<(), FileError> {
    let bytes = read(path)?;
    let password = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if password.is_empty() || password.len() > MD5_MAX_KEY_LEN {
        return Err(FileError::BadMd5Password {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn lab_pki(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/lab/pki")
            .join(name)
    }

    /// A scratch file unique to this test process and `name`.
    fn scratch(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ixgate-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn lab_pki_passes() {
        let ca_path = lab_pki("bank-a-app-ca.pem");
        let cas = check_ca_bundle(&ca_path).unwrap();
        assert_eq!(cas.len(), 2, "root and intermediate");
        check_crl(&lab_pki("bank-a.crl.pem"), &cas, &ca_path).unwrap();
        check_certificate_chain(&lab_pki("bank-a-server.pem")).unwrap();
        check_private_key(&lab_pki("bank-a-server.key")).unwrap();
        assert_eq!(check_ticket_keys(&lab_pki("ticket.keys")).unwrap(), 2);
    }

    #[test]
    fn other_banks_crl_is_refused() {
        let ca_path = lab_pki("bank-a-app-ca.pem");
        let cas = check_ca_bundle(&ca_path).unwrap();
        let error = check_crl(&lab_pki("bank-b.crl.pem"), &cas, &ca_path).unwrap_err();
        assert!(
            matches!(error, FileError::CrlNotSignedByCa { .. }),
            "{error}"
        );
    }

    #[test]
    fn garbage_is_refused_with_the_right_reason() {
        let text = scratch("garbage.pem", b"not a certificate\n");
        assert!(matches!(
            check_ca_bundle(&text),
            Err(FileError::NoCertificate { .. })
        ));
        assert!(matches!(
            check_private_key(&text),
            Err(FileError::NoPrivateKey { .. })
        ));
        assert!(matches!(
            check_crl(&text, &[], &text),
            Err(FileError::NoCrl { .. })
        ));
        let leaf_only = lab_pki("bank-a-client-good.pem");
        assert!(matches!(
            check_ca_bundle(&leaf_only),
            Err(FileError::NoCaCertificate { .. })
        ));
    }

    #[test]
    fn ticket_keys_format() {
        let good = "ab".repeat(48);
        let path = scratch("tickets-ok", format!("# comment\n\n{good}\n").as_bytes());
        assert_eq!(check_ticket_keys(&path).unwrap(), 1);
        let path = scratch("tickets-short", format!("{good}\nabcd\n").as_bytes());
        assert!(matches!(
            check_ticket_keys(&path),
            Err(FileError::BadTicketKey { line: 2, .. })
        ));
        let path = scratch("tickets-empty", b"# nothing\n");
        assert!(matches!(
            check_ticket_keys(&path),
            Err(FileError::NoTicketKey { .. })
        ));
    }

    #[test]
    fn md5_password_length() {
        assert!(check_md5_password(&scratch("md5-ok", b"secret\n")).is_ok());
        assert!(check_md5_password(&scratch("md5-empty", b"\n")).is_err());
        assert!(check_md5_password(&scratch("md5-long", &[b'x'; 81])).is_err());
        assert!(check_md5_password(&scratch("md5-80", &[b'x'; 80])).is_ok());
    }
}
