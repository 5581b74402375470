//! [`ShortFloat`]: a number as error messages show it.

use std::fmt;

/// A number as messages show it: the shortest decimal that reads back as
/// the same `f64`, in exponent notation outside `1e-5..1e16` (so
/// `f64::MAX` is `1.7976931348623157e308`, not 309 digits). Every error
/// of this crate and the crates above it prints its numbers this way.
///
/// ```
/// use hotpath::ShortFloat;
///
/// assert_eq!(ShortFloat(0.25).to_string(), "0.25");
/// assert_eq!(ShortFloat(64.0).to_string(), "64");
/// assert_eq!(ShortFloat(1e300).to_string(), "1e300");
/// assert_eq!(ShortFloat(-2.5e-7).to_string(), "-2.5e-7");
/// assert_eq!(ShortFloat(f64::NAN).to_string(), "NaN");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShortFloat(pub f64);

impl fmt::Display for ShortFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        let magnitude = x.abs();
        if x == 0.0 || !x.is_finite() || (1e-5..1e16).contains(&magnitude) {
            write!(f, "{x}")
        } else {
            write!(f, "{x:e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ShortFloat;

    #[test]
    fn extremes_are_short_and_read_back_exactly() {
        for (x, shown) in [
            (f64::MAX, "1.7976931348623157e308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (512.0, "512"),
            (-0.0, "-0"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(ShortFloat(x).to_string(), shown);
            if x.is_finite() {
                assert_eq!(shown.parse::<f64>().map(f64::to_bits), Ok(x.to_bits()));
            }
        }
    }

    #[test]
    fn errors_print_their_numbers_short() {
        let refused = crate::Violation::OutOfBounds {
            index: 0,
            value: f64::MAX,
            min: -f64::MAX,
            max: 1e-300,
        };
        assert_eq!(
            refused.to_string(),
            "params[0] would become 1.7976931348623157e308, outside its bounds \
             [-1.7976931348623157e308, 1e-300]"
        );
        let bounds = crate::KnobProblem::InvalidBounds {
            min: 1e300,
            max: 0.0,
        };
        assert!(bounds.to_string().len() < 60, "{bounds}");
    }
}
