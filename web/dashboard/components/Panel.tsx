// A breakdown card: tabs of dimensions, each a ranked list of values with bars. Clicking a
// row filters the whole dashboard by that value.

import { useEffect, useState } from "preact/hooks";
import { query, type Filter, type ResultRow } from "../api";
import { formatMetric, formatValue } from "../format";

export interface Tab {
  label: string;
  dimension: string;
  /** Metrics shown; the first one ranks and draws the bars. */
  metrics: string[];
  /** Filters of this tab only (custom events exclude page views). */
  extraFilters?: Filter[];
  /** No filter on click (the value is not a dimension value the query can filter on). */
  notFilterable?: boolean;
}

export interface PanelProps {
  title: string;
  tabs: Tab[];
  token: string;
  site: string;
  dateRange: string | [string, string];
  filters: Filter[];
  /** Whether to include the site's imported statistics. */
  imports: boolean;
  onFilter: (dimension: string, value: string) => void;
  refresh: number;
  /** Called with the tab shown, for panels whose neighbours depend on it. */
  onTab?: (tab: Tab) => void;
}

const METRIC_LABELS: Record<string, string> = {
  visitors: "Visitors",
  pageviews: "Pageviews",
  events: "Events",
  visits: "Visits",
  conversion_rate: "CR",
};

export function Panel(props: PanelProps) {
  const [tabIndex, setTabIndex] = useState(0);
  const tab = props.tabs[Math.min(tabIndex, props.tabs.length - 1)];
  const [rows, setRows] = useState<ResultRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => props.onTab?.(tab), [tab.dimension]);
  useEffect(() => {
    let cancelled = false;
    setError(null);
    query(props.token, {
      site_id: props.site,
      metrics: tab.metrics,
      date_range: props.dateRange,
      dimensions: [tab.dimension],
      filters: [...props.filters, ...(tab.extraFilters || [])],
      order_by: [[tab.metrics[0], "desc"]],
      pagination: { limit: 10 },
      include: { imports: props.imports },
    })
      // A row whose every figure is 0 says nothing: a page that only custom events without a
      // page view name (server-side events) would be listed with 0 visitors and 0 views.
      .then((response) => !cancelled && setRows(response.results.filter((row) => row.metrics.some((m) => Number(m) !== 0))))
      .catch((err) => !cancelled && setError(String(err.message || err)));
    return () => {
      cancelled = true;
    };
  }, [props.token, props.site, JSON.stringify(props.dateRange), JSON.stringify(props.filters), tab.dimension, tab.metrics.join(), JSON.stringify(tab.extraFilters), props.refresh, props.imports]);

  const max = Math.max(1, ...(rows || []).map((r) => r.metrics[0] ?? 0));
  return (
    <section class="card panel" data-panel={props.title}>
      <header>
        <h2>{props.title}</h2>
        <nav role="tablist">
          {props.tabs.map((t, i) => (
            <button
              role="tab"
              aria-selected={t === tab}
              class={t === tab ? "tab active" : "tab"}
              onClick={() => setTabIndex(i)}
            >
              {t.label}
            </button>
          ))}
        </nav>
      </header>
      <div class="columns">
        <span>{tab.label}</span>
        {tab.metrics.map((m) => (
          <span class="num">{METRIC_LABELS[m] || m}</span>
        ))}
      </div>
      {error && <p class="error">{error}</p>}
      {rows && rows.length === 0 && <p class="empty">No data yet</p>}
      <ul>
        {(rows || []).map((row) => {
          const value = row.dimensions[0];
          const share = ((row.metrics[0] ?? 0) / max) * 100;
          return (
            <li
              class={tab.notFilterable ? "row" : "row clickable"}
              data-dimension={tab.dimension}
              data-value={value}
              data-metric-value={row.metrics[0] ?? 0}
              title={tab.notFilterable ? value : `Filter by ${value || "(none)"}`}
              onClick={() => !tab.notFilterable && props.onFilter(tab.dimension, value)}
            >
              <span class="bar" style={{ width: `${share}%` }} />
              <span class="label">{formatValue(tab.dimension, value)}</span>
              {row.metrics.map((m, i) => (
                <span class="num">{formatMetric(tab.metrics[i], m)}</span>
              ))}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
