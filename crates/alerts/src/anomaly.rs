//! The seasonal, outlier-robust band of an anomaly rule (docs/decisions/0009).
//!
//! The history is the rule's metric over the same window (same hour of the week, same
//! length) in each previous week. The band is its median ± `sensitivity` deviations. The
//! deviation is the median absolute deviation (MAD) scaled to estimate a standard deviation,
//! but never less than the one a model of web traffic gives, an overdispersed Poisson count
//! of median `m` over `n` weeks:
//!
//! ```text
//! floor² = m · (1 + π / 2n) + (MIN_RELATIVE_DEVIATION · m)²,  floor ≥ MIN_DEVIATION
//! ```
//!
//! - `m · (1 + π / 2n)`: chance alone. A count of independent events is Poisson (variance
//!   equal to its mean), and the median it is compared with is itself a sample of `n` such
//!   counts (variance about π / 2n times theirs). The MAD of three to twelve weeks that
//!   happen to agree closely comes out near 0 and would draw a band chance crosses.
//! - `(MIN_RELATIVE_DEVIATION · m)²`: the same hour of the week moves by 10 to 20 % without
//!   an incident (a busier day, growth since the baseline weeks), more than the MAD of a few
//!   weeks reliably sees. Without it, rules fired several times a week on noise in
//!   `heartbeat-bench anomaly`.
//! - [`MIN_DEVIATION`]: below a median of 1 the Poisson term vanishes, so a quiet hour that
//!   had 0 events every week would otherwise fire on 1.
//!
//! So a site with 3, 3, 3 visitors in the hour (deviation 2.2) fires above 9 at sensitivity
//! 3, not on 4. Metrics are never negative, so the lower edge stops at 0: a drop the band
//! cannot tell from chance (a quiet hour of a small site going to 0) does not fire.

use std::f64::consts::PI;

use heartbeat_model::AnomalyDirection;

/// The fewest weeks of history the detector judges with. With three, one bad week (an
/// outage, a holiday, a spike) moves neither the median nor the MAD much; with two, the
/// median is their mean and a single bad week drags the band halfway to it.
pub const MIN_HISTORY_WEEKS: usize = 3;

/// The smallest deviation a band is drawn with, in the metric's unit.
pub const MIN_DEVIATION: f64 = 1.0;

/// The smallest deviation as a share of the median: the week-to-week movement of ordinary
/// traffic at the same hour.
pub const MIN_RELATIVE_DEVIATION: f64 = 0.15;

/// The factor that turns the MAD of normally distributed values into their standard
/// deviation (1 / Φ⁻¹(3/4)).
const MAD_TO_STANDARD_DEVIATION: f64 = 1.4826;

/// What the previous weeks say the metric should be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// The median of the history: the expected value.
    pub median: f64,
    /// The lowest value not anomalous (never below 0).
    pub lower: f64,
    /// The highest value not anomalous.
    pub upper: f64,
    /// One robust standard deviation: the scaled MAD or the floor, whichever is larger.
    pub deviation: f64,
}

/// The band `history` draws at `sensitivity` deviations either side of its median.
/// Weeks with no finite value are left out. None when there are fewer weeks of history than
/// the detector needs ([`MIN_HISTORY_WEEKS`]).
pub fn band(history: &[f64], sensitivity: f64) -> Option<Band> {
    let mut weeks: Vec<f64> = history.iter().copied().filter(|v| v.is_finite()).collect();
    if weeks.len() < MIN_HISTORY_WEEKS {
        return None;
    }
    let median = median(&mut weeks);
    let mut distances: Vec<f64> = weeks.iter().map(|v| (v - median).abs()).collect();
    let scaled_mad = MAD_TO_STANDARD_DEVIATION * self::median(&mut distances);
    let deviation = scaled_mad.max(floor(median, weeks.len()));
    Some(Band {
        median,
        lower: (median - sensitivity * deviation).max(0.0),
        upper: median + sensitivity * deviation,
        deviation,
    })
}

/// Whether `value` is outside `band` on the side(s) `direction` watches. The edges
/// themselves are inside.
pub fn outside(value: f64, band: &Band, direction: AnomalyDirection) -> bool {
    let above = value > band.upper;
    let below = value < band.lower;
    match direction {
        AnomalyDirection::Up => above,
        AnomalyDirection::Down => below,
        AnomalyDirection::Both => above || below,
    }
}

/// The deviation of a count whose median over `weeks` weeks is `median` when nothing but
/// chance and ordinary week-to-week movement is at work (see the module's documentation).
fn floor(median: f64, weeks: usize) -> f64 {
    let m = median.max(0.0);
    let chance = m * (1.0 + PI / (2.0 * weeks as f64));
    let movement = (MIN_RELATIVE_DEVIATION * m).powi(2);
    (chance + movement).sqrt().max(MIN_DEVIATION)
}

