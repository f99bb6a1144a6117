//! VideoSDK's RSA keys: reading PEM public keys from configuration, checking a signature
//! (aws-lc, already in the build for the AWS SDK's TLS), and for tests, the demo and the
//! local stack, making a key pair and signing as VideoSDK does.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;

/// The smallest modulus accepted (VideoSDK's key is 2048-bit or more).
const MIN_BITS: usize = 2048;

/// One RSA public key, DER (SubjectPublicKeyInfo or PKCS#1 RSAPublicKey).
#[derive(Clone)]
pub struct PublicKey(Vec<u8>);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} DER bytes)", self.0.len())
    }
}

impl PublicKey {
    /// Whether `signature` is RSASSA-PKCS1-v1_5 with SHA-256 over `body` under this key.
    pub fn verifies(&self, body: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.0)
            .verify(body, signature)
            .is_ok()
    }
}

pub(super) fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

/// The PEM blocks of `text` with label `label`, decoded (whatever separates them: newlines,
/// commas).
fn pem_blocks(text: &str, labels: &[&str]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or("a PEM header is not closed")?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_start
            .find(&end_marker)
            .ok_or("a PEM block has no END line")?;
        if labels.contains(&label) {
            out.push(decode_b64(&body_start[..end]).ok_or("a PEM block is not base64")?);
        } else {
            return Err(format!("a PEM block is a {label:?}, not one of {labels:?}"));
        }
        rest = &body_start[end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err("no PEM block found".into());
    }
    Ok(out)
}

/// Every RSA public key in `text` (`PUBLIC KEY` or `RSA PUBLIC KEY` PEM blocks). Errors say
/// what is wrong, never quote the text.
pub fn public_keys_in(text: &str) -> Result<Vec<PublicKey>, String> {
    pem_blocks(text, &["PUBLIC KEY", "RSA PUBLIC KEY"])?
        .into_iter()
        .enumerate()
        .map(|(i, der)| {
            let bits = modulus_bits(&der)
                .ok_or_else(|| format!("key {} is not an RSA public key", i + 1))?;
            if bits < MIN_BITS {
                return Err(format!(
                    "key {} has {bits} bits, fewer than {MIN_BITS}",
                    i + 1
                ));
            }
            Ok(PublicKey(der))
        })
        .collect()
}

/// The modulus size of an RSA public key in either DER form.
fn modulus_bits(der: &[u8]) -> Option<usize> {
    if let Ok(bits) = signature::RsaParameters::public_modulus_len(der) {
        return usize::try_from(bits).ok();
    }
    aws_lc_rs::rsa::PublicEncryptingKey::from_der(der)
        .ok()
        .map(|k| k.key_size_bits())
}

use crate::rsa_pem::pem;

/// A fresh 2048-bit key pair as PEM (private, public); `openssl dgst -sha256 -sign <private>`
/// signs with it as VideoSDK signs.
pub use crate::rsa_pem::generate_pem_pair;

/// The public half of a PEM private key, as PEM.
pub fn public_pem_of(private_pem: &str) -> Result<String, String> {
    let pair = private_key(private_pem)?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|_| "public key encoding failed")?;
    Ok(pem("PUBLIC KEY", public.as_ref()))
}

fn private_key(private_pem: &str) -> Result<aws_lc_rs::rsa::KeyPair, String> {
    let der = pem_blocks(private_pem, &["PRIVATE KEY"])?
        .into_iter()
        .next()
        .ok_or("no private key")?;
    aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(|_| "not an RSA PKCS#8 private key".into())
}

/// The `videosdk-signature` VideoSDK would send for `body`: base64 RSA-SHA256 (PKCS#1 v1.5).
pub fn sign(private_pem: &str, body: &[u8]) -> Result<String, String> {
    let pair = private_key(private_pem)?;
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        body,
        &mut sig,
    )
    .map_err(|_| "signing failed")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sig))
}
