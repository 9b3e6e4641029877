//! Posting to a webhook: the body as queued, signed with the webhook's secret
//! (HMAC-SHA256 of `{timestamp}.{body}`, in `x-heartbeat-signature: sha256=<hex>`, with the
//! timestamp in `x-heartbeat-timestamp` so a receiver can refuse replays), the delivery's
//! id in `x-heartbeat-delivery` so a receiver can drop a repeat. No redirects are followed
//! and every address is checked ([`super::target`]).

use std::time::Duration;

use heartbeat_model::Webhook;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::target::{check_url, GuardedResolver};

/// How a post failed.
#[derive(Debug)]
pub enum PostError {
    /// Worth trying again later: no answer, a timeout, a 5xx, 408 or 429.
    Retry(String),
    /// The receiver refused the message itself (another 4xx) or the URL may not be used.
    Permanent(String),
}

/// The signature of `body` posted at `timestamp_s` with `secret`: hex HMAC-SHA256 of
/// `{timestamp_s}.{body}`.
pub fn signature(secret: &str, timestamp_s: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub struct WebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl WebhookSender {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::shared(allow_private))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("Heartbeat-Webhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(WebhookSender {
            client,
            allow_private,
        })
    }

    /// Posts `body` to `hook`; a 2xx is delivered.
    pub async fn post(
        &self,
        hook: &Webhook,
        delivery_id: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<(), PostError> {
        let url = check_url(&hook.url, self.allow_private).map_err(PostError::Permanent)?;
        let timestamp = now_ms.div_euclid(1000);
        let answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-heartbeat-delivery", delivery_id)
            .header("x-heartbeat-timestamp", timestamp.to_string())
            .header(
                "x-heartbeat-signature",
                format!("sha256={}", signature(&hook.secret, timestamp, body)),
            )
            .body(body.to_owned())
            .send()
            .await
            .map_err(|err| PostError::Retry(describe(&err)))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("the receiver answered {status}");
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(PostError::Retry(message))
        } else {
            Err(PostError::Permanent(message))
        }
    }
}

/// A transport error with its causes, which reqwest keeps in its source chain.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, r#"{"a":1}"#),
            "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }
}
