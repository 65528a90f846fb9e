//! An RFB 3.8 session as noVNC and a VNC server write it: handshake, the
//! pixel format and encodings noVNC asks for, then framebuffer updates in
//! Raw, CopyRect, Hextile, ZRLE and Tight (fill, JPEG, basic with the copy
//! and palette filters, zlib with state carried across rectangles), with
//! incremental update requests, pointer and key events from the client.

use super::pixels::Screen;
use flate2::{Compress, Compression, FlushCompress};
use rand::RngExt;
use rand_xorshift::XorShiftRng;

pub const RAW: i32 = 0;
pub const COPY_RECT: i32 = 1;
pub const HEXTILE: i32 = 5;
pub const TIGHT: i32 = 7;
pub const ZRLE: i32 = 16;

/// noVNC's SetEncodings list, in its order (core/rfb.js).
const NOVNC_ENCODINGS: [i32; 24] = [
    1,
    7,
    -260,
    16,
    21,
    5,
    2,
    6,
    0,
    -26,
    -254,
    -223,
    -224,
    -258,
    -261,
    -308,
    -309,
    -312,
    -313,
    -307,
    0xc0a1e5ceu32 as i32,
    -316,
    0x574d5664,
    -239,
];

/// Bytes one side writes in one go.
pub enum Write {
    Client(Vec<u8>),
    Server(Vec<u8>),
}

pub struct RfbSession {
    screen: Screen,
    /// The one zlib stream ZRLE uses for a whole connection.
    zrle: Compress,
    /// Tight's four zlib streams; the generator uses 0 and 1.
    tight: [Compress; 2],
    vnc_auth: bool,
    scratch: Vec<u8>,
}

impl RfbSession {
    pub fn new(rng: &mut XorShiftRng, vnc_auth: bool) -> RfbSession {
        RfbSession {
            screen: Screen::new(1024, 768, rng),
            zrle: Compress::new(Compression::fast(), true),
            tight: [
                Compress::new(Compression::fast(), true),
                Compress::new(Compression::fast(), true),
            ],
            vnc_auth,
            scratch: Vec::new(),
        }
    }

    /// Version, security, init, and the client's opening requests.
    pub fn handshake(&mut self, rng: &mut XorShiftRng, out: &mut Vec<Write>) {
        out.push(Write::Server(b"RFB 003.008\n".to_vec()));
        out.push(Write::Client(b"RFB 003.008\n".to_vec()));
        if self.vnc_auth {
            out.push(Write::Server(vec![1, 2]));
            out.push(Write::Client(vec![2]));
            let challenge: [u8; 16] = rng.random();
            out.push(Write::Server(challenge.to_vec()));
            let response: [u8; 16] = rng.random();
            out.push(Write::Client(response.to_vec()));
        } else {
            out.push(Write::Server(vec![1, 1]));
            out.push(Write::Client(vec![1]));
        }
        out.push(Write::Server(vec![0, 0, 0, 0]));
        out.push(Write::Client(vec![1]));
        let name = b"tether generated desktop";
        let mut init = Vec::with_capacity(24 + name.len());
        init.extend_from_slice(&self.screen.width.to_be_bytes());
        init.extend_from_slice(&self.screen.height.to_be_bytes());
        // The server's own format: 32 bpp, depth 24, little-endian, BGR shifts.
        init.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        init.extend_from_slice(&(name.len() as u32).to_be_bytes());
        init.extend_from_slice(name);
        out.push(Write::Server(init));

        let mut client = Vec::new();
        // SetPixelFormat: what noVNC always asks for (shifts 0/8/16).
        client.extend_from_slice(&[0, 0, 0, 0]);
        client.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
        client.extend_from_slice(&[2, 0]);
        client.extend_from_slice(&(NOVNC_ENCODINGS.len() as u16).to_be_bytes());
        for e in NOVNC_ENCODINGS {
            client.extend_from_slice(&e.to_be_bytes());
        }
        out.push(Write::Client(client));
        let (w, h) = (self.screen.width, self.screen.height);
        out.push(Write::Client(update_request(false, 0, 0, w, h)));
        // The first answer repaints the whole screen in 256-pixel bands.
        let mut update = Vec::new();
        let bands: Vec<(u16, u16, u16, u16)> = (0..h)
            .step_by(256)
            .map(|y| (0, y, w, 256.min(h - y)))
            .collect();
        begin_update(&mut update, bands.len() as u16);
        for (x, y, bw, bh) in bands {
            let enc = pick_encoding(rng);
            self.rect(rng, (x, y, bw, bh), enc, &mut update);
        }
        out.push(Write::Server(update));
    }

