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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use heartbeat_model::{encode_batch, partition_of, Event, Site, SiteId, VisitAttributes};
use heartbeat_queue::{EventQueue, QueueError};

pub use decode::{DecodeError, Decoded};
pub use raw::{canonical_name, FieldNames, RawEvent, SiteRef};

use enrich::geo::GeoIp;
use enrich::salt::{Salt, Salts};
use enrich::user_agent::{Agent, UserAgents};
use enrich::{bot::BotKind, page, referrer, site_rules, visitor};

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
    /// `field` is the request's field naming the site, as the client spelt it.
    #[error("the API key may not send events for site {site}")]
    Forbidden { site: SiteId, field: String },
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
    /// The browser sent `DNT: 1` or `Sec-GPC: 1`.
    pub do_not_track: bool,
}

/// Why an event was dropped instead of stored. Dropping is an expected outcome, not an
/// error: the client still gets 202 (so a bot learns nothing) and the reason is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A crawler, monitor or script user agent.
    Bot,
    /// A browser driven by a program.
    HeadlessBrowser,
    /// A browser format sent without a `User-Agent` header.
    MissingUserAgent,
    /// The referrer is a known spam domain.
    SpamReferrer,
    /// The site respects Do Not Track and the browser asked for it.
    DoNotTrack,
    /// The site's allowed hostnames do not include the event's.
    HostnameNotAllowed,
    /// The site excludes the event's path.
    ExcludedPath,
    /// The site excludes the client's address.
    ExcludedIp,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::Bot,
        DropReason::HeadlessBrowser,
        DropReason::MissingUserAgent,
        DropReason::SpamReferrer,
        DropReason::DoNotTrack,
        DropReason::HostnameNotAllowed,
        DropReason::ExcludedPath,
        DropReason::ExcludedIp,
    ];

    /// The reason's name in headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Bot => "bot",
            DropReason::HeadlessBrowser => "headless_browser",
            DropReason::MissingUserAgent => "missing_user_agent",
            DropReason::SpamReferrer => "spam_referrer",
            DropReason::DoNotTrack => "do_not_track",
            DropReason::HostnameNotAllowed => "hostname_not_allowed",
            DropReason::ExcludedPath => "excluded_path",
            DropReason::ExcludedIp => "excluded_ip",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

/// What became of a request's events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Events appended to the queue.
    pub accepted: usize,
    /// Events dropped, with the first reason.
    pub dropped: usize,
    pub reason: Option<DropReason>,
}

/// The events of a request that are to be stored, and the reasons the others were dropped.
#[derive(Debug, Default)]
pub struct Prepared {
    pub events: Vec<Event>,
    pub dropped: Vec<DropReason>,
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
    /// The queue's partitions: a visitor's events go to
    /// `queues[partition_of(visitor_id, queues.len())]`.
    queues: Vec<Arc<dyn EventQueue>>,
    salts: Salts,
    config: IngestConfig,
    agents: &'static UserAgents,
    geoip: Option<GeoIp>,
    /// Dropped events by `DropReason::index`.
    dropped: [AtomicU64; DropReason::ALL.len()],
}

/// The user agent and address enrichment works from, and whether the sender may be a bot.
struct Sender<'a> {
    /// The user agent for visitor ids (even a backend's own).
    user_agent: &'a str,
    ip: Option<IpAddr>,
    /// The parsed user agent when it describes the visitor.
    agent: Option<Arc<Agent>>,
}

