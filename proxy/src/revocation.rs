//! Revocation of app certificates against the bank's revocation lists,
//! their signatures verified once, when the service is built.
//!
//! webpki verifies a CRL's signature on every handshake that consults it
//! (webpki#81): one ECDSA verification, measured at a fifth of a full
//! mTLS handshake's CPU here (`cargo bench --bench proxy`). A service's
//! lists are already verified when it is built ([`files::read_crl`]:
//! signed by one of the bank's CAs, which may sign CRLs), so a handshake
//! only has to find its certificates' serials. The rules are those the
//! service had with webpki:
//! - every certificate of the chain below the bank's CAs is checked, not
//!   only the app's (webpki's `RevocationCheckDepth::Chain`);
//! - a certificate whose issuer has no list is refused
//!   (`UnknownStatusPolicy::Deny`);
//! - a list past its nextUpdate is refused (`enforce_revocation_expiration`);
//! - a list is its issuer's when the names match and, where both say
//!   which key signed them (authority key identifier), the keys match;
//! - one difference: several lists of one issuer count together (revoked
//!   in any is revoked, one still current is enough) where webpki took
//!   the first, so a stale list loaded first no longer refuses everyone.
//!
//! Where a list's key is not told by its name alone, webpki's own check
//! (every list's signature verified per handshake) decides instead:
//! - a service whose lists include one with an issuing distribution point
//!   (a partitioned CRL, with scope rules this check does not apply), or
//!   whose CAs share a name (a re-keyed CA beside the old one);
//! - a handshake in which the app sends a certificate bearing a bank CA's
//!   name that is not that CA's own (a cross-signed or re-keyed CA): the
//!   chain may run through it.
//!
//! Otherwise every CA name is one key, and [`files::read_crl`] verified
//! each list with the key of the CA of its name, which may sign lists.
//!
//! [`files::read_crl`]: ixgate_policy::files::read_crl

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT;
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate, X509Extension};

use crate::tls::provider;

/// Why a service's verifier cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("a CRL cannot be parsed")]
    Unparsable,
    #[error("a CRL has no nextUpdate (RFC 5280 §5.1.2.5)")]
    NoNextUpdate,
    #[error("{0}")]
    Verifier(String),
}

/// One issuer's list.
#[derive(Debug)]
struct List {
    /// The key that signed it, when the list names it.
    key_id: Option<Vec<u8>>,
    /// Seconds since the epoch.
    next_update: u64,
    revoked: HashSet<Vec<u8>>,
}

/// A service's revocation lists by issuer name (DER).
#[derive(Debug)]
struct RevocationLists {
    by_issuer: HashMap<Vec<u8>, Vec<List>>,
}

