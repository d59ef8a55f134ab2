/**
 * What the tests share: a real server on port 0 with its own temp directory, a WebSocket client
 * that waits for events with a timeout instead of sleeping, the HTTP calls several tests make
 * (post, history, metrics), and parley as a subprocess that is always stopped and cleaned up.
 */

import { type Config, defaultConfig, mergeConfig } from "../chat/config.ts";
import { type RunningServer, type ServerOptions, startServer } from "../chat/server.ts";
import { parleyRunArgs, REPO_ROOT, repoTempDir } from "../bench/server_process.ts";

/** How long a test waits for an event before it fails. */
export const TIMEOUT_MS = 5000;

/** A running server with a private directory for its log and history. */
export interface TestServer extends RunningServer {
  config: Config;
  dir: string;
  /** `ws://…/chat?` (`wss:` over TLS) plus the query. */
  wsUrl(query?: Record<string, string>): string;
  /** Shuts the server down and removes its directory. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts parley on 127.0.0.1:0 with the defaults, these overrides, and history in memory; quiet,
 * with `options` besides (a hook on the history store, say).
 */
export async function startTestServer(
  overrides: Record<string, unknown> = {},
  options: ServerOptions = {},
): Promise<TestServer> {
  const dir = await Deno.makeTempDir({ prefix: "parley-test-" });
  const sections = ["history", "limits"] as const;
  const raw: Record<string, unknown> = {
    port: 0,
    logfilePath: `${dir}/parley.log`,
    ...overrides,
  };
  for (const section of sections) {
    raw[section] = {
      ...(section === "history" ? { path: ":memory:" } : {}),
      ...(overrides[section] as Record<string, unknown> | undefined),
    };
  }
  const config = mergeConfig(defaultConfig, raw, "test config");
  const server = await startServer(config, { ...options, quiet: true });
  const close = async () => {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  };
  return {
    ...server,
    config,
    dir,
    wsUrl: (query = {}) => chatUrl(server.url, query),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The WebSocket URL of `/chat` on the server at `base`, with `query`. */
function chatUrl(base: URL, query: Record<string, string>): string {
  const url = new URL("/chat", base);
  url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.href;
}

/** Rejects with a message naming what was awaited if `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `check()` holds, asking every `everyMs`; fails after `ms` naming `what`. For what
 * has no event to wait for (a file another connection writes, `/metrics`, `/healthz`, a log
 * line): the pace of asking, not a guess at how long something takes.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = TIMEOUT_MS,
  everyMs = 50,
): Promise<void> {
  await within(
    (async () => {
      while (!(await check())) await new Promise((resolve) => setTimeout(resolve, everyMs));
    })(),
    what,
    ms,
  );
}

/** Waits until the server's `/healthz` says `status` (it has no way to push a change). */
export function healthSays(
  server: HasUrl,
  status: "ok" | "degraded",
  what: string,
  ms = 30_000,
): Promise<void> {
  const url = new URL("/healthz", server.url);
  return eventually(
    async () => (await (await fetch(url)).json()).status === status,
    `/healthz to say ${status} ${what}`,
    ms,
  );
}

/** A parsed server event; which fields are present depends on `type` (see `ServerEvent`). */
export interface Event {
  type: string;
  id: number;
  room: string;
  userName: string;
  body: string;
  timestamp: string;
  users: string[];
  userCount: number;
  lastId: number;
  recovered?: boolean;
  clientId: string;
  code: string;
  message: string;
}

/** Deno's WebSocket constructor, with its options, also where a test loads the DOM's types. */
const DenoWebSocket = WebSocket as unknown as new (
  url: string,
  options: WebSocketOptions,
) => WebSocket;

/**
 * A real WebSocket client that queues what the server sends: `parley.v1` frames are split into
 * events on `\n`; `frames` keeps each frame's raw text for the legacy dialect.
 */
export class TestClient {
  readonly socket: WebSocket;
  readonly frames: string[] = [];
  readonly events: Event[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #cursor = 0;
  #frameCursor = 0;
  #waiters = new Set<() => void>();

  /** `client`: the HTTP client to connect with (one trusting a test's certificate, say). */
  constructor(
    url: string,
    protocol: string | null = "parley.v1",
    { client, headers }: { client?: Deno.HttpClient; headers?: HeadersInit } = {},
  ) {
    this.socket = client === undefined && headers === undefined
      ? protocol === null ? new WebSocket(url) : new WebSocket(url, protocol)
      : new DenoWebSocket(url, { protocols: protocol === null ? [] : [protocol], client, headers });
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener("open", () => resolve(), { once: true });
      this.socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), {
        once: true,
      });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.addEventListener("close", (event) => {
        resolve(event);
        this.#wake();
      });
    });
    this.socket.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : "";
      this.frames.push(text);
      for (const line of text.split("\n")) {
        if (line.trim() !== "") this.events.push(JSON.parse(line));
      }
      this.#wake();
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }

