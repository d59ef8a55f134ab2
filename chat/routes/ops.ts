/** What an operator asks of a running server: is it up, and its counters. */

import type { Services } from "../services.ts";

/** What `/healthz` says. */
export interface Health {
  status: "ok" | "degraded" | "stopping";
  store: "ok" | "failing";
  redis: "ok" | "down" | null;
  workers: number;
}

/**
 * `GET /healthz`: 200 while serving (`degraded` when Redis is away: posts fail with
 * `unavailable` until it is back), 503 once shutdown has begun or when the store is failing.
 */
export function healthz({ stopping, history, bus, config }: Services): Response {
  const store = history.failing ? "failing" : "ok";
  const status = stopping ? "stopping" : bus.redis === "down" ? "degraded" : "ok";
  const workers = config.workers === "auto" ? navigator.hardwareConcurrency : config.workers;
  const health: Health = { status, store, redis: bus.redis, workers };
  const healthy = status !== "stopping" && store === "ok";
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
