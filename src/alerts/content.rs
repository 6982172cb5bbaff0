//! What an alert says, in the recipient's language (French or English).

use crate::store::AlertJob;

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

/// The buy-credits page for the account, in the form Odoo 19 links to it.
pub fn buy_link(job: &AlertJob, public_url: &str) -> String {
    let mut link = format!(
        "{public_url}/iap/1/credit?service_name={}",
        encode(&job.service_name)
    );
    if let Some(db) = &job.dbuuid {
        link.push_str(&format!("&dbuuid={}", encode(db)));
    }
    if let Some(sha1) = &job.token_sha1 {
        link.push_str(&format!("&account_token={}&hashed=1", encode(sha1)));
    }
    link
}

pub fn render(job: &AlertJob, public_url: &str) -> Content {
    let link = buy_link(job, public_url);
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
    use crate::ledger::{Credits, Timestamp};

    fn job(lang: Option<&str>) -> AlertJob {
        AlertJob {
            id: 7,
            recipient: "ops@example.com".into(),
            lang_code: lang.map(str::to_owned),
            available: Credits::parse_exact("2.5").expect("amount"),
            threshold: Credits::whole(5).expect("amount"),
            created_at: Timestamp(0),
            attempts: 1,
            service_name: "sms".into(),
            service_label: "SMS <fast>".into(),
            unit_name: "Credits".into(),
            integer_balance: false,
            dbuuid: Some("db-1".into()),
            token_sha1: Some("a9993e364706816aba3e25717850c26c9cd0d89d".into()),
        }
    }

    #[test]
    fn english_by_default_french_for_fr_codes() {
        assert!(
            render(&job(None), "http://x")
                .subject
                .starts_with("Low credit")
        );
        assert!(
            render(&job(Some("en_US")), "http://x")
                .text
                .contains("2.5 Credits available")
        );
        let fr = render(&job(Some("fr_BE")), "http://x");
        assert!(fr.subject.starts_with("Crédits bas"), "{}", fr.subject);
        assert!(fr.text.contains("seuil d'alerte de 5 Credits"));
    }

    #[test]
    fn link_is_odoo_19_style_and_html_is_escaped() {
        let c = render(&job(None), "https://iap.example.org");
        assert!(c.text.contains(
            "https://iap.example.org/iap/1/credit?service_name=sms&dbuuid=db-1&account_token=a9993e364706816aba3e25717850c26c9cd0d89d&hashed=1"
        ));
        assert!(c.html.contains("SMS &lt;fast&gt;"));
        assert!(!c.html.contains("<fast>"));
        assert!(c.html.contains("&amp;hashed=1"));
    }
}
