/**
 * The subscription to one Redis channel, on a connection of its own ({@link RedisLink}).
 *
 * On a Redis Cluster a message published on any node reaches the subscribers of every node, so
 * the subscription needs one node only: it takes the first of the configured nodes that answers,
 * and when that node has been away for {@link FAILOVER_MS} it moves on to the next, so that the
 * events of rooms on the other masters keep coming while a master is away. (Sharded pub/sub
 * would need a channel per slot, thousands of them, which the client cannot resubscribe to when
 * a node returns.) What is published while it moves is caught up from the streams.
 *
 * @module
 */

import { RedisLink } from "./redis_link.ts";
import type { RedisTarget } from "./redis_target.ts";

/** How long the subscription waits for its node to come back before it moves to another. */
export const FAILOVER_MS = 1000;

/** A subscription to `channel`, moving among a cluster's configured nodes. */
export class RedisSubscription {
  /** Called each time the subscription works again after it stopped. */
  onUp: () => void = () => {};
  /** Called once each time the subscription stops. */
  onDown: () => void = () => {};
  #link: RedisLink;
  #index: number;
  #closed = false;
  #moving: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    link: RedisLink,
    index: number,
    private readonly urls: readonly string[],
    private readonly subscribe: (link: RedisLink) => Promise<void>,
    private readonly onError: (message: string) => void,
  ) {
    this.#link = link;
    this.#index = index;
    this.#watch(link);
  }

  /**
   * Subscribes through the first node that answers (the server, if not a cluster); none
   * answering is an error. `listener` gets each message's text.
   */
  static async open(
    target: RedisTarget,
    channel: string,
    listener: (text: string) => void,
    onError: (message: string) => void,
  ): Promise<RedisSubscription> {
    const urls = target.cluster ? target.urls : [target.url];
    const subscribe = (link: RedisLink) =>
      link.call("SUBSCRIBE", (c) => c.subscribe(channel, listener));
    let first: Error | undefined;
    for (const [index, url] of urls.entries()) {
      try {
        const link = await subscribed(url, subscribe, onError);
        return new RedisSubscription(link, index, urls, subscribe, onError);
      } catch (error) {
        first ??= error as Error;
      }
    }
    throw first;
  }

  /** Whether the subscription works (its connection is up). */
  get up(): boolean {
    return !this.#closed && this.#link.up;
  }

  /** Makes the connection again: for one that carries nothing (`reason` says how that showed). */
  revive(reason: string): void {
    this.#link.revive(reason);
  }

  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#moving);
    return this.#link.close();
  }

  #watch(link: RedisLink): void {
    link.onDown = () => {
      this.onDown();
      if (this.urls.length > 1) this.#moving = setTimeout(() => this.#moveOn(), FAILOVER_MS);
    };
    link.onUp = () => {
      clearTimeout(this.#moving);
      this.onUp();
    };
  }

  /** Subscribes through the next node, and closes the connection to the one that is away. */
  async #moveOn(): Promise<void> {
    if (this.#closed || this.#link.up) return;
    const index = (this.#index + 1) % this.urls.length;
    try {
      const link = await subscribed(this.urls[index], this.subscribe, this.onError);
      if (this.#closed || this.#link.up) return void await link.close();
      await this.#link.close();
      this.#link = link;
      this.#index = index;
      this.#watch(link);
      this.onError(`redis: the events subscription moved to node ${index + 1} of "redis"`);
      this.onUp();
    } catch {
      // That node is away too: the next one, after a while.
      this.#index = index;
      if (!this.#closed) this.#moving = setTimeout(() => this.#moveOn(), FAILOVER_MS);
    }
  }
}

/** A connection to `url` subscribed by `subscribe`; an error if either fails. */
async function subscribed(
  url: string,
  subscribe: (link: RedisLink) => Promise<void>,
  onError: (message: string) => void,
): Promise<RedisLink> {
  const link = await RedisLink.open({ cluster: false, url }, "events", onError);
  try {
    await subscribe(link);
    return link;
  } catch (error) {
    await link.close();
    throw error;
  }
}
