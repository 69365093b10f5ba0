//! HMAC-SHA256 signatures, as Digio and Razorpay use them (hex of the MAC over the raw body,
//! or over `order_id|payment_id` for Razorpay checkout). Compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex HMAC-SHA256 of `message` keyed with `secret`.
pub fn hmac_sha256_hex(secret: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature_hex` is the HMAC-SHA256 of `message` under `secret`. Malformed hex is
/// simply not valid; the comparison of well-formed MACs is constant-time.
pub fn verify_hmac_sha256_hex(secret: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2, computed independently of this code.
    const KEY: &[u8] = b"Jefe";
    const MSG: &[u8] = b"what do ya want for nothing?";
    const MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn matches_rfc_4231() {
        assert_eq!(hmac_sha256_hex(KEY, MSG), MAC);
        assert!(verify_hmac_sha256_hex(KEY, MSG, MAC));
        assert!(verify_hmac_sha256_hex(KEY, MSG, &MAC.to_uppercase()));
    }

    #[test]
    fn refuses_tampering_and_garbage() {
        assert!(!verify_hmac_sha256_hex(KEY, b"what do ya want for nothing!", MAC));
        assert!(!verify_hmac_sha256_hex(b"jefe", MSG, MAC));
        assert!(!verify_hmac_sha256_hex(KEY, MSG, &MAC[..62]));
        assert!(!verify_hmac_sha256_hex(KEY, MSG, ""));
        assert!(!verify_hmac_sha256_hex(KEY, MSG, "zz"));
    }
}
