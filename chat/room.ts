/**
 * A chat room: who is present, the room's history, and fan-out of its events to subscribers.
 *
 * Events are grouped into batches: everything a room emits before its subscribers next run goes into
 * one {@link Batch}, encoded once and shared by every subscriber. A subscriber takes every batch
 * that arrived since it last ran; a `parley.v1` client sends them as one frame (a legacy client,
 * one frame per message). A large room wakes its subscribers a slice at a time, so those reached
 * later have more to take.
 */

import { setImmediate } from "node:timers";
import type { Bus } from "./bus.ts";
import type { AppendResult, HistoryStore, NewMessage } from "./history.ts";
import {
  type ChatMessage,
  encodeEvent,
  encodeLegacy,
  messageEvent,
  type ServerEvent,
} from "./message.ts";

/** What a room emits to its subscribers: messages and presence changes. */
export type RoomEvent = Extract<ServerEvent, { type: "message" | "join" | "leave" }>;

/** Events emitted together, with their encodings computed once for all subscribers. */
export class Batch {
  readonly #events: RoomEvent[] = [];
  #sealed = false;
  /** How many of the events are messages. */
  messageCount = 0;
  /** The highest message id in the batch, 0 if it holds none. */
  lastId = 0;
  #frame?: string;
  #legacy?: string[];
  #ids?: number[];

  /** True once a subscriber has read the batch: later events go to a new one. */
  get sealed(): boolean {
    return this.#sealed;
  }

  /** The events, oldest first. Reading them seals the batch. */
  get events(): readonly RoomEvent[] {
    this.#sealed = true;
    return this.#events;
  }

  /** The `parley.v1` frame: the events' JSON joined by newlines. */
  frame(): string {
    return this.#frame ??= this.events.map(encodeEvent).join("\n");
  }

  /** The legacy frames: one per message (legacy clients see no presence events). */
  legacyFrames(): string[] {
    return this.#legacy ??= this.events.filter(isMessage).map(encodeLegacy);
  }

  /** The ids of the batch's messages, in order. */
  get messageIds(): number[] {
    return this.#ids ??= this.events.filter(isMessage).map((m) => m.id);
  }

  /** @internal Called by the room while the batch is open. */
  add(event: RoomEvent): void {
    this.#events.push(event);
    if (event.type === "message") {
      this.messageCount++;
      this.lastId = event.id;
    }
  }
}

function isMessage(event: RoomEvent): event is Extract<RoomEvent, { type: "message" }> {
  return event.type === "message";
}

/** Thrown by a subscription's iterator when its subscriber fell too far behind. */
export class SubscriberOverflowError extends Error {
  override name = "SubscriberOverflowError";
}

/**
 * Presence lists name at most this many people, and a room with more present does not announce
 * each join and leave: both would cost the size of the room for every change, for everyone.
 */
export const MAX_LISTED_USERS = 100;

/** Batches a subscription may hold unread before it is ended as too slow. */
const MAX_QUEUED_BATCHES = 4096;

/**
 * Subscribers a room wakes per event-loop turn. Measured in `crowd` (10,000 subscribers): p99
 * latency 0.5-1.6 s waking all at once, mostly 0.3-0.4 s at 250 to 500 (bench/README.md).
 */
export const HANDOVER_CHUNK = 250;

/**
 * One subscriber's view of a room: an async iterator that yields, each time, every batch that
 * arrived since the last time (oldest first), so a subscriber that was behind sends one frame.
 */
export class Subscription implements AsyncIterableIterator<readonly Batch[]> {
  #queue: Batch[] = [];
  /** The consumer waiting in {@link next}, until the room wakes it. */
  #waiting: PromiseWithResolvers<IteratorResult<readonly Batch[]>> | null = null;
  #done = false;
  /** Why the subscription ended, if it was not closed by its owner. */
  #failure: SubscriberOverflowError | null = null;
  /** @internal In the room's queue of subscribers to wake. */
  due = false;

  constructor(private readonly onClose: (sub: Subscription) => void) {}

