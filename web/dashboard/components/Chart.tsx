// The visitors and page views chart (uPlot): one line per metric over the range's buckets.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

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

/** `theme` only re-creates the chart so that it takes the theme's colours. */
export function Chart({ series, grain, theme }: { series: Series; grain: string; theme: string }) {
  const host = useRef<HTMLDivElement>(null);
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
    };
    const data: uPlot.AlignedData = [series.labels.map(timestamp), series.visitors, series.pageviews];
    const plot = new uPlot(options, data, element);
    const resize = new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height: 240 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series, grain, theme]);
  return <div class="chart" ref={host} data-testid="chart" />;
}
