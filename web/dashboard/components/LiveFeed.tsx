// The current visitors and a feed of events as the server stores them (`/api/live`),
// starting from the latest stored events.

import { useEffect, useState } from "preact/hooks";
import { openLive, recentEvents, type LiveMessage } from "../api";
import { timeAgo } from "../format";

interface FeedItem {
  name: string;
  path: string;
  timestamp: string;
  detail: string;
}

const FEED_LENGTH = 30;

export function LiveFeed({ token, site, onEvent }: { token: string; site: string; onEvent: () => void }) {
  const [visitors, setVisitors] = useState<number | null>(null);
  const [connected, setConnected] = useState(false);
  const [items, setItems] = useState<FeedItem[]>([]);
  const [, setTick] = useState(0);

  useEffect(() => {
    setItems([]);
    setVisitors(null);
    const load = () =>
      recentEvents(token, site, FEED_LENGTH)
        .then((events) =>
          setItems(
            events.map((e) => ({
              name: e.event_type,
              path: e.page_url,
              timestamp: e.timestamp,
              detail: [e.browser, e.device, e.country].filter(Boolean).join(" · "),
            })),
          ),
        )
        .catch(() => {});
    load();
    const close = openLive(
      token,
      site,
      (message: LiveMessage) => {
        if (message.type === "visitors") setVisitors(message.current_visitors);
        else if (message.type === "resync") load();
        else {
          const e = message.event;
          const item = {
            name: e.name,
            path: e.pathname,
            timestamp: e.timestamp,
            detail: [e.browser, e.device, e.country].filter(Boolean).join(" · "),
          };
          setItems((old) => [item, ...old].slice(0, FEED_LENGTH));
          onEvent();
        }
      },
      setConnected,
    );
    const clock = setInterval(() => setTick((t) => t + 1), 10_000);
    return () => {
      close();
      clearInterval(clock);
    };
  }, [token, site]);

  return (
    <section class="card live" data-testid="live">
      <header>
        <h2>
          <span class={connected ? "pulse on" : "pulse"} title={connected ? "Live" : "Reconnecting"} />
          Live
        </h2>
        <span class="current" data-testid="current-visitors" data-value={visitors ?? ""}>
          {visitors == null ? "…" : visitors} current visitor{visitors === 1 ? "" : "s"}
        </span>
      </header>
      {items.length === 0 && <p class="empty">No events yet</p>}
      <ul class="feed" data-testid="feed">
        {items.map((item) => (
          <li data-name={item.name} data-path={item.path}>
            <span class={item.name === "pageview" ? "badge" : "badge custom"}>{item.name}</span>
            <span class="label">{item.path}</span>
            <span class="muted">{timeAgo(item.timestamp)}</span>
            {item.detail && <span class="muted detail">{item.detail}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}
