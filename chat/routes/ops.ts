/** What an operator asks of a running server: is it up, and its counters. */

import { HistoryError } from "../history.ts";
import { exposition, type Samples, wholeProcess } from "../metrics.ts";
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

/**
 * `GET /metrics`: the whole process's counters and gauges in Prometheus' text format. With
 * workers, whichever answers asks the others through the main thread (see `workers.ts`); one that
 * does not answer in time is counted with its last report and in `parley_metrics_stale_workers`.
 */
export async function metrics(services: Services): Promise<Response> {
  let samples = ownSamples(services);
  const exchange = services.metrics.exchange;
  if (exchange !== null) {
    const peers = await exchange(samples);
    samples = wholeProcess(
      { ...samples, parley_metrics_stale_workers: { "": peers.stale } },
      peers.samples,
    );
  }
  return new Response(exposition(samples), {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}

/**
 * This server's own samples, for its scrape or another worker's. A failing store leaves out its
 * message count, not the rest: `/healthz` says what is wrong.
 */
export function ownSamples({ metrics, rooms, history }: Services): Samples {
  let historyMessages: number | null = null;
  try {
    historyMessages = history.count();
  } catch (error) {
    if (!(error instanceof HistoryError)) throw error;
  }
  return metrics.samples({ rooms: rooms.size, historyMessages });
}
