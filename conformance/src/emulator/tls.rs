//! HTTPS for the emulator: a certificate authority made at start, a server certificate it signs
//! for `localhost`, `127.0.0.1` and `::1`, and the CA written as PEM where clients find it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::EmulatorError;

/// The names the server certificate is valid for.
const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What a TLS emulator serves with, and the CA clients must trust.
pub(crate) struct Identity {
    pub(crate) acceptor: TlsAcceptor,
    /// The CA certificate, PEM.
    pub(crate) ca_pem: String,
    /// Where the CA PEM was written.
    pub(crate) ca_path: PathBuf,
    /// Holds `ca_path` when no path was given.
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("ca_path", &self.ca_path).finish_non_exhaustive()
    }
}

fn failed(what: &str) -> impl Fn(rcgen::Error) -> EmulatorError + '_ {
    move |e| EmulatorError::Tls(format!("{what}: {e}"))
}

/// A fresh CA and server certificate (ECDSA P-256, new keys every start); the CA's PEM is
/// written to `ca_out`, or to `ca.pem` in a temporary directory.
pub(crate) fn identity(ca_out: Option<&Path>) -> Result<Identity, EmulatorError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().map_err(failed("CA key"))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed("CA"))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "box-upload emulator CA (made at start, this run only)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(failed("CA certificate"))?;

    let key = KeyPair::generate().map_err(failed("server key"))?;
    let mut server = CertificateParams::new(NAMES.map(String::from).to_vec()).map_err(failed("server"))?;
    server.distinguished_name.push(DnType::CommonName, "localhost");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &ca_cert, &ca_key).map_err(failed("server certificate"))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmulatorError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], key_der)
        .map_err(|e| EmulatorError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let ca_pem = ca_cert.pem();
    let (dir, ca_path) = match ca_out {
        Some(path) => (None, path.to_path_buf()),
        None => {
            let dir = tempfile::Builder::new().prefix("box-upload-emulator-ca").tempdir()?;
            let path = dir.path().join("ca.pem");
            (Some(dir), path)
        }
    };
    std::fs::write(&ca_path, &ca_pem)?;
    Ok(Identity { acceptor: TlsAcceptor::from(Arc::new(config)), ca_pem, ca_path, _dir: dir })
}