impl Sender<'_> {
    fn bot(&self) -> Option<BotKind> {
        self.agent.as_ref().and_then(|agent| agent.bot)
    }
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
            queues: vec![queue],
            salts: Salts::open(data_dir, now_ms())?,
            config,
            agents: UserAgents::shared(),
            geoip: None,
            dropped: Default::default(),
        })
    }

    /// Spreads events over `partitions` by visitor ([`heartbeat_model::partition_of`]), so
    /// that one processor sessionizes each visitor; empty keeps the one queue.
    pub fn with_partitions(mut self, partitions: Vec<Arc<dyn EventQueue>>) -> Self {
        if !partitions.is_empty() {
            self.queues = partitions;
        }
        self
    }

    /// Takes visitor-id salts from the metadata store other ingest nodes share
    /// ([`Salts::shared`]), handed in through [`Ingestor::salts`], instead of this node's
    /// `salts.json`.
    pub fn with_shared_salts(mut self) -> Self {
        self.salts = Salts::shared(now_ms());
        self
    }

    /// The visitor-id salts, for the server to hand shared ones in.
    pub fn salts(&self) -> &Salts {
        &self.salts
    }

    /// Locates clients with `geoip`; without a database, location fields stay empty.
    pub fn with_geoip(mut self, geoip: GeoIp) -> Self {
        self.geoip = Some(geoip);
        self
    }

    /// Events dropped since start, by reason.
    pub fn dropped_counts(&self) -> Vec<(DropReason, u64)> {
        DropReason::ALL
            .iter()
            .map(|reason| {
                (
                    *reason,
                    self.dropped[reason.index()].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Validates and enriches `decoded`, appends it to the queue as one record (one per
    /// partition it has visitors in) and returns the number of events once every record is
    /// durable.
    pub async fn accept(
        &self,
        decoded: Decoded,
        client: &ClientInfo,
        key: Option<&KeyGrant>,
    ) -> Result<Outcome, IngestError> {
        let Prepared { events, dropped } = self.prepare(decoded, client, key, now_ms())?;
        for reason in &dropped {
            self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
        }
        let outcome = Outcome {
            accepted: events.len(),
            dropped: dropped.len(),
            reason: dropped.first().copied(),
        };
        if events.is_empty() {
            return Ok(outcome);
        }
        let encode = |events: &[Event]| {
            encode_batch(events).map_err(|err| {
                IngestError::Invalid(vec![FieldError::new(
                    "body",
                    format!("cannot encode: {err}"),
                )])
            })
        };
        if let [queue] = self.queues.as_slice() {
            queue.append(encode(&events)?).await?;
            return Ok(outcome);
        }
        let partitions = self.queues.len() as u32;
        let mut parts: Vec<Vec<Event>> = vec![Vec::new(); self.queues.len()];
        for event in events {
            parts[partition_of(event.visitor_id, partitions) as usize].push(event);
        }
        let mut appends = Vec::new();
        for (queue, part) in self.queues.iter().zip(parts) {
            if !part.is_empty() {
                appends.push(queue.append(encode(&part)?));
            }
        }
        for appended in futures_util::future::join_all(appends).await {
            appended?;
        }
        Ok(outcome)
    }

    /// Everything `accept` does before the queue, at time `now_ms`: the events to store and
    /// the reasons for those dropped, or an error for the whole request.
    pub fn prepare(
        &self,
        decoded: Decoded,
        client: &ClientInfo,
        key: Option<&KeyGrant>,
        now_ms: i64,
    ) -> Result<Prepared, IngestError> {
        if decoded.needs_key && key.is_none() {
            return Err(IngestError::MissingKey);
        }
        // Browser formats come straight from the visitor; keyed formats from a backend.
        let from_browser = !decoded.needs_key;
        let salts = self.salts.for_time(now_ms);
        let mut prepared = Prepared::default();
        let mut errors = Vec::new();
        for mut raw in decoded.events {
            let site = self.resolve_site(raw.site.as_ref(), &raw.names, key)?;
            let forwarded_user_agent = raw.user_agent.take();
            let sender = self.sender(
                forwarded_user_agent.as_deref(),
                raw.client_ip,
                client,
                from_browser,
            );
            let request_drop = match sender.bot() {
                _ if from_browser && sender.user_agent.is_empty() => {
                    Some(DropReason::MissingUserAgent)
                }
                Some(BotKind::Headless) => Some(DropReason::HeadlessBrowser),
                Some(BotKind::Crawler) => Some(DropReason::Bot),
                None if from_browser && client.do_not_track && site.rules.respect_do_not_track => {
                    Some(DropReason::DoNotTrack)
                }
                None => None,
            };
            if let Some(reason) = request_drop {
                prepared.dropped.push(reason);
                continue;
            }
            match self.enrich(raw, &site, &sender, salts, now_ms) {
                Ok(Enriched::Event(event)) => prepared.events.push(*event),
                Ok(Enriched::Dropped(reason)) => prepared.dropped.push(reason),
                Err(item_errors) => errors.extend(item_errors),
            }
        }
        if errors.is_empty() {
            Ok(prepared)
        } else {
            Err(IngestError::Invalid(errors))
        }
    }

    /// Who the visitor is as far as enrichment goes. A backend may forward its visitor's
    /// user agent and address in the payload; otherwise the request's own are used, but a
    /// keyed request's own user agent is the backend's HTTP client (curl, python-requests),
    /// so it neither describes a device nor marks a bot.
    fn sender<'a>(
        &self,
        forwarded_user_agent: Option<&'a str>,
        forwarded_ip: Option<IpAddr>,
        client: &'a ClientInfo,
        from_browser: bool,
    ) -> Sender<'a> {
        let user_agent = forwarded_user_agent
            .or(client.user_agent.as_deref())
            .unwrap_or("");
        let describes_visitor = from_browser || forwarded_user_agent.is_some();
        let agent =
            (describes_visitor && !user_agent.is_empty()).then(|| self.agents.parse(user_agent));
        Sender {
            user_agent,
            ip: forwarded_ip.or(client.ip),
            agent,
        }
    }

    /// The site an event names (its domain or id, under the client's field `names.site`), or
    /// else the key's own; a key of one site may not name another (403).
    fn resolve_site(
        &self,
        site: Option<&SiteRef>,
        names: &FieldNames,
        key: Option<&KeyGrant>,
    ) -> Result<Site, IngestError> {
        match site {
            Some(SiteRef::Domain(domain)) => self
                .sites
                .by_domain(&page::normalize_host(domain))
                .ok_or_else(|| IngestError::UnknownSite {
                    field: names.at(names.site),
                    value: domain.clone(),
                }),
            Some(SiteRef::Id(id)) => {
                let site = self
                    .sites
                    .by_id(id)
                    .ok_or_else(|| IngestError::UnknownSite {
                        field: names.at(names.site),
                        value: id.0.clone(),
                    })?;
                match key {
                    Some(grant) if grant.allows(&site.id) => Ok(site),
                    Some(_) => Err(IngestError::Forbidden {
                        site: site.id,
                        field: names.at(names.site),
                    }),
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
                        &names.at(names.site),
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
        sender: &Sender,
        (salt, previous_salt): (Salt, Salt),
        now_ms: i64,
    ) -> Result<Enriched, Vec<FieldError>> {
        let names = &raw.names;
        let mut errors = Vec::new();
        if raw.name.chars().count() > 120 {
            errors.push(FieldError::new(
                &names.at(names.name),
                "at most 120 characters",
            ));
        }
        let timestamp_ms = raw.timestamp_ms.unwrap_or(now_ms);
        if timestamp_ms < now_ms - self.config.max_event_age_ms {
            errors.push(FieldError::new(
                &names.at(names.timestamp),
                "is too far in the past",
            ));
        } else if timestamp_ms > now_ms + self.config.max_event_lead_ms {
            errors.push(FieldError::new(
                &names.at(names.timestamp),
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
                errors.push(FieldError::new(&names.at(names.url), message));
                page::Page::default()
            }
        };
        for (field, value) in [
            (names.user_id, &raw.user_id),
            (names.session_id, &raw.session_id),
            (names.event_id, &raw.event_id),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 256) {
                errors.push(FieldError::new(&names.at(field), "at most 256 characters"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Some(reason) =
            site_rules::check(&site.rules, &page.hostname, &page.pathname, sender.ip)
        {
            return Ok(Enriched::Dropped(reason));
        }
        let referral = referrer::classify(raw.referrer.as_deref(), &page);
        if referral.spam {
            return Ok(Enriched::Dropped(DropReason::SpamReferrer));
        }
        let (visitor_id, previous_visitor_id) = match &raw.user_id {
            Some(user) => (visitor::from_user_id(site.id.as_str(), user), None),
            None => {
                let id =
                    |salt| visitor::anonymous(salt, site.id.as_str(), sender.ip, sender.user_agent);
                (id(&salt), Some(id(&previous_salt)))
            }
        };
        let location = match (&self.geoip, sender.ip) {
            (Some(geoip), Some(ip)) => geoip.locate(ip),
            _ => Default::default(),
        };
        let agent = sender.agent.as_deref().cloned().unwrap_or_default();
        let event_id_from_client = raw.event_id.is_some();
        Ok(Enriched::Event(Box::new(Event {
            event_id: raw
                .event_id
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            event_id_from_client,
            site_id: site.id.clone(),
            name: raw.name,
            timestamp_ms,
            visitor_id,
            previous_visitor_id,
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
                country: location.country,
                region: location.region,
                city: location.city,
                browser: agent.browser,
                browser_version: agent.browser_version,
                os: agent.os,
                os_version: agent.os_version,
                device: agent.device,
                screen: raw
                    .screen
                    .map(|s| s.chars().take(32).collect())
                    .unwrap_or_default(),
            },
            props: raw.props,
            revenue: raw.revenue,
            interactive: raw.interactive,
            scroll_depth: raw.scroll_depth,
            engagement_time_ms: raw.engagement_time_ms,
        })))
    }
}

/// One raw event after enrichment: an event to store, or why it is dropped.
enum Enriched {
    Event(Box<Event>),
    Dropped(DropReason),
}
