//! Record protection: the AEAD cipher suites, their key derivation and
//! opening one record. Primitives are RustCrypto's (AES-GCM,
//! ChaCha20-Poly1305, HMAC, HKDF, SHA-2): pure Rust, so the decoder builds
//! and fuzzes anywhere, with AES-NI/CLMUL picked at run time.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

/// TLS 1.2 and 1.3 versions as the record layer and supported_versions
/// say them.
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Cipher {
    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            Cipher::Aes256Gcm | Cipher::ChaCha20Poly1305 => 32,
        }
    }
}

/// A cipher suite tether can decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub cipher: Cipher,
    pub hash: Hash,
}

/// The AEAD suites of TLS 1.3 (RFC 8446 §B.4) and TLS 1.2 (RFC 5288,
/// RFC 5289, RFC 7905). CBC and other suites are left encrypted.
pub fn suite(id: u16) -> Option<Suite> {
    use Cipher::*;
    use Hash::*;
    let (cipher, hash) = match id {
        0x1301 => (Aes128Gcm, Sha256),
        0x1302 => (Aes256Gcm, Sha384),
        0x1303 => (ChaCha20Poly1305, Sha256),
        0x009C | 0x009E | 0xC02B | 0xC02F => (Aes128Gcm, Sha256),
        0x009D | 0x009F | 0xC02C | 0xC030 => (Aes256Gcm, Sha384),
        0xCCA8..=0xCCAA => (ChaCha20Poly1305, Sha256),
        _ => return None,
    };
    Some(Suite { cipher, hash })
}

/// What AEAD protection adds to a record's plaintext, known from the
/// version and suite alone: the tag, TLS 1.2 GCM's explicit nonce (RFC 5288
/// §3; ChaCha20-Poly1305 has none, RFC 7905 §2), TLS 1.3's inner content
/// type (padding, which no peer recorded here uses, would hide in it). `None`
/// for suites tether does not decrypt (CBC pads to its block).
pub fn sealed_overhead(version: u16, suite_id: u16) -> Option<usize> {
    if version == TLS13 {
        return Some(TAG + 1);
    }
    Some(match suite(suite_id)?.cipher {
        Cipher::ChaCha20Poly1305 => TAG,
        Cipher::Aes128Gcm | Cipher::Aes256Gcm => TAG + EXPLICIT_NONCE,
    })
}

