//! The RFB decoder on precisely constructed streams: handshakes of every
//! version, each message type encoded and decoded back (proptest), the
//! framing of every rectangle encoding, chunking and stream-offset
//! invariance (the same RFB bytes on `tcp/rfb` and inside WebSocket give the
//! same events), and hostile input.

use proptest::prelude::*;
use serde_json::{Value, json};
use tether::decode::rfb::RfbDecoder;
use tether::decode::{Chunk, StreamContext, StreamDecoder, StreamEnd};
use tether::timeline::{Direction, Event, EventKind, Micros};

const C: Direction = Direction::ClientToServer;
const S: Direction = Direction::ServerToClient;

/// One send in capture order.
type Script = Vec<(Direction, Vec<u8>)>;

/// Feeds `script`, each send cut at `cuts` (fractions reused cyclically),
/// every direction's offsets starting at `base`.
fn run_with(dec: &mut RfbDecoder, script: &Script, cuts: &[usize], base: u64) -> Vec<Event> {
    let mut out = feed(dec, script, cuts, base);
    let end = Micros(1_000 + script.len() as u64);
    dec.end(end, C, StreamEnd::Fin, &mut out);
    dec.end(end, S, StreamEnd::Fin, &mut out);
    out
}

/// Feeds `script` without ending the streams.
fn feed(dec: &mut RfbDecoder, script: &Script, cuts: &[usize], base: u64) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let mut offsets = [base, base];
    let mut k = 0usize;
    for (frame, (d, bytes)) in script.iter().enumerate() {
        let mut rest: &[u8] = bytes;
        while !rest.is_empty() {
            let n = if cuts.is_empty() {
                rest.len()
            } else {
                k += 1;
                (cuts[k % cuts.len()] % rest.len()).max(1)
            };
            dec.data(
                Chunk {
                    at: Micros(1_000 + frame as u64),
                    frame: frame as u64 + 1,
                    direction: *d,
                    stream_offset: offsets[d.index()],
                    bytes: &rest[..n],
                },
                &mut out,
            );
            offsets[d.index()] += n as u64;
            rest = &rest[n..];
        }
    }
    out
}

fn run(script: &Script) -> Vec<Event> {
    run_with(
        &mut RfbDecoder::new(&StreamContext::default()),
        script,
        &[],
        0,
    )
}

/// (direction, name, len) of every message, and every finding code.
fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message { name, len, .. } => {
                Some(format!("{} {name} {len}", e.direction.unwrap().as_str()))
            }
            EventKind::Finding(f) => Some(format!("finding {}", f.code)),
            _ => None,
        })
        .collect()
}

fn detail(e: &Event) -> Value {
    match &e.kind {
        EventKind::Message { detail, .. } => Value::Object(
            detail
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn find<'a>(events: &'a [Event], name: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Message { name: n, .. } if n == name))
        .collect()
}

fn findings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(format!("{} @{:?}", f.code, f.location.stream_offset)),
            _ => None,
        })
        .collect()
}

// ---- encoders (test-side, written from rfbproto) ----

fn pixel_format(bpp: u8, depth: u8) -> Vec<u8> {
    let mut b = vec![bpp, depth, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0];
    if bpp == 16 {
        b[4..10].copy_from_slice(&[0, 31, 0, 63, 0, 31]);
        b[10..13].copy_from_slice(&[11, 5, 0]);
    }
    b
}

fn server_init(w: u16, h: u16, pf: &[u8], name: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(pf);
    b.extend_from_slice(&(name.len() as u32).to_be_bytes());
    b.extend_from_slice(name);
    b
}

/// A 3.8 VNC-auth handshake up to ServerInit (32 bpp, depth 24).
fn handshake_38() -> Script {
    vec![
        (S, b"RFB 003.008\n".to_vec()),
        (C, b"RFB 003.008\n".to_vec()),
        (S, vec![2, 2, 16]),
        (C, vec![2]),
        (S, (0u8..16).collect()),
        (C, (100u8..116).collect()),
        (S, vec![0, 0, 0, 0]),
        (C, vec![1]),
        (S, server_init(1024, 768, &pixel_format(32, 24), b"desk")),
    ]
}

fn rect(x: u16, y: u16, w: u16, h: u16, enc: i32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [x, y, w, h] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&enc.to_be_bytes());
    b.extend_from_slice(body);
    b
}

fn update(rects: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(rects.len() as u16).to_be_bytes());
    for r in rects {
        b.extend_from_slice(r);
    }
    b
}

