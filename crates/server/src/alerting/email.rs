//! Email over SMTP (lettre): the message a delivery holds, as a plain-text and an HTML part
//! with their inline images, sent through the configured server.

use std::str::FromStr;

use base64::Engine as _;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::config::{Smtp, SmtpTls};

/// An email as a delivery keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailPayload {
    pub subject: String,
    pub text: String,
    pub html: String,
    #[serde(default)]
    pub images: Vec<InlineImage>,
    /// The address of the one-click unsubscribe (`List-Unsubscribe`), for reports.
    #[serde(default)]
    pub unsubscribe_url: Option<String>,
}

/// An image the HTML shows by `cid:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlineImage {
    pub cid: String,
    pub content_type: String,
    pub base64: String,
}

/// Whether `text` is an email address a message can be sent to.
pub fn valid_address(text: &str) -> bool {
    text.len() <= 254 && Address::from_str(text).is_ok()
}

/// The configured mail server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `None` when no host is configured (email is off).
    pub fn new(smtp: &Smtp) -> anyhow::Result<Option<Mailer>> {
        if smtp.host.trim().is_empty() {
            return Ok(None);
        }
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|err| anyhow::anyhow!("smtp.from {:?} is not a mailbox: {err}", smtp.from))?;
        let mut builder = match smtp.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
            }
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(smtp.host.as_str())?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(smtp.host.as_str())?,
        }
        .port(smtp.port)
        .timeout(Some(std::time::Duration::from_secs(20)));
        if !smtp.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                smtp.username.clone(),
                smtp.password.clone(),
            ));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends `email` to `to`; the error says why not.
    pub async fn send(
        &self,
        to: &str,
        email: &EmailPayload,
        delivery_id: &str,
    ) -> Result<(), String> {
        let message = build(&self.from, to, email, delivery_id)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| format!("the mail server refused or could not be reached: {err}"))
    }
}

/// The MIME message: multipart/alternative of the text and a multipart/related of the HTML
/// with its images.
fn build(
    from: &Mailbox,
    to: &str,
    email: &EmailPayload,
    delivery_id: &str,
) -> Result<Message, String> {
    let to: Mailbox = to
        .parse()
        .map_err(|err| format!("{to:?} is not an address: {err}"))?;
    let mut html = MultiPart::related().singlepart(SinglePart::html(email.html.clone()));
    for image in &email.images {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&image.base64)
            .map_err(|err| format!("image {} is not base64: {err}", image.cid))?;
        let kind = ContentType::parse(&image.content_type)
            .map_err(|err| format!("image {}: {err}", image.cid))?;
        html = html.singlepart(Attachment::new_inline(image.cid.clone()).body(bytes, kind));
    }
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{delivery_id}@heartbeat>")));
    if let Some(url) = &email.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(email.text.clone()))
                .multipart(html),
        )
        .map_err(|err| format!("the message cannot be built: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(valid_address("a@example.com"));
        for bad in ["", "a", "a@", "@b.com", "a b@c.com", "a@b@c"] {
            assert!(!valid_address(bad), "{bad}");
        }
    }

    #[test]
    fn message_has_both_parts_images_and_unsubscribe() {
        let email = EmailPayload {
            subject: "Weekly report".into(),
            text: "plain part".into(),
            html: "<p>html part <img src=\"cid:chart\"></p>".into(),
            images: vec![InlineImage {
                cid: "chart".into(),
                content_type: "image/png".into(),
                base64: base64::engine::general_purpose::STANDARD.encode([137u8, 80, 78, 71]),
            }],
            unsubscribe_url: Some(
                "https://stats.example.com/api/reports/unsubscribe?token=t".into(),
            ),
        };
        let from: Mailbox = "Heartbeat <hb@example.com>".parse().unwrap();
        let message = build(&from, "you@example.com", &email, "dl_1").unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        for part in [
            "multipart/alternative",
            "multipart/related",
            "text/plain",
            "text/html",
            "image/png",
            "Content-ID: <chart>",
            "List-Unsubscribe: <https://stats.example.com/api/reports/unsubscribe?token=t>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ] {
            assert!(text.contains(part), "{part} missing in\n{text}");
        }
    }
}
