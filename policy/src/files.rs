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
    #[error("the CRL {path} is not signed by any CA certificate in {ca_path} allowed to sign CRLs")]
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

/// Every certificate in a PEM file: a chain to present, at least one
/// parseable certificate.
pub fn read_certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
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

/// A CA bundle: parseable certificates, at least one of them a CA.
pub fn read_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let certs = read_certificate_chain(path)?;
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

/// A revocation list (PEM or DER) signed by one of the CA certificates in
/// `cas`, which were read from `ca_path`; returned as DER.
pub fn read_crl(
    path: &Path,
    cas: &[CertificateDer<'static>],
    ca_path: &Path,
) -> Result<CertificateRevocationListDer<'static>, FileError> {
    let bytes = read(path)?;
    let der = CertificateRevocationListDer::from_pem_slice(&bytes)
        .map_or_else(|_| bytes.clone(), |der| der.to_vec());
    let no_crl = || FileError::NoCrl {
        path: path.display().to_string(),
    };
    let (_, crl) = CertificateRevocationList::from_der(&der).map_err(|_| no_crl())?;
    let signed_by_a_ca = cas.iter().any(|der| {
        X509Certificate::from_der(der).is_ok_and(|(_, ca)| {
            // RFC 5280 §4.2.1.3: a CA whose key usage leaves out
            // cRLSign may not sign revocation lists.
            ca.is_ca()
                && match ca.key_usage() {
                    Ok(None) => true,
                    Ok(Some(usage)) => usage.value.crl_sign(),
                    Err(_) => false,
                }
                && ca.subject() == crl.issuer()
                && crl
                    .verify_signature(&ca.tbs_certificate.subject_pki)
                    .is_ok()
        })
    });
    if signed_by_a_ca {
        Ok(CertificateRevocationListDer::from(der))
    } else {
        Err(FileError::CrlNotSignedByCa {
            path: path.display().to_string(),
            ca_path: ca_path.display().to_string(),
        })
    }
}

/// A PEM private key.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| FileError::NoPrivateKey {
        path: path.display().to_string(),
    })
}

/// One session-ticket key of the shared ticket-key file.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKey {
    /// Names the key inside each ticket, so any node finds the key.
    pub name: [u8; 16],
    /// AES-256-GCM key material.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for TicketKey {
    /// The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Hex digits in one ticket key: a 16-byte key name and a 32-byte key.
const TICKET_KEY_HEX_DIGITS: usize = 2 * (16 + 32);

/// A ticket-key file: one key per line (blank lines and `#` comments
/// allowed), at least one key; the first encrypts new tickets.
pub fn read_ticket_keys(path: &Path) -> Result<Vec<TicketKey>, FileError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || FileError::BadTicketKey {
            path: path.display().to_string(),
            line: index + 1,
        };
        if line.len() != TICKET_KEY_HEX_DIGITS {
            return Err(bad());
        }
        let mut raw = [0_u8; TICKET_KEY_HEX_DIGITS / 2];
        for (byte, pair) in raw.iter_mut().zip(line.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        let (name, secret) = raw.split_at(16);
        keys.push(TicketKey {
            name: name.try_into().map_err(|_| bad())?,
            secret: secret.try_into().map_err(|_| bad())?,
        });
    }
    if keys.is_empty() {
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
        let cas = read_ca_bundle(&ca_path).unwrap();
        assert_eq!(cas.len(), 2, "root and intermediate");
        read_crl(&lab_pki("bank-a.crl.pem"), &cas, &ca_path).unwrap();
        read_certificate_chain(&lab_pki("bank-a-server.pem")).unwrap();
        read_private_key(&lab_pki("bank-a-server.key")).unwrap();
        assert_eq!(read_ticket_keys(&lab_pki("ticket.keys")).unwrap().len(), 2);
    }

    #[test]
    fn other_banks_crl_is_refused() {
        let ca_path = lab_pki("bank-a-app-ca.pem");
        let cas = read_ca_bundle(&ca_path).unwrap();
        let error = read_crl(&lab_pki("bank-b.crl.pem"), &cas, &ca_path).unwrap_err();
        assert!(
            matches!(error, FileError::CrlNotSignedByCa { .. }),
            "{error}"
        );
    }

    #[test]
    fn garbage_is_refused_with_the_right_reason() {
        let text = scratch("garbage.pem", b"not a certificate\n");
        assert!(matches!(
            read_ca_bundle(&text),
            Err(FileError::NoCertificate { .. })
        ));
        assert!(matches!(
            read_private_key(&text),
            Err(FileError::NoPrivateKey { .. })
        ));
        assert!(matches!(
            read_crl(&text, &[], &text),
            Err(FileError::NoCrl { .. })
        ));
        let leaf_only = lab_pki("bank-a-client-good.pem");
        assert!(matches!(
            read_ca_bundle(&leaf_only),
            Err(FileError::NoCaCertificate { .. })
        ));
    }

    #[test]
    fn ticket_keys_format() {
        let good = "ab".repeat(48);
        let path = scratch("tickets-ok", format!("# comment\n\n{good}\n").as_bytes());
        let keys = read_ticket_keys(&path).unwrap();
        assert_eq!(
            keys,
            vec![TicketKey {
                name: [0xab; 16],
                secret: [0xab; 32]
            }]
        );
        let path = scratch(
            "tickets-not-hex",
            format!("{}\n", "zz".repeat(48)).as_bytes(),
        );
        assert!(matches!(
            read_ticket_keys(&path),
            Err(FileError::BadTicketKey { line: 1, .. })
        ));
        let path = scratch("tickets-short", format!("{good}\nabcd\n").as_bytes());
        assert!(matches!(
            read_ticket_keys(&path),
            Err(FileError::BadTicketKey { line: 2, .. })
        ));
        let path = scratch("tickets-empty", b"# nothing\n");
        assert!(matches!(
            read_ticket_keys(&path),
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
