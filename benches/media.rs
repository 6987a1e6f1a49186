//! The cost of checking an image attachment: decode, turn upright, encode anew without metadata,
//! and make the thumbnail (the work behind each picture uploaded). Run with `cargo bench --bench media`;
//! it prints the time per picture for a phone screenshot (PNG) and a shared photo (JPEG).
//! For counts that do not depend on the machine's load, run the bench binary under
//! `valgrind --tool=callgrind` with `MEDIA_BENCH_ROUNDS=3`.

use anapars_hub::domain::media::image::{reencode, DecodeLimits};
use std::io::Cursor;
use std::time::Instant;

const LIMITS: DecodeLimits = DecodeLimits { max_side: 16_384, max_pixels: 40_000_000 };

/// A picture that compresses like a photo: a gradient with noise.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_u32;
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed & 0x1f) as u8;
        image::Rgb([(x * 255 / width) as u8 ^ noise, (y * 255 / height) as u8, 128 ^ noise])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).expect("encode");
    out
}

fn main() {
    let rounds: u32 = std::env::var("MEDIA_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for (name, bytes) in [
        ("photo 1024x768 JPEG", picture(1024, 768, image::ImageFormat::Jpeg)),
        ("screenshot 1080x2340 PNG", picture(1080, 2340, image::ImageFormat::Png)),
    ] {
        reencode(&bytes, LIMITS, 320).expect("a valid picture");
        let started = Instant::now();
        for _ in 0..rounds {
            reencode(&bytes, LIMITS, 320).expect("a valid picture");
        }
        let per = started.elapsed() / rounds;
        println!("{name} ({} bytes): {:.1} ms per picture over {rounds} rounds", bytes.len(), per.as_secs_f64() * 1e3);
    }
}
