// The Alerts view: a site's alert rules (what each watches, in words, its state and last
// value, an enabled switch), the New alert form, the history of firings, and where notices
// go: webhooks (whose signing secret shows once, when made) and email reports. Rules and
// history are asked again every few seconds while the view is open, so a firing shows
// without a reload. A public link sees the rules and history only.

import { useEffect, useState } from "preact/hooks";
import {
  alertHistory,
  createAlert,
  createReport,
  createWebhook,
  deleteAlert,
  deleteReport,
  deleteWebhook,
  listAlerts,
  listReports,
  listWebhooks,
  sendReport,
  updateAlert,
  type AlertCondition,
  type AlertRule,
  type AlertRuleInput,
  type EmailReport,
  type Filter,
  type Webhook,
} from "../api";
import { formatMetric } from "../format";
import { Field, Suggestions, formErrors, useAnswer, useTopValues, type ProductViewProps } from "./product";

/** How often rules and history are asked again while the view is open. */
const POLL_INTERVAL_MS = 5000;

const METRICS: [string, string][] = [
  ["visitors", "Visitors"],
  ["visits", "Visits"],
  ["pageviews", "Pageviews"],
  ["events", "Events"],
  ["bounce_rate", "Bounce rate"],
  ["visit_duration", "Visit duration"],
  ["views_per_visit", "Views per visit"],
  ["scroll_depth", "Scroll depth"],
  ["conversion_rate", "Conversion rate (with a goal filter)"],
];

type ConditionType = AlertCondition["type"];

const CONDITIONS: [ConditionType, string][] = [
  ["above", "Above a threshold"],
  ["below", "Below a threshold"],
  ["anomaly", "Unusual for the time of week"],
  ["no_events", "No events at all"],
];

const DIRECTIONS: [string, string][] = [
  ["both", "Higher or lower"],
  ["up", "Higher"],
  ["down", "Lower"],
];

function metricName(metric: string): string {
  return (METRICS.find(([m]) => m === metric)?.[1] ?? metric).replace(/ \(.*\)$/, "");
}

/** What a rule watches, in words: "Pageviews above 2". */
export function conditionText(rule: Pick<AlertRule, "metric" | "condition">): string {
  const c = rule.condition;
  const metric = metricName(rule.metric);
  switch (c.type) {
    case "above":
      return `${metric} above ${formatMetric(rule.metric, c.threshold)}`;
    case "below":
      return `${metric} below ${formatMetric(rule.metric, c.threshold)}`;
    case "anomaly": {
      const side = c.direction === "up" ? "high" : c.direction === "down" ? "low" : "high or low";
      return `${metric} unusually ${side} (${c.sensitivity} deviations from the last ${c.weeks} weeks)`;
    }
    case "no_events":
      return "No events at all";
  }
}

/** A window in words: "5 minutes", "2 hours", "1h 30m". */
export function windowText(minutes: number): string {
  if (minutes < 60) return minutes === 1 ? "1 minute" : `${minutes} minutes`;
  if (minutes % 60) return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
  return minutes === 60 ? "1 hour" : `${minutes / 60} hours`;
}

