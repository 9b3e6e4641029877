// The dashboard's only door to the server: the key kept in this browser, the Stats API v2
// query (`POST /api/v2/query`), funnels, retention and paths, alerts with their history,
// webhooks and email reports, the chart's annotations, the site list, recent events and the
// live WebSocket.

const TOKEN_KEY = "heartbeat_token";

export function savedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** What the server said of each field it refused (`name`, `condition.threshold`, ...). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The error shape's details by field: a list of `{field, message}` (what the server sends) or
 * an object of field to message; the first message of a field wins.
 */
function fieldErrors(details: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  const add = (field: unknown, message: unknown) => {
    if (typeof field === "string" && !(field in fields)) fields[field] = String(message ?? "");
  };
  if (Array.isArray(details)) for (const d of details) add(d?.field, d?.message);
  else if (details && typeof details === "object") for (const [field, message] of Object.entries(details)) add(field, message);
  return fields;
}

/// The JSON body of a successful answer; the error shape's first detail (or its error)
/// as an `ApiError` otherwise, with every detail by field.
async function answer<T>(response: Response): Promise<T> {
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const fields = fieldErrors(json?.details);
    const first = Object.entries(fields)[0];
    const message = first ? `${json.error}: ${first[0]}: ${first[1]}` : json?.error;
    throw new ApiError(response.status, message || `HTTP ${response.status}`, fields);
  }
  return json as T;
}

/** Tries of a request the server refused for a moment (a 429 or 503 with `Retry-After`). */
const TRIES = 5;
/** The longest wait before trying again, whatever `Retry-After` asks. */
const MAX_RETRY_WAIT_MS = 5_000;

/// The wait before sending a refused request again, or null when the refusal is no passing
/// one: only 429 (a rate limit) and 503 (queries busy, the queue full) with `Retry-After`
/// say the request was not carried out and may simply be sent again. The wait is the one
/// asked (at most 5 s) plus up to as much again at random, so the panels refused together
/// do not all come back at the same instant and crowd each other out again.
function retryWait(response: Response): number | null {
  if (response.status !== 429 && response.status !== 503) return null;
  const header = response.headers.get("Retry-After");
  const seconds = Number(header);
  if (header === null || !Number.isFinite(seconds) || seconds < 0) return null;
  const asked = Math.min(seconds * 1000, MAX_RETRY_WAIT_MS);
  return asked * (1 + Math.random());
}