    /// One round of a running session: the screen changes, the server
    /// sends an update, the client asks for the next and maybe types or
    /// moves the pointer.
    pub fn round(&mut self, rng: &mut XorShiftRng, out: &mut Vec<Write>) {
        let mut update = Vec::new();
        let n = rng.random_range(1..=4u16);
        let copy = rng.random_bool(0.1);
        begin_update(&mut update, n + u16::from(copy));
        if copy {
            let (w, h) = (rng.random_range(16..300u16), rng.random_range(16..200u16));
            let (x, y) = (rng.random_range(0..1024 - w), rng.random_range(0..768 - h));
            rect_header(&mut update, x, y, w, h, COPY_RECT);
            update.extend_from_slice(&rng.random_range(0..1024 - w).to_be_bytes());
            update.extend_from_slice(&rng.random_range(0..768 - h).to_be_bytes());
        }
        for _ in 0..n {
            let (x, y, w, h) = self.screen.scribble(rng);
            let enc = pick_encoding(rng);
            self.rect(rng, (x, y, w, h), enc, &mut update);
        }
        out.push(Write::Server(update));

        let mut client = Vec::new();
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..6) {
                let mask = if rng.random_bool(0.2) { 1 } else { 0 };
                client.push(5);
                client.push(mask);
                client.extend_from_slice(&rng.random_range(0..1024u16).to_be_bytes());
                client.extend_from_slice(&rng.random_range(0..768u16).to_be_bytes());
            }
        }
        if rng.random_bool(0.2) {
            let keysym = rng.random_range(0x20..0x7fu32);
            for down in [1, 0] {
                client.extend_from_slice(&[4, down, 0, 0]);
                client.extend_from_slice(&keysym.to_be_bytes());
            }
        }
        out.push(Write::Client(client));
        let (w, h) = (self.screen.width, self.screen.height);
        out.push(Write::Client(update_request(true, 0, 0, w, h)));
    }

    fn rect(
        &mut self,
        rng: &mut XorShiftRng,
        (x, y, w, h): (u16, u16, u16, u16),
        encoding: i32,
        out: &mut Vec<u8>,
    ) {
        rect_header(out, x, y, w, h, encoding);
        match encoding {
            HEXTILE => self.hextile(x, y, w, h, out),
            ZRLE => self.zrle(x, y, w, h, out),
            TIGHT => self.tight(rng, x, y, w, h, out),
            _ => self.screen.pixels(x, y, w, h, 4, out),
        }
    }

    fn hextile(&mut self, x: u16, y: u16, w: u16, h: u16, out: &mut Vec<u8>) {
        let mut background: Option<[u8; 3]> = None;
        for ty in (y..y + h).step_by(16) {
            let th = 16.min(y + h - ty);
            for tx in (x..x + w).step_by(16) {
                let tw = 16.min(x + w - tx);
                if let Some(c) = self.screen.solid(tx, ty, tw, th) {
                    if background == Some(c) {
                        out.push(0);
                    } else {
                        out.push(2);
                        out.extend_from_slice(&pixel32(c));
                        background = Some(c);
                    }
                    continue;
                }
                let bg = self.screen.rgb(tx, ty);
                let runs = self.runs(tx, ty, tw, th, bg);
                let coloured = 2 + 4 + 1 + runs.len() * 6;
                if runs.len() <= 255 && coloured < usize::from(tw) * usize::from(th) * 4 {
                    out.push(2 | 8 | 16);
                    out.extend_from_slice(&pixel32(bg));
                    out.push(runs.len() as u8);
                    for (rx, ry, rw, c) in runs {
                        out.extend_from_slice(&pixel32(c));
                        out.push(((rx - tx) << 4 | (ry - ty)) as u8);
                        out.push(((rw - 1) << 4) as u8);
                    }
                    background = Some(bg);
                } else {
                    out.push(1);
                    self.screen.pixels(tx, ty, tw, th, 4, out);
                    // The spec leaves the background undefined after a raw tile.
                    background = None;
                }
            }
        }
    }

    /// Horizontal runs of one colour that is not the background, stopping
    /// early once there are too many for a subrect tile.
    fn runs(&self, x: u16, y: u16, w: u16, h: u16, bg: [u8; 3]) -> Vec<(u16, u16, u16, [u8; 3])> {
        let mut runs = Vec::new();
        for ry in y..y + h {
            let mut rx = x;
            while rx < x + w {
                let c = self.screen.rgb(rx, ry);
                let mut end = rx + 1;
                while end < x + w && self.screen.rgb(end, ry) == c {
                    end += 1;
                }
                if c != bg {
                    runs.push((rx, ry, end - rx, c));
                    if runs.len() > 255 {
                        return runs;
                    }
                }
                rx = end;
            }
        }
        runs
    }

    fn zrle(&mut self, x: u16, y: u16, w: u16, h: u16, out: &mut Vec<u8>) {
        let mut tiles = std::mem::take(&mut self.scratch);
        tiles.clear();
        for ty in (y..y + h).step_by(64) {
            let th = 64.min(y + h - ty);
            for tx in (x..x + w).step_by(64) {
                let tw = 64.min(x + w - tx);
                if let Some(c) = self.screen.solid(tx, ty, tw, th) {
                    tiles.push(1);
                    tiles.extend_from_slice(&c);
                    continue;
                }
                let start = tiles.len();
                tiles.push(128);
                let mut run: Option<([u8; 3], usize)> = None;
                for py in ty..ty + th {
                    for px in tx..tx + tw {
                        let c = self.screen.rgb(px, py);
                        match &mut run {
                            Some((rc, n)) if *rc == c => *n += 1,
                            _ => {
                                if let Some((rc, n)) = run {
                                    push_run(&mut tiles, rc, n);
                                }
                                run = Some((c, 1));
                            }
                        }
                    }
                }
                if let Some((rc, n)) = run {
                    push_run(&mut tiles, rc, n);
                }
                // Noise runs are longer than raw CPIXELs: send those raw.
                let raw_len = 1 + usize::from(tw) * usize::from(th) * 3;
                if tiles.len() - start > raw_len {
                    tiles.truncate(start);
                    tiles.push(0);
                    self.screen.pixels(tx, ty, tw, th, 3, &mut tiles);
                }
            }
        }
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        deflate_sync(&mut self.zrle, &tiles, out);
        let len = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        self.scratch = tiles;
    }

    fn tight(&mut self, rng: &mut XorShiftRng, x: u16, y: u16, w: u16, h: u16, out: &mut Vec<u8>) {
        if let Some(c) = self.screen.solid(x, y, w, h) {
            out.push(0x80);
            out.extend_from_slice(&c);
            return;
        }
        if rng.random_bool(0.25) {
            // A JPEG's length is all a decoder needs; its entropy-coded
            // body is noise anyway.
            out.push(0x90);
            let len = (usize::from(w) * usize::from(h) / 6).clamp(64, 400_000);
            push_compact_len(out, len);
            out.extend_from_slice(&[0xff, 0xd8, 0xff, 0xe0]);
            out.extend((4..len - 2).map(|_| rng.random::<u8>()));
            out.extend_from_slice(&[0xff, 0xd9]);
            return;
        }
        let mut data = std::mem::take(&mut self.scratch);
        data.clear();
        let two = self.two_colours(x, y, w, h);
        let stream = if let Some([a, b]) = two {
            // Basic, stream 1, explicit palette filter: 1 bit per pixel.
            out.extend_from_slice(&[0x40 | 0x10, 1, 1]);
            out.extend_from_slice(&a);
            out.extend_from_slice(&b);
            for row in y..y + h {
                let mut byte = 0u8;
                for (i, col) in (x..x + w).enumerate() {
                    if self.screen.rgb(col, row) == b {
                        byte |= 0x80 >> (i % 8);
                    }
                    if i % 8 == 7 {
                        data.push(byte);
                        byte = 0;
                    }
                }
                if !w.is_multiple_of(8) {
                    data.push(byte);
                }
            }
            1
        } else {
            // Basic, stream 0, no filter byte: the copy filter.
            out.push(0x00);
            self.screen.pixels(x, y, w, h, 3, &mut data);
            0
        };
        if data.len() < 12 {
            out.extend_from_slice(&data);
        } else {
            let mut z = Vec::with_capacity(data.len() / 2 + 64);
            deflate_sync(&mut self.tight[stream], &data, &mut z);
            push_compact_len(out, z.len());
            out.extend_from_slice(&z);
        }
        self.scratch = data;
    }

    fn two_colours(&self, x: u16, y: u16, w: u16, h: u16) -> Option<[[u8; 3]; 2]> {
        let a = self.screen.rgb(x, y);
        let mut b = None;
        for row in y..y + h {
            for col in x..x + w {
                let c = self.screen.rgb(col, row);
                if c == a {
                    continue;
                }
                match b {
                    None => b = Some(c),
                    Some(bc) if bc == c => {}
                    Some(_) => return None,
                }
            }
        }
        b.map(|b| [a, b])
    }
}

