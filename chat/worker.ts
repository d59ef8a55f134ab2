/**
 * The entry of one worker thread when `workers` is more than 1: it runs a whole server on the
 * shared port (`reusePort`), and the rooms of all workers meet on their `BroadcastChannel`.
 * chat/workers.ts starts and watches these threads. A scrape of `/metrics` here asks the main
 * thread for the other workers' samples (`scrape`, answered by `peers`).
 */

import type { Config } from "./config.ts";
import type { PeerReport, Samples } from "./metrics.ts";
import { type RunningServer, startServer } from "./server.ts";
import { SCRAPE_MS } from "./workers.ts";

/**
 * What the main thread asks a worker (the answer carries the same `id`), and `peers`: its answer
 * to the worker's `scrape` of that id.
 */
export type ToWorker =
  | { type: "start"; id: number; config: Config; index: number; count: number }
  | { type: "stop"; id: number }
  | { type: "ping"; id: number }
  | { type: "samples"; id: number }
  | { type: "peers"; id: number; report: PeerReport };

/**
 * What a worker tells the main thread: `ready` once it can be asked, then answers, which carry
 * its samples where they can (null before its server has started); and `scrape`, its own request
 * for the other workers' samples, with its own.
 */
export type FromWorker =
  | { type: "ready" }
  | { type: "listening"; id: number; url: string; port: number; setupLink: string | null }
  | { type: "failed"; id: number; message: string }
  | { type: "stopped"; id: number }
  | { type: "pong"; id: number; samples: Samples | null }
  | { type: "samples"; id: number; samples: Samples | null }
  | { type: "scrape"; id: number; samples: Samples };

declare const self: {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
};

let server: RunningServer | null = null;
/** This worker's scrapes waiting for the main thread's `peers`, by id. */
const scrapes = new Map<number, (report: PeerReport) => void>();
let nextScrape = 1;

/**
 * Gives the main thread this worker's samples and gets the other `count - 1` workers'. The main
 * thread waits at most {@link SCRAPE_MS} for each; if it does not answer in twice that, the
 * scrape goes on with this worker's alone.
 */
function exchange(own: Samples, count: number): Promise<PeerReport> {
  const id = nextScrape++;
  const { promise, resolve } = Promise.withResolvers<PeerReport>();
  const timer = setTimeout(() => {
    scrapes.delete(id);
    resolve({ samples: [], stale: count - 1 });
  }, 2 * SCRAPE_MS);
  scrapes.set(id, (report) => {
    clearTimeout(timer);
    resolve(report);
  });
  self.postMessage({ type: "scrape", id, samples: own });
  return promise;
}

self.onmessage = async ({ data }) => {
  switch (data.type) {
    case "start":
      try {
        server = await startServer(data.config, {
          reusePort: true,
          name: `worker ${data.index}`,
          worker: data.index,
          exchange: (own) => exchange(own, data.count),
        });
        self.postMessage({
          type: "listening",
          id: data.id,
          url: server.url.href,
          port: server.port,
          setupLink: server.setupLink?.href ?? null,
        });
      } catch (error) {
        self.postMessage({ type: "failed", id: data.id, message: (error as Error).message });
      }
      return;
    case "stop":
      await server?.shutdown();
      self.postMessage({ type: "stopped", id: data.id });
      return;
    case "ping":
      self.postMessage({ type: "pong", id: data.id, samples: server?.samples() ?? null });
      return;
    case "samples":
      self.postMessage({ type: "samples", id: data.id, samples: server?.samples() ?? null });
      return;
    case "peers":
      scrapes.get(data.id)?.(data.report);
      scrapes.delete(data.id);
      return;
    default:
      // The main thread sends nothing else: anything else is a bug, and this worker dies of it.
      throw new Error(`unknown message from the main thread: ${JSON.stringify(data)}`);
  }
};

// Messages that arrive before a worker's module has finished loading are lost: say when to send.
self.postMessage({ type: "ready" });
