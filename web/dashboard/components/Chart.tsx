// The visitors and page views chart (uPlot): one line per metric over the range's buckets,
// and the site's annotations as dashed vertical lines at their buckets (notes and fired alerts
// in two colours), with a marker over the plot that shows their texts on hover or focus.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Annotation } from "../api";
import { wallSeconds, wallText, wallTime } from "../timezone";

export interface Series {
  labels: string[];
  visitors: number[];
  pageviews: number[];
}

function timestamp(label: string): number {
  // Labels are the site's local time ("2026-01-05" or "2026-01-05 13:00:00"); shown as is.
  return Date.parse(label.replace(" ", "T") + (label.length === 10 ? "T00:00:00Z" : "Z")) / 1000;
}

/**
 * A theme colour as the canvas can take it: the variables hold `light-dark(...)`, which only
 * CSS resolves, so it is read back from an element's computed colour (`rgb(r, g, b)`).
 */
function themeColor(host: HTMLElement, variable: string): string {
  const probe = document.createElement("span");
  probe.style.color = `var(${variable})`;
  host.appendChild(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color;
}

/** An annotation placed on the chart. */
interface Marker {
  /** The start of its bucket on the chart's scale (the site's wall clock read as UTC, seconds). */
  x: number;
  annotation: Annotation;
  /** When, on the site's clock, for people. */
  when: string;
}

/** Each annotation at the start of the bucket (hour, day or month) its instant falls in, in the site's zone. */
function markers(annotations: Annotation[], grain: string, timeZone: string): Marker[] {
  return annotations.flatMap((annotation) => {
    const ms = Date.parse(annotation.at);
    if (Number.isNaN(ms)) return [];
    const wall = wallTime(ms, timeZone);
    const bucket = { ...wall, minute: 0 };
    if (grain !== "time:hour") bucket.hour = 0;
    if (grain === "time:month") bucket.day = 1;
    return [{ x: wallSeconds(bucket), annotation, when: wallText(wall) }];
  });
}

/** The markers of one kind in one bucket: drawn as one, their texts together. */
interface MarkerGroup {
  x: number;
  kind: Annotation["kind"];
  markers: Marker[];
}

/** Notes before alerts in a bucket; in each, by time. */
function groups(markers: Marker[]): MarkerGroup[] {
  const byKey = new Map<string, MarkerGroup>();
  for (const m of markers) {
    const key = `${m.x} ${m.annotation.kind}`;
    const group = byKey.get(key) ?? { x: m.x, kind: m.annotation.kind, markers: [] };
    group.markers.push(m);
    byKey.set(key, group);
  }
  const order = (g: MarkerGroup) => (g.kind === "note" ? 0 : 1);
  return [...byKey.values()].sort((a, b) => a.x - b.x || order(a) - order(b));
}

/** The width of a marker's hover strip, and how far a bucket's second marker stands from its first. */
const MARKER_PX = 7;

/**
 * Draws the markers `current()` returns, one per kind and bucket: a dashed line on the canvas,
 * and over the plot a marker element (a strip the height of the plot) whose text shows on
 * hover or focus. A bucket's notes and alerts stand side by side.
 */
function annotationsPlugin(current: () => Marker[], colors: Record<Annotation["kind"], string>): uPlot.Plugin {
  let layer: HTMLDivElement;
  return {
    hooks: {
      init: (u) => {
        layer = document.createElement("div");
        layer.className = "annotations";
        u.over.appendChild(layer);
      },
      draw: (u) => {
        layer.replaceChildren();
        const { min, max } = u.scales.x;
        if (min == null || max == null) return;
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        const width = u.over.clientWidth;
        let previous: number | null = null;
        let nth = 0;
        for (const g of groups(current())) {
          if (g.x < min || g.x > max) continue;
          nth = g.x === previous ? nth + 1 : 0;
          previous = g.x;
          const shift = nth * MARKER_PX;
          const left = u.valToPos(g.x, "x") + shift;
          const canvasX = Math.round(u.valToPos(g.x, "x", true) + shift * uPlot.pxRatio) + 0.5;
          ctx.save();
          ctx.strokeStyle = colors[g.kind];
          ctx.lineWidth = 1.5 * uPlot.pxRatio;
          ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
          ctx.beginPath();
          ctx.moveTo(canvasX, top);
          ctx.lineTo(canvasX, top + height);
          ctx.stroke();
          ctx.restore();

          const texts = g.markers.map((m) => `${m.when} · ${m.annotation.text}`);
          const marker = document.createElement("span");
          marker.className = `annotation-marker ${g.kind}${left > width / 2 ? " flip" : ""}`;
          marker.style.left = `${left}px`;
          marker.tabIndex = 0;
          marker.setAttribute("role", "img");
          marker.setAttribute("aria-label", `${g.kind === "alert" ? "Alert" : "Note"}: ${texts.join("; ")}`);
          marker.dataset.testid = "annotation-marker";
          marker.dataset.kind = g.kind;
          marker.dataset.annotationIds = g.markers.map((m) => m.annotation.annotation_id).join(" ");
          marker.dataset.text = texts.join("\n");
          layer.appendChild(marker);
        }
      },
    },
  };
}

/**
 * `theme` only re-creates the chart so that it takes the theme's colours; new annotations
 * redraw it. `timezone` is the site's, in which the chart's labels are.
 */
export function Chart({
  series,
  grain,
  theme,
  annotations = [],
  timezone = "UTC",
}: {
  series: Series;
  grain: string;
  theme: string;
  annotations?: Annotation[];
  timezone?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const placed = useRef<Marker[]>([]);
  placed.current = markers(annotations, grain, timezone);
  useEffect(() => {
    plot.current?.redraw(false, false);
  }, [annotations, grain, timezone]);
  useEffect(() => {
    const element = host.current!;
    const accent = themeColor(element, "--accent");
    const second = themeColor(element, "--accent-2");
    const text = themeColor(element, "--muted");
    const grid = themeColor(element, "--line");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const options: uPlot.Options = {
      width: element.clientWidth,
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      axes: [{ ...axis, space: grain === "time:hour" ? 60 : 50 }, { ...axis, size: 50 }],
      series: [
        {},
        { label: "Visitors", stroke: accent, width: 2, fill: accent.replace("rgb(", "rgba(").replace(")", ", 0.13)"), points: { show: series.labels.length < 40 } },
        { label: "Pageviews", stroke: second, width: 2, points: { show: series.labels.length < 40 } },
      ],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      plugins: [
        annotationsPlugin(() => placed.current, {
          note: themeColor(element, "--annotation"),
          alert: themeColor(element, "--bad"),
        }),
      ],
    };
    const data: uPlot.AlignedData = [series.labels.map(timestamp), series.visitors, series.pageviews];
    const chart = new uPlot(options, data, element);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height: 240 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current = null;
      chart.destroy();
    };
  }, [series, grain, theme]);
  return <div class="chart" ref={host} data-testid="chart" />;
}
