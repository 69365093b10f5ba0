//! The AWS Encryption SDK message format, as far as Cognito uses it for the codes it hands a
//! custom sender trigger: one message, one data key (wrapped by KMS, provider id `aws-kms`),
//! AES-256-GCM content. A provider format, not a domain rule; it follows the specification
//! (github.com/awslabs/aws-encryption-sdk-specification, `data-format/` and `framework/`).
//!
//! Decryption reads message format 2.0 with key commitment (suites 0x0478, and 0x0578 signed
//! with ECDSA P-384, Cognito's default) and format 1.0 suite 0x0378 (older pools), framed or
//! not. [`Message::parse`] reads the header; the caller unwraps the data key (KMS Decrypt of
//! [`Message::kms_data_key`] with [`Message::context`]); [`Message::decrypt`] checks the key
//! commitment, the header, every frame and the signature before returning any plaintext.
//!
//! The `encrypt` feature (the local stack's Cognito, and the tests) adds [`Encryptor`], which
//! writes such messages (suite 0x0578, one final frame); the deployed function leaves it out.

use std::collections::BTreeMap;

use base64::Engine;
use p384::ecdsa::signature::Verifier;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use subtle::ConstantTimeEq;

/// The key provider id of a data key wrapped by AWS KMS.
pub const KMS_PROVIDER: &str = "aws-kms";
/// The encryption context key a signing suite stores its verification key under.
pub const PUBLIC_KEY_CONTEXT: &str = "aws-crypto-public-key";

const TAG_LEN: usize = 16;
const IV_LEN: usize = 12;
const KEY_LEN: usize = 32;
const FINAL_FRAME: u32 = 0xFFFF_FFFF;
const FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Final Frame";
const SINGLE_BLOCK_AAD: &[u8] = b"AWSKMSEncryptionClient Single Block";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EsdkError {
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("algorithm suite {0:#06x} is not supported")]
    UnsupportedSuite(u16),
    #[error("no data key from {KMS_PROVIDER}")]
    NoKmsDataKey,
    #[error("the data key does not match the message's key commitment")]
    Commitment,
    #[error("the header does not authenticate")]
    Header,
    #[error("the body does not authenticate")]
    Body,
    #[error("the signature does not verify")]
    Signature,
}

/// The algorithm suites read here: all AES-256-GCM, IV 12, tag 16, with HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// 0x0378, message format 1.0: HKDF-SHA384, ECDSA P-384.
    V1HkdfSha384EcdsaP384,
    /// 0x0478, message format 2.0: HKDF-SHA512, key commitment.
    CommitKey,
    /// 0x0578, message format 2.0: HKDF-SHA512, key commitment, ECDSA P-384.
    CommitKeyEcdsaP384,
}

impl Suite {
    fn from_id(id: u16) -> Result<Self, EsdkError> {
        match id {
            0x0378 => Ok(Self::V1HkdfSha384EcdsaP384),
            0x0478 => Ok(Self::CommitKey),
            0x0578 => Ok(Self::CommitKeyEcdsaP384),
            other => Err(EsdkError::UnsupportedSuite(other)),
        }
    }

    pub fn id(self) -> u16 {
        match self {
            Self::V1HkdfSha384EcdsaP384 => 0x0378,
            Self::CommitKey => 0x0478,
            Self::CommitKeyEcdsaP384 => 0x0578,
        }
    }

    fn version(self) -> u8 {
        if self == Self::V1HkdfSha384EcdsaP384 { 1 } else { 2 }
    }

    fn signed(self) -> bool {
        self != Self::CommitKey
    }

    fn message_id_len(self) -> usize {
        if self.version() == 1 { 16 } else { 32 }
    }
}

/// A data key as the header stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    pub provider_id: String,
    /// For `aws-kms`, the ARN of the KMS key that wrapped it.
    pub provider_info: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// A parsed message; it borrows the bytes (the signature covers them as they are).
