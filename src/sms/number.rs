//! Destination numbers: Odoo sends E.164 when it could parse the number, else the string
//! as typed (`sms-protocol.md` §3.1). A number is priced by the longest country calling
//! code the operator set a price for.

/// A destination in E.164 (`+` and 7 to 15 digits, no leading zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number(String);

/// Why a number cannot be sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    Missing,
    Format,
}

impl Number {
    /// Reads a number as Odoo sends it: separators people type (spaces, dots, dashes,
    /// parentheses) are dropped and a `00` international prefix becomes `+`; anything
    /// else that is not E.164 is a wrong format (Odoo's "Wrong Number Format").
    pub fn parse(raw: &str) -> Result<Number, NumberError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(NumberError::Missing);
        }
        let mut digits = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '+' if i == 0 => {}
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' | '/' => {}
                _ => return Err(NumberError::Format),
            }
        }
        let digits = if trimmed.starts_with('+') {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else {
            return Err(NumberError::Format);
        };
        if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(NumberError::Format);
        }
        Ok(Number(format!("+{digits}")))
    }

    /// `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits after `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_odoo_sends() {
        assert_eq!(
            Number::parse("+32470123456").unwrap().as_str(),
            "+32470123456"
        );
        assert_eq!(
            Number::parse(" +32 470 12.34-56 ").unwrap().as_str(),
            "+32470123456"
        );
        assert_eq!(
            Number::parse("0032470123456").unwrap().as_str(),
            "+32470123456"
        );
        assert_eq!(Number::parse(""), Err(NumberError::Missing));
        assert_eq!(Number::parse("0470123456"), Err(NumberError::Format));
        assert_eq!(Number::parse("+32abc"), Err(NumberError::Format));
        assert_eq!(Number::parse("+123"), Err(NumberError::Format));
        assert_eq!(Number::parse("+1234567890123456"), Err(NumberError::Format));
        assert_eq!(Number::parse("3+2470123456"), Err(NumberError::Format));
    }
}
