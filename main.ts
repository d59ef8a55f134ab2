/**
 * parley: start the chat server with `config.json`, `PORT` and flags (in one process, or in
 * `workers` threads sharing the port), and stop it cleanly on SIGINT or SIGTERM. Any start-up
 * problem is one sentence on stderr and exit code 1.
 */

import { type Config, ConfigError, loadConfig } from "./chat/config.ts";
import { startServer } from "./chat/server.ts";
import type { FromWorker, ToWorker } from "./chat/worker.ts";

/** What main needs of a started server, in one process or in workers. */
interface Started {
  url: URL;
  shutdown(): Promise<void>;
}

/** Starts `count` workers on one port: the first binds (port 0 picks one), the rest join it. */
async function startWorkers(config: Config, count: number): Promise<Started> {
  if (config.history.path === ":memory:") {
    throw new ConfigError(
      'workers share the history file, so "history.path" cannot be ":memory:" with "workers" above 1',
    );
  }
  const workers: Worker[] = [];
  /** The worker's next message; an error in it (a module that fails to load, too) rejects. */
  const next = (worker: Worker) =>
    new Promise<FromWorker>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<FromWorker>) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`a worker failed: ${event.message}`));
      };
    });
  const ask = (worker: Worker, message: ToWorker) => {
    const answer = next(worker);
    worker.postMessage(message);
    return answer;
  };
  const stop = async () => {
    await Promise.all(workers.map((worker) => ask(worker, { type: "stop" })));
    for (const worker of workers) worker.terminate();
  };
  let port = config.port;
  let url = "";
  for (let index = 1; index <= count; index++) {
    const worker = new Worker(new URL("./chat/worker.ts", import.meta.url), { type: "module" });
    await next(worker); // "ready"
    const answer = await ask(worker, { type: "start", config: { ...config, port }, index });
    if (answer.type !== "listening") {
      worker.terminate();
      await stop();
      throw new Error(answer.type === "failed" ? answer.message : "a worker did not start");
    }
    workers.push(worker);
    ({ port, url } = answer);
  }
  return { url: new URL(url), shutdown: stop };
}

if (import.meta.main) {
  try {
    const config = await loadConfig(Deno.args, (name) => Deno.env.get(name));
    const count = config.workers === "auto" ? navigator.hardwareConcurrency : config.workers;
    const server: Started = count > 1
      ? await startWorkers(config, count)
      : await startServer(config);
    const workers = count > 1 ? ` in ${count} workers` : "";
    console.log(`parley: chat at ${server.url}${workers} (log: ${config.logfilePath})`);
    const stop = async () => {
      await server.shutdown();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch (error) {
    console.error(`parley: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
