//! Agora: RTC tokens in Agora's AccessToken2 format (the "007" tokens), built here rather
//! than with an SDK because Agora publishes no Rust one, and the format is small: a signed,
//! zlib-compressed, base64 record. It follows `src/AccessToken2.js` of Agora's `agora-token`
//! npm package (AgoraIO/Tools, DynamicKey/AgoraDynamicKey); `shared/tests/agora_oracle.rs`
//! checks our tokens with that package itself.
//!
//! The record, little-endian, a string or bytes being a u16 length and the bytes:
//!
//! ```text
//! token     = "007" + base64(zlib(signature: bytes, content))
//! content   = app_id: string, issue_ts: u32, expire: u32, salt: u32, service count: u16,
//!             then each service: type u16, privileges (u16 count, then privilege u16 and
//!             its expire u32, by privilege), and for RTC (type 1) channel: string and
//!             uid: string (decimal, "" for 0)
//! signing   = HMAC-SHA256(key = salt u32, HMAC-SHA256(key = issue_ts u32, app_certificate))
//! signature = HMAC-SHA256(key = signing, content)
//! ```
//!
//! `expire` and the privileges' expires are seconds after `issue_ts`, not timestamps. Agora
//! app ids and certificates are 32 hex characters; the certificate is signed as that text.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const VERSION: &str = "007";
const SERVICE_RTC: u16 = 1;
const JOIN_CHANNEL: u16 = 1;
const PUBLISH_AUDIO: u16 = 2;
const PUBLISH_VIDEO: u16 = 3;
const PUBLISH_DATA_STREAM: u16 = 4;

/// Who may do what in which channel, and until when: one party's token for one call.
#[derive(Clone, Debug)]
pub struct RtcGrant<'a> {
    pub app_id: &'a str,
    pub channel: &'a str,
    /// The party's Agora uid ([`uid_of`]); 0 would let the holder join as any uid.
    pub uid: u32,
    /// Unix seconds.
    pub issued_at: u32,
    /// Unix seconds: the token and every privilege end here.
    pub expires_at: u32,
    /// Random per token, so two tokens issued in the same second differ.
    pub salt: u32,
}

/// An RTC token for `grant`: join the channel and publish audio, video and data streams, all
/// until `expires_at` (already expired if that is not after `issued_at`).
///
/// Panics if the app id or channel is longer than 65535 bytes (Agora's are 32 and at most 64:
/// see `crate::domain::booking::call::channel_name`).
pub fn rtc_token(app_certificate: &str, grant: &RtcGrant) -> String {
    let ttl = grant.expires_at.saturating_sub(grant.issued_at);
    let privileges = [(JOIN_CHANNEL, ttl), (PUBLISH_AUDIO, ttl), (PUBLISH_VIDEO, ttl), (PUBLISH_DATA_STREAM, ttl)];
    token(app_certificate, grant, ttl, &privileges)
}

