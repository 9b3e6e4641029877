//! The report's chart: visitors per day as a PNG area chart.
//!
//! The image has no text: the figures are in the email next to it. It draws, from the back:
//! an opaque white background (so that it reads the same in dark-mode clients), light
//! horizontal grid lines at each quarter of the height, the area under the series with a
//! fading fill, the series' line, a dot per day when there are few days, and the baseline.
//! The highest day reaches 90% of the plot's height; a series of zeros lies on the baseline.

use tiny_skia::{
    Color, FillRule, GradientStop, LineCap, LineJoin, LinearGradient, Paint, Path, PathBuilder,
    Pixmap, Point, Rect, Shader, SpreadMode, Stroke, Transform,
};

/// The smallest and largest side of the image, in pixels: tiny-skia cannot draw an empty
/// pixmap, and a report never needs a huge one.
const MIN_SIDE_PX: u32 = 1;
const MAX_SIDE_PX: u32 = 4096;

/// The height the line widths and margins below are given for; they scale with the image.
const REFERENCE_HEIGHT_PX: f32 = 160.0;
/// Space kept around the plot so that the line and the dots are not cut off.
const MARGIN_PX: f32 = 6.0;
const LINE_WIDTH_PX: f32 = 2.0;
const GRID_WIDTH_PX: f32 = 1.0;
const DOT_RADIUS_PX: f32 = 3.0;
/// Days are marked with a dot up to this many; a month's dots would crowd the line.
const MAX_DAYS_WITH_DOTS: usize = 14;
/// The share of the plot's height the highest day reaches.
const PEAK_SHARE: f32 = 0.9;

const BACKGROUND: (u8, u8, u8) = (0xff, 0xff, 0xff);
const GRID: (u8, u8, u8) = (0xe5, 0xe7, 0xeb);
const BASELINE: (u8, u8, u8) = (0x9c, 0xa3, 0xaf);
const SERIES: (u8, u8, u8) = (0x4f, 0x46, 0xe5);

/// Draws `visitors` (one value per day, in order) as a `width` x `height` PNG. Sides are
/// clamped to 1..=4096 pixels; negative and non-finite values count as 0.
pub fn chart_png(visitors: &[f64], width: u32, height: u32) -> Vec<u8> {
    let width = width.clamp(MIN_SIDE_PX, MAX_SIDE_PX);
    let height = height.clamp(MIN_SIDE_PX, MAX_SIDE_PX);
    let mut pixmap = Pixmap::new(width, height).expect("sides are clamped to a drawable size");
    pixmap.fill(rgb(BACKGROUND));

    let plot = Plot::new(width as f32, height as f32);
    for quarter in 1..=4 {
        let y = plot.bottom - (plot.bottom - plot.top) * quarter as f32 / 4.0;
        plot.horizontal_line(&mut pixmap, y, GRID);
    }

    let points = plot.points(visitors);
    if let Some(area) = plot.area(&points) {
        pixmap.fill_path(
            &area,
            &plot.area_paint(),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
    if let Some(line) = polyline(&points) {
        let stroke = Stroke {
            width: LINE_WIDTH_PX * plot.scale,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..Stroke::default()
        };
        pixmap.stroke_path(&line, &paint(SERIES), &stroke, Transform::identity(), None);
    }
    if (2..=MAX_DAYS_WITH_DOTS).contains(&visitors.len()) {
        for point in &points {
            if let Some(dot) =
                PathBuilder::from_circle(point.x, point.y, DOT_RADIUS_PX * plot.scale)
            {
                pixmap.fill_path(
                    &dot,
                    &paint(SERIES),
                    FillRule::Winding,
                    Transform::identity(),
                    None,
                );
            }
        }
    }
    plot.horizontal_line(&mut pixmap, plot.bottom, BASELINE);

    pixmap
        .encode_png()
        .expect("encoding a pixmap into memory does not fail")
}

/// Where the series is drawn inside the image, in pixels.
struct Plot {
    left: f32,
    right: f32,
    top: f32,
    /// The baseline: the y of a day with no visitors.
    bottom: f32,
    /// How much larger than the reference size the image is.
    scale: f32,
}

impl Plot {
    fn new(width: f32, height: f32) -> Self {
        let scale = height / REFERENCE_HEIGHT_PX;
        let margin = (MARGIN_PX * scale).min(width / 4.0).min(height / 4.0);
        Plot {
            left: margin,
            right: width - margin,
            top: margin,
            bottom: height - margin,
            scale,
        }
    }

    /// The series' points, spread from the left edge to the right one. A single day is drawn
    /// as a level line across the whole plot.
    fn points(&self, visitors: &[f64]) -> Vec<Point> {
        let values: Vec<f32> = visitors
            .iter()
            .map(|&v| {
                if v.is_finite() && v > 0.0 {
                    v as f32
                } else {
                    0.0
                }
            })
            .collect();
        let peak = values.iter().copied().fold(0.0, f32::max);
        let y = |v: f32| {
            if peak > 0.0 {
                self.bottom - (self.bottom - self.top) * PEAK_SHARE * v / peak
            } else {
                self.bottom
            }
        };
        match values.as_slice() {
            [] => Vec::new(),
            [only] => vec![
                Point::from_xy(self.left, y(*only)),
                Point::from_xy(self.right, y(*only)),
            ],
            _ => {
                let step = (self.right - self.left) / (values.len() - 1) as f32;
                values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Point::from_xy(self.left + step * i as f32, y(v)))
                    .collect()
            }
        }
    }

    /// The region between the series and the baseline.
    fn area(&self, points: &[Point]) -> Option<Path> {
        let (first, last) = (points.first()?, points.last()?);
        let mut builder = PathBuilder::new();
        builder.move_to(first.x, self.bottom);
        for point in points {
            builder.line_to(point.x, point.y);
        }
        builder.line_to(last.x, self.bottom);
        builder.close();
        builder.finish()
    }

    /// The area's fill: the series' colour, stronger at the top than at the baseline.
    fn area_paint(&self) -> Paint<'static> {
        let (r, g, b) = SERIES;
        let shader = LinearGradient::new(
            Point::from_xy(0.0, self.top),
            Point::from_xy(0.0, self.bottom),
            vec![
                GradientStop::new(0.0, Color::from_rgba8(r, g, b, 80)),
                GradientStop::new(1.0, Color::from_rgba8(r, g, b, 16)),
            ],
            SpreadMode::Pad,
            Transform::identity(),
        )
        .unwrap_or(Shader::SolidColor(Color::from_rgba8(r, g, b, 48)));
        Paint {
            shader,
            anti_alias: true,
            ..Paint::default()
        }
    }

    /// A full-width line at `y`, snapped to whole pixels so that it stays crisp.
    fn horizontal_line(&self, pixmap: &mut Pixmap, y: f32, colour: (u8, u8, u8)) {
        let thickness = (GRID_WIDTH_PX * self.scale).round().max(1.0);
        let top = (y - thickness / 2.0).round();
        if let Some(rect) = Rect::from_xywh(0.0, top, pixmap.width() as f32, thickness) {
            pixmap.fill_rect(rect, &paint(colour), Transform::identity(), None);
        }
    }
}

