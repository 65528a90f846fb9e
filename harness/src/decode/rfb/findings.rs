//! RFB findings (`rfb.*`).

use crate::timeline::kinds::finding_kinds;

finding_kinds! {
    /// A broken RFB rule (RFC 6143, rfbproto), or where decoding stopped.
    pub enum RfbFinding ("rfb") {
        BadVersion = ("rfb.bad_version", Warning, "a ProtocolVersion that is not `RFB xxx.yyy\\n`", "RFC 6143 §7.1.1"),
        ClientVersionAboveServer = ("rfb.client_version_above_server", Warning, "the client answered a higher version than the server offered", "RFC 6143 §7.1.1"),
        SecurityTypeNotOffered = ("rfb.security_type_not_offered", Warning, "the client chose a security type the server did not offer", "RFC 6143 §7.1.2"),
        OpaqueAfterSecurity = ("rfb.opaque_after_security", Info, "the rest of the connection cannot be read (encryption or an exchange tether does not follow); timing only", "RFC 6143 §7.2"),
        StalledHandshake = ("rfb.stalled_handshake", Warning, "one side sent more than tether holds before the other said what it depends on", "tether's bound on held bytes"),
        OversizedHeader = ("rfb.oversized_header", Warning, "a message header larger than the carry-over bound", "tether's bound on a held header"),
        DataAfterClose = ("rfb.data_after_close", Warning, "a side kept sending after the server refused the connection", "RFC 6143 §7.1.3 (the server closes after a failed SecurityResult)"),
        BadPixelFormat = ("rfb.bad_pixel_format", Warning, "bits-per-pixel other than 8, 16 or 32: rectangles with pixels cannot be framed", "RFC 6143 §7.4"),
        UnknownMessageType = ("rfb.unknown_message_type", Warning, "a message type (or QEMU subtype) no specification defines; the rest of the direction is only counted", "RFC 6143 §7.5, §7.6; rfbproto QEMU messages"),
        FencePayloadTooLong = ("rfb.fence_payload_too_long", Warning, "a Fence with over 64 bytes of payload", "rfbproto Fence"),
        UnframeableEncoding = ("rfb.unframeable_encoding", Warning, "a rectangle whose length tether cannot know (an unknown encoding, or pixels without a usable format); the rest of the direction is only counted", "RFC 6143 §7.7; rfbproto encodings"),
        TrleRunOverflow = ("rfb.trle_run_overflow", Warning, "a TRLE run longer than the pixels left in its tile", "RFC 6143 §7.7.5"),
        TrleBadIndex = ("rfb.trle_bad_index", Warning, "a TRLE palette index past the palette", "RFC 6143 §7.7.5"),
        TrleNoPalette = ("rfb.trle_no_palette", Warning, "a TRLE tile reuses a palette no earlier tile sent", "RFC 6143 §7.7.5"),
        TrleBadSubencoding = ("rfb.trle_bad_subencoding", Warning, "a TRLE subencoding that is not defined", "RFC 6143 §7.7.5"),
        TightBadFilter = ("rfb.tight_bad_filter", Warning, "a Tight filter id that is not defined", "rfbproto Tight encoding"),
        TightBadControl = ("rfb.tight_bad_control", Warning, "a Tight compression control byte that is not defined", "rfbproto Tight encoding"),
        BadVmwareCursor = ("rfb.bad_vmware_cursor", Warning, "a VMware cursor type other than 0 (classic) or 1 (alpha)", "rfbproto VMware Cursor pseudo-encoding"),
        Resynchronised = ("rfb.resynchronised", Info, "decoding resumes after a gap at a segment that starts with a plausible message", "tether's resynchronisation (RFC 6143 §7.5, §7.6 message layouts)"),
        Gap = ("rfb.gap", Warning, "bytes missing from the capture", "the capture (TCP bytes not seen)"),
        EndedMidMessage = ("rfb.ended_mid_message", Info, "the stream ended inside a message", "RFC 6143 §7"),
    }
}
