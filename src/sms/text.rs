//! Segments: what a text costs. The rule is the one gateways bill by and the one Odoo's
//! composer shows its users (`fields_sms_widget.js`), so a charge matches what the user
//! saw: GSM-7 when every character is in the GSM 03.38 basic table, else UCS-2; GSM-7
//! fits 160 characters in one segment and 153 per segment when split, UCS-2 70 and 67.
//! Lengths are counted in UTF-16 units (an emoji counts two) and a newline counts twice,
//! exactly as Odoo counts them.

/// How a text is encoded on the air.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        }
    }

    pub fn parse(text: &str) -> Option<Encoding> {
        match text {
            "gsm7" => Some(Encoding::Gsm7),
            "ucs2" => Some(Encoding::Ucs2),
            _ => None,
        }
    }
}

/// The GSM 03.38 basic character set (the extension table's `€[]{}~^\|` are not in it:
/// Odoo counts a text holding one of them as UNICODE, and so do we).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// A text's encoding, length as Odoo counts it, and segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Characters as Odoo's composer counts them.
    pub length: u32,
    pub count: u32,
}

/// Counts the segments of `text`. An empty text is one segment: gateways bill it as one.
pub fn segments(text: &str) -> Segments {
    let encoding = if text.chars().all(|c| GSM7_BASIC.contains(c)) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };
    let units: usize = text.chars().map(char::len_utf16).sum();
    let newlines = text.chars().filter(|&c| c == '\n').count();
    let length = u32::try_from(units + newlines).unwrap_or(u32::MAX);
    let (single, part) = match encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    let count = if length <= single {
        1
    } else {
        length.div_ceil(part)
    };
    Segments {
        encoding,
        length,
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_limits() {
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
        assert_eq!(segments("").count, 1);
        assert_eq!(segments("Hello @ £5").encoding, Encoding::Gsm7);
    }

    #[test]
    fn ucs2_limits() {
        let s = segments(&"é€".repeat(35));
        assert_eq!((s.encoding, s.length, s.count), (Encoding::Ucs2, 70, 1));
        assert_eq!(segments(&"€".repeat(71)).count, 2);
        assert_eq!(segments(&"€".repeat(134)).count, 2);
        assert_eq!(segments(&"€".repeat(135)).count, 3);
    }

    #[test]
    fn odoo_counts_emoji_as_two_and_newline_as_two() {
        let s = segments("😀");
        assert_eq!((s.encoding, s.length), (Encoding::Ucs2, 2));
        let s = segments("a\nb");
        assert_eq!((s.encoding, s.length), (Encoding::Gsm7, 4));
    }

    #[test]
    fn extension_characters_switch_to_ucs2() {
        for c in ['€', '[', ']', '{', '}', '~', '^', '\\', '|'] {
            assert_eq!(
                segments(&format!("price {c}")).encoding,
                Encoding::Ucs2,
                "{c}"
            );
        }
    }
}