#[derive(Debug)]
pub struct Message<'a> {
    bytes: &'a [u8],
    pub suite: Suite,
    message_id: &'a [u8],
    /// The encryption context, which KMS must be given to unwrap the data key.
    pub context: BTreeMap<String, String>,
    pub data_keys: Vec<EncryptedDataKey>,
    framed: bool,
    frame_len: u32,
    commitment: Option<&'a [u8]>,
    header_body: &'a [u8],
    header_iv: [u8; IV_LEN],
    header_tag: &'a [u8],
    /// Where the body starts in `bytes`.
    body_at: usize,
}

/// A cursor over the message bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EsdkError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(EsdkError::Malformed("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, EsdkError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, EsdkError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, EsdkError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, EsdkError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    /// A u16 length, then that many bytes.
    fn field(&mut self) -> Result<&'a [u8], EsdkError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn text(&mut self) -> Result<String, EsdkError> {
        String::from_utf8(self.field()?.to_vec()).map_err(|_| EsdkError::Malformed("not UTF-8"))
    }
}

impl<'a> Message<'a> {
    /// Reads the header (nothing is authenticated yet: see [`Message::decrypt`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EsdkError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version == 1 && r.u8()? != 0x80 {
            return Err(EsdkError::Malformed("message type"));
        }
        let suite = Suite::from_id(r.u16()?)?;
        if suite.version() != version {
            return Err(EsdkError::Malformed("suite and version disagree"));
        }
        let message_id = r.take(suite.message_id_len())?;
        let context = parse_context(r.field()?)?;
        let key_count = r.u16()?;
        if key_count == 0 {
            return Err(EsdkError::Malformed("no data key"));
        }
        let mut data_keys = Vec::with_capacity(key_count as usize);
        for _ in 0..key_count {
            data_keys.push(EncryptedDataKey {
                provider_id: r.text()?,
                provider_info: r.field()?.to_vec(),
                ciphertext: r.field()?.to_vec(),
            });
        }
        let framed = match r.u8()? {
            1 => false,
            2 => true,
            _ => return Err(EsdkError::Malformed("content type")),
        };
        if version == 1 && (r.u32()? != 0 || r.u8()? as usize != IV_LEN) {
            return Err(EsdkError::Malformed("reserved bytes or IV length"));
        }
        let frame_len = r.u32()?;
        if framed == (frame_len == 0) {
            return Err(EsdkError::Malformed("frame length"));
        }
        let commitment = if version == 2 { Some(r.take(KEY_LEN)?) } else { None };
        let header_body = &bytes[..r.at];
        let mut header_iv = [0; IV_LEN];
        if version == 1 {
            header_iv.copy_from_slice(r.take(IV_LEN)?);
        }
        let header_tag = r.take(TAG_LEN)?;
        Ok(Self {
            bytes,
            suite,
            message_id,
            context,
            data_keys,
            framed,
            frame_len,
            commitment,
            header_body,
            header_iv,
            header_tag,
            body_at: r.at,
        })
    }

    /// The data key wrapped by KMS: its ciphertext, and the key it names.
    pub fn kms_data_key(&self) -> Result<&EncryptedDataKey, EsdkError> {
        self.data_keys.iter().find(|k| k.provider_id == KMS_PROVIDER).ok_or(EsdkError::NoKmsDataKey)
    }

    /// The plaintext, once the key commitment, the header, every frame, the message's end
    /// and (for signing suites) the signature all check out; `data_key` is the unwrapped key.
    pub fn decrypt(&self, data_key: &[u8]) -> Result<Vec<u8>, EsdkError> {
        if data_key.len() != KEY_LEN {
            return Err(EsdkError::Malformed("data key length"));
        }
        let (key, commit) = derive_keys(self.suite, self.message_id, data_key);
        if let (Some(stored), Some(derived)) = (self.commitment, commit)
            && !bool::from(stored.ct_eq(&derived))
        {
            return Err(EsdkError::Commitment);
        }
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key"));
        open(&key, self.header_iv, self.header_body, &[], self.header_tag).map_err(|_| EsdkError::Header)?;

        let mut r = Reader { bytes: self.bytes, at: self.body_at };
        let mut plaintext = Vec::new();
        if self.framed {
            let mut expected = 1u32;
            loop {
                let mut sequence = r.u32()?;
                let last = sequence == FINAL_FRAME;
                if last {
                    sequence = r.u32()?;
                }
                if sequence != expected {
                    return Err(EsdkError::Malformed("frame out of sequence"));
                }
                let iv = r.take(IV_LEN)?;
                let len = if last { r.u32()? } else { self.frame_len };
                if len > self.frame_len {
                    return Err(EsdkError::Malformed("final frame longer than a frame"));
                }
                let content = r.take(len as usize)?;
                let tag = r.take(TAG_LEN)?;
                let label = if last { FINAL_FRAME_AAD } else { FRAME_AAD };
                let aad = body_aad(self.message_id, label, sequence, len as u64);
                plaintext.extend(open(&key, iv.try_into().expect("12 bytes"), &aad, content, tag)?);
                if last {
                    break;
                }
                expected =
                    expected.checked_add(1).filter(|&n| n != FINAL_FRAME).ok_or(EsdkError::Malformed("frames"))?;
            }
        } else {
            let iv = r.take(IV_LEN)?;
            let len = r.u64()?;
            let content = r.take(usize::try_from(len).map_err(|_| EsdkError::Malformed("content length"))?)?;
            let tag = r.take(TAG_LEN)?;
            let aad = body_aad(self.message_id, SINGLE_BLOCK_AAD, 1, len);
            plaintext = open(&key, iv.try_into().expect("12 bytes"), &aad, content, tag)?;
        }

        if self.suite.signed() {
            let signed = &self.bytes[..r.at];
            let signature = r.field()?;
            self.verify(signed, signature)?;
        }
        if r.at != self.bytes.len() {
            return Err(EsdkError::Malformed("bytes after the message"));
        }
        Ok(plaintext)
    }

    fn verify(&self, signed: &[u8], signature: &[u8]) -> Result<(), EsdkError> {
        let public = self.context.get(PUBLIC_KEY_CONTEXT).ok_or(EsdkError::Signature)?;
        let public = base64::engine::general_purpose::STANDARD.decode(public).map_err(|_| EsdkError::Signature)?;
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&public).map_err(|_| EsdkError::Signature)?;
        let signature = p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| EsdkError::Signature)?;
        key.verify(signed, &signature).map_err(|_| EsdkError::Signature)
    }
}

