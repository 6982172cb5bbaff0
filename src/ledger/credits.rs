//! Credits as a fixed-point integer: 1 credit = 10,000 units (4 decimals).
//!
//! Every amount inside the sidecar is a [`Credits`]; floats only exist at the protocol
//! edge, where Odoo sends JSON numbers, and are converted here exactly once.

use std::fmt;
use std::str::FromStr;

/// Units per credit (4 decimals).
pub const SCALE: i64 = 10_000;
/// The largest amount the ledger accepts: 10^12 credits.
pub const MAX_UNITS: i64 = 1_000_000_000_000 * SCALE;

/// A non-negative amount of credits, at most [`MAX_UNITS`] units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Credits(i64);

/// Why a value is not a valid amount of credits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    #[error("amount is empty")]
    Empty,
    #[error("amount is not a number: {0:?}")]
    NotANumber(String),
    #[error("amount must not be NaN")]
    NaN,
    #[error("amount must be finite")]
    Infinite,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount has more than 4 decimals: {0:?}")]
    TooPrecise(String),
    #[error("amount exceeds the maximum of 1000000000000 credits")]
    Overflow,
}

impl Credits {
    pub const ZERO: Credits = Credits(0);

    /// Builds an amount from raw units, checking the range.
    pub fn from_units(units: i64) -> Result<Self, CreditsError> {
        if units < 0 {
            Err(CreditsError::Negative)
        } else if units > MAX_UNITS {
            Err(CreditsError::Overflow)
        } else {
            Ok(Credits(units))
        }
    }

    /// Whole credits, for tests and defaults.
    pub fn whole(credits: i64) -> Result<Self, CreditsError> {
        credits
            .checked_mul(SCALE)
            .ok_or(CreditsError::Overflow)
            .and_then(Self::from_units)
    }

    pub fn units(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Credits) -> Result<Credits, CreditsError> {
        self.0
            .checked_add(other.0)
            .ok_or(CreditsError::Overflow)
            .and_then(Self::from_units)
    }

    /// `self - other`; an error when the result would be negative.
    pub fn checked_sub(self, other: Credits) -> Result<Credits, CreditsError> {
        Self::from_units(self.0 - other.0)
    }

    /// `self - other`, clamped at zero.
    pub fn saturating_sub(self, other: Credits) -> Credits {
        Credits((self.0 - other.0).max(0))
    }

    pub fn min(self, other: Credits) -> Credits {
        Credits(self.0.min(other.0))
    }

    /// Parses a decimal string strictly: digits, an optional point and at most 4 decimals.
    /// No sign, no exponent, no rounding. Used for the CLI and the admin API.
    pub fn parse_exact(text: &str) -> Result<Self, CreditsError> {
        let text = text.trim();
        let (units, exact) = parse_decimal(text)?;
        if !exact {
            return Err(CreditsError::TooPrecise(text.to_owned()));
        }
        Self::from_units(units)
    }

    /// Converts a protocol float, rounding half-even to 4 decimals.
    ///
    /// The float is read through its shortest round-trip decimal form, so `0.1 + 0.2`
    /// (`0.30000000000000004`) is 0.3 credits and `0.00005` is a tie rounded to even.
    pub fn from_f64(value: f64) -> Result<Self, CreditsError> {
        if value.is_nan() {
            return Err(CreditsError::NaN);
        }
        if value.is_infinite() {
            return Err(CreditsError::Infinite);
        }
        if value < 0.0 {
            return Err(CreditsError::Negative);
        }
        // Rust prints f64 without an exponent and with the shortest digits that round-trip.
        let text = format!("{}", value.abs());
        let (units, _) = parse_decimal(&text)?;
        Self::from_units(units)
    }