async function call<T>(token: string, path: string, body?: unknown, method?: "PUT" | "DELETE"): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(path, {
      method: method ?? (body === undefined ? "GET" : "POST"),
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const wait = attempt < TRIES ? retryWait(response) : null;
    if (wait === null) return answer<T>(response);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/// Posts `body` without credentials and returns the answer's `token`.
async function tokenFor(path: string, body: unknown): Promise<string> {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await answer<{ token: string }>(response)).token;
}

/// Signs in with an account (or, on first run, creates the owner's) and returns the session
/// token, which the dashboard then sends as a bearer token like a key.
export function signInWithPassword(email: string, password: string, firstRun: boolean): Promise<string> {
  return tokenFor(firstRun ? "/api/auth/setup" : "/api/auth/login", { email, password });
}

/// Whether no account exists yet: `GET /api/auth/me` says so in its 401.
export async function needsSetup(): Promise<boolean> {
  const response = await fetch("/api/auth/me");
  if (response.status !== 401) return false;
  const json = await response.json().catch(() => ({}));
  return (json?.details ?? []).some((d: { field?: string }) => d.field === "setup");
}

/// Exchanges a password-protected public link's token and its password for a read token.
export function unlockShare(token: string, password: string): Promise<string> {
  return tokenFor("/api/share/unlock", { token, password });
}

/// Ends a session token's session on the server; keys are left alone.
export async function signOutSession(token: string): Promise<void> {
  if (!token.startsWith("hbs_")) return;
  await fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
}

export interface Site {
  site_id: string;
  name: string;
  domain: string;
  timezone: string;
}

export function listSites(token: string): Promise<Site[]> {
  return call<{ sites: Site[] }>(token, "/api/sites").then((r) => r.sites);
}

/** One filter of Plausible's v2 query: `["is", "visit:browser", ["Chrome"]]`. */
export type Filter = [string, string, string[]];

export interface QueryRequest {
  site_id: string;
  metrics: string[];
  date_range: string | [string, string];
  dimensions?: string[];
  filters?: Filter[];
  order_by?: [string, "asc" | "desc"][];
  pagination?: { limit: number; offset?: number };
  include?: { comparisons?: { mode: "previous_period" }; time_labels?: boolean; total_rows?: boolean; imports?: boolean };
}

export interface ResultRow {
  metrics: (number | null)[];
  dimensions: string[];
  comparison?: { metrics: (number | null)[]; change: (number | null)[] };
}

export interface QueryResponse {
  results: ResultRow[];
  meta: { time_labels?: string[]; imports_included?: boolean; imports_skip_reason?: string };
}

export function query(token: string, request: QueryRequest): Promise<QueryResponse> {
  return call<QueryResponse>(token, "/api/v2/query", request);
}

/** One import of statistics from another product (a Plausible export). */
export interface SiteImport {
  id: number;
  source: string;
  start_date: string;
  end_date: string;
}

export function listImports(token: string, site: string): Promise<SiteImport[]> {
  const params = new URLSearchParams({ site_id: site });
  return call<{ imports: SiteImport[] }>(token, `/api/imports?${params}`).then((r) => r.imports);
}

/** An event as `/analytics/recent` lists it. */
export interface RecentEvent {
  event_type: string;
  page_url: string;
  timestamp: string;
  metadata: Record<string, string>;
  country: string;
  browser: string;
  device: string;
}

export function recentEvents(token: string, site: string, limit: number): Promise<RecentEvent[]> {
  const params = new URLSearchParams({ site_id: site, limit: String(limit) });
  return call<RecentEvent[]>(token, `/analytics/recent?${params}`);
}

/** An event as the live stream sends it. */
export interface LiveEvent {
  name: string;
  timestamp: string;
  pathname: string;
  props: Record<string, string>;
  country: string;
  browser: string;
  device: string;
}

export type LiveMessage =
  | { type: "visitors"; current_visitors: number }
  | { type: "event"; event: LiveEvent }
  | { type: "resync"; missed_batches: number };

/**
 * Keeps a live stream of `site` open, reconnecting after a drop, until the returned
 * function is called.
 */
export function openLive(
  token: string,
  site: string,
  onMessage: (message: LiveMessage) => void,
  onState: (connected: boolean) => void,
): () => void {
  let socket: WebSocket | undefined;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ site_id: site, token });
    socket = new WebSocket(`${scheme}://${location.host}/api/live?${params}`);
    socket.onopen = () => onState(true);
    socket.onmessage = (event) => onMessage(JSON.parse(event.data) as LiveMessage);
    socket.onclose = () => {
      onState(false);
      if (!stopped) retry = setTimeout(connect, 3000);
    };
  };
  connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    socket?.close();
  };
}

/** One step of a funnel: a page pattern or an event name, with optional property matches. */
export interface FunnelStep {
  page?: string;
  event?: string;
  props?: Record<string, string>;
  label?: string;
}

/** Every step in one visit, or within `seconds` of the first step. */
export type FunnelWindow = { visit: true } | { seconds: number };

export type FunnelOrder = "ordered" | "strict" | "any";

/** A site's saved funnel. */
export interface SavedFunnel {
  funnel_id: string;
  name: string;
  steps: FunnelStep[];
  window: FunnelWindow;
  order: FunnelOrder;
  created_at: string;
}

export function listFunnels(token: string, site: string): Promise<SavedFunnel[]> {
  return call<{ funnels: SavedFunnel[] }>(token, `/api/sites/${encodeURIComponent(site)}/funnels`).then((r) => r.funnels);
}

export function createFunnel(
  token: string,
  site: string,
  funnel: { name: string; steps: FunnelStep[]; window: FunnelWindow; order: FunnelOrder },
): Promise<SavedFunnel> {
  return call<{ funnel: SavedFunnel }>(token, `/api/sites/${encodeURIComponent(site)}/funnels`, funnel).then(
    (r) => r.funnel,
  );
}

export async function deleteFunnel(token: string, site: string, funnelId: string): Promise<void> {
  await call(token, `/api/sites/${encodeURIComponent(site)}/funnels/${encodeURIComponent(funnelId)}`, undefined, "DELETE");
}

