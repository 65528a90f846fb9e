//! SPICE findings (`spice.*`).

use crate::timeline::kinds::finding_kinds;

finding_kinds! {
    /// A broken SPICE rule (spice-protocol, spice-server behaviour; see
    /// protocol-facts §1), or where decoding stopped.
    pub enum SpiceFinding ("spice") {
        UnframedRing = ("spice.unframed_ring", Info, "a bug report's playback ring holds bodies without headers; counted, not framed", "the ryll ring format (seeds)"),
        AuthNotDecoded = ("spice.auth_not_decoded", Info, "an auth mechanism tether does not decode (SASL); the channel is counted only", "spice-protocol SpiceLinkAuthMechanism (protocol-facts §1.2)"),
        BadMagic = ("spice.bad_magic", Error, "a link header whose magic is not REDQ", "spice-protocol SpiceLinkHeader (protocol-facts §1.3)"),
        VersionMismatch = ("spice.version_mismatch", Warning, "a protocol major version other than 2", "spice-protocol SPICE_VERSION_MAJOR (protocol-facts §1.3)"),
        LinkSizeOutOfRange = ("spice.link_size_out_of_range", Error, "a link message size outside what a link message can be", "protocol-facts §1.3, §1.4"),
        LinkCapsOverflow = ("spice.link_caps_overflow", Error, "capability words that do not fit in their link message", "spice-protocol SpiceLinkMess (protocol-facts §1.4, §1.5)"),
        LinkReplyShort = ("spice.link_reply_short", Error, "a successful link reply shorter than its fixed part", "spice-protocol SpiceLinkReply (protocol-facts §1.6)"),
        SerialOutOfOrder = ("spice.serial_out_of_order", Warning, "a full-header message serial that is not the previous one plus one", "spice-protocol SpiceDataHeader (protocol-facts §1.9)"),
        MessageTooLarge = ("limit.message_size", Error, "a message over the configured size limit; the rest of the direction is not decoded", "tether's limits (--max-spice-client-message, --max-spice-server-message)"),
        UnknownClientMessage = ("spice.unknown_client_message", Error, "a client message type the channel does not define; spice-server disconnects the channel for it", "spice.proto; protocol-facts §1.12"),
        UnknownServerMessage = ("spice.unknown_server_message", Warning, "a server message type the channel does not define", "spice.proto; protocol-facts §1.11-§1.13"),
        AckSyncGeneration = ("spice.ack_sync_generation", Warning, "ACK_SYNC names another generation than the last SET_ACK", "protocol-facts §1.15 (flow control)"),
        MessageTooShort = ("spice.message_too_short", Error, "a message body shorter than its fixed part", "spice.proto; protocol-facts §1.11-§1.13"),
        PongWithoutPing = ("spice.pong_without_ping", Warning, "a PONG whose id answers no outstanding PING", "protocol-facts §1.14"),
        PongWithoutPingMidStream = ("spice.pong_without_ping", Info, "a PONG whose id answers no PING, in a ring that starts mid-session (the PING may be before it)", "protocol-facts §1.14; the ryll ring format"),
        AckMissing = ("spice.ack_missing", Error, "the client answered a PING while owing ACKs for the window", "protocol-facts §1.15"),
        AckWithoutSetAck = ("spice.ack_without_set_ack", Warning, "an ACK on a channel that never received SET_ACK", "protocol-facts §1.15"),
        AckTooEarly = ("spice.ack_too_early", Warning, "more ACKs than the server messages received call for", "protocol-facts §1.15"),
        AckWindowExceeded = ("spice.ack_window_exceeded", Warning, "over twice the window of server messages without an ACK (spice-server stops sending there)", "protocol-facts §1.15"),
        LostSync = ("spice.lost_sync", Warning, "bytes missing from the capture: message boundaries in this direction are lost", "the capture (TCP bytes not seen)"),
        TruncatedMessage = ("spice.truncated_message", Warning, "the stream ended inside a message", "spice-protocol framing"),
    }
}
