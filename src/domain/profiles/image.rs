//! Profile images: checked by really decoding them (with size and dimension limits, so a
//! decompression bomb is refused before it allocates), scaled down, and re-encoded as a fresh JPEG,
//! which drops every byte of the original's metadata (EXIF GPS positions included).

use crate::error::{Error, Result, SizeUnit};
use image::{DynamicImage, ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use std::io::Cursor;

/// Limits of an upload.
#[derive(Clone, Copy, Debug)]
pub struct ImagePolicy {
    /// Largest upload in bytes.
    pub max_bytes: usize,
    /// Largest width or height accepted.
    pub max_side: u32,
    /// Width and height the stored image fits in.
    pub out_side: u32,
}

/// JPEG quality of stored images: small files, no visible artefacts at avatar sizes.
const QUALITY: u8 = 85;

/// Decodes `bytes` (PNG, JPEG, WebP or GIF), scales it to fit `out_side`, flattens transparency
/// onto white and returns a new JPEG.
///
/// # Errors
/// `too_large` over `max_bytes`, `bad_image` for anything that is not a decodable image of an
/// accepted format within the dimension limit.
pub fn normalise(bytes: &[u8], policy: ImagePolicy) -> Result<Vec<u8>> {
    if bytes.len() > policy.max_bytes {
        return Err(Error::TooLarge {
            what: "image",
            size: Some(bytes.len()),
            limit: policy.max_bytes,
            unit: SizeUnit::Bytes,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| Error::BadImage("the file could not be read"))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif) => {}
        _ => return Err(Error::BadImage("the file is not a PNG, JPEG, WebP or GIF image")),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(policy.max_side);
    limits.max_image_height = Some(policy.max_side);
    limits.max_alloc = Some(u64::from(policy.max_side) * u64::from(policy.max_side) * 4 + (16 << 20));
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => Error::BadImage("the image is larger than the dimension limit"),
        _ => Error::BadImage("the image is damaged or incomplete"),
    })?;
    let scaled = if decoded.width() > policy.out_side || decoded.height() > policy.out_side {
        decoded.thumbnail(policy.out_side, policy.out_side)
    } else {
        decoded
    };
    let flat = flatten(&scaled);
    let mut out = Vec::with_capacity(32 * 1024);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY);
    flat.write_with_encoder(encoder).map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

/// RGB on a white background (JPEG has no alpha).
fn flatten(img: &DynamicImage) -> RgbImage {
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (x, y, p) in rgba.enumerate_pixels() {
        let a = u16::from(p[3]);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        out.put_pixel(x, y, Rgb([mix(p[0]), mix(p[1]), mix(p[2])]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ImagePolicy {
        ImagePolicy { max_bytes: 1 << 20, max_side: 1024, out_side: 64 }
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 200, 30, 128]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn images_are_scaled_and_reencoded_as_jpeg() {
        let out = normalise(&png(200, 100), policy()).unwrap();
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!(image::guess_format(&out).unwrap(), ImageFormat::Jpeg);
        assert_eq!((back.width(), back.height()), (64, 32));
    }

    #[test]
    fn bad_files_are_refused_clearly() {
        assert!(matches!(normalise(b"not an image at all", policy()), Err(Error::BadImage(_))));
        let mut truncated = png(50, 50);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(normalise(&truncated, policy()), Err(Error::BadImage(_))));
        assert!(matches!(normalise(&png(2000, 10), policy()), Err(Error::BadImage(_))), "over max_side");
        let small = ImagePolicy { max_bytes: 10, ..policy() };
        assert!(matches!(normalise(&png(5, 5), small), Err(Error::TooLarge { .. })));
    }
}
