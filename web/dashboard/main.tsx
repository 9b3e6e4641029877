// The dashboard: sign in with a key, then one site's statistics for a date range and
// filters, all read from the Stats API v2 (`POST /api/v2/query`), with the live feed beside
// and the site's annotations on the chart; or one of the product views (funnels, retention,
// paths, alerts).
// The view lives in the URL (state.ts); the key lives in this browser (api.ts).

import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  ApiError,
  listImports,
  listSites,
  needsSetup,
  query,
  recentEvents,
  saveToken,
  savedToken,
  signInWithPassword,
  signOutSession,
  unlockShare,
  type ResultRow,
  type Site,
  type SiteImport,
} from "./api";
import { Alerts } from "./components/Alerts";
import { AnnotationControl, useAnnotations } from "./components/Annotations";
import { Chart, type Series } from "./components/Chart";
import { Funnels } from "./components/Funnels";
import { LiveFeed } from "./components/LiveFeed";
import { Panel, type Tab } from "./components/Panel";
import { Paths } from "./components/Paths";
import type { ProductViewProps } from "./components/product";
import { Retention } from "./components/Retention";
import { TopStats, topMetrics } from "./components/TopStats";
import { formatValue } from "./format";
import { PERIODS, VIEWS, chartGrain, dateRange, queryFilters, readState, stateSearch, type ViewState } from "./state";
import "./style.css";

const DIMENSION_NAMES: Record<string, string> = {
  "event:page": "Page",
  "event:name": "Event",
  "visit:entry_page": "Entry page",
  "visit:exit_page": "Exit page",
  "visit:source": "Source",
  "visit:referrer": "Referrer",
  "visit:channel": "Channel",
  "visit:utm_source": "UTM source",
  "visit:utm_medium": "UTM medium",
  "visit:utm_campaign": "UTM campaign",
  "visit:country": "Country",
  "visit:region": "Region",
  "visit:city": "City",
  "visit:device": "Device",
  "visit:browser": "Browser",
  "visit:os": "OS",
  "event:goal": "Goal",
};

const NOT_PAGEVIEW: [string, string, string[]] = ["is_not", "event:name", ["pageview"]];

const PANELS: { title: string; tabs: Tab[] }[] = [
  {
    title: "Pages",
    tabs: [
      { label: "Top pages", dimension: "event:page", metrics: ["visitors", "pageviews"] },
      { label: "Entry pages", dimension: "visit:entry_page", metrics: ["visitors"] },
      { label: "Exit pages", dimension: "visit:exit_page", metrics: ["visitors"] },
    ],
  },
  {
    title: "Sources",
    tabs: [
      { label: "Channels", dimension: "visit:channel", metrics: ["visitors"] },
      { label: "Sources", dimension: "visit:source", metrics: ["visitors"] },
      { label: "Referrers", dimension: "visit:referrer", metrics: ["visitors"] },
      { label: "UTM source", dimension: "visit:utm_source", metrics: ["visitors"] },
      { label: "UTM medium", dimension: "visit:utm_medium", metrics: ["visitors"] },
      { label: "UTM campaign", dimension: "visit:utm_campaign", metrics: ["visitors"] },
    ],
  },
  {
    title: "Locations",
    tabs: [
      { label: "Countries", dimension: "visit:country", metrics: ["visitors"] },
      { label: "Regions", dimension: "visit:region", metrics: ["visitors"] },
      { label: "Cities", dimension: "visit:city", metrics: ["visitors"] },
    ],
  },
  {
    title: "Devices",
    tabs: [
      { label: "Devices", dimension: "visit:device", metrics: ["visitors"] },
      { label: "Browsers", dimension: "visit:browser", metrics: ["visitors"] },
      { label: "OS", dimension: "visit:os", metrics: ["visitors"] },
    ],
  },
  {
    title: "Goals",
    tabs: [{ label: "Goals", dimension: "event:goal", metrics: ["visitors", "events", "conversion_rate"] }],
  },
  {
    title: "Custom events",
    tabs: [{ label: "Events", dimension: "event:name", metrics: ["visitors", "events"], extraFilters: [NOT_PAGEVIEW] }],
  },
];

