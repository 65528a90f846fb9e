//! A synthetic desktop for the generator's display updates: flat windows,
//! text-like areas and photo-like noise, so that solid tiles, few-colour
//! tiles and incompressible tiles all occur, as on a real screen.

use rand::RngExt;
use rand_xorshift::XorShiftRng;

pub struct Screen {
    pub width: u16,
    pub height: u16,
    /// R, G, B per pixel, row-major.
    rgb: Vec<u8>,
}

impl Screen {
    pub fn new(width: u16, height: u16, rng: &mut XorShiftRng) -> Screen {
        let mut s = Screen {
            width,
            height,
            rgb: vec![0; usize::from(width) * usize::from(height) * 3],
        };
        s.fill(0, 0, width, height, [0x3a, 0x6e, 0xa5]);
        for _ in 0..24 {
            s.scribble(rng);
        }
        s
    }

    fn fill(&mut self, x: u16, y: u16, w: u16, h: u16, c: [u8; 3]) {
        for row in y..y + h {
            let start = (usize::from(row) * usize::from(self.width) + usize::from(x)) * 3;
            for px in self.rgb[start..start + usize::from(w) * 3].chunks_exact_mut(3) {
                px.copy_from_slice(&c);
            }
        }
    }

    /// Draws something new somewhere: a window, a run of text or a photo.
    pub fn scribble(&mut self, rng: &mut XorShiftRng) -> (u16, u16, u16, u16) {
        let w = rng.random_range(16..=self.width.min(400));
        let h = rng.random_range(16..=self.height.min(300));
        let x = rng.random_range(0..=self.width - w);
        let y = rng.random_range(0..=self.height - h);
        match rng.random_range(0..3u8) {
            0 => {
                let c = [rng.random(), rng.random(), rng.random()];
                self.fill(x, y, w, h, c);
            }
            1 => {
                self.fill(x, y, w, h, [0xf4, 0xf4, 0xf4]);
                // Glyph-like dots on every other 12-pixel line.
                for row in (y..y + h).filter(|r| (r - y) % 12 < 8) {
                    for col in x..x + w {
                        if rng.random_bool(0.18) {
                            self.set(col, row, [0x20, 0x20, 0x20]);
                        }
                    }
                }
            }
            _ => {
                let base: [u8; 3] = [rng.random(), rng.random(), rng.random()];
                for row in y..y + h {
                    for col in x..x + w {
                        let n: u8 = rng.random_range(0..48);
                        let c = [
                            base[0].wrapping_add((col as u8) / 2).wrapping_add(n),
                            base[1].wrapping_add((row as u8) / 2).wrapping_add(n),
                            base[2].wrapping_add(n),
                        ];
                        self.set(col, row, c);
                    }
                }
            }
        }
        (x, y, w, h)
    }

    fn set(&mut self, x: u16, y: u16, c: [u8; 3]) {
        let i = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 3;
        self.rgb[i..i + 3].copy_from_slice(&c);
    }

    pub fn rgb(&self, x: u16, y: u16) -> [u8; 3] {
        let i = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The single colour of a rectangle, if it has one.
    pub fn solid(&self, x: u16, y: u16, w: u16, h: u16) -> Option<[u8; 3]> {
        let c = self.rgb(x, y);
        for row in y..y + h {
            let start = (usize::from(row) * usize::from(self.width) + usize::from(x)) * 3;
            let line = &self.rgb[start..start + usize::from(w) * 3];
            if line.chunks_exact(3).any(|p| p != c) {
                return None;
            }
        }
        Some(c)
    }

    /// Appends the rectangle's pixels, `bytes_per_pixel` each: 3 is R, G, B
    /// (RFB's TPIXEL/CPIXEL for 32-bit true colour), 4 adds a zero pad byte
    /// (32 bpp, little-endian, shifts 0/8/16 as noVNC asks for).
    pub fn pixels(
        &self,
        x: u16,
        y: u16,
        w: u16,
        h: u16,
        bytes_per_pixel: usize,
        out: &mut Vec<u8>,
    ) {
        for row in y..y + h {
            let start = (usize::from(row) * usize::from(self.width) + usize::from(x)) * 3;
            let line = &self.rgb[start..start + usize::from(w) * 3];
            if bytes_per_pixel == 3 {
                out.extend_from_slice(line);
            } else {
                for p in line.chunks_exact(3) {
                    out.extend_from_slice(&[p[0], p[1], p[2], 0]);
                }
            }
        }
    }
}
