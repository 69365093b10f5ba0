//! The roots of trust, compiled into the binary: nothing is read from the system's
//! certificate store at init (on Lambda that was 146 files opened and parsed before the
//! first `/next`).
//!
//! - AWS endpoints (the SDK): the five roots Amazon Trust Services certificates chain to
//!   (Amazon Root CA 1 to 4 and Starfield Services Root G2), from `shared/certs/aws-roots.pem`.
//! - Third parties ([`crate::outbound`], Digio and Razorpay): Mozilla's roots from the
//!   `webpki-roots` crate, which reqwest compiles in already parsed (no parsing at init).

use aws_smithy_http_client::tls::{TlsContext, TrustStore};

/// Amazon Root CA 1-4 and Starfield Services Root Certificate Authority - G2 (PEM).
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The SDK's TLS context: only [`AWS_ROOTS_PEM`], no native roots.
pub fn aws_context() -> TlsContext {
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM))
        .build()
        .expect("a trust store of PEM roots builds")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_aws_roots_are_five_certificates() {
        let pem = std::str::from_utf8(super::AWS_ROOTS_PEM).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
    }
}