/** One step of a funnel's answer; the last step's `converted`, `dropoff` and times are null. */
export interface FunnelStepResult {
  step: number;
  name: string;
  visitors: number;
  converted: number | null;
  dropoff: number | null;
  dropoff_percentage: number | null;
  conversion_rate: number;
  conversion_rate_step: number;
  median_seconds_to_next: number | null;
  p90_seconds_to_next: number | null;
}

export interface FunnelResponse {
  results: { breakdown?: string | null; steps: FunnelStepResult[] }[];
  meta: { breakdown?: string | null; [key: string]: unknown };
}

export function runFunnel(
  token: string,
  request: { site_id: string; date_range: string | [string, string]; filters: Filter[]; funnel_id: string; breakdown?: string },
): Promise<FunnelResponse> {
  return call<FunnelResponse>(token, "/api/v2/funnel", request);
}

export interface RetentionRequest {
  site_id: string;
  date_range: string | [string, string];
  filters: Filter[];
  period: "day" | "week" | "month";
  periods: number;
  cohort_event?: string;
  return_event?: string;
}

/** One cohort: `returning[i]` people came back in period `i` (null: not started yet). */
export interface RetentionCohort {
  cohort: string;
  size: number;
  returning: (number | null)[];
  percentages: (number | null)[];
}

export interface RetentionResponse {
  period: string;
  periods: number;
  cohort_event: string | null;
  return_event: string | null;
  cohorts: RetentionCohort[];
}

export function retention(token: string, request: RetentionRequest): Promise<RetentionResponse> {
  return call<RetentionResponse>(token, "/api/v2/retention", request);
}

export interface PathsRequest {
  site_id: string;
  date_range: string | [string, string];
  filters: Filter[];
  page?: string;
  direction: "forward" | "backward";
  depth: number;
  limit: number;
}

export interface PathsResponse {
  direction: string;
  depth: number;
  nodes: { step: number; name: string; visitors: number; dropoffs: number }[];
  edges: { step: number; from: string; to: string; visitors: number }[];
  paths: { pages: string[]; visitors: number }[];
}

export function paths(token: string, request: PathsRequest): Promise<PathsResponse> {
  return call<PathsResponse>(token, "/api/v2/paths", request);
}

/** `/api/sites/{site}/...`: the path of one of a site's resources. */
function sitePath(site: string, ...parts: string[]): string {
  return ["/api/sites", site, ...parts].map((p, i) => (i ? encodeURIComponent(p) : p)).join("/");
}

/** When an alert rule fires. */
export type AlertCondition =
  | { type: "above"; threshold: number }
  | { type: "below"; threshold: number }
  | { type: "anomaly"; direction: "up" | "down" | "both"; sensitivity: number; weeks: number }
  | { type: "no_events" };

/** What `POST` and `PUT /api/sites/{site}/alerts` take. */
export interface AlertRuleInput {
  name: string;
  /** A v2 metric: `visitors`, `pageviews`, `conversion_rate` (under a goal filter), ... */
  metric: string;
  filters?: Filter[];
  window_minutes: number;
  condition: AlertCondition;
  cooldown_minutes?: number;
  webhook_ids?: string[];
  emails?: string[];
  enabled?: boolean;
}

/** A site's alert rule with its last evaluation. */
export interface AlertRule extends Required<AlertRuleInput> {
  alert_id: string;
  site_id: string;
  created_at: string;
  state: "ok" | "firing";
  last_value: number | null;
  last_evaluated_at: string | null;
}

/** One firing of a rule; `resolved_at` is null while it fires. */
export interface AlertHistoryEvent {
  event_id: string;
  alert_id: string;
  /** Null once the rule is deleted (its history stays). */
  alert_name: string | null;
  fired_at: string;
  resolved_at: string | null;
  value: number;
  expected: number;
  message: string;
}

export function listAlerts(token: string, site: string): Promise<AlertRule[]> {
  return call<{ alerts: AlertRule[] }>(token, sitePath(site, "alerts")).then((r) => r.alerts);
}

export function createAlert(token: string, site: string, rule: AlertRuleInput): Promise<AlertRule> {
  return call<{ alert: AlertRule }>(token, sitePath(site, "alerts"), rule).then((r) => r.alert);
}

