//! Rules for names and text that people read (service names, labels, units, pack names,
//! operators' names for tokens and secrets, database uuids, trial lengths):
//! the domain's, so the store, the CLI, the console and the admin API refuse the same
//! things.

/// No control character (C0, DEL, C1), at least one character besides spaces, at most
/// `max` characters (code points, as JSON Schema counts them).
pub fn visible_text(text: &str, max: usize) -> bool {
    text.chars().count() <= max
        && !text.chars().any(char::is_control)
        && text.chars().any(|c| c != ' ')
}

/// A service's technical name (what Odoo sends as `service_name`), `^[a-z][a-z0-9_-]{0,63}$`.
pub fn service_name(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// The name an operator gives an admin token or a registration secret: 1-100 bytes once
/// trimmed. Answers the trimmed name, or why it is refused (`what` names the thing).
pub fn operator_name<'a>(what: &str, name: &'a str) -> Result<&'a str, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(format!("{what} name must be 1-100 characters"));
    }
    Ok(name)
}

/// A database uuid as stored (`database.uuid` of an Odoo database): 1-64 bytes, not blank.
pub fn dbuuid(text: &str) -> bool {
    !text.trim().is_empty() && text.len() <= 64
}

/// How long trial credits may last, in days (0: they never expire).
pub fn trial_days(days: i32) -> bool {
    (0..=3650).contains(&days)
}