function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(localStorage.getItem("heartbeat_theme") || "auto");
  // Set while rendering, not in an effect: the chart's effect (a child's, so it runs first)
  // reads the theme's colours.
  document.documentElement.dataset.theme = theme;
  useEffect(() => localStorage.setItem("heartbeat_theme", theme), [theme]);
  const next = () => setTheme((t) => (t === "auto" ? "dark" : t === "dark" ? "light" : "auto"));
  return [theme, next];
}

function SignIn({ onToken, error }: { onToken: (token: string) => void; error: string | null }) {
  const [firstRun, setFirstRun] = useState(false);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [key, setKey] = useState("");
  const [accountError, setAccountError] = useState<string | null>(null);
  useEffect(() => {
    needsSetup()
      .then(setFirstRun)
      .catch(() => setFirstRun(false));
  }, []);
  const field = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  return (
    <main class="sign-in">
      <div class="card">
        <h1>♥ Heartbeat</h1>
        <form
          data-testid="account-form"
          onSubmit={(e) => {
            e.preventDefault();
            setAccountError(null);
            signInWithPassword(email.trim(), password, firstRun)
              .then(onToken)
              .catch((err) => setAccountError(err instanceof Error ? err.message : String(err)));
          }}
        >
          <p class="muted">
            {firstRun ? "No account exists yet: create the owner's account." : "Sign in with your account."}
          </p>
          <input name="email" type="email" autocomplete="username" placeholder="Email" value={email} onInput={field(setEmail)} />
          <input
            name="password"
            type="password"
            autocomplete={firstRun ? "new-password" : "current-password"}
            placeholder="Password"
            value={password}
            onInput={field(setPassword)}
          />
          <button type="submit" data-testid="account-submit">
            {firstRun ? "Create owner account" : "Sign in"}
          </button>
          {accountError && (
            <p class="error" data-testid="account-error">
              {accountError}
            </p>
          )}
        </form>
        <form
          data-testid="key-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (key.trim()) onToken(key.trim());
          }}
        >
          <p class="muted">Or use the admin token or a site's read key. It stays in this browser.</p>
          <input name="token" type="password" autocomplete="off" placeholder="hb_…" value={key} onInput={field(setKey)} />
          <button type="submit" data-testid="key-submit">
            Use key
          </button>
          {error && (
            <p class="error" data-testid="sign-in-error">
              {error}
            </p>
          )}
        </form>
      </div>
    </main>
  );
}

