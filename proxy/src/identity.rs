//! Who the client is, told to the origin in request headers.
//!
//! The whole certificate goes in RFC 9440's `Client-Cert` (a Structured
//! Field byte sequence); its subject, SANs, serial and SHA-256
//! fingerprint go in `X-Client-Cert-*` headers for origins that do not
//! parse certificates. Copies sent by the client are removed first, so
//! the origin can trust every one of these headers.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// RFC 9440 §2.2.
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
/// RFC 9440 §2.3: we send no chain, and remove the client's.
pub const CLIENT_CERT_CHAIN: HeaderName = HeaderName::from_static("client-cert-chain");
pub const SUBJECT: HeaderName = HeaderName::from_static("x-client-cert-subject");
pub const SAN: HeaderName = HeaderName::from_static("x-client-cert-san");
pub const SERIAL: HeaderName = HeaderName::from_static("x-client-cert-serial");
pub const SHA256_FINGERPRINT: HeaderName = HeaderName::from_static("x-client-cert-sha256");
/// Envoy's header, which some origins read: never passed through.
const FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// The app certificate of one connection, ready to be sent on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// SHA-256 of the DER: the key of the per-certificate rate limit.
    pub fingerprint: [u8; 32],
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ClientIdentity {
    /// The identity of a certificate the handshake already verified.
    pub fn from_der(der: &[u8]) -> Self {
        let mut fingerprint = [0_u8; 32];
        fingerprint.copy_from_slice(digest(&SHA256, der).as_ref());
        // RFC 9440 §2.2: a Structured Field byte sequence, `:base64:`.
        let mut client_cert = String::with_capacity(der.len().div_ceil(3) * 4 + 2);
        client_cert.push(':');
        BASE64.encode_string(der, &mut client_cert);
        client_cert.push(':');
        let mut headers = vec![(CLIENT_CERT, header_value(client_cert))];
        if let Ok((_, cert)) = X509Certificate::from_der(der) {
            headers.push((SUBJECT, header_value(cert.subject().to_string())));
            let sans = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(san_text)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            if !sans.is_empty() {
                headers.push((SAN, header_value(sans)));
            }
            headers.push((SERIAL, header_value(cert.raw_serial_as_string())));
        }
        headers.push((SHA256_FINGERPRINT, header_value(hex(&fingerprint))));
        Self {
            fingerprint,
            headers,
        }
    }

    /// Replaces whatever the client sent in our headers by ours.
    pub fn apply(&self, headers: &mut HeaderMap) {
        strip(headers);
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// Removes every client-certificate header the client may have forged.
pub fn strip(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            name.as_str().starts_with("x-client-cert")
                || *name == CLIENT_CERT
                || *name == CLIENT_CERT_CHAIN
                || *name == FORWARDED_CLIENT_CERT
        })
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

fn san_text(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
        GeneralName::URI(uri) => Some(format!("URI:{uri}")),
        GeneralName::RFC822Name(email) => Some(format!("email:{email}")),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes)
                .ok()
                .map(|octets| format!("IP:{}", std::net::Ipv4Addr::from(octets))),
            16 => <[u8; 16]>::try_from(*bytes)
                .ok()
                .map(|octets| format!("IP:{}", std::net::Ipv6Addr::from(octets))),
            _ => None,
        },
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for nibble in bytes.iter().flat_map(|byte| [byte >> 4, byte & 0x0f]) {
        text.push(char::from(DIGITS[usize::from(nibble)]));
    }
    text
}

/// A header value from certificate text: bytes a header cannot carry
/// (controls, non-ASCII) are written `\xNN`, so nothing is lost or forged.
/// Text with none of them (the base64, hex, most names) is taken as it is,
/// without a copy: it is built for every connection.
fn header_value(text: String) -> HeaderValue {
    let plain = |byte: u8| (0x20..0x7f).contains(&byte) && byte != b'\\';
    let empty = |_| HeaderValue::from_static("");
    if text.bytes().all(plain) {
        return HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).unwrap_or_else(empty);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for byte in text.bytes() {
        if plain(byte) {
            escaped.push(char::from(byte));
        } else {
            use std::fmt::Write as _;
            let _ = write!(escaped, "\\x{byte:02x}");
        }
    }
    HeaderValue::from_str(&escaped).unwrap_or_else(empty)
}

#[cfg(test)]
mod tests;
