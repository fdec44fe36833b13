//! Session tickets every node of the site can open (RFC 8446 §4.6.1,
//! RFC 5077), from the shared ticket-key file.
//!
//! Each service gets keys of its own, derived with HKDF-SHA256 from the
//! file's keys, the service's name and a digest of its revocation lists:
//! a ticket of one bank never resumes into another bank's service, and
//! when a CRL changes the keys change with it, so a client revoked since
//! its ticket was issued must do a full handshake, and fails it. Nodes
//! with the same files derive the same keys, so a client resumes on any
//! node.
//!
//! A ticket is `key name (16) ‖ nonce (12) ‖ AES-256-GCM(state) ‖ tag`,
//! the key name as associated data. The file's first key seals; every
//! key opens, so a new key is rolled out first as the second line, then
//! moved to the top.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use ixgate_policy::files::TicketKey;

/// How long a client may keep a ticket (RFC 8446 allows up to 7 days);
/// shorter bounds how long a stolen ticket is worth anything.
const LIFETIME_SECONDS: u32 = 6 * 60 * 60;
const NAME_LEN: usize = 16;
const SECRET_LEN: usize = 32;
/// Names the derivation, so these keys serve nothing else.
const LABEL: &[u8] = b"ixgate session ticket v1";

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket-key file holds no key")]
    NoKey,
    #[error("ticket key derivation failed")]
    Derive,
}

struct DerivedKey {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
}

/// One service's ticket keys (rustls' `ProducesTickets`).
pub struct ServiceTicketer {
    /// The first seals new tickets.
    keys: Vec<DerivedKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for ServiceTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTicketer")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

struct Length(usize);

impl KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

impl ServiceTicketer {
    /// The keys of `service`, whose revocation lists hash to `crl_digest`.
    pub fn new(
        file_keys: &[TicketKey],
        service: &str,
        crl_digest: &[u8],
    ) -> Result<Self, TicketError> {
        if file_keys.is_empty() {
            return Err(TicketError::NoKey);
        }
        let keys = file_keys
            .iter()
            .map(|key| derive(key, service, crl_digest))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            random: SystemRandom::new(),
        })
    }
}

fn derive(key: &TicketKey, service: &str, crl_digest: &[u8]) -> Result<DerivedKey, TicketError> {
    let mut okm = [0_u8; NAME_LEN + SECRET_LEN];
    let info = [LABEL, &[0], service.as_bytes(), &[0], crl_digest];
    Salt::new(HKDF_SHA256, &key.name)
        .extract(&key.secret)
        .expand(&info, Length(okm.len()))
        .and_then(|expanded| expanded.fill(&mut okm))
        .map_err(|_| TicketError::Derive)?;
    let (name, secret) = okm.split_at(NAME_LEN);
    let aead = UnboundKey::new(&AES_256_GCM, secret).map_err(|_| TicketError::Derive)?;
    Ok(DerivedKey {
        name: name.try_into().map_err(|_| TicketError::Derive)?,
        aead: LessSafeKey::new(aead),
    })
}

impl rustls::server::ProducesTickets for ServiceTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECONDS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let key = self.keys.first()?;
        let mut nonce = [0_u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name),
                &mut sealed,
            )
            .ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let (name, rest) = ticket.split_at_checked(NAME_LEN)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let key = self.keys.iter().find(|key| key.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut opened = sealed.to_vec();
        let plain_len = key
            .aead
            .open_in_place(nonce, Aad::from(key.name), &mut opened)
            .ok()?
            .len();
        opened.truncate(plain_len);
        Some(opened)
    }
}

#[cfg(test)]
mod tests;
