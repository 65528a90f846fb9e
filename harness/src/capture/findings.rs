//! Capture-file and bug-report findings (`capture.*`, `bugreport.*`, and
//! the zip limits).

use crate::timeline::kinds::finding_kinds;

finding_kinds! {
    /// What reading a pcap or pcapng file says.
    pub enum CaptureFinding ("capture") {
        ReadError = ("capture.read_error", Error, "the file could not be read further", "the operating system"),
        TruncatedRecord = ("capture.truncated_record", Warning, "the file ends inside a record", "pcap and pcapng formats (a capture cut short)"),
        CorruptRecordHeader = ("capture.corrupt_record_header", Error, "an implausible record header; the reader scans for the next record", "pcap format (record header)"),
        Resynchronised = ("capture.resynchronised", Warning, "reading resumed after skipping corrupt bytes", "pcap and pcapng formats"),
        Unrecoverable = ("capture.unrecoverable", Error, "no readable record after a corrupt one; the rest of the file is skipped", "pcap and pcapng formats"),
        CorruptBlock = ("capture.corrupt_block", Error, "a pcapng block that does not parse", "pcapng (draft-ietf-opsawg-pcapng §3)"),
        BadTsresol = ("capture.bad_tsresol", Warning, "an interface's timestamp resolution out of range; microseconds assumed", "pcapng if_tsresol (§4.2)"),
        UnknownInterface = ("capture.unknown_interface", Error, "a packet names an interface no block described", "pcapng (§4.3, §4.4)"),
        IpFragment = ("capture.ip_fragment", Warning, "IP fragments are not reassembled; skipped", "RFC 791 §3.2"),
        UnknownLinkType = ("capture.unknown_link_type", Error, "a link type tether does not read; its frames are skipped", "tcpdump.org link-layer header types"),
        MalformedFrame = ("capture.malformed_frame", Warning, "a frame whose link, IP or TCP header does not parse", "IEEE 802.3, RFC 791, RFC 8200, RFC 9293"),
    }
}

finding_kinds! {
    /// What reading a ryll bug-report zip says.
    pub enum BugReportFinding ("bugreport") {
        TooManyMembers = ("limit.zip_members", Error, "more zip members than the limit; only the first are looked at", "tether's limit (--max-zip-members)"),
        MemberTooLarge = ("limit.zip_uncompressed", Error, "a member (or all of them) inflates past the byte limit", "tether's limits (--max-zip-member-bytes, --max-zip-total-bytes)"),
        RatioTooHigh = ("limit.zip_ratio", Error, "a member's declared compression ratio is past the limit (a zip bomb)", "tether's limit (--max-zip-ratio)"),
        HostileName = ("bugreport.hostile_name", Error, "a member name that is absolute, climbs out with `..`, or is not text; skipped", "zip path traversal (CWE-22)"),
        DamagedMember = ("bugreport.damaged_member", Error, "a member that does not inflate or fails its CRC; what could be read is used", "APPNOTE.TXT (zip)"),
        MissingMember = ("bugreport.missing_member", Warning, "a member every ryll report has is missing", "the ryll bug-report layout (seeds)"),
        BadJson = ("bugreport.bad_json", Error, "a JSON member that does not parse, at its line and column", "RFC 8259"),
        BadPcap = ("bugreport.bad_pcap", Error, "the report's traffic.pcap does not read", "pcap format"),
        Disagreement = ("bugreport.disagreement", Warning, "the report's own record and its pcap disagree", "the ryll bug-report layout (seeds)"),
    }
}
