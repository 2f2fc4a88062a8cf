//! Access tokens: EdDSA (Ed25519) JWTs that admit a visitor to the protected origin.
//!
//! Header `{"alg":"EdDSA","typ":"JWT","kid":…}`; claims `iss`, `aud` (the queue's slug),
//! `sub` (the visitor's request id), `qpos` (their position), `iat`, `nbf`, `exp`, `jti`.
//! Verification pins the algorithm to EdDSA, looks the key up by `kid`, and checks `aud`,
//! `exp` and `nbf` with a small leeway. Everything takes `now` as an argument.

use chrono::{DateTime, TimeZone, Utc};
use ed25519_compact::{KeyPair, PublicKey, Seed};
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, Claims, Header, UntrustedToken};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only algorithm accepted.
pub const ALG: &str = "EdDSA";
/// Clock skew tolerated on `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: i64 = 5;
/// Longest token text accepted before any parsing.
pub const MAX_TOKEN_LEN: usize = 2048;

/// The custom (non-time) claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the deployment's configured name.
    pub iss: String,
    /// Audience: the queue slug this token admits to.
    pub aud: String,
    /// Subject: the visitor's request id (ticket).
    pub sub: String,
    /// The visitor's position in the queue.
    pub qpos: u64,
    /// Session id, stable for a ticket: claiming twice gives the same one.
    pub jti: String,
}

/// A verified token: its claims and times (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The custom claims.
    pub claims: AccessClaims,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Key that signed it.
    pub kid: String,
}

/// Why a token was refused. Deliberately coarse: the reason is logged, not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, too long, or claims that do not parse.
    Malformed,
    /// `alg` is not EdDSA.
    WrongAlgorithm,
    /// `kid` missing or not a known key.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `aud` is not the expected queue, or `iss` is not the expected issuer.
    WrongAudience,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (minus leeway).
    NotYetValid,
}

impl core::fmt::Display for TokenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "token is malformed",
            TokenError::WrongAlgorithm => "token algorithm is not allowed",
            TokenError::UnknownKey => "token key is unknown",
            TokenError::BadSignature => "token signature is invalid",
            TokenError::WrongAudience => "token is not for this queue",
            TokenError::Expired => "token has expired",
            TokenError::NotYetValid => "token is not valid yet",
        })
    }
}

impl std::error::Error for TokenError {}

/// An Ed25519 signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// Key id of a public key: the first 12 bytes of its SHA-256, base64url.
pub fn key_id(pk: &PublicKey) -> String {
    crate::b64::encode(&Sha256::digest(pk.as_ref())[..12])
}

impl SigningKey {
    /// Derives the key pair from a 32-byte seed (the stored secret).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let pair = KeyPair::from_seed(Seed::new(seed));
        SigningKey { kid: key_id(&pair.pk), pair }
    }

    /// The key id written into the header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.pair.pk
    }

    /// The public key as a JWK for the JWKS document.
    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(&self.kid, self.pair.pk.as_ref())
    }

    /// Signs `claims` valid from `iat` (also `nbf`) until `exp`, unix seconds.
    pub fn issue(&self, claims: &AccessClaims, iat: i64, exp: i64) -> String {
        let mut c = Claims::new(claims.clone());
        c.issued_at = Some(ts(iat));
        c.not_before = Some(ts(iat));
        c.expiration = Some(ts(exp));
        let header = Header::empty().with_key_id(self.kid.clone()).with_token_type("JWT");
        Ed25519.token(&header, &c, &self.pair.sk).expect("serializing fixed claims cannot fail")
    }
}

fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Verifies `token` for `audience`, with keys looked up by `kid`; `now` in unix seconds.
///
/// Order of checks: size, structure, algorithm (pinned), key id, claims (issuer and
/// audience, expiry, not-before), signature. Same as [`check_claims`] then
/// [`Unverified::verify_signature`].
pub fn verify(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<PublicKey>,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<Verified, TokenError> {
    check_claims(token, key_for, issuer, audience, now)?.verify_signature()
}

/// A token whose structure, algorithm, key and claims passed, and whose signature is still
/// to be checked: by [`Unverified::verify_signature`] here, or by the runtime's own Ed25519
/// (the edge uses WebCrypto, several times faster than Ed25519 compiled to Wasm) and then
/// [`Unverified::accept`]. Holds no [`Verified`] until then.
#[derive(Debug, Clone)]
pub struct Unverified {
    claims: Verified,
    key: PublicKey,
    signed_len: usize,
    token: String,
    signature: Vec<u8>,
}

impl Unverified {
    /// The public key named by `kid` (32 raw bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key.as_ref()
    }

    /// The signed bytes: `header.payload` as sent.
    pub fn signed_data(&self) -> &[u8] {
        &self.token.as_bytes()[..self.signed_len]
    }

    /// The signature bytes (64 for Ed25519; anything else never verifies).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Checks the signature with `ed25519-compact`.
    pub fn verify_signature(self) -> Result<Verified, TokenError> {
        let ok = ed25519_compact::Signature::from_slice(&self.signature)
            .is_ok_and(|sig| self.key.verify(self.signed_data(), &sig).is_ok());
        self.accept(ok)
    }

    /// The verified token if `signature_ok`, the verdict of an Ed25519 verification of
    /// [`Self::signature`] over [`Self::signed_data`] with [`Self::public_key`].
    pub fn accept(self, signature_ok: bool) -> Result<Verified, TokenError> {
        if signature_ok { Ok(self.claims) } else { Err(TokenError::BadSignature) }
    }
}

