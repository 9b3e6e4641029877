// The Retention view: people by the day, week or month they entered in (their first event, or
// a cohort event), and the share of them who came back in each later period (any event, or a
// return event), as a heat-coloured matrix with the weighted average of all cohorts on top.

import { useEffect, useState } from "preact/hooks";
import { retention, type RetentionCohort } from "../api";
import { RETENTION_PERIODS, retentionPeriods, type RetentionPeriod } from "../state";
import { Suggestions, formatPercent, useAnswer, useTopValues, type ProductViewProps } from "./product";

const dayLabel = new Intl.DateTimeFormat("en", { month: "short", day: "numeric", timeZone: "UTC" });
const monthLabel = new Intl.DateTimeFormat("en", { month: "short", year: "numeric", timeZone: "UTC" });

function cohortLabel(cohort: string, period: RetentionPeriod): string {
  const date = new Date(`${cohort}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return cohort;
  if (period === "month") return monthLabel.format(date);
  return period === "week" ? `Week of ${dayLabel.format(date)}` : dayLabel.format(date);
}

/** Each period's returning people over the size of the cohorts that have reached that period. */
function weightedAverage(cohorts: RetentionCohort[], periods: number): { size: number; cells: [number, number][] } {
  const cells: [number, number][] = [];
  for (let i = 0; i <= periods; i++) {
    let returning = 0;
    let size = 0;
    for (const c of cohorts) {
      const r = c.returning[i];
      if (r == null || c.size === 0) continue;
      returning += r;
      size += c.size;
    }
    cells.push([returning, size]);
  }
  return { size: cohorts.reduce((sum, c) => sum + c.size, 0), cells };
}

function Cell({ returning, size, percentage, period }: { returning: number | null; size: number; percentage: number | null; period: number }) {
  if (percentage == null || size === 0) return <td class="heat none" data-period={period} />;
  return (
    <td
      class="heat"
      data-period={period}
      data-percentage={percentage}
      data-returning={returning ?? ""}
      style={{ "--share": String(percentage / 100) }}
      title={`${returning} of ${size} ${size === 1 ? "person" : "people"} (${formatPercent(percentage)})`}
    >
      {formatPercent(percentage)}
    </td>
  );
}

export function Retention(props: ProductViewProps) {
  const { token, site, state, update } = props;
  const periods = retentionPeriods(state);
  const request = {
    site_id: site,
    date_range: props.dateRange,
    filters: props.filters,
    period: state.retPeriod,
    periods,
    ...(state.cohortEvent ? { cohort_event: state.cohortEvent } : {}),
    ...(state.returnEvent ? { return_event: state.returnEvent } : {}),
  };
  const answer = useAnswer(() => retention(token, request), JSON.stringify([request, props.refresh]));
  const data = answer.data;
  // The inputs apply when they change (Enter or leaving the field), not at each key.
  const [cohortEvent, setCohortEvent] = useState(state.cohortEvent);
  const [returnEvent, setReturnEvent] = useState(state.returnEvent);
  useEffect(() => setCohortEvent(state.cohortEvent), [state.cohortEvent]);
  useEffect(() => setReturnEvent(state.returnEvent), [state.returnEvent]);
  const [periodsDraft, setPeriodsDraft] = useState(String(periods));
  useEffect(() => setPeriodsDraft(String(periods)), [periods]);
  const value = (e: Event) => (e.target as HTMLInputElement).value;
  const eventNames = useTopValues(token, site, props.dateRange, "event:name");

  const period = (data?.period as RetentionPeriod) || state.retPeriod;
  const shown = data ? data.periods : periods;
  const cohorts = data?.cohorts ?? [];
  const average = weightedAverage(cohorts, shown);
  const unit = RETENTION_PERIODS[period]?.label ?? period;
  return (
    <section class="card product" data-testid="retention" data-loading={answer.loading}>
      <header class="product-head">
        <h2>Retention</h2>
        <label>
          By
          <select
            data-testid="retention-period"
            value={state.retPeriod}
            onChange={(e) => update({ retPeriod: value(e) as RetentionPeriod, retPeriods: null })}
          >
            {Object.entries(RETENTION_PERIODS).map(([p, { label }]) => (
              <option value={p}>{label.toLowerCase()}</option>
            ))}
          </select>
        </label>
        <label>
          Periods
          <input
            type="number"
            data-testid="retention-periods"
            min={1}
            max={RETENTION_PERIODS[state.retPeriod].max}
            value={periodsDraft}
            onInput={(e) => setPeriodsDraft(value(e))}
            onChange={(e) => {
              const n = Math.round(Number(value(e)));
              if (n >= 1) update({ retPeriods: Math.min(n, RETENTION_PERIODS[state.retPeriod].max) });
              else setPeriodsDraft(String(periods));
            }}
          />
        </label>
        <label>
          Cohort event
          <input
            data-testid="retention-cohort-event"
            list="retention-events"
            placeholder="first event"
            value={cohortEvent}
            onInput={(e) => setCohortEvent(value(e))}
            onChange={(e) => update({ cohortEvent: value(e).trim() })}
          />
        </label>
        <label>
          Return event
          <input
            data-testid="retention-return-event"
            list="retention-events"
            placeholder="any event"
            value={returnEvent}
            onInput={(e) => setReturnEvent(value(e))}
            onChange={(e) => update({ returnEvent: value(e).trim() })}
          />
        </label>
        <Suggestions id="retention-events" values={eventNames} />
        <span class="spacer" />
        {answer.loading && <span class="muted">Loading…</span>}
      </header>
      <p class="muted">
        People who {state.cohortEvent ? <>first did <code>{state.cohortEvent}</code></> : "first came"} in the range, by the{" "}
        {period} they did, and the share of them who {state.returnEvent ? <>did <code>{state.returnEvent}</code></> : "came back"} in
        each later {period}.
      </p>
      {answer.error && <p class="error">{answer.error}</p>}
      {data && average.size === 0 && (
        <p class="empty" data-testid="retention-empty">
          Nobody entered in this range yet.
        </p>
      )}
      {data && average.size > 0 && (
        <div class="table-scroll">
          <table class="retention" data-testid="retention-table">
            <thead>
              <tr>
                <th>Cohort</th>
                <th class="num">People</th>
                {average.cells.map((_, i) => (
                  <th class="num">
                    {unit} {i}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              <tr class="average" data-cohort="average" data-size={average.size}>
                <th>All cohorts</th>
                <td class="num">{average.size}</td>
                {average.cells.map(([returning, size], i) => (
                  <Cell
                    returning={returning}
                    size={size}
                    percentage={size ? Math.round((returning / size) * 10_000) / 100 : null}
                    period={i}
                  />
                ))}
              </tr>
              {cohorts.map((c) => (
                <tr data-cohort={c.cohort} data-size={c.size} class={c.size === 0 ? "muted" : undefined}>
                  <th>{cohortLabel(c.cohort, period)}</th>
                  <td class="num">{c.size}</td>
                  {Array.from({ length: shown + 1 }, (_, i) => (
                    <Cell returning={c.returning[i] ?? null} size={c.size} percentage={c.percentages[i] ?? null} period={i} />
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
