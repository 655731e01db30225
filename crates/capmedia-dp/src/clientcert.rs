//! A PKI client certificate for HTTPS DPs, as ureq's rustls wants it: the
//! certificate chain and its private key, from a PEM file (certificate(s)
//! and key in one file) or a PKCS#12 file (`.pfx`/`.p12`, as Windows
//! exports it) opened with its password.
//!
//! PKCS#12 is read by `p12-keystore` (pure Rust, PBES2/AES and the legacy
//! 3DES/RC2 encryptions Windows still writes by default).

use std::fs;

use base64::prelude::{Engine, BASE64_STANDARD};
use ureq::tls::{Certificate, ClientCert as UreqClientCert, PemItem, PrivateKey};
use zeroize::Zeroizing;

use crate::ClientCert;

/// A client certificate file is a few KiB; refuse anything absurd before
/// reading it whole.
const FILE_LIMIT: u64 = 1 << 20;

/// Load `cert` for ureq. Errors name the file and never the password.
pub(crate) fn load(cert: &ClientCert) -> Result<UreqClientCert, String> {
    let name = cert.file.display();
    let size = fs::metadata(&cert.file)
        .map_err(|e| format!("client certificate {name}: {e}"))?
        .len();
    if size > FILE_LIMIT {
        return Err(format!(
            "client certificate {name}: {size} bytes is not a certificate file"
        ));
    }
    let bytes = fs::read(&cert.file).map_err(|e| format!("client certificate {name}: {e}"))?;
    let pem = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
    if pem {
        from_pem(&bytes).map_err(|e| format!("client certificate {name}: {e}"))
    } else {
        let password = cert.password.as_ref().map_or("", |p| p.expose());
        from_pkcs12(&bytes, password).map_err(|e| format!("client certificate {name}: {e}"))
    }
}

fn from_pem(bytes: &[u8]) -> Result<UreqClientCert, String> {
    let mut chain = Vec::new();
    let mut key = None;
    for item in ureq::tls::parse_pem(bytes) {
        match item.map_err(|e| format!("not valid PEM: {e}"))? {
            PemItem::Certificate(c) => chain.push(c.to_owned()),
            PemItem::PrivateKey(k) if key.is_none() => key = Some(k.to_owned()),
            PemItem::PrivateKey(_) => return Err("holds more than one private key".into()),
            _ => {}
        }
    }
    let key = key.ok_or(
        "holds no private key (put the certificate and its unencrypted key in one PEM file, \
         or give a PKCS#12 .pfx/.p12 file)",
    )?;
    if chain.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(UreqClientCert::new_with_certs(&chain, key))
}

fn from_pkcs12(bytes: &[u8], password: &str) -> Result<UreqClientCert, String> {
    use p12_keystore::KeyStore;
    let store = KeyStore::from_pkcs12(bytes, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => {
            "wrong password (or a damaged PKCS#12 file)".to_string()
        }
        e => format!("not a PKCS#12 file capmedia can read ({e})"),
    })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or("holds no private key with its certificate")?;
    let certs: Vec<Certificate<'static>> = chain
        .chain()
        .iter()
        .map(|c| Certificate::from_der(c.as_der()).to_owned())
        .collect();
    if certs.is_empty() {
        return Err("holds no certificate for its private key".into());
    }
    // ureq takes a key from DER only with a `KeyKind` it does not export:
    // hand it the PKCS#8 key as PEM (wiped after).
    let pem = Zeroizing::new(format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        BASE64_STANDARD.encode(chain.key())
    ));
    let key = PrivateKey::from_pem(pem.as_bytes())
        .map_err(|e| format!("its private key cannot be used: {e}"))?;
    Ok(UreqClientCert::new_with_certs(&certs, key))
}
