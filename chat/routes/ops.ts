/** What an operator asks of a running server: is it up, and its counters. */

import type { Services } from "../services.ts";

/** `GET /healthz`: 200 while serving, 503 once shutdown has begun. */
export function healthz({ stopping }: Services): Response {
  return stopping
    ? Response.json({ status: "shutting down" }, { status: 503 })
    : Response.json({ status: "ok" });
}

/** `GET /metrics`: every counter and gauge in Prometheus' text format. */
export function metrics({ metrics, clients, rooms, history }: Services): Response {
  const text = metrics.render({
    connections: clients.size,
    rooms: rooms.size,
    historyMessages: history.count(),
  });
  return new Response(text, {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}
