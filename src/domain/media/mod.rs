//! Media: what uploaded bytes are, told by their content, and the one image pipeline that profile
//! pictures and attachments share ([`image`]).

pub mod image;

use crate::model::attachment::MediaType;

/// The accepted type of `bytes`, told by their magic numbers and never by a name or a client's
/// header; `None` for anything else. Plain text is UTF-8 without control characters (tabs, line
/// and page breaks aside) that no markup sniffer takes for HTML or XML, so nothing a browser would
/// run (HTML, SVG, scripts) is ever accepted.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    if let Some(kind) = infer::get(bytes) {
        return match kind.mime_type() {
            "image/jpeg" => Some(MediaType::Jpeg),
            "image/png" => Some(MediaType::Png),
            "image/webp" => Some(MediaType::WebP),
            "application/pdf" => Some(MediaType::Pdf),
            _ => None,
        };
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let plain = !text.is_empty()
        && !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
        && !looks_like_markup(text);
    plain.then_some(MediaType::PlainText)
}

/// Whether a browser sniffing `text` could take it for a page or an image it renders: HTML, XML
/// (SVG among it), or a script's shebang, even after a byte-order mark or leading space.
fn looks_like_markup(text: &str) -> bool {
    let start = text.trim_start_matches('\u{feff}').trim_start().as_bytes();
    infer::text::is_html(start)
        || infer::text::is_xml(start)
        || infer::text::is_shellscript(start)
        || start.len() >= 4 && start[..4].eq_ignore_ascii_case(b"<svg")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut out = Vec::new();
        ::image::RgbImage::new(3, 3).write_to(&mut std::io::Cursor::new(&mut out), ::image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(sniff(&png()), Some(MediaType::Png), "a PNG whatever its name (report.pdf)");
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), Some(MediaType::Pdf));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"), Some(MediaType::Jpeg));
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00WEBPVP8 "), Some(MediaType::WebP));
        assert_eq!(sniff("شماره پیگیری: ۱۲۳۴۵\nref 12345\n".as_bytes()), Some(MediaType::PlainText));
    }

    #[test]
    fn what_a_browser_would_run_or_render_is_refused() {
        for page in [
            &b"<!DOCTYPE html><html><body>hi</body></html>"[..],
            b"  <html>\n<script>alert(1)</script>",
            b"<script >alert(1)</script>",
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"<svg onload=alert(1)>",
            b"\xef\xbb\xbf<HTML >",
            b"#!/bin/sh\nrm -rf /",
        ] {
            assert_eq!(sniff(page), None, "{}", String::from_utf8_lossy(page));
        }
    }

    #[test]
    fn other_binaries_and_broken_text_are_refused() {
        assert_eq!(sniff(b"GIF89a\x01\x00\x01\x00"), None, "GIF is not on the list");
        assert_eq!(sniff(b"PK\x03\x04\x14\x00"), None, "zip");
        assert_eq!(sniff(b"MZ\x90\x00\x03"), None, "a Windows program");
        assert_eq!(sniff(b"text with a \x00 byte"), None);
        assert_eq!(sniff(b"\xff\xfe not utf-8"), None);
        assert_eq!(sniff(b""), None);
    }
}