/// The encryption context: a count, then (key, value) pairs, each a u16 length and UTF-8.
fn parse_context(bytes: &[u8]) -> Result<BTreeMap<String, String>, EsdkError> {
    let mut context = BTreeMap::new();
    if bytes.is_empty() {
        return Ok(context);
    }
    let mut r = Reader { bytes, at: 0 };
    for _ in 0..r.u16()? {
        let key = r.text()?;
        if context.insert(key, r.text()?).is_some() {
            return Err(EsdkError::Malformed("duplicate encryption context key"));
        }
    }
    if r.at != bytes.len() {
        return Err(EsdkError::Malformed("encryption context length"));
    }
    Ok(context)
}

/// The content key and, for committing suites, the commitment key (spec: framework/
/// transitive-requirements.md, "HKDF Encryption Key" and "HKDF Commit Key").
fn derive_keys(suite: Suite, message_id: &[u8], data_key: &[u8]) -> ([u8; KEY_LEN], Option<[u8; KEY_LEN]>) {
    struct Len;
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            KEY_LEN
        }
    }
    let expand = |prk: &hkdf::Prk, info: &[&[u8]]| {
        let mut out = [0; KEY_LEN];
        prk.expand(info, Len).and_then(|okm| okm.fill(&mut out)).expect("32 bytes is a valid HKDF length");
        out
    };
    let id = suite.id().to_be_bytes();
    match suite {
        // No salt: HMAC pads an empty key with zeros, so this is the spec's zero salt.
        Suite::V1HkdfSha384EcdsaP384 => {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA384, &[]).extract(data_key);
            (expand(&prk, &[&id, message_id]), None)
        }
        Suite::CommitKey | Suite::CommitKeyEcdsaP384 => {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, message_id).extract(data_key);
            (expand(&prk, &[&id, b"DERIVEKEY"]), Some(expand(&prk, &[b"COMMITKEY"])))
        }
    }
}

