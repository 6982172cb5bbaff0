//! Rules for names and text that people read (service names, labels, units, pack names):
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