/** v2 filters in words: "page is /pricing". */
function filtersText(filters: Filter[]): string {
  return filters
    .map((f) => Array.isArray(f) && f.length === 3 ? `${String(f[1]).replace(/^(event|visit):(props:)?/, "")} ${String(f[0]).replace("_", " ")} ${[f[2]].flat().join(" or ")}` : JSON.stringify(f))
    .join(", ");
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function when(iso: string | null): string {
  if (!iso) return "–";
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : dateTime.format(ms);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A rule as `PUT` takes it back. */
function ruleInput(rule: AlertRule): AlertRuleInput {
  const { name, metric, filters, window_minutes, condition, cooldown_minutes, webhook_ids, emails, enabled } = rule;
  return { name, metric, filters, window_minutes, condition, cooldown_minutes, webhook_ids, emails, enabled };
}

/** Keeps asking again every `ms` while the page is visible: the number of times so far. */
function usePoll(ms: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => !document.hidden && setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return tick;
}

export function Alerts(props: ProductViewProps) {
  const { token, site, readOnly } = props;
  const tick = usePoll(POLL_INTERVAL_MS);
  const [version, setVersion] = useState(0);
  const [webhooksVersion, setWebhooksVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  const key = JSON.stringify([token, site, version, tick, props.refresh]);
  const rules = useAnswer(() => listAlerts(token, site), key);
  const history = useAnswer(() => alertHistory(token, site, 50), key);
  // Webhooks and reports name where notices go: for those who may change them only.
  const webhooks = useAnswer(readOnly ? null : () => listWebhooks(token, site), JSON.stringify([token, site, webhooksVersion]));
  const [creating, setCreating] = useState(false);
  const [rowErrors, setRowErrors] = useState<Record<string, string>>({});
  const rowError = (id: string, message: string | null) =>
    setRowErrors((old) => {
      const next = { ...old };
      if (message) next[id] = message;
      else delete next[id];
      return next;
    });

  const list = rules.data;
  return (
    <div class="alerts" data-testid="alerts">
      <section class="card product" data-testid="alert-rules" data-loading={!rules.data && rules.loading}>
        <header class="product-head">
          <h2>Alerts</h2>
          <span class="spacer" />
          {!readOnly && (
            <button data-testid="alert-new" aria-expanded={creating} onClick={() => setCreating(!creating)}>
              {creating ? "Cancel" : "New alert"}
            </button>
          )}
        </header>
        {creating && (
          <AlertForm
            {...props}
            webhooks={webhooks.data ?? []}
            onSaved={() => {
              setCreating(false);
              reload();
            }}
          />
        )}
        {rules.error && <p class="error">{rules.error}</p>}
        {list && list.length === 0 && !creating && (
          <div class="empty" data-testid="alerts-empty">
            <p>This site has no alerts yet.</p>
            <p>
              An alert watches a metric over a window of minutes (pageviews over the last 5 minutes, say) and tells you, by
              email or a webhook, when it goes above or below a threshold, looks unusual for the time of week, or when no
              events come at all.{readOnly ? " The site's owner can create one." : <> Create one with <strong>New alert</strong> above.</>}
            </p>
          </div>
        )}
        {list && list.length > 0 && (
          <div class="table-scroll">
            <table class="alert-table" data-testid="alert-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Condition</th>
                  <th>Window</th>
                  <th>State</th>
                  <th class="num">Last value</th>
                  <th>Enabled</th>
                  {!readOnly && <th />}
                </tr>
              </thead>
              <tbody>
                {list.map((rule) => (
                  <tr
                    data-alert-id={rule.alert_id}
                    data-name={rule.name}
                    data-state={rule.state}
                    data-last-value={rule.last_value ?? ""}
                    data-enabled={rule.enabled}
                  >
                    <th>
                      {rule.name}
                      {rule.filters.length > 0 && <div class="muted small">{filtersText(rule.filters)}</div>}
                      {rowErrors[rule.alert_id] && <div class="error small">{rowErrors[rule.alert_id]}</div>}
                    </th>
                    <td data-testid="alert-condition">{conditionText(rule)}</td>
                    <td>{windowText(rule.window_minutes)}</td>
                    <td>
                      <span
                        class={`state ${rule.state}`}
                        data-testid="alert-state"
                        title={rule.last_evaluated_at ? `Last checked ${when(rule.last_evaluated_at)}` : "Not checked yet"}
                      >
                        {rule.state}
                      </span>
                    </td>
                    <td class="num" data-testid="alert-last-value">
                      {formatMetric(rule.metric, rule.last_value)}
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Enabled: ${rule.name}`}
                        checked={rule.enabled}
                        disabled={readOnly}
                        onChange={(e) => {
                          const enabled = (e.target as HTMLInputElement).checked;
                          rowError(rule.alert_id, null);
                          updateAlert(token, site, rule.alert_id, { ...ruleInput(rule), enabled })
                            .catch((err) => rowError(rule.alert_id, errorText(err)))
                            .finally(reload);
                        }}
                      />
                    </td>
                    {!readOnly && (
                      <td>
                        <button
                          class="ghost"
                          aria-label={`Delete the alert ${rule.name}`}
                          onClick={() => {
                            if (!confirm(`Delete the alert "${rule.name}"?`)) return;
                            deleteAlert(token, site, rule.alert_id)
                              .then(reload)
                              .catch((err) => rowError(rule.alert_id, errorText(err)));
                          }}
                        >
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section class="card product" data-testid="alert-history" data-loading={!history.data && history.loading}>
        <header class="product-head">
          <h2>History</h2>
        </header>
        {history.error && <p class="error">{history.error}</p>}
        {history.data && history.data.length === 0 && <p class="empty">No alert has fired yet.</p>}
        {history.data && history.data.length > 0 && (
          <div class="table-scroll">
            <table class="alert-table" data-testid="alert-history-table">
              <thead>
                <tr>
                  <th>Alert</th>
                  <th>Fired</th>
                  <th>Resolved</th>
                  <th class="num">Value</th>
                  <th class="num">Expected</th>
                  <th>Message</th>
                </tr>
              </thead>
              <tbody>
                {history.data.map((event) => {
                  const metric = list?.find((r) => r.alert_id === event.alert_id)?.metric ?? "";
                  return (
                    <tr
                      data-event-id={event.event_id}
                      data-alert-id={event.alert_id}
                      data-alert-name={event.alert_name ?? ""}
                      data-value={event.value}
                      data-state={event.resolved_at ? "resolved" : "firing"}
                    >
                      <th>{event.alert_name ?? <span class="muted">(deleted alert)</span>}</th>
                      <td title={event.fired_at}>{when(event.fired_at)}</td>
                      <td title={event.resolved_at ?? undefined}>
                        {event.resolved_at ? when(event.resolved_at) : <span class="state firing">firing</span>}
                      </td>
                      <td class="num" data-testid="alert-history-value">
                        {formatMetric(metric, event.value)}
                      </td>
                      <td class="num">{formatMetric(metric, event.expected)}</td>
                      <td class="message">{event.message}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {!readOnly && (
        <div class="alert-targets">
          <Webhooks
            token={token}
            site={site}
            webhooks={webhooks.data}
            error={webhooks.error}
            onChange={() => setWebhooksVersion((v) => v + 1)}
          />
          <Reports token={token} site={site} />
        </div>
      )}
    </div>
  );
}

/** The fields of the New alert form, each with the keys of the server's errors it shows. */
const FORM_FIELDS = {
  name: ["name"],
  metric: ["metric"],
  page: ["filters"],
  window: ["window_minutes"],
  condition: ["condition", "condition.type"],
  threshold: ["condition.threshold", "threshold"],
  direction: ["condition.direction", "direction"],
  sensitivity: ["condition.sensitivity", "sensitivity"],
  weeks: ["condition.weeks", "weeks"],
  cooldown: ["cooldown_minutes"],
  emails: ["emails"],
  webhooks: ["webhook_ids"],
  enabled: ["enabled"],
};

/** A number input's value for the API: an empty input is left for the server to refuse. */
function numberOf(text: string): number {
  // NaN goes out as null, which the server answers with the field's error.
  return text.trim() === "" ? NaN : Number(text);
}

/** The form that saves a new rule through `POST /api/sites/{site}/alerts`. */
function AlertForm(props: ProductViewProps & { webhooks: Webhook[]; onSaved: (rule: AlertRule) => void }) {
  const { token, site } = props;
  const pages = useTopValues(token, site, props.dateRange, "event:page");
  const [name, setName] = useState("");
  const [metric, setMetric] = useState("visitors");
  const [page, setPage] = useState("");
  const [keepFilters, setKeepFilters] = useState(props.filters.length > 0);
  const [windowMinutes, setWindowMinutes] = useState("60");
  const [type, setType] = useState<ConditionType>("above");
  const [threshold, setThreshold] = useState("");
  const [direction, setDirection] = useState("both");
  const [sensitivity, setSensitivity] = useState("3");
  const [weeks, setWeeks] = useState("4");
  const [cooldown, setCooldown] = useState("");
  const [emails, setEmails] = useState("");
  const [webhookIds, setWebhookIds] = useState<string[]>([]);
  const [enabled, setEnabled] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const value = (e: Event) => (e.target as HTMLInputElement).value;
  const { byField, general } = formErrors(error, FORM_FIELDS);

  const filters = (): Filter[] => {
    const pageFilter: Filter[] = page.trim() ? [["is", "event:page", [page.trim()]]] : [];
    const kept = keepFilters ? props.filters.filter((f) => !(pageFilter.length && f[1] === "event:page")) : [];
    return [...kept, ...pageFilter];
  };
  const condition = (): AlertCondition => {
    if (type === "above" || type === "below") return { type, threshold: numberOf(threshold) };
    if (type === "anomaly")
      return { type, direction: direction as "up" | "down" | "both", sensitivity: numberOf(sensitivity), weeks: numberOf(weeks) };
    return { type };
  };

  return (
    <form
      class="alert-form"
      data-testid="alert-form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setError(null);
        setSaving(true);
        const rule: AlertRuleInput = {
          name: name.trim(),
          metric: type === "no_events" ? "events" : metric,
          filters: filters(),
          window_minutes: numberOf(windowMinutes),
          condition: condition(),
          webhook_ids: webhookIds,
          emails: emails.split(/[\s,;]+/).filter(Boolean),
          enabled,
          ...(cooldown.trim() ? { cooldown_minutes: numberOf(cooldown) } : {}),
        };
        createAlert(token, site, rule)
          .then(props.onSaved)
          .catch(setError)
          .finally(() => setSaving(false));
      }}
    >
      <div class="form-row">
        <Field id="alert-name" label="Name" error={byField.name} class="grow">
          {(input) => <input {...input} name="alert-name" value={name} placeholder="Traffic spike" onInput={(e) => setName(value(e))} />}
        </Field>
        <Field id="alert-metric" label="Metric" error={byField.metric}>
          {(input) => (
            <select {...input} value={type === "no_events" ? "events" : metric} disabled={type === "no_events"} onChange={(e) => setMetric(value(e))}>
              {METRICS.map(([m, label]) => (
                <option value={m}>{label}</option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <div class="form-row">
        <Field id="alert-page" label="Page filter (optional)" error={byField.page} class="grow">
          {(input) => <input {...input} list="alert-pages" value={page} placeholder="/pricing or /blog/*" onInput={(e) => setPage(value(e))} />}
        </Field>
        <Suggestions id="alert-pages" values={pages} />
        {props.filters.length > 0 && (
          <label class="check">
            <input type="checkbox" checked={keepFilters} onChange={(e) => setKeepFilters((e.target as HTMLInputElement).checked)} />
            Keep the dashboard's filters <span class="muted">({filtersText(props.filters)})</span>
          </label>
        )}
      </div>
      <div class="form-row">
        <Field id="alert-window" label="Window (minutes)" error={byField.window}>
          {(input) => (
            <input
              {...input}
              type="number"
              min={type === "no_events" ? 1 : 5}
              max={1440}
              value={windowMinutes}
              onInput={(e) => setWindowMinutes(value(e))}
            />
          )}
        </Field>
        <Field id="alert-condition" label="Condition" error={byField.condition}>
          {(input) => (
            <select {...input} value={type} onChange={(e) => setType(value(e) as ConditionType)}>
              {CONDITIONS.map(([c, label]) => (
                <option value={c}>{label}</option>
              ))}
            </select>
          )}
        </Field>
        {(type === "above" || type === "below") && (
          <Field id="alert-threshold" label="Threshold" error={byField.threshold}>
            {(input) => <input {...input} type="number" step="any" value={threshold} onInput={(e) => setThreshold(value(e))} />}
          </Field>
        )}
        {type === "anomaly" && (
          <>
            <Field id="alert-direction" label="Direction" error={byField.direction}>
              {(input) => (
                <select {...input} value={direction} onChange={(e) => setDirection(value(e))}>
                  {DIRECTIONS.map(([d, label]) => (
                    <option value={d}>{label}</option>
                  ))}
                </select>
              )}
            </Field>
            <Field id="alert-sensitivity" label="Sensitivity (deviations)" error={byField.sensitivity}>
              {(input) => <input {...input} type="number" step="0.5" min={0.5} value={sensitivity} onInput={(e) => setSensitivity(value(e))} />}
            </Field>
            <Field id="alert-weeks" label="Weeks of history" error={byField.weeks}>
              {(input) => <input {...input} type="number" min={2} max={12} value={weeks} onInput={(e) => setWeeks(value(e))} />}
            </Field>
          </>
        )}
        <Field id="alert-cooldown" label="Cooldown (minutes, optional)" error={byField.cooldown}>
          {(input) => <input {...input} type="number" min={0} value={cooldown} placeholder="60" onInput={(e) => setCooldown(value(e))} />}
        </Field>
      </div>
      <div class="form-row">
        <Field id="alert-emails" label="Emails (optional)" error={byField.emails} class="grow">
          {(input) => <input {...input} value={emails} placeholder="ops@example.com, me@example.com" onInput={(e) => setEmails(value(e))} />}
        </Field>
      </div>
      <fieldset class="webhook-picker" aria-describedby={byField.webhooks ? "alert-webhooks-error" : undefined}>
        <legend>Webhooks</legend>
        {props.webhooks.length === 0 && <span class="muted">None yet: add one under Webhooks below.</span>}
        {props.webhooks.map((w) => (
          <label class="check">
            <input
              type="checkbox"
              value={w.webhook_id}
              checked={webhookIds.includes(w.webhook_id)}
              onChange={(e) =>
                setWebhookIds((e.target as HTMLInputElement).checked ? [...webhookIds, w.webhook_id] : webhookIds.filter((id) => id !== w.webhook_id))
              }
            />
            {w.url} <span class="muted">({w.format})</span>
          </label>
        ))}
        {byField.webhooks && (
          <span class="field-error" id="alert-webhooks-error">
            {byField.webhooks}
          </span>
        )}
      </fieldset>
      <div class="form-row">
        <label class="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.target as HTMLInputElement).checked)} />
          Enabled
        </label>
        {byField.enabled && <span class="field-error">{byField.enabled}</span>}
        <span class="spacer" />
        <button type="submit" data-testid="alert-save" disabled={saving}>
          Save alert
        </button>
      </div>
      {general && (
        <p class="error" data-testid="alert-form-error">
          {general}
        </p>
      )}
    </form>
  );
}

/** The site's webhooks: the list, a form that adds one, and the new one's secret, shown once. */
function Webhooks(props: { token: string; site: string; webhooks: Webhook[] | null; error: string | null; onChange: () => void }) {
  const { token, site } = props;
  const [url, setUrl] = useState("");
  const [format, setFormat] = useState<Webhook["format"]>("json");
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<Webhook | null>(null);
  const [saving, setSaving] = useState(false);
  const [listError, setListError] = useState<string | null>(null);
  const { byField, general } = formErrors(error, { url: ["url"], format: ["format"] });
  return (
    <section class="card product" data-testid="webhooks">
      <header class="product-head">
        <h2>Webhooks</h2>
      </header>
      <p class="muted">
        Alerts post to these when they fire and resolve, signed with the webhook's secret (<code>x-heartbeat-signature</code>).
      </p>
      {props.error && <p class="error">{props.error}</p>}
      {listError && <p class="error">{listError}</p>}
      {created?.secret && (
        <div class="secret" role="status" data-testid="webhook-secret">
          <p>
            The signing secret of <strong>{created.url}</strong>, shown only this once:
          </p>
          <code data-testid="webhook-secret-value">{created.secret}</code>
          <button class="ghost" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      {props.webhooks && props.webhooks.length === 0 && <p class="empty">No webhooks yet.</p>}
      {props.webhooks && props.webhooks.length > 0 && (
        <ul class="target-list" data-testid="webhook-list">
          {props.webhooks.map((w) => (
            <li data-webhook-id={w.webhook_id} data-url={w.url}>
              <span class="label" title={w.url}>
                {w.url}
              </span>
              <span class="badge">{w.format}</span>
              <button
                class="ghost"
                aria-label={`Delete the webhook ${w.url}`}
                onClick={() => {
                  if (!confirm(`Delete the webhook ${w.url}? Alerts stop posting to it.`)) return;
                  setListError(null);
                  deleteWebhook(token, site, w.webhook_id)
                    .then(props.onChange)
                    .catch((err) => setListError(errorText(err)));
                }}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        class="form-row"
        data-testid="webhook-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          setSaving(true);
          createWebhook(token, site, { url: url.trim(), format })
            .then((webhook) => {
              setCreated(webhook);
              setUrl("");
              props.onChange();
            })
            .catch(setError)
            .finally(() => setSaving(false));
        }}
      >
        <Field id="webhook-url" label="Webhook URL" error={byField.url} class="grow">
          {(input) => <input {...input} type="url" value={url} placeholder="https://hooks.slack.com/services/…" onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field id="webhook-format" label="Format" error={byField.format}>
          {(input) => (
            <select {...input} value={format} onChange={(e) => setFormat((e.target as HTMLSelectElement).value as Webhook["format"])}>
              <option value="json">JSON</option>
              <option value="slack">Slack</option>
            </select>
          )}
        </Field>
        <button type="submit" disabled={saving}>
          Add webhook
        </button>
      </form>
      {general && <p class="error">{general}</p>}
    </section>
  );
}

/** The site's email reports: who gets which, and a button that sends the last one now. */
function Reports({ token, site }: { token: string; site: string }) {
  const [version, setVersion] = useState(0);
  const reports = useAnswer(() => listReports(token, site), JSON.stringify([token, site, version]));
  const [email, setEmail] = useState("");
  const [period, setPeriod] = useState<EmailReport["period"]>("weekly");
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [status, setStatus] = useState<Record<string, string>>({});
  const say = (id: string, text: string) => setStatus((old) => ({ ...old, [id]: text }));
  const { byField, general } = formErrors(error, { email: ["email"], period: ["period"] });
  return (
    <section class="card product" data-testid="reports">
      <header class="product-head">
        <h2>Email reports</h2>
      </header>
      <p class="muted">A summary of the last week or month, mailed when it ends.</p>
      {reports.error && <p class="error">{reports.error}</p>}
      {reports.data && reports.data.length === 0 && <p class="empty">No reports yet.</p>}
      {reports.data && reports.data.length > 0 && (
        <ul class="target-list" data-testid="report-list">
          {reports.data.map((r) => (
            <li data-report-id={r.report_id} data-email={r.email} data-period={r.period}>
              <span class="label" title={r.email}>
                {r.email}
              </span>
              <span class="badge">{r.period}</span>
              <span class="muted small">{status[r.report_id] ?? (r.last_sent_period ? `last sent for ${r.last_sent_period}` : "not sent yet")}</span>
              <button
                class="ghost"
                aria-label={`Send the report to ${r.email} now`}
                onClick={() => {
                  say(r.report_id, "Sending…");
                  sendReport(token, site, r.report_id)
                    // Accepted into the outbox: the mail goes out in the background.
                    .then(() => say(r.report_id, "Queued to send"))
                    .catch((err) => say(r.report_id, errorText(err)));
                }}
              >
                Send now
              </button>
              <button
                class="ghost"
                aria-label={`Delete the report to ${r.email}`}
                onClick={() => {
                  if (!confirm(`Stop the ${r.period} report to ${r.email}?`)) return;
                  deleteReport(token, site, r.report_id)
                    .then(() => setVersion((v) => v + 1))
                    .catch((err) => say(r.report_id, errorText(err)));
                }}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        class="form-row"
        data-testid="report-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          setSaving(true);
          createReport(token, site, { email: email.trim(), period })
            .then(() => {
              setEmail("");
              setVersion((v) => v + 1);
            })
            .catch(setError)
            .finally(() => setSaving(false));
        }}
      >
        <Field id="report-email" label="Report email" error={byField.email} class="grow">
          {(input) => <input {...input} type="email" value={email} placeholder="me@example.com" onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field id="report-period" label="Period" error={byField.period}>
          {(input) => (
            <select {...input} value={period} onChange={(e) => setPeriod((e.target as HTMLSelectElement).value as EmailReport["period"])}>
              <option value="weekly">Weekly</option>
              <option value="monthly">Monthly</option>
            </select>
          )}
        </Field>
        <button type="submit" disabled={saving}>
          Add report
        </button>
      </form>
      {general && <p class="error">{general}</p>}
    </section>
  );
}
