/**
 * Stand-ins for the browser's clock, WebSocket and fetch, for the tests of the page's modules that
 * need no DOM (`page_*_test.ts`): time moves only when a test says so, a socket is a recorder the
 * test drives from the server's side, and a fetch keeps its session cookie.
 */

import type { HasUrl } from "./support.ts";

/** A fetch of the page's paths on `server` that keeps the session cookie, as a browser does. */
export function browserFetch(server: HasUrl): typeof fetch {
  let cookie: string | null = null;
  const fetchFn = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookie !== null) headers.set("cookie", cookie);
    const response = await fetch(new URL(String(input), server.url), { ...init, headers });
    const value = /^parley_session=([^;]*)/.exec(response.headers.get("set-cookie") ?? "")?.[1];
    if (value !== undefined) cookie = value === "" ? null : `parley_session=${value}`;
    return response;
  };
  return fetchFn as typeof fetch;
}

interface Timer {
  at: number;
  fn: () => void;
}

/** `setTimeout`/`clearTimeout` and `now` on a clock that moves only with `advance`. */
export class FakeTimers {
  now = 1_700_000_000_000;
  #nextId = 1;
  #timers = new Map<number, Timer>();

  setTimeout = (fn: () => void, ms: number): number => {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.now + Math.max(0, ms), fn });
    return id;
  };

  clearTimeout = (id: number | undefined): void => {
    if (id !== undefined) this.#timers.delete(id);
  };

  /** Milliseconds until the next timer fires, or null when none is set. */
  nextDelay(): number | null {
    const times = [...this.#timers.values()].map((t) => t.at);
    return times.length ? Math.min(...times) - this.now : null;
  }

  /** Moves the clock on by `ms`, firing each timer that comes due, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.#timers.delete(id);
      this.now = Math.max(this.now, timer.at);
      timer.fn();
    }
    this.now = end;
  }
}

type Listener = (event: { data?: unknown; code?: number; reason?: string }) => void;

/** A WebSocket the test plays the server for; every one made is kept in `FakeSocket.made`. */
export class FakeSocket {
  static made: FakeSocket[] = [];
  /** When set, the next construction throws it (as a browser does for a bad URL). */
  static failNext: Error | null = null;

  readyState = 1;
  sent: string[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  #listeners = new Map<string, Listener[]>();

  constructor(readonly url: string, readonly protocol: string) {
    if (FakeSocket.failNext) {
      const error = FakeSocket.failNext;
      FakeSocket.failNext = null;
      throw error;
    }
    FakeSocket.made.push(this);
  }

  static reset(): void {
    FakeSocket.made = [];
    FakeSocket.failNext = null;
  }

  /** The socket made most recently. */
  static get last(): FakeSocket {
    const socket = FakeSocket.made.at(-1);
    if (!socket) throw new Error("no socket was made");
    return socket;
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("the socket is not open");
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  addEventListener(type: "message" | "close", listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }

  /** The server sends a frame: events as objects, one per line, as parley batches them. */
  receive(...events: unknown[]): void {
    const data = events.map((e) => JSON.stringify(e)).join("\n");
    for (const listener of this.#listeners.get("message") ?? []) listener({ data });
  }

  /** The connection drops with this close code and reason. */
  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    for (const listener of this.#listeners.get("close") ?? []) listener({ code, reason });
  }
}
