//! Ingest: decode a payload, validate it, enrich it and append it to the durable queue.
//!
//! `decode` turns each wire format into [`RawEvent`]s; [`Ingestor::prepare`] resolves the
//! site, checks the key, validates and enriches them into [`Event`]s, all or nothing;
//! [`Ingestor::accept`] appends them as one record to the queue and returns once that record
//! is durable. The request path ends there: it never waits on the event store.

pub mod decode;
pub mod enrich;
mod raw;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use heartbeat_model::{encode_batch, Event, Site, SiteId, VisitAttributes};
use heartbeat_queue::{EventQueue, QueueError};

pub use decode::{DecodeError, Decoded};
pub use raw::{canonical_name, RawEvent, SiteRef};

use enrich::{page, referrer, salt::Salts, visitor};

/// One problem with one field of a request, in the API's error shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    #[error("no site matches {field}")]
    UnknownSite { field: String, value: String },
    #[error("this format needs an API key")]
    MissingKey,
    #[error("the API key may not send events for site {site}")]
    Forbidden { site: SiteId },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Lookup of sites by domain and id, kept in memory by the server.
pub trait SiteDirectory: Send + Sync {
    fn by_domain(&self, domain: &str) -> Option<Site>;
    fn by_id(&self, id: &SiteId) -> Option<Site>;
}

/// What the server learned about the sender of a request.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address: the socket peer, or a trusted proxy's forwarded address.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// An authenticated API key: the site it belongs to, or `None` for an admin key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub site_id: Option<SiteId>,
}

impl KeyGrant {
    fn allows(&self, site: &SiteId) -> bool {
        self.site_id.as_ref().is_none_or(|own| own == site)
    }
}

/// Limits on event timestamps sent by clients.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// How far in the past a client-given timestamp may be.
    pub max_event_age_ms: i64,
    /// How far in the future (clock skew) a client-given timestamp may be.
    pub max_event_lead_ms: i64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_event_age_ms: 5 * 365 * 86_400_000,
            max_event_lead_ms: 3_600_000,
        }
    }
}