    /// Converts a JSON value sent by a client: integers exactly, floats half-even.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, CreditsError> {
        match value {
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i.checked_mul(SCALE)
                        .ok_or(CreditsError::Overflow)
                        .and_then(Self::from_units)
                } else if n.is_u64() {
                    Err(CreditsError::Overflow)
                } else {
                    n.as_f64()
                        .ok_or_else(|| CreditsError::NotANumber(n.to_string()))
                        .and_then(Self::from_f64)
                }
            }
            other => Err(CreditsError::NotANumber(other.to_string())),
        }
    }

    /// The amount as a JSON number, for protocol answers (Odoo reads floats).
    pub fn to_f64(self) -> f64 {
        // Exact for every amount below 2^53 units; the display form keeps 4 decimals.
        self.to_string().parse().unwrap_or(f64::MAX)
    }
}

/// Parses `digits[.digits]` into units, rounding half-even past 4 decimals.
/// Returns the units and whether no rounding happened.
fn parse_decimal(text: &str) -> Result<(i64, bool), CreditsError> {
    if text.is_empty() {
        return Err(CreditsError::Empty);
    }
    if let Some(rest) = text.strip_prefix('-') {
        if !rest.is_empty() && rest.chars().all(|c| c == '0' || c == '.') && rest.contains('0') {
            return Ok((0, true));
        }
        return Err(CreditsError::Negative);
    }
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_only(int_part)
        || !digits_only(frac_part)
        || (text.contains('.') && (int_part.is_empty() || frac_part.is_empty()))
    {
        return Err(CreditsError::NotANumber(text.to_owned()));
    }
    let int_trimmed = int_part.trim_start_matches('0');
    // 10^12 credits has 13 integer digits; anything longer is out of range.
    if int_trimmed.len() > 13 {
        return Err(CreditsError::Overflow);
    }
    let whole: i64 = if int_trimmed.is_empty() {
        0
    } else {
        int_trimmed
            .parse()
            .map_err(|_| CreditsError::NotANumber(text.to_owned()))?
    };
    let kept = &frac_part[..frac_part.len().min(4)];
    let rest = &frac_part[frac_part.len().min(4)..];
    let mut frac: i64 = 0;
    for (i, b) in kept.bytes().enumerate() {
        frac += i64::from(b - b'0') * 10_i64.pow(3 - i as u32);
    }
    let mut units = whole
        .checked_mul(SCALE)
        .and_then(|u| u.checked_add(frac))
        .ok_or(CreditsError::Overflow)?;
    let exact = rest.bytes().all(|b| b == b'0');
    if !exact {
        let first = rest.as_bytes()[0];
        let beyond_half = rest[1..].bytes().any(|b| b != b'0');
        let round_up = first > b'5' || (first == b'5' && (beyond_half || units % 2 == 1));
        if round_up {
            units = units.checked_add(1).ok_or(CreditsError::Overflow)?;
        }
    }
    Ok((units, exact))
}

impl fmt::Display for Credits {
    /// Plain decimal with trailing zeros dropped: `12`, `12.5`, `0.0001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:04}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl FromStr for Credits {
    type Err = CreditsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Credits::parse_exact(s)
    }
}

impl serde::Serialize for Credits {
    /// Serialised as a decimal string so no client float rounding touches it.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Credits {
    /// Accepts a decimal string (strict) or a JSON number (integers exact, floats half-even).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::String(s) => Credits::parse_exact(s),
            other => Credits::from_json(other),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(text: &str) -> Credits {
        Credits::parse_exact(text).expect(text)
    }

    #[test]
    fn float_sums_round_to_the_intended_decimal() {
        assert_eq!(Credits::from_f64(0.1 + 0.2), Ok(c("0.3")));
        assert_eq!(Credits::from_json(&json!(0.1 + 0.2)), Ok(c("0.3")));
        assert_eq!(Credits::from_f64(1.1 * 3.0), Ok(c("3.3")));
        assert_eq!(Credits::from_f64(0.7 + 0.1), Ok(c("0.8")));
    }

