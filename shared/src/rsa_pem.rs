//! RSA key pairs as PEM for local stand-ins and tests (VideoSDK's signing key, the JaaS API
//! key): one generator, on the aws-lc already built for rustls.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;

/// DER as PEM with `label`, 64 characters a line.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh 2048-bit key pair as PEM: (private PKCS#8 `PRIVATE KEY`, public `PUBLIC KEY`).
pub fn generate_pem_pair() -> Result<(String, String), String> {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| "RSA key generation failed")?;
    let private: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| "PKCS#8 encoding failed")?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|_| "public key encoding failed")?;
    Ok((
        pem("PRIVATE KEY", private.as_ref()),
        pem("PUBLIC KEY", public.as_ref()),
    ))
}
