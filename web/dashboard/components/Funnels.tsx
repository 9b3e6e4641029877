// The Funnels view: a site's saved funnels, one picked (in the URL), its steps as bars with
// the visitors who reached each, conversion from the first and the previous step, the drop-off
// and the median time to the next step; or, under a breakdown, one funnel per value in a table.
// A small form saves a new funnel.

import { useState } from "preact/hooks";
import {
  createFunnel,
  deleteFunnel,
  listFunnels,
  runFunnel,
  type FunnelOrder,
  type FunnelStep,
  type FunnelStepResult,
  type FunnelWindow,
  type SavedFunnel,
} from "../api";
import { formatLongDuration, formatValue } from "../format";
import { BREAKDOWNS } from "../state";
import { Suggestions, formatPercent, useAnswer, useTopValues, type ProductViewProps } from "./product";

const ORDERS: [FunnelOrder, string][] = [
  ["ordered", "In order (other events between)"],
  ["strict", "Strictly in order (nothing between)"],
  ["any", "In any order"],
];

function windowText(window: FunnelWindow): string {
  if ("visit" in window) return "in one visit";
  return `within ${formatLongDuration(window.seconds)}`;
}

function stepText(step: FunnelStep): string {
  return step.label || (step.page ? `Visit ${step.page}` : step.event || "?");
}

