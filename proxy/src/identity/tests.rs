#![allow(clippy::unwrap_used)]

use base64::Engine as _;

use super::*;

fn app_certificate() -> Vec<u8> {
    let mut params =
        rcgen::CertificateParams::new(vec!["good.app.bank-a.example".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bank-a app good\r\nx-evil: 1");
    params.serial_number = Some(rcgen::SerialNumber::from(0x1234_u64));
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn headers_carry_the_certificate_and_replace_forged_ones() {
    let der = app_certificate();
    let identity = ClientIdentity::from_der(&der);
    let mut headers = HeaderMap::new();
    headers.insert(CLIENT_CERT, HeaderValue::from_static(":Zm9yZ2Vk:"));
    headers.insert(
        "x-client-cert-subject",
        HeaderValue::from_static("CN=admin"),
    );
    headers.insert("x-client-cert-role", HeaderValue::from_static("admin"));
    headers.insert("x-forwarded-client-cert", HeaderValue::from_static("By=x"));
    headers.insert(CLIENT_CERT_CHAIN, HeaderValue::from_static(":Zm9yZ2Vk:"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    identity.apply(&mut headers);

    let value = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    let client_cert = value("client-cert");
    let encoded = client_cert
        .strip_prefix(':')
        .unwrap()
        .strip_suffix(':')
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
        der
    );
    assert_eq!(
        value("x-client-cert-subject"),
        "CN=bank-a app good\\x0d\\x0ax-evil: 1",
        "controls escaped: no header injection"
    );
    assert_eq!(value("x-client-cert-san"), "DNS:good.app.bank-a.example");
    assert_eq!(value("x-client-cert-serial"), "12:34");
    assert_eq!(value("x-client-cert-sha256"), hex(&identity.fingerprint));
    assert_eq!(value("x-client-cert-sha256").len(), 64);
    assert!(headers.get("x-client-cert-role").is_none());
    assert!(headers.get("x-forwarded-client-cert").is_none());
    assert!(headers.get(CLIENT_CERT_CHAIN).is_none());
    assert_eq!(value("accept"), "*/*", "other headers stay");
}

#[test]
fn header_values_take_plain_text_as_it_is_and_escape_the_rest() {
    let plain = "CN=bank-a app, O=Bank A";
    assert_eq!(header_value(plain.to_owned()).to_str().unwrap(), plain);
    assert_eq!(
        header_value("CN=a\\b é\t".to_owned()).to_str().unwrap(),
        "CN=a\\x5cb \\xc3\\xa9\\x09",
        "a backslash is escaped too, so an escape cannot be forged"
    );
    assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
}
