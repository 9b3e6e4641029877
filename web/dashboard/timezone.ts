// A site's wall clock: the chart's labels are the site's local time (shown as is, read as if
// UTC), while annotations are instants; these turn one into the other in the site's zone.

export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function formatIn(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    const options: Intl.DateTimeFormatOptions = {
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      hourCycle: "h23",
    };
    try {
      format = new Intl.DateTimeFormat("en-US", { ...options, timeZone });
    } catch (_) {
      // A zone this browser does not know: UTC, as the server's default.
      format = new Intl.DateTimeFormat("en-US", { ...options, timeZone: "UTC" });
    }
    formats.set(timeZone, format);
  }
  return format;
}

/** The wall clock in `timeZone` at the instant `ms` (UTC milliseconds). */
export function wallTime(ms: number, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const p of formatIn(timeZone).formatToParts(new Date(ms))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  return { year: parts.year, month: parts.month, day: parts.day, hour: parts.hour % 24, minute: parts.minute };
}

/** The wall clock as the chart's scale reads it: seconds, as if it were UTC. */
export function wallSeconds(wall: WallTime): number {
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute) / 1000;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DDTHH:MM`, what an `<input type="datetime-local">` holds. */
export function wallInputValue(wall: WallTime): string {
  return `${wall.year}-${pad(wall.month)}-${pad(wall.day)}T${pad(wall.hour)}:${pad(wall.minute)}`;
}

/** `YYYY-MM-DD HH:MM`, for people. */
export function wallText(wall: WallTime): string {
  return wallInputValue(wall).replace("T", " ");
}

/**
 * The instant (UTC milliseconds) when the clock in `timeZone` reads `value`
 * (`YYYY-MM-DDTHH:MM`); NaN when it is not such a value. In a gap of a daylight saving change
 * the clock jumps over, the instant an hour later.
 */
export function wallToInstant(value: string, timeZone: string): number {
  const asUtc = Date.parse(`${value}:00Z`);
  if (Number.isNaN(asUtc)) return NaN;
  const offset = (ms: number) => wallSeconds(wallTime(ms, timeZone)) * 1000 - Math.floor(ms / 60_000) * 60_000;
  // Twice: the offset at the first guess may differ from the offset at the answer.
  const guess = asUtc - offset(asUtc);
  return asUtc - offset(guess);
}

/** `YYYY-MM-DD` `days` after (or before) the date `date`. */
export function addDays(date: string, days: number): string {
  const ms = Date.parse(`${date.slice(0, 10)}T00:00:00Z`) + days * 86_400_000;
  return new Date(ms).toISOString().slice(0, 10);
}
