//! Photo-like test images for `faasload inputs`: a sky gradient, a ground band, random
//! shapes (discs, rectangles, soft light blobs) and sensor-like noise, at one of several
//! common sizes; encoded as JPEG (quality 85) and PNG. Deterministic for a given RNG.
use anyhow::{Context, Result};
use image::{ImageEncoder, RgbImage};
use rand::RngExt;
use rand_pcg::Pcg64;

/// Sizes drawn from (small to full HD), as in a photo collection.
pub(crate) const SIZES: [(u32, u32); 6] = [
    (320, 240),
    (640, 480),
    (800, 600),
    (1024, 768),
    (1280, 720),
    (1920, 1080),
];

fn color(rng: &mut Pcg64) -> [f32; 3] {
    [
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
        rng.random_range(0.0..255.0),
    ]
}

enum Shape {
    Disc {
        cx: f32,
        cy: f32,
        r: f32,
        c: [f32; 3],
    },
    Rect {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        c: [f32; 3],
    },
    Blob {
        cx: f32,
        cy: f32,
        r: f32,
        c: [f32; 3],
    },
}

/// One scene.
pub(crate) fn scene(rng: &mut Pcg64) -> RgbImage {
    let (w, h) = SIZES[rng.random_range(0..SIZES.len())];
    let (wf, hf) = (w as f32, h as f32);
    let top = color(rng);
    let bottom = color(rng);
    let ground = color(rng);
    let horizon = rng.random_range(0.45..0.8) * hf;
    let shapes: Vec<Shape> = (0..rng.random_range(3..12))
        .map(|_| {
            let c = color(rng);
            let cx = rng.random_range(0.0..wf);
            let cy = rng.random_range(0.0..hf);
            let r = rng.random_range(0.03..0.25) * wf;
            match rng.random_range(0..3) {
                0 => Shape::Disc { cx, cy, r, c },
                1 => Shape::Rect {
                    x0: cx - r,
                    y0: cy - r * 0.6,
                    x1: cx + r,
                    y1: cy + r * 0.6,
                    c,
                },
                _ => Shape::Blob { cx, cy, r, c },
            }
        })
        .collect();
    let noise = rng.random_range(2.0..12.0f32);
    let mut img = RgbImage::new(w, h);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (xf, yf) = (x as f32, y as f32);
        let mut c = if yf < horizon {
            let t = yf / horizon;
            [0, 1, 2].map(|i| top[i] * (1.0 - t) + bottom[i] * t)
        } else {
            let t = (yf - horizon) / (hf - horizon).max(1.0);
            [0, 1, 2].map(|i| ground[i] * (1.0 - 0.5 * t))
        };
        for s in &shapes {
            match *s {
                Shape::Disc { cx, cy, r, c: sc } => {
                    let d = ((xf - cx).powi(2) + (yf - cy).powi(2)).sqrt();
                    if d < r {
                        let shade = 1.0 - 0.4 * d / r;
                        c = sc.map(|v| v * shade);
                    }
                }
                Shape::Rect {
                    x0,
                    y0,
                    x1,
                    y1,
                    c: sc,
                } => {
                    if xf >= x0 && xf < x1 && yf >= y0 && yf < y1 {
                        c = sc;
                    }
                }
                Shape::Blob { cx, cy, r, c: sc } => {
                    let d2 = ((xf - cx).powi(2) + (yf - cy).powi(2)) / (r * r);
                    let a = (-d2).exp() * 0.6;
                    c = [0, 1, 2].map(|i| c[i] * (1.0 - a) + sc[i] * a);
                }
            }
        }
        let n = [0, 1, 2].map(|_| rng.random_range(-noise..noise));
        *px = image::Rgb([0, 1, 2].map(|i| (c[i] + n[i]).clamp(0.0, 255.0) as u8));
    }
    img
}

pub(crate) fn jpeg(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .context("encoding JPEG")?;
    Ok(out)
}

pub(crate) fn png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .context("encoding PNG")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn scenes_decode_at_their_size() {
        let img = scene(&mut Pcg64::seed_from_u64(1));
        assert!(SIZES.contains(&(img.width(), img.height())));
        for (bytes, fmt) in [
            (jpeg(&img).unwrap(), image::ImageFormat::Jpeg),
            (png(&img).unwrap(), image::ImageFormat::Png),
        ] {
            let back = image::load_from_memory_with_format(&bytes, fmt).unwrap();
            assert_eq!((back.width(), back.height()), (img.width(), img.height()));
        }
        // Not a flat picture: many distinct colours.
        let mut seen: Vec<[u8; 3]> = img.pixels().step_by(97).map(|p| p.0).collect();
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 100, "{} colours", seen.len());
    }
}
