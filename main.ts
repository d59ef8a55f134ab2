/**
 * parley: start the chat server with `config.json`, `PORT` and flags, and stop it cleanly on
 * SIGINT or SIGTERM. Any start-up problem is one sentence on stderr and exit code 1.
 */

import { loadConfig } from "./chat/config.ts";
import { startServer } from "./chat/server.ts";

if (import.meta.main) {
  try {
    const config = await loadConfig(Deno.args, (name) => Deno.env.get(name));
    const server = await startServer(config);
    console.log(`parley: chat at ${server.url} (log: ${config.logfilePath})`);
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