fn filler(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn compact(len: usize) -> Vec<u8> {
    let mut b = vec![(len & 0x7f) as u8];
    if len > 0x7f {
        b[0] |= 0x80;
        b.push(((len >> 7) & 0x7f) as u8);
        if len > 0x3fff {
            b[1] |= 0x80;
            b.push((len >> 14) as u8);
        }
    }
    b
}

/// Hextile body from per-tile masks; `subrects` per tile when mask has 8.
fn hextile(w: u16, h: u16, bpp: usize, tiles: &[(u8, u8)]) -> Vec<u8> {
    let mut b = Vec::new();
    let (tx, ty) = (w.div_ceil(16) as usize, h.div_ceil(16) as usize);
    for i in 0..tx * ty {
        let (mask, n) = tiles[i % tiles.len()];
        let tw = (w as usize - (i % tx) * 16).min(16);
        let th = (h as usize - (i / tx) * 16).min(16);
        b.push(mask);
        if mask & 1 != 0 {
            b.extend(filler(tw * th * bpp, mask));
            continue;
        }
        if mask & 2 != 0 {
            b.extend(filler(bpp, 1));
        }
        if mask & 4 != 0 {
            b.extend(filler(bpp, 2));
        }
        if mask & 8 != 0 {
            b.push(n);
            for _ in 0..n {
                if mask & 16 != 0 {
                    b.extend(filler(bpp, 3));
                }
                b.extend_from_slice(&[0x12, 0x34]);
            }
        }
    }
    b
}

/// TRLE body: tile kinds chosen from `kinds` cyclically (0 raw, 1 solid,
/// 2 packed palette, 3 plain RLE, 4 palette RLE, 5 reuse-palette packed).
fn trle(w: u16, h: u16, cpixel: usize, kinds: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    let (tx, ty) = (w.div_ceil(16) as usize, h.div_ceil(16) as usize);
    let mut have_palette = 0usize;
    for i in 0..tx * ty {
        let tw = (w as usize - (i % tx) * 16).min(16);
        let th = (h as usize - (i / tx) * 16).min(16);
        let pixels = tw * th;
        let runs = |b: &mut Vec<u8>, with_pixel: Option<usize>, palette: Option<usize>| {
            // Runs of 1, 300 (255+45) ... until the tile is full.
            let mut left = pixels;
            let mut r = 0usize;
            while left > 0 {
                let want = [1usize, 300, 7, 256][r % 4].min(left);
                r += 1;
                left -= want;
                if let Some(c) = with_pixel {
                    b.extend(filler(c, 9));
                }
                if let Some(p) = palette {
                    if want == 1 {
                        b.push((r % p) as u8);
                        continue;
                    }
                    b.push(0x80 | (r % p) as u8);
                }
                let mut n = want - 1;
                while n >= 255 {
                    b.push(255);
                    n -= 255;
                }
                b.push(n as u8);
            }
        };
        let packed = |p: usize| {
            let bits = if p <= 2 {
                1
            } else if p <= 4 {
                2
            } else {
                4
            };
            (tw * bits).div_ceil(8) * th
        };
        match kinds[i % kinds.len()] % 6 {
            0 => {
                b.push(0);
                b.extend(filler(pixels * cpixel, 4));
            }
            1 => {
                b.push(1);
                b.extend(filler(cpixel, 5));
            }
            2 => {
                let p = 2 + i % 15;
                b.push(p as u8);
                b.extend(filler(p * cpixel + packed(p), 6));
                have_palette = p;
            }
            3 => {
                b.push(128);
                runs(&mut b, Some(cpixel), None);
            }
            4 => {
                let p = 3 + i % 5;
                b.push(128 + p as u8);
                b.extend(filler(p * cpixel, 7));
                runs(&mut b, None, Some(p));
                have_palette = p;
            }
            _ if have_palette >= 2 => {
                b.push(127);
                b.extend(filler(packed(have_palette), 8));
            }
            _ => {
                b.push(1);
                b.extend(filler(cpixel, 5));
            }
        }
    }
    b
}

/// One Tight rectangle body of `kind`: 0 fill, 1 jpeg, 2 basic copy,
/// 3 basic palette(2), 4 basic palette(n), 5 gradient; `tpixel` bytes.
fn tight(w: u16, h: u16, tpixel: usize, kind: u8, colours: u8) -> Vec<u8> {
    let (w, h) = (w as usize, h as usize);
    let mut b = Vec::new();
    let data = |b: &mut Vec<u8>, raw: usize| {
        if raw < 12 {
            b.extend(filler(raw, 11));
        } else {
            // "compressed": any bytes behind a compact length.
            let n = raw / 3 + 1;
            b.extend(compact(n));
            b.extend(filler(n, 12));
        }
    };
    match kind % 6 {
        0 => {
            b.push(0x80);
            b.extend(filler(tpixel, 1));
        }
        1 => {
            b.push(0x90);
            let n = 200 + w;
            b.extend(compact(n));
            b.extend(filler(n, 2));
        }
        2 => {
            b.push(0x00);
            data(&mut b, w * h * tpixel);
        }
        3 => {
            b.extend_from_slice(&[0x40 | 0x10, 1, 1]);
            b.extend(filler(2 * tpixel, 3));
            data(&mut b, w.div_ceil(8) * h);
        }
        4 => {
            let n = colours.max(3) as usize;
            b.extend_from_slice(&[0x40, 1, (n - 1) as u8]);
            b.extend(filler(n * tpixel, 3));
            data(&mut b, w * h);
        }
        _ => {
            b.extend_from_slice(&[0x40 | 0x20, 2]);
            data(&mut b, w * h * tpixel);
        }
    }
    b
}

fn bell() -> (Direction, Vec<u8>) {
    (S, vec![2])
}

// ---- handshakes ----

#[test]
fn handshake_3_8_with_vnc_auth() {
    let mut script = handshake_38();
    script.push((C, vec![4, 1, 0, 0, 0, 0, 0, 0x61]));
    let events = run(&script);
    assert_eq!(
        summary(&events),
        [
            "s2c ProtocolVersion 12",
            "c2s ProtocolVersion 12",
            "s2c SecurityTypes 3",
            "c2s SecurityTypeSelected 1",
            "s2c VncAuthChallenge 16",
            "c2s VncAuthResponse 16",
            "s2c SecurityResult 4",
            "c2s ClientInit 1",
            "s2c ServerInit 28",
            "c2s KeyEvent 8",
        ]
    );
    let init = detail(find(&events, "ServerInit")[0]);
    assert_eq!(init["width"], 1024);
    assert_eq!(init["height"], 768);
    assert_eq!(init["name"], "desk");
    assert_eq!(init["pixel_format"]["bits_per_pixel"], 32);
    assert_eq!(
        detail(find(&events, "SecurityTypes")[0])["types"],
        json!([2, 16])
    );
    assert_eq!(
        detail(find(&events, "VncAuthChallenge")[0])["challenge"],
        "000102030405060708090a0b0c0d0e0f"
    );
    assert_eq!(detail(find(&events, "ClientInit")[0])["shared"], true);
    assert_eq!(detail(find(&events, "KeyEvent")[0])["keysym"], 0x61);
}

#[test]
fn handshake_3_3_server_picks_and_3_7_none_has_no_result() {
    let v33 = vec![
        (S, b"RFB 003.008\n".to_vec()),
        (C, b"RFB 003.003\n".to_vec()),
        // 3.3: the server names the type as a u32; challenge in the same segment.
        (S, [vec![0, 0, 0, 2], vec![7; 16]].concat()),
        (C, vec![9; 16]),
        (S, vec![0, 0, 0, 0]),
        (C, vec![0]),
        (S, server_init(800, 600, &pixel_format(32, 24), &[0xa0])),
    ];
    let events = run(&v33);
    assert_eq!(
        summary(&events),
        [
            "s2c ProtocolVersion 12",
            "c2s ProtocolVersion 12",
            "s2c SecurityType 4",
            "s2c VncAuthChallenge 16",
            "c2s VncAuthResponse 16",
            "s2c SecurityResult 4",
            "c2s ClientInit 1",
            "s2c ServerInit 25",
        ]
    );
    // A name that is not UTF-8 is kept byte for byte, escaped.
    assert_eq!(detail(find(&events, "ServerInit")[0])["name"], "\\xa0");

    let v37_none = vec![
        (S, b"RFB 003.007\n".to_vec()),
        (C, b"RFB 003.007\n".to_vec()),
        (S, vec![1, 1]),
        (C, vec![1]),
        // No SecurityResult after None before 3.8: ClientInit, ServerInit.
        (C, vec![1]),
        (S, server_init(64, 32, &pixel_format(16, 16), b"x")),
    ];
    assert_eq!(
        summary(&run(&v37_none)),
        [
            "s2c ProtocolVersion 12",
            "c2s ProtocolVersion 12",
            "s2c SecurityTypes 2",
            "c2s SecurityTypeSelected 1",
            "c2s ClientInit 1",
            "s2c ServerInit 25",
        ]
    );
}

#[test]
fn refusals_carry_their_reason() {
    let no_types = vec![
        (S, b"RFB 003.008\n".to_vec()),
        (C, b"RFB 003.008\n".to_vec()),
        (
            S,
            [vec![0, 0, 0, 0, 16], b"AAAAAAAAAAAAAAAA".to_vec()].concat(),
        ),
    ];
    let events = run(&no_types);
    assert_eq!(
        detail(find(&events, "SecurityTypes")[0])["reason"],
        "AAAAAAAAAAAAAAAA"
    );
    assert!(findings(&events).is_empty(), "{:?}", findings(&events));

    let mut failed = handshake_38();
    failed.truncate(6);
    failed.push((S, [vec![0, 0, 0, 1, 0, 0, 0, 3], b"bad".to_vec()].concat()));
    let events = run(&failed);
    let result = detail(find(&events, "SecurityResult")[0]);
    assert_eq!(result["ok"], false);
    assert_eq!(result["reason"], "bad");
    assert!(findings(&events).is_empty(), "{:?}", findings(&events));
}

#[test]
fn apple_3_889_ard_failure_has_no_reason() {
    let script = vec![
        (S, b"RFB 003.889\n".to_vec()),
        (C, b"RFB 003.889\n".to_vec()),
        (S, vec![2, 30, 35]),
        (C, vec![30]),
        (S, [vec![0, 2, 0, 128], vec![1; 256]].concat()),
        (C, vec![5; 256]),
        (S, vec![0, 0, 0, 1]),
    ];
    let events = run(&script);
    assert_eq!(
        summary(&events),
        [
            "s2c ProtocolVersion 12",
            "c2s ProtocolVersion 12",
            "s2c SecurityTypes 3",
            "c2s SecurityTypeSelected 1",
            "s2c ArdChallenge 260",
            "c2s ArdResponse 256",
            "s2c SecurityResult 4",
        ]
    );
}

#[test]
fn vencrypt_tls_hands_the_rest_to_tls() {
    let script = vec![
        (S, b"RFB 003.008\n".to_vec()),
        (C, b"RFB 003.008\n".to_vec()),
        (S, vec![1, 19]),
        (C, vec![19]),
        (S, vec![0, 2]),
        (C, vec![0, 2]),
        (S, vec![0]),
        (S, vec![2, 0, 0, 1, 3, 0, 0, 1, 4]),
        (C, vec![0, 0, 1, 3]),
        (S, vec![1, 0x16, 3, 1, 0, 5]),
        (C, vec![0x16, 3, 1, 2, 0]),
    ];
    let events = run(&script);
    let f: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.code.to_string()),
            _ => None,
        })
        .collect();
    // The server's accept byte, then TLS: both sides' first records are
    // only begun when the stream ends, which TLS says, and RFB nothing more.
    assert_eq!(f, ["tls.truncated_record", "tls.truncated_record"]);
    assert_eq!(
        detail(find(&events, "VeNCryptSubtypes")[0])["subtypes"],
        json!([259, 260])
    );
    assert_eq!(find(&events, "VeNCryptSubtypeSelected").len(), 1);
    assert_eq!(
        detail(find(&events, "VeNCryptSubtypeAck")[0])["ok"],
        json!(true)
    );
}