    #[test]
    fn rounding_is_half_even_past_four_decimals() {
        assert_eq!(Credits::from_f64(0.00005).map(Credits::units), Ok(0));
        assert_eq!(Credits::from_f64(0.00015).map(Credits::units), Ok(2));
        assert_eq!(Credits::from_f64(0.00025).map(Credits::units), Ok(2));
        assert_eq!(Credits::from_f64(0.000251).map(Credits::units), Ok(3));
        assert_eq!(Credits::from_f64(0.00004999).map(Credits::units), Ok(0));
        assert_eq!(Credits::from_f64(1.99999).map(Credits::units), Ok(20_000));
    }

    #[test]
    fn nan_and_infinities_are_rejected() {
        assert_eq!(Credits::from_f64(f64::NAN), Err(CreditsError::NaN));
        assert_eq!(
            Credits::from_f64(f64::INFINITY),
            Err(CreditsError::Infinite)
        );
        assert_eq!(
            Credits::from_f64(f64::NEG_INFINITY),
            Err(CreditsError::Infinite)
        );
    }

    #[test]
    fn negatives_are_rejected_but_negative_zero_is_zero() {
        assert_eq!(Credits::from_f64(-0.0001), Err(CreditsError::Negative));
        assert_eq!(Credits::from_json(&json!(-1)), Err(CreditsError::Negative));
        assert_eq!(Credits::parse_exact("-1"), Err(CreditsError::Negative));
        assert_eq!(Credits::from_f64(-0.0), Ok(Credits::ZERO));
    }

    #[test]
    fn overflow_is_rejected() {
        assert_eq!(Credits::from_f64(1e13), Err(CreditsError::Overflow));
        assert_eq!(Credits::from_f64(1e300), Err(CreditsError::Overflow));
        assert_eq!(
            Credits::from_json(&json!(u64::MAX)),
            Err(CreditsError::Overflow)
        );
        assert_eq!(
            Credits::from_json(&json!(i64::MAX)),
            Err(CreditsError::Overflow)
        );
        assert_eq!(
            Credits::parse_exact("1000000000000.0001"),
            Err(CreditsError::Overflow)
        );
        assert_eq!(
            Credits::parse_exact("1000000000000"),
            Ok(c("1000000000000"))
        );
        let max = Credits::from_units(MAX_UNITS).expect("max");
        assert_eq!(
            max.checked_add(Credits::from_units(1).expect("one")),
            Err(CreditsError::Overflow)
        );
    }

    #[test]
    fn strict_parsing_refuses_more_than_four_decimals_and_junk() {
        assert!(matches!(
            Credits::parse_exact("1.00001"),
            Err(CreditsError::TooPrecise(_))
        ));
        assert_eq!(
            Credits::parse_exact("1.00010").map(Credits::units),
            Ok(10_001)
        );
        for junk in [
            "", "abc", "1e3", "1.", ".5", "+1", "1,5", " ", "0x10", "1.2.3",
        ] {
            assert!(Credits::parse_exact(junk).is_err(), "{junk:?} accepted");
        }
        assert!(Credits::from_json(&json!("12")).is_err());
        assert!(Credits::from_json(&json!(null)).is_err());
    }

    #[test]
    fn checked_subtraction_never_goes_negative() {
        assert_eq!(c("1").checked_sub(c("1.0001")), Err(CreditsError::Negative));
        assert_eq!(c("1").checked_sub(c("0.25")), Ok(c("0.75")));
        assert_eq!(c("1").saturating_sub(c("2")), Credits::ZERO);
    }

    #[test]
    fn display_and_serde_round_trip() {
        for text in ["0", "12", "12.5", "0.0001", "1000000000000"] {
            assert_eq!(c(text).to_string(), text);
            let json = serde_json::to_value(c(text)).expect("ser");
            assert_eq!(json, json!(text));
            let back: Credits = serde_json::from_value(json).expect("de");
            assert_eq!(back, c(text));
        }
        let from_number: Credits = serde_json::from_value(json!(2.5)).expect("de");
        assert_eq!(from_number, c("2.5"));
        assert_eq!(c("2.5").to_f64(), 2.5);
    }
}
