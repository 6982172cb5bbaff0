//! Prices: an integer number of minor units (cents) and an ISO 4217 currency code.
//!
//! Prices are never floats: they are parsed from decimal text with exactly the
//! currency's number of decimals, and shown the same way.

use std::fmt;

/// A valid ISO 4217 code: three ASCII capital letters (`EUR`, `USD`, `JPY`).
pub fn valid_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Digits after the decimal point for a currency (ISO 4217 minor unit).
pub fn exponent(currency: &str) -> u32 {
    match currency {
        // Currencies without minor units.
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        // Currencies with thousandths.
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// The largest price accepted: 10^12 minor units.
pub const MAX_MINOR: i64 = 1_000_000_000_000;

/// A price in minor units of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Price {
    pub minor: i64,
    pub currency: String,
}

/// Why a price was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("currency {0:?} is not an ISO 4217 code (three capital letters, e.g. EUR)")]
    Currency(String),
    #[error("price {0:?} is not a decimal number with at most {1} decimals")]
    Amount(String, u32),
    #[error("price must be at most {MAX_MINOR} minor units")]
    TooLarge,
}

impl Price {
    /// Parses `12`, `12.5`, `12.50` (or `12,50`) in `currency`; no sign, no exponent.
    pub fn parse(amount: &str, currency: &str) -> Result<Price, PriceError> {
        let currency = currency.trim().to_ascii_uppercase();
        if !valid_currency(&currency) {
            return Err(PriceError::Currency(currency));
        }
        let exp = exponent(&currency);
        let text = amount.trim().replace(',', ".");
        let bad = || PriceError::Amount(amount.trim().to_owned(), exp);
        let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > exp as usize {
            return Err(bad());
        }
        if text.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        if whole.trim_start_matches('0').len() > 13 {
            return Err(PriceError::TooLarge);
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let mut minor = whole
            .checked_mul(10_i64.pow(exp))
            .ok_or(PriceError::TooLarge)?;
        if !frac.is_empty() {
            let padded = format!("{frac:0<width$}", width = exp as usize);
            minor = minor
                .checked_add(padded.parse::<i64>().map_err(|_| bad())?)
                .ok_or(PriceError::TooLarge)?;
        }
        Price::from_minor(minor, &currency)
    }

    /// Checks a stored or API-given amount of minor units.
    pub fn from_minor(minor: i64, currency: &str) -> Result<Price, PriceError> {
        if !valid_currency(currency) {
            return Err(PriceError::Currency(currency.to_owned()));
        }
        if !(0..=MAX_MINOR).contains(&minor) {
            return Err(PriceError::TooLarge);
        }
        Ok(Price {
            minor,
            currency: currency.to_owned(),
        })
    }

    /// The amount alone with the currency's decimals and `separator` (`12.50`, `12,50`).
    pub fn amount_text(&self, separator: char) -> String {
        let exp = exponent(&self.currency);
        if exp == 0 {
            return self.minor.to_string();
        }
        let scale = 10_i64.pow(exp);
        format!(
            "{}{separator}{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = exp as usize
        )
    }
}

impl fmt::Display for Price {
    /// `12.50 EUR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text('.'), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_the_currency_decimals() {
        assert_eq!(Price::parse("12.5", "eur").expect("price").minor, 1250);
        assert_eq!(Price::parse("12,50", "EUR").expect("price").minor, 1250);
        assert_eq!(Price::parse("12", "EUR").expect("price").minor, 1200);
        assert_eq!(Price::parse("1500", "JPY").expect("price").minor, 1500);
        assert_eq!(Price::parse("1.234", "KWD").expect("price").minor, 1234);
        assert!(Price::parse("1.5", "JPY").is_err());
        assert!(Price::parse("1.234", "EUR").is_err());
        assert!(Price::parse("-1", "EUR").is_err());
        assert!(Price::parse("1e3", "EUR").is_err());
        assert!(Price::parse("1.", "EUR").is_err());
        assert!(Price::parse("", "EUR").is_err());
        assert!(Price::parse("1", "EURO").is_err());
        assert!(Price::parse("99999999999999", "EUR").is_err());
    }

    #[test]
    fn displays_with_the_currency_decimals() {
        assert_eq!(
            Price::parse("12.5", "EUR").expect("p").to_string(),
            "12.50 EUR"
        );
        assert_eq!(Price::parse("7", "JPY").expect("p").to_string(), "7 JPY");
        assert_eq!(
            Price::parse("0.05", "USD").expect("p").amount_text(','),
            "0,05"
        );
    }
}
