//! TLS findings (`tls.*`).

use crate::timeline::kinds::finding_kinds;

finding_kinds! {
    /// What TLS records, the key log or the decryption say.
    pub enum TlsFinding ("tls") {
        KeylogBadLine = ("tls.keylog_bad_line", Warning, "a key log line that is not an NSS key log entry; skipped, the rest used", "the NSS key log format (SSLKEYLOGFILE)"),
        NoKey = ("tls.no_key", Info, "the connection stays encrypted: no key log, no entry for it, or a suite tether does not decrypt", "RFC 8446 §7, RFC 5246 §6.3"),
        DecryptFailed = ("tls.decrypt_failed", Warning, "a protected record that does not verify: a wrong or stale key, or damaged bytes", "RFC 5116 (AEAD), RFC 8446 §5.2, RFC 5246 §6.2.3.3"),
        RecordTooLong = ("tls.record_too_long", Warning, "a record longer than 2^14 + 2048 bytes; the rest of the direction is only counted", "RFC 5246 §6.2.3, RFC 8446 §5.2"),
        BadRecord = ("tls.bad_record", Warning, "a record header that is not TLS; the rest of the direction is only counted", "RFC 8446 §5.1"),
        Gap = ("tls.gap", Warning, "bytes missing from the capture: records cannot be found again", "the capture (TCP bytes not seen)"),
        TruncatedRecord = ("tls.truncated_record", Info, "the stream ended inside a record", "RFC 8446 §5.1"),
        HandshakeTooLong = ("tls.handshake_too_long", Warning, "a handshake message over tether's bound; not parsed", "tether's bound on a held handshake message"),
        NoCloseNotify = ("tls.no_close_notify", Info, "a side closed TCP without sending close_notify", "RFC 8446 §6.1, RFC 5246 §7.2.1"),
    }
}