export function Funnels(props: ProductViewProps) {
  const { token, site, state, update } = props;
  const [listVersion, setListVersion] = useState(0);
  const list = useAnswer(() => listFunnels(token, site), JSON.stringify([token, site, listVersion]));
  const funnels = list.fresh ? list.data : null;
  const selected = funnels?.find((f) => f.funnel_id === state.funnel) ?? funnels?.[0];
  const [creating, setCreating] = useState(false);
  const [deleteError, setDeleteError] = useState<string | null>(null);

  const request = selected && {
    site_id: site,
    date_range: props.dateRange,
    filters: props.filters,
    funnel_id: selected.funnel_id,
    ...(state.breakdown ? { breakdown: state.breakdown } : {}),
  };
  const result = useAnswer(request ? () => runFunnel(token, request) : null, JSON.stringify([request, props.refresh]));
  const results = selected ? (result.data?.results ?? null) : null;
  // Drawn as the answer shown asked (the last one stays while a new breakdown loads).
  const breakdown = result.data?.meta.breakdown || "";

  return (
    <section class="card product" data-testid="funnels" data-loading={list.loading || result.loading}>
      <header class="product-head">
        <h2>Funnels</h2>
        {funnels && funnels.length > 0 && (
          <select
            aria-label="Funnel"
            data-testid="funnel-picker"
            value={selected?.funnel_id}
            onChange={(e) => update({ funnel: (e.target as HTMLSelectElement).value })}
          >
            {funnels.map((f) => (
              <option value={f.funnel_id}>{f.name}</option>
            ))}
          </select>
        )}
        {selected && (
          <select
            aria-label="Breakdown"
            data-testid="funnel-breakdown"
            value={state.breakdown}
            onChange={(e) => update({ breakdown: (e.target as HTMLSelectElement).value })}
          >
            {BREAKDOWNS.map(([value, label]) => (
              <option value={value}>{value ? `By ${label.toLowerCase()}` : label}</option>
            ))}
          </select>
        )}
        <span class="spacer" />
        {(list.loading || result.loading) && <span class="muted">Loading…</span>}
        {!props.readOnly && selected && (
          <button
            class="ghost"
            data-testid="funnel-delete"
            onClick={() => {
              if (!confirm(`Delete the funnel "${selected.name}"?`)) return;
              setDeleteError(null);
              deleteFunnel(token, site, selected.funnel_id)
                .then(() => {
                  setListVersion((v) => v + 1);
                  update({ funnel: "" });
                })
                .catch((err) => setDeleteError(String(err?.message || err)));
            }}
          >
            Delete
          </button>
        )}
        {!props.readOnly && (
          <button data-testid="funnel-new" aria-expanded={creating} onClick={() => setCreating(!creating)}>
            {creating ? "Cancel" : "New funnel"}
          </button>
        )}
      </header>
      {creating && (
        <FunnelForm
          token={token}
          site={site}
          dateRange={props.dateRange}
          onSaved={(funnel) => {
            setCreating(false);
            setListVersion((v) => v + 1);
            update({ funnel: funnel.funnel_id });
          }}
        />
      )}
      {list.error && <p class="error">{list.error}</p>}
      {deleteError && <p class="error">{deleteError}</p>}
      {funnels && funnels.length === 0 && !creating && (
        <div class="empty" data-testid="funnels-empty">
          <p>This site has no funnels yet.</p>
          <p>
            A funnel follows people through 2 to 8 steps, each a page (<code>/pricing</code>, <code>/blog/*</code>) or a
            custom event (<code>signup</code>), and shows how many reach each step and where they drop off.
            {props.readOnly ? (
              " The site's owner can create one."
            ) : (
              <>
                {" "}
                Create one with <strong>New funnel</strong> above, or with <code>POST /api/sites/{site}/funnels</code>{" "}
                (see the README).
              </>
            )}
          </p>
        </div>
      )}
      {selected && (
        <p class="muted" data-testid="funnel-definition">
          {selected.steps.map(stepText).join(" → ")}, {windowText(selected.window)}
          {selected.order === "strict" ? ", strictly in order" : selected.order === "any" ? ", in any order" : ""}
        </p>
      )}
      {selected && result.error && <p class="error">{result.error}</p>}
      {results && results.length === 0 && <p class="empty">No data yet</p>}
      {results && results.length > 0 && !breakdown && <FunnelChart steps={results[0].steps} />}
      {results && results.length > 0 && breakdown && <FunnelBreakdown dimension={breakdown} results={results} />}
    </section>
  );
}

function FunnelChart({ steps }: { steps: FunnelStepResult[] }) {
  const first = steps[0]?.visitors ?? 0;
  return (
    <>
      {first === 0 && <p class="empty">Nobody reached the first step in this range.</p>}
      <ol class="funnel" data-testid="funnel-chart">
        {steps.map((s, i) => (
          <li class="funnel-step" data-step={s.step} data-name={s.name} data-visitors={s.visitors}>
            <div class="funnel-name" title={s.name}>
              <span class="muted">{s.step}.</span> {s.name}
            </div>
            <div class="funnel-bar">
              <span class="funnel-fill" style={{ height: `${first ? (s.visitors / first) * 100 : 0}%` }} />
            </div>
            <div class="funnel-visitors">
              <strong data-metric="visitors">{s.visitors}</strong> visitors
            </div>
            <div data-metric="conversion_rate">
              {formatPercent(s.conversion_rate)} <span class="muted">of step 1</span>
            </div>
            {i > 0 && (
              <div data-metric="conversion_rate_step">
                {formatPercent(s.conversion_rate_step)} <span class="muted">from step {i}</span>
              </div>
            )}
            {s.dropoff != null && (
              <div class="dropoff" data-metric="dropoff">
                ↓ {s.dropoff} dropped off ({formatPercent(s.dropoff_percentage)})
              </div>
            )}
            {s.median_seconds_to_next != null && (
              <div
                data-metric="median_seconds_to_next"
                title={s.p90_seconds_to_next != null ? `90% within ${formatLongDuration(s.p90_seconds_to_next)}` : undefined}
              >
                {formatLongDuration(s.median_seconds_to_next)} <span class="muted">median to next</span>
              </div>
            )}
          </li>
        ))}
      </ol>
    </>
  );
}

function FunnelBreakdown({ dimension, results }: { dimension: string; results: { breakdown?: string | null; steps: FunnelStepResult[] }[] }) {
  const label = BREAKDOWNS.find(([d]) => d === dimension)?.[1] ?? dimension;
  const names = results[0].steps.map((s) => s.name);
  return (
    <div class="table-scroll">
      <table class="funnel-table" data-testid="funnel-breakdown-table">
        <thead>
          <tr>
            <th>{label}</th>
            {names.map((name, i) => (
              <th class="num" title={name}>
                {i + 1}. {name}
              </th>
            ))}
            <th class="num">Conversion</th>
          </tr>
        </thead>
        <tbody>
          {results.map((r) => {
            const last = r.steps[r.steps.length - 1];
            return (
              <tr data-breakdown={r.breakdown ?? ""}>
                <td>{formatValue(dimension, r.breakdown ?? "")}</td>
                {r.steps.map((s, i) => (
                  <td class="num" data-step={s.step} data-visitors={s.visitors}>
                    {s.visitors}
                    {i > 0 && <span class="muted"> ({formatPercent(s.conversion_rate_step)})</span>}
                  </td>
                ))}
                <td class="num" data-metric="conversion_rate">
                  {formatPercent(last?.conversion_rate)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

interface DraftStep {
  kind: "page" | "event";
  value: string;
}

/** The form that saves a new funnel through `POST /api/sites/{site}/funnels`. */
function FunnelForm(props: {
  token: string;
  site: string;
  dateRange: string | [string, string];
  onSaved: (funnel: SavedFunnel) => void;
}) {
  const { token, site, onSaved } = props;
  // Suggestions: the range's pages and event names.
  const pages = useTopValues(token, site, props.dateRange, "event:page");
  const events = useTopValues(token, site, props.dateRange, "event:name").filter((e) => e !== "pageview");
  const [name, setName] = useState("");
  const [steps, setSteps] = useState<DraftStep[]>([
    { kind: "page", value: "/" },
    { kind: "event", value: "" },
  ]);
  const [windowKind, setWindowKind] = useState<"visit" | "hours" | "days">("visit");
  const [windowCount, setWindowCount] = useState(1);
  const [order, setOrder] = useState<FunnelOrder>("ordered");
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const setStep = (i: number, change: Partial<DraftStep>) =>
    setSteps(steps.map((s, j) => (j === i ? { ...s, ...change } : s)));
  const value = (e: Event) => (e.target as HTMLInputElement).value;

  return (
    <form
      class="funnel-form"
      data-testid="funnel-form"
      onSubmit={(e) => {
        e.preventDefault();
        setError(null);
        setSaving(true);
        const funnelWindow: FunnelWindow =
          windowKind === "visit" ? { visit: true } : { seconds: windowCount * (windowKind === "hours" ? 3600 : 86_400) };
        createFunnel(token, site, {
          name: name.trim(),
          steps: steps.map((s) => (s.kind === "page" ? { page: s.value.trim() } : { event: s.value.trim() })),
          window: funnelWindow,
          order,
        })
          .then(onSaved)
          .catch((err) => setError(String(err?.message || err)))
          .finally(() => setSaving(false));
      }}
    >
      <label>
        Name
        <input name="funnel-name" data-testid="funnel-name" value={name} placeholder="Signup" onInput={(e) => setName(value(e))} />
      </label>
      <ol class="funnel-form-steps">
        {steps.map((s, i) => (
          <li data-testid={`funnel-step-${i}`}>
            <select aria-label={`Step ${i + 1} kind`} value={s.kind} onChange={(e) => setStep(i, { kind: value(e) as DraftStep["kind"] })}>
              <option value="page">Page</option>
              <option value="event">Event</option>
            </select>
            <input
              aria-label={`Step ${i + 1}`}
              value={s.value}
              placeholder={s.kind === "page" ? "/pricing or /blog/*" : "signup"}
              list={s.kind === "page" ? "funnel-pages" : "funnel-events"}
              onInput={(e) => setStep(i, { value: value(e) })}
            />
            {steps.length > 2 && (
              <button type="button" class="ghost" aria-label={`Remove step ${i + 1}`} onClick={() => setSteps(steps.filter((_, j) => j !== i))}>
                ×
              </button>
            )}
          </li>
        ))}
      </ol>
      <Suggestions id="funnel-pages" values={pages} />
      <Suggestions id="funnel-events" values={events} />
      {steps.length < 8 && (
        <button type="button" class="ghost add-step" data-testid="funnel-add-step" onClick={() => setSteps([...steps, { kind: "page", value: "" }])}>
          + Add a step
        </button>
      )}
      <div class="funnel-form-row">
        <label>
          Window
          <select data-testid="funnel-window" value={windowKind} onChange={(e) => setWindowKind(value(e) as typeof windowKind)}>
            <option value="visit">One visit</option>
            <option value="hours">Hours</option>
            <option value="days">Days</option>
          </select>
        </label>
        {windowKind !== "visit" && (
          <input
            type="number"
            aria-label={`Number of ${windowKind}`}
            data-testid="funnel-window-count"
            min={1}
            value={windowCount}
            onInput={(e) => setWindowCount(Number(value(e)))}
          />
        )}
        <label>
          Order
          <select data-testid="funnel-order" value={order} onChange={(e) => setOrder(value(e) as FunnelOrder)}>
            {ORDERS.map(([o, label]) => (
              <option value={o}>{label}</option>
            ))}
          </select>
        </label>
        <button type="submit" data-testid="funnel-save" disabled={saving}>
          Save funnel
        </button>
      </div>
      {error && (
        <p class="error" data-testid="funnel-form-error">
          {error}
        </p>
      )}
    </form>
  );
}
