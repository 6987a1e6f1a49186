//! The pictures `chat --attachment-share` uploads: one JPEG made at start, a smooth gradient under
//! noise whose strength is chosen so that the file comes close to the asked size, without EXIF or
//! any other metadata; then, per upload, a variant that decodes to other pixels. A variant keeps
//! the entropy-coded data and changes a few entries of the luminance quantisation table: each
//! entry scales one frequency of every block, so the decoded pixels differ while the harness spends
//! nothing on encoding. Every upload is then an image the hub has not seen, which it decodes and
//! encodes again as it would a phone's photo.

use anyhow::{bail, ensure, Context};
use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;

/// JPEG quality of the picture (a phone's usual).
const QUALITY: u8 = 85;
/// Luminance table entries (zigzag order, after the DC entry) that tell variants apart: one bit of
/// the variant number each, so 2^20 distinct pictures before they repeat.
const VARIED_ENTRIES: usize = 20;
/// Steps of the search for the noise strength that gives the asked size.
const SEARCH_STEPS: usize = 8;

/// A picture and where its luminance quantisation table lies in it.
#[derive(Clone, Debug)]
pub struct Picture {
    jpeg: Vec<u8>,
    /// Offset of the luminance table's 64 entries in `jpeg`.
    luma_table: usize,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Picture {
    /// A `width` x `height` JPEG as close to `target_bytes` as the noise strength allows (a
    /// picture too small for the size is all noise; one too large for it has none).
    ///
    /// # Errors
    /// Dimensions of zero or above 16,384, or a failed encoding.
    pub fn make(width: u32, height: u32, target_bytes: usize) -> anyhow::Result<Self> {
        ensure!((1..=16_384).contains(&width) && (1..=16_384).contains(&height), "picture sides must be 1 to 16384");
        let (mut low, mut high) = (0.0f64, 1.0f64);
        let mut best = encode(width, height, high)?;
        if best.len() > target_bytes {
            for _ in 0..SEARCH_STEPS {
                let mid = (low + high) / 2.0;
                let jpeg = encode(width, height, mid)?;
                if jpeg.len().abs_diff(target_bytes) < best.len().abs_diff(target_bytes) {
                    best = jpeg.clone();
                }
                if jpeg.len() > target_bytes {
                    high = mid;
                } else {
                    low = mid;
                }
            }
        }
        let luma_table = luma_table_offset(&best)?;
        Ok(Self { jpeg: best, luma_table, width, height })
    }

    /// Bytes of every variant.
    pub fn len(&self) -> usize {
        self.jpeg.len()
    }

    /// Variant `n`: the picture with the luminance table's varied entries raised by the bits of
    /// `n` (modulo 2^20, so variants repeat only after 1,048,576 of them).
    pub fn variant(&self, n: u64) -> Vec<u8> {
        let mut out = self.jpeg.clone();
        for bit in 0..VARIED_ENTRIES {
            if n >> bit & 1 == 1 {
                let entry = &mut out[self.luma_table + 1 + bit];
                // Entries are 1 to 255: a full one steps down instead.
                *entry = if *entry == u8::MAX { *entry - 1 } else { *entry + 1 };
            }
        }
        out
    }
}

/// A gradient under noise of `strength` (0: none, 1: the whole range), as a JPEG.
fn encode(width: u32, height: u32, strength: f64) -> anyhow::Result<Vec<u8>> {
    let amplitude = strength.clamp(0.0, 1.0) * 255.0;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    let mut state = 0x5eed_u64;
    for y in 0..height {
        for x in 0..width {
            let noise = splitmix(&mut state);
            let base = [
                255.0 * f64::from(x) / f64::from(width),
                255.0 * f64::from(y) / f64::from(height),
                255.0 * f64::from(x + y) / f64::from(width + height),
            ];
            for (c, b) in base.into_iter().enumerate() {
                let n = f64::from((noise >> (16 * c)) as u16) / f64::from(u16::MAX) - 0.5;
                pixels.push((b + n * amplitude).clamp(0.0, 255.0) as u8);
            }
        }
    }
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode(&pixels, width, height, ExtendedColorType::Rgb8)
        .context("encoding the picture")?;
    Ok(out)
}

/// splitmix64: a fast, well-spread sequence (the pictures' noise, the choice of messages that carry
/// one).
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The offset of the first entry of the 8-bit luminance quantisation table (table 0) in a JPEG:
/// the segments are walked from the start of the image to the start of the scan.
///
/// # Errors
/// Not a JPEG, or no 8-bit table 0 before the scan.
fn luma_table_offset(jpeg: &[u8]) -> anyhow::Result<usize> {
    ensure!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        ensure!(jpeg[at] == 0xFF, "no marker at {at}");
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if marker == 0xDA {
            break;
        }
        let body = at + 4;
        let end = at + 2 + len;
        ensure!(end <= jpeg.len() && len >= 2, "segment past the end");
        if marker == 0xDB {
            let mut t = body;
            while t < end {
                let (precision, id) = (jpeg[t] >> 4, jpeg[t] & 0x0F);
                if precision == 0 && id == 0 {
                    return Ok(t + 1);
                }
                t += 1 + if precision == 0 { 64 } else { 128 };
            }
        }
        at = end;
    }
    bail!("no 8-bit luminance table before the scan")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(jpeg: &[u8]) -> Vec<u8> {
        image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap().to_rgb8().into_raw()
    }

    #[test]
    fn a_picture_comes_close_to_the_asked_size_without_metadata() {
        let p = Picture::make(160, 120, 12_000).unwrap();
        assert!(p.len().abs_diff(12_000) < 1_200, "{} bytes", p.len());
        let v = p.variant(0);
        assert_eq!(v.len(), p.len());
        assert!(!v.windows(4).any(|w| w == b"Exif"), "no EXIF");
        let decoded = image::load_from_memory(&v).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (160, 120));
        // Too small for the size: all noise; too large: none.
        assert!(Picture::make(16, 16, 1_000_000).unwrap().len() < 10_000);
        assert!(Picture::make(0, 16, 1_000).is_err());
    }

    #[test]
    fn variants_decode_to_different_pixels() {
        let p = Picture::make(96, 64, 6_000).unwrap();
        let pixels: Vec<Vec<u8>> = [0, 1, 2, 3, 1 << 19].iter().map(|&n| decode(&p.variant(n))).collect();
        for i in 0..pixels.len() {
            for j in i + 1..pixels.len() {
                assert_ne!(pixels[i], pixels[j], "variants {i} and {j}");
            }
        }
        assert_eq!(p.variant(5), p.variant(5 + (1 << VARIED_ENTRIES)), "they repeat after 2^20");
        assert_eq!(p.variant(7).len(), p.len());
    }

    #[test]
    fn the_luminance_table_is_found_after_other_segments() {
        // SOI, an APP0 of 4 bytes, a DQT with table 1 then table 0, SOS.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDB, 0x00, 2 + 2 * 65];
        jpeg.push(0x01);
        jpeg.extend([9u8; 64]);
        jpeg.push(0x00);
        jpeg.extend([7u8; 64]);
        jpeg.extend([0xFF, 0xDA, 0x00, 0x02]);
        let at = luma_table_offset(&jpeg).unwrap();
        assert_eq!((at, jpeg[at]), (8 + 4 + 65 + 1, 7));
        assert!(luma_table_offset(b"GIF89a").is_err());
        assert!(luma_table_offset(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]).is_err());
    }
}
