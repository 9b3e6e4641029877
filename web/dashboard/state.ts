// The dashboard's view state, kept in the URL's query string so that a view can be shared
// and the back button works: `?site=example.com&period=7d&f=visit:browser|Chrome`.
// `period` is a v2 preset or `custom` with `from` and `to` (ISO dates); each `f` is one
// "is" filter, dimension and value separated by the first `|`. `imports=0` leaves a site's
// imported statistics (a Plausible export) out of every figure; they are in by default.

import type { Filter } from "./api";

export interface ViewState {
  site: string | null;
  period: string;
  from: string;
  to: string;
  filters: [string, string][];
  /** Whether figures include the site's imported statistics (when it has any). */
  imports: boolean;
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
