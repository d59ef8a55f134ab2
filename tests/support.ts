/**
 * What the tests share: a real server on port 0 with its own temp directory, and a WebSocket
 * client that waits for events with a timeout instead of sleeping.
 */

import { type Config, defaultConfig, mergeConfig } from "../chat/config.ts";
import { type RunningServer, startServer } from "../chat/server.ts";

/** How long a test waits for an event before it fails. */
export const TIMEOUT_MS = 5000;

/** A running server with a private directory for its log and history. */
export interface TestServer extends RunningServer {
  config: Config;
  dir: string;
  /** `ws://…/chat?` plus the query. */
  wsUrl(query?: Record<string, string>): string;
  /** Shuts the server down and removes its directory. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts parley on 127.0.0.1:0 with the defaults, these overrides, and history in memory. */
export async function startTestServer(
  overrides: Record<string, unknown> = {},
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
  const server = await startServer(config, { quiet: true });
  const close = async () => {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  };
  return {
    ...server,
    config,
    dir,
    wsUrl(query = {}) {
      const url = new URL("/chat", server.url);
      url.protocol = "ws:";
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      return url.href;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
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

  constructor(url: string, protocol: string | null = "parley.v1") {
    this.socket = protocol === null ? new WebSocket(url) : new WebSocket(url, protocol);
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

/**
 * `main.ts` as `deno task start` runs it, with reading and writing allowed anywhere (tests keep
 * their files in temp dirs), a config file of the test's own, and piped output.
 */
export function parleyCommand(configPath: string, cwd: string, args: string[] = []): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-env=PORT",
      "--allow-read",
      "--allow-write",
      new URL("../main.ts", import.meta.url).pathname,
      "--config",
      configPath,
      ...args,
    ],
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}
