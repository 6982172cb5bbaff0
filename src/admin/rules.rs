//! What the admin API accepts, said once for both readers: the OpenAPI document (patterns
//! and lengths that clients and schemathesis read) and the handlers (the checks that
//! refuse). Each rule is a pattern in the document's attributes and a function here that
//! decides exactly that pattern, so a value the document calls valid is never refused for
//! its shape, and a value it calls invalid is never taken. The tests below hold each
//! function equal to its pattern on random and edge-case strings, and every pattern of the
//! document to one of them; `.ci/schemathesis.sh` checks the running server.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

use crate::ledger::{Credits, Timestamp};

/// Text of 1 to `max` characters (code points, as JSON Schema counts), whatever they are.
pub fn sized_text(text: &str, max: usize) -> bool {
    !text.is_empty() && text.chars().count() <= max
}

fn visible_ascii(text: &str, max: usize, also: impl Fn(u8) -> bool) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_graphic() && also(b))
}

/// An Odoo account token as the operator types it, `^[!-*,-~]{1,128}$`: visible ASCII
/// without `+` (Odoo's `+disabled` suffix is a state, not part of the token).
pub fn account_token(text: &str) -> bool {
    visible_ascii(text, 128, |b| b != b'+')
}

/// A database's `database.uuid` as services and grants name it, `^[!-~]{1,64}$`.
pub fn dbuuid(text: &str) -> bool {
    visible_ascii(text, 64, |_| true)
}

/// An `Idempotency-Key`, `^[!-~]([ -~]{0,253}[!-~])?$`: visible ASCII, spaces inside only.
pub fn idempotency_key(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 255
        && bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes[0] != b' '
        && bytes[bytes.len() - 1] != b' '
}

/// An amount of credits, `^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$`: no leading zero, at
/// most 12 digits before the point and 4 after. The ledger's own parser is wider (JSON
/// numbers, leading zeros, 10^12); the admin API takes the one spelling its document states.
pub fn amount(text: &str) -> Option<Credits> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let whole_ok = whole == "0" || (digits(whole) && whole.len() <= 12 && !whole.starts_with('0'));
    let frac_ok = frac.is_none_or(|f| digits(f) && f.len() <= 4);
    if !(whole_ok && frac_ok) {
        return None;
    }
    Credits::parse_exact(text).ok()
}

/// A time as the API takes it: RFC 3339 (`2026-12-31T23:00:00Z`) or a date (`2026-12-31`,
/// midnight UTC); the document says `format: date-time` or `format: date`.
pub fn time(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let date_shape = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !date_shape {
        return None;
    }
    // chrono also takes a space between date and time; RFC 3339's `date-time` does not.
    if b.len() > 10 && !matches!(b[10], b'T' | b't') {
        return None;
    }
    Timestamp::parse(text)
}

/// The schema of [`time`].
pub fn time_schema() -> Schema {
    let of = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .build()
    };
    Schema::OneOf(
        OneOfBuilder::new()
            .item(of(KnownFormat::DateTime))
            .item(of(KnownFormat::Date))
            .description(Some("RFC 3339 date-time, or a date (midnight UTC)"))
            .build(),
    )
}

/// An optional [`time`] (`null` allowed).
pub fn optional_time_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(RefOr::T(time_schema()))
            .item(ObjectBuilder::new().schema_type(Type::Null).build())
            .build(),
    )
}

/// Up to 10,000 [`dbuuid`]s.
pub fn dbuuid_list_schema() -> Schema {
    Schema::Array(
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[!-~]{1,64}$")),
            )
            .max_items(Some(10_000))
            .build(),
    )
}

/// Reads a JSON Schema `integer`: any number without a fraction, `2.0` included (serde's
/// integers refuse `2.0`, which the schema calls an integer).
pub fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let value = serde_json::Number::deserialize(deserializer)?;
    let n = match (value.as_i64(), value.as_f64()) {
        (Some(n), _) => Some(n),
        // 2^63 is exactly representable: every float below it in magnitude fits an i64.
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_808.0 => {
            Some(f as i64)
        }
        _ => None,
    };
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| D::Error::custom(format!("{value} is not an integer in range")))
}

/// An amount of credits the admin API takes ([`amount`]).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Amount(pub Credits);

impl TryFrom<String> for Amount {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        amount(&text).map(Amount).ok_or_else(|| {
            format!("{text:?} is not an amount of credits (digits, at most 4 decimals)")
        })
    }
}

impl From<Amount> for String {
    fn from(a: Amount) -> String {
        a.0.to_string()
    }
}

/// An [`Amount`] above zero.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PositiveAmount(pub Credits);

impl TryFrom<String> for PositiveAmount {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match amount(&text) {
            Some(c) if !c.is_zero() => Ok(PositiveAmount(c)),
            _ => Err(format!(
                "{text:?} is not an amount of credits above 0 (digits, at most 4 decimals)"
            )),
        }
    }
}

impl From<PositiveAmount> for String {
    fn from(a: PositiveAmount) -> String {
        a.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::text::{service_name, visible_text};
    use proptest::prelude::*;

    type Check = Box<dyn Fn(&str) -> bool>;

    /// Every pattern the document states, with the check that decides it.
    fn checks() -> Vec<(&'static str, Check)> {
        vec![
            (
                r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$",
                Box::new(|t| amount(t).is_some()),
            ),
            (
                r"^([1-9][0-9]{0,11}(\.[0-9]{1,4})?|0\.([1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$",
                Box::new(|t| PositiveAmount::try_from(t.to_owned()).is_ok()),
            ),
            (
                r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
                Box::new(|t| visible_text(t, usize::MAX)),
            ),
            (r"^[!-*,-~]{1,128}$", Box::new(account_token)),
            (r"^[!-~]{1,64}$", Box::new(dbuuid)),
            (r"^[a-z][a-z0-9_-]{0,63}$", Box::new(service_name)),
            (
                r"^[A-Z]{3}$",
                Box::new(crate::payments::money::valid_currency),
            ),
            (r"^[!-~]([ -~]{0,253}[!-~])?$", Box::new(idempotency_key)),
            (
                "^https?://",
                Box::new(|t| t.starts_with("http://") || t.starts_with("https://")),
            ),
        ]
    }

    fn patterns_in(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "pattern"
                        && let Some(p) = v.as_str()
                    {
                        out.push(p.to_owned());
                    }
                    patterns_in(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| patterns_in(v, out)),
            _ => {}
        }
    }

