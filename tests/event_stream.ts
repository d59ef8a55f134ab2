/**
 * A Server-Sent Events reader for tests: it parses a stream as `EventSource` would (fields, comments,
 * events dispatched at a blank line) from a `fetch` body or a `curl -N` subprocess, and waits for
 * what it expects with a timeout.
 */

import { TIMEOUT_MS, Wakeup, within } from "./support.ts";

/** One event as dispatched: `id` is absent when the event had no `id:` line. */
export interface StreamEvent {
  id?: string;
  event: string;
  data: string;
}

/** Parses event-stream text, a piece at a time: what a piece leaves unfinished waits for the next. */
export class EventStreamParser {
  readonly events: StreamEvent[] = [];
  readonly comments: string[] = [];
  #partial = "";
  #current: { id?: string; event?: string; data: string[] } = { data: [] };

  /** Takes the next piece of the stream. */
  push(text: string): void {
    const lines = (this.#partial + text).split(/\r\n|\r|\n/);
    this.#partial = lines.pop()!;
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return void this.comments.push(line.slice(1).trim());
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") this.#current.id = value;
    else if (field === "event") this.#current.event = value;
    else if (field === "data") this.#current.data.push(value);
  }

  #dispatch(): void {
    const { id, event, data } = this.#current;
    this.#current = { data: [] };
    if (data.length === 0) return;
    this.events.push({
      ...(id === undefined ? {} : { id }),
      event: event ?? "message",
      data: data.join("\n"),
    });
  }
}

/** A follower reading an event stream from `source`, which it parses as it arrives. */
export class EventStreamReader {
  readonly parser = new EventStreamParser();
  /** Settles when the stream has ended. */
  readonly ended: Promise<void>;
  #done = false;
  readonly #changed = new Wakeup();
  #cursor = 0;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(
    source: ReadableStream<Uint8Array>,
    private readonly stop: () => void | Promise<void>,
  ) {
    const reader = this.#reader = source.getReader();
    this.ended = (async () => {
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          this.parser.push(decoder.decode(value, { stream: true }));
          this.#changed.wake();
        }
      } catch {
        // The connection failed; the test sees the stream end.
      } finally {
        this.#done = true;
        this.#changed.wake();
      }
    })();
  }

  /** Follows `url` with `fetch`, sending `headers`; throws unless the answer is 200. */
  static async fetch(url: URL | string, headers: HeadersInit = {}): Promise<EventStreamReader> {
    const abort = new AbortController();
    const response = await fetch(url, { headers, signal: abort.signal });
    if (response.status !== 200 || response.body === null) {
      throw new Error(`GET ${url} answered ${response.status}: ${await response.text()}`);
    }
    const reader = new EventStreamReader(response.body, () => abort.abort());
    return reader;
  }

  /** Follows `url` with `curl -N` in a subprocess, which {@link close} ends. */
  static curl(url: URL | string): EventStreamReader {
    const child = new Deno.Command("curl", {
      args: ["-sN", String(url)],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const reader = new EventStreamReader(child.stdout, async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // It has exited.
      }
      await child.status;
    });
    return reader;
  }

  get events(): StreamEvent[] {
    return this.parser.events;
  }

  /** Waits until `found()` holds, checked whenever more of the stream arrived. */
  async until(found: () => boolean, what: string, ms = TIMEOUT_MS): Promise<void> {
    await this.#changed.until(
      () => {
        if (found()) return true;
        if (this.#done) throw new Error(`the stream ended while waiting for ${what}`);
        return false;
      },
      what,
      ms,
    );
  }

  /** The next event not yet taken. */
  async next(ms = TIMEOUT_MS): Promise<StreamEvent> {
    await this.until(() => this.#cursor < this.events.length, "an event", ms);
    return this.events[this.#cursor++];
  }

  /** Waits until `count` events have arrived in all, and returns them. */
  async waitFor(count: number, ms = TIMEOUT_MS): Promise<StreamEvent[]> {
    await this.until(() => this.events.length >= count, `${count} events`, ms);
    return this.events;
  }

  /** The ids of the events, as numbers. */
  ids(): number[] {
    return this.events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
  }

  /** Stops reading and waits for the stream to be over here. */
  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.stop();
    await this.ended;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A follower on a bare TCP connection that reads nothing until asked: a peer fallen behind. It
 * decodes the chunked answer as it reads, into {@link parser}.
 */
export class RawFollower {
  readonly parser = new EventStreamParser();
  /** The answer's status line and headers, once read. */
  head: string | null = null;
  /** Whether the body has ended (its last chunk was read). */
  ended = false;
  #pending = new Uint8Array(0);
  readonly #decoder = new TextDecoder();
  #closed = false;

  private constructor(readonly conn: Deno.TcpConn) {}

  /** Sends `GET path` and reads nothing, not even the answer's head. */
  static async connect(port: number, path: string): Promise<RawFollower> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    return new RawFollower(conn);
  }

  /** Reads until `found()` holds; fails after `ms`, or if the answer ends first. */
  async readUntil(found: () => boolean, what: string, ms = 30_000): Promise<void> {
    const read = async () => {
      const buffer = new Uint8Array(1 << 20);
      while (!found()) {
        if (this.ended) throw new Error(`the stream ended before ${what}`);
        const n = await this.conn.read(buffer);
        if (n === null) throw new Error(`the connection ended before ${what}`);
        this.#take(buffer.subarray(0, n));
      }
    };
    await within(read(), what, ms);
  }

  /** Reads the rest of the answer. */
  readToEnd(ms?: number): Promise<void> {
    return this.readUntil(() => this.ended, "the end of the stream", ms);
  }

  /** Takes what was read: the head, then every whole chunk of the body. */
  #take(bytes: Uint8Array): void {
    const pending = new Uint8Array(this.#pending.length + bytes.length);
    pending.set(this.#pending);
    pending.set(bytes, this.#pending.length);
    let at = 0;
    const lineEnd = (from: number) => {
      for (let i = from; i + 1 < pending.length; i++) {
        if (pending[i] === 13 && pending[i + 1] === 10) return i;
      }
      return -1;
    };
    const latin1 = (from: number, to: number) =>
      new TextDecoder("latin1").decode(pending.subarray(from, to));
    if (this.head === null) {
      const end = latin1(0, pending.length).indexOf("\r\n\r\n");
      if (end === -1) return void (this.#pending = pending);
      this.head = latin1(0, end);
      at = end + 4;
    }
    while (!this.ended) {
      const end = lineEnd(at);
      if (end === -1) break;
      const size = parseInt(latin1(at, end), 16);
      if (pending.length < end + 2 + size + 2) break;
      if (size === 0) this.ended = true;
      else {this.parser.push(
          this.#decoder.decode(pending.subarray(end + 2, end + 2 + size), { stream: true }),
        );}
      at = end + 2 + size + 2;
    }
    this.#pending = pending.slice(at);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
