//! WebSocket findings (`ws.*`).

use crate::timeline::kinds::finding_kinds;

finding_kinds! {
    /// A broken RFC 6455 (or RFC 7692, websockify) rule, or a limit.
    pub enum WsFinding ("ws") {
        HttpHeadTooLong = ("ws.http_head_too_long", Error, "an HTTP upgrade head runs past 16 KiB without its blank line; the connection is only counted", "tether's bound on the head it holds"),
        MalformedHttpHead = ("ws.malformed_http_head", Error, "the upgrade request or response is not an HTTP/1.1 head", "RFC 9112 §2, RFC 6455 §4.1"),
        BadUpgradeRequest = ("ws.bad_upgrade_request", Warning, "the opening handshake lacks a header the server must check (Upgrade, Connection, Sec-WebSocket-Key, version 13)", "RFC 6455 §4.1, §4.2.1"),
        BadAccept = ("ws.bad_accept", Error, "Sec-WebSocket-Accept is not the hash of the client's key", "RFC 6455 §4.2.2, §4.1 (the client must fail the connection)"),
        UnofferedSubprotocol = ("ws.unoffered_subprotocol", Error, "the server chose a subprotocol the client did not offer", "RFC 6455 §4.1"),
        UnofferedExtension = ("ws.unoffered_extension", Error, "the server accepted an extension the client did not offer", "RFC 6455 §4.1, §9.1"),
        DataBeforeUpgradeResponse = ("ws.data_before_upgrade_response", Warning, "the client sent frames before the server's 101 response", "RFC 6455 §4.1 (data only once the handshake is complete)"),
        DataAfterClose = ("ws.data_after_close", Error, "a data frame after this side's Close", "RFC 6455 §5.5.1"),
        UnmaskedClientFrame = ("ws.unmasked_client_frame", Error, "a client frame without a mask", "RFC 6455 §5.1, §5.3"),
        MaskedServerFrame = ("ws.masked_server_frame", Error, "a server frame with a mask", "RFC 6455 §5.1"),
        LengthTopBit = ("ws.length_top_bit", Error, "a 64-bit payload length with its most significant bit set", "RFC 6455 §5.2"),
        NonMinimalLength = ("ws.non_minimal_length", Warning, "a payload length in more bytes than it needs", "RFC 6455 §5.2"),
        ReservedBits = ("ws.reserved_bits", Error, "RSV bits set that no negotiated extension defines", "RFC 6455 §5.2"),
        FragmentedControlFrame = ("ws.fragmented_control_frame", Error, "a ping, pong or close frame without FIN", "RFC 6455 §5.5"),
        ControlFrameTooLong = ("ws.control_frame_too_long", Error, "a control frame with over 125 bytes of payload", "RFC 6455 §5.5"),
        ContinuationWithoutStart = ("ws.continuation_without_start", Error, "a continuation frame with no fragmented message open", "RFC 6455 §5.4"),
        DataInsideFragmentedMessage = ("ws.data_inside_fragmented_message", Error, "a new text or binary frame while a fragmented message is open", "RFC 6455 §5.4"),
        MessageTooLarge = ("limit.message_size", Error, "a message over the configured size limit; the rest of the direction is not decoded", "tether's limit (--max-ws-message)"),
        ReservedOpcode = ("ws.reserved_opcode", Error, "an opcode RFC 6455 reserves", "RFC 6455 §5.2"),
        InflateFailed = ("ws.inflate_failed", Warning, "a permessage-deflate message does not inflate", "RFC 7692 §7.2.2"),
        InvalidUtf8Text = ("ws.invalid_utf8_text", Error, "a text message that is not UTF-8", "RFC 6455 §5.6, §8.1"),
        InvalidBase64 = ("ws.invalid_base64", Error, "a text frame of the base64 subprotocol that is not base64", "websockify's base64 subprotocol (protocol-facts §3)"),
        ClosePayloadOneByte = ("ws.close_payload_one_byte", Error, "a close frame with a one-byte body (a code takes two)", "RFC 6455 §5.5.1"),
        InvalidUtf8CloseReason = ("ws.invalid_utf8_close_reason", Error, "a close reason that is not UTF-8", "RFC 6455 §5.5.1"),
        CloseCodeNeverSent = ("ws.close_code_never_sent", Error, "a close code reserved for reporting (1005, 1006, 1015) sent on the wire", "RFC 6455 §7.4.1"),
        CloseCodeUnassigned = ("ws.invalid_close_code", Error, "a close code below 1000 or in the unassigned 1016-2999", "RFC 6455 §7.4.2"),
        CloseCodePastRanges = ("ws.invalid_close_code", Warning, "a close code of 5000 or more, outside every defined range", "RFC 6455 §7.4.2"),
        GapLostFraming = ("ws.gap_lost_framing", Warning, "bytes missing from the capture inside the frames: framing is lost for the rest of the direction", "the capture (TCP bytes not seen)"),
        IncompleteAtEnd = ("ws.incomplete_at_end", Warning, "the connection closed inside a frame or a fragmented message", "RFC 6455 §5.4, §7.1.1"),
        CloseNotAnswered = ("ws.close_not_answered", Warning, "a Close that the other side never answered with its own before the TCP close", "RFC 6455 §5.5.1, §7.1.2"),
    }
}