#[test]
fn server_bytes_before_the_client_version_wait_and_decode() {
    // The whole server side first (e.g. two captures merged out of order):
    // the server's security list depends on the client's version, so it
    // waits; everything decodes once the client has spoken.
    let script: Script = vec![
        (
            S,
            [
                b"RFB 003.008\n".to_vec(),
                vec![1, 1],
                vec![0, 0, 0, 0],
                server_init(16, 16, &pixel_format(8, 8), b"n"),
                vec![2],
            ]
            .concat(),
        ),
        (C, [b"RFB 003.008\n".to_vec(), vec![1], vec![0]].concat()),
    ];
    let mut names = summary(&run(&script));
    names.sort();
    assert_eq!(
        names,
        [
            "c2s ClientInit 1",
            "c2s ProtocolVersion 12",
            "c2s SecurityTypeSelected 1",
            "s2c Bell 1",
            "s2c ProtocolVersion 12",
            "s2c SecurityResult 4",
            "s2c SecurityTypes 2",
            "s2c ServerInit 25",
        ]
    );
}

// ---- rectangles ----

/// A session with the given updates after the handshake, each followed by
/// a Bell: the Bell only decodes if the update ended exactly where framed.
fn with_updates(pf: &[u8], updates: &[Vec<u8>]) -> Script {
    let mut s = handshake_38();
    s.push((C, [vec![0, 0, 0, 0], pf.to_vec()].concat()));
    for u in updates {
        s.push((S, u.clone()));
        s.push(bell());
    }
    s
}

