/**
 * A chat room: its members (kept in {@link Presence}), its history, and fan-out of its events to
 * subscribers. It knows nothing of HTTP or sockets: connections subscribe to it.
 *
 * Events are grouped into batches: everything a room emits before its subscribers next run goes into
 * one {@link Batch}, encoded once and shared by every subscriber. A subscriber takes every batch
 * that arrived since it last ran; a `parley.v1` client sends them as one frame (a legacy client,
 * one frame per message). A large room wakes its subscribers a slice at a time, so those reached
 * later have more to take.
 */

import { setImmediate } from "node:timers";
import type { Bus, BusEvent } from "./bus.ts";
import type {
  AppendResult,
  ChangeRequest,
  ChangeResult,
  HistoryStore,
  NewMessage,
} from "./history.ts";
import { clientText } from "./log.ts";
import {
  encodeEvent,
  encodeLegacy,
  type LogEvent,
  mentionCandidates,
  messageEvent,
  type ServerEvent,
} from "./message.ts";
import { MAX_LISTED_USERS, Presence, type PresenceChange } from "./presence.ts";

/** What a room emits to its subscribers: its log (messages, changes) and presence changes. */
export type RoomEvent = LogEvent | Extract<ServerEvent, { type: "join" | "leave" }>;

/** Events emitted together, with their encodings computed once for all subscribers. */
export class Batch {
  readonly #events: RoomEvent[] = [];
  #sealed = false;
  /** How many of the events are messages. */
  messageCount = 0;
  /** The highest id of the log in the batch (any kind), 0 if it holds none. */
  lastId = 0;
  /** The lowest id of the log in the batch, 0 if it holds none. */
  #firstId = 0;
  #frame?: string;
  #legacy?: string[];
  #ids?: number[];

  /** True once a subscriber has read the batch: later events go to a new one. */
  get sealed(): boolean {
    return this.#sealed;
  }

  /** How many events the batch holds. */
  get size(): number {
    return this.#events.length;
  }