fn hmac(hash: Hash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    macro_rules! run {
        ($h:ty) => {{
            let mut m = <Hmac<$h> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }};
    }
    match hash {
        Hash::Sha256 => run!(Sha256),
        Hash::Sha384 => run!(Sha384),
    }
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed).
pub fn prf12(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut a = hmac(hash, secret, &[label, seed]);
    while out.len() < len {
        out.extend(hmac(hash, secret, &[&a, label, seed]));
        a = hmac(hash, secret, &[&a]);
    }
    out.truncate(len);
    out
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
pub fn expand_label(hash: Hash, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend((len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend(full.as_bytes());
    info.push(0);
    let mut out = vec![0; len];
    match hash {
        Hash::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        Hash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

enum Aead {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Aead {
    fn new(cipher: Cipher, key: &[u8]) -> Option<Aead> {
        Some(match cipher {
            Cipher::Aes128Gcm => Aead::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Cipher::Aes256Gcm => Aead::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Cipher::ChaCha20Poly1305 => {
                Aead::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        })
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let tag = aes_gcm::Tag::from_slice(tag);
        match self {
            Aead::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag).is_ok(),
            Aead::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag).is_ok(),
            Aead::ChaCha(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag).is_ok(),
        }
    }
}

const TAG: usize = 16;
/// TLS 1.2 AES-GCM's explicit nonce, sent before each record's ciphertext.
const EXPLICIT_NONCE: usize = 8;

/// One direction's record protection and its sequence number.
pub struct RecordCipher {
    aead: Aead,
    /// TLS 1.3 and ChaCha: the whole 12-byte IV; TLS 1.2 GCM: the 4-byte
    /// salt in front.
    iv: [u8; 12],
    tls13: bool,
    explicit_nonce: bool,
    pub seq: u64,
}

/// Why a record did not open.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than its nonce and tag.
    Short,
    /// The tag did not verify: the key is not this connection's.
    BadTag,
    /// TLS 1.3: no content type after the padding.
    NoContentType,
}

impl RecordCipher {
    /// TLS 1.3 protection from a traffic secret (RFC 8446 §7.3).
    pub fn tls13(suite: Suite, secret: &[u8]) -> Option<RecordCipher> {
        let key = expand_label(suite.hash, secret, "key", suite.cipher.key_len())?;
        let iv = expand_label(suite.hash, secret, "iv", 12)?;
        Some(RecordCipher {
            aead: Aead::new(suite.cipher, &key)?,
            iv: iv.try_into().ok()?,
            tls13: true,
            explicit_nonce: false,
            seq: 0,
        })
    }

    /// TLS 1.2 protection for both directions (client's, server's) from
    /// the master secret (RFC 5246 §6.3; AEAD suites have no MAC keys).
    pub fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8],
        server_random: &[u8],
    ) -> Option<(RecordCipher, RecordCipher)> {
        let key_len = suite.cipher.key_len();
        let iv_len = match suite.cipher {
            Cipher::ChaCha20Poly1305 => 12,
            _ => 4,
        };
        let seed = [server_random, client_random].concat();
        let block = prf12(
            suite.hash,
            master,
            b"key expansion",
            &seed,
            2 * (key_len + iv_len),
        );
        let (ck, rest) = block.split_at(key_len);
        let (sk, rest) = rest.split_at(key_len);
        let (civ, siv) = rest.split_at(iv_len);
        let make = |key: &[u8], iv: &[u8]| {
            let mut full = [0u8; 12];
            full[..iv.len()].copy_from_slice(iv);
            Some(RecordCipher {
                aead: Aead::new(suite.cipher, key)?,
                iv: full,
                tls13: false,
                explicit_nonce: iv_len == 4,
                seq: 0,
            })
        };
        Some((make(ck, civ)?, make(sk, siv)?))
    }

    /// Bytes a protected record adds to its content: the explicit nonce
    /// and tag (TLS 1.2), or the tag and inner content type (TLS 1.3,
    /// without padding).
    pub fn overhead(&self) -> usize {
        TAG + if self.explicit_nonce {
            EXPLICIT_NONCE
        } else {
            0
        } + usize::from(self.tls13)
    }

    /// Opens one record in place. `header` is its 5-byte header; `body`
    /// holds the record's payload and, on success, begins with the
    /// plaintext. Returns the content type and the plaintext length.
    pub fn open(&mut self, header: [u8; 5], body: &mut [u8]) -> Result<(u8, usize), OpenError> {
        let seq = self.seq.to_be_bytes();
        let lead = if self.explicit_nonce {
            EXPLICIT_NONCE
        } else {
            0
        };
        if body.len() < lead + TAG {
            return Err(OpenError::Short);
        }
        let mut nonce = self.iv;
        if self.explicit_nonce {
            nonce[4..].copy_from_slice(&body[..EXPLICIT_NONCE]);
        } else {
            for (n, s) in nonce[4..].iter_mut().zip(seq) {
                *n ^= s;
            }
        }
        let ct_len = body.len() - lead - TAG;
        let (head, tag) = body.split_at_mut(lead + ct_len);
        let ct = &mut head[lead..];
        let ok = if self.tls13 {
            self.aead.open(&nonce, &header, ct, tag)
        } else {
            let mut aad = [0u8; 13];
            aad[..8].copy_from_slice(&seq);
            aad[8..11].copy_from_slice(&header[..3]);
            aad[11..].copy_from_slice(&(ct_len as u16).to_be_bytes());
            self.aead.open(&nonce, &aad, ct, tag)
        };
        if !ok {
            return Err(OpenError::BadTag);
        }
        self.seq += 1;
        if lead > 0 {
            body.copy_within(lead..lead + ct_len, 0);
        }
        if !self.tls13 {
            return Ok((header[0], ct_len));
        }
        // TLSInnerPlaintext: content, then the real type, then zeros.
        let inner = &body[..ct_len];
        let Some(last) = inner.iter().rposition(|b| *b != 0) else {
            return Err(OpenError::NoContentType);
        };
        Ok((inner[last], last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// RFC 8448 §3 (Simple 1-RTT Handshake): the server's handshake
    /// traffic secret gives the published key and IV.
    #[test]
    fn tls13_key_schedule_matches_rfc8448() {
        let secret = unhex(
            "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d
             42 be fd 59 d3 91 ad 38",
        );
        let key = expand_label(Hash::Sha256, &secret, "key", 16).unwrap();
        let iv = expand_label(Hash::Sha256, &secret, "iv", 12).unwrap();
        assert_eq!(
            key,
            unhex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(iv, unhex("5d 31 3e b2 67 12 76 ee 13 00 0b 30"));
    }

    /// RFC 8448 §3: the server's first protected record (EncryptedExtensions
    /// onwards) opens with those keys, inner type handshake (22).
    #[test]
    fn tls13_record_opens_like_rfc8448() {
        let secret = unhex(
            "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d
             42 be fd 59 d3 91 ad 38",
        );
        let suite = super::suite(0x1301).unwrap();
        let mut rc = RecordCipher::tls13(suite, &secret).unwrap();
        // A record made with the same key and nonce, as RFC 8448 builds it,
        // would be long; sealing one here checks open() against the AEAD.
        let key = expand_label(Hash::Sha256, &secret, "key", 16).unwrap();
        let iv: [u8; 12] = expand_label(Hash::Sha256, &secret, "iv", 12)
            .unwrap()
            .try_into()
            .unwrap();
        let plain = b"hello\x16";
        let header = [0x17, 0x03, 0x03, 0x00, (plain.len() + 16) as u8];
        let cipher = Aes128Gcm::new_from_slice(&key).unwrap();
        let mut body = plain.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(aes_gcm::Nonce::from_slice(&iv), &header, &mut body)
            .unwrap();
        body.extend_from_slice(&tag);
        assert_eq!(rc.open(header, &mut body), Ok((0x16, 5)));
        assert_eq!(&body[..5], b"hello");
        // The next record uses sequence number 1: the same bytes fail.
        let mut again = plain.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(aes_gcm::Nonce::from_slice(&iv), &header, &mut again)
            .unwrap();
        again.extend_from_slice(&tag);
        assert_eq!(rc.open(header, &mut again), Err(OpenError::BadTag));
    }

    /// The TLS 1.2 PRF against the widely used P_SHA256 test vector
    /// (IETF TLS WG, "test vectors for the TLS 1.2 PRF").
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = unhex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = unhex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = prf12(Hash::Sha256, &secret, b"test label", &seed, 100);
        assert_eq!(
            out,
            unhex(
                "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95
                 32 9b 52 d4 e6 1e db 5a 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af
                 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b
                 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
                 87 34 7b 66"
            )
        );
    }
}
