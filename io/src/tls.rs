//! Trust for TLS connections to the services: a CA bundle (PEM) read from a file or a Secret,
//! and the rustls client configuration every TLS client of the pipeline is built from.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// Why a CA bundle is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("CA bundle {source_name}: {error}")]
    Read {
        /// The file.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The bytes hold no PEM certificate, or one that does not parse.
    #[error("CA bundle {source_name}: {problem}")]
    Invalid {
        /// Where the bundle came from (a file, a Secret key).
        source_name: String,
        /// What is wrong.
        problem: String,
    },
}

/// One or more CA certificates (PEM) a service's certificate must chain to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundle {
    pem: Arc<[u8]>,
    certificates: Vec<CertificateDer<'static>>,
}

impl CaBundle {
    /// Parses PEM text; `source_name` (a file, `Secret lab/db-ca key ca.crt`) names it in errors.
    pub fn from_pem(pem: &[u8], source_name: &str) -> Result<Self, TlsError> {
        let invalid = |problem: String| TlsError::Invalid {
            source_name: source_name.to_owned(),
            problem,
        };
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid(format!("not PEM certificates: {error}")))?;
        if certificates.is_empty() {
            return Err(invalid(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        let mut roots = RootCertStore::empty();
        for (index, certificate) in certificates.iter().enumerate() {
            roots
                .add(certificate.clone())
                .map_err(|error| invalid(format!("certificate {} does not parse: {error}", index + 1)))?;
        }
        Ok(Self {
            pem: pem.into(),
            certificates,
        })
    }

    /// Reads a PEM file.
    pub fn from_file(path: &Path) -> Result<Self, TlsError> {
        let source_name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|error| TlsError::Read {
            source_name: source_name.clone(),
            error,
        })?;
        Self::from_pem(&pem, &source_name)
    }

    /// The PEM text, as given.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

/// How a client checks a service's certificate: against a CA bundle given for that service, or
/// against the public web PKI (Mozilla's roots, compiled in, so minimal images need no
/// certificate store).
pub fn root_store(ca: Option<&CaBundle>) -> RootCertStore {
    match ca {
        Some(bundle) => {
            let mut roots = RootCertStore::empty();
            // Parsed in `from_pem`, so adding cannot fail.
            let (_added, _ignored) = roots.add_parsable_certificates(bundle.certificates.iter().cloned());
            roots
        }
        None => RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
}

/// The rustls configuration of a TLS client: server certificates verified against
/// [`root_store`], host names checked, no client certificate. The crypto provider is named
/// (aws-lc-rs), so it works whichever providers the process has compiled in.
#[allow(
    clippy::expect_used,
    reason = "aws-lc-rs supports rustls's default protocol versions"
)]
pub fn client_config(ca: Option<&CaBundle>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(root_store(ca))
        .with_no_client_auth()
}

/// Tries a TLS handshake with `host:port` as the clients make it, and says why it failed (a
/// refused certificate, say): for clients whose own errors lose the cause (the Pulsar client
/// reports only "fatal error when connecting").
pub async fn handshake(host: &str, port: u16, ca: Option<&CaBundle>) -> Result<(), String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|error| format!("`{host}` is no host name: {error}"))?;
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|error| format!("connecting to {host}:{port}: {error}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca)));
    connector
        .connect(name, stream)
        .await
        .map(drop)
        .map_err(|error| format!("TLS handshake with {host}:{port}: {error}"))
}

/// Makes aws-lc-rs the process's default crypto provider unless one is set: the Pulsar client
/// and sqlx's `verify-ca` verifier take the default, which rustls cannot choose by itself when
/// a binary has both ring (kube) and aws-lc-rs compiled in.
pub fn ensure_default_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine: any provider will do.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // A self-signed certificate made for this test (openssl req -x509 -newkey ec …); its key is gone.
    pub(crate) const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUK3nv4D/JK8o5GtOXYHx0xBGb+fwwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVd2F0dGNhc3QtdW5pdC10ZXN0LWNhMB4XDTI2MTIwMTE1MzM0
M1oXDTM2MTEyODE1MzM0M1owIDEeMBwGA1UEAwwVd2F0dGNhc3QtdW5pdC10ZXN0
LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/35bU4givUi0IhTolK8uY6VQ
K7b28Y1YoeeUglwcqniOpNilrUc67W2+b9F1vcUlOargOIB5YUfXGDnwuWOIi6NT
MFEwHQYDVR0OBBYEFOCmEfSrgEo7HNkaXe58YblsOb2VMB8GA1UdIwQYMBaAFOCm
EfSrgEo7HNkaXe58YblsOb2VMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIhAK6TwnNqxBVi6uXfdvaYP28cH/T4zBNWDDtHKWS98M+eAiAbIz+mDVLc
rqF9fMUb3SzmlO8msDVefecbxMfejwPVvw==
-----END CERTIFICATE-----
";

    #[test]
    fn a_pem_bundle_becomes_the_only_roots() {
        let bundle = CaBundle::from_pem(CERTIFICATE.as_bytes(), "ca.crt").unwrap();
        assert_eq!(root_store(Some(&bundle)).len(), 1);
        assert_eq!(bundle.pem(), CERTIFICATE.as_bytes());
        assert!(root_store(None).len() > 100, "the public roots");
    }

    #[test]
    fn a_bundle_without_certificates_is_refused_naming_its_source() {
        let error = CaBundle::from_pem(b"not a certificate\n", "Secret lab/db-ca key ca.crt").unwrap_err();
        assert_eq!(
            error.to_string(),
            "CA bundle Secret lab/db-ca key ca.crt: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        let broken = CERTIFICATE.replace("MIIBlTCC", "MIIBlTXX");
        let error = CaBundle::from_pem(broken.as_bytes(), "ca.crt")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("CA bundle ca.crt: "), "{error}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = CaBundle::from_file(Path::new("/nonexistent/ca.crt"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("CA bundle /nonexistent/ca.crt: "), "{error}");
    }
}
