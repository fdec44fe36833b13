//! The TLS side of a service: its rustls configuration, built from the
//! policy so that it cannot be built insecure, and why a handshake was
//! refused.
//!
//! Every service requires a client certificate that chains to that
//! bank's CAs (EKU clientAuth), checked against its revocation lists with
//! an unknown status and an expired list both refused (the lists'
//! signatures verified once, see [`crate::revocation`]). TLS 1.2 and 1.3
//! only; 0-RTT off (replayable requests to a bank are not acceptable);
//! tickets from [`crate::tickets`].

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use ixgate_policy::files::{self, FileError, TicketKey};
use ixgate_policy::node::Service;
use rustls::crypto::hash::HashAlgorithm;
use rustls::{CertificateError, ServerConfig, SupportedCipherSuite};

use crate::revocation;
use crate::tickets::{ServiceTicketer, TicketError};

/// ALPN, our preference first (RFC 7301).
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN of HTTP/3 (RFC 9114 §3.1).
pub const ALPN_H3: &[u8] = b"h3";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("service {service}: {message}")]
    Build { service: String, message: String },
    #[error("service {service}: {source}")]
    Tickets {
        service: String,
        source: TicketError,
    },
}

/// The crypto provider of every configuration: aws-lc-rs, with the cipher
/// suites whose hash is SHA-256 first (AES-128-GCM leads), the rest in
/// aws-lc-rs' order. The key schedule of every handshake runs on that
/// hash, and SHA-256 has CPU instructions where SHA-384 has none
/// (measured: SHA-384 blocks were 13 % of a resumed handshake's CPU).
/// AES-128-GCM with SHA-256 is TLS 1.3's mandatory suite, so every client
/// has it.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        let common = match suite {
            SupportedCipherSuite::Tls13(suite) => &suite.common,
            SupportedCipherSuite::Tls12(suite) => &suite.common,
        };
        common.hash_provider.algorithm() != HashAlgorithm::SHA256
    });
    Arc::new(provider)
}

/// The server configuration of `service` over TCP: TLS 1.3 and 1.2,
/// HTTP/2 and HTTP/1.1.
pub fn server_config(
    service: &Service,
    ticket_keys: &[TicketKey],
) -> Result<Arc<ServerConfig>, TlsError> {
    build(
        service,
        ticket_keys,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &ALPN,
    )
}

/// The server configuration of `service` over QUIC: TLS 1.3 (RFC 9001
/// §4.2) and HTTP/3; the same CAs, CRLs and ticket keys as over TCP.
pub fn quic_server_config(
    service: &Service,
    ticket_keys: &[TicketKey],
) -> Result<Arc<ServerConfig>, TlsError> {
    build(service, ticket_keys, &[&rustls::version::TLS13], &[ALPN_H3])
}

fn build(
    service: &Service,
    ticket_keys: &[TicketKey],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let build = |message: &dyn std::fmt::Display| TlsError::Build {
        service: service.name.to_string(),
        message: message.to_string(),
    };
    let cas = files::read_ca_bundle(&service.client_ca)?;
    let crls = service
        .crls
        .iter()
        .map(|crl| files::read_crl(crl, &cas, &service.client_ca))
        .collect::<Result<Vec<_>, _>>()?;
    let crl_digest = {
        let mut all = Vec::new();
        for crl in &crls {
            all.extend_from_slice(digest(&SHA256, crl.as_ref()).as_ref());
        }
        digest(&SHA256, &all)
    };
    let verifier = revocation::verifier(&cas, &crls).map_err(|error| build(&error))?;
    let chain = files::read_certificate_chain(&service.certificate)?;
    let key = files::read_private_key(&service.private_key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|error| build(&error))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|error| build(&error))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Our order of suites (see `provider`), whatever the client prefers.
    config.ignore_client_order = true;
    config.max_early_data_size = 0;
    // One ticket per handshake (rustls sends two by default): an app
    // resumes one connection at a time; each ticket costs a seal and a
    // record (resumed handshakes per CPU-second: about +5 %).
    config.send_tls13_tickets = 1;
    config.ticketer = Arc::new(
        ServiceTicketer::new(ticket_keys, service.name.as_str(), crl_digest.as_ref()).map_err(
            |source| TlsError::Tickets {
                service: service.name.to_string(),
                source,
            },
        )?,
    );
    Ok(Arc::new(config))
}

