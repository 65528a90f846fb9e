//! RFB numbers with names: security types, encodings, message types
//! (rfbproto `rfbproto.rst`, "Security Types", "Encodings", "Client to Server
//! Messages", "Server to Client Messages"). Unknown numbers are not errors
//! here; callers decide.

use std::borrow::Cow;

/// Security type name; unknown ones are named by number.
pub fn security_type_name(t: u32) -> Cow<'static, str> {
    let name = match t {
        0 => "Invalid",
        1 => "None",
        2 => "VNC Authentication",
        3 | 4 | 7..=12 | 14 | 15 | 128 | 131 | 132 | 134..=255 => "RealVNC",
        5 => "RSA-AES",
        6 => "RSA-AES Unencrypted",
        13 => "RSA-AES Two-step",
        16 => "Tight",
        17 => "Ultra",
        18 => "TLS",
        19 => "VeNCrypt",
        20 => "SASL",
        21 => "MD5 hash",
        22 => "xvp",
        23 => "Secure Tunnel",
        24 => "Integrated SSH",
        30 => "Apple Remote Desktop",
        31..=35 => "Apple Inc.",
        113 => "MSLogonII",
        129 => "RSA-AES-256",
        130 => "RSA-AES-256 Unencrypted",
        133 => "RSA-AES-256 Two-step",
        _ => return Cow::Owned(format!("type {t}")),
    };
    Cow::Borrowed(name)
}

pub mod enc {
    pub const RAW: i32 = 0;
    pub const COPY_RECT: i32 = 1;
    pub const RRE: i32 = 2;
    pub const CORRE: i32 = 4;
    pub const HEXTILE: i32 = 5;
    pub const ZLIB: i32 = 6;
    pub const TIGHT: i32 = 7;
    pub const TRLE: i32 = 15;
    pub const ZRLE: i32 = 16;
    pub const ZYWRLE: i32 = 17;
    pub const H264: i32 = 50;
    pub const TIGHT_PNG: i32 = -260;
    pub const DESKTOP_SIZE: i32 = -223;
    pub const LAST_RECT: i32 = -224;
    pub const POINTER_POS: i32 = -232;
    pub const CURSOR: i32 = -239;
    pub const X_CURSOR: i32 = -240;
    pub const QEMU_POINTER_MOTION_CHANGE: i32 = -257;
    pub const QEMU_EXTENDED_KEY_EVENT: i32 = -258;
    pub const QEMU_AUDIO: i32 = -259;
    pub const QEMU_LED_STATE: i32 = -261;
    pub const DESKTOP_NAME: i32 = -307;
    pub const EXTENDED_DESKTOP_SIZE: i32 = -308;
    pub const XVP: i32 = -309;
    pub const FENCE: i32 = -312;
    pub const CONTINUOUS_UPDATES: i32 = -313;
    pub const CURSOR_WITH_ALPHA: i32 = -314;
    pub const EXTENDED_MOUSE_BUTTONS: i32 = -316;
    pub const VMWARE_CURSOR: i32 = 0x574d_5664;
    pub const VMWARE_CURSOR_STATE: i32 = 0x574d_5665;
    pub const VMWARE_CURSOR_POSITION: i32 = 0x574d_5666;
    pub const VMWARE_KEY_REPEAT: i32 = 0x574d_5667;
    pub const VMWARE_LED_STATE: i32 = 0x574d_5668;
    pub const VMWARE_VM_STATE: i32 = 0x574d_566a;
    /// Extended Clipboard pseudo-encoding, 0xc0a1e5ce as S32.
    pub const EXTENDED_CLIPBOARD: i32 = 0xc0a1_e5ce_u32 as i32;
}

/// Encoding name as rfbproto's "Encodings" table calls it.
pub fn encoding_name(e: i32) -> Cow<'static, str> {
    let name = match e {
        0 => "Raw",
        1 => "CopyRect",
        2 => "RRE",
        4 => "CoRRE",
        5 => "Hextile",
        6 => "zlib",
        7 => "Tight",
        8 => "zlibhex",
        15 => "TRLE",
        16 => "ZRLE",
        17 => "ZYWRLE",
        21 => "JPEG",
        50 => "Open H.264",
        -260 => "TightPNG",
        -32..=-23 => "JPEG Quality Level",
        -223 => "DesktopSize",
        -224 => "LastRect",
        -232 => "PointerPos",
        -239 => "Cursor",
        -240 => "X Cursor",
        -256..=-247 => "Compression Level",
        -257 => "QEMU Pointer Motion Change",
        -258 => "QEMU Extended Key Event",
        -259 => "QEMU Audio",
        -261 => "QEMU LED State",
        -305 => "gii",
        -307 => "DesktopName",
        -308 => "ExtendedDesktopSize",
        -309 => "xvp",
        -312 => "Fence",
        -313 => "ContinuousUpdates",
        -314 => "Cursor With Alpha",
        -316 => "ExtendedMouseButtons",
        -512..=-412 => "JPEG Fine-Grained Quality Level",
        -768..=-763 => "JPEG Subsampling Level",
        0x574d_5600..=0x574d_56ff => "VMware",
        e if e == enc::EXTENDED_CLIPBOARD => "Extended Clipboard",
        _ => return Cow::Owned(format!("encoding {e}")),
    };
    Cow::Borrowed(name)
}
