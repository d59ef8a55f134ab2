/**
 * What carries a connection's frames: the {@link Transport} interface a session talks to, and its
 * WebSocket implementation. A session never sees the socket, so tests can drive one without it.
 */

/** WebSocket close codes parley uses, named for why. */
export const CloseCode = {
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  serverError: 1011,
  tryAgainLater: 1013,
} as const;

/** One frame from the peer: text, or binary data (which the protocol refuses). */
export type Frame = string | ArrayBuffer | Blob;

/** Where a transport is: frames go out only while it is `open`; `closed` includes closing. */
export type TransportState = "connecting" | "open" | "closed";

/** What a connection hears from its transport. */
export interface TransportListener {
  /** The transport is open: frames may be sent. */
  opened(): void;
  /** A frame arrived from the peer. */
  received(frame: Frame): void;
  /**
   * The transport closed with the peer's code (1005 if it gave none). A runtime may report one
   * close twice: the listener must take the first.
   */
  closed(code: number, reason: string): void;
}

/** A connection's frames in and out, whatever carries them. */
export interface Transport {
  /** What carries the frames (`websocket`, `sse`): `/metrics` counts connections by it. */
  readonly kind: string;
  readonly state: TransportState;
  /** Bytes sent but not yet written to the network: how far behind the peer is. */
  readonly bufferedAmount: number;
  /** Sends one text frame; nothing happens once the transport is closed. */
  send(text: string): void;
  /** Resolves once {@link bufferedAmount} is at most `bytes`, or the transport is not open. */
  drained(bytes: number): Promise<void>;
  /** Starts closing with a code from {@link CloseCode} and a reason for the user. */
  close(code: number, reason: string): void;
  /** Tells `listener` what happens from now on. */
  listen(listener: TransportListener): void;
}

/** The size of a frame in bytes (in UTF-16 units for text, which bounds its bytes well enough). */
export function frameSize(frame: Frame): number {
  if (typeof frame === "string") return frame.length;
  if (frame instanceof ArrayBuffer) return frame.byteLength;
  return frame.size;
}

/** A close reason is at most this many bytes of UTF-8: `WebSocket.close` throws past it. */
const MAX_REASON_BYTES = 123;

/** `reason` cut to what a close frame may carry, whole characters only. */
export function closeReason(reason: string): string {
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const size = char.length === 2 ? 4 : char <= "\x7f" ? 1 : char <= "\u07ff" ? 2 : 3;
    if (bytes + size > MAX_REASON_BYTES) break;
    bytes += size;
    end += char.length;
  }
  return reason.slice(0, end);
}

/**
 * The longest wait between two looks at a socket's send buffer while waiting for it to drain:
 * a WebSocket says nothing when it drains. A peer that reads catches up within a few looks; one
 * that never does costs a timer every this many milliseconds.
 */
const MAX_DRAIN_POLL_MS = 128;

/** The {@link Transport} of an upgraded WebSocket. */
export class WebSocketTransport implements Transport {
  readonly kind = "websocket";

  constructor(private readonly socket: WebSocket) {}

  get state(): TransportState {
    const state = this.socket.readyState;
    return state === WebSocket.OPEN
      ? "open"
      : state === WebSocket.CONNECTING
      ? "connecting"
      : "closed";
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(text: string): void {
    try {
      this.socket.send(text);
    } catch {
      // The socket closed under us; its close event does the rest.
    }
  }

  drained(bytes: number): Promise<void> {
    const done = () => this.state !== "open" || this.socket.bufferedAmount <= bytes;
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      let wait = 1;
      const look = () => {
        if (done()) return resolve();
        wait = Math.min(wait * 2, MAX_DRAIN_POLL_MS);
        setTimeout(look, wait);
      };
      setTimeout(look, wait);
    });
  }

  close(code: number, reason: string): void {
    try {
      this.socket.close(code, closeReason(reason));
    } catch {
      // Already closing.
    }
  }

  listen(listener: TransportListener): void {
    this.socket.onopen = () => listener.opened();
    this.socket.onmessage = (event: MessageEvent<Frame>) => listener.received(event.data);
    this.socket.onerror = () => {};
    this.socket.onclose = (event) => listener.closed(event.code, event.reason);
  }
}

/** How often an event stream sends a comment when nothing else: proxies drop silent streams. */
export const KEEPALIVE_MS = 15_000;

/**
 * The most bytes an event stream hands the HTTP server at once. What it has handed over no longer
 * counts in `bufferedAmount`, so this bounds what a stuck peer holds that the limit cannot see.
 */
const PULL_BYTES = 65_536;

/** The `code` of an event stream's last event, by the close code it stands for. */
const CLOSE_EVENT_CODES: Readonly<Record<number, string>> = {
  [CloseCode.goingAway]: "going_away",
  [CloseCode.policy]: "policy",
  [CloseCode.serverError]: "server_error",
  [CloseCode.tryAgainLater]: "too_slow",
};

