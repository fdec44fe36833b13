#![allow(clippy::unwrap_used)]

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    CrlDistributionPoint, CrlIssuingDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::*;

type Ca = CertifiedIssuer<'static, KeyPair>;

fn ca(common_name: &str, serial: u64, signer: Option<&Ca>) -> Ca {
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from(serial));
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = signer.is_some();
    let key = KeyPair::generate().unwrap();
    match signer {
        Some(signer) => CertifiedIssuer::signed_by(params, key, signer).unwrap(),
        None => CertifiedIssuer::self_signed(params, key).unwrap(),
    }
}

fn app(serial: u64, issuer: &Issuer<'_, KeyPair>) -> CertificateDer<'static> {
    app_naming_its_key(serial, issuer, true)
}

/// An app certificate that names its issuer's key, or not.
fn app_naming_its_key(
    serial: u64,
    issuer: &Issuer<'_, KeyPair>,
    names_key: bool,
) -> CertificateDer<'static> {
    let mut params = CertificateParams::new(vec!["app.bank-a.example".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from(serial));
    params.use_authority_key_identifier_extension = names_key;
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, issuer).unwrap().der().clone()
}

fn list(
    issuer: &Issuer<'_, KeyPair>,
    revoked: &[u64],
    next_update: OffsetDateTime,
    partition: Option<&str>,
) -> CertificateRevocationListDer<'static> {
    let now = OffsetDateTime::now_utc();
    CertificateRevocationListParams {
        this_update: next_update.min(now) - Duration::days(2),
        next_update,
        crl_number: SerialNumber::from(1_u64),
        issuing_distribution_point: partition.map(|uri| CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec![uri.to_owned()],
            },
            scope: None,
        }),
        revoked_certs: revoked
            .iter()
            .map(|&serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: now - Duration::hours(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap()
    .der()
    .clone()
}

fn current() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(30)
}

fn past() -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::days(1)
}

/// How a verdict reads, the same from webpki and from us.
fn verdict(result: Result<ClientCertVerified, rustls::Error>) -> &'static str {
    match result {
        Ok(_) => "pass",
        Err(rustls::Error::InvalidCertificate(error)) => match error {
            CertificateError::Revoked => "revoked",
            CertificateError::UnknownRevocationStatus => "unknown",
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => "expired list",
            CertificateError::UnknownIssuer => "unknown issuer",
            _ => "other certificate error",
        },
        Err(_) => "other error",
    }
}

/// Our verdict (the service's verifier as `tls` builds it) and webpki's
/// own (lists checked per handshake) on one app.
fn verdicts(
    cas: &[&Ca],
    lists: &[CertificateRevocationListDer<'static>],
    app: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> (&'static str, &'static str) {
    let cas: Vec<CertificateDer<'static>> = cas.iter().map(|ca| ca.der().clone()).collect();
    let mut roots = rustls::RootCertStore::empty();
    for ca in &cas {
        roots.add(ca.clone()).unwrap();
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(lists.iter().cloned())
        .enforce_revocation_expiration()
        .build()
        .unwrap();
    let ours = verifier(&cas, lists).unwrap();
    let now = UnixTime::now();
    (
        verdict(ours.verify_client_cert(app, intermediates, now)),
        verdict(webpki.verify_client_cert(app, intermediates, now)),
    )
}

#[test]
fn an_app_on_its_issuers_list_is_refused_and_the_others_pass() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let lists = [list(&issuing, &[7], current(), None)];
    assert_eq!(
        verdicts(&[&root, &issuing], &lists, &app(7, &issuing), &[]),
        ("revoked", "revoked")
    );
    assert_eq!(
        verdicts(&[&root, &issuing], &lists, &app(8, &issuing), &[]),
        ("pass", "pass")
    );
}

#[test]
fn an_issuer_without_a_list_leaves_the_status_unknown_and_the_app_refused() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let lists = [list(&root, &[], current(), None)];
    assert_eq!(
        verdicts(&[&root, &issuing], &lists, &app(8, &issuing), &[]),
        ("unknown", "unknown")
    );
}

#[test]
fn a_list_past_its_next_update_refuses_everyone_until_a_current_one_is_added() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let stale = [list(&issuing, &[7], past(), None)];
    let (ours, _) = verdicts(&[&root, &issuing], &stale, &app(8, &issuing), &[]);
    assert_eq!(ours, "expired list");
    // webpki agrees when the stale list is the only one.
    assert_eq!(
        verdicts(&[&root, &issuing], &stale, &app(8, &issuing), &[]).1,
        "expired list"
    );
    // With a current list beside it, the stale one still revokes what it
    // names (a current list can only add to what was revoked).
    let both = [
        list(&issuing, &[7], past(), None),
        list(&issuing, &[], current(), None),
    ];
    let cas = [&root, &issuing];
    assert_eq!(verdicts(&cas, &both, &app(8, &issuing), &[]).0, "pass");
    assert_eq!(verdicts(&cas, &both, &app(7, &issuing), &[]).0, "revoked");
}