/// The open path through `points`.
fn polyline(points: &[Point]) -> Option<Path> {
    let (first, rest) = points.split_first()?;
    let mut builder = PathBuilder::new();
    builder.move_to(first.x, first.y);
    for point in rest {
        builder.line_to(point.x, point.y);
    }
    builder.finish()
}

fn paint((r, g, b): (u8, u8, u8)) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(r, g, b, 255);
    paint.anti_alias = true;
    paint
}

fn rgb((r, g, b): (u8, u8, u8)) -> Color {
    Color::from_rgba8(r, g, b, 255)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoded image: width, height and RGBA pixels.
    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<[u8; 4]>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
        let frame = reader.next_frame(&mut buffer).expect("a PNG frame");
        assert_eq!(frame.color_type, png::ColorType::Rgba);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        buffer.truncate(frame.buffer_size());
        let pixels = buffer
            .chunks_exact(4)
            .map(|p| [p[0], p[1], p[2], p[3]])
            .collect();
        (frame.width, frame.height, pixels)
    }

    /// The topmost row of column `x` drawn in a blue at least as strong as `min_blueness`
    /// (blue minus red: 150 for the series' line, below 50 for the area's fill).
    fn top_of_blue(width: u32, pixels: &[[u8; 4]], x: u32, min_blueness: i32) -> Option<u32> {
        (0..pixels.len() as u32 / width).find(|&y| {
            let [r, _, b, _] = pixels[(y * width + x) as usize];
            i32::from(b) - i32::from(r) >= min_blueness
        })
    }

    /// The topmost row of the series' line in column `x`.
    fn top_of_line(width: u32, pixels: &[[u8; 4]], x: u32) -> Option<u32> {
        top_of_blue(width, pixels, x, 60)
    }

    #[test]
    fn decodes_to_the_given_size_and_draws_the_series() {
        let visitors = [3.0, 10.0, 4.0, 0.0, 7.0, 12.0, 5.0];
        let (width, height, pixels) = decode(&chart_png(&visitors, 560, 160));
        assert_eq!((width, height), (560, 160));
        assert_eq!(pixels.len(), 560 * 160);
        assert!(pixels.iter().any(|p| *p != pixels[0]), "one flat colour");
        assert!(pixels.iter().all(|p| p[3] == 255), "transparent pixels");
    }

    #[test]
    fn higher_days_are_drawn_higher() {
        let (width, _, pixels) = decode(&chart_png(&[1.0, 10.0], 200, 100));
        let low = top_of_line(width, &pixels, 20).expect("the line over the first half");
        let high = top_of_line(width, &pixels, 180).expect("the line over the second half");
        assert!(high < low, "peak at row {high}, low day at row {low}");
    }

    #[test]
    fn draws_flat_series_and_edge_cases_at_the_given_size() {
        let cases: [(&[f64], u32, u32); 6] = [
            (&[0.0; 30], 560, 160),
            (&[42.0], 560, 160),
            (&[], 560, 160),
            (&[f64::NAN, -3.0, f64::INFINITY], 100, 50),
            (&[1.0, 2.0], 0, 0),
            (&[1.0, 2.0], 1, 1),
        ];
        for (visitors, width, height) in cases {
            let (w, h, _) = decode(&chart_png(visitors, width, height));
            assert_eq!((w, h), (width.max(1), height.max(1)), "{visitors:?}");
        }
    }

    #[test]
    fn a_single_day_is_a_level_line() {
        let (width, _, pixels) = decode(&chart_png(&[42.0], 200, 100));
        let left = top_of_line(width, &pixels, 20);
        assert!(left.is_some());
        assert_eq!(left, top_of_line(width, &pixels, 180));
    }

    #[test]
    fn zeros_lie_on_the_baseline() {
        let (width, height, pixels) = decode(&chart_png(&[0.0; 7], 200, 100));
        for x in [10, 100, 190] {
            let top = top_of_blue(width, &pixels, x, 20).expect("the line");
            assert!(top > height * 9 / 10, "blue at row {top} of {height}");
        }
    }
}
