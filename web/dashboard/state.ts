// The dashboard's view state, kept in the URL's query string so that a view can be shared
// and the back button works: `?site=example.com&period=7d&f=visit:browser|Chrome`.
// `period` is a v2 preset or `custom` with `from` and `to` (ISO dates); each `f` is one
// "is" filter, dimension and value separated by the first `|`. `imports=0` leaves a site's
// imported statistics (a Plausible export) out of every figure; they are in by default.
// `view` picks the product views (`funnels`, `retention`, `paths`, `alerts`; none: the
// overview), each with its own parameters, written only while it is shown: `funnel` (a saved
// funnel's id) and `breakdown`; `ret_period`, `ret_periods`, `cohort_event`, `return_event`;
// `path_page`, `path_dir` and `path_depth`. The alerts view has none: its rules, history,
// webhooks and reports are the site's.

import type { Filter } from "./api";

export interface ViewState {
  site: string | null;
  period: string;
  from: string;
  to: string;
  filters: [string, string][];
  /** Whether figures include the site's imported statistics (when it has any). */
  imports: boolean;
  view: View;
  /** The saved funnel shown (empty: the site's first). */
  funnel: string;
  /** A visit dimension that splits the funnel (empty: none). */
  breakdown: string;
  retPeriod: RetentionPeriod;
  /** Periods after the cohort's (null: the period's default). */
  retPeriods: number | null;
  cohortEvent: string;
  returnEvent: string;
  /** The path explorer's page (empty: the site's top page in the range). */
  pathPage: string;
  pathDirection: "forward" | "backward";
  pathDepth: number;
}

export const VIEWS = [
  ["overview", "Overview"],
  ["funnels", "Funnels"],
  ["retention", "Retention"],
  ["paths", "Paths"],
  ["alerts", "Alerts"],
] as const;

export type View = (typeof VIEWS)[number][0];

export type RetentionPeriod = "day" | "week" | "month";

/** Each retention period's default and largest number of periods (90 days, 52 weeks, 24 months). */
export const RETENTION_PERIODS: Record<RetentionPeriod, { label: string; periods: number; max: number }> = {
  day: { label: "Day", periods: 7, max: 90 },
  week: { label: "Week", periods: 8, max: 52 },
  month: { label: "Month", periods: 6, max: 24 },
};

export const BREAKDOWNS: [string, string][] = [
  ["", "No breakdown"],
  ["visit:source", "Source"],
  ["visit:country", "Country"],
  ["visit:device", "Device"],
  ["visit:browser", "Browser"],
];

export const DEFAULT_PATH_DEPTH = 3;

/** The number of retention periods of a view: its own, or its period's default. */
export function retentionPeriods(state: ViewState): number {
  const { periods, max } = RETENTION_PERIODS[state.retPeriod];
  return Math.min(max, Math.max(1, state.retPeriods ?? periods));
}

export const PERIODS: [string, string][] = [
  ["day", "Today"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["28d", "Last 28 days"],
  ["30d", "Last 30 days"],
  ["month", "This month"],
  ["6mo", "Last 6 months"],
  ["12mo", "Last 12 months"],
  ["year", "This year"],
  ["all", "All time"],
  ["custom", "Custom range"],
];

export function readState(search: string = location.search): ViewState {
  const params = new URLSearchParams(search);
  const period = params.get("period") || "7d";
  const retPeriod = params.get("ret_period") || "day";
  const retPeriods = Number(params.get("ret_periods"));
  const pathDepth = Math.round(Number(params.get("path_depth")));
  return {
    site: params.get("site"),
    period: PERIODS.some(([p]) => p === period) ? period : "7d",
    from: params.get("from") || "",
    to: params.get("to") || "",
    filters: params.getAll("f").flatMap((f): [string, string][] => {
      const at = f.indexOf("|");
      return at > 0 ? [[f.slice(0, at), f.slice(at + 1)]] : [];
    }),
    imports: params.get("imports") !== "0",
    view: VIEWS.find(([v]) => v === params.get("view"))?.[0] ?? "overview",
    funnel: params.get("funnel") || "",
    breakdown: BREAKDOWNS.some(([b]) => b && b === params.get("breakdown")) ? params.get("breakdown")! : "",
    retPeriod: Object.hasOwn(RETENTION_PERIODS, retPeriod) ? (retPeriod as RetentionPeriod) : "day",
    retPeriods: Number.isInteger(retPeriods) && retPeriods > 0 ? retPeriods : null,
    cohortEvent: params.get("cohort_event") || "",
    returnEvent: params.get("return_event") || "",
    pathPage: params.get("path_page") || "",
    pathDirection: params.get("path_dir") === "backward" ? "backward" : "forward",
    pathDepth: pathDepth >= 1 && pathDepth <= 5 ? pathDepth : DEFAULT_PATH_DEPTH,
  };
}

export function stateSearch(state: ViewState): string {
  const params = new URLSearchParams();
  // A public link's token stays in the address, so the shared view survives a reload.
  const share = new URLSearchParams(location.search).get("share");
  if (share) params.set("share", share);
  if (state.site) params.set("site", state.site);
  params.set("period", state.period);
  if (state.period === "custom") {
    params.set("from", state.from);
    params.set("to", state.to);
  }
  for (const [dimension, value] of state.filters) params.append("f", `${dimension}|${value}`);
  if (!state.imports) params.set("imports", "0");
  if (state.view !== "overview") params.set("view", state.view);
  if (state.view === "funnels") {
    if (state.funnel) params.set("funnel", state.funnel);
    if (state.breakdown) params.set("breakdown", state.breakdown);
  }
  if (state.view === "retention") {
    if (state.retPeriod !== "day") params.set("ret_period", state.retPeriod);
    if (state.retPeriods != null) params.set("ret_periods", String(state.retPeriods));
    if (state.cohortEvent) params.set("cohort_event", state.cohortEvent);
    if (state.returnEvent) params.set("return_event", state.returnEvent);
  }
  if (state.view === "paths") {
    if (state.pathPage) params.set("path_page", state.pathPage);
    if (state.pathDirection !== "forward") params.set("path_dir", state.pathDirection);
    if (state.pathDepth !== DEFAULT_PATH_DEPTH) params.set("path_depth", String(state.pathDepth));
  }
  return `?${params}`;
}

/** The v2 `date_range` of a view. */
export function dateRange(state: ViewState): string | [string, string] {
  if (state.period === "custom" && state.from && state.to) return [state.from, state.to];
  return state.period === "custom" ? "7d" : state.period;
}

export function queryFilters(state: ViewState): Filter[] {
  return state.filters.map(([dimension, value]) => ["is", dimension, [value]]);
}

/** The time grain of the chart for a view. */
export function chartGrain(state: ViewState): "time:hour" | "time:day" | "time:month" {
  if (state.period === "day" || state.period === "24h") return "time:hour";
  if (["6mo", "12mo", "year", "all"].includes(state.period)) return "time:month";
  if (state.period === "custom" && state.from && state.to) {
    const days = (Date.parse(state.to) - Date.parse(state.from)) / 86_400_000;
    if (days < 2) return "time:hour";
    if (days > 120) return "time:month";
  }
  return "time:day";
}
