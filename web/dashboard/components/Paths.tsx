// The path explorer: from the first view of a page in each visit (by default the site's top
// page), the pages viewed next (or before), step by step, each with its visitors and the walks
// that ended there; a click on a page explores from it. Below, the most common full paths.

import { useEffect, useRef, useState } from "preact/hooks";
import { paths, query, type PathsResponse } from "../api";
import { Suggestions, formatPercent, useAnswer, type ProductViewProps } from "./product";

const NODES_PER_STEP = 10;

type Node = PathsResponse["nodes"][number];

export function Paths(props: ProductViewProps) {
  const { token, site, state, update } = props;
  // The range's top pages: the default page, and suggestions for the page input.
  const topRequest = {
    site_id: site,
    metrics: ["visitors"],
    date_range: props.dateRange,
    dimensions: ["event:page"],
    filters: props.filters,
    order_by: [["visitors", "desc"]] as [string, "desc"][],
    pagination: { limit: 20 },
  };
  const top = useAnswer(() => query(token, topRequest), JSON.stringify([topRequest, props.refresh]));
  const topPages = (top.data?.results ?? []).filter((r) => Number(r.metrics[0]) > 0).map((r) => r.dimensions[0]);
  const page = state.pathPage || topPages[0] || "";

  const request = page
    ? {
        site_id: site,
        date_range: props.dateRange,
        filters: props.filters,
        page,
        direction: state.pathDirection,
        depth: state.pathDepth,
        limit: NODES_PER_STEP,
      }
    : null;
  const answer = useAnswer(request ? () => paths(token, request) : null, JSON.stringify([request, props.refresh]));
  const data = answer.data;

  const [draft, setDraft] = useState(page);
  const input = useRef<HTMLInputElement>(null);
  // The input follows the page explored, except while someone types in it: the default page
  // (the range's top page) can arrive mid-typing and must not replace or extend their text.
  useEffect(() => {
    if (document.activeElement !== input.current) setDraft(page);
  }, [page]);
  const value = (e: Event) => (e.target as HTMLInputElement).value;

  const steps = Array.from({ length: (data?.depth ?? state.pathDepth) + 1 }, (_, i) => i);
  const max = Math.max(1, ...(data?.nodes ?? []).map((n) => n.visitors));
  const backward = (data?.direction ?? state.pathDirection) === "backward";
  const start = data?.nodes.find((n) => n.step === 0);
  const loading = top.loading || answer.loading;
  return (
    <section class="card product" data-testid="paths" data-loading={loading} data-page={page}>
      <header class="product-head">
        <h2>Paths</h2>
        <form
          class="path-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (draft.trim()) update({ pathPage: draft.trim() });
          }}
        >
          <input
            aria-label="Page"
            ref={input}
            data-testid="path-page"
            list="path-pages"
            placeholder="/pricing"
            value={draft}
            onInput={(e) => setDraft(value(e))}
            onBlur={() => {
              if (!draft.trim()) setDraft(page);
            }}
          />
          <Suggestions id="path-pages" values={topPages} />
          <button type="submit">Explore</button>
        </form>
        <select
          aria-label="Direction"
          data-testid="path-direction"
          value={state.pathDirection}
          onChange={(e) => update({ pathDirection: value(e) === "backward" ? "backward" : "forward" })}
        >
          <option value="forward">Pages after</option>
          <option value="backward">Pages before</option>
        </select>
        <select
          aria-label="Depth"
          data-testid="path-depth"
          value={String(state.pathDepth)}
          onChange={(e) => update({ pathDepth: Number(value(e)) })}
        >
          {[1, 2, 3, 4, 5].map((d) => (
            <option value={String(d)}>
              {d} {d === 1 ? "step" : "steps"}
            </option>
          ))}
        </select>
        <span class="spacer" />
        {loading && <span class="muted">Loading…</span>}
      </header>
      {top.error && <p class="error">{top.error}</p>}
      {answer.error && <p class="error">{answer.error}</p>}
      {!page && top.fresh && (
        <p class="empty" data-testid="paths-empty">
          No page views in this range yet.
        </p>
      )}
      {data && page && !start && (
        <p class="empty" data-testid="paths-empty">
          No visit viewed {page} in this range.
        </p>
      )}
      {data && start && (
        <>
          <div class={backward ? "path-columns backward" : "path-columns"} data-testid="path-columns">
            {(backward ? [...steps].reverse() : steps).map((step) => {
              const nodes = data.nodes.filter((n) => n.step === step).sort((a, b) => b.visitors - a.visitors);
              return (
                <div class="path-step" data-step={step}>
                  <h3>{step === 0 ? "Page" : backward ? `${step} before` : `${step} after`}</h3>
                  {nodes.length === 0 && <p class="empty">No visit went on.</p>}
                  <ul>
                    {nodes.map((node) => (
                      <PathNode
                        node={node}
                        max={max}
                        start={start.visitors}
                        incoming={data.edges.filter((e) => e.step === node.step && e.to === node.name)}
                        onExplore={step > 0 && node.name !== "(other)" ? () => update({ pathPage: node.name }) : undefined}
                      />
                    ))}
                  </ul>
                </div>
              );
            })}
          </div>
          <h3 class="paths-title">Top paths</h3>
          {data.paths.length === 0 && (
            <p class="empty">
              No visit went {data.depth} {data.depth === 1 ? "page" : "pages"} {backward ? "back" : "on"} from {page}: fewer
              steps show shorter paths.
            </p>
          )}
          <ol class="path-list" data-testid="path-list">
            {data.paths.map((p) => (
              <li data-pages={p.pages.join(" ")} data-visitors={p.visitors}>
                <span class="label">{p.pages.join(" → ")}</span>
                <span class="num">{p.visitors}</span>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

function PathNode(props: {
  node: Node;
  max: number;
  start: number;
  incoming: { from: string; visitors: number }[];
  onExplore?: () => void;
}) {
  const { node, onExplore } = props;
  const from = props.incoming.map((e) => `${e.from}: ${e.visitors}`).join("\n");
  return (
    <li
      class={onExplore ? "row path-node clickable" : "row path-node"}
      data-step={node.step}
      data-name={node.name}
      data-visitors={node.visitors}
      data-dropoffs={node.dropoffs}
      role={onExplore ? "button" : undefined}
      tabIndex={onExplore ? 0 : undefined}
      onKeyDown={(e) => onExplore && (e.key === "Enter" || e.key === " ") && (e.preventDefault(), onExplore())}
      title={`${node.name}: ${node.visitors} visitors (${formatPercent((node.visitors / Math.max(1, props.start)) * 100)} of the first page)${from ? `\nfrom\n${from}` : ""}${onExplore ? "\nClick to explore from this page" : ""}`}
      onClick={onExplore}
    >
      <span class="bar" style={{ width: `${(node.visitors / props.max) * 100}%` }} />
      <span class="label">
        {node.name}
        {node.dropoffs > 0 && <span class="dropoff"> ↓ {node.dropoffs} ended</span>}
      </span>
      <span class="num">{node.visitors}</span>
    </li>
  );
}
