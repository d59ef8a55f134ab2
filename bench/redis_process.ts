/**
 * The bench's own redis-server, for runs of two parley instances on Redis: on a free port, with
 * its files in a temp dir, persisting as parley's docs ask (`appendonly yes`, `appendfsync
 * always`, so an ack costs what it costs in production), pinned with `taskset -c` when asked.
 */

import { repoTempDir } from "./server_process.ts";

/** A running redis-server. */
export interface RedisProcess {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  pid: number;
  /** SIGTERM (SIGKILL after 5 s), then removes its files. */
  stop(): Promise<void>;
}

/** Starts redis-server (under `taskset -c cpus` unless null) and waits until it is ready. */
export async function startRedis(cpus: string | null, timeoutMs = 10_000): Promise<RedisProcess> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const dir = await repoTempDir("parley-bench-redis-");
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
  args.push("--appendonly", "yes", "--appendfsync", "always");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cpus === null ? "redis-server" : "taskset", {
      args: cpus === null ? args : ["-c", cpus, "redis-server", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`cannot start redis-server (is it installed?): ${(error as Error).message}`);
  }
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await readyOn(child.stdout, timeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid, stop };
}

/** Reads `stdout` until redis-server says it is ready, then keeps draining it in the background. */
async function readyOn(stdout: Deno.ChildProcess["stdout"], timeoutMs: number): Promise<void> {
  const lines = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`redis-server was not ready within ${timeoutMs} ms:\n${seen}`)),
      timeoutMs,
    );
  });
  try {
    while (!seen.includes("Ready to accept connections")) {
      const { value, done } = await Promise.race([lines.read(), late]);
      if (done) throw new Error(`redis-server exited before it was ready:\n${seen}`);
      seen = (seen + value).slice(-4096);
    }
  } finally {
    clearTimeout(timer);
  }
  (async () => {
    while (!(await lines.read()).done);
  })().catch(() => {});
}