#[test]
fn an_intermediate_the_app_sends_is_checked_against_its_roots_list() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let chain = [issuing.der().clone()];
    let issuing_list = list(&issuing, &[], current(), None);
    // The service trusts the root only: the path runs through the
    // intermediate, whose own status comes from the root's list.
    let revoked_ca = [list(&root, &[2], current(), None), issuing_list.clone()];
    assert_eq!(
        verdicts(&[&root], &revoked_ca, &app(8, &issuing), &chain),
        ("revoked", "revoked")
    );
    let fine = [list(&root, &[], current(), None), issuing_list.clone()];
    assert_eq!(
        verdicts(&[&root], &fine, &app(8, &issuing), &chain),
        ("pass", "pass")
    );
    let no_root_list = [issuing_list];
    assert_eq!(
        verdicts(&[&root], &no_root_list, &app(8, &issuing), &chain),
        ("unknown", "unknown")
    );
    // Trusted itself, the intermediate is where the path ends: the root's
    // list is not needed, as with webpki.
    let issuing_only = [list(&issuing, &[], current(), None)];
    assert_eq!(
        verdicts(&[&root, &issuing], &issuing_only, &app(8, &issuing), &chain),
        ("pass", "pass")
    );
}

#[test]
fn a_list_signed_by_another_key_of_the_same_name_does_not_count() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let rekeyed = ca("bank-a app issuing", 3, Some(&root));
    let lists = [list(&rekeyed, &[], current(), None)];
    let (ours, webpki) = verdicts(&[&root, &issuing], &lists, &app(8, &issuing), &[]);
    assert_eq!(ours, "unknown");
    // webpki takes the list as the issuer's by name and then fails its
    // signature: refused either way.
    assert_ne!(webpki, "pass");
}

#[test]
fn a_service_without_lists_checks_no_revocation_as_before() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    assert_eq!(
        verdicts(&[&root, &issuing], &[], &app(8, &issuing), &[]),
        ("pass", "pass")
    );
}

/// A re-keyed CA: the same name, a new key, certified by the old one and
/// revoked since. Its holder signs an app certificate that names the CA
/// but not its key, and sends the re-key certificate along.
#[test]
fn an_app_sending_a_certificate_of_a_bank_cas_name_is_left_to_webpki() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let rekeyed = ca("bank-a app issuing", 3, Some(&issuing));
    let lists = [list(&issuing, &[3], current(), None)];
    let forged = app_naming_its_key(8, &rekeyed, false);
    let (ours, webpki) = verdicts(
        &[&root, &issuing],
        &lists,
        &forged,
        &[rekeyed.der().clone()],
    );
    assert_ne!(webpki, "pass", "webpki refuses the revoked re-key");
    assert_eq!(ours, webpki);
}

#[test]
fn bank_cas_sharing_a_name_leave_the_check_to_webpki() {
    let root = ca("bank-a app root", 1, None);
    let issuing = ca("bank-a app issuing", 2, Some(&root));
    let rekeyed = ca("bank-a app issuing", 3, Some(&root));
    // Only the old key's list: the new key's apps have none.
    let lists = [list(&issuing, &[], current(), None)];
    let (ours, webpki) = verdicts(&[&root, &issuing, &rekeyed], &lists, &app(8, &rekeyed), &[]);
    assert_ne!(ours, "pass");
    assert_eq!(ours, webpki);
}

#[test]
fn a_partitioned_list_leaves_the_check_to_webpki() {
    let root = ca("bank-a app root", 1, None);
    let lists = [list(
        &root,
        &[],
        current(),
        Some("http://crl.bank-a.example/part-1.crl"),
    )];
    assert!(RevocationLists::new(&lists).unwrap().is_none());
}

#[test]
fn a_serial_written_with_a_leading_zero_still_matches() {
    assert_eq!(serial(&[0, 0x80, 1]), serial(&[0x80, 1]));
    assert_eq!(serial(&[0]), Vec::<u8>::new());
}

#[test]
fn a_ca_whose_key_usage_leaves_out_crl_signing_cannot_sign_a_services_list() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "bank-a app issuing");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let certificate = params.self_signed(&key).unwrap().der().clone();
    // rcgen itself refuses to sign a list with such a CA: sign it with
    // the same name and key, key usage unsaid.
    params.key_usages = Vec::new();
    let signer = Issuer::new(params, key);
    let der = list(&signer, &[], current(), None);
    let dir = std::env::temp_dir().join(format!("ixgate-crl-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("issuing.crl");
    std::fs::write(&path, der.as_ref()).unwrap();
    let read = ixgate_policy::files::read_crl(&path, &[certificate], &dir.join("ca.pem"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        matches!(
            read,
            Err(ixgate_policy::files::FileError::CrlNotSignedByCa { .. })
        ),
        "{read:?}"
    );
}