/// Why a connection was closed before a byte reached the bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// No SNI, or one no service answers to.
    UnknownSni,
    NoClientCertificate,
    /// Not signed by the bank's CAs (another bank's, or self-signed).
    UnknownCa,
    Revoked,
    Expired,
    NotYetValid,
    /// Not issued for client authentication (EKU).
    WrongPurpose,
    /// The bank's revocation list is past its nextUpdate: every client of
    /// that bank is refused until a fresh one is loaded.
    CrlExpired,
    RevocationUnknown,
    BadCertificate,
    /// An old TLS version, or nothing in common.
    Incompatible,
    /// The client gave up (its own alert).
    ClientAlert,
    Timeout,
    /// Anything else in the handshake.
    Protocol,
    /// Too many connections from this source.
    SourceLimit,
}

impl Refusal {
    pub const ALL: [Self; 15] = [
        Self::UnknownSni,
        Self::NoClientCertificate,
        Self::UnknownCa,
        Self::Revoked,
        Self::Expired,
        Self::NotYetValid,
        Self::WrongPurpose,
        Self::CrlExpired,
        Self::RevocationUnknown,
        Self::BadCertificate,
        Self::Incompatible,
        Self::ClientAlert,
        Self::Timeout,
        Self::Protocol,
        Self::SourceLimit,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownSni => "unknown_sni",
            Self::NoClientCertificate => "no_client_cert",
            Self::UnknownCa => "unknown_ca",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongPurpose => "wrong_purpose",
            Self::CrlExpired => "crl_expired",
            Self::RevocationUnknown => "revocation_unknown",
            Self::BadCertificate => "bad_certificate",
            Self::Incompatible => "incompatible",
            Self::ClientAlert => "client_alert",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::SourceLimit => "source_limit",
        }
    }

    /// The refusal a failed handshake's error stands for.
    pub fn of(error: &std::io::Error) -> Self {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map_or(Self::Protocol, Self::of_rustls)
    }

    /// The refusal a failed QUIC handshake stands for. quinn gives the TLS
    /// alert and rustls' words, not the error: the alert tells the kind,
    /// the words what the alert merges (expired or not yet valid, an
    /// unknown CA or revocation that cannot be told).
    pub fn of_quic(error: &quinn::ConnectionError) -> Self {
        use quinn::ConnectionError;
        match error {
            ConnectionError::TransportError(error) => {
                let code = u64::from(error.code);
                // Crypto errors are 0x100 + the TLS alert (RFC 9001 §4.8).
                let Some(alert) = code.checked_sub(0x100).filter(|alert| *alert <= 0xff) else {
                    return Self::Protocol;
                };
                let reason = error.reason.as_str();
                match alert {
                    116 => Self::NoClientCertificate,
                    44 => Self::Revoked,
                    45 if reason.contains("NotValidYet") || reason.contains("not valid yet") => {
                        Self::NotYetValid
                    }
                    45 => Self::Expired,
                    48 if reason.contains("RevocationList")
                        || reason.contains("revocation list expired") =>
                    {
                        Self::CrlExpired
                    }
                    48 if reason.contains("RevocationStatus") => Self::RevocationUnknown,
                    48 => Self::UnknownCa,
                    43 => Self::WrongPurpose,
                    40 | 70 | 120 => Self::Incompatible,
                    42 | 46 | 51 => Self::BadCertificate,
                    _ => Self::Protocol,
                }
            }
            ConnectionError::TimedOut => Self::Timeout,
            ConnectionError::ConnectionClosed(_) | ConnectionError::ApplicationClosed(_) => {
                Self::ClientAlert
            }
            _ => Self::Protocol,
        }
    }

    fn of_rustls(error: &rustls::Error) -> Self {
        match error {
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate,
            rustls::Error::InvalidCertificate(certificate) => match certificate {
                CertificateError::UnknownIssuer => Self::UnknownCa,
                CertificateError::Revoked => Self::Revoked,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => Self::WrongPurpose,
                CertificateError::ExpiredRevocationList
                | CertificateError::ExpiredRevocationListContext { .. } => Self::CrlExpired,
                CertificateError::UnknownRevocationStatus => Self::RevocationUnknown,
                _ => Self::BadCertificate,
            },
            rustls::Error::PeerIncompatible(_) => Self::Incompatible,
            rustls::Error::AlertReceived(_) => Self::ClientAlert,
            _ => Self::Protocol,
        }
    }
}

