//! The few f64 functions the crate needs, written for `no_std` (`core` has no `cos`, `ln`, `round`, `ceil`).
//!
//! `round` and `ceil` are exact. `cos` and `ln` are within a few ulps of the correctly rounded result; the
//! conformance vectors compare LR values with a `1e-12` relative tolerance (docs/coordinator.md §9.6), and
//! `bloom_num_bits` only needs `ln(0.01)`, which is checked to be the correctly rounded double.

/// π (the double nearest, equal to JS `Math.PI`).
pub const PI: f64 = core::f64::consts::PI;
/// ln 2 (the double nearest, equal to JS `Math.LN2`).
pub const LN_2: f64 = core::f64::consts::LN_2;

const TWO_OVER_PI: f64 = core::f64::consts::FRAC_2_PI;
/// π/2 split in a 33-bit head (so `k * PIO2_HI` is exact for small `k`) and the double nearest the rest.
const PIO2_HI: f64 = 1.570_796_326_734_125_6; // 0x3FF921FB54400000
const PIO2_LO: f64 = 6.077_100_506_506_192e-11; // 0x3DD0B4611A626331

/// Truncation toward zero (exact).
pub fn trunc(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= 4_503_599_627_370_496.0 {
        return x; // NaN, ±inf, or already an integer (|x| >= 2^52)
    }
    (x as i64) as f64
}

/// Rounds half away from zero, like Rust's `f64::round` (equal to JS `Math.round` for positive values).
pub fn round(x: f64) -> f64 {
    let t = trunc(x);
    if !x.is_finite() || t == x {
        return x;
    }
    // For |x| < 2^52, `x - t` is exact.
    if x > 0.0 {
        if x - t >= 0.5 { t + 1.0 } else { t }
    } else if t - x >= 0.5 {
        t - 1.0
    } else {
        t
    }
}

/// Smallest integer `>= x` (exact).
pub fn ceil(x: f64) -> f64 {
    let t = trunc(x);
    if t < x { t + 1.0 } else { t }
}

/// Taylor coefficients `(-1)^k / (2k)!` for cos and `(-1)^k / (2k+1)!` for sin, used on `|r| <= π/4`.
const COS_C: [f64; 11] = [
    1.0,
    -0.5,
    0.041_666_666_666_666_664,
    -0.001_388_888_888_888_889,
    2.480_158_730_158_73e-5,
    -2.755_731_922_398_589e-7,
    2.087_675_698_786_81e-9,
    -1.147_074_559_772_972_5e-11,
    4.779_477_332_387_385e-14,
    -1.561_920_696_858_622_5e-16,
    4.110_317_623_312_165e-19,
];
const SIN_C: [f64; 11] = [
    1.0,
    -0.166_666_666_666_666_66,
    0.008_333_333_333_333_333,
    -0.000_198_412_698_412_698_4,
    2.755_731_922_398_589_3e-6,
    -2.505_210_838_544_172e-8,
    1.605_904_383_682_161_3e-10,
    -7.647_163_731_819_816e-13,
    2.811_457_254_345_520_6e-15,
    -8.220_635_246_624_33e-18,
    1.957_294_106_339_126_3e-20,
];

fn horner(c: &[f64; 11], z: f64) -> f64 {
    let mut acc = c[10];
    let mut i = 10;
    while i > 0 {
        i -= 1;
        acc = acc * z + c[i];
    }
    acc
}

/// Cosine. Accurate to a few ulps for `|x| < 2^20` (LR schedules call it on `[0, π]`); NaN for non-finite input.
pub fn cos(x: f64) -> f64 {
    if !x.is_finite() {
        return f64::NAN;
    }
    let k = round(x * TWO_OVER_PI);
    let r = (x - k * PIO2_HI) - k * PIO2_LO;
    let z = r * r;
    let c = horner(&COS_C, z);
    let s = r * horner(&SIN_C, z);
    match (k as i64).rem_euclid(4) {
        0 => c,
        1 => -s,
        2 => -c,
        _ => s,
    }
}

/// Natural logarithm of a positive finite `x` (NaN for `x <= 0` or non-finite input).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return f64::NAN;
    }
    // x = m · 2^e with m in [1, 2) (subnormals are normalised first).
    let mut bits = x.to_bits();
    let mut e: i64 = 0;
    if (bits >> 52) & 0x7ff == 0 {
        bits = (x * 18_014_398_509_481_984.0).to_bits(); // · 2^54
        e -= 54;
    }
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // Move m to [sqrt(1/2), sqrt(2)).
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m − 1)/(m + 1), |s| <= 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let mut acc = 0.0;
    let mut k = 27.0;
    while k > 1.0 {
        acc = acc * z + 1.0 / k;
        k -= 2.0;
    }
    // 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + …); the error is a couple of ulps.
    let ln_m = 2.0 * s * (1.0 + z * acc);
    (e as f64) * LN_2 + ln_m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_and_ceil_exact() {
        assert_eq!(round(2.5), 3.0);
        assert_eq!(round(-2.5), -3.0);
        assert_eq!(round(2.4999999999999996), 2.0);
        assert_eq!(round(0.49999999999999994), 0.0);
        assert_eq!(round(4503599627370497.0), 4503599627370497.0);
        assert_eq!(ceil(1.0), 1.0);
        assert_eq!(ceil(1.0000000000000002), 2.0);
        assert_eq!(ceil(-0.5), 0.0);
        assert_eq!(ceil(95.85), 96.0);
    }

    #[test]
    fn cos_against_std_within_two_ulps() {
        // std's cos (glibc) is the reference here; tolerance 2 ulps (2 · 2^-52 relative, or 2^-60 near zeros).
        for i in 0..=2000 {
            let x = PI * (i as f64) / 2000.0;
            let (a, b) = (cos(x), x.cos());
            let tol = 4.5e-16 * b.abs().max(2.0f64.powi(-8));
            assert!((a - b).abs() <= tol, "cos({x}) = {a}, std {b}");
        }
        assert_eq!(cos(0.0), 1.0);
        assert_eq!(cos(PI), -1.0);
        assert!(cos(f64::INFINITY).is_nan());
    }

    #[test]
    fn ln_against_std_and_exact_at_one_percent() {
        // JS Math.log(0.01) and the correctly rounded value: -4.605170185988091.
        assert_eq!(ln(0.01), -4.605_170_185_988_091);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(2.0), LN_2);
        for i in 1..=1000 {
            let x = i as f64 / 97.0;
            let (a, b) = (ln(x), x.ln());
            assert!((a - b).abs() <= 4.5e-16 * b.abs().max(1.0), "ln({x}) = {a}, std {b}");
        }
        assert!(ln(0.0).is_nan() && ln(-1.0).is_nan());
        assert!((ln(1e-310) - 1e-310f64.ln()).abs() < 1e-12);
    }
}
