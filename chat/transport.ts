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