/// A user's Agora uid: stable (the same user gets the same uid in every call, so Agora's
/// channel events name them) and never 0, which Agora reads as "any uid". Two parties of a
/// call share one with probability 2^-32.
pub fn uid_of(user_id: &str) -> u32 {
    let digest = Sha256::digest(user_id.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    // 0..=u32::MAX-1, then 1..=u32::MAX.
    n % u32::MAX + 1
}

/// The token for one RTC service with `privileges` (sorted by privilege, as Agora packs them).
fn token(app_certificate: &str, grant: &RtcGrant, expire: u32, privileges: &[(u16, u32)]) -> String {
    debug_assert!(privileges.windows(2).all(|w| w[0].0 < w[1].0), "privileges sorted, once each");
    let mut content = Vec::with_capacity(128);
    put_bytes(&mut content, grant.app_id.as_bytes());
    content.extend(grant.issued_at.to_le_bytes());
    content.extend(expire.to_le_bytes());
    content.extend(grant.salt.to_le_bytes());
    content.extend(1u16.to_le_bytes());
    content.extend(SERVICE_RTC.to_le_bytes());
    content.extend(len16(privileges.len()).to_le_bytes());
    for (privilege, expire) in privileges {
        content.extend(privilege.to_le_bytes());
        content.extend(expire.to_le_bytes());
    }
    put_bytes(&mut content, grant.channel.as_bytes());
    let uid = if grant.uid == 0 { String::new() } else { grant.uid.to_string() };
    put_bytes(&mut content, uid.as_bytes());

    let signing = hmac(&grant.salt.to_le_bytes(), &hmac(&grant.issued_at.to_le_bytes(), app_certificate.as_bytes()));
    let mut packed = Vec::with_capacity(content.len() + 34);
    put_bytes(&mut packed, &hmac(&signing, &content));
    packed.extend(content);

    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&packed).expect("compressing into memory");
    format!("{VERSION}{}", STANDARD.encode(zlib.finish().expect("compressing into memory")))
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn len16(len: usize) -> u16 {
    u16::try_from(len).expect("an Agora token field is under 64 KiB")
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend(len16(bytes.len()).to_le_bytes());
    out.extend(bytes);
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::ZlibDecoder;

    use super::*;

    // Agora's own test inputs (agora-token 2.0.6, test/AccessToken2Test.js).
    const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
    const CERTIFICATE: &str = "5CFd2fd1755d40ecb72977518be15d3b";
    const CHANNEL: &str = "7d72365eb983485397e3e3f9d460bdda";

    /// What a token holds, read back by a parser of our own.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        signature: Vec<u8>,
        app_id: String,
        issue_ts: u32,
        expire: u32,
        salt: u32,
        service_type: u16,
        privileges: Vec<(u16, u32)>,
        channel: String,
        uid: String,
    }

    /// The uncompressed record of a "007" token.
    fn payload(token: &str) -> Vec<u8> {
        let compressed = STANDARD.decode(token.strip_prefix(VERSION).expect("a 007 token")).unwrap();
        let mut packed = Vec::new();
        ZlibDecoder::new(&compressed[..]).read_to_end(&mut packed).unwrap();
        packed
    }

    struct Reader<'a>(&'a [u8]);

    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Vec<u8> {
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            head.to_vec()
        }
        fn u16(&mut self) -> u16 {
            u16::from_le_bytes(self.take(2).try_into().unwrap())
        }
        fn u32(&mut self) -> u32 {
            u32::from_le_bytes(self.take(4).try_into().unwrap())
        }
        fn bytes(&mut self) -> Vec<u8> {
            let len = self.u16();
            self.take(len.into())
        }
        fn string(&mut self) -> String {
            String::from_utf8(self.bytes()).unwrap()
        }
    }

    /// Parses `token`, checking its signature under `certificate` and that nothing trails.
    fn parse(token: &str, certificate: &str) -> Parsed {
        let packed = payload(token);
        let mut r = Reader(&packed);
        let signature = r.bytes();
        let content = r.0;
        let parsed = Parsed {
            signature,
            app_id: r.string(),
            issue_ts: r.u32(),
            expire: r.u32(),
            salt: r.u32(),
            service_type: {
                assert_eq!(r.u16(), 1, "one service");
                r.u16()
            },
            privileges: (0..r.u16()).map(|_| (r.u16(), r.u32())).collect(),
            channel: r.string(),
            uid: r.string(),
        };
        assert!(r.0.is_empty(), "trailing bytes: {:?}", r.0);
        let signing = hmac(&parsed.salt.to_le_bytes(), &hmac(&parsed.issue_ts.to_le_bytes(), certificate.as_bytes()));
        assert_eq!(parsed.signature, hmac(&signing, content), "signature under {certificate}");
        parsed
    }

    fn grant(uid: u32) -> RtcGrant<'static> {
        RtcGrant { app_id: APP_ID, channel: CHANNEL, uid, issued_at: 1_111_111, expires_at: 1_111_711, salt: 1 }
    }

    #[test]
    fn a_token_reads_back_as_issued() {
        let grant = RtcGrant {
            app_id: APP_ID,
            channel: "ak-AT12345678",
            uid: 4_000_000_001,
            issued_at: 1_760_000_000,
            expires_at: 1_760_003_600,
            salt: 0x0102_0304,
        };
        let token = rtc_token(CERTIFICATE, &grant);
        assert!(token.starts_with("007"), "{token}");
        let parsed = parse(&token, CERTIFICATE);
        assert_eq!(parsed.app_id, APP_ID);
        assert_eq!((parsed.issue_ts, parsed.expire, parsed.salt), (1_760_000_000, 3600, 0x0102_0304));
        assert_eq!(parsed.service_type, 1);
        assert_eq!(parsed.privileges, [(1, 3600), (2, 3600), (3, 3600), (4, 3600)]);
        assert_eq!((parsed.channel.as_str(), parsed.uid.as_str()), ("ak-AT12345678", "4000000001"));
    }

    #[test]
    fn uid_zero_is_the_empty_string_and_a_past_expiry_is_zero() {
        let grant = RtcGrant { uid: 0, issued_at: 2_000, expires_at: 1_000, ..grant(0) };
        let parsed = parse(&rtc_token(CERTIFICATE, &grant), CERTIFICATE);
        assert_eq!(parsed.uid, "");
        assert_eq!(parsed.expire, 0);
        assert!(parsed.privileges.iter().all(|&(_, expire)| expire == 0), "{:?}", parsed.privileges);
    }

    /// Agora's expected tokens for a join-only grant (AccessToken_Test and AccessToken_Test2
    /// in agora-token's test/AccessToken2Test.js), compared uncompressed: the same record may
    /// be deflated to other bytes by another zlib, and Agora reads the record.
    #[test]
    fn matches_agoras_test_vectors() {
        for (uid, expected) in [
            (
                2_882_341_273,
                "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj",
            ),
            (
                0,
                "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo=",
            ),
        ] {
            let ours = token(CERTIFICATE, &grant(uid), 600, &[(JOIN_CHANNEL, 600)]);
            assert_eq!(payload(&ours), payload(expected), "uid {uid}");
            assert_eq!(parse(expected, CERTIFICATE).uid, if uid == 0 { "" } else { "2882341273" });
        }
    }

    #[test]
    fn uids_are_stable_and_never_zero() {
        assert_eq!(uid_of("user-1"), uid_of("user-1"));
        assert_ne!(uid_of("user-1"), uid_of("user-2"));
        assert!((0..1000).all(|i| uid_of(&format!("u{i}")) != 0));
    }
}
