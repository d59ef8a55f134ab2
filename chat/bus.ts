/**
 * How a room's messages and presence reach every worker and instance, and who assigns ids.
 *
 * - {@link LocalBus}: one instance. Its history store assigns ids; a `BroadcastChannel` carries
 *   messages and presence between its workers.
 * - {@link RedisBus} (`redis_bus.ts`): several instances. A Lua script in Redis assigns ids,
 *   appends the message to the room's stream and publishes it, so the order is Redis's; every
 *   instance records what it receives in its own history store, filling gaps from the stream.
 *
 * Delivery is best effort on both (a `BroadcastChannel` drops for a receiver that falls behind, a
 * Redis subscription misses what is published while it reconnects), which is why rooms order
 * messages by id and fill gaps from stored history instead of trusting the bus.
 *
 * Presence travels as snapshots: who is present in a room through one worker or instance. A bus
 * that has peers beats every announce interval, and its receiver then announces its snapshots
 * again, so a peer that stops being heard (it crashed) can be forgotten; see `presence.ts`.
 */

import type { AppendResult, ChangeResult, HistoryStore, NewChange, NewMessage } from "./history.ts";
import { type LogEvent, messageEvent } from "./message.ts";

export { RedisBus } from "./redis_bus.ts";

/**
 * What the rooms hear from the bus: a stored event of a room's log (a message, or a change to
 * one), who is present through another worker or instance, or the heartbeat: time to announce
 * again, and to forget peers silent for too long.
 */
export type BusEvent =
  | { kind: "log"; event: LogEvent }
  | { kind: "presence"; room: string; users: string[]; from: string }
  | { kind: "heartbeat"; intervalMs: number }
  /** Someone is typing in a room: live only, never stored (see `typing.ts`). */
  | { kind: "typing"; room: string; userName: string; from?: string };

/** How often a bus with peers beats, by default. */
export const ANNOUNCE_SECONDS = 20;

/** Carries a room's messages and presence between workers and instances. */
export interface Bus {
  /**
   * Stores a message durably with its room's next id, and delivers it to the rooms of every
   * worker and instance, this one's included. A resend of a known `clientId` with the same body
   * returns the original and delivers nothing; another body under it is refused with
   * `ClientIdReusedError`.
   */
  append(message: NewMessage): Promise<AppendResult>;
  /**
   * Stores a change to a message (edit, delete, reaction) with its room's next id, once it is
   * judged allowed (see `HistoryStore.judge`), and delivers its event like a message's. A resend
   * of a known `clientId` returns the original and delivers nothing; so does a change that
   * changes nothing. Rejects with `ChangeRefusedError` or `ClientIdReusedError` when refused.
   */
  change(change: NewChange): Promise<ChangeResult>;
  /**
   * Tells the other workers and instances who is present in a room through this one (nobody:
   * an empty list). Say it again at every heartbeat, or they forget.
   */
  announce(room: string, users: string[]): void;
  /**
   * Tells the rooms of every worker and instance, this one's included, that `userName` is
   * typing in `room`: best effort, stored nowhere.
   */
  typing(room: string, userName: string): void;
  /** Registers the receiver of every event. */
  onEvent(handler: (event: BusEvent) => void): void;
  /**
   * Brings the room's local history up to date with the shared one before someone joins it, or
   * null when it always is.
   */
  catchUp(room: string): Promise<void> | null;
  /** Whether the shared store is reachable: `null` for a bus that has none (one instance). */
  readonly redis: "ok" | "down" | null;
  close(): Promise<void>;
}

/** The {@link Bus} of one instance: ids from the history store, workers on a `BroadcastChannel`. */
export class LocalBus implements Bus {
  readonly redis = null;
  readonly #channel: BroadcastChannel | null;
  readonly #id = crypto.randomUUID();
  #handler: (event: BusEvent) => void = () => {};
  #closed = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  /**
   * Workers that share a history store share `channelName`; a lone process needs none, and has
   * no heartbeat.
   */
  constructor(
    private readonly history: HistoryStore,
    channelName: string | null,
    announceSeconds = ANNOUNCE_SECONDS,
  ) {
    this.#channel = channelName === null ? null : new BroadcastChannel(channelName);
    if (this.#channel !== null) {
      this.#channel.onmessage = (event: MessageEvent<BusEvent>) => this.#handler(event.data);
      const intervalMs = announceSeconds * 1000;
      this.#heartbeat = setInterval(
        () => this.#handler({ kind: "heartbeat", intervalMs }),
        intervalMs,
      );
    }
  }

  async append(message: NewMessage): Promise<AppendResult> {
    const result = await this.history.append(message);
    if (!result.duplicate) this.#deliver(messageEvent(result.message));
    return result;
  }

  async change(change: NewChange): Promise<ChangeResult> {
    const result = await this.history.change(change);
    if (!result.duplicate && result.event !== null) this.#deliver(result.event);
    return result;
  }

  #deliver(logged: LogEvent): void {
    const event: BusEvent = { kind: "log", event: logged };
    this.#handler(event);
    this.#post(event);
  }

  announce(room: string, users: string[]): void {
    this.#post({ kind: "presence", room, users, from: this.#id });
  }

  onEvent(handler: (event: BusEvent) => void): void {
    this.#handler = handler;
  }

  typing(room: string, userName: string): void {
    const event: BusEvent = { kind: "typing", room, userName };
    this.#handler(event);
    this.#post(event);
  }

  catchUp(): null {
    return null;
  }

  #post(event: BusEvent): void {
    // A room may still announce a departure after shutdown closed the channel.
    if (!this.#closed) this.#channel?.postMessage(event);
  }

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#channel?.close();
    return Promise.resolve();
  }
}
