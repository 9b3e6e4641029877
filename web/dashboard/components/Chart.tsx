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

/** `theme` only re-creates the chart so that it takes the theme's colours. */
export function Chart({ series, grain, theme }: { series: Series; grain: string; theme: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = host.current!;
    const styles = getComputedStyle(element);
    const accent = styles.getPropertyValue("--accent").trim() || "#6366f1";
    const second = styles.getPropertyValue("--accent-2").trim() || "#10b981";
    const text = styles.getPropertyValue("--muted").trim() || "#888";
    const grid = styles.getPropertyValue("--line").trim() || "#ddd";
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const options: uPlot.Options = {
      width: element.clientWidth,
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      axes: [{ ...axis, space: grain === "time:hour" ? 60 : 50 }, { ...axis, size: 50 }],
      series: [
        {},
        { label: "Visitors", stroke: accent, width: 2, fill: accent + "22", points: { show: series.labels.length < 40 } },
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