/// Everything of [`verify`] but the signature: size, structure, algorithm (pinned), key id,
/// issuer and audience, expiry, not-before.
pub fn check_claims(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<PublicKey>,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<Unverified, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
    if untrusted.algorithm() != ALG {
        return Err(TokenError::WrongAlgorithm);
    }
    let kid = untrusted.header().key_id.clone().ok_or(TokenError::UnknownKey)?;
    let key = key_for(&kid).ok_or(TokenError::UnknownKey)?;
    let claims: Claims<AccessClaims> =
        untrusted.deserialize_claims_unchecked().map_err(|_| TokenError::Malformed)?;
    if claims.custom.aud != audience || claims.custom.iss != issuer {
        return Err(TokenError::WrongAudience);
    }
    let exp = claims.expiration.ok_or(TokenError::Malformed)?.timestamp();
    let iat = claims.issued_at.ok_or(TokenError::Malformed)?.timestamp();
    let nbf = claims.not_before.map_or(iat, |t| t.timestamp());
    if now >= exp + LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    if now + LEEWAY_SECS < nbf {
        return Err(TokenError::NotYetValid);
    }
    let signed_len = token.rfind('.').ok_or(TokenError::Malformed)?;
    Ok(Unverified {
        claims: Verified { claims: claims.custom, iat, exp, kid },
        key,
        signed_len,
        token: token.to_owned(),
        signature: untrusted.signature_bytes().to_vec(),
    })
}

/// One public key of the JWKS (RFC 8037 OKP key).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id, as in token headers.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: &str, public: &[u8]) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: crate::b64::encode(public),
            kid: kid.into(),
            alg: ALG.into(),
            use_: "sig".into(),
        }
    }
}

/// `GET /.well-known/jwks.json`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// Current and recently retired public keys.
    pub keys: Vec<Jwk>,
}