/** A public link that needs its password before it shows the site. */
function ShareUnlock({ share, onToken }: { share: string; onToken: (token: string) => void }) {
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <main class="sign-in">
      <form
        class="card"
        data-testid="share-form"
        onSubmit={(e) => {
          e.preventDefault();
          unlockShare(share, password)
            .then(onToken)
            .catch((err) => setError(err instanceof Error ? err.message : String(err)));
        }}
      >
        <h1>♥ Heartbeat</h1>
        <p class="muted">This shared dashboard needs its password.</p>
        <input
          name="share-password"
          type="password"
          placeholder="Password"
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        <button type="submit" data-testid="share-submit">
          Show the dashboard
        </button>
        {error && (
          <p class="error" data-testid="share-error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function RangePicker({ state, update }: { state: ViewState; update: (s: Partial<ViewState>) => void }) {
  const today = new Date().toISOString().slice(0, 10);
  return (
    <div class="range">
      <select
        aria-label="Date range"
        data-testid="period"
        value={state.period}
        onChange={(e) => {
          const period = (e.target as HTMLSelectElement).value;
          update(period === "custom" ? { period, from: state.from || today, to: state.to || today } : { period });
        }}
      >
        {PERIODS.map(([value, label]) => (
          <option value={value}>{label}</option>
        ))}
      </select>
      {state.period === "custom" && (
        <>
          <input type="date" aria-label="From" value={state.from} max={state.to} onChange={(e) => update({ from: (e.target as HTMLInputElement).value })} />
          <input type="date" aria-label="To" value={state.to} min={state.from} onChange={(e) => update({ to: (e.target as HTMLInputElement).value })} />
        </>
      )}
    </div>
  );
}

/** Property breakdowns of the custom event the view is filtered on, keys taken from its recent events. */
function useEventPropKeys(token: string, site: string, eventName: string | undefined, refresh: number): string[] {
  const [keys, setKeys] = useState<string[]>([]);
  useEffect(() => {
    if (!eventName || eventName === "pageview") return setKeys([]);
    recentEvents(token, site, 200)
      .then((events) => {
        const found = new Set<string>();
        for (const e of events) if (e.event_type === eventName) Object.keys(e.metadata || {}).forEach((k) => found.add(k));
        setKeys([...found].sort());
      })
      .catch(() => setKeys([]));
  }, [token, site, eventName, refresh]);
  return keys;
}

function Dashboard({ token, sites, signOut }: { token: string; sites: Site[]; signOut: () => void }) {
  const [state, setState] = useState<ViewState>(() => readState());
  const [theme, nextTheme] = useTheme();
  const [top, setTop] = useState<ResultRow | null>(null);
  const [series, setSeries] = useState<Series | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refresh, setRefresh] = useState(0);
  const site = state.site && sites.some((s) => s.site_id === state.site) ? state.site : sites[0]?.site_id;

  const update = useCallback((change: Partial<ViewState>, push = true) => {
    setState((old) => {
      const next = { ...old, ...change };
      const search = stateSearch(next);
      if (search !== location.search) history[push ? "pushState" : "replaceState"](null, "", search);
      return next;
    });
  }, []);
  useEffect(() => {
    const onPop = () => setState(readState());
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, []);
  useEffect(() => {
    if (site && site !== state.site) update({ site }, false);
  }, [site]);

  // New events refresh the figures, at most every 5 seconds; and once a minute anyway.
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const onLiveEvent = useCallback(() => {
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = undefined;
      setRefresh((r) => r + 1);
    }, 5000);
  }, []);
  useEffect(() => {
    const timer = setInterval(() => setRefresh((r) => r + 1), 60_000);
    return () => clearInterval(timer);
  }, []);

  // The site's imports of statistics: the toggle shows only when there are some.
  const [siteImports, setSiteImports] = useState<SiteImport[]>([]);
  useEffect(() => {
    if (!site) return;
    listImports(token, site)
      .then(setSiteImports)
      .catch(() => setSiteImports([]));
  }, [token, site]);
  const imports = state.imports && siteImports.length > 0;
  const [importsSkipped, setImportsSkipped] = useState(false);
  const [hourlyWithoutImports, setHourlyWithoutImports] = useState(false);

  const range = dateRange(state);
  const filters = queryFilters(state);
  const headline = topMetrics(state.filters.map(([d]) => d));
  const grain = chartGrain(state);
  const overview = state.view === "overview";
  const key = JSON.stringify([site, range, filters, refresh, imports, overview]);
  useEffect(() => {
    if (!site || !overview) return;
    let cancelled = false;
    setError(null);
    const fail = (err: Error) => !cancelled && setError(err.message);
    query(token, {
      site_id: site,
      metrics: headline.map(([m]) => m),
      date_range: range,
      filters,
      include: { comparisons: { mode: "previous_period" }, imports },
    })
      .then((r) => {
        if (cancelled) return;
        setTop(r.results[0] || { metrics: [], dimensions: [] });
        setImportsSkipped(imports && r.meta.imports_skip_reason === "unsupported_query");
      })
      .catch(fail);
    query(token, {
      site_id: site,
      metrics: ["visitors", "pageviews"],
      date_range: range,
      dimensions: [grain],
      filters,
      include: { time_labels: true, imports },
    })
      .then((r) => {
        if (cancelled) return;
        setHourlyWithoutImports(imports && r.meta.imports_skip_reason === "unsupported_interval");
        const byLabel = new Map(r.results.map((row) => [row.dimensions[0], row.metrics]));
        const labels = r.meta.time_labels || r.results.map((row) => row.dimensions[0]);
        setSeries({
          labels,
          visitors: labels.map((l) => (byLabel.get(l)?.[0] as number) ?? 0),
          pageviews: labels.map((l) => (byLabel.get(l)?.[1] as number) ?? 0),
        });
      })
      .catch(fail);
    return () => {
      cancelled = true;
    };
  }, [key, grain]);

  const eventFilter = state.filters.find(([d]) => d === "event:name")?.[1];
  const propKeys = useEventPropKeys(token, site || "", eventFilter, refresh);
  const propTabs = useMemo<Tab[]>(
    () => propKeys.map((k) => ({ label: k, dimension: `event:props:${k}`, metrics: ["visitors", "events"] })),
    [propKeys.join()],
  );

  // The chart's annotations, asked again with the figures and after one is added.
  const [annotationsAdded, setAnnotationsAdded] = useState(0);
  const annotations = useAnnotations(token, site || "", overview ? (series?.labels ?? null) : null, grain, [refresh, annotationsAdded]);

  const addFilter = (dimension: string, value: string) => {
    const rest = state.filters.filter(([d]) => d !== dimension);
    update({ filters: [...rest, [dimension, value]] });
  };

  if (!site) {
    return (
      <main class="sign-in">
        <div class="card">
          <h1>No sites yet</h1>
          <p class="muted">Create one with <code>POST /api/site/create</code> (see the README), then reload.</p>
          <button onClick={signOut}>Sign out</button>
        </div>
      </main>
    );
  }
  const current = sites.find((s) => s.site_id === site)!;
  const panelProps = { token, site, dateRange: range, filters, imports, onFilter: addFilter, refresh };
  const productProps: ProductViewProps = { token, site, dateRange: range, filters, refresh, state, update, readOnly: !!SHARE };
  return (
    <>
      <header class="top">
        <div class="brand">♥ Heartbeat</div>
        <select
          aria-label="Site"
          data-testid="site"
          value={site}
          onChange={(e) => update({ site: (e.target as HTMLSelectElement).value, filters: [], funnel: "", pathPage: "" })}
        >
          {sites.map((s) => (
            <option value={s.site_id}>{s.domain || s.name}</option>
          ))}
        </select>
        <nav class="views" aria-label="Views" data-testid="views">
          {VIEWS.map(([view, label]) => (
            <a
              href={stateSearch({ ...state, site, view })}
              class={view === state.view ? "view active" : "view"}
              aria-current={view === state.view ? "page" : undefined}
              data-view={view}
              onClick={(e) => {
                if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                e.preventDefault();
                update({ view });
              }}
            >
              {label}
            </a>
          ))}
        </nav>
        <RangePicker state={state} update={update} />
        {overview && siteImports.length > 0 && (
          <label class="imports-toggle" title={`Imported: ${siteImports.map((i) => `${i.start_date} to ${i.end_date}`).join(", ")}`}>
            <input
              type="checkbox"
              data-testid="imports"
              checked={state.imports}
              onChange={(e) => update({ imports: (e.target as HTMLInputElement).checked })}
            />
            Imported data
          </label>
        )}
        <span class="spacer" />
        <button class="ghost" onClick={nextTheme} title="Theme: auto, dark, light" data-testid="theme">
          {theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}
        </button>
        <button class="ghost" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main class="dashboard">
        {state.filters.length > 0 && (
          <div class="filters" data-testid="filters">
            {state.filters.map(([dimension, value]) => (
              <span class="chip" data-dimension={dimension} data-value={value}>
                {DIMENSION_NAMES[dimension] || dimension.replace("event:props:", "")} is {formatValue(dimension, value)}
                <button
                  aria-label="Remove filter"
                  onClick={() => update({ filters: state.filters.filter(([d]) => d !== dimension) })}
                >
                  ×
                </button>
              </span>
            ))}
            <button class="ghost" onClick={() => update({ filters: [] })}>
              Clear all
            </button>
          </div>
        )}
        {overview ? (
          <>
            {error && <p class="error card">{error}</p>}
            {importsSkipped && (
              <p class="muted" data-testid="imports-skipped">
                Imported data is left out: the filters applied are not in the imported statistics.
              </p>
            )}
            <TopStats row={top} metrics={headline} />
            <section class="card">
              <header class="chart-head">
                <h2 class="chart-title">
                  Visitors and pageviews <span class="muted">({current.timezone})</span>
                </h2>
                {!SHARE && (
                  <AnnotationControl token={token} site={site} timezone={current.timezone} onAdded={() => setAnnotationsAdded((n) => n + 1)} />
                )}
              </header>
              {series && <Chart series={series} grain={grain} theme={theme} annotations={annotations} timezone={current.timezone} />}
              {hourlyWithoutImports && (
                <p class="muted" data-testid="chart-without-imports">
                  Imported data is by day: this hourly chart leaves it out.
                </p>
              )}
            </section>
            <div class="grid">
              <div class="panels">
                {PANELS.map((p) => (
                  <Panel {...panelProps} title={p.title} tabs={p.tabs} />
                ))}
                {propTabs.length > 0 && <Panel {...panelProps} title={`Properties of ${eventFilter}`} tabs={propTabs} />}
              </div>
              <LiveFeed token={token} site={site} onEvent={onLiveEvent} />
            </div>
          </>
        ) : (
          <ProductView view={state.view} {...productProps} />
        )}
      </main>
    </>
  );
}