fn assert_updates_framed(events: &[Event], updates: &[Vec<u8>]) {
    assert!(findings(events).is_empty(), "{:?}", findings(events));
    let fbu = find(events, "FramebufferUpdate");
    assert_eq!(fbu.len(), updates.len());
    assert_eq!(find(events, "Bell").len(), updates.len());
    for (e, u) in fbu.iter().zip(updates) {
        match &e.kind {
            EventKind::Message { len, .. } => assert_eq!(*len, u.len() as u64),
            _ => unreachable!(),
        }
    }
}

#[test]
fn every_encoding_is_framed_at_32_bpp() {
    let pf = pixel_format(32, 24);
    let (w, h) = (37u16, 21u16);
    let updates = vec![
        update(&[rect(0, 0, w, h, 0, &filler(w as usize * h as usize * 4, 1))]),
        update(&[rect(5, 5, w, h, 1, &[0, 1, 0, 2])]),
        update(&[rect(
            0,
            0,
            w,
            h,
            2,
            &[vec![0, 0, 0, 2], filler(4 + 2 * 12, 3)].concat(),
        )]),
        update(&[rect(
            0,
            0,
            w,
            h,
            4,
            &[vec![0, 0, 0, 3], filler(4 + 3 * 8, 3)].concat(),
        )]),
        update(&[rect(
            0,
            0,
            w,
            h,
            5,
            &hextile(
                w,
                h,
                4,
                &[(1, 0), (2 | 4 | 8, 3), (2 | 8 | 16, 2), (0, 0), (4, 0)],
            ),
        )]),
        update(&[rect(0, 0, w, h, 15, &trle(w, h, 3, &[0, 1, 2, 3, 4, 5]))]),
        update(&[rect(
            0,
            0,
            w,
            h,
            16,
            &[vec![0, 0, 0, 5], filler(5, 1)].concat(),
        )]),
        update(&[rect(
            0,
            0,
            w,
            h,
            6,
            &[vec![0, 0, 1, 0], filler(256, 1)].concat(),
        )]),
        update(
            &(0..6)
                .map(|k| rect(0, 0, w, h, 7, &tight(w, h, 3, k, 5)))
                .collect::<Vec<_>>(),
        ),
        update(&[rect(0, 0, 2, 2, 7, &tight(2, 2, 3, 2, 0))]), // 12 bytes: compressed
        update(&[rect(0, 0, 1, 3, 7, &tight(1, 3, 3, 2, 0))]), // 9 bytes: sent as is
        update(&[
            rect(3, 4, 10, 7, -239, &filler(10 * 7 * 4 + 2 * 7, 1)),
            rect(0, 0, 9, 2, -240, &filler(6 + 2 * 2 * 2, 1)),
            rect(0, 0, 800, 600, -223, &[]),
            rect(
                0,
                0,
                800,
                600,
                -308,
                &[vec![1, 0, 0, 0], filler(16, 2)].concat(),
            ),
            rect(
                0,
                0,
                0,
                0,
                -307,
                &[vec![0, 0, 0, 3], b"new".to_vec()].concat(),
            ),
            rect(1, 2, 0, 0, -232, &[]),
        ]),
    ];
    let events = run(&with_updates(&pf, &updates));
    assert_updates_framed(&events, &updates);
    let last = detail(find(&events, "FramebufferUpdate").last().unwrap());
    assert_eq!(last["rects"], 6);
    assert_eq!(last["resize"], json!([800, 600]));
    assert_eq!(last["desktop_name"], "new");
    let tights = detail(find(&events, "FramebufferUpdate")[8]);
    assert_eq!(tights["encodings"], json!({"Tight": 6}));
}

#[test]
fn last_rect_ends_an_update_of_unknown_length() {
    let pf = pixel_format(16, 16);
    let mut u = vec![0, 0, 0xff, 0xff];
    u.extend(rect(0, 0, 4, 4, 0, &filler(32, 1)));
    u.extend(rect(0, 0, 0, 0, -224, &[]));
    let events = run(&with_updates(&pf, std::slice::from_ref(&u)));
    assert_updates_framed(&events, &[u]);
    let d = detail(find(&events, "FramebufferUpdate")[0]);
    assert_eq!(d["rects"], 2);
    assert_eq!(d["last_rect"], true);
}

#[test]
fn an_unframeable_encoding_stops_only_its_direction() {
    let pf = pixel_format(32, 24);
    let mut s = with_updates(&pf, &[update(&[rect(0, 0, 4, 4, 8, &filler(40, 1))])]);
    s.push((C, vec![3, 1, 0, 0, 0, 0, 0, 10, 0, 10]));
    s.push(bell());
    let events = run(&s);
    let f = findings(&events);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("rfb.unframeable_encoding"));
    // Nothing after it on the server side; the client side goes on.
    assert_eq!(find(&events, "Bell").len(), 0);
    assert_eq!(find(&events, "FramebufferUpdateRequest").len(), 1);
}

// ---- client and server messages: encode -> decode round trip ----

#[derive(Debug, Clone)]
enum ClientMsg {
    SetPixelFormat(u8),
    SetEncodings(Vec<i32>),
    UpdateRequest(bool, [u16; 4]),
    Key(bool, u32),
    Pointer(u8, u16, u16),
    CutText(Vec<u8>),
    ContinuousUpdates(bool, [u16; 4]),
    Fence(u32, Vec<u8>),
    Xvp(u8),
    SetDesktopSize(u16, u16, u8),
    Gii(bool, Vec<u8>),
    QemuKey(bool, u32, u32),
    QemuAudio(u16),
}

