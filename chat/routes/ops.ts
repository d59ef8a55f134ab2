/** What an operator asks of a running server: is it up, and its counters. */

import type { HistoryError } from "../history.ts";
import type { Services } from "../services.ts";

/** What `/healthz` says. */
export interface Health {
  status: "ok" | "degraded" | "stopping";
  store: "ok" | "failing";
  /** Why the store is failing (the file, the cause, what to do); only when it is. */
  storeError?: string;
  redis: "ok" | "down" | null;
  workers: number;
}

/** Store failures `/healthz` has logged: a probe every few seconds must not repeat them. */
const logged = new WeakSet<HistoryError>();

/**
 * `GET /healthz`: 200 while serving (`degraded` when Redis is away: posts fail with
 * `unavailable` until it is back), 503 once shutdown has begun or when the store is failing.
 */
export function healthz({ stopping, history, bus, config, log }: Services): Response {
  const failure = history.failure;
  const status = stopping ? "stopping" : bus.redis === "down" ? "degraded" : "ok";
  const workers = config.workers === "auto" ? navigator.hardwareConcurrency : config.workers;
  const health: Health = {
    status,
    store: failure === null ? "ok" : "failing",
    ...(failure === null ? {} : { storeError: failure.message }),
    redis: bus.redis,
    workers,
  };
  // A file replaced under the server is found here, and nowhere else says so.
  if (failure !== null && !logged.has(failure)) {
    logged.add(failure);
    log.error(`healthz: the history store is failing: ${failure.message}`);
  }
  const healthy = status !== "stopping" && failure === null;
  return Response.json(health, { status: healthy ? 200 : 503 });
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