fn pick_encoding(rng: &mut XorShiftRng) -> i32 {
    match rng.random_range(0..10u8) {
        0 => RAW,
        1..=3 => HEXTILE,
        4..=6 => ZRLE,
        _ => TIGHT,
    }
}

fn pixel32(c: [u8; 3]) -> [u8; 4] {
    [c[0], c[1], c[2], 0]
}

fn begin_update(out: &mut Vec<u8>, rects: u16) {
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&rects.to_be_bytes());
}

fn rect_header(out: &mut Vec<u8>, x: u16, y: u16, w: u16, h: u16, encoding: i32) {
    for v in [x, y, w, h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&encoding.to_be_bytes());
}

fn update_request(incremental: bool, x: u16, y: u16, w: u16, h: u16) -> Vec<u8> {
    let mut m = vec![3, u8::from(incremental)];
    for v in [x, y, w, h] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m
}

/// ZRLE plain-RLE run: a CPIXEL, then length-1 as 255s and a remainder.
fn push_run(out: &mut Vec<u8>, c: [u8; 3], n: usize) {
    out.extend_from_slice(&c);
    let mut rest = n - 1;
    while rest >= 255 {
        out.push(255);
        rest -= 255;
    }
    out.push(rest as u8);
}

/// Tight's compact length: 7 bits per byte, low first, at most 3 bytes.
pub fn push_compact_len(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len < 1 << 22);
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x4000 {
        out.extend_from_slice(&[0x80 | (len & 0x7f) as u8, (len >> 7) as u8]);
    } else {
        out.extend_from_slice(&[
            0x80 | (len & 0x7f) as u8,
            0x80 | ((len >> 7) & 0x7f) as u8,
            (len >> 14) as u8,
        ]);
    }
}

