//! The test PKI: every certificate a lab needs, good and bad, written as
//! PEM files into one directory.
//!
//! Per bank: an app root CA and an intermediate that signs the app's client
//! certificates, a CRL from the intermediate, and clients that are good,
//! expired, not yet valid, revoked, for the wrong purpose (serverAuth only)
//! or self-signed; and one good today that the bank's next CRL
//! (`{bank}.crl-next.pem`) revokes, for reload and resumption tests; and
//! the CRLs of the whole chain in one file (`{bank}.crl-chain.pem`), as
//! OpenSSL-based proxies want them. Also a CA for ixgate's server certificates (one per
//! SNI), an origin CA with a certificate per bank origin, and a ticket-key
//! file.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// The banks of the lab; each gets its own app CA.
pub const BANKS: [&str; 2] = ["bank-a", "bank-b"];

/// The client certificates made for each bank, by file-name suffix.
pub const CLIENT_KINDS: [&str; 7] = [
    "good",
    "revoked-later",
    "expired",
    "not-yet-valid",
    "revoked",
    "wrong-eku",
    "self-signed",
];

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read random bytes: {0}")]
    Random(std::io::Error),
}

struct Writer<'a> {
    dir: &'a Path,
}

impl Writer<'_> {
    fn file(&self, name: &str, contents: &str) -> Result<(), PkiError> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).map_err(|source| PkiError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    fn cert_and_key(&self, stem: &str, cert_pem: &str, key: &KeyPair) -> Result<(), PkiError> {
        self.file(&format!("{stem}.pem"), cert_pem)?;
        self.file(&format!("{stem}.key"), &key.serialize_pem())
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ixgate test PKI");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(common_name: &str, path_len: Option<u8>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(path_len.map_or(
        BasicConstraints::Unconstrained,
        BasicConstraints::Constrained,
    ));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(
    common_name: &str,
    dns_names: &[&str],
    purpose: ExtendedKeyUsagePurpose,
    serial: u64,
) -> Result<CertificateParams, PkiError> {
    let mut params =
        CertificateParams::new(dns_names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name = name(common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    params.serial_number = Some(SerialNumber::from(serial));
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Writes the whole test PKI into `dir` (which must exist).
pub fn generate(dir: &Path) -> Result<(), PkiError> {
    let out = Writer { dir };
    let now = OffsetDateTime::now_utc();

    // ixgate's server certificates, one per bank SNI, under one CA the
    // apps trust.
    let server_ca =
        CertifiedIssuer::self_signed(ca_params("ixgate edge CA", Some(0)), KeyPair::generate()?)?;
    out.file("server-ca.pem", &server_ca.pem())?;
    let origin_ca =
        CertifiedIssuer::self_signed(ca_params("bank origins CA", Some(0)), KeyPair::generate()?)?;
    out.file("origin-ca.pem", &origin_ca.pem())?;

    for (index, bank) in BANKS.iter().enumerate() {
        let serial_base = 1000 * (index as u64 + 1);
        let key = KeyPair::generate()?;
        let params = leaf_params(
            &format!("api.{bank}.example"),
            &[&format!("api.{bank}.example")],
            ExtendedKeyUsagePurpose::ServerAuth,
            serial_base + 1,
        )?;
        out.cert_and_key(
            &format!("{bank}-server"),
            &params.signed_by(&key, &server_ca)?.pem(),
            &key,
        )?;

        let key = KeyPair::generate()?;
        let params = leaf_params(
            &format!("origin.{bank}.example"),
            &[&format!("origin.{bank}.example")],
            ExtendedKeyUsagePurpose::ServerAuth,
            serial_base + 2,
        )?;
        out.cert_and_key(
            &format!("{bank}-origin"),
            &params.signed_by(&key, &origin_ca)?.pem(),
            &key,
        )?;

        bank_app_pki(&out, bank, serial_base + 100, now)?;
    }

    out.file("ticket.keys", &ticket_keys()?)
}

/// A bank's app CA hierarchy, its CRL and its client certificates.
fn bank_app_pki(
    out: &Writer<'_>,
    bank: &str,
    serial_base: u64,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let root = CertifiedIssuer::self_signed(
        ca_params(&format!("{bank} app root CA"), Some(1)),
        KeyPair::generate()?,
    )?;
    let intermediate_params = ca_params(&format!("{bank} app issuing CA"), Some(0));
    let intermediate =
        CertifiedIssuer::signed_by(intermediate_params, KeyPair::generate()?, &root)?;
    // The service's client_ca bundle: root and intermediate.
    out.file(
        &format!("{bank}-app-ca.pem"),
        &format!("{}{}", root.pem(), intermediate.pem()),
    )?;

    let client = |kind: &str, serial: u64| -> Result<CertificateParams, PkiError> {
        leaf_params(
            &format!("{bank} app {kind}"),
            &[&format!("{kind}.app.{bank}.example")],
            ExtendedKeyUsagePurpose::ClientAuth,
            serial,
        )
    };
    let mut revoked_serial = None;
    let mut revoked_later_serial = None;
    for (offset, kind) in (1..).zip(CLIENT_KINDS) {
        let serial = serial_base + offset;
        let key = KeyPair::generate()?;
        let mut params = client(kind, serial)?;
        let cert = match kind {
            "expired" => {
                params.not_before = now - Duration::days(30);
                params.not_after = now - Duration::days(1);
                params.signed_by(&key, &intermediate)?
            }
            "not-yet-valid" => {
                params.not_before = now + Duration::days(3650);
                params.not_after = now + Duration::days(7300);
                params.signed_by(&key, &intermediate)?
            }
            "revoked" => {
                revoked_serial = Some(serial);
                params.signed_by(&key, &intermediate)?
            }
            "revoked-later" => {
                revoked_later_serial = Some(serial);
                params.signed_by(&key, &intermediate)?
            }
            "wrong-eku" => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.signed_by(&key, &intermediate)?
            }
            "self-signed" => {
                params.use_authority_key_identifier_extension = false;
                params.self_signed(&key)?
            }
            _ => params.signed_by(&key, &intermediate)?,
        };
        out.cert_and_key(&format!("{bank}-client-{kind}"), &cert.pem(), &key)?;
    }

    let issuer: &Issuer<'_, KeyPair> = &intermediate;
    let revoked_now: Vec<u64> = revoked_serial.into_iter().collect();
    let current = crl(1, &revoked_now, now).signed_by(issuer)?.pem()?;
    out.file(&format!("{bank}.crl.pem"), &current)?;
    // OpenSSL-based proxies (HAProxy) check revocation along the whole
    // chain: they need the root's (empty) CRL as well.
    let root_issuer: &Issuer<'_, KeyPair> = &root;
    let root_crl = crl(1, &[], now).signed_by(root_issuer)?.pem()?;
    out.file(
        &format!("{bank}.crl-chain.pem"),
        &format!("{root_crl}{current}"),
    )?;
    let revoked_next: Vec<u64> = revoked_now
        .into_iter()
        .chain(revoked_later_serial)
        .collect();
    out.file(
        &format!("{bank}.crl-next.pem"),
        &crl(2, &revoked_next, now).signed_by(issuer)?.pem()?,
    )
}

/// CRL number `number`, revoking `serials`, valid for 50 years.
fn crl(number: u64, serials: &[u64], now: OffsetDateTime) -> CertificateRevocationListParams {
    CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(365 * 50),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|&serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: now - Duration::minutes(30),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
}

/// Two ticket keys (a 16-byte name and a 32-byte key each), in the format
/// the node file's `tls.ticket_key_file` takes.
fn ticket_keys() -> Result<String, PkiError> {
    let mut random = [0_u8; 96];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random))
        .map_err(PkiError::Random)?;
    let mut text = String::from(
        "# ixgate session-ticket keys: name (16 bytes) + AES-256-GCM key (32 bytes), hex.\n# The first key encrypts new tickets; every key decrypts.\n",
    );
    for key in random.chunks(48) {
        for byte in key {
            let _ = write!(text, "{byte:02x}");
        }
        text.push('\n');
    }
    Ok(text)
}
