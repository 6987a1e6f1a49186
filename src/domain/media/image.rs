//! Images, one pipeline for profile pictures and attachments: checked by really decoding them
//! (within a size, side and pixel-count limit read from the header before any pixel is decoded,
//! so a decompression bomb is refused before it allocates), turned upright by their orientation
//! tag, and re-encoded from the pixels alone, which drops every byte of the original's metadata
//! (EXIF GPS positions included).

use crate::error::{Error, Result, SizeUnit};
use crate::model::attachment::{Dimensions, MediaType};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use std::io::Cursor;

/// Limits of a profile image upload.
#[derive(Clone, Copy, Debug)]
pub struct ImagePolicy {
    /// Largest upload in bytes.
    pub max_bytes: usize,
    /// Largest width or height accepted.
    pub max_side: u32,
    /// Width and height the stored image fits in.
    pub out_side: u32,
}

/// What an image may be before it is decoded.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest width or height.
    pub max_side: u32,
    /// Largest width times height.
    pub max_pixels: u64,
}

/// JPEG quality of stored images: small files, no visible artefacts.
const QUALITY: u8 = 85;

/// Decodes `bytes` if they are an image of one of `formats` within `limits`, upright.
///
/// # Errors
/// `bad_image`: another format, over a limit, or damaged.
pub fn decode(bytes: &[u8], formats: &[ImageFormat], limits: DecodeLimits) -> Result<(DynamicImage, ImageFormat)> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| Error::BadImage("the file could not be read"))?;
    let format =
        reader.format().filter(|f| formats.contains(f)).ok_or(Error::BadImage("the image format is not accepted"))?;
    let mut guard = Limits::default();
    guard.max_image_width = Some(limits.max_side);
    guard.max_image_height = Some(limits.max_side);
    guard.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(16 << 20));
    reader.limits(guard);
    let too_big = Error::BadImage("the image is larger than the dimension limit");
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => too_big,
        _ => Error::BadImage("the image is damaged or incomplete"),
    })?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(Error::BadImage("the image is larger than the dimension limit"));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => Error::BadImage("the image is larger than the dimension limit"),
        _ => Error::BadImage("the image is damaged or incomplete"),
    })?;
    decoded.apply_orientation(orientation);
    Ok((decoded, format))
}

/// `img` scaled down to fit `side` (never up); borrowed when it fits already.
fn fit(img: &DynamicImage, side: u32) -> std::borrow::Cow<'_, DynamicImage> {
    if img.width() > side || img.height() > side {
        std::borrow::Cow::Owned(img.thumbnail(side, side))
    } else {
        std::borrow::Cow::Borrowed(img)
    }
}

/// A new JPEG of `img` fitted into `side`, transparency flattened onto white.
///
/// # Errors
/// `internal` when the encoder fails.
pub fn jpeg(img: &DynamicImage, side: u32) -> Result<Vec<u8>> {
    let fitted = fit(img, side);
    // Only pictures with an alpha channel need flattening; the others convert at most once.
    let rgb = if fitted.color().has_alpha() { flatten(&fitted) } else { fitted.to_rgb8() };
    let too_large = || Error::Internal("jpeg encode: a side over 65535 pixels".into());
    let (width, height) =
        (u16::try_from(rgb.width()).map_err(|_| too_large())?, u16::try_from(rgb.height()).map_err(|_| too_large())?);
    let mut out = Vec::with_capacity(32 * 1024);
    jpeg_encoder::Encoder::new(&mut out, QUALITY)
        .encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| Error::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

/// A new PNG of `img` (lossless, transparency kept).
///
/// # Errors
/// `internal` when the encoder fails.
pub fn png(img: &DynamicImage) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * 1024);
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("png encode: {e}")))?;
    Ok(out)
}

/// A profile image: decodes `bytes` (PNG, JPEG, WebP or GIF), fits it into `out_side` and returns
/// a new JPEG.
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
    let formats = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP, ImageFormat::Gif];
    let limits = DecodeLimits { max_side: policy.max_side, max_pixels: u64::from(policy.max_side).pow(2) };
    let (decoded, _) = decode(bytes, &formats, limits)?;
    jpeg(&decoded, policy.out_side)
}

/// An image attachment after re-encoding.
#[derive(Clone, Debug)]
pub struct Reencoded {
    /// The new file: PNG for a PNG (screenshots stay sharp), JPEG for the others.
    pub bytes: Vec<u8>,
    /// Its type.
    pub media_type: MediaType,
    /// Its dimensions, upright.
    pub dimensions: Dimensions,
    /// A JPEG thumbnail fitted into the thumbnail side.
    pub thumbnail: Vec<u8>,
}

