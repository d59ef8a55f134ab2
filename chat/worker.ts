/**
 * The entry of one worker thread when `workers` is more than 1: it runs a whole server on the
 * shared port (`reusePort`), and the rooms of all workers meet on their `BroadcastChannel`.
 * chat/workers.ts starts and watches these threads.
 */

import type { Config } from "./config.ts";
import { type RunningServer, startServer } from "./server.ts";

/** What the main thread asks a worker; the answer carries the same `id`. */
export type ToWorker =
  | { type: "start"; id: number; config: Config; index: number }
  | { type: "stop"; id: number }
  | { type: "ping"; id: number };

/** What a worker tells the main thread: `ready` once it can be asked, then answers. */
export type FromWorker =
  | { type: "ready" }
  | { type: "listening"; id: number; url: string; port: number; setupLink: string | null }
  | { type: "failed"; id: number; message: string }
  | { type: "stopped"; id: number }
  | { type: "pong"; id: number };

declare const self: {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
};

let server: RunningServer | null = null;

self.onmessage = async ({ data }) => {
  switch (data.type) {
    case "start":
      try {
        server = await startServer(data.config, { reusePort: true, name: `worker ${data.index}` });
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
      self.postMessage({ type: "pong", id: data.id });
      return;
    default:
      // The main thread sends nothing else: anything else is a bug, and this worker dies of it.
      throw new Error(`unknown message from the main thread: ${JSON.stringify(data)}`);
  }
};

// Messages that arrive before a worker's module has finished loading are lost: say when to send.
self.postMessage({ type: "ready" });