/// Compresses `input` onto the stream's state and ends with a sync flush,
/// as VNC servers do per rectangle.
fn deflate_sync(z: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    let start = z.total_in();
    loop {
        let consumed = (z.total_in() - start) as usize;
        out.reserve(input.len() / 2 + 1024);
        // In-memory deflate only fails on misuse, which this loop avoids.
        let _ = z.compress_vec(&input[consumed..], out, FlushCompress::Sync);
        // The flush is complete once everything is in and the output
        // buffer was not filled to the brim.
        if (z.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};
    use rand::SeedableRng;

    #[test]
    fn compact_lengths_follow_the_tight_rules() {
        for (len, want) in [
            (0usize, vec![0u8]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16383, vec![0xff, 0x7f]),
            (16384, vec![0x80, 0x80, 0x01]),
            (4_194_303, vec![0xff, 0xff, 0xff]),
        ] {
            let mut out = Vec::new();
            push_compact_len(&mut out, len);
            assert_eq!(out, want, "{len}");
        }
    }

    #[test]
    fn zrle_data_inflates_across_rectangles_on_one_stream() {
        let mut rng = XorShiftRng::seed_from_u64(5);
        let mut s = RfbSession::new(&mut rng, false);
        let mut inflate = Decompress::new(true);
        for (x, y, w, h) in [(0, 0, 200, 100), (300, 200, 64, 64), (10, 500, 333, 111)] {
            let mut out = Vec::new();
            s.zrle(x, y, w, h, &mut out);
            let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(out.len(), 4 + len);
            let mut tiles = Vec::with_capacity(4 << 20);
            inflate
                .decompress_vec(&out[4..], &mut tiles, FlushDecompress::Sync)
                .unwrap();
            // Walk the tiles: each must end exactly where the next begins.
            let mut at = 0;
            for ty in (0..h).step_by(64) {
                for tx in (0..w).step_by(64) {
                    let px = usize::from(64.min(w - tx)) * usize::from(64.min(h - ty));
                    match tiles[at] {
                        0 => at += 1 + 3 * px,
                        1 => at += 4,
                        128 => {
                            at += 1;
                            let mut seen = 0;
                            while seen < px {
                                at += 3;
                                let mut n = 1;
                                while tiles[at] == 255 {
                                    n += 255;
                                    at += 1;
                                }
                                n += usize::from(tiles[at]);
                                at += 1;
                                seen += n;
                            }
                            assert_eq!(seen, px);
                        }
                        other => panic!("unexpected subencoding {other}"),
                    }
                }
            }
            assert_eq!(at, tiles.len());
        }
    }
}
