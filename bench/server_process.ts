/** Starts the server under test (parley's `main.ts` or `bench/baseline.ts`) as a subprocess. */

/** Which server a run measures. */
export type ServerKind = "parley" | "baseline";

/** A server subprocess that printed its URL. */
export interface ServerProcess {
  kind: ServerKind;
  /** `http://127.0.0.1:PORT/` as the server printed it. */
  url: string;
  pid: number;
  /** The CPU list it is pinned to, or null when not pinned. */
  cpus: string | null;
  /** The last few KB of its stdout and stderr, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; removes its temp files. */
  stop(graceMs?: number): Promise<void>;
}

/** The repository root: the parent of this file's directory. */
export const REPO_ROOT: string = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The config parley runs with: limits lifted so the benchmark is not throttled. */
export function parleyConfig(dir: string): Record<string, unknown> {
  return {
    port: 0,
    logfilePath: `${dir}/parley.log`,
    history: { path: `${dir}/bench.db` },
    limits: {
      messagesPerSecond: 100000,
      burst: 100000,
      maxConnections: 30000,
      maxConnectionsPerIp: 30000,
      sendBufferBytes: 16777216,
      idleTimeoutSeconds: 0,
    },
  };
}

/** `deno` arguments that run parley from the repository root with a config file and a port. */
export function parleyRunArgs(config: string, port: number): string[] {
  return [
    "run",
    "--unstable-net",
    "--allow-net",
    "--allow-env=PORT",
    "--allow-read",
    "--allow-write",
    "main.ts",
    "--config",
    config,
    "--port",
    String(port),
  ];
}

/** True if `taskset` runs here. */
export async function hasTaskset(): Promise<boolean> {
  try {
    const out = await new Deno.Command("taskset", { args: ["--version"], stdout: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

/** Pins every thread of this process to `cpus` (a `taskset` list such as `1` or `1-3`). */
export async function pinSelf(cpus: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("taskset", {
      args: ["-a", "-p", "-c", cpus, String(Deno.pid)],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

const URL_PATTERN = /https?:\/\/\S+/;

/**
 * Starts a server on a free port and waits until it prints its URL. `cpus` pins it with
 * `taskset -c`. Throws with the server's output if it exits or prints no URL in `timeoutMs`.
 */
export async function startServer(
  kind: ServerKind,
  cpus: string | null,
  timeoutMs = 30_000,
): Promise<ServerProcess> {
  const dir = await Deno.makeTempDir({ prefix: `parley-bench-${kind}-` });
  const deno = Deno.execPath();
  let args: string[];
  if (kind === "parley") {
    const config = `${dir}/config.json`;
    await Deno.writeTextFile(config, JSON.stringify(parleyConfig(dir), null, 2));
    args = parleyRunArgs(config, 0);
  } else {
    args = ["run", "--allow-net", "bench/baseline.ts", "--port", "0"];
  }
  const command = cpus === null ? deno : "taskset";
  const child = new Deno.Command(command, {
    args: cpus === null ? args : ["-c", cpus, deno, ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let tail = "";
  const keep = (text: string): void => {
    tail = (tail + text).slice(-4096);
  };
  let found: ((url: string) => void) | null = null;
  const urlPromise = new Promise<string>((resolve) => (found = resolve));
  const pump = async (stream: ReadableStream<Uint8Array>, scan: boolean): Promise<void> => {
    const decoder = new TextDecoder();
    let seen = "";
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      keep(text);
      if (scan && found) {
        seen += text;
        const match = URL_PATTERN.exec(seen);
        if (match) {
          found(match[0]);
          found = null;
          seen = "";
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, true), pump(child.stderr, false)]).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    urlPromise,
    status.then((s) => new Error(`${kind} exited with code ${s.code} before printing its URL`)),
    new Promise<Error>((resolve) => {
      timer = setTimeout(
        () => resolve(new Error(`${kind} printed no URL within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }),
  ]);
  clearTimeout(timer);

  const stop = async (graceMs = 5000): Promise<void> => {
    if (!exited) await terminate(child, graceMs);
    await pumps;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  if (outcome instanceof Error) {
    await stop(1000);
    throw new Error(`${outcome.message}\n--- output ---\n${tail}`);
  }
  // "http://0.0.0.0:PORT/" would not be reachable as such: the tool only talks to 127.0.0.1.
  const url = new URL(outcome.replace(/[.,;)'"]+$/, ""));
  url.hostname = "127.0.0.1";
  return { kind, url: url.href, pid: child.pid, cpus, output: () => tail, stop };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function terminate(child: Deno.ChildProcess, graceMs = 5000): Promise<void> {
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // Already gone.
    }
  };
  signal("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = await Promise.race([
    child.status.then(() => false),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), graceMs)),
  ]);
  clearTimeout(timer);
  if (late) {
    signal("SIGKILL");
    await child.status;
  }
}