impl ClientMsg {
    fn encode(&self) -> Vec<u8> {
        let rect4 = |r: &[u16; 4]| r.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        match self {
            ClientMsg::SetPixelFormat(bpp) => {
                [vec![0, 0, 0, 0], pixel_format(*bpp, 24.min(*bpp))].concat()
            }
            ClientMsg::SetEncodings(e) => {
                let mut b = vec![2, 0];
                b.extend((e.len() as u16).to_be_bytes());
                e.iter().for_each(|x| b.extend(x.to_be_bytes()));
                b
            }
            ClientMsg::UpdateRequest(inc, r) => [vec![3, *inc as u8], rect4(r)].concat(),
            ClientMsg::Key(down, k) => {
                [vec![4, *down as u8, 0, 0], k.to_be_bytes().to_vec()].concat()
            }
            ClientMsg::Pointer(m, x, y) => [
                vec![5, *m],
                x.to_be_bytes().to_vec(),
                y.to_be_bytes().to_vec(),
            ]
            .concat(),
            ClientMsg::CutText(t) => [
                vec![6, 0, 0, 0],
                (t.len() as u32).to_be_bytes().to_vec(),
                t.clone(),
            ]
            .concat(),
            ClientMsg::ContinuousUpdates(on, r) => [vec![150, *on as u8], rect4(r)].concat(),
            ClientMsg::Fence(flags, p) => [
                vec![248, 0, 0, 0],
                flags.to_be_bytes().to_vec(),
                vec![p.len() as u8],
                p.clone(),
            ]
            .concat(),
            ClientMsg::Xvp(code) => vec![250, 0, 1, *code],
            ClientMsg::SetDesktopSize(w, h, n) => {
                let mut b = vec![251, 0];
                b.extend(w.to_be_bytes());
                b.extend(h.to_be_bytes());
                b.extend([*n, 0]);
                b.extend(filler(16 * *n as usize, 1));
                b
            }
            ClientMsg::Gii(be, p) => {
                let len = p.len() as u16;
                let l = if *be {
                    len.to_be_bytes()
                } else {
                    len.to_le_bytes()
                };
                [
                    vec![253, if *be { 0x81 } else { 0x01 }],
                    l.to_vec(),
                    p.clone(),
                ]
                .concat()
            }
            ClientMsg::QemuKey(down, sym, code) => [
                vec![255, 0, 0, *down as u8],
                sym.to_be_bytes().to_vec(),
                code.to_be_bytes().to_vec(),
            ]
            .concat(),
            ClientMsg::QemuAudio(op) => {
                let mut b = vec![255, 1];
                b.extend(op.to_be_bytes());
                if *op == 2 {
                    b.extend([3, 2, 0, 0, 0xac, 0x44]);
                }
                b
            }
        }
    }

    /// Name and the detail fields the decoder must report.
    fn expect(&self) -> (&'static str, Vec<(&'static str, Value)>) {
        match self {
            ClientMsg::SetPixelFormat(bpp) => (
                "SetPixelFormat",
                vec![("pixel_format", json!({"bits_per_pixel": bpp}))],
            ),
            ClientMsg::SetEncodings(e) => (
                "SetEncodings",
                vec![
                    ("count", json!(e.len())),
                    ("encodings", json!(e[..e.len().min(64)])),
                ],
            ),
            ClientMsg::UpdateRequest(inc, r) => (
                "FramebufferUpdateRequest",
                vec![("incremental", json!(inc)), ("rect", json!(r))],
            ),
            ClientMsg::Key(down, k) => (
                "KeyEvent",
                vec![("down", json!(down)), ("keysym", json!(k))],
            ),
            ClientMsg::Pointer(m, x, y) => (
                "PointerEvent",
                vec![("buttons", json!(m)), ("x", json!(x)), ("y", json!(y))],
            ),
            ClientMsg::CutText(t) => ("ClientCutText", vec![("text_len", json!(t.len()))]),
            ClientMsg::ContinuousUpdates(on, r) => (
                "EnableContinuousUpdates",
                vec![("enable", json!(on)), ("rect", json!(r))],
            ),
            ClientMsg::Fence(flags, p) => (
                "ClientFence",
                vec![("flags", json!(flags)), ("payload_len", json!(p.len()))],
            ),
            ClientMsg::Xvp(code) => ("xvp", vec![("code", json!(code))]),
            ClientMsg::SetDesktopSize(w, h, n) => (
                "SetDesktopSize",
                vec![
                    ("width", json!(w)),
                    ("height", json!(h)),
                    ("screens", json!(n)),
                ],
            ),
            ClientMsg::Gii(_, p) => ("gii", vec![("len", json!(p.len()))]),
            ClientMsg::QemuKey(down, sym, code) => (
                "QemuExtendedKeyEvent",
                vec![
                    ("down", json!(down)),
                    ("keysym", json!(sym)),
                    ("keycode", json!(code)),
                ],
            ),
            ClientMsg::QemuAudio(op) => ("QemuAudio", vec![("op", json!(op))]),
        }
    }
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    let r4 = prop::array::uniform4(any::<u16>());
    prop_oneof![
        prop::sample::select(vec![8u8, 16, 32]).prop_map(ClientMsg::SetPixelFormat),
        prop::collection::vec(
            any::<i32>().prop_filter("no ext pseudo", |e| *e != -316
                && *e != 0xc0a1e5ce_u32 as i32),
            0..80
        )
        .prop_map(ClientMsg::SetEncodings),
        (any::<bool>(), r4).prop_map(|(i, r)| ClientMsg::UpdateRequest(i, r)),
        (any::<bool>(), any::<u32>()).prop_map(|(d, k)| ClientMsg::Key(d, k)),
        (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(m, x, y)| ClientMsg::Pointer(m, x, y)),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(ClientMsg::CutText),
        (any::<bool>(), r4).prop_map(|(o, r)| ClientMsg::ContinuousUpdates(o, r)),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..=64))
            .prop_map(|(f, p)| ClientMsg::Fence(f, p)),
        (2u8..=4).prop_map(ClientMsg::Xvp),
        (any::<u16>(), any::<u16>(), 0u8..4)
            .prop_map(|(w, h, n)| ClientMsg::SetDesktopSize(w, h, n)),
        (any::<bool>(), prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(b, p)| ClientMsg::Gii(b, p)),
        (any::<bool>(), any::<u32>(), any::<u32>())
            .prop_map(|(d, s, c)| ClientMsg::QemuKey(d, s, c)),
        (0u16..=2).prop_map(ClientMsg::QemuAudio),
    ]
}