/// An image attachment (JPEG, PNG or WebP) decoded within `limits` and re-encoded without any of
/// its metadata, with a thumbnail fitted into `thumb_side`.
///
/// # Errors
/// `bad_image` as [`decode`]; `internal` when an encoder fails.
pub fn reencode(bytes: &[u8], limits: DecodeLimits, thumb_side: u32) -> Result<Reencoded> {
    let (img, format) = decode(bytes, &[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP], limits)?;
    let (bytes, media_type) = match format {
        ImageFormat::Png => (png(&img)?, MediaType::Png),
        _ => (jpeg(&img, u32::MAX)?, MediaType::Jpeg),
    };
    let dimensions = Dimensions { width: img.width(), height: img.height() };
    Ok(Reencoded { bytes, media_type, dimensions, thumbnail: jpeg(&img, thumb_side)? })
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

    const LIMITS: DecodeLimits = DecodeLimits { max_side: 8192, max_pixels: 24_000_000 };

    fn png_of(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 200, 30, 128]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    fn jpeg_of(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 20, 40]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    /// `jpeg` with an EXIF segment holding a GPS position and a rotation tag (right after SOI).
    fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        // TIFF header (big-endian), one IFD with Orientation and a GPS IFD pointer, then the GPS IFD
        // with its latitude reference: enough for any EXIF reader to find "GPS" data.
        let mut tiff: Vec<u8> = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
        tiff.extend([0, 2]);
        tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend(orientation.to_be_bytes());
        tiff.extend([0, 0]);
        tiff.extend([0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
        tiff.extend([0, 0, 0, 0]);
        tiff.extend([0, 1, 0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
        tiff.extend([0, 0, 0, 0]);
        tiff.extend(b"GPS-SECRET-PLACE");
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    /// A PNG whose header claims `w` x `h` over a few bytes of data: a decompression bomb's shape.
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = png_of(1, 1);
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn profile_images_are_scaled_and_reencoded_as_jpeg() {
        let out = normalise(&png_of(200, 100), policy()).unwrap();
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!(image::guess_format(&out).unwrap(), ImageFormat::Jpeg);
        assert_eq!((back.width(), back.height()), (64, 32));
    }

    #[test]
    fn bad_files_are_refused_clearly() {
        assert!(matches!(normalise(b"not an image at all", policy()), Err(Error::BadImage(_))));
        let mut truncated = png_of(50, 50);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(normalise(&truncated, policy()), Err(Error::BadImage(_))));
        assert!(matches!(normalise(&png_of(2000, 10), policy()), Err(Error::BadImage(_))), "over max_side");
        let small = ImagePolicy { max_bytes: 10, ..policy() };
        assert!(matches!(normalise(&png_of(5, 5), small), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn exif_and_gps_are_gone_and_the_photo_stands_upright() {
        let original = with_exif(&jpeg_of(40, 20), 6); // 6: rotate 90 degrees clockwise to view
        assert!(original.windows(16).any(|w| w == b"GPS-SECRET-PLACE"), "the fixture carries the position");
        let out = reencode(&original, LIMITS, 16).unwrap();
        assert_eq!(out.media_type, MediaType::Jpeg);
        for marker in [&b"Exif"[..], b"GPS-SECRET-PLACE", b"MM\x00\x2a"] {
            assert!(!out.bytes.windows(marker.len()).any(|w| w == marker), "{marker:?} survived");
            assert!(!out.thumbnail.windows(marker.len()).any(|w| w == marker), "{marker:?} in the thumbnail");
        }
        assert_eq!(out.dimensions, Dimensions { width: 20, height: 40 }, "turned by its orientation tag");
        let thumb = image::load_from_memory(&out.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (8, 16));
    }

    #[test]
    fn pngs_stay_png_and_keep_their_transparency() {
        let out = reencode(&png_of(30, 10), LIMITS, 320).unwrap();
        assert_eq!(out.media_type, MediaType::Png);
        let back = image::load_from_memory(&out.bytes).unwrap();
        assert_eq!(back.to_rgba8().get_pixel(0, 0)[3], 128);
        assert_eq!(image::guess_format(&out.thumbnail).unwrap(), ImageFormat::Jpeg);
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let bomb = png_claiming(20_000, 20_000);
        assert!(bomb.len() < 100, "a few bytes claiming 400 megapixels");
        let refused = reencode(&bomb, DecodeLimits { max_side: 65_535, max_pixels: 24_000_000 }, 320);
        assert!(matches!(refused, Err(Error::BadImage("the image is larger than the dimension limit"))), "{refused:?}");
        let over_side = reencode(&png_claiming(9000, 10), LIMITS, 320);
        assert!(matches!(over_side, Err(Error::BadImage(_))), "{over_side:?}");
    }

    #[test]
    fn gif_is_no_attachment_image() {
        let mut gif = Vec::new();
        image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 255]))
            .write_to(&mut Cursor::new(&mut gif), ImageFormat::Gif)
            .unwrap();
        assert!(matches!(reencode(&gif, LIMITS, 320), Err(Error::BadImage(_))));
        assert!(normalise(&gif, policy()).is_ok(), "but a profile picture may be a GIF");
    }
}
