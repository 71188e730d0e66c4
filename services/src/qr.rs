//! QR codes as SVG and PNG: the inspection code (检查码), which encodes
//! `{public_base_url}/c/{token}`, and the enterprise's own code (企业码), which encodes
//! `{public_base_url}/e/{credit_code}`.
//!
//! Both use medium error correction (about 15% of the symbol may be lost) and the standard
//! four-module quiet zone, so any phone camera or standard scanner reads them.
//!
//! The enterprise code carries nothing secret: the officer's two-code check
//! (`ScanEnterpriseCode`) names only the enterprise's unified social credit code, which the
//! officer's app reads from the last path segment. A URL rather than the bare code means a
//! phone that is not the officer's app opens the enterprise's page at `/e/{credit_code}`,
//! which says what the code is for, instead of showing an opaque string.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};
use saoma_domain::ids::CreditCode;

/// Modules of light margin around the symbol, as ISO/IEC 18004 requires.
const QUIET_ZONE: usize = 4;
/// Pixels per module in the PNG: a 43-character token URL gives a symbol of about 360 px.
const PNG_SCALE: usize = 8;
/// Smallest side of the SVG, in user units (it scales with its container anyway).
const SVG_MIN_SIDE: u32 = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("text too long for a QR code: {0}")]
    Encode(String),
    #[error("png encoding failed: {0}")]
    Png(String),
}

/// The URL the enterprise's own code (企业码) encodes.
pub fn enterprise_code_url(public_base_url: &str, enterprise: &CreditCode) -> String {
    format!(
        "{}/e/{}",
        public_base_url.trim_end_matches('/'),
        enterprise.as_str()
    )
}

fn encode(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))
}

/// The symbol as an SVG document, black on white, with its quiet zone.
pub fn svg(text: &str) -> Result<String, QrError> {
    Ok(encode(text)?
        .render::<svg::Color>()
        .min_dimensions(SVG_MIN_SIDE, SVG_MIN_SIDE)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

/// The symbol as an 8-bit greyscale PNG, `PNG_SCALE` pixels per module, with its quiet zone.
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let code = encode(text)?;
    let (pixels, side) = raster(code.width(), &code.to_colors());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let png_error = |e: png::EncodingError| QrError::Png(e.to_string());
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// One byte per pixel (0 dark, 255 light), row by row, and the side in pixels.
fn raster(width: usize, modules: &[Color]) -> (Vec<u8>, usize) {
    let side_modules = width + 2 * QUIET_ZONE;
    let side = side_modules * PNG_SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in modules.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
        for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
            let row = y * side;
            pixels[row + mx * PNG_SCALE..row + (mx + 1) * PNG_SCALE].fill(0);
        }
    }
    (pixels, side)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://saoma.example.gov.cn/c/AAAAAAAAAAAAAAAAAAAAAPv7-_v7-_v7-_v7-_v7-_s";

    #[test]
    fn a_code_url_fits_a_small_symbol_at_medium_error_correction() {
        let code = encode(URL).unwrap();
        assert_eq!(code.error_correction_level(), EcLevel::M);
        // Version 5 or 6 (37 or 41 modules): small enough to scan from a phone screen.
        assert!(code.width() <= 41, "{} modules", code.width());
    }

    #[test]
    fn the_svg_is_a_black_on_white_document_with_its_quiet_zone() {
        let doc = svg(URL).unwrap();
        assert!(doc.starts_with("<?xml"), "{}", &doc[..60]);
        assert!(doc.contains("<svg"));
        assert!(doc.contains("#000000") && doc.contains("#ffffff"));
        // The SVG renderer draws the quiet zone as light margin: the viewBox is wider than
        // the symbol by 2 × 4 modules.
        let width = encode(URL).unwrap().width();
        let no_zone = encode(URL)
            .unwrap()
            .render::<svg::Color>()
            .module_dimensions(1, 1)
            .quiet_zone(false)
            .build();
        assert!(no_zone.contains(&format!("width=\"{width}\"")), "{no_zone}");
        let with_zone = encode(URL)
            .unwrap()
            .render::<svg::Color>()
            .module_dimensions(1, 1)
            .quiet_zone(true)
            .build();
        assert!(
            with_zone.contains(&format!("width=\"{}\"", width + 2 * QUIET_ZONE)),
            "{with_zone}"
        );
    }

    #[test]
    fn the_png_is_a_square_greyscale_image_with_a_light_margin() {
        let bytes = png(URL).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let width = encode(URL).unwrap().width();
        let side = (width + 2 * QUIET_ZONE) * PNG_SCALE;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let margin = QUIET_ZONE * PNG_SCALE;
        for y in 0..side {
            for x in 0..side {
                if x < margin || y < margin || x >= side - margin || y >= side - margin {
                    assert_eq!(pixels[y * side + x], 255, "dark pixel in the quiet zone");
                }
            }
        }
        // The top-left finder pattern starts right inside the margin: dark.
        assert_eq!(pixels[margin * side + margin], 0);
    }

    #[test]
    fn the_raster_scales_each_module_to_a_block_of_pixels() {
        let (pixels, side) = raster(2, &[Color::Dark, Color::Light, Color::Light, Color::Dark]);
        assert_eq!(side, (2 + 2 * QUIET_ZONE) * PNG_SCALE);
        let at = |mx: usize, my: usize, dx: usize, dy: usize| {
            pixels[((my + QUIET_ZONE) * PNG_SCALE + dy) * side + (mx + QUIET_ZONE) * PNG_SCALE + dx]
        };
        for (dx, dy) in [(0, 0), (PNG_SCALE - 1, PNG_SCALE - 1), (3, 5)] {
            assert_eq!(at(0, 0, dx, dy), 0);
            assert_eq!(at(1, 0, dx, dy), 255);
            assert_eq!(at(0, 1, dx, dy), 255);
            assert_eq!(at(1, 1, dx, dy), 0);
        }
        assert_eq!(
            pixels.iter().filter(|p| **p == 0).count(),
            2 * PNG_SCALE * PNG_SCALE
        );
    }

    #[test]
    fn the_enterprise_code_names_the_credit_code_under_the_public_base_url() {
        let code = CreditCode::parse("91350100M000100Y43").unwrap();
        assert_eq!(
            enterprise_code_url("https://saoma.example.gov.cn/", &code),
            "https://saoma.example.gov.cn/e/91350100M000100Y43"
        );
    }

    #[test]
    fn text_beyond_the_largest_symbol_is_refused() {
        assert!(matches!(svg(&"x".repeat(3000)), Err(QrError::Encode(_))));
        assert!(matches!(png(&"x".repeat(3000)), Err(QrError::Encode(_))));
    }
}