pub struct Ingestor {
    sites: Arc<dyn SiteDirectory>,
    queue: Arc<dyn EventQueue>,
    salts: Salts,
    config: IngestConfig,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Ingestor {
    pub fn new(
        sites: Arc<dyn SiteDirectory>,
        queue: Arc<dyn EventQueue>,
        data_dir: &Path,
        config: IngestConfig,
    ) -> std::io::Result<Self> {
        Ok(Ingestor {
            sites,
            queue,
            salts: Salts::open(data_dir, now_ms())?,
            config,
        })
    }

    /// Validates and enriches `decoded`, appends it to the queue as one record and returns
    /// the number of events once that record is durable.
    pub async fn accept(
        &self,
        decoded: Decoded,
        client: &ClientInfo,
        key: Option<&KeyGrant>,
    ) -> Result<usize, IngestError> {
        let events = self.prepare(decoded, client, key, now_ms())?;
        let record = encode_batch(&events).map_err(|err| {
            IngestError::Invalid(vec![FieldError::new(
                "body",
                format!("cannot encode: {err}"),
            )])
        })?;
        self.queue.append(record).await?;
        Ok(events.len())
    }

    /// Everything `accept` does before the queue, at time `now_ms`: all events or an error.
    pub fn prepare(
        &self,
        decoded: Decoded,
        client: &ClientInfo,
        key: Option<&KeyGrant>,
        now_ms: i64,
    ) -> Result<Vec<Event>, IngestError> {
        if decoded.needs_key && key.is_none() {
            return Err(IngestError::MissingKey);
        }
        let user_agent = client.user_agent.as_deref().unwrap_or("");
        if !decoded.needs_key && user_agent.is_empty() {
            return Err(IngestError::Invalid(vec![FieldError::new(
                "User-Agent",
                "a User-Agent header is required",
            )]));
        }
        let batch = decoded.events.len() > 1;
        let (salt, _) = self.salts.for_time(now_ms);
        let mut events = Vec::with_capacity(decoded.events.len());
        let mut errors = Vec::new();
        for (index, raw) in decoded.events.into_iter().enumerate() {
            let prefix = if batch {
                format!("[{index}].")
            } else {
                String::new()
            };
            let site = self.resolve_site(raw.site.as_ref(), key)?;
            match self.enrich(raw, &site, client, &salt, now_ms, &prefix) {
                Ok(event) => events.push(event),
                Err(item_errors) => errors.extend(item_errors),
            }
        }
        if errors.is_empty() {
            Ok(events)
        } else {
            Err(IngestError::Invalid(errors))
        }
    }

    fn resolve_site(
        &self,
        site: Option<&SiteRef>,
        key: Option<&KeyGrant>,
    ) -> Result<Site, IngestError> {
        match site {
            Some(SiteRef::Domain(domain)) => self
                .sites
                .by_domain(&page::normalize_host(domain))
                .ok_or_else(|| IngestError::UnknownSite {
                    field: "domain".into(),
                    value: domain.clone(),
                }),
            Some(SiteRef::Id(id)) => {
                let site = self
                    .sites
                    .by_id(id)
                    .ok_or_else(|| IngestError::UnknownSite {
                        field: "site_id".into(),
                        value: id.0.clone(),
                    })?;
                match key {
                    Some(grant) if grant.allows(&site.id) => Ok(site),
                    Some(_) => Err(IngestError::Forbidden { site: site.id }),
                    None => Err(IngestError::MissingKey),
                }
            }
            Some(SiteRef::Key) | None => match key {
                Some(KeyGrant { site_id: Some(id) }) => {
                    self.sites
                        .by_id(id)
                        .ok_or_else(|| IngestError::UnknownSite {
                            field: "site_id".into(),
                            value: id.0.clone(),
                        })
                }
                Some(KeyGrant { site_id: None }) => {
                    Err(IngestError::Invalid(vec![FieldError::new(
                        "site_id",
                        "an admin key must name the site: use a site's key",
                    )]))
                }
                None => Err(IngestError::MissingKey),
            },
        }
    }

    fn enrich(
        &self,
        raw: RawEvent,
        site: &Site,
        client: &ClientInfo,
        salt: &enrich::salt::Salt,
        now_ms: i64,
        prefix: &str,
    ) -> Result<Event, Vec<FieldError>> {
        let mut errors = Vec::new();
        if raw.name.chars().count() > 120 {
            errors.push(FieldError::new(
                &format!("{prefix}name"),
                "at most 120 characters",
            ));
        }
        let timestamp_ms = raw.timestamp_ms.unwrap_or(now_ms);
        if timestamp_ms < now_ms - self.config.max_event_age_ms {
            errors.push(FieldError::new(
                &format!("{prefix}timestamp"),
                "is too far in the past",
            ));
        } else if timestamp_ms > now_ms + self.config.max_event_lead_ms {
            errors.push(FieldError::new(
                &format!("{prefix}timestamp"),
                "is in the future",
            ));
        }
        let page = match page::parse_page(
            raw.url.as_deref().unwrap_or("/"),
            &site.domain,
            raw.hash_mode,
        ) {
            Ok(page) => page,
            Err(message) => {
                errors.push(FieldError::new(&format!("{prefix}url"), message));
                page::Page::default()
            }
        };
        for (field, value) in [
            ("user_id", &raw.user_id),
            ("session_id", &raw.session_id),
            ("event_id", &raw.event_id),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 256) {
                errors.push(FieldError::new(
                    &format!("{prefix}{field}"),
                    "at most 256 characters",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let referral = referrer::classify(raw.referrer.as_deref(), &page);
        let user_agent = client.user_agent.as_deref().unwrap_or("");
        let visitor_id = match &raw.user_id {
            Some(user) => visitor::from_user_id(site.id.as_str(), user),
            None => visitor::anonymous(salt, site.id.as_str(), client.ip, user_agent),
        };
        let event_id_from_client = raw.event_id.is_some();
        Ok(Event {
            event_id: raw
                .event_id
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            event_id_from_client,
            site_id: site.id.clone(),
            name: raw.name,
            timestamp_ms,
            visitor_id,
            session_id: 0,
            user_id: raw.user_id,
            client_session_id: raw.session_id,
            hostname: page.hostname,
            pathname: page.pathname,
            visit: VisitAttributes {
                referrer: referral.referrer,
                referrer_source: referral.source,
                channel: referral.channel,
                utm_source: page.utm_source,
                utm_medium: page.utm_medium,
                utm_campaign: page.utm_campaign,
                utm_content: page.utm_content,
                utm_term: page.utm_term,
                ..VisitAttributes::default()
            },
            props: raw.props,
            revenue: raw.revenue,
            interactive: raw.interactive,
        })
    }
}