/// A fatal `unrecognized_name` alert (RFC 6066 §3) as a TLS 1.2 record:
/// what a client with an unknown SNI gets before the close.
pub const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

#[cfg(test)]
mod tests {
    use rustls::CipherSuite;

    use super::Refusal;

    /// How quinn reports rustls refusing a client: the alert as a crypto
    /// error code (RFC 9001 §4.8), rustls' words as the reason.
    fn refused_by_tls(alert: u8, reason: &str) -> quinn::ConnectionError {
        let mut error =
            quinn::ConnectionError::TransportError(quinn::TransportErrorCode::crypto(alert).into());
        if let quinn::ConnectionError::TransportError(transport) = &mut error {
            reason.clone_into(&mut transport.reason);
        }
        error
    }

    #[test]
    fn quic_refusals_are_told_apart_by_alert_and_words() {
        for (alert, reason, refusal) in [
            (
                116,
                "peer sent no certificates",
                Refusal::NoClientCertificate,
            ),
            (
                48,
                "invalid peer certificate: UnknownIssuer",
                Refusal::UnknownCa,
            ),
            (
                48,
                "invalid peer certificate: ExpiredRevocationList",
                Refusal::CrlExpired,
            ),
            (
                48,
                "invalid peer certificate: certificate revocation list expired",
                Refusal::CrlExpired,
            ),
            (44, "invalid peer certificate: Revoked", Refusal::Revoked),
            (
                45,
                "invalid peer certificate: certificate expired: verification time 2",
                Refusal::Expired,
            ),
            (
                45,
                "invalid peer certificate: certificate not valid yet: verification time 1",
                Refusal::NotYetValid,
            ),
            (
                43,
                "invalid peer certificate: InvalidPurpose",
                Refusal::WrongPurpose,
            ),
            (120, "no application protocol", Refusal::Incompatible),
        ] {
            assert_eq!(
                Refusal::of_quic(&refused_by_tls(alert, reason)),
                refusal,
                "{reason}"
            );
        }
        assert_eq!(
            Refusal::of_quic(&quinn::ConnectionError::TimedOut),
            Refusal::Timeout
        );
    }

    #[test]
    fn suites_hashed_with_sha256_lead_aes_128_gcm_first() {
        let suites: Vec<CipherSuite> = super::provider()
            .cipher_suites
            .iter()
            .map(rustls::SupportedCipherSuite::suite)
            .collect();
        assert_eq!(suites.first(), Some(&CipherSuite::TLS13_AES_128_GCM_SHA256));
        let first_sha384 = suites
            .iter()
            .position(|suite| *suite == CipherSuite::TLS13_AES_256_GCM_SHA384);
        let last_sha256 = suites
            .iter()
            .rposition(|suite| *suite == CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        assert!(first_sha384 > last_sha256, "{suites:?}");
    }
}
