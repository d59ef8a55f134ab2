/**
 * Room summaries: a `parley.v1` connection that sent `{"type":"summary","on":true}` gets, at
 * most once per {@link SUMMARY_MS}, `summary {rooms: [{room, lastId, mentions}]}`: the rooms it
 * may see whose last id moved since its previous summary, `mentions` counting the new messages
 * there that mention its name. A room list stays current without a frame per message per
 * connection.
 *
 * One tracker per process: the bus brings every room's messages to every worker and instance,
 * whether anyone here is in the room or not (see `live.ts`). It keeps, for the rooms that moved
 * since the last tick, their last id and how many new messages mention each name; each tick
 * builds every subscriber's summary from that (once per kind of access and name: subscribers
 * alike share the frame) and forgets it. Without subscribers there is no tick and nothing kept.
 *
 * @module
 */

import type { Identity } from "./identity.ts";
import { encodeEvent, type SummaryRoom } from "./message.ts";

/** The least time between two summaries of a connection, and the tick that sends them. */
export const SUMMARY_MS = 1000;

/** A connection that asked for summaries. */
export interface SummarySubscriber {
  /** Whose rooms: a summary lists only those this person may read. */
  readonly identity: Identity;
  /** Whose mentions are counted. */
  readonly userName: string;
  /** Sends the encoded `summary` event. */
  summary(frame: string): void;
}

/** What happened in a room since the last tick. */
interface Activity {
  lastId: number;
  /** New messages mentioning each name. */
  mentions: Map<string, number>;
}

/** The tracker of room activity and the subscribers it summarises it for. */
export class Summaries {
  readonly #subscribers = new Set<SummarySubscriber>();
  #changed = new Map<string, Activity>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** `mayRead`: the access rule (`IdentityService.mayRead`). */
  constructor(private readonly mayRead: (identity: Identity, room: string) => boolean) {}

  /** Sends `subscriber` summaries until the returned function is called. */
  subscribe(subscriber: SummarySubscriber): () => void {
    this.#subscribers.add(subscriber);
    this.#timer ??= setInterval(() => this.tick(), SUMMARY_MS);
    return () => {
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) this.close();
    };
  }

  /** Whether anyone subscribes: until someone does, what arrives need not be told. */
  get listening(): boolean {
    return this.#subscribers.size > 0;
  }

  /** Message `id` arrived in `room`, mentioning `mentions`; ignored while nobody subscribes. */
  saw(room: string, id: number, mentions: readonly string[]): void {
    if (this.#subscribers.size === 0) return;
    let activity = this.#changed.get(room);
    if (activity === undefined) {
      this.#changed.set(room, activity = { lastId: id, mentions: new Map() });
    }
    activity.lastId = Math.max(activity.lastId, id);
    for (const name of new Set(mentions)) {
      activity.mentions.set(name, (activity.mentions.get(name) ?? 0) + 1);
    }
  }

  /** Sends each subscriber the summary of what changed since the last tick, if anything did. */
  tick(): void {
    const changed = this.#changed;
    if (changed.size === 0) return;
    this.#changed = new Map();
    const visible = new Map<string, boolean>();
    const frames = new Map<string, string>();
    for (const subscriber of this.#subscribers) {
      const access = accessOf(subscriber.identity);
      const key = `${access}\n${subscriber.userName}`;
      let frame = frames.get(key);
      if (frame === undefined) {
        const rooms: SummaryRoom[] = [];
        for (const [room, { lastId, mentions }] of changed) {
          const seen = `${access}\n${room}`;
          let may = visible.get(seen);
          if (may === undefined) visible.set(seen, may = this.mayRead(subscriber.identity, room));
          if (may) rooms.push({ room, lastId, mentions: mentions.get(subscriber.userName) ?? 0 });
        }
        frame = rooms.length === 0 ? "" : encodeEvent({ type: "summary", rooms });
        frames.set(key, frame);
      }
      if (frame !== "") subscriber.summary(frame);
    }
  }

  /** Stops the tick and forgets what changed. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#changed.clear();
  }
}

/** What decides which rooms an identity may read: identities alike in it see the same rooms. */
function accessOf({ via, id, admin, rooms }: Identity): string {
  return JSON.stringify([via, id, admin, rooms]);
}
