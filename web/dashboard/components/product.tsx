// What the product views (funnels, retention, paths, alerts) share: their props, a hook that
// keeps one request's answer, the last one shown while the next loads, and form fields that
// show the server's error for them beside them.

import type { ComponentChildren, VNode } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, query, type Filter } from "../api";
import type { ViewState } from "../state";

export interface ProductViewProps {
  token: string;
  site: string;
  dateRange: string | [string, string];
  filters: Filter[];
  refresh: number;
  state: ViewState;
  update: (change: Partial<ViewState>, push?: boolean) => void;
  /** A public link's view: nothing can be saved. */
  readOnly: boolean;
}

export interface Answer<T> {
  /** The last answer, kept while the next request (another `key`) runs. */
  data: T | null;
  error: string | null;
  /** A request for the current key is running. */
  loading: boolean;
  /** The data answers the current key. */
  fresh: boolean;
}

/**
 * The answer of `load()` for `key` (a request's JSON, say): a new key loads again. A null
 * `load` asks for nothing.
 */
export function useAnswer<T>(load: (() => Promise<T>) | null, key: string): Answer<T> {
  const [answer, setAnswer] = useState<{ key: string | null; data: T | null; error: string | null }>({
    key: null,
    data: null,
    error: null,
  });
  useEffect(() => {
    if (!load) return;
    let cancelled = false;
    load()
      .then((data) => !cancelled && setAnswer({ key, data, error: null }))
      .catch((err) => !cancelled && setAnswer({ key, data: null, error: String(err?.message || err) }));
    return () => {
      cancelled = true;
    };
  }, [key, !!load]);
  const fresh = !!load && answer.key === key;
  return { data: answer.data, error: fresh ? answer.error : null, loading: !!load && !fresh, fresh };
}

/** The most visited values of a dimension in the range (pages, event names): input suggestions. */
export function useTopValues(token: string, site: string, dateRange: string | [string, string], dimension: string): string[] {
  const request = {
    site_id: site,
    metrics: ["visitors"],
    date_range: dateRange,
    dimensions: [dimension],
    order_by: [["visitors", "desc"]] as [string, "desc"][],
    pagination: { limit: 50 },
  };
  const answer = useAnswer(() => query(token, request), JSON.stringify(request));
  return (answer.data?.results ?? []).filter((r) => Number(r.metrics[0]) > 0).map((r) => r.dimensions[0]);
}

/** A `<datalist>` of suggestions for inputs that name it in their `list`. */
export function Suggestions({ id, values }: { id: string; values: string[] }) {
  return (
    <datalist id={id}>
      {values.map((v) => (
        <option value={v} />
      ))}
    </datalist>
  );
}

/** A percentage as the product views show it: one decimal place at most. */
export function formatPercent(value: number | null | undefined): string {
  return value == null ? "–" : `${Math.round(value * 10) / 10}%`;
}

/** What a field's input takes so that its label and error belong to it. */
export interface FieldInput {
  id: string;
  "aria-invalid": boolean;
  "aria-describedby": string | undefined;
}

/**
 * A form field: its label, its input (drawn by `children` with the ids that tie them
 * together) and, beside it, the server's error for it.
 */
export function Field(props: { id: string; label: ComponentChildren; error?: string | null; class?: string; children: (input: FieldInput) => VNode }) {
  const errorId = `${props.id}-error`;
  return (
    <span class={props.class ? `field ${props.class}` : "field"}>
      <label for={props.id}>{props.label}</label>
      {props.children({ id: props.id, "aria-invalid": !!props.error, "aria-describedby": props.error ? errorId : undefined })}
      {props.error && (
        <span class="field-error" id={errorId} data-testid={errorId}>
          {props.error}
        </span>
      )}
    </span>
  );
}

/**
 * A form's error split among its fields: each field shows the server's errors (`ApiError.fields`)
 * of its keys (an array's items too: `emails[1]` is `emails`'); `general` is what no field
 * claims, or the whole error when it names no field.
 */
export function formErrors<F extends string>(
  error: unknown,
  keys: Record<F, string[]>,
): { byField: Partial<Record<F, string>>; general: string | null } {
  const byField: Partial<Record<F, string>> = {};
  if (error == null) return { byField, general: null };
  const fields = error instanceof ApiError ? error.fields : {};
  if (Object.keys(fields).length === 0) return { byField, general: error instanceof Error ? error.message : String(error) };
  const rest: string[] = [];
  for (const [key, message] of Object.entries(fields)) {
    const base = key.replace(/\[\d+\]$/, "");
    const field = (Object.keys(keys) as F[]).find((f) => keys[f].includes(base));
    if (field) byField[field] = byField[field] ? `${byField[field]}; ${message}` : message;
    else rest.push(`${key}: ${message}`);
  }
  return { byField, general: rest.length ? rest.join("; ") : null };
}
