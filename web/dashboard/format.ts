// How numbers, durations and dimension values read on the dashboard.

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

export function formatMetric(metric: string, value: number | null | undefined): string {
  if (value == null) return "–";
  switch (metric) {
    case "bounce_rate":
      return `${Math.round(value)}%`;
    // Conversion rates are often small: a decimal place.
    case "conversion_rate":
      return `${Math.round(value * 10) / 10}%`;
    case "visit_duration":
    case "time_on_page":
      return formatDuration(value);
    case "views_per_visit":
      return value.toFixed(2);
    default:
      return value >= 10_000 ? compact.format(value) : String(Math.round(value * 100) / 100);
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** A duration that may last days (a funnel's window, the time between its steps): "2m 5s", "2h", "3d 4h". */
export function formatLongDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 86_400) return s >= 3600 && s % 3600 === 0 ? `${s / 3600}h` : formatDuration(s);
  const hours = Math.floor(s / 3600);
  return hours % 24 ? `${Math.floor(hours / 24)}d ${hours % 24}h` : `${hours / 24}d`;
}

const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

function flag(code: string): string {
  return /^[A-Z]{2}$/.test(code)
    ? String.fromCodePoint(...[...code].map((c) => 0x1f1a5 + c.charCodeAt(0)))
    : "";
}

/** A dimension value for people: country names with flags, "(none)" for empty. */
export function formatValue(dimension: string, value: string): string {
  if (!value) return dimension.startsWith("visit:source") || dimension === "visit:referrer" ? "Direct / None" : "(none)";
  if (dimension === "visit:country") {
    let name = value;
    try {
      name = regionNames?.of(value) || value;
    } catch (_) {
      // Not a region code: show it as it is.
    }
    return `${flag(value)} ${name}`;
  }
  return value;
}

export function timeAgo(iso: string, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return new Date(iso).toLocaleString();
}
