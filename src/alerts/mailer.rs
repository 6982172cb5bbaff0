//! SMTP delivery with lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::content::Content;
use crate::config::SmtpSettings;
use crate::store::AlertJob;

/// Sends alerts through the configured mail server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Right-hand side of Message-IDs.
    domain: String,
}

/// The host part of the public URL, for Message-IDs.
fn domain_of(public_url: &str) -> String {
    let rest = public_url.split("://").nth(1).unwrap_or(public_url);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        "iap-sidecar.invalid".into()
    } else {
        host.to_owned()
    }
}

impl Mailer {
    /// A mailer for `smtp`, or `None` when no mail server is configured.
    pub fn from_settings(smtp: &SmtpSettings, public_url: &str) -> Result<Option<Mailer>, String> {
        let Some(host) = smtp.host.as_deref() else {
            return Ok(None);
        };
        let builder = match smtp.security.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("smtp.host {host}: {e}"))?,
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("smtp.host {host}: {e}"))?,
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs.max(1))));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let from = smtp
            .from
            .parse()
            .map_err(|e| format!("smtp.from {:?}: {e}", smtp.from))?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            domain: domain_of(public_url),
        }))
    }

    /// The Message-ID of an alert: stable across retries, so a duplicate delivery after a
    /// crash between sending and recording can be recognised.
    pub fn message_id(&self, job: &AlertJob) -> String {
        format!("<iap-alert-{}@{}>", job.id, self.domain)
    }

    pub async fn send(&self, job: &AlertJob, content: &Content) -> Result<(), String> {
        let to: Mailbox = job
            .recipient
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", job.recipient))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&content.subject)
            .message_id(Some(self.message_id(job)))
            .multipart(MultiPart::alternative_plain_html(
                content.text.clone(),
                content.html.clone(),
            ))
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