  async #until<T>(find: () => T | undefined, what: string, ms: number): Promise<T> {
    let wake = () => {};
    const waiter = () => wake();
    this.#waiters.add(waiter);
    try {
      return await within(
        (async () => {
          for (;;) {
            const found = find();
            if (found !== undefined) return found;
            if (this.socket.readyState === WebSocket.CLOSED) {
              throw new Error(`the socket closed while waiting for ${what}`);
            }
            await new Promise<void>((resolve) => wake = resolve);
          }
        })(),
        what,
        ms,
      );
    } finally {
      this.#waiters.delete(waiter);
    }
  }

  /** The next event not yet taken, optionally the next of a type (skipping others). */
  next(type?: string, ms = TIMEOUT_MS): Promise<Event> {
    return this.#until(
      () => {
        while (this.#cursor < this.events.length) {
          const event = this.events[this.#cursor++];
          if (type === undefined || event.type === type) return event;
        }
      },
      `a ${type ?? "any"} event`,
      ms,
    );
  }

  /** The next raw frame not yet taken. */
  nextFrame(ms = TIMEOUT_MS): Promise<string> {
    return this.#until(
      () => this.#frameCursor < this.frames.length ? this.frames[this.#frameCursor++] : undefined,
      "a frame",
      ms,
    );
  }

  /** Waits until `count` events of `type` have arrived in all (taken or not), and returns them. */
  waitFor(type: string, count: number, ms = TIMEOUT_MS): Promise<Event[]> {
    return this.#until(
      () => {
        const found = this.events.filter((e) => e.type === type);
        return found.length >= count ? found : undefined;
      },
      `${count} ${type} events`,
      ms,
    );
  }

  send(value: unknown): void {
    this.socket.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /** Closes the socket and waits for the close to finish. */
  async close(): Promise<CloseEvent> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    return await within(this.closed, "the socket to close");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Connects a `parley.v1` client and waits for its welcome. */
export async function joinRoom(
  server: TestServer,
  query: Record<string, string>,
): Promise<{ client: TestClient; welcome: Event }> {
  const client = new TestClient(server.wsUrl(query));
  const welcome = await client.next("welcome");
  return { client, welcome };
}

/** A message as stored by the server (`/history`, `POST /rooms/:room/messages`). */
export interface StoredMessage {
  id: number;
  room: string;
  userName: string;
  body: string;
  timestamp: string;
}

/** Anything with a server's base URL: a {@link TestServer} or a {@link ParleyProcess}. */
export interface HasUrl {
  url: URL;
}

/** Posts a message the way curl would, and returns what the server stored; throws unless 201. */
export async function postMessage(
  server: HasUrl,
  room: string,
  userName: string,
  body: string,
): Promise<StoredMessage> {
  const response = await fetch(new URL(`/rooms/${room}/messages`, server.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userName, body }),
  });
  const stored = await response.json();
  if (response.status !== 201) {
    throw new Error(`POST to ${room} answered ${response.status}: ${JSON.stringify(stored)}`);
  }
  return stored;
}

/**
 * Every stored message of a room, oldest first, read over HTTP a page of 1000 at a time with
 * `after`; each request fails after `ms`.
 */
export async function historyOf(
  server: HasUrl,
  room: string,
  ms = TIMEOUT_MS,
): Promise<StoredMessage[]> {
  const all: StoredMessage[] = [];
  for (;;) {
    const after = all.at(-1)?.id ?? 0;
    const url = new URL("/history", server.url);
    url.searchParams.set("room", room);
    url.searchParams.set("limit", "1000");
    url.searchParams.set("after", String(after));
    const response = await within(fetch(url), `GET ${url}`, ms);
    const page = await response.json();
    if (response.status !== 200) {
      throw new Error(`GET ${url} answered ${response.status}: ${JSON.stringify(page)}`);
    }
    all.push(...page.messages);
    if (!page.hasMore) return all;
    if ((all.at(-1)?.id ?? 0) <= after) throw new Error(`GET ${url}: hasMore, but no newer ids`);
  }
}

