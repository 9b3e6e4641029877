// The dashboard's only door to the server: the key kept in this browser, the Stats API v2
// query (`POST /api/v2/query`), funnels, retention and paths, the site list, recent events and
// the live WebSocket.

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
  ) {
    super(message);
  }
}

/// The JSON body of a successful answer; the error shape's first detail (or its error)
/// as an `ApiError` otherwise.
async function answer<T>(response: Response): Promise<T> {
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = json?.details?.[0];
    const message = detail ? `${json.error}: ${detail.field}: ${detail.message}` : json?.error;
    throw new ApiError(response.status, message || `HTTP ${response.status}`);
  }
  return json as T;
}

async function call<T>(token: string, path: string, body?: unknown, method?: "DELETE"): Promise<T> {
  const response = await fetch(path, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answer<T>(response);
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
