/**
 * The entry of one worker thread when `workers` is more than 1: it runs a whole server on the
 * shared port (`reusePort`), and the rooms of all workers meet on their `BroadcastChannel`.
 */

import type { Config } from "./config.ts";
import { type RunningServer, startServer } from "./server.ts";

/** What the main thread tells a worker. */
export type ToWorker = { type: "start"; config: Config; index: number } | { type: "stop" };

/** What a worker tells the main thread. */
export type FromWorker =
  | { type: "ready" }
  | { type: "listening"; url: string; port: number }
  | { type: "failed"; message: string }
  | { type: "stopped" };

declare const self: {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
};

let server: RunningServer | null = null;

self.onmessage = async ({ data }) => {
  if (data.type === "start") {
    try {
      server = await startServer(data.config, { reusePort: true, name: `worker ${data.index}` });
      self.postMessage({ type: "listening", url: server.url.href, port: server.port });
    } catch (error) {
      self.postMessage({ type: "failed", message: (error as Error).message });
    }
  } else {
    await server?.shutdown();
    self.postMessage({ type: "stopped" });
  }
};

// Messages that arrive before a worker's module has finished loading are lost: say when to send.
self.postMessage({ type: "ready" });
