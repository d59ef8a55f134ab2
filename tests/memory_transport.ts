/**
 * A {@link Transport} in memory, for driving a connection's session without sockets: the test
 * plays the peer (open, frames, close, even a close reported twice) and reads what was sent.
 */

import type { Frame, Transport, TransportListener, TransportState } from "../chat/transport.ts";
import { type Event, Wakeup } from "./support.ts";

/** A transport whose peer is the test; nothing is sent anywhere, everything sent is kept. */
export class MemoryTransport implements Transport {
  state: TransportState = "connecting";
  bufferedAmount = 0;
  /** Every frame sent, in order. */
  readonly sent: string[] = [];
  /** The code and reason the session closed with, if it did. */
  closedWith: { code: number; reason: string } | null = null;
  #listener: TransportListener | null = null;
  readonly #changed = new Wakeup();

  send(text: string): void {
    if (this.state === "open") this.sent.push(text);
    this.#changed.wake();
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closedWith = { code, reason };
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
    this.#listener?.closed(code, reason);
  }

  /** The `parley.v1` events sent, parsed. */
  events(): Event[] {
    return this.sent.flatMap((frame) => frame.split("\n")).map((line) => JSON.parse(line));
  }
}
