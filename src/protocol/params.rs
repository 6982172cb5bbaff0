//! Typed access to JSON-RPC `params`, with errors that name the parameter.

use serde_json::{Map, Value};

use super::error::RpcError;
use crate::ledger::Credits;

/// The `params` object of one request, checked against the keys its route accepts.
pub struct Params {
    map: Map<String, Value>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn invalid(msg: String) -> RpcError {
    RpcError::Invalid(msg)
}

/// Longest string accepted in any parameter.
const MAX_TEXT: usize = 2000;

impl Params {
    /// Refuses keys the route does not know, so a typo is an error, not a silent default.
    pub fn new(map: Map<String, Value>, allowed: &[&str]) -> Result<Params, RpcError> {
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(invalid(format!(
                "unknown parameter(s): {}; this route accepts: {}",
                unknown.join(", "),
                allowed.join(", ")
            )));
        }
        Ok(Params { map })
    }

    fn present(&self, key: &str) -> Option<&Value> {
        // Odoo sends False for "no value" in several places.
        self.map
            .get(key)
            .filter(|v| !v.is_null() && *v != &Value::Bool(false))
    }

    /// A required, non-empty string of at most `max` characters.
    pub fn text(&self, key: &str, max: usize) -> Result<&str, RpcError> {
        self.opt_text(key, max)?
            .ok_or_else(|| invalid(format!("missing parameter {key:?} (a string)")))
    }

    /// An optional string (absent, null or false: none).
    pub fn opt_text(&self, key: &str, max: usize) -> Result<Option<&str>, RpcError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(invalid(format!("parameter {key:?} must not be empty")))
            }
            Some(Value::String(s)) if s.chars().count() > max.min(MAX_TEXT) => {
                Err(invalid(format!(
                    "parameter {key:?} is longer than {} characters",
                    max.min(MAX_TEXT)
                )))
            }
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(invalid(format!(
                "parameter {key:?} must be a string, not {}",
                kind(other)
            ))),
        }
    }

    /// A required amount of credits (a JSON number: no NaN, no negative, no overflow).
    pub fn credits(&self, key: &str) -> Result<Credits, RpcError> {
        self.opt_credits(key)?
            .ok_or_else(|| invalid(format!("missing parameter {key:?} (a number of credits)")))
    }

    pub fn opt_credits(&self, key: &str) -> Result<Option<Credits>, RpcError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(n)) => {
                let credits = Credits::from_json(v)
                    .map_err(|e| invalid(format!("parameter {key:?}: {e}")))?;
                // A charge too small to represent must not become a free one.
                if credits.is_zero() && n.as_f64().is_some_and(|f| f > 0.0) {
                    return Err(invalid(format!(
                        "parameter {key:?}: {n} is below the smallest amount, 0.0001"
                    )));
                }
                Ok(Some(credits))
            }
            Some(other) => Err(invalid(format!(
                "parameter {key:?} must be a number, not {}",
                kind(other)
            ))),
        }
    }

    /// An optional whole number.
    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, RpcError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    // Python clients may send 4320.0 for 4320.
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| {
                    invalid(format!("parameter {key:?} must be a whole number, not {n}"))
                }),
            Some(other) => Err(invalid(format!(
                "parameter {key:?} must be a whole number, not {}",
                kind(other)
            ))),
        }
    }

    /// Whether the parameter was sent as `false` (Odoo's way of saying "cleared").
    pub fn is_false(&self, key: &str) -> bool {
        self.map.get(key) == Some(&Value::Bool(false))
    }

    /// An optional boolean (null: none).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, RpcError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(invalid(format!(
                "parameter {key:?} must be true or false, not {}",
                kind(other)
            ))),
        }
    }

    /// An optional list of at most `max` items (absent or null: none).
    pub fn opt_list(&self, key: &str, max: usize) -> Result<Option<&[Value]>, RpcError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.list(key, max).map(Some),
        }
    }

    /// A required list of at most `max` items.
    pub fn list(&self, key: &str, max: usize) -> Result<&[Value], RpcError> {
        match self.map.get(key) {
            Some(Value::Array(items)) if items.len() > max => Err(invalid(format!(
                "parameter {key:?} has more than {max} items"
            ))),
            Some(Value::Array(items)) => Ok(items),
            None | Some(Value::Null) => Err(invalid(format!("missing parameter {key:?} (a list)"))),
            Some(other) => Err(invalid(format!(
                "parameter {key:?} must be a list, not {}",
                kind(other)
            ))),
        }
    }
}

/// Reads `item` of list `list` as an object with exactly `keys` (all strings).
pub fn string_fields<'a, const N: usize>(
    list: &str,
    item: &'a Value,
    keys: [&str; N],
) -> Result<[&'a str; N], RpcError> {
    let Value::Object(map) = item else {
        return Err(invalid(format!(
            "items of {list:?} must be objects with {}, not {}",
            keys.join(", "),
            kind(item)
        )));
    };
    if let Some(extra) = map.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown key {extra:?} in an item of {list:?}"
        )));
    }
    let mut out = [""; N];
    for (slot, key) in out.iter_mut().zip(keys) {
        match map.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 256 => *slot = s,
            _ => {
                return Err(invalid(format!(
                    "each item of {list:?} needs {key:?} as a non-empty string"
                )));
            }
        }
    }
    Ok(out)
}