/// The median of `values` (not empty, all finite), which it sorts.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    // The two middle values of an even count, the middle one twice of an odd count.
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn too_little_history_gives_no_band() {
        assert_eq!(band(&[], 3.0), None);
        assert_eq!(band(&[100.0], 3.0), None);
        assert_eq!(band(&[100.0, 110.0], 3.0), None);
        assert_eq!(band(&[100.0, f64::NAN, 110.0], 3.0), None);
        assert!(band(&[100.0, 110.0, 90.0], 3.0).is_some());
    }

    #[test]
    fn wide_history_uses_the_scaled_mad() {
        // Median 100; distances 0, 0, 30, 40, 70 -> MAD 30 -> deviation 44.478, above the
        // floor (18.9).
        let b = band(&[60.0, 100.0, 130.0, 170.0, 100.0], 2.0).unwrap();
        assert!(close(b.median, 100.0));
        assert!(close(b.deviation, 30.0 * 1.4826));
        assert!(close(b.lower, 100.0 - 2.0 * 30.0 * 1.4826));
        assert!(close(b.upper, 100.0 + 2.0 * 30.0 * 1.4826));
        // An even count takes the mean of the middle two.
        assert!(close(band(&[1.0, 2.0, 4.0, 9.0], 3.0).unwrap().median, 3.0));
    }

    #[test]
    fn narrow_history_uses_the_floor() {
        // MAD 10 -> 14.8, below the floor: sqrt(100 * (1 + π/10) + 15²) = 18.88.
        let b = band(&[80.0, 100.0, 110.0, 140.0, 100.0], 3.0).unwrap();
        assert!((b.deviation - 18.879).abs() < 1e-3);
    }

    #[test]
    fn all_equal_history_falls_back_to_the_floor() {
        // sqrt(400 * (1 + π/8) + 60²) = 64.48: a band of 207 to 593.
        let b = band(&[400.0; 4], 3.0).unwrap();
        assert!((b.deviation - 64.475).abs() < 1e-3);
        assert!(!outside(590.0, &b, AnomalyDirection::Both));
        assert!(outside(600.0, &b, AnomalyDirection::Both));
        assert!(!outside(210.0, &b, AnomalyDirection::Both));
        assert!(outside(200.0, &b, AnomalyDirection::Both));
    }

    #[test]
    fn small_counts_do_not_fire_on_chance() {
        // 3 ± 0: deviation 2.18, so 4 (or even 9) is not an anomaly; 10 is.
        let b = band(&[3.0, 3.0, 3.0], 3.0).unwrap();
        assert!((b.deviation - 2.185).abs() < 1e-3);
        assert!(!outside(4.0, &b, AnomalyDirection::Both));
        assert!(!outside(9.0, &b, AnomalyDirection::Both));
        assert!(outside(10.0, &b, AnomalyDirection::Both));
        // Below a median of 1 the absolute minimum takes over.
        let quiet = band(&[0.0, 0.0, 0.0, 1.0], 3.0).unwrap();
        assert!(close(quiet.deviation, MIN_DEVIATION));
        assert!(close(quiet.upper, 3.0));
        assert!(!outside(3.0, &quiet, AnomalyDirection::Up));
        assert!(outside(4.0, &quiet, AnomalyDirection::Up));
    }

    #[test]
    fn lower_edge_stops_at_zero() {
        let b = band(&[3.0, 3.0, 3.0], 3.0).unwrap();
        assert_eq!(b.lower, 0.0);
        assert!(!outside(0.0, &b, AnomalyDirection::Down));
    }

    #[test]
    fn one_outlier_week_does_not_move_the_band() {
        let clean = band(&[1000.0, 1040.0, 980.0, 1010.0], 3.0).unwrap();
        // The same weeks with one of them an outage or a spike.
        for outlier in [0.0, 5000.0] {
            let spoiled = band(&[1000.0, 1040.0, outlier, 1010.0], 3.0).unwrap();
            for (a, b) in [
                (spoiled.median, clean.median),
                (spoiled.lower, clean.lower),
                (spoiled.upper, clean.upper),
            ] {
                assert!(
                    (a - b).abs() < 0.05 * b,
                    "{outlier}: {spoiled:?} against {clean:?}"
                );
            }
            assert!(outside(2000.0, &spoiled, AnomalyDirection::Both));
            assert!(outside(300.0, &spoiled, AnomalyDirection::Both));
            assert!(!outside(1005.0, &spoiled, AnomalyDirection::Both));
        }
    }

    #[test]
    fn direction_picks_the_side() {
        let b = band(&[100.0; 4], 3.0).unwrap(); // 42.7 to 157.3
        let cases = [
            (158.0, AnomalyDirection::Up, true),
            (158.0, AnomalyDirection::Down, false),
            (158.0, AnomalyDirection::Both, true),
            (42.0, AnomalyDirection::Up, false),
            (42.0, AnomalyDirection::Down, true),
            (42.0, AnomalyDirection::Both, true),
            (157.0, AnomalyDirection::Both, false),
            (43.0, AnomalyDirection::Both, false),
            (100.0, AnomalyDirection::Both, false),
        ];
        for (value, direction, expected) in cases {
            assert_eq!(
                outside(value, &b, direction),
                expected,
                "{value} {direction:?}"
            );
        }
        // The edges themselves are inside.
        assert!(!outside(b.upper, &b, AnomalyDirection::Both));
        assert!(!outside(b.lower, &b, AnomalyDirection::Both));
    }
}