  /** @internal Queues a batch; the room hands it over with {@link wake}. */
  push(batch: Batch): void {
    if (this.#done) return;
    if (this.#queue.length < MAX_QUEUED_BATCHES) {
      this.#queue.push(batch);
    } else {
      this.#failure = new SubscriberOverflowError("the subscriber fell too far behind");
      this.close();
    }
  }

  /** @internal Hands what is queued to a waiting consumer. */
  wake(): void {
    const waiting = this.#waiting;
    if (waiting === null || this.#queue.length === 0) return;
    this.#waiting = null;
    waiting.resolve({ value: this.#take(), done: false });
  }

  #take(): Batch[] {
    const batches = this.#queue;
    this.#queue = [];
    return batches;
  }

  next(): Promise<IteratorResult<readonly Batch[]>> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#take(), done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    this.#waiting = Promise.withResolvers();
    return this.#waiting.promise;
  }

  return(): Promise<IteratorResult<readonly Batch[]>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Ends the subscription: the iterator finishes after nothing more, or throws the
   * {@link SubscriberOverflowError} if the subscriber fell too far behind.
   */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#queue.length = 0;
    this.onClose(this);
    const waiting = this.#waiting;
    this.#waiting = null;
    if (this.#failure !== null) waiting?.reject(this.#failure);
    else waiting?.resolve({ value: undefined, done: true });
  }
}

/** A room's members, history and subscribers. Rooms are made by {@link Rooms}. */
export class Room {
  readonly #subscribers = new Set<Subscription>();
  /** Names present through this process, in order of arrival, with their connection counts. */
  readonly #present = new Map<string, number>();
  #open: Batch | null = null;
  /** Subscribers with batches to hand over, in the order they are to be woken. */
  #due: Subscription[] = [];
  #handingOver = false;
  /** The highest message id delivered to subscribers: ids are the truth about order and gaps. */
  #delivered: number;
  /** Publishes awaiting the store: the room stays open until they are delivered. */
  #publishing = 0;
  #announcing = false;

  constructor(
    readonly name: string,
    private readonly history: HistoryStore,
    private readonly bus: Bus,
    /** Names present through other workers, by worker; kept by {@link Rooms} across reopening. */
    private readonly remote: Map<string, string[]>,
    private readonly onEmpty: (room: Room) => void,
  ) {
    this.#delivered = history.lastId(name);
    this.ready = bus.catchUp(name);
  }

  /** Settles once the room's history is up to date, if it may not be yet; see {@link Bus.catchUp}. */
  readonly ready: Promise<void> | null;

  /** How many names are present here and in other workers. */
  get userCount(): number {
    return this.remote.size === 0 ? this.#present.size : this.#allNames().size;
  }

  /** Names present, in order of arrival: at most {@link MAX_LISTED_USERS} of them. */
  get users(): string[] {
    const names: string[] = [];
    const all = this.remote.size === 0 ? this.#present.keys() : this.#allNames().values();
    for (const name of all) {
      if (names.push(name) === MAX_LISTED_USERS) break;
    }
    return names;
  }

  #allNames(): Set<string> {
    const names = new Set(this.#present.keys());
    for (const list of this.remote.values()) for (const name of list) names.add(name);
    return names;
  }

  #presentElsewhere(userName: string): boolean {
    for (const list of this.remote.values()) if (list.includes(userName)) return true;
    return false;
  }

  /** The newest message id in the room, 0 if it has none. */
  get lastId(): number {
    return Math.max(this.#delivered, this.history.lastId(this.name));
  }

  /**
   * What a client resuming after message `since` (null: a newcomer, who gets the last `onJoin`)
   * should get before live events, up to `lastId`, and whether that is everything it missed.
   */
  missed(
    since: number | null,
    lastId: number,
    onJoin: number,
  ): { messages: ChatMessage[]; recovered: boolean } {
    // A room that never had a message has no history to read (a join storm asks thousands of times).
    const recent = () => lastId === 0 ? [] : this.history.recent(this.name, onJoin);
    if (since === null) return { messages: recent(), recovered: true };
    if (since >= lastId) return { messages: [], recovered: since === lastId };
    if (this.history.firstId(this.name) > since + 1) {
      return { messages: recent(), recovered: false };
    }
    return { messages: this.history.after(this.name, since, lastId - since), recovered: true };
  }

  /** Starts receiving the room's events from now on. */
  subscribe(): Subscription {
    const sub = new Subscription((s) => {
      this.#subscribers.delete(s);
      this.#maybeEmpty();
    });
    this.#subscribers.add(sub);
    // The open batch went out before this subscriber existed: what follows needs a new one.
    this.#open = null;
    return sub;
  }

  /** Marks a name present; the first connection under a name tells the room it joined. */
  join(userName: string): void {
    const count = this.#present.get(userName) ?? 0;
    this.#present.set(userName, count + 1);
    if (count > 0) return;
    this.#announce();
    if (!this.#presentElsewhere(userName)) this.#presenceEvent("join", userName);
  }

  /** Undoes one {@link join}; the last connection under a name tells the room it left. */
  leave(userName: string): void {
    const count = this.#present.get(userName);
    if (count === undefined) return;
    if (count > 1) {
      this.#present.set(userName, count - 1);
      return;
    }
    this.#present.delete(userName);
    this.#announce();
    if (!this.#presentElsewhere(userName)) this.#presenceEvent("leave", userName);
    this.#maybeEmpty();
  }

  /** Takes another worker's list of who is present through it. */
  setRemote(worker: string, users: string[]): void {
    const before = this.#allNames();
    if (users.length === 0) this.remote.delete(worker);
    else this.remote.set(worker, users);
    const after = this.#allNames();
    for (const userName of after) if (!before.has(userName)) this.#presenceEvent("join", userName);
    for (const userName of before) if (!after.has(userName)) this.#presenceEvent("leave", userName);
  }

  /**
   * Tells the room someone came or went, while the list of who is here is short enough to send:
   * in a larger room every change would send the whole list to everyone.
   */
  #presenceEvent(type: "join" | "leave", userName: string): void {
    if (this.#subscribers.size === 0 || this.userCount > MAX_LISTED_USERS) return;
    this.#emit({ type, userName, users: this.users });
  }

  /** Tells the other workers who is present here, once per turn however many came or went. */
  #announce(): void {
    if (this.#announcing) return;
    this.#announcing = true;
    setImmediate(() => {
      this.#announcing = false;
      this.bus.announce(this.name, [...this.#present.keys()]);
    });
  }

  /**
   * Stores a message and, once it is durable, delivers it here and in every other worker and
   * instance. A resend of a known `clientId` returns the original and delivers nothing.
   */
  async publish(message: Omit<NewMessage, "room">): Promise<AppendResult> {
    this.#publishing++;
    try {
      return await this.bus.append({ ...message, room: this.name });
    } finally {
      this.#publishing--;
      this.#maybeEmpty();
    }
  }

  /**
   * Delivers a stored message in id order. The bus stores a message before it delivers it, so
   * any gap before it is in the history store, or gone for good with retention.
   */
  accept(message: ChatMessage): void {
    if (message.id <= this.#delivered) return;
    if (message.id > this.#delivered + 1) {
      const missing = message.id - this.#delivered - 1;
      for (const earlier of this.history.after(this.name, this.#delivered, missing)) {
        if (earlier.id < message.id) this.#deliver(earlier);
      }
    }
    this.#deliver(message);
  }

  #deliver(message: ChatMessage): void {
    this.#delivered = message.id;
    this.#emit(messageEvent(message) as RoomEvent);
  }

  #emit(event: RoomEvent): void {
    if (this.#subscribers.size === 0) return;
    if (this.#open === null || this.#open.sealed) {
      this.#open = new Batch();
      for (const sub of this.#subscribers) {
        sub.push(this.#open);
        if (!sub.due) {
          sub.due = true;
          this.#due.push(sub);
        }
      }
      if (!this.#handingOver) this.#handOver();
    }
    this.#open.add(event);
  }

  /**
   * Wakes subscribers, at most {@link HANDOVER_CHUNK} a turn. In a large room, sending to everyone
   * takes longer than the gap between messages: those reached later then get every message that
   * arrived meanwhile in one frame, and a message waits at most one pass over the room, not two.
   */
  #handOver(): void {
    const due = this.#due;
    const count = Math.min(due.length, HANDOVER_CHUNK);
    for (let i = 0; i < count; i++) {
      due[i].due = false;
      due[i].wake();
    }
    due.splice(0, count);
    this.#handingOver = due.length > 0;
    if (this.#handingOver) setImmediate(() => this.#handOver());
  }

  #maybeEmpty(): void {
    if (this.#subscribers.size + this.#present.size + this.#publishing === 0) this.onEmpty(this);
  }
}

/** The rooms this process has open: made on first use, dropped when nobody is in them. */
export class Rooms {
  readonly #rooms = new Map<string, Room>();
  /** Who is present through other workers, by room, then by worker. */
  readonly #remote = new Map<string, Map<string, string[]>>();

  constructor(private readonly history: HistoryStore, private readonly bus: Bus) {
    bus.onEvent((event) => {
      if (event.kind === "message") {
        this.#rooms.get(event.message.room)?.accept(event.message);
        return;
      }
      const room = this.#rooms.get(event.room);
      if (room !== undefined) return room.setRemote(event.from, event.users);
      const remote = this.#remoteFor(event.room);
      if (event.users.length > 0) remote.set(event.from, event.users);
      else if (remote.delete(event.from) && remote.size === 0) this.#remote.delete(event.room);
    });
  }

  #remoteFor(name: string): Map<string, string[]> {
    let remote = this.#remote.get(name);
    if (remote === undefined) this.#remote.set(name, remote = new Map());
    return remote;
  }

  /** The room of that (validated) name, opened if needed. */
  get(name: string): Room {
    let room = this.#rooms.get(name);
    if (room === undefined) {
      room = new Room(name, this.history, this.bus, this.#remoteFor(name), (r) => {
        if (this.#rooms.get(r.name) === r) this.#rooms.delete(r.name);
        if (this.#remote.get(r.name)?.size === 0) this.#remote.delete(r.name);
      });
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** How many rooms are open. */
  get size(): number {
    return this.#rooms.size;
  }

  /** Rooms with someone present here or in another worker, and how many names each has. */
  presence(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [name, remote] of this.#remote) {
      counts.set(name, new Set([...remote.values()].flat()).size);
    }
    for (const room of this.#rooms.values()) counts.set(room.name, room.userCount);
    return counts;
  }
}