/// Message ID, the content's label, its sequence number and its plaintext length.
fn body_aad(message_id: &[u8], label: &[u8], sequence: u32, len: u64) -> Vec<u8> {
    [message_id, label, &sequence.to_be_bytes(), &len.to_be_bytes()].concat()
}

fn open(key: &LessSafeKey, iv: [u8; IV_LEN], aad: &[u8], content: &[u8], tag: &[u8]) -> Result<Vec<u8>, EsdkError> {
    let mut in_out = [content, tag].concat();
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut in_out)
        .map_err(|_| EsdkError::Body)?;
    Ok(plain.to_vec())
}

#[cfg(any(test, feature = "encrypt"))]
pub use encrypt::Encryptor;

#[cfg(any(test, feature = "encrypt"))]
mod encrypt {
    use super::*;
    use p384::ecdsa::signature::Signer;
    use ring::rand::{SecureRandom, SystemRandom};

    /// Writes a message as Cognito does by default (suite 0x0578, framed, one final frame).
    /// Two steps, because the data key is wrapped under the whole encryption context, which
    /// includes the signing key's public half: [`Encryptor::new`] gives the context to wrap
    /// under, [`Encryptor::seal`] takes the data key and its wrapped form.
    pub struct Encryptor {
        signing: p384::ecdsa::SigningKey,
        context: BTreeMap<String, String>,
    }

    impl Encryptor {
        pub fn new(mut context: BTreeMap<String, String>) -> Self {
            let signing = loop {
                // A random 48 bytes is a valid scalar but with probability about 2^-190.
                if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&random::<48>()) {
                    break key;
                }
            };
            let public = signing.verifying_key().to_encoded_point(true);
            context.insert(PUBLIC_KEY_CONTEXT.into(), base64::engine::general_purpose::STANDARD.encode(public));
            Self { signing, context }
        }

        /// The encryption context the data key must be wrapped under.
        pub fn context(&self) -> &BTreeMap<String, String> {
            &self.context
        }

        /// A fresh data key.
        pub fn data_key() -> [u8; KEY_LEN] {
            random()
        }

