//! CSRF protection by signed double submit: the cookie holds a random nonce, every form holds
//! `HMAC-SHA256(key, nonce)`. A POST is accepted only when its form token is the MAC of its
//! cookie's nonce (checked in constant time). Another site can neither read the cookie nor,
//! without the key, forge a token for a nonce it planted.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The cookie holding the nonce.
pub(crate) const COOKIE: &str = "jobs_dashboard_csrf";
/// The form field holding the token.
pub(crate) const FIELD: &str = "csrf";

const NONCE_LEN: usize = 32;

/// The key tokens are signed with.
#[derive(Clone)]
pub(crate) struct CsrfKey([u8; 32]);

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    pub(crate) fn random() -> Self {
        CsrfKey(rand::random())
    }

    pub(crate) fn from_secret(secret: [u8; 32]) -> Self {
        CsrfKey(secret)
    }

    /// The MAC of `data` for `purpose`: the purpose (ending in a NUL byte) is hashed first,
    /// so a value signed for one use is never valid for another.
    fn mac(&self, purpose: &[u8], data: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).ok()?;
        mac.update(purpose);
        mac.update(data);
        Some(mac)
    }

    /// The token forms carry for this nonce.
    pub(crate) fn token(&self, nonce: &Nonce) -> String {
        self.sign(TOKEN_PURPOSE, &nonce.0)
    }

    /// Whether `token` is the token of `nonce` (constant-time comparison).
    pub(crate) fn verify(&self, nonce: &Nonce, token: &str) -> bool {
        self.verify_signature(TOKEN_PURPOSE, &nonce.0, token)
    }

    /// A signature of `data` for `purpose` (a label ending in a NUL byte), as hex.
    pub(crate) fn sign(&self, purpose: &[u8], data: &[u8]) -> String {
        self.mac(purpose, data)
            .map(|mac| hex(&mac.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `signature` is [`sign`](Self::sign)'s for `data` and `purpose` (constant-time
    /// comparison).
    pub(crate) fn verify_signature(&self, purpose: &[u8], data: &[u8], signature: &str) -> bool {
        let (Some(mac), Some(tag)) = (self.mac(purpose, data), unhex(signature, 64)) else {
            return false;
        };
        mac.verify_slice(&tag).is_ok()
    }
}

/// What CSRF tokens are signed for.
const TOKEN_PURPOSE: &[u8] = b"jobs-dashboard-csrf\0";

/// The random value of a CSRF cookie.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Nonce([u8; NONCE_LEN]);

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonce(..)")
    }
}

impl Nonce {
    pub(crate) fn random() -> Self {
        Nonce(rand::random())
    }

    /// Reads a cookie value; `None` unless it is exactly the hex of a nonce.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let bytes = unhex(value, NONCE_LEN)?;
        Some(Nonce(bytes.try_into().ok()?))
    }

    /// The cookie value.
    pub(crate) fn to_cookie_value(&self) -> String {
        hex(&self.0)
    }
}

/// `bytes` as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The bytes `text` is the hex of (either case); `None` unless it is exactly that, of at most
/// `max_bytes` bytes (checked before decoding, so a huge value costs nothing).
pub(crate) fn unhex(text: &str, max_bytes: usize) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 || bytes.len() / 2 > max_bytes {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_nonce_and_key() {
        let key = CsrfKey::random();
        let nonce = Nonce::random();
        let token = key.token(&nonce);
        assert_eq!(token.len(), 64);
        assert!(key.verify(&nonce, &token));
        assert!(!key.verify(&Nonce::random(), &token));
        assert!(!CsrfKey::random().verify(&nonce, &token));
        assert!(!key.verify(&nonce, ""));
        assert!(!key.verify(&nonce, &token[..62]));
        assert!(!key.verify(&nonce, "zz"));
    }

    #[test]
    fn nonces_round_trip_through_the_cookie() {
        let nonce = Nonce::random();
        assert_eq!(Nonce::parse(&nonce.to_cookie_value()), Some(nonce));
        assert_eq!(Nonce::parse("abc"), None);
        assert_eq!(Nonce::parse(&"ab".repeat(31)), None);
        assert_eq!(Nonce::parse(&"é".repeat(32)), None);
    }
}
