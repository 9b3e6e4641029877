// heartbeat.js: the browser tracker. Sends Plausible's Events API payload
// ({n, u, d, r, p, revenue, i, h}) to `POST /api/event` as text/plain, so a cross-origin
// send needs no CORS preflight, with sendBeacon (or a keepalive fetch where a beacon is
// refused), and never sets a cookie.
//
// Two ways in:
//   <script defer data-domain="example.com" src="https://stats.example.com/js/heartbeat.js"></script>
//   Heartbeat.init({domain: "example.com", endpoint: "https://stats.example.com/api/event"})
// Script attributes mirror init's options: data-api (endpoint), data-hash (hash routing),
// data-outbound-links, data-file-downloads, data-track-localhost, data-manual (no automatic
// page views). Without an endpoint, events go to /api/event on the origin the script came
// from. Nothing is sent from localhost or file: pages unless trackLocalhost is set, nor while
// the page is being prerendered (the page view waits until it is shown), nor when
// localStorage holds `heartbeat_ignore=true`.
//
// Kept under 1.5 KB gzipped: `npm run build` prints the size; the browser tests check it.

interface Options {
  domain: string;
  endpoint?: string;
  hashMode?: boolean;
  trackLocalhost?: boolean;
  outboundLinks?: boolean;
  fileDownloads?: boolean;
  /** false: no automatic page views; call Heartbeat.pageview() yourself. */
  autoPageviews?: boolean;
}

interface EventOptions {
  props?: Record<string, string | number | boolean>;
  revenue?: { amount: number | string; currency: string };
  /** false: the event does not keep a visit from being a bounce. */
  interactive?: boolean;
  /** Page URL override. */
  url?: string;
  callback?: () => void;
}

type Tracker = {
  init(options: Options): void;
  track(name: string, options?: EventOptions): void;
  pageview(options?: EventOptions): void;
};

const FILE_TYPES =
  /\.(pdf|xlsx?|docx?|txt|rtf|csv|exe|key|pps|pptx?|7z|pkg|rar|gz|zip|avi|mov|mp4|mpe?g|wmv|midi?|mp3|wav|wma|dmg|iso|msi)$/i;

const win = window;
const doc = document;
const loc = location;
const script = doc.currentScript as HTMLScriptElement | null;
let config: Options | undefined;
let lastPage: string | undefined;

function send(name: string, options: EventOptions = {}): void {
  const done = options.callback || (() => {});
  const c = config;
  let ignored: string | null = null;
  try {
    ignored = localStorage.getItem("heartbeat_ignore");
  } catch (_) {
    // Storage may be blocked; then nobody opted out.
  }
  if (
    !c ||
    ignored == "true" ||
    (!c.trackLocalhost &&
      (/^(localhost|127(\.\d+){3}|\[::1\])$/.test(loc.hostname) || loc.protocol == "file:"))
  ) {
    return done();
  }
  const payload: Record<string, unknown> = {
    n: name,
    u: options.url || loc.href,
    d: c.domain,
    r: doc.referrer || null,
  };
  if (options.props) payload.p = options.props;
  if (options.revenue) payload.revenue = options.revenue;
  if (options.interactive === false) payload.i = false;
  if (c.hashMode) payload.h = true;
  const body = JSON.stringify(payload);
  const endpoint = c.endpoint!;
  if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
    fetch(endpoint, {
      method: "POST",
      body,
      keepalive: true,
      headers: { "Content-Type": "text/plain" },
    }).catch(() => {});
  }
  done();
}

function pageview(options?: EventOptions): void {
  send("pageview", options);
}

/** A page view when the page (path, or hash in hash mode) changed since the last one. */
function autoPageview(): void {
  const page = loc.pathname + (config!.hashMode ? loc.hash : "");
  if (page == lastPage) return;
  lastPage = page;
  pageview();
}

function onClick(event: MouseEvent): void {
  if (event.type == "auxclick" && event.button != 1) return;
  const link = (event.target as Element | null)?.closest?.("a[href]") as HTMLAnchorElement | null;
  if (!link) return;
  const c = config!;
  const props = { url: link.href };
  if (c.outboundLinks && link.host && link.host != loc.host) {
    send("Outbound Link: Click", { props });
  } else if (c.fileDownloads && FILE_TYPES.test(link.pathname)) {
    send("File Download", { props });
  }
}

function init(options: Options): void {
  if (config) return;
  config = options;
  options.endpoint ||= new URL("/api/event", script ? script.src : loc.href).href;
  doc.addEventListener("click", onClick, true);
  doc.addEventListener("auxclick", onClick, true);
  if (options.autoPageviews === false) return;
  const history = win.history;
  const push = history.pushState;
  history.pushState = function (...args) {
    push.apply(this, args);
    autoPageview();
  };
  win.addEventListener("popstate", autoPageview);
  if (options.hashMode) win.addEventListener("hashchange", autoPageview);
  const docWithPrerender = doc as Document & { prerendering?: boolean };
  if (docWithPrerender.prerendering) {
    doc.addEventListener("prerenderingchange", autoPageview, { once: true });
  } else {
    autoPageview();
  }
}

const tracker: Tracker = { init, track: send, pageview };
(win as unknown as { Heartbeat: Tracker }).Heartbeat = tracker;

if (script) {
  const attr = (name: string) => script.getAttribute("data-" + name);
  const has = (name: string) => script.hasAttribute("data-" + name);
  // `client-domain`: the original Heartbeat's (seed 000) script tag, so swapping only `src`
  // keeps a site counting.
  const domain = attr("domain") || script.getAttribute("client-domain");
  if (domain) {
    init({
      domain,
      endpoint: attr("api") || undefined,
      hashMode: has("hash"),
      trackLocalhost: has("track-localhost"),
      outboundLinks: has("outbound-links"),
      fileDownloads: has("file-downloads"),
      autoPageviews: !has("manual"),
    });
  }
}
