/**
 * parley: start the chat server with `config.json`, `PORT` and flags (in one process, or in
 * `workers` threads sharing the port), and stop it cleanly on SIGINT or SIGTERM. Any start-up
 * problem is one sentence on stderr and exit code 1; so is a worker that dies, for a supervisor
 * to restart parley. Shutdown is bounded: it exits within {@link SHUTDOWN_MS} whatever hangs.
 */

import { loadConfig } from "./chat/config.ts";
import { setupLine } from "./chat/identity.ts";
import { startServer } from "./chat/server.ts";
import { startWorkers, type WorkerFailure } from "./chat/workers.ts";

/** What main needs of a started server, in one process or in workers. */
interface Started {
  url: URL;
  /** The link that creates the first account, printed once (see `IdentityService.announce`). */
  setupLink: URL | null;
  /** Settles if the server can no longer serve (a worker died). */
  failed?: Promise<WorkerFailure>;
  shutdown(): Promise<void>;
}

/** The longest a shutdown may take before parley exits anyway (systemd waits 90 s by default). */
const SHUTDOWN_MS = 9000;

/** Shuts down, then exits with `code`, or with 1 if the shutdown did not finish in time. */
async function exit(server: Started, code: number): Promise<never> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) =>
    timer = setTimeout(() => resolve("late"), SHUTDOWN_MS)
  );
  const outcome = await Promise.race([server.shutdown().then(() => "done" as const), late]);
  clearTimeout(timer);
  if (outcome === "late") {
    console.error(`parley: shutdown did not finish within ${SHUTDOWN_MS / 1000} s; exiting anyway`);
    Deno.exit(1);
  }
  Deno.exit(code);
}

if (import.meta.main) {
  try {
    const config = await loadConfig(Deno.args, (name) => Deno.env.get(name));
    const count = config.workers === "auto" ? navigator.hardwareConcurrency : config.workers;
    const server: Started = count > 1
      ? await startWorkers(config, count)
      : await startServer(config);
    const workers = count > 1 ? ` in ${count} workers` : "";
    // One write, so that whoever watches stdout for the URL line has the setup line with it.
    const setup = server.setupLink ? `\nparley: ${setupLine(server.setupLink)}` : "";
    console.log(`parley: chat at ${server.url}${workers} (log: ${config.logfilePath})${setup}`);
    const stop = () => exit(server, 0);
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    server.failed?.then((failure) => {
      console.error(`parley: ${failure.message}; stopping so that a supervisor restarts parley`);
      return exit(server, 1);
    });
  } catch (error) {
    console.error(`parley: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