#[derive(Debug, Clone)]
enum ServerMsg {
    Colours(u16, u16),
    Bell,
    CutText(Vec<u8>),
    EndOfContinuousUpdates,
    Fence(u32, Vec<u8>),
    Xvp(u8),
    Gii(Vec<u8>),
    QemuAudio(u16, Vec<u8>),
}

impl ServerMsg {
    fn encode(&self) -> Vec<u8> {
        match self {
            ServerMsg::Colours(first, n) => [
                vec![1, 0],
                first.to_be_bytes().to_vec(),
                n.to_be_bytes().to_vec(),
                filler(6 * *n as usize, 1),
            ]
            .concat(),
            ServerMsg::Bell => vec![2],
            ServerMsg::CutText(t) => [
                vec![3, 0, 0, 0],
                (t.len() as u32).to_be_bytes().to_vec(),
                t.clone(),
            ]
            .concat(),
            ServerMsg::EndOfContinuousUpdates => vec![150],
            ServerMsg::Fence(f, p) => [
                vec![248, 0, 0, 0],
                f.to_be_bytes().to_vec(),
                vec![p.len() as u8],
                p.clone(),
            ]
            .concat(),
            ServerMsg::Xvp(code) => vec![250, 0, 1, *code],
            ServerMsg::Gii(p) => [
                vec![253, 0x82],
                (p.len() as u16).to_be_bytes().to_vec(),
                p.clone(),
            ]
            .concat(),
            ServerMsg::QemuAudio(op, data) => {
                let mut b = vec![255, 1];
                b.extend(op.to_be_bytes());
                if *op == 2 {
                    b.extend((data.len() as u32).to_be_bytes());
                    b.extend(data);
                }
                b
            }
        }
    }
    fn expect(&self) -> (&'static str, Vec<(&'static str, Value)>) {
        match self {
            ServerMsg::Colours(first, n) => (
                "SetColourMapEntries",
                vec![("first", json!(first)), ("colours", json!(n))],
            ),
            ServerMsg::Bell => ("Bell", vec![]),
            ServerMsg::CutText(t) => ("ServerCutText", vec![("text_len", json!(t.len()))]),
            ServerMsg::EndOfContinuousUpdates => ("EndOfContinuousUpdates", vec![]),
            ServerMsg::Fence(f, p) => (
                "ServerFence",
                vec![("flags", json!(f)), ("payload_len", json!(p.len()))],
            ),
            ServerMsg::Xvp(code) => ("xvp", vec![("code", json!(code))]),
            ServerMsg::Gii(p) => ("gii", vec![("len", json!(p.len()))]),
            ServerMsg::QemuAudio(op, data) if *op == 2 => (
                "QemuAudio",
                vec![("op", json!("data")), ("data_len", json!(data.len()))],
            ),
            ServerMsg::QemuAudio(op, _) => (
                "QemuAudio",
                vec![("op", json!(if *op == 0 { "end" } else { "begin" }))],
            ),
        }
    }
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    prop_oneof![
        (any::<u16>(), 0u16..50).prop_map(|(f, n)| ServerMsg::Colours(f, n)),
        Just(ServerMsg::Bell),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(ServerMsg::CutText),
        Just(ServerMsg::EndOfContinuousUpdates),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..=64))
            .prop_map(|(f, p)| ServerMsg::Fence(f, p)),
        (0u8..=1).prop_map(ServerMsg::Xvp),
        prop::collection::vec(any::<u8>(), 0..100).prop_map(ServerMsg::Gii),
        (0u16..=2, prop::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(o, d)| ServerMsg::QemuAudio(o, d)),
    ]
}

