/**
 * How rooms reach the other workers of this instance: a `BroadcastChannel` carrying stored
 * messages and who is present.
 *
 * Delivery on a channel is best effort (a receiver that falls behind loses messages), which is
 * why rooms order messages by id and fill gaps from the history store instead of trusting the bus.
 */

import type { ChatMessage } from "./message.ts";

/** What a worker tells the others: a message it stored, or who is present through it. */
export type BusEvent =
  | { kind: "message"; message: ChatMessage }
  | { kind: "presence"; room: string; users: string[] };

/** A {@link BusEvent} as received, with the id of the worker that sent it. */
export type ReceivedEvent = BusEvent & { from: string };

/** Carries events to the rooms of every other worker sharing the history store. */
export interface Bus {
  publish(event: BusEvent): void;
  /** Registers the receiver of the other workers' events. */
  onEvent(handler: (event: ReceivedEvent) => void): void;
  close(): void;
}

/** A {@link Bus} on a `BroadcastChannel`; workers that share a store share the channel name. */
export class BroadcastChannelBus implements Bus {
  readonly #channel: BroadcastChannel;
  readonly #id = crypto.randomUUID();
  #closed = false;

  constructor(name: string) {
    this.#channel = new BroadcastChannel(name);
  }

  publish(event: BusEvent): void {
    // A room may still announce a departure after shutdown closed the channel.
    if (this.#closed) return;
    this.#channel.postMessage({ ...event, from: this.#id });
  }

  onEvent(handler: (event: ReceivedEvent) => void): void {
    this.#channel.onmessage = (event: MessageEvent<ReceivedEvent>) => handler(event.data);
  }

  close(): void {
    this.#closed = true;
    this.#channel.close();
  }
}
