//! [`ParamVec`]: the dense vector of tunable parameters.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::ops::{Deref, DerefMut};

/// How many parameters a [`ParamVec`] stores inline, without touching the heap.
///
/// Every hot-path operation of this crate (reads, `apply`, audit enqueue) is
/// allocation-free for configurations of at most this many parameters. Larger
/// configurations still work; their `ParamVec`s spill to the heap.
pub const INLINE_PARAMS: usize = 16;

/// A dense vector of `f64` parameters, stored inline for up to
/// [`INLINE_PARAMS`] values.
///
/// Parameters are addressed by index; names (if any) are mapped to indices by
/// the caller once, at load time. `ParamVec` dereferences to `[f64]`, so all
/// slice methods are available.
///
/// ```
/// use hotpath::ParamVec;
///
/// let p = ParamVec::from_slice(&[0.5, 0.25]);
/// assert_eq!(p.len(), 2);
/// assert_eq!(p[1], 0.25);
/// assert!(!p.spilled());
/// ```
#[derive(Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParamVec(SmallVec<[f64; INLINE_PARAMS]>);

// SmallVec's own `Clone` goes element by element through `Extend`; a
// vector of `f64` is copied in one `memcpy` (this is on every apply).
impl Clone for ParamVec {
    #[inline]
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl ParamVec {
    /// An empty vector.
    pub fn new() -> Self {
        Self(SmallVec::new())
    }

    /// Copies `values` into a new vector.
    #[inline]
    pub fn from_slice(values: &[f64]) -> Self {
        Self(SmallVec::from_slice(values))
    }

    /// A vector of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        Self(SmallVec::from_elem(0.0, len))
    }

    /// Overwrites `self` with `values`, reusing the inline storage.
    #[inline]
    pub fn copy_from(&mut self, values: &[f64]) {
        if self.0.len() == values.len() {
            self.0.copy_from_slice(values);
        } else {
            self.0.clear();
            self.0.extend_from_slice(values);
        }
    }

    /// Resizes to `len`, filling new slots with `value`. Allocation-free up
    /// to [`INLINE_PARAMS`].
    pub fn resize(&mut self, len: usize, value: f64) {
        self.0.resize(len, value);
    }

    /// Appends a value.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// `true` if the values live on the heap (more than [`INLINE_PARAMS`]).
    pub fn spilled(&self) -> bool {
        self.0.spilled()
    }

    /// `true` if every value is finite (no NaN, no ±∞).
    pub fn is_finite(&self) -> bool {
        self.0.iter().all(|v| v.is_finite())
    }

    /// Bitwise equality: `true` if both vectors hold exactly the same bits
    /// (so `NaN == NaN` and `0.0 != -0.0`). Used where "restored bit for bit"
    /// is the contract.
    pub fn bit_eq(&self, other: &[f64]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Deref for ParamVec {
    type Target = [f64];
    #[inline]
    fn deref(&self) -> &[f64] {
        &self.0
    }
}

impl DerefMut for ParamVec {
    #[inline]
    fn deref_mut(&mut self) -> &mut [f64] {
        &mut self.0
    }
}

impl std::fmt::Debug for ParamVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl From<&[f64]> for ParamVec {
    fn from(values: &[f64]) -> Self {
        Self::from_slice(values)
    }
}

impl<const N: usize> From<[f64; N]> for ParamVec {
    fn from(values: [f64; N]) -> Self {
        Self::from_slice(&values)
    }
}

impl FromIterator<f64> for ParamVec {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_up_to_sixteen() {
        assert!(!ParamVec::zeros(INLINE_PARAMS).spilled());
        assert!(ParamVec::zeros(INLINE_PARAMS + 1).spilled());
    }

    #[test]
    fn bit_eq_distinguishes_signed_zero_and_matches_nan() {
        let a = ParamVec::from_slice(&[0.0, f64::NAN]);
        assert!(a.bit_eq(&[0.0, f64::NAN]));
        assert!(!a.bit_eq(&[-0.0, f64::NAN]));
        assert!(!a.bit_eq(&[0.0]));
    }

    #[test]
    fn serde_is_a_plain_array() {
        let p = ParamVec::from_slice(&[1.5, -2.0]);
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(s, "[1.5,-2.0]");
        let back: ParamVec = serde_json::from_str(&s).unwrap();
        assert_eq!(back, p);
    }
}
