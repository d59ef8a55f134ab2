/**
 * A {@link Transport} in memory, for driving a connection's session without sockets: the test
 * plays the peer (open, frames, close, even a close reported twice) and reads what was sent.
 */

import type { Frame, Transport, TransportListener, TransportState } from "../chat/transport.ts";
import { type Event, Wakeup } from "./support.ts";

/**
 * A transport whose peer is the test; nothing is sent anywhere, everything sent is kept. With
 * `unread`, the peer reads nothing until {@link drain}: what is sent stays in `bufferedAmount`.
 */
export class MemoryTransport implements Transport {
  readonly kind = "memory";
  state: TransportState = "connecting";
  #buffered = 0;
  /** The most `bufferedAmount` ever was. */
  peakBuffered = 0;
  /** Every frame sent, in order. */
  readonly sent: string[] = [];
  /** The code and reason the session closed with, if it did. */
  closedWith: { code: number; reason: string } | null = null;
  #listener: TransportListener | null = null;
  readonly #changed = new Wakeup();
  #drainWaiters: (() => void)[] = [];

  constructor(private readonly unread = false) {}

  get bufferedAmount(): number {
    return this.#buffered;
  }

  /** Says how much is buffered, as a runtime would; sessions waiting for a drain look again. */
  set bufferedAmount(bytes: number) {
    this.#buffered = bytes;
    this.peakBuffered = Math.max(this.peakBuffered, bytes);
    this.#wakeDrainWaiters();
  }

  #wakeDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  send(text: string): void {
    if (this.state === "open") {
      this.sent.push(text);
      if (this.unread) this.bufferedAmount += text.length;
    }
    this.#changed.wake();
  }

  drained(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      const look = () => {
        if (this.state !== "open" || this.#buffered <= bytes) resolve();
        else this.#drainWaiters.push(look);
      };
      look();
    });
  }

  /** The peer reads everything buffered. */
  drain(): void {
    this.bufferedAmount = 0;
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closedWith = { code, reason };
    this.#wakeDrainWaiters();
    this.#changed.wake();
  }

  /** Waits until `found()` holds, checked after every frame sent and at the close. */
  until(found: () => boolean, what: string): Promise<void> {
    return this.#changed.until(found, what);
  }

  listen(listener: TransportListener): void {
    this.#listener = listener;
  }

  /** The peer has connected. */
  open(): void {
    this.state = "open";
    this.#listener?.opened();
  }

  /** The peer sends a frame; an object is sent as its JSON. */
  receive(frame: Frame | Record<string, unknown>): void {
    const data = typeof frame === "object" && !(frame instanceof ArrayBuffer) &&
        !(frame instanceof Blob)
      ? JSON.stringify(frame)
      : frame;
    this.#listener?.received(data);
  }

  /** The runtime reports the connection closed, with the peer's code. */
  reportClose(code: number, reason = ""): void {
    this.state = "closed";
    this.#wakeDrainWaiters();
    this.#listener?.closed(code, reason);
  }

  /** The `parley.v1` events sent, parsed. */
  events(): Event[] {
    return this.sent.flatMap((frame) => frame.split("\n")).map((line) => JSON.parse(line));
  }
}