/** The Funnels, Retention, Paths or Alerts view, keyed by the site so that a new site starts afresh. */
function ProductView({ view, ...props }: ProductViewProps & { view: ViewState["view"] }) {
  if (view === "funnels") return <Funnels key={props.site} {...props} />;
  if (view === "retention") return <Retention key={props.site} {...props} />;
  if (view === "alerts") return <Alerts key={props.site} {...props} />;
  return <Paths key={props.site} {...props} />;
}

/** A public link's token (`?share=`): shown read-only, never kept in local storage. */
const SHARE = new URLSearchParams(location.search).get("share");

function App() {
  const [token, setToken] = useState<string | null>(SHARE ?? savedToken());
  const [sites, setSites] = useState<Site[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [shareLocked, setShareLocked] = useState(false);
  useEffect(() => {
    if (!token) return;
    listSites(token)
      .then((list) => {
        if (!SHARE) saveToken(token);
        setSites(list);
      })
      .catch((err) => {
        if (SHARE && token === SHARE && err instanceof ApiError && err.status === 401) {
          setShareLocked(true);
          return;
        }
        setError(err instanceof ApiError && err.status === 401 ? "That key is not valid." : String(err.message));
        if (!SHARE) saveToken(null);
        setToken(null);
      });
  }, [token]);
  const signOut = () => {
    if (token) signOutSession(token).catch(() => undefined);
    saveToken(null);
    setSites(null);
    setToken(null);
  };
  if (SHARE && shareLocked && !sites) {
    return <ShareUnlock share={SHARE} onToken={(t) => (setShareLocked(false), setToken(t))} />;
  }
  if (!token) return <SignIn onToken={(t) => (setError(null), setToken(t))} error={error} />;
  if (!sites) return <main class="sign-in muted">Loading…</main>;
  return <Dashboard token={token} sites={sites} signOut={signOut} />;
}

render(<App />, document.getElementById("app")!);
