/**
 * Who is typing. A `parley.v1` client's `{"type":"typing"}` goes out at most once per
 * {@link TYPING_INTERVAL_MS} (a {@link TypingGate} per connection drops the rest), over the bus
 * to every worker and instance; there each room's listeners (its `parley.v1` clients) get
 * `typing {room, userName}`, encoded once, except those present under that name. Nothing is
 * stored or replayed, and nothing is kept of who typed: a room where nobody types costs nothing.
 *
 * @module
 */

import { encodeEvent } from "./message.ts";

/** The least time between two typing notices of one connection; more are dropped silently. */
export const TYPING_INTERVAL_MS = 2000;

/** A connection that hears who types in its room. */
export interface TypingListener {
  /** The name it is present under: it is not told of its own typing. */
  readonly userName: string;
  /** Sends the encoded `typing` event, if the connection has room for it. */
  typing(frame: string): void;
}

/** One connection's limit: a notice may pass at most once per {@link TYPING_INTERVAL_MS}. */
export class TypingGate {
  #next = -Infinity;

  /** `now`: a monotonic clock in ms; tests pass their own. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Whether a notice may go now; if so, the next may go {@link TYPING_INTERVAL_MS} later. */
  pass(): boolean {
    const now = this.now();
    if (now < this.#next) return false;
    this.#next = now + TYPING_INTERVAL_MS;
    return true;
  }
}

/** The typing listeners of this worker's rooms, and the fan-out of what the bus hears. */
export class Typing {
  readonly #rooms = new Map<string, Set<TypingListener>>();

  /** Tells `listener` who types in `room` until the returned function is called. */
  listen(room: string, listener: TypingListener): () => void {
    let listeners = this.#rooms.get(room);
    if (listeners === undefined) this.#rooms.set(room, listeners = new Set());
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#rooms.get(room) === listeners) this.#rooms.delete(room);
    };
  }

  /** `userName` is typing in `room` (here, or in another worker or instance). */
  heard(room: string, userName: string): void {
    const listeners = this.#rooms.get(room);
    if (listeners === undefined) return;
    const frame = encodeEvent({ type: "typing", room, userName });
    for (const listener of listeners) {
      if (listener.userName !== userName) listener.typing(frame);
    }
  }
}