    /// A pattern typed into an attribute that no check decides fails here.
    #[test]
    fn every_pattern_of_the_document_has_its_check() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(super::super::ApiDoc::openapi()).expect("document");
        let mut found = Vec::new();
        patterns_in(&doc, &mut found);
        let known: Vec<&str> = checks().iter().map(|(p, _)| *p).collect();
        let enums = [
            "^(all|pending|failing|sent)$",
            "^(pending|paid|credited|cancelled)$",
        ];
        for p in found {
            assert!(
                known.contains(&p.as_str()) || enums.contains(&p.as_str()),
                "pattern {p} has no check in rules.rs"
            );
        }
    }

    fn edge_cases() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            " ",
            "0",
            "00",
            "01",
            "0.",
            ".0",
            "0.0",
            "0.0000",
            "0.00001",
            "1",
            "1.5",
            "999999999999",
            "1000000000000",
            "999999999999.9999",
            "abc",
            "Abc",
            "EUR",
            "eur",
            "a+b",
            "a b",
            " a",
            "a ",
            "a\u{85}",
            "\u{a0}",
            "é",
            "a\tb",
            "sms",
            "sms-2",
            "2sms",
            "k\u{7f}",
            "\u{9f}x",
            "x\u{a0}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.push("a".repeat(64));
        v.push("a".repeat(65));
        v.push("a".repeat(128));
        v.push("a".repeat(129));
        v.push("k".repeat(255));
        v.push("k".repeat(256));
        v
    }

    #[test]
    fn checks_decide_their_patterns_on_edge_cases() {
        for (pattern, check) in checks() {
            let re = regex::Regex::new(pattern).expect(pattern);
            for text in edge_cases() {
                assert_eq!(check(&text), re.is_match(&text), "{pattern} on {text:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn checks_decide_their_patterns(text in "(\\PC|[\\x00-\\x20\\x7f-\\xa0+.0-9a-zA-Z]){0,20}") {
            for (pattern, check) in checks() {
                let re = regex::Regex::new(pattern).expect(pattern);
                prop_assert_eq!(check(&text), re.is_match(&text), "{} on {:?}", pattern, text);
            }
        }
    }

    /// The hand-written checks decide what the patterns say, over a corpus of edge cases
    /// (the patterns are checked by an independent engine in `.ci/schemathesis.sh`).
    #[test]
    fn amounts_follow_their_patterns() {
        let ok = [
            "0",
            "0.5",
            "1",
            "10.25",
            "999999999999.9999",
            "0.0001",
            "7.0000",
        ];
        let bad = [
            "",
            "00",
            "01",
            "1.",
            ".5",
            "1.23456",
            "1000000000000",
            "-1",
            "1e3",
            " 1",
        ];
        for t in ok {
            assert!(amount(t).is_some(), "{t}");
        }
        for t in bad {
            assert!(amount(t).is_none(), "{t}");
        }
        for (t, positive) in [
            ("0", false),
            ("0.0000", false),
            ("0.0001", true),
            ("3", true),
        ] {
            assert_eq!(
                PositiveAmount::try_from(t.to_owned()).is_ok(),
                positive,
                "{t}"
            );
        }
    }

    #[test]
    fn texts_and_tokens() {
        assert!(visible_text("SMS", 200));
        assert!(visible_text(" a ", 3));
        assert!(!visible_text("   ", 200));
        assert!(!visible_text("a\u{85}", 200));
        assert!(!visible_text("", 200));
        assert!(visible_text("é", 1));
        assert!(!visible_text("ab", 1));
        assert!(account_token("a-b_c"));
        assert!(!account_token("a+disabled"));
        assert!(!account_token("a b"));
        assert!(idempotency_key("k 1"));
        assert!(!idempotency_key(" k"));
        assert!(!idempotency_key("k "));
    }

    #[test]
    fn integers_as_json_schema_counts_them() {
        #[derive(Deserialize)]
        struct N {
            #[serde(deserialize_with = "whole")]
            n: i32,
        }
        let read = |t: &str| serde_json::from_str::<N>(t).map(|v| v.n).ok();
        assert_eq!(read(r#"{"n": 7}"#), Some(7));
        assert_eq!(read(r#"{"n": 1819.0}"#), Some(1819));
        assert_eq!(read(r#"{"n": -2e3}"#), Some(-2000));
        assert_eq!(read(r#"{"n": 1.5}"#), None);
        assert_eq!(read(r#"{"n": 3000000000}"#), None);
        assert_eq!(read(r#"{"n": 1e300}"#), None);
        assert_eq!(read(r#"{"n": "7"}"#), None);
    }

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert!(time("2026-12-31").is_some());
        assert!(time("2026-12-31T23:00:00Z").is_some());
        assert!(time("2026-12-31t23:00:00.5+02:00").is_some());
        assert!(time("2026-12-31 23:00:00Z").is_none());
        assert!(time("2026-1-31").is_none());
        assert!(time("+2026-12-31").is_none());
        assert!(time("").is_none());
    }
}