        pub fn seal(&self, data_key: &[u8; KEY_LEN], wrapped: &EncryptedDataKey, plaintext: &[u8]) -> Vec<u8> {
            let suite = Suite::CommitKeyEcdsaP384;
            let message_id = random::<32>();
            let (key, commit) = derive_keys(suite, &message_id, data_key);
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key"));
            let frame_len = 4096u32;
            assert!(plaintext.len() <= frame_len as usize, "one frame is all a code needs");

            let mut context = Vec::new();
            if !self.context.is_empty() {
                context.extend((self.context.len() as u16).to_be_bytes());
                for (k, v) in &self.context {
                    put_field(&mut context, k.as_bytes());
                    put_field(&mut context, v.as_bytes());
                }
            }
            let mut out = vec![suite.version()];
            out.extend(suite.id().to_be_bytes());
            out.extend(message_id);
            put_field(&mut out, &context);
            out.extend(1u16.to_be_bytes());
            put_field(&mut out, wrapped.provider_id.as_bytes());
            put_field(&mut out, &wrapped.provider_info);
            put_field(&mut out, &wrapped.ciphertext);
            out.push(2); // framed
            out.extend(frame_len.to_be_bytes());
            out.extend(commit.expect("a committing suite"));
            let tag = seal(&key, [0; IV_LEN], &out, &mut []);
            out.extend(tag);

            // The final frame, sequence number 1; its IV is the sequence number, padded.
            let mut iv = [0; IV_LEN];
            iv[IV_LEN - 4..].copy_from_slice(&1u32.to_be_bytes());
            let mut content = plaintext.to_vec();
            let aad = body_aad(&message_id, FINAL_FRAME_AAD, 1, content.len() as u64);
            let tag = seal(&key, iv, &aad, &mut content);
            out.extend(FINAL_FRAME.to_be_bytes());
            out.extend(1u32.to_be_bytes());
            out.extend(iv);
            out.extend((content.len() as u32).to_be_bytes());
            out.extend(content);
            out.extend(tag);

            let signature: p384::ecdsa::Signature = self.signing.sign(&out);
            put_field(&mut out, signature.to_der().as_bytes());
            out
        }
    }

    fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend(u16::try_from(bytes.len()).expect("a field under 64 KiB").to_be_bytes());
        out.extend(bytes);
    }

    fn seal(key: &LessSafeKey, iv: [u8; IV_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), in_out)
            .expect("a short message");
        tag.as_ref().try_into().expect("16-byte tag")
    }

    fn random<const N: usize>() -> [u8; N] {
        let mut out = [0; N];
        SystemRandom::new().fill(&mut out).expect("the system's random source");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped() -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: KMS_PROVIDER.into(),
            provider_info: b"arn:aws:kms:ap-south-1:123456789012:key/k".to_vec(),
            ciphertext: b"wrapped".to_vec(),
        }
    }

    fn sealed(code: &str) -> ([u8; KEY_LEN], Vec<u8>) {
        let e = Encryptor::new(BTreeMap::from([("userpool-id".to_string(), "ap-south-1_x".to_string())]));
        let key = Encryptor::data_key();
        (key, e.seal(&key, &wrapped(), code.as_bytes()))
    }

    #[test]
    fn a_sealed_code_opens_with_its_data_key_and_names_its_kms_key_and_context() {
        let (key, bytes) = sealed("123456");
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.suite, Suite::CommitKeyEcdsaP384);
        assert_eq!(m.kms_data_key().unwrap(), &wrapped());
        assert_eq!(m.context["userpool-id"], "ap-south-1_x");
        assert!(m.context.contains_key(PUBLIC_KEY_CONTEXT));
        assert_eq!(m.decrypt(&key).unwrap(), b"123456");
    }

    #[test]
    fn another_data_key_fails_the_commitment() {
        let (_, bytes) = sealed("123456");
        assert_eq!(Message::parse(&bytes).unwrap().decrypt(&[7; KEY_LEN]), Err(EsdkError::Commitment));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let (key, bytes) = sealed("123456");
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let result = Message::parse(&tampered).and_then(|m| m.decrypt(&key));
            assert!(result.is_err(), "byte {i} of {} flipped, still {result:?}", bytes.len());
        }
    }

    #[test]
    fn a_cut_or_extended_message_is_refused() {
        let (key, bytes) = sealed("123456");
        for end in 0..bytes.len() {
            assert!(Message::parse(&bytes[..end]).and_then(|m| m.decrypt(&key)).is_err(), "cut at {end}");
        }
        let longer = [bytes.as_slice(), &[0]].concat();
        assert_eq!(
            Message::parse(&longer).unwrap().decrypt(&key),
            Err(EsdkError::Malformed("bytes after the message"))
        );
    }

    #[test]
    fn a_resigned_body_from_another_key_pair_is_refused() {
        // Another message's body and signature, with its own signing key, behind this header.
        let (key, bytes) = sealed("123456");
        let (_, other) = sealed("999999");
        let m = Message::parse(&bytes).unwrap();
        let o = Message::parse(&other).unwrap();
        let swapped = [&bytes[..m.body_at], &other[o.body_at..]].concat();
        assert!(Message::parse(&swapped).unwrap().decrypt(&key).is_err());
    }

    #[test]
    fn other_suites_and_versions_are_refused_before_any_key_is_used() {
        let (_, mut bytes) = sealed("1");
        bytes[1..3].copy_from_slice(&0x0178u16.to_be_bytes());
        assert_eq!(Message::parse(&bytes).unwrap_err(), EsdkError::UnsupportedSuite(0x0178));
        bytes[1..3].copy_from_slice(&0x0378u16.to_be_bytes());
        assert_eq!(Message::parse(&bytes).unwrap_err(), EsdkError::Malformed("suite and version disagree"));
    }
}