impl RevocationLists {
    /// The lists, already verified as the bank's; `None` when one has an
    /// issuing distribution point (see the module's comment).
    fn new(crls: &[CertificateRevocationListDer<'_>]) -> Result<Option<Self>, ListError> {
        let mut by_issuer: HashMap<Vec<u8>, Vec<List>> = HashMap::new();
        for der in crls {
            let (_, crl) = CertificateRevocationList::from_der(der.as_ref())
                .map_err(|_| ListError::Unparsable)?;
            // By its OID: parsed or not, its scope applies.
            if crl
                .extensions()
                .iter()
                .any(|extension| extension.oid == OID_X509_EXT_ISSUER_DISTRIBUTION_POINT)
            {
                return Ok(None);
            }
            let next_update = crl.next_update().ok_or(ListError::NoNextUpdate)?;
            let list = List {
                key_id: key_id(crl.extensions()),
                next_update: u64::try_from(next_update.timestamp()).unwrap_or(0),
                revoked: crl
                    .iter_revoked_certificates()
                    .map(|revoked| serial(revoked.raw_serial()))
                    .collect(),
            };
            by_issuer
                .entry(crl.issuer().as_raw().to_vec())
                .or_default()
                .push(list);
        }
        Ok(Some(Self { by_issuer }))
    }

    /// Whether `certificate` is not revoked at `now`. Several lists of one
    /// issuer count together: revoked in any is revoked, and one list
    /// still current is enough.
    fn check(
        &self,
        certificate: &X509Certificate<'_>,
        now: UnixTime,
    ) -> Result<(), CertificateError> {
        let key = key_id(certificate.extensions());
        let lists: Vec<&List> = self
            .by_issuer
            .get(certificate.issuer().as_raw())
            .into_iter()
            .flatten()
            .filter(|list| match (&list.key_id, &key) {
                (Some(signed_by), Some(issued_by)) => signed_by == issued_by,
                _ => true,
            })
            .collect();
        if lists.is_empty() {
            return Err(CertificateError::UnknownRevocationStatus);
        }
        let serial = serial(certificate.raw_serial());
        if lists.iter().any(|list| list.revoked.contains(&serial)) {
            return Err(CertificateError::Revoked);
        }
        if lists.iter().all(|list| now.as_secs() >= list.next_update) {
            return Err(CertificateError::ExpiredRevocationList);
        }
        Ok(())
    }
}

/// A serial's bytes without leading zeros: a list and a certificate that
/// encode one number apart still match.
fn serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|&byte| byte != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, CertificateError> {
    X509Certificate::from_der(der.as_ref())
        .map(|(_, parsed)| parsed)
        .map_err(|_| CertificateError::BadEncoding)
}

/// The authority key identifier's key id, when there is one.
fn key_id(extensions: &[X509Extension<'_>]) -> Option<Vec<u8>> {
    extensions
        .iter()
        .find_map(|extension| match extension.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
}

/// The client-certificate verifier of a service with the CAs `cas` and
/// the lists `crls` (verified as the bank's, see [`files::read_crl`]).
pub fn verifier(
    cas: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Arc<dyn ClientCertVerifier>, ListError> {
    let rustls = |error: &dyn std::fmt::Display| ListError::Verifier(error.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(|error| rustls(&error))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    // Built in any case: webpki parses the lists as it would check them,
    // and a list it refuses, the service refuses.
    let webpki_checked = builder
        .clone()
        .with_crls(crls.iter().cloned())
        .enforce_revocation_expiration()
        .build()
        .map_err(|error| rustls(&error))?;
    let chain_only = builder.build().map_err(|error| rustls(&error))?;
    if crls.is_empty() {
        // No lists: webpki checks no revocation either.
        return Ok(webpki_checked);
    }
    let names: Vec<Vec<u8>> = cas
        .iter()
        .filter_map(|ca| X509Certificate::from_der(ca.as_ref()).ok())
        .map(|(_, ca)| ca.subject().as_raw().to_vec())
        .collect();
    let anchors: HashSet<Vec<u8>> = names.iter().cloned().collect();
    if anchors.len() < names.len() {
        return Ok(webpki_checked);
    }
    Ok(match RevocationLists::new(crls)? {
        Some(lists) => Arc::new(RevocationChecked {
            chain: chain_only,
            webpki_checked,
            lists,
            anchors,
            cas: cas.iter().map(|ca| ca.as_ref().to_vec()).collect(),
        }),
        None => webpki_checked,
    })
}

/// The bank's chain check (webpki, without lists) followed by the
/// revocation check of every certificate below the bank's CAs.
#[derive(Debug)]
struct RevocationChecked {
    chain: Arc<dyn ClientCertVerifier>,
    /// For the handshakes whose lists' keys the names do not tell.
    webpki_checked: Arc<dyn ClientCertVerifier>,
    lists: RevocationLists,
    /// Subject names (DER) of the bank's CAs, one key each: where the
    /// chain ends.
    anchors: HashSet<Vec<u8>>,
    /// The bank's CA certificates (DER), which apps may send along.
    cas: HashSet<Vec<u8>>,
}

impl RevocationChecked {
    /// Walks from the app's certificate up the intermediates it sent,
    /// the way webpki builds the chain (a bank's CA first), checking each
    /// until one is issued by a bank's CA.
    fn check_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[X509Certificate<'_>],
        now: UnixTime,
    ) -> Result<(), CertificateError> {
        let end_entity = parse(end_entity)?;
        let mut current = &end_entity;
        // Each intermediate at most once: a chain cannot loop.
        let mut unused: Vec<&X509Certificate<'_>> = intermediates.iter().collect();
        loop {
            self.lists.check(current, now)?;
            if self.anchors.contains(current.issuer().as_raw()) {
                return Ok(());
            }
            let Some(index) = unused
                .iter()
                .position(|candidate| candidate.subject() == current.issuer())
            else {
                // webpki found a chain, so this does not happen; refuse
                // rather than pass unchecked.
                return Err(CertificateError::UnknownRevocationStatus);
            };
            current = unused.swap_remove(index);
        }
    }
}

impl ClientCertVerifier for RevocationChecked {
    fn offer_client_auth(&self) -> bool {
        self.chain.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // One the app sent that does not parse is on no chain webpki built.
        let sent: Vec<X509Certificate<'_>> = intermediates
            .iter()
            .filter_map(|der| parse(der).ok())
            .collect();
        // A bank CA's own certificate sent along is that CA; another with
        // its name may hold another key.
        if sent.iter().any(|certificate| {
            self.anchors.contains(certificate.subject().as_raw())
                && !self.cas.contains(certificate.as_raw())
        }) {
            return self
                .webpki_checked
                .verify_client_cert(end_entity, intermediates, now);
        }
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        self.check_chain(end_entity, &sent, now)
            .map_err(rustls::Error::InvalidCertificate)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