/** The value of one sample in `/metrics`, by its name with any labels; fails if it is absent. */
export async function metric(server: HasUrl, name: string): Promise<number> {
  const response = await fetch(new URL("/metrics", server.url));
  const text = await response.text();
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`^${escaped} (\\S+)$`, "m").exec(text);
  if (response.status !== 200 || match === null) {
    throw new Error(`/metrics (${response.status}) has no ${name}:\n${text}`);
  }
  return Number(match[1]);
}

/** The sum of every sample of a metric family in `/metrics`, whatever its labels. */
export async function metricTotal(server: HasUrl, family: string): Promise<number> {
  const text = await (await fetch(new URL("/metrics", server.url))).text();
  const sample = new RegExp(`^${family}(\\{[^}]*\\})? (\\S+)$`, "gm");
  let total = 0;
  for (const match of text.matchAll(sample)) total += Number(match[2]);
  return total;
}

/**
 * Waiting for state that a callback changes (a bus listener, a subscription's reader) without
 * polling: the callback calls `wake`, and `until` re-checks its condition after every wake.
 */
export class Wakeup {
  #waiters = new Set<() => void>();

  /** Call it whenever the watched state may have changed. */
  readonly wake = (): void => {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter();
  };

  /** Resolves once `found()` is true, checked now and after each wake; fails after `ms`. */
  async until(found: () => boolean, what: string, ms = TIMEOUT_MS): Promise<void> {
    let waiter = () => {};
    try {
      await within(
        (async () => {
          while (!found()) {
            await new Promise<void>((resolve) => {
              waiter = resolve;
              this.#waiters.add(resolve);
            });
          }
        })(),
        what,
        ms,
      );
    } finally {
      this.#waiters.delete(waiter);
    }
  }
}

