/**
 * Starts the server under test (parley's `main.ts` or `bench/baseline.ts`) as a subprocess, and
 * pins it and this process to separate CPUs.
 */

import denoConfig from "../deno.json" with { type: "json" };

/** Which server a run measures. */
export type ServerKind = "parley" | "baseline";

/** A server subprocess that printed its URL. */
export interface ServerProcess {
  /** `http://127.0.0.1:PORT/` as the server printed it. */
  url: string;
  /**
   * Its stdout up to the end of what came with the URL: parley prints its setup link in the same
   * write as the URL line.
   */
  banner: string;
  pid: number;
  /** The CPU list it is pinned to, or null when not pinned. */
  cpus: string | null;
  /** Milliseconds from the spawn to the URL line on its stdout. */
  urlMs: number;
  /** The last few KB of its stdout and stderr, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; removes its temp files. */
  stop(graceMs?: number): Promise<void>;
}

/** How to start a server: everything is optional. */
export interface StartOptions {
  /** Pins it with `taskset -c` to this CPU list; null or absent: not pinned. */
  cpus?: string | null;
  /** The port it listens on; 0 (the default) lets it pick one. */
  port?: number;
  /** parley only: config values that differ from {@link parleyConfig}'s. */
  config?: ParleyConfigOverrides;
  /** Environment variables added to this process's for it. */
  env?: Record<string, string>;
  /** Gives up (and stops it) if it exits or prints no URL within this; default 30 s. */
  timeoutMs?: number;
  /**
   * Called once it is spawned, with `performance.now()` just before the spawn and a signal that
   * aborts when it exits: to watch its start-up (e.g. poll a port) while the URL is awaited.
   */
  onSpawn?: (spawnedAt: number, exited: AbortSignal) => void;
}

/** The repository root: the parent of this file's directory. */
export const REPO_ROOT: string = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The values of {@link parleyConfig} a run may change. */
export interface ParleyConfigOverrides {
  /** The history database; default `<dir>/bench.db`. */
  historyPath?: string;
  /** `history.maxMessagesPerRoom`; parley's default when absent. */
  maxMessagesPerRoom?: number;
  /** `limits.messagesPerSecond` and `limits.burst`; default 100,000 each. */
  messagesPerSecond?: number;
  burst?: number;
  /** `limits.sendBufferBytes`; default 16 MiB, so that no benchmark subscriber is dropped. */
  sendBufferBytes?: number;
  /** `auth.mode`; parley's default (`open`) when absent. */
  authMode?: "open" | "accounts";
  /** `workers`: threads serving connections on one port; parley's default (1) when absent. */
  workers?: number;
  /** `redis`: the URL of the Redis that instances share; none when absent. */
  redis?: string;
}

/** The config parley runs with: limits lifted so the benchmark is not throttled. */
export function parleyConfig(
  dir: string,
  overrides: ParleyConfigOverrides = {},
): Record<string, unknown> {
  return {
    port: 0,
    logfilePath: `${dir}/parley.log`,
    history: {
      path: overrides.historyPath ?? `${dir}/bench.db`,
      ...(overrides.maxMessagesPerRoom === undefined
        ? {}
        : { maxMessagesPerRoom: overrides.maxMessagesPerRoom }),
    },
    limits: {
      messagesPerSecond: overrides.messagesPerSecond ?? 100000,
      burst: overrides.burst ?? 100000,
      maxConnections: 30000,
      maxConnectionsPerIp: 30000,
      sendBufferBytes: overrides.sendBufferBytes ?? 16777216,
      idleTimeoutSeconds: 0,
      readsPerSecond: 1000000,
    },
    ...(overrides.authMode === undefined ? {} : { auth: { mode: overrides.authMode } }),
    ...(overrides.workers === undefined ? {} : { workers: overrides.workers }),
    ...(overrides.redis === undefined ? {} : { redis: overrides.redis }),
  };
}

/**
 * The flags of `deno task start` in deno.json: the one list of what parley may do, which the
 * benchmarks and the tests' subprocesses use too (tests/tasks_test.ts checks the compile task's).
 */
export const PARLEY_FLAGS: readonly string[] = startFlags(denoConfig.tasks.start);

function startFlags(task: string): string[] {
  const words = task.trim().split(/\s+/);
  const main = words.indexOf("main.ts");
  if (words[0] !== "deno" || words[1] !== "run" || main === -1) {
    throw new Error(`the start task in deno.json is not "deno run <flags> main.ts": ${task}`);
  }
  return words.slice(2, main);
}

/**
 * `deno` arguments that run parley as `deno task start` does, with a config file. Run them from
 * {@link REPO_ROOT}: the flags let parley read and write there only, so the files of a run go in
 * {@link repoTempDir}.
 */
export function parleyRunArgs(config: string, extra: string[] = []): string[] {
  return ["run", ...PARLEY_FLAGS, "main.ts", "--config", config, ...extra];
}

