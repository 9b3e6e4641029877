// The headline figures of the range, each with its change against the previous period.

import type { ResultRow } from "../api";
import { formatMetric } from "../format";

export const TOP_METRICS: [string, string][] = [
  ["visitors", "Unique visitors"],
  ["visits", "Total visits"],
  ["pageviews", "Total pageviews"],
  ["views_per_visit", "Views per visit"],
  ["bounce_rate", "Bounce rate"],
  ["visit_duration", "Visit duration"],
];

/** The headline metrics for these filters: views per visit is not defined under a page
 * filter (a visit has many pages), so the API refuses it there, as Plausible's does; under a
 * goal filter the visitors are those who converted, and their share of all is shown. */
export function topMetrics(filteredDimensions: string[]): [string, string][] {
  const metrics = filteredDimensions.includes("event:page") ? TOP_METRICS.filter(([m]) => m !== "views_per_visit") : TOP_METRICS;
  return filteredDimensions.includes("event:goal") ? [...metrics, ["conversion_rate", "Conversion rate"]] : metrics;
}

/** Metrics where a rise is bad news. */
const LOWER_IS_BETTER = new Set(["bounce_rate"]);

export function TopStats({ row, metrics }: { row: ResultRow | null; metrics: [string, string][] }) {
  return (
    <section class="card top-stats" data-testid="top-stats">
      {metrics.map(([metric, label], i) => {
        const value = row?.metrics[i] ?? null;
        const change = row?.comparison?.change[i] ?? null;
        const good = change != null && (LOWER_IS_BETTER.has(metric) ? change < 0 : change > 0);
        const unit = metric === "bounce_rate" ? " pts" : "%";
        return (
          <div class="stat" data-metric={metric} data-value={value ?? ""}>
            <div class="stat-label">{label}</div>
            <div class="stat-value">{row ? formatMetric(metric, value) : "…"}</div>
            {change != null && change !== 0 && (
              <div class={good ? "change good" : "change bad"} title="Change against the previous period">
                {change > 0 ? "↑" : "↓"} {Math.abs(Math.round(change))}
                {unit}
              </div>
            )}
            {change === 0 && <div class="change">=</div>}
          </div>
        );
      })}
    </section>
  );
}