/** parley as `deno task start` runs it (see `parleyRunArgs`), with piped output. */
export function parleyCommand(configPath: string, args: string[] = []): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: parleyRunArgs(configPath, args),
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** parley as `deno task start` runs it, under `ulimit -n files`. */
export function limitedParley(configPath: string, files: number): Deno.Command {
  return new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${files} && exec "$@"`,
      "bash",
      Deno.execPath(),
      ...parleyRunArgs(configPath),
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** A temporary directory, removed with everything in it when disposed. */
export interface TempDir {
  path: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Makes a temporary directory where a parley subprocess may write (under the repository's data/);
 * `await using` removes it however the test ends.
 */
export async function tempDir(prefix = "parley-test-"): Promise<TempDir> {
  const path = await repoTempDir(prefix);
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/**
 * A temporary directory holding `config.json` for a parley subprocess: port 0 and the log in the
 * directory, then `config`. parley runs from the repository's root, so a relative `history.path`
 * in `config` is made a path inside the directory.
 */
export async function parleyDir(
  config: Record<string, unknown> = {},
  prefix = "parley-test-",
): Promise<TempDir> {
  const dir = await tempDir(prefix);
  const history = config.history as { path?: string } | undefined;
  const inDir = (path: string) =>
    path.startsWith("/") || path === ":memory:" ? path : `${dir.path}/${path}`;
  const resolved = history?.path === undefined
    ? config
    : { ...config, history: { ...history, path: inDir(history.path) } };
  await Deno.writeTextFile(
    `${dir.path}/config.json`,
    JSON.stringify({ port: 0, logfilePath: `${dir.path}/parley.log`, ...resolved }),
  );
  return dir;
}

/** Thrown by {@link ParleyProcess.start} when parley exits before printing its URL. */
export class ParleyExited extends Error {
  constructor(
    readonly status: Deno.CommandStatus,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(
      `parley exited with code ${status.code}${status.signal ? ` (${status.signal})` : ""} ` +
        `before printing its URL:\n${stdout}${stderr}`,
    );
    this.name = "ParleyExited";
  }
}

/** How much of each output stream a {@link ParleyProcess} keeps, from the end. */
const OUTPUT_TAIL = 8192;

/**
 * parley as a subprocess that has printed its URL. `await using` stops it (SIGTERM, then SIGKILL
 * if it lingers) and waits for it however the test ends.
 */
export class ParleyProcess {
  /** `http://127.0.0.1:PORT/` (`https:` over TLS) as it printed it. */
  readonly url: URL;
  /** The whole stdout line that carried the URL. */
  readonly banner: string;
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<unknown>;
  readonly #output: () => string;

  private constructor(
    url: URL,
    banner: string,
    child: Deno.ChildProcess,
    pumps: Promise<unknown>,
    output: () => string,
  ) {
    this.url = url;
    this.banner = banner;
    this.#child = child;
    this.#pumps = pumps;
    this.#output = output;
    this.exited = child.status;
  }

  /**
   * Starts parley in `dir` with `dir/config.json` (see {@link parleyDir}) and `args`, or runs
   * `command` instead (a compiled binary; its stdout and stderr must be piped), and waits up to
   * `ms` for the URL line on its stdout. Throws {@link ParleyExited} if it exits first; on any
   * failure the process is killed and waited for.
   */
  static async start(
    dir: string,
    { args = [], command, ms = 20_000 }: { args?: string[]; command?: Deno.Command; ms?: number } =
      {},
  ): Promise<ParleyProcess> {
    const child = (command ?? parleyCommand(`${dir}/config.json`, args)).spawn();
    const streams = { stdout: "", stderr: "" };
    let announce: (line: string) => void = () => {};
    const announced = new Promise<string>((resolve) => announce = resolve);
    let banner: string | undefined;
    const pump = async (name: "stdout" | "stderr"): Promise<void> => {
      const decoder = new TextDecoder();
      for await (const chunk of child[name]) {
        const text = streams[name] + decoder.decode(chunk, { stream: true });
        if (name === "stdout" && banner === undefined) {
          // Keep all of stdout until the URL line is complete; it is the first line.
          streams.stdout = text;
          banner = text.split("\n").slice(0, -1).find((line) => /https?:\/\/\S+\//.test(line));
          if (banner !== undefined) announce(banner);
        } else {
          streams[name] = text.slice(-OUTPUT_TAIL);
        }
      }
    };
    const pumps = Promise.all([pump("stdout"), pump("stderr")]);
    const output = () => `stdout:\n${streams.stdout}\nstderr:\n${streams.stderr}`;
    const exitedFirst = child.status.then(async (status) => {
      await pumps.catch(() => {});
      return status;
    });
    try {
      const first = await within(
        Promise.race([announced, exitedFirst]),
        "parley's URL on its stdout",
        ms,
      );
      if (typeof first !== "string") {
        throw new ParleyExited(first, streams.stdout, streams.stderr);
      }
      const url = new URL(/https?:\/\/\S+\//.exec(first)![0]);
      return new ParleyProcess(url, first, child, pumps, output);
    } catch (error) {
      await killAndWait(child, "SIGKILL");
      await pumps.catch(() => {});
      if (error instanceof ParleyExited) throw error;
      throw new Error(`${(error as Error).message}\n${output()}`, { cause: error });
    }
  }

  /** `ws://…/chat?` (`wss:` over TLS) plus the query. */
  wsUrl(query: Record<string, string> = {}): string {
    return chatUrl(this.url, query);
  }

  /** Sends a signal and returns at once (nothing happens if it has exited). */
  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
  }

  /** SIGKILL: no shutdown, no flush. Waits for the process to be gone. */
  async crash(): Promise<Deno.CommandStatus> {
    const status = await killAndWait(this.#child, "SIGKILL");
    await this.#pumps.catch(() => {});
    return status;
  }

  /** SIGTERM (SIGKILL if it lingers); waits for the exit. Safe to call after it exited. */
  async stop(): Promise<Deno.CommandStatus> {
    const status = await killAndWait(this.#child, "SIGTERM");
    await this.#pumps.catch(() => {});
    return status;
  }

  /** The last few KB of its stdout and stderr. */
  output(): string {
    return this.#output();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Signals `child` and waits for its exit; SIGKILL after 10 s if it is still there. */
async function killAndWait(
  child: Deno.ChildProcess,
  signal: "SIGKILL" | "SIGTERM",
): Promise<Deno.CommandStatus> {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
  try {
    return await within(child.status, `parley to exit after ${signal}`, 10_000);
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    return await child.status;
  }
}

/**
 * Whether `program` can be run with `args` (`openssl` wants `version`): a missing one makes
 * `Deno.Command` throw, at once or later.
 */
export async function hasProgram(program: string, args = ["--version"]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(program, {
      args,
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}