/** A session waiting for an event stream's {@link Transport.drained}. */
interface DrainWaiter {
  bytes: number;
  resolve: () => void;
}

/** One Server-Sent Event: `id:` (when given), `event:` and one `data:` line (JSON has no newline). */
export function serverSentEvent(event: string, data: string, id?: number): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`;
}

/**
 * The {@link Transport} of a Server-Sent Events response: its {@link body} is the response's. It
 * opens when the HTTP server first reads the body, and its peer sends nothing. What was sent and
 * not yet read by the HTTP server waits here and is its `bufferedAmount`; the HTTP server reads
 * only as the peer takes what it was given. Closing drops what waits (a resume gets it again)
 * for a last `event: error` saying why, in the `code` of {@link CLOSE_EVENT_CODES}; the stream
 * ends once that is read, or when the peer goes away.
 */
export class EventStreamTransport implements Transport {
  readonly kind = "sse";
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  #state: TransportState = "connecting";
  #listener: TransportListener | null = null;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly #encoder = new TextEncoder();
  #queue: Uint8Array[] = [];
  #buffered = 0;
  /** The HTTP server is waiting to read: what is sent next goes to it at once. */
  #reading = false;
  /** The last event, once closing: it goes out instead of what waited. */
  #last: { code: number; reason: string; bytes: Uint8Array } | null = null;
  #ended = false;
  #drainWaiters: DrainWaiter[] = [];
  readonly #keepalive: ReturnType<typeof setInterval>;

  constructor(keepaliveMs = KEEPALIVE_MS) {
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      // An event stream's peer has no close code: it can only go away.
      cancel: () => this.#end(this.#last?.code ?? CloseCode.goingAway, ""),
    }, { highWaterMark: 0 });
    this.#keepalive = setInterval(() => this.send(": keepalive\n\n"), keepaliveMs);
  }

  get state(): TransportState {
    return this.#state;
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  send(text: string): void {
    if (this.#state !== "open") return;
    const bytes = this.#encoder.encode(text);
    if (this.#reading) {
      this.#reading = false;
      this.#controller.enqueue(bytes);
    } else {
      this.#queue.push(bytes);
      this.#buffered += bytes.byteLength;
    }
  }

  drained(bytes: number): Promise<void> {
    if (this.#state !== "open" || this.#buffered <= bytes) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push({ bytes, resolve }));
  }

  close(code: number, reason: string): void {
    if (this.#last !== null || this.#ended) return;
    const data = JSON.stringify({
      type: "error",
      code: CLOSE_EVENT_CODES[code] ?? "closed",
      message: reason,
    });
    this.#last = { code, reason, bytes: this.#encoder.encode(serverSentEvent("error", data)) };
    this.#state = "closed";
    clearInterval(this.#keepalive);
    this.#queue = [];
    this.#buffered = 0;
    this.#wakeDrainWaiters();
    if (this.#reading) this.#pull();
  }

  listen(listener: TransportListener): void {
    this.#listener = listener;
  }

  /** The HTTP server reads: it gets what waits (a bounded part of it), or the next send. */
  #pull(): void {
    if (this.#ended) return;
    if (this.#last !== null) {
      this.#controller.enqueue(this.#last.bytes);
      this.#controller.close();
      return this.#end(this.#last.code, this.#last.reason);
    }
    if (this.#state === "connecting") {
      this.#state = "open";
      this.#listener?.opened();
      // What the session sent on opening went to the queue: hand it over below.
    }
    if (this.#queue.length === 0) {
      this.#reading = true;
      return;
    }
    let taken = 0;
    let count = 0;
    while (count < this.#queue.length && (count === 0 || taken < PULL_BYTES)) {
      taken += this.#queue[count++].byteLength;
    }
    const chunks = this.#queue.splice(0, count);
    this.#buffered -= taken;
    this.#controller.enqueue(count === 1 ? chunks[0] : concat(chunks, taken));
    this.#wakeDrainWaiters();
  }

  #wakeDrainWaiters(): void {
    const waiting: DrainWaiter[] = [];
    for (const waiter of this.#drainWaiters) {
      if (this.#state === "open" && this.#buffered > waiter.bytes) waiting.push(waiter);
      else waiter.resolve();
    }
    this.#drainWaiters = waiting;
  }

  /** Says the stream has ended, once. */
  #end(code: number, reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#state = "closed";
    clearInterval(this.#keepalive);
    this.#queue = [];
    this.#buffered = 0;
    this.#wakeDrainWaiters();
    this.#listener?.closed(code, reason);
  }
}

/** `chunks`, `bytes` long in all, in one array. */
function concat(chunks: readonly Uint8Array[], bytes: number): Uint8Array {
  const joined = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}