  /** Seals the batch without reading it: a subscriber keeps it for later, and events go on. */
  seal(): void {
    this.#sealed = true;
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

  /**
   * The batch without its log events (messages, changes) up to id `seam` (presence stays):
   * itself if it has none of them, which keeps its encodings shared. Seals the batch.
   */
  after(seam: number): Batch {
    this.#sealed = true;
    if (this.#firstId === 0 || this.#firstId > seam) return this;
    const rest = new Batch();
    for (const event of this.#events) {
      if (!isLogged(event) || event.id > seam) rest.add(event);
    }
    rest.#sealed = true;
    return rest;
  }

  /** @internal Called by the room while the batch is open. */
  add(event: RoomEvent): void {
    this.#events.push(event);
    if (isLogged(event)) {
      if (event.type === "message") this.messageCount++;
      this.lastId = event.id;
      if (this.#firstId === 0) this.#firstId = event.id;
    }
  }
}

function isLogged(event: RoomEvent): event is LogEvent {
  return event.type !== "join" && event.type !== "leave";
}

function isMessage(event: RoomEvent): event is Extract<RoomEvent, { type: "message" }> {
  return event.type === "message";
}

/**
 * Where a joining client's history starts: what came after `after`, up to the room's last id
 * when it subscribed, is replayed before live events: the whole log for a resume, the messages
 * alone (in their current state) for a newcomer and a resume that cannot be whole.
 */
export interface Replay {
  after: number;
  /** False when the client resumed and gets less than everything it missed. */
  recovered: boolean;
  /** True: every event of the log; false: only the messages. */
  log: boolean;
}

/** Finds the canonical spelling of an account's name in any case, or null for no such account. */
export type AccountNames = (name: string) => string | null;

/** Thrown by a subscription's iterator when its subscriber fell too far behind. */
export class SubscriberOverflowError extends Error {
  override name = "SubscriberOverflowError";
}

/**
 * Thrown by a subscription's iterator when its room failed to deliver an event (its history could
 * not be read, say): the subscriber may have missed it, and should start over. The failure itself
 * was reported where it happened.
 */
export class RoomFailedError extends Error {
  override name = "RoomFailedError";
}

/** Batches a subscription (or a client replaying history) may hold unread before it is too slow. */
export const MAX_QUEUED_BATCHES = 4096;

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
  #failure: SubscriberOverflowError | RoomFailedError | null = null;
  /** @internal In the room's queue of subscribers to wake. */
  due = false;

  constructor(private readonly onClose: (sub: Subscription) => void) {}

  /** @internal Queues a batch; the room hands it over with {@link wake}. */
  push(batch: Batch): void {
    if (this.#done) return;
    if (this.#queue.length < MAX_QUEUED_BATCHES) this.#queue.push(batch);
    else this.fail(new SubscriberOverflowError("the subscriber fell too far behind"));
  }

  /** @internal Ends the subscription: its iterator throws `error`. */
  fail(error: SubscriberOverflowError | RoomFailedError): void {
    if (this.#done) return;
    this.#failure = error;
    this.close();
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
   * {@link SubscriberOverflowError} or {@link RoomFailedError} that ended it.
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
  /** Connections in the room, named or not: they keep it open until they leave. */
  #holders = 0;
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
    /** Who is present, shared by every room of {@link Rooms}. */
    private readonly presence: Presence,
    private readonly onEmpty: (room: Room) => void,
    private readonly accountName: AccountNames | null = null,
  ) {
    this.#delivered = history.lastId(name);
    this.ready = bus.catchUp(name);
  }

  /** Settles once the room's history is up to date, if it may not be yet; see {@link Bus.catchUp}. */
  readonly ready: Promise<void> | null;

  /** How many names are present here and in other workers and instances. */
  get userCount(): number {
    return this.presence.count(this.name);
  }

  /** Names present, in order of arrival: at most {@link MAX_LISTED_USERS} of them. */
  get users(): string[] {
    return this.presence.users(this.name);
  }

  /** The newest id of the room's log, 0 if it has none. */
  get lastId(): number {
    return Math.max(this.#delivered, this.history.lastId(this.name));
  }

  /**
   * Where the replay of a client resuming after id `since` (null: a newcomer) starts, up to
   * `lastId`: after `since`, the whole log, if the room still has all of it since then and it is
   * at most `maxReplay` events; else (and for a newcomer) the newest `onJoin` messages alone,
   * `recovered: false` for a resume.
   */
  missed(since: number | null, lastId: number, onJoin: number, maxReplay: number): Replay {
    const newest = () => this.history.startOfRecent(this.name, lastId, onJoin);
    if (since === null) return { after: newest(), recovered: true, log: false };
    if (since >= lastId) return { after: lastId, recovered: since === lastId, log: true };
    if (lastId - since > maxReplay || this.lost(since)) {
      return { after: newest(), recovered: false, log: false };
    }
    return { after: since, recovered: true, log: true };
  }

  /**
   * Whether retention has removed events right after `id`: a replay from there has a hole. (A
   * change comes after its message, and goes with it: nothing is kept before the oldest message.)
   */
  lost(id: number): boolean {
    return this.history.firstId(this.name) > id + 1;
  }

  /**
   * Up to `limit` stored events with ids above `after` and at most `upTo`, oldest first: a chunk
   * of a replay, of the whole log or (`log` false) of the messages alone. Nothing is read when
   * there is nothing to read (a join storm asks often).
   */
  replay(after: number, upTo: number, limit: number, log = true): LogEvent[] {
    if (after >= upTo || limit <= 0) return [];
    const count = Math.min(limit, upTo - after);
    if (log) return this.history.log(this.name, after, upTo, count);
    const messages = this.history.after(this.name, after, count);
    while (messages.length > 0 && messages[messages.length - 1].id > upTo) messages.pop();
    return messages.map(messageEvent);
  }

  /** A connection arrived: the room stays open, named or not, until it {@link release}s it. */
  hold(): void {
    this.#holders++;
  }

  /** Undoes one {@link hold}. */
  release(): void {
    this.#holders--;
    this.#maybeEmpty();
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
    const change = this.presence.join(this.name, userName);
    if (change === "none") return;
    this.#announce();
    if (change === "room") this.#presenceEvent("join", userName);
  }

  /** Undoes one {@link join}; the last connection under a name tells the room it left. */
  leave(userName: string): void {
    const change = this.presence.leave(this.name, userName);
    if (change === "none") return;
    this.#announce();
    if (change === "room") this.#presenceEvent("leave", userName);
    this.#maybeEmpty();
  }

  /** Tells the subscribers who came and went through other workers and instances. */
  changed(change: PresenceChange): void {
    for (const userName of change.joined) this.#presenceEvent("join", userName);
    for (const userName of change.left) this.#presenceEvent("leave", userName);
  }

  /**
   * Ends every subscription with a {@link RoomFailedError}: an event could not be delivered, so
   * its subscribers may have missed it and should start over.
   */
  fail(cause: unknown): void {
    for (const sub of [...this.#subscribers]) {
      sub.fail(new RoomFailedError(`room ${this.name} could not deliver an event`, { cause }));
    }
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
      this.bus.announce(this.name, this.presence.local(this.name));
    });
  }

  /**
   * Stores a message and, once it is durable, delivers it here and in every other worker and
   * instance. A resend of a known `clientId` returns the original and delivers nothing.
   */
  async publish(message: Omit<NewMessage, "room" | "mentions">): Promise<AppendResult> {
    this.#publishing++;
    try {
      const mentions = this.#mentions(message.body);
      const stored = mentions === null ? message : { ...message, mentions };
      return await this.bus.append({ ...stored, room: this.name });
    } finally {
      this.#publishing--;
      this.#maybeEmpty();
    }
  }

  /**
   * Stores a change to one of the room's messages and, once it is durable, delivers its event
   * like a message. See {@link Bus.change} for what is refused.
   */
  async change(change: ChangeRequest): Promise<ChangeResult> {
    this.#publishing++;
    try {
      return await this.bus.change({ ...change, room: this.name });
    } finally {
      this.#publishing--;
      this.#maybeEmpty();
    }
  }

  /**
   * Whom the body's `@name` tokens name, canonically spelt: people present (here or elsewhere),
   * and accounts; null for nobody.
   */
  #mentions(body: string): string[] | null {
    const candidates = mentionCandidates(body);
    if (candidates.length === 0) return null;
    const names = new Set<string>();
    for (const candidate of candidates) {
      const name = this.presence.named(this.name, candidate) ?? this.accountName?.(candidate);
      if (name !== null && name !== undefined) names.add(name);
    }
    return names.size === 0 ? null : [...names];
  }

  /**
   * Delivers a stored event of the log in id order. The bus stores an event before it delivers
   * it, so a gap before it is in the history store (or gone for good with retention): it is
   * filled from there with whatever the store has, which never waits for an id that will not
   * come (a deleted message, say, whose delete is there instead).
   */
  accept(event: LogEvent): void {
    if (event.id <= this.#delivered) return;
    if (event.id > this.#delivered + 1) {
      const missing = event.id - this.#delivered - 1;
      for (const earlier of this.history.log(this.name, this.#delivered, event.id - 1, missing)) {
        this.#deliver(earlier);
      }
    }
    this.#deliver(event);
  }

  #deliver(event: LogEvent): void {
    this.#delivered = event.id;
    this.#emit(event);
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
    if (this.#holders > 0 || this.#subscribers.size > 0 || this.#publishing > 0) return;
    if (this.presence.localCount(this.name) === 0) this.onEmpty(this);
  }
}

/** Where {@link Rooms} reports a failure it contained: the message carries the stack. */
export type ErrorSink = (message: string) => void;

/**
 * The rooms this process has open: made on first use, dropped when nobody is in them. It hears
 * the bus for all of them: one room's failure ends that room's subscriptions, not the others'.
 */
export class Rooms {
  readonly #rooms = new Map<string, Room>();
  readonly #presence = new Presence();
  /** Hears every event of the bus first, for every room, open here or not (`live.ts`). */
  onHeard: (event: BusEvent) => void = () => {};

  constructor(
    private readonly history: HistoryStore,
    private readonly bus: Bus,
    private readonly onError: ErrorSink = (message) => console.error(message),
    /** Accounts a `@name` may mention beside the people present: none in open mode. */
    private readonly accountName: AccountNames | null = null,
  ) {
    bus.onEvent((event) => this.#hear(event));
  }

  #hear(event: BusEvent): void {
    this.onHeard(event);
    switch (event.kind) {
      case "log":
        return this.#inRoom(event.event.room, (room) => room.accept(event.event));
      case "presence":
        return this.#changed(this.#presence.announced(event.room, event.from, event.users));
      case "heartbeat":
        for (const [room, users] of this.#presence.locals()) this.bus.announce(room, users);
        for (const change of this.#presence.expire(event.intervalMs)) this.#changed(change);
    }
  }

  #changed(change: PresenceChange): void {
    if (change.joined.length + change.left.length === 0) return;
    this.#inRoom(change.room, (room) => room.changed(change));
  }

  /** Runs `step` on the room if it is open; if it throws, says so and fails that room alone. */
  #inRoom(name: string, step: (room: Room) => void): void {
    const room = this.#rooms.get(name);
    if (room === undefined) return;
    try {
      step(room);
    } catch (error) {
      const why = (error as Error)?.stack ?? error;
      this.onError(`room ${clientText(name)} failed to deliver an event: ${why}`);
      room.fail(error);
    }
  }

  /** The room of that (validated) name, opened if needed. */
  get(name: string): Room {
    let room = this.#rooms.get(name);
    if (room === undefined) {
      room = new Room(name, this.history, this.bus, this.#presence, (r) => {
        if (this.#rooms.get(r.name) === r) this.#rooms.delete(r.name);
      }, this.accountName);
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** How many rooms are open. */
  get size(): number {
    return this.#rooms.size;
  }

  /** Open rooms, and rooms with someone present here or elsewhere, with how many names each has. */
  presence(): Map<string, number> {
    const counts = this.#presence.counts();
    for (const room of this.#rooms.keys()) if (!counts.has(room)) counts.set(room, 0);
    return counts;
  }
}
