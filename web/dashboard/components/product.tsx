// What the product views (funnels, retention, paths) share: their props and a hook that keeps
// one request's answer, the last one shown while the next loads.

import { useEffect, useState } from "preact/hooks";
import { query, type Filter } from "../api";
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