/// Asserts message `e` has `name`, `len` and (a superset of) `fields`.
fn check(e: &Event, dir: Direction, name: &str, len: usize, fields: &[(&'static str, Value)]) {
    assert_eq!(e.direction, Some(dir));
    match &e.kind {
        EventKind::Message {
            name: n, len: l, ..
        } => {
            assert_eq!(n, name);
            assert_eq!(*l, len as u64, "{name}");
        }
        other => panic!("expected {name}, got {other:?}"),
    }
    let d = detail(e);
    for (k, v) in fields {
        if let (Value::Object(want), Value::Object(got)) = (v, &d[*k]) {
            for (wk, wv) in want {
                assert_eq!(&got[wk], wv, "{name}.{k}.{wk}");
            }
        } else {
            assert_eq!(&d[*k], v, "{name}.{k}");
        }
    }
}

fn hextile_tiles() -> impl Strategy<Value = Vec<(u8, u8)>> {
    prop::collection::vec((0u8..32, 0u8..6), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn client_messages_round_trip(msgs in prop::collection::vec(client_msg(), 1..12)) {
        let mut s = handshake_38();
        for m in &msgs {
            s.push((C, m.encode()));
        }
        let events = run(&s);
        prop_assert!(findings(&events).is_empty(), "{:?}", findings(&events));
        let got: Vec<&Event> = events.iter().filter(|e| e.direction == Some(C)).skip(4).collect();
        prop_assert_eq!(got.len(), msgs.len());
        for (e, m) in got.iter().zip(&msgs) {
            let (name, fields) = m.expect();
            check(e, C, name, m.encode().len(), &fields);
        }
    }

    #[test]
    fn server_messages_round_trip(msgs in prop::collection::vec(server_msg(), 1..12)) {
        let mut s = handshake_38();
        for m in &msgs {
            s.push((S, m.encode()));
        }
        let events = run(&s);
        prop_assert!(findings(&events).is_empty(), "{:?}", findings(&events));
        let got: Vec<&Event> = events.iter().filter(|e| e.direction == Some(S)).skip(5).collect();
        prop_assert_eq!(got.len(), msgs.len());
        for (e, m) in got.iter().zip(&msgs) {
            let (name, fields) = m.expect();
            check(e, S, name, m.encode().len(), &fields);
        }
    }

    #[test]
    fn hextile_trle_and_tight_rectangles_end_where_they_should(
        w in 1u16..70, h in 1u16..50,
        bpp in prop::sample::select(vec![8u8, 16, 32]),
        tiles in hextile_tiles(),
        kinds in prop::collection::vec(0u8..6, 1..8),
        tight_kind in 0u8..6, colours in 3u8..=255,
    ) {
        let pf = pixel_format(bpp, 24.min(bpp));
        let px = bpp as usize / 8;
        let updates = vec![
            update(&[rect(0, 0, w, h, 5, &hextile(w, h, px, &tiles))]),
            update(&[rect(0, 0, w, h, 15, &trle(w, h, if bpp == 32 { 3 } else { px }, &kinds))]),
            update(&[rect(0, 0, w, h, 7, &tight(w, h, if bpp == 32 { 3 } else { px }, tight_kind, colours))]),
        ];
        let events = run(&with_updates(&pf, &updates));
        assert_updates_framed(&events, &updates);
    }

    /// Any chunking and any starting stream offset (as when the bytes come
    /// out of WebSocket frames) give the same events.
    #[test]
    fn any_chunking_gives_identical_events(
        cuts in prop::collection::vec(1usize..40, 1..20),
        base in 0u64..1_000_000,
        msgs in prop::collection::vec(client_msg(), 0..6),
        w in 1u16..40, h in 1u16..40, tiles in hextile_tiles(),
    ) {
        let pf = pixel_format(32, 24);
        let mut s = with_updates(&pf, &[
            update(&[rect(0, 0, w, h, 5, &hextile(w, h, 4, &tiles)), rect(0, 0, w, h, 16, &[0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9])]),
            update(&[rect(0, 0, w, h, 7, &tight(w, h, 3, 4, 7))]),
        ]);
        for m in &msgs {
            s.push((C, m.encode()));
        }
        let whole = run(&s);
        let tcp = run_with(&mut RfbDecoder::new(&StreamContext::default()), &s, &cuts, 0);
        let mut ws_dec = RfbDecoder::over_websocket(&StreamContext::default());
        prop_assert_eq!(ws_dec.stack(), vec!["tcp", "ws", "rfb"]);
        let ws = run_with(&mut ws_dec, &s, &cuts, base);
        prop_assert!(findings(&whole).is_empty(), "{:?}", findings(&whole));
        prop_assert_eq!(&whole, &tcp);
        prop_assert_eq!(&whole, &ws);
    }

    /// Hostile bytes after a valid handshake: no panic, every finding located.
    #[test]
    fn hostile_bytes_give_located_findings(
        server in prop::collection::vec(any::<u8>(), 0..400),
        client in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(1usize..50, 1..10),
    ) {
        let mut s = handshake_38();
        s.push((S, server));
        s.push((C, client));
        let events = run_with(&mut RfbDecoder::new(&StreamContext::default()), &s, &cuts, 0);
        for e in &events {
            if let EventKind::Finding(f) = &e.kind {
                prop_assert!(f.location.stream_offset.is_some() && f.location.direction.is_some() && f.location.frame.is_some());
                prop_assert!(f.code.starts_with("rfb."));
            }
        }
    }

    /// Random bytes from the first byte on: never a panic.
    #[test]
    fn random_streams_never_panic(
        server in prop::collection::vec(any::<u8>(), 0..300),
        client in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let s = vec![(S, [b"RFB 003.008\n".to_vec(), server].concat()), (C, [b"RFB 003.007\n".to_vec(), client].concat())];
        let _ = run(&s);
    }
}

#[test]
fn after_a_gap_decoding_resumes_at_a_plausible_segment() {
    let mut dec = RfbDecoder::new(&StreamContext::default());
    let mut out: Vec<Event> = Vec::new();
    let _ = feed(&mut dec, &handshake_38(), &[], 0);
    dec.gap(Micros(5), S, 500, 28, &mut out);
    let mut send = |bytes: &[u8], offset: u64, out: &mut Vec<Event>| {
        dec.data(
            Chunk {
                at: Micros(6),
                frame: 9,
                direction: S,
                stream_offset: offset,
                bytes,
            },
            out,
        );
    };
    // The tail of some message: not a plausible start, only counted.
    send(&[0x77, 1, 2, 3], 528, &mut out);
    // An update whose rectangle lies outside the 1024x768 framebuffer: no.
    send(&update(&[rect(1000, 0, 100, 10, 0, &[])]), 532, &mut out);
    // A Bell alone in its segment: yes.
    send(&[2], 548, &mut out);
    send(
        &update(&[rect(0, 0, 1, 1, 1, &[0, 0, 0, 0])]),
        549,
        &mut out,
    );
    assert_eq!(
        findings(&out),
        ["rfb.gap @Some(500)", "rfb.resynchronised @Some(548)"]
    );
    assert_eq!(find(&out, "Bell").len(), 1);
    assert_eq!(find(&out, "FramebufferUpdate").len(), 1);
}

#[test]
fn a_gap_in_the_handshake_stops_the_direction() {
    let mut dec = RfbDecoder::new(&StreamContext::default());
    let mut out: Vec<Event> = Vec::new();
    let mut s = handshake_38();
    s.truncate(3);
    let _ = feed(&mut dec, &s, &[], 0);
    dec.gap(Micros(5), S, 15, 16, &mut out);
    dec.data(
        Chunk {
            at: Micros(6),
            frame: 9,
            direction: S,
            stream_offset: 31,
            bytes: &[0, 0, 0, 0],
        },
        &mut out,
    );
    assert_eq!(findings(&out), ["rfb.gap @Some(15)"]);
    assert!(
        out.iter()
            .all(|e| !matches!(e.kind, EventKind::Message { .. }))
    );
}

#[test]
fn ending_inside_an_update_is_reported() {
    let pf = pixel_format(32, 24);
    let mut s = with_updates(&pf, &[]);
    let mut u = update(&[rect(0, 0, 10, 10, 0, &filler(400, 1))]);
    u.truncate(100);
    s.push((S, u));
    let events = run(&s);
    assert_eq!(findings(&events).len(), 1);
    assert!(findings(&events)[0].starts_with("rfb.ended_mid_message"));
}

#[test]
fn png_control_is_only_valid_in_tight_png() {
    let pf = pixel_format(32, 24);
    let png = [vec![0xa0, 3], filler(3, 1)].concat();
    let ok = update(&[rect(0, 0, 8, 8, -260, &png)]);
    let events = run(&with_updates(&pf, std::slice::from_ref(&ok)));
    assert_updates_framed(&events, &[ok]);
    let bad = update(&[rect(0, 0, 8, 8, 7, &png)]);
    let events = run(&with_updates(&pf, &[bad]));
    assert_eq!(findings(&events).len(), 1);
    assert!(findings(&events)[0].starts_with("rfb.tight_bad_control"));
}

#[test]
fn a_pixel_format_change_applies_to_the_next_update() {
    // 16 bpp at ServerInit (via SetPixelFormat); an update in flight when
    // the client switches to 32 bpp is still 16 bpp.
    let mut s = handshake_38();
    s.push((C, [vec![0, 0, 0, 0], pixel_format(16, 16)].concat()));
    let first = update(&[rect(0, 0, 4, 4, 0, &filler(32, 1))]);
    s.push((S, first[..10].to_vec()));
    s.push((C, [vec![0, 0, 0, 0], pixel_format(32, 24)].concat()));
    s.push((S, first[10..].to_vec()));
    let second = update(&[rect(0, 0, 4, 4, 0, &filler(64, 1))]);
    s.push((S, second.clone()));
    s.push(bell());
    let events = run(&s);
    assert!(findings(&events).is_empty(), "{:?}", findings(&events));
    let lens: Vec<u64> = find(&events, "FramebufferUpdate")
        .iter()
        .map(|e| match &e.kind {
            EventKind::Message { len, .. } => *len,
            _ => 0,
        })
        .collect();
    assert_eq!(lens, [first.len() as u64, second.len() as u64]);
    assert_eq!(find(&events, "Bell").len(), 1);
}

#[test]
fn a_direction_waiting_too_long_for_the_other_gives_up_bounded() {
    // 70 KiB from the server before the client has sent its version: the
    // server side cannot be read yet and may not hold more than 64 KiB.
    let s: Script = vec![
        (
            S,
            [b"RFB 003.008\n".to_vec(), vec![1, 1], vec![0; 70 * 1024]].concat(),
        ),
        (C, b"RFB 003.008\n".to_vec()),
    ];
    let events = run_with(
        &mut RfbDecoder::new(&StreamContext::default()),
        &s,
        &[4096],
        0,
    );
    let f = findings(&events);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("rfb.stalled_handshake"), "{f:?}");
    assert_eq!(find(&events, "ProtocolVersion").len(), 2);
}

#[test]
fn an_unknown_client_message_stops_only_the_client_side() {
    let mut s = handshake_38();
    s.push((C, vec![7, 0, 0, 0]));
    s.push((C, vec![4, 1, 0, 0, 0, 0, 0, 0x61]));
    s.push(bell());
    let events = run(&s);
    let f = findings(&events);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("rfb.unknown_message_type"), "{f:?}");
    assert!(find(&events, "KeyEvent").is_empty());
    assert_eq!(find(&events, "Bell").len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Handshake messages round trip: versions, offered types (with VNC
    /// auth among them), challenge/response, result, shared flag and
    /// ServerInit fields, for 3.3, 3.7 and 3.8.
    #[test]
    fn handshake_messages_round_trip(
        minor in prop::sample::select(vec![3u16, 7, 8]),
        mut offered in prop::collection::vec(3u8..=255, 0..6),
        challenge in prop::array::uniform16(any::<u8>()),
        response in prop::array::uniform16(any::<u8>()),
        shared in any::<bool>(),
        w in any::<u16>(), h in any::<u16>(),
        bpp in prop::sample::select(vec![8u8, 16, 32]),
        name in "[ -~]{0,40}",
    ) {
        offered.push(2);
        let version = format!("RFB 003.{minor:03}\n").into_bytes();
        let mut s: Script = vec![(S, version.clone()), (C, version)];
        if minor == 3 {
            s.push((S, vec![0, 0, 0, 2]));
        } else {
            s.push((S, [vec![offered.len() as u8], offered.clone()].concat()));
            s.push((C, vec![2]));
        }
        s.push((S, challenge.to_vec()));
        s.push((C, response.to_vec()));
        s.push((S, vec![0, 0, 0, 0]));
        s.push((C, vec![shared as u8]));
        s.push((S, server_init(w, h, &pixel_format(bpp, 24.min(bpp)), name.as_bytes())));
        let events = run(&s);
        prop_assert!(findings(&events).is_empty(), "{:?}", findings(&events));
        for e in find(&events, "ProtocolVersion") {
            prop_assert_eq!(&detail(e)["version"], &json!(format!("003.{minor:03}")));
        }
        if minor == 3 {
            prop_assert_eq!(&detail(find(&events, "SecurityType")[0])["type"], &json!(2));
        } else {
            prop_assert_eq!(&detail(find(&events, "SecurityTypes")[0])["types"], &json!(offered));
            prop_assert_eq!(&detail(find(&events, "SecurityTypeSelected")[0])["type"], &json!(2));
        }
        let hexs = |b: &[u8]| b.iter().map(|c| format!("{c:02x}")).collect::<String>();
        prop_assert_eq!(&detail(find(&events, "VncAuthChallenge")[0])["challenge"], &json!(hexs(&challenge)));
        prop_assert_eq!(&detail(find(&events, "VncAuthResponse")[0])["response"], &json!(hexs(&response)));
        prop_assert_eq!(&detail(find(&events, "SecurityResult")[0])["ok"], &json!(true));
        prop_assert_eq!(&detail(find(&events, "ClientInit")[0])["shared"], &json!(shared));
        let init = detail(find(&events, "ServerInit")[0]);
        prop_assert_eq!(&init["width"], &json!(w));
        prop_assert_eq!(&init["height"], &json!(h));
        prop_assert_eq!(&init["name"], &json!(name));
        prop_assert_eq!(&init["pixel_format"]["bits_per_pixel"], &json!(bpp));
    }
}
