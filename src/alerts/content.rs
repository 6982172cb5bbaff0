//! What an alert says, in the recipient's language (French or English).

use crate::pages::session::{AlertLink, Keys};
use crate::store::AlertJob;

/// How long an alert e-mail's link opens the portal, from the alert's creation.
pub const LINK_DAYS: i64 = 30;

/// Subject and bodies of one alert.
#[derive(Clone, Debug)]
pub struct Content {
    pub subject: String,
    pub text: String,
    pub html: String,
}

enum Lang {
    En,
    Fr,
}

fn lang(code: Option<&str>) -> Lang {
    match code {
        Some(c) if c.to_ascii_lowercase().starts_with("fr") => Lang::Fr,
        _ => Lang::En,
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The buy-credits page for the account: Odoo's entry route with a signed `link` (the
/// account and an expiry) where Odoo puts the token, which the sidecar does not keep.
pub fn buy_link(job: &AlertJob, public_url: &str, keys: &Keys) -> String {
    let mut link = format!(
        "{public_url}/iap/1/credit?service_name={}",
        encode(&job.service_name)
    );
    if let Some(db) = &job.dbuuid {
        link.push_str(&format!("&dbuuid={}", encode(db)));
    }
    let sealed = keys.seal_alert_link(&AlertLink {
        account: job.account_id,
        expires: job.created_at.micros() / 1_000_000 + LINK_DAYS * 86_400,
    });
    link.push_str(&format!("&link={}", encode(&sealed)));
    link
}

pub fn render(job: &AlertJob, public_url: &str, keys: &Keys) -> Content {
    let link = buy_link(job, public_url, keys);
    let unit = &job.unit_name;
    let available = format!("{} {unit}", job.available);
    let threshold = format!("{} {unit}", job.threshold);
    let db = job.dbuuid.as_deref().unwrap_or("-");
    let label = &job.service_label;
    let (subject, lines, button) = match lang(job.lang_code.as_deref()) {
        Lang::En => (
            format!("Low credit: {label} ({available} left)"),
            vec![
                "Hello,".to_owned(),
                format!(
                    "The {label} credits of database {db} are running low: {available} available, \
                     below your alert threshold of {threshold}."
                ),
                "Buy credits:".to_owned(),
                "You receive this e-mail as an alert recipient of this IAP account. Change the \
                 threshold or the recipients in Odoo (Settings > Technical > IAP Accounts)."
                    .to_owned(),
            ],
            "Buy credits",
        ),
        Lang::Fr => (
            format!("Crédits bas : {label} ({available} restants)"),
            vec![
                "Bonjour,".to_owned(),
                format!(
                    "Les crédits {label} de la base de données {db} sont presque épuisés : \
                     {available} disponibles, sous votre seuil d'alerte de {threshold}."
                ),
                "Acheter des crédits :".to_owned(),
                "Vous recevez cet e-mail car vous êtes destinataire des alertes de ce compte IAP. \
                 Modifiez le seuil ou les destinataires dans Odoo (Paramètres > Technique > \
                 Comptes IAP)."
                    .to_owned(),
            ],
            "Acheter des crédits",
        ),
    };
    let text = format!(
        "{}\n\n{}\n\n{} {link}\n\n-- \n{}\n",
        lines[0], lines[1], lines[2], lines[3]
    );
    let html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">\
         <p>{}</p><p>{}</p><p><a href=\"{}\">{}</a></p>\
         <p style=\"color:#666;font-size:small\">{}</p></body></html>",
        escape(&lines[0]),
        escape(&lines[1]),
        escape(&link),
        escape(button),
        escape(&lines[3]),
    );
    Content {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::time::MICROS_PER_DAY;
    use crate::ledger::{AccountId, Credits, Timestamp};
    use crate::store::AlertId;

    fn job(lang: Option<&str>) -> AlertJob {
        AlertJob {
            id: AlertId::from_stored(7),
            recipient: "ops@example.com".into(),
            lang_code: lang.map(str::to_owned),
            available: Credits::parse_exact("2.5").expect("amount"),
            threshold: Credits::whole(5).expect("amount"),
            created_at: Timestamp::from_micros(0),
            attempts: 1,
            service_name: "sms".into(),
            service_label: "SMS <fast>".into(),
            unit_name: "Credits".into(),
            integer_balance: false,
            dbuuid: Some("db-1".into()),
            account_id: AccountId::from_stored(3),
        }
    }

    fn keys() -> Keys {
        Keys::new("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn english_by_default_french_for_fr_codes() {
        assert!(
            render(&job(None), "http://x", &keys())
                .subject
                .starts_with("Low credit")
        );
        assert!(
            render(&job(Some("en_US")), "http://x", &keys())
                .text
                .contains("2.5 Credits available")
        );
        let fr = render(&job(Some("fr_BE")), "http://x", &keys());
        assert!(fr.subject.starts_with("Crédits bas"), "{}", fr.subject);
        assert!(fr.text.contains("seuil d'alerte de 5 Credits"));
    }

    #[test]
    fn link_is_signed_and_html_is_escaped() {
        let c = render(&job(None), "https://iap.example.org", &keys());
        let start = "https://iap.example.org/iap/1/credit?service_name=sms&dbuuid=db-1&link=";
        let link = c
            .text
            .split_whitespace()
            .find(|w| w.starts_with(start))
            .expect("link");
        let opened = keys().open_alert_link(&link[start.len()..], Timestamp::from_micros(0));
        assert_eq!(
            opened,
            Some(AlertLink {
                account: AccountId::from_stored(3),
                expires: LINK_DAYS * 86_400
            })
        );
        assert_eq!(
            keys().open_alert_link(
                &link[start.len()..],
                Timestamp::from_micros(LINK_DAYS * MICROS_PER_DAY)
            ),
            None,
            "expired"
        );
        assert!(c.html.contains("SMS &lt;fast&gt;"));
        assert!(!c.html.contains("<fast>"));
        assert!(c.html.contains("&amp;link="));
    }
}
