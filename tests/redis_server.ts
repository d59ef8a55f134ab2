/**
 * A real `redis-server` of a test's own, on a free port (or a given one, to restart it where it
 * was), killed with SIGKILL when stopped. Where it is not installed the tests that need it are
 * skipped with the reason, except in CI, where they fail.
 */

import { hasProgram, within } from "./support.ts";

const installed = await hasProgram("redis-server");

/** Whether tests that need redis-server are to be skipped here. */
export const skipRedis = !installed && Deno.env.get("CI") !== "true";

/** Says once, for `file`, why its tests are skipped (if they are). */
export function sayIfSkipped(file: string): void {
  if (skipRedis) {
    console.log(`${file} skipped: redis-server is not installed (apt-get install redis-server)`);
  }
}

/** How a test's Redis keeps its data. */
export interface RedisOptions {
  /**
   * true: an append-only file synced on every write (`appendonly yes`, `appendfsync always`),
   * so a restart keeps everything; false: nothing on disk, so a restart comes back empty.
   */
  persist: boolean;
  /** The port to listen on: 0 (the default) picks a free one. */
  port?: number;
  /** More of redis-server's configuration, as its command line takes it. */
  args?: string[];
}

/** A running redis-server. */
export interface RedisServer {
  port: number;
  url: string;
  /** SIGKILL, and wait for it to be gone. */
  stop(): Promise<void>;
}

/** Starts redis-server with its data in `dir`, and waits until it accepts connections. */
export async function startRedis(dir: string, options: RedisOptions): Promise<RedisServer> {
  let port = options.port ?? 0;
  if (port === 0) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = probe.addr.port;
    probe.close();
  }
  const persistence = options.persist
    ? ["--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const process = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      ...persistence,
      ...options.args ?? [],
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("Ready to accept connections")) {
    const { value, done } = await within(lines.read(), "redis-server to start", 10_000);
    if (done) throw new Error(`redis-server did not start: ${seen}`);
    seen += value;
  }
  const drained = (async () => {
    while (!(await lines.read()).done);
  })();
  let stopped: Promise<void> | null = null;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop(): Promise<void> {
      stopped ??= (async () => {
        process.kill("SIGKILL");
        await process.status;
        await drained;
      })();
      return stopped;
    },
  };
}
