//! The API's own documentation: the OpenAPI 3 document, gathered from the routes
//! themselves (each area registers its handlers with `utoipa_axum::routes!`, which adds their
//! `#[utoipa::path]` operations), served at `GET /api-docs/openapi.json` with the Swagger UI
//! (`GET /api-docs`), whose files are vendored in the `utoipa-swagger-ui` crate, so the page
//! works offline and nothing is fetched from a CDN. Body schemas are in `http/schema.rs`.

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::http::state::App;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("hb_session"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Heartbeat",
        description = "Self-hosted real-time web and product analytics. Errors always have the \
            shape `{\"success\": false, \"error\": ..., \"details\": [{\"field\", \"message\"}]}`. \
            Keys go in `x-api-key` or `Authorization: Bearer`; dashboard sessions in the \
            `hb_session` cookie or `Authorization: Bearer`. Rate-limited requests get 429 with \
            `Retry-After`. Reads (statistics, event lists, exports) are bounded, by default: \
            a date range of at most 36,525 days and at most 10,000 time buckets (400 beyond, \
            naming the parameter and the limit), at most 10,000 rows per answer and 1,000 per \
            page of events, 64 MiB of rows per statement (400), 10 s per read (503 with \
            `Retry-After`, the query is stopped), 4 reads at once and 64 waiting (503 with \
            `Retry-After`); the settings `query.*` change them.",
        license(name = "AGPL-3.0-only")
    ),
    components(schemas(
        crate::http::schema::ErrorBody,
        crate::http::schema::FieldErrorBody,
        crate::http::schema::AcceptedBody,
        crate::http::schema::AlertNotice
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ingest", description = "Send events; 202 once they are durable"),
        (name = "stats", description = "Query statistics"),
        (name = "sites", description = "Sites and their public links"),
        (name = "alerts", description = "Alert rules, webhooks, deliveries, scheduled reports and annotations"),
        (name = "accounts", description = "Users, sessions, organisations and API keys"),
        (name = "operations", description = "Health, metrics, data in and out"),
        (name = "web", description = "The dashboard and the tracker, embedded in the binary"),
    )
)]
pub struct ApiDoc;

/// The document's frame (title, description, security schemes, tags): every route adds its
/// own operation where it is registered (`utoipa_axum::routes!`), so no file lists them all.
pub fn frame() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api-docs/openapi.json` (the document gathered from the routes) and the Swagger UI
/// at `GET /api-docs`.
pub fn router(document: utoipa::openapi::OpenApi) -> Router<App> {
    SwaggerUi::new("/api-docs")
        .url("/api-docs/openapi.json", document)
        .into()
}