export function updateAlert(token: string, site: string, alertId: string, rule: AlertRuleInput): Promise<AlertRule> {
  return call<{ alert: AlertRule }>(token, sitePath(site, "alerts", alertId), rule, "PUT").then((r) => r.alert);
}

export async function deleteAlert(token: string, site: string, alertId: string): Promise<void> {
  await call(token, sitePath(site, "alerts", alertId), undefined, "DELETE");
}

/** The site's firings, newest first. */
export function alertHistory(token: string, site: string, limit = 50): Promise<AlertHistoryEvent[]> {
  const params = new URLSearchParams({ limit: String(limit) });
  return call<{ history: AlertHistoryEvent[] }>(token, `${sitePath(site, "alerts", "history")}?${params}`).then((r) => r.history);
}

/** Where alert notices are posted; the signing `secret` only in the answer that creates it. */
export interface Webhook {
  webhook_id: string;
  site_id: string;
  url: string;
  format: "json" | "slack";
  created_at: string;
  secret?: string;
}

export function listWebhooks(token: string, site: string): Promise<Webhook[]> {
  return call<{ webhooks: Webhook[] }>(token, sitePath(site, "webhooks")).then((r) => r.webhooks);
}

export function createWebhook(token: string, site: string, webhook: { url: string; format: Webhook["format"] }): Promise<Webhook> {
  return call<{ webhook: Webhook }>(token, sitePath(site, "webhooks"), webhook).then((r) => r.webhook);
}

export async function deleteWebhook(token: string, site: string, webhookId: string): Promise<void> {
  await call(token, sitePath(site, "webhooks", webhookId), undefined, "DELETE");
}

/** A recipient of the site's weekly or monthly report by email. */
export interface EmailReport {
  report_id: string;
  email: string;
  period: "weekly" | "monthly";
  created_at: string;
  /** The first day of the last period sent (null: none yet). */
  last_sent_period: string | null;
}

export function listReports(token: string, site: string): Promise<EmailReport[]> {
  return call<{ reports: EmailReport[] }>(token, sitePath(site, "reports")).then((r) => r.reports);
}

export function createReport(token: string, site: string, report: { email: string; period: EmailReport["period"] }): Promise<EmailReport> {
  return call<{ report: EmailReport }>(token, sitePath(site, "reports"), report).then((r) => r.report);
}

export async function deleteReport(token: string, site: string, reportId: string): Promise<void> {
  await call(token, sitePath(site, "reports", reportId), undefined, "DELETE");
}

/** Sends the last complete period's report to its recipient now. */
export async function sendReport(token: string, site: string, reportId: string): Promise<void> {
  await call(token, sitePath(site, "reports", reportId, "send"), {});
}

/** A dated note on the site's chart: written by someone, or a fired alert. */
export interface Annotation {
  annotation_id: string;
  site_id: string;
  /** The instant it marks (ISO date-time, UTC). */
  at: string;
  text: string;
  kind: "note" | "alert";
  alert_event_id: string | null;
  created_at: string;
}

/** The site's annotations from `from` to `to` (dates, both included; either may be left out). */
export function listAnnotations(token: string, site: string, range: { from?: string; to?: string } = {}): Promise<Annotation[]> {
  const params = new URLSearchParams();
  if (range.from) params.set("from", range.from);
  if (range.to) params.set("to", range.to);
  const search = params.toString() ? `?${params}` : "";
  return call<{ annotations: Annotation[] }>(token, `${sitePath(site, "annotations")}${search}`).then((r) => r.annotations);
}

/** `at`: an ISO date-time, or a date (`YYYY-MM-DD`). */
export function createAnnotation(token: string, site: string, annotation: { at: string; text: string }): Promise<Annotation> {
  return call<{ annotation: Annotation }>(token, sitePath(site, "annotations"), annotation).then((r) => r.annotation);
}

export function updateAnnotation(token: string, site: string, annotationId: string, annotation: { at: string; text: string }): Promise<Annotation> {
  return call<{ annotation: Annotation }>(token, sitePath(site, "annotations", annotationId), annotation, "PUT").then(
    (r) => r.annotation,
  );
}

export async function deleteAnnotation(token: string, site: string, annotationId: string): Promise<void> {
  await call(token, sitePath(site, "annotations", annotationId), undefined, "DELETE");
}