/** A new directory under the repository's `data/` (git-ignored), where parley may write. */
export async function repoTempDir(prefix: string): Promise<string> {
  const parent = `${REPO_ROOT}data/tmp`;
  await Deno.mkdir(parent, { recursive: true });
  return await Deno.makeTempDir({ dir: parent, prefix });
}

/** True if `taskset` runs here. */
async function hasTaskset(): Promise<boolean> {
  try {
    const out = await new Deno.Command("taskset", { args: ["--version"], stdout: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

/** Pins every thread of this process to `cpus` (a `taskset` list such as `1` or `1-3`). */
async function pinSelf(cpus: string): Promise<boolean> {
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

/** The CPUs of a pinned run: the server's (`taskset -c`) and this process's. */
export interface Pinned {
  serverCpus: string;
  loadCpus: string;
}

/**
 * Pins every thread of this process to CPUs 1..N-1 and returns those, with CPU 0 for the server.
 * Pins nothing and returns the reason instead with one CPU, without `taskset`, or when pinning
 * this process failed: then the server must not be pinned either.
 */
export async function pinning(): Promise<Pinned | { reason: string }> {
  const cores = navigator.hardwareConcurrency;
  if (cores < 2) return { reason: "one CPU" };
  if (!(await hasTaskset())) return { reason: "no taskset" };
  const loadCpus = cores === 2 ? "1" : `1-${cores - 1}`;
  if (!(await pinSelf(loadCpus))) return { reason: "taskset could not pin this process" };
  return { serverCpus: "0", loadCpus };
}

const URL_PATTERN = /https?:\/\/\S+/;

/**
 * Starts the server `kind` (parley's `main.ts` with {@link parleyConfig} in a temp dir, or
 * `bench/baseline.ts`) and waits until it prints its URL; see {@link startCommand}.
 */
export async function startServer(
  kind: ServerKind,
  options: StartOptions = {},
): Promise<ServerProcess> {
  const dir = await repoTempDir(`parley-bench-${kind}-`);
  const removeDir = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  let server: ServerProcess;
  try {
    const port = options.port ?? 0;
    let args: string[];
    if (kind === "parley") {
      const config = `${dir}/config.json`;
      await Deno.writeTextFile(config, JSON.stringify(parleyConfig(dir, options.config), null, 2));
      args = parleyRunArgs(config, ["--port", String(port)]);
    } else {
      args = ["run", "--allow-net", "bench/baseline.ts", "--port", String(port)];
    }
    server = await startCommand(kind, args, options);
  } catch (error) {
    await removeDir();
    throw error;
  }
  return {
    ...server,
    stop: async (graceMs?: number): Promise<void> => {
      await server.stop(graceMs);
      await removeDir();
    },
  };
}

/**
 * Spawns `deno <args>` from the repository root (under `taskset -c` with `options.cpus`) and waits
 * until it prints a URL on stdout. Throws with its output, having stopped it, if it exits or prints
 * no URL within `options.timeoutMs`. `name` labels the error messages.
 */
export async function startCommand(
  name: string,
  args: string[],
  options: StartOptions = {},
): Promise<ServerProcess> {
  const { cpus = null, timeoutMs = 30_000 } = options;
  const deno = Deno.execPath();
  const spawnedAt = performance.now();
  const child = new Deno.Command(cpus === null ? deno : "taskset", {
    args: cpus === null ? args : ["-c", cpus, deno, ...args],
    cwd: REPO_ROOT,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let tail = "";
  const keep = (text: string): void => {
    tail = (tail + text).slice(-4096);
  };
  let urlMs = -1;
  let banner = "";
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
          urlMs = performance.now() - spawnedAt;
          banner = seen;
          found(match[0]);
          found = null;
          seen = "";
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, true), pump(child.stderr, false)]).catch(() => {});
  let exited = false;
  const gone = new AbortController();
  const status = child.status.then((s) => {
    exited = true;
    gone.abort();
    return s;
  });
  options.onSpawn?.(spawnedAt, gone.signal);

  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    urlPromise,
    status.then((s) => new Error(`${name} exited with code ${s.code} before printing its URL`)),
    new Promise<Error>((resolve) => {
      timer = setTimeout(
        () => resolve(new Error(`${name} printed no URL within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }),
  ]);
  clearTimeout(timer);

  const stop = async (graceMs = 5000): Promise<void> => {
    if (!exited) await terminate(child, graceMs);
    await pumps;
  };

  if (outcome instanceof Error) {
    await stop(1000);
    throw new Error(`${outcome.message}\n--- output ---\n${tail}`);
  }
  // "http://0.0.0.0:PORT/" would not be reachable as such: the tool only talks to 127.0.0.1.
  const url = new URL(outcome.replace(/[.,;)'"]+$/, ""));
  url.hostname = "127.0.0.1";
  return { url: url.href, banner, pid: child.pid, cpus, urlMs, output: () => tail, stop };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
async function terminate(child: Deno.ChildProcess, graceMs = 5000): Promise<void> {
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
