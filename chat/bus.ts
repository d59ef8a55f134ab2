/**
 * How a room's messages reach the other workers of this instance: a `BroadcastChannel`.
 *
 * Delivery on a channel is best effort (a receiver that falls behind loses messages), which is
 * why rooms order by id and fill gaps from the history store instead of trusting the bus.
 */

import type { ChatMessage } from "./message.ts";

/** Carries stored messages to the rooms of every other worker sharing the history store. */
export interface Bus {
  /** Tells the other workers about a message this one stored. */
  publish(message: ChatMessage): void;
  /** Registers the receiver of messages the other workers stored. */
  onMessage(handler: (message: ChatMessage) => void): void;
  close(): void;
}

/** A {@link Bus} on a `BroadcastChannel`; workers that share a store share the channel name. */
export class BroadcastChannelBus implements Bus {
  readonly #channel: BroadcastChannel;

  constructor(name: string) {
    this.#channel = new BroadcastChannel(name);
  }

  publish(message: ChatMessage): void {
    this.#channel.postMessage(message);
  }

  onMessage(handler: (message: ChatMessage) => void): void {
    this.#channel.onmessage = (event: MessageEvent<ChatMessage>) => handler(event.data);
  }

  close(): void {
    this.#channel.close();
  }
}