/// Parses an Ed25519 public key from a JWK, as published in the JWKS.
pub fn public_key_from_jwk(jwk: &Jwk) -> Option<PublicKey> {
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
        return None;
    }
    PublicKey::from_slice(&crate::b64::decode(&jwk.x)?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use hmac::{Hmac, Mac};

    const VECTORS: &str = include_str!("../test-vectors/tokens.json");
    const NOW: i64 = 1_790_000_000;

    fn key() -> SigningKey {
        SigningKey::from_seed([7u8; 32])
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "anteroom".into(),
            aud: "concert".into(),
            sub: "ticket".into(),
            qpos: 42,
            jti: "3.42".into(),
        }
    }

    fn check(token: &str, now: i64) -> Result<Verified, TokenError> {
        let k = key();
        verify(token, |kid| (kid == k.kid()).then(|| k.public()), "anteroom", "concert", now)
    }

    fn forge(header: &str, payload: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        let signing_input =
            format!("{}.{}", crate::b64::encode(header), crate::b64::encode(payload));
        let sig = sign(signing_input.as_bytes());
        format!("{signing_input}.{}", crate::b64::encode(sig))
    }

    fn payload() -> String {
        serde_json::json!({
            "iss": "anteroom", "aud": "concert", "sub": "ticket", "qpos": 42, "jti": "3.42",
            "iat": NOW, "nbf": NOW, "exp": NOW + 300,
        })
        .to_string()
    }

    #[test]
    fn claims_are_checked_first_and_the_signature_by_any_ed25519() {
        let k = key();
        let t = k.issue(&claims(), NOW, NOW + 300);
        let u = check_claims(&t, |_| Some(k.public()), "anteroom", "concert", NOW).unwrap();
        // What the edge hands to WebCrypto verifies with a plain Ed25519 too.
        let sig = ed25519_compact::Signature::from_slice(u.signature()).unwrap();
        let pk = PublicKey::from_slice(u.public_key()).unwrap();
        assert!(pk.verify(u.signed_data(), &sig).is_ok());
        assert_eq!(u.signed_data(), t.rsplit_once('.').unwrap().0.as_bytes());
        assert_eq!(u.clone().accept(false), Err(TokenError::BadSignature));
        assert_eq!(u.accept(true).unwrap().claims, claims());
        // A forged signature passes the claim checks and fails the signature.
        let forged = forge(r#"{"alg":"EdDSA","kid":"x"}"#, &payload(), |_| vec![0u8; 64]);
        let u = check_claims(&forged, |_| Some(k.public()), "anteroom", "concert", NOW).unwrap();
        assert_eq!(u.verify_signature(), Err(TokenError::BadSignature));
        // Expired is refused before any signature work.
        let old = k.issue(&claims(), NOW - 600, NOW - 300);
        let r = check_claims(&old, |_| Some(k.public()), "anteroom", "concert", NOW);
        assert_eq!(r.err(), Some(TokenError::Expired));
    }

    #[test]
    fn valid_token_verifies() {
        let t = key().issue(&claims(), NOW, NOW + 300);
        let v = check(&t, NOW + 10).unwrap();
        assert_eq!(v.claims, claims());
        assert_eq!((v.iat, v.exp), (NOW, NOW + 300));
        assert_eq!(v.kid, key().kid());
    }

    #[test]
    fn vectors_verify() {
        #[derive(serde::Deserialize)]
        struct Vector {
            seed_hex: String,
            kid: String,
            token: String,
            now: i64,
            aud: String,
            valid: bool,
        }
        let vectors: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
        assert!(vectors.iter().any(|v| v.valid) && vectors.iter().any(|v| !v.valid));
        for v in vectors {
            let mut seed = [0u8; 32];
            for (i, s) in seed.iter_mut().enumerate() {
                *s = u8::from_str_radix(&v.seed_hex[2 * i..2 * i + 2], 16).unwrap();
            }
            let k = SigningKey::from_seed(seed);
            assert_eq!(k.kid(), v.kid);
            let r = verify(
                &v.token,
                |kid| (kid == k.kid()).then(|| k.public()),
                "anteroom",
                &v.aud,
                v.now,
            );
            assert_eq!(r.is_ok(), v.valid, "{}: {r:?}", v.token);
        }
    }

    #[test]
    fn alg_none_is_rejected() {
        let t = forge(r#"{"alg":"none","typ":"JWT"}"#, &payload(), |_| Vec::new());
        assert_eq!(check(&t, NOW), Err(TokenError::WrongAlgorithm));
        let t = format!("{}.", &t[..t.rfind('.').unwrap()]);
        assert!(check(&t, NOW).is_err());
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_rejected() {
        let k = key();
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, k.kid());
        let t = forge(&header, &payload(), |msg| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(k.public().as_ref()).unwrap();
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        });
        assert_eq!(check(&t, NOW), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn wrong_kid_is_rejected() {
        let other = SigningKey::from_seed([8u8; 32]);
        let t = other.issue(&claims(), NOW, NOW + 300);
        assert_eq!(check(&t, NOW), Err(TokenError::UnknownKey));
        // A known kid in the header over another key's signature.
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, key().kid());
        let t = forge(&header, &payload(), |msg| {
            KeyPair::from_seed(Seed::new([8u8; 32])).sk.sign(msg, None).to_vec()
        });
        assert_eq!(check(&t, NOW), Err(TokenError::BadSignature));
        let t = forge(r#"{"alg":"EdDSA","typ":"JWT"}"#, &payload(), |_| vec![0; 64]);
        assert_eq!(check(&t, NOW), Err(TokenError::UnknownKey));
    }

    #[test]
    fn wrong_audience_and_issuer_are_rejected() {
        let mut c = claims();
        c.aud = "other-queue".into();
        assert_eq!(check(&key().issue(&c, NOW, NOW + 300), NOW), Err(TokenError::WrongAudience));
        let mut c = claims();
        c.iss = "someone-else".into();
        assert_eq!(check(&key().issue(&c, NOW, NOW + 300), NOW), Err(TokenError::WrongAudience));
    }

    #[test]
    fn expiry_and_maturity_with_leeway() {
        let t = key().issue(&claims(), NOW, NOW + 300);
        assert!(check(&t, NOW + 300 + LEEWAY_SECS - 1).is_ok());
        assert_eq!(check(&t, NOW + 300 + LEEWAY_SECS), Err(TokenError::Expired));
        assert!(check(&t, NOW - LEEWAY_SECS).is_ok());
        assert_eq!(check(&t, NOW - LEEWAY_SECS - 1), Err(TokenError::NotYetValid));
    }

    #[test]
    fn every_flipped_byte_is_rejected() {
        let t = key().issue(&claims(), NOW, NOW + 300);
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let Ok(s) = String::from_utf8(b) else { continue };
            if s == t {
                continue;
            }
            // Base64 padding bits in the last character can leave the decoded bytes unchanged;
            // only accept an unchanged result if the decoded token is byte-identical.
            if let Ok(v) = check(&s, NOW) {
                let parts: Vec<_> = s.split('.').map(crate::b64::decode).collect();
                let orig: Vec<_> = t.split('.').map(crate::b64::decode).collect();
                assert_eq!(parts, orig, "flipped byte {i} accepted: {v:?}");
            }
        }
    }

    #[test]
    fn oversized_and_garbage_tokens() {
        assert_eq!(check("", NOW), Err(TokenError::Malformed));
        assert_eq!(check("a.b.c", NOW), Err(TokenError::Malformed));
        assert_eq!(check(&"a".repeat(MAX_TOKEN_LEN + 1), NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn jwk_round_trip() {
        let k = key();
        let jwk = k.jwk();
        assert_eq!(jwk.kid, k.kid());
        assert_eq!(public_key_from_jwk(&jwk), Some(k.public()));
    }
}
