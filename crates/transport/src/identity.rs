//! Client identities for mutual TLS, carried by a call.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

/// A client certificate chain and key that a call presents on its TLS
/// connections, with CA certificates it trusts besides the client's own
/// roots. Calls with the same identity share connections; calls with
/// different identities never do.
///
/// Its `Debug` output shows a fingerprint, never key material.
#[derive(Clone)]
pub struct TlsIdentity {
    parts: Arc<Parts>,
}

struct Parts {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    trusted: Vec<CertificateDer<'static>>,
    fingerprint: u64,
}

impl TlsIdentity {
    /// An identity from a PEM certificate chain and a PEM private key.
    pub fn from_pem(certificate: &[u8], key: &[u8]) -> Result<Self, Error> {
        let chain = parse_certificates(certificate, "client certificate")?;
        if chain.is_empty() {
            return Err(Error::InvalidRequest(
                "the client certificate PEM holds no certificate".to_owned(),
            ));
        }
        // The key's own parse error could quote key material; say only that.
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|_| Error::InvalidRequest("invalid client private key PEM".to_owned()))?;
        Ok(Self::assemble(chain, key, Vec::new()))
    }

    /// An identity from DER: the certificate chain, leaf first, and a
    /// PKCS#8 private key.
    pub fn from_der(chain: Vec<Vec<u8>>, pkcs8_key: Vec<u8>) -> Result<Self, Error> {
        if chain.is_empty() {
            return Err(Error::InvalidRequest(
                "the client identity holds no certificate".to_owned(),
            ));
        }
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::Pkcs8(pkcs8_key.into());
        Ok(Self::assemble(chain, key, Vec::new()))
    }

    /// The same identity, also trusting the CA certificates of a PEM bundle.
    pub fn with_trusted_pem(self, pem: &[u8]) -> Result<Self, Error> {
        let mut trusted = self.parts.trusted.clone();
        trusted.extend(parse_certificates(pem, "trust certificate")?);
        Ok(Self::assemble(
            self.parts.chain.clone(),
            self.parts.key.clone_key(),
            trusted,
        ))
    }

    fn assemble(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        trusted: Vec<CertificateDer<'static>>,
    ) -> Self {
        let mut hasher = DefaultHasher::new();
        for certificate in chain.iter().chain(&trusted) {
            certificate.as_ref().hash(&mut hasher);
        }
        key.secret_der().hash(&mut hasher);
        Self {
            parts: Arc::new(Parts {
                chain,
                key,
                trusted,
                fingerprint: hasher.finish(),
            }),
        }
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.parts.fingerprint
    }

    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.parts.chain.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.parts.key.clone_key()
    }

    pub(crate) fn trusted(&self) -> &[CertificateDer<'static>] {
        &self.parts.trusted
    }
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsIdentity({:016x})", self.parts.fingerprint)
    }
}

pub(crate) fn parse_certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Error::InvalidRequest(format!("invalid {what} PEM: {error}")))
}
