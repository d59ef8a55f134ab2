/**
 * How a room's messages and presence reach every worker and instance, and who assigns ids.
 *
 * - {@link LocalBus}: one instance. Its history store assigns ids; a `BroadcastChannel` carries
 *   messages and presence between its workers.
 * - {@link RedisBus}: several instances. A Lua script in Redis assigns ids, appends the message to
 *   the room's stream and publishes it, so the order is Redis's; every instance records what it
 *   receives in its own history store, filling gaps from the stream.
 *
 * Delivery is best effort on both (a `BroadcastChannel` drops for a receiver that falls behind, a
 * Redis subscription misses what is published while it reconnects), which is why rooms order
 * messages by id and fill gaps from stored history instead of trusting the bus.
 *
 * Presence travels as snapshots: who is present in a room through one worker or instance. A bus
 * that has peers beats every announce interval, and its receiver then announces its snapshots
 * again, so a peer that stops being heard (it crashed) can be forgotten; see `presence.ts`.
 */

import type { AppendResult, HistoryStore, NewMessage } from "./history.ts";
import type { ChatMessage } from "./message.ts";

/**
 * What the rooms hear from the bus: a stored message, who is present through another worker or
 * instance, or the heartbeat: time to announce again, and to forget peers silent for too long.
 */
export type BusEvent =
  | { kind: "message"; message: ChatMessage }
  | { kind: "presence"; room: string; users: string[]; from: string }
  | { kind: "heartbeat"; intervalMs: number };

/** How often a bus with peers beats, by default. */
export const ANNOUNCE_SECONDS = 20;

/** Carries a room's messages and presence between workers and instances. */
export interface Bus {
  /**
   * Stores a message durably with its room's next id, and delivers it to the rooms of every
   * worker and instance, this one's included. A resend of a known `clientId` returns the
   * original and delivers nothing.
   */
  append(message: NewMessage): Promise<AppendResult>;
  /**
   * Tells the other workers and instances who is present in a room through this one (nobody:
   * an empty list). Say it again at every heartbeat, or they forget.
   */
  announce(room: string, users: string[]): void;
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
    if (!result.duplicate) {
      const event: BusEvent = { kind: "message", message: result.message };
      this.#handler(event);
      this.#post(event);
    }
    return result;
  }

  announce(room: string, users: string[]): void {
    this.#post({ kind: "presence", room, users, from: this.#id });
  }

  onEvent(handler: (event: BusEvent) => void): void {
    this.#handler = handler;
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

/** Everything parley keeps in Redis starts with this; a room's keys share its hash tag. */
const PREFIX = "parley:";
const CHANNEL = `${PREFIX}events`;
/** How long Redis remembers a clientId for dedupe: longer than any client retries. */
const DEDUPE_SECONDS = 86400;

/**
 * Assigns the room's next id, appends the message to the room's stream (trimmed to about the
 * retention), remembers its clientId, and publishes it: all at once, so Redis alone orders them.
 * KEYS: sequence, stream, clientId key ("" for none). ARGV: room, userName, body, max length,
 * the last id this instance has (a Redis that lost its data must not hand out used ids), and the
 * clientId ("" for none). Returns {1, original} for a known clientId, else {0, message}; messages
 * are JSON.
 */
const APPEND_SCRIPT = `
if KEYS[3] ~= '' then
  local original = redis.call('GET', KEYS[3])
  if original then return {1, original} end
end
local id = redis.call('INCR', KEYS[1])
if id <= tonumber(ARGV[5]) then
  id = tonumber(ARGV[5]) + 1
  redis.call('SET', KEYS[1], id)
end
local now = redis.call('TIME')
local ms = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
local fields = {id = id, room = ARGV[1], userName = ARGV[2], body = ARGV[3], ms = ms}
if ARGV[6] ~= '' then fields.clientId = ARGV[6] end
local message = cjson.encode(fields)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], id .. '-0', 'm', message)
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], message, 'EX', ${DEDUPE_SECONDS}) end
redis.call('PUBLISH', '${CHANNEL}', message)
return {0, message}
`;

/** A message as the script writes it: the time is milliseconds since the epoch, as text. */
interface RedisMessage {
  id: number;
  room: string;
  userName: string;
  body: string;
  ms: string;
  clientId?: string;
}

function fromRedis(message: string | RedisMessage): ChatMessage {
  const { id, room, userName, body, ms, clientId } = typeof message === "string"
    ? JSON.parse(message) as RedisMessage
    : message;
  const chat: ChatMessage = {
    id,
    room,
    userName,
    body,
    timestamp: new Date(Number(ms)).toISOString(),
  };
  if (clientId !== undefined) chat.clientId = clientId;
  return chat;
}

type RedisClient = import("@redis/client").RedisClientType;

/**
 * The {@link Bus} of several instances sharing rooms through a Redis server. The client library
 * is loaded only when `redis` is configured.
 */
export class RedisBus implements Bus {
  readonly #id = crypto.randomUUID();
  #handler: (event: BusEvent) => void = () => {};
  /** Received messages not yet recorded and delivered. */
  #inbound: ChatMessage[] = [];
  /** Recording and delivery happen one step at a time, in order. */
  #chain: Promise<void> = Promise.resolve();
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly client: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly history: HistoryStore,
    private readonly maxPerRoom: number,
    private readonly onError: (message: string) => void,
  ) {}

  /**
   * Connects to Redis; a server that cannot be reached at start-up is an error. The bus beats
   * every `announceSeconds`.
   */
  static async connect(
    url: string,
    history: HistoryStore,
    maxPerRoom: number,
    onError: (message: string) => void,
    announceSeconds = ANNOUNCE_SECONDS,
  ): Promise<RedisBus> {
    const { createClient } = await import("@redis/client");
    let started = false;
    const options = {
      url,
      // Fail a publish at once while Redis is away (the client retries with its clientId),
      // instead of queueing it without bound.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 5000,
        reconnectStrategy: (retries: number, cause: Error) =>
          started ? Math.min(100 * 2 ** retries, 2000) : cause,
      },
    };
    const client = createClient(options) as unknown as RedisClient;
    const subscriber = createClient(options) as unknown as RedisClient;
    const bus = new RedisBus(client, subscriber, history, maxPerRoom, onError);
    for (const c of [client, subscriber]) {
      c.on("error", (error: Error) => started && onError(`redis: ${error.message}`));
    }
    try {
      await client.connect();
      await subscriber.connect();
      await subscriber.subscribe(CHANNEL, (text: string) => bus.#receive(text));
    } catch (error) {
      await Promise.allSettled([client, subscriber].map(async (c) => await c.destroy()));
      throw new Error(
        `cannot reach Redis at ${url}: ${(error as Error).message}; start it or fix "redis"`,
      );
    }
    started = true;
    const intervalMs = announceSeconds * 1000;
    bus.#heartbeat = setInterval(() => bus.#handler({ kind: "heartbeat", intervalMs }), intervalMs);
    // Whatever was published while this instance was away or its subscription down is in the
    // streams, in rooms it knows and rooms made meanwhile.
    bus.#catchUpAll();
    subscriber.on("ready", () => bus.#catchUpAll());
    return bus;
  }

  get redis(): "ok" | "down" {
    return this.client.isReady ? "ok" : "down";
  }

  async append(message: NewMessage): Promise<AppendResult> {
    const { room, userName, body, clientId } = message;
    const tag = `${PREFIX}{${room}}`;
    const reply = await this.client.eval(APPEND_SCRIPT, {
      keys: [
        `${tag}:seq`,
        `${tag}:log`,
        clientId === undefined ? "" : `${tag}:client:${userName}\n${clientId}`,
      ],
      arguments: [
        room,
        userName,
        body,
        String(this.maxPerRoom),
        String(this.history.lastId(room)),
        clientId ?? "",
      ],
    }) as [number, string];
    // The message reaches this instance's rooms through the subscription, like everyone else's.
    return { message: fromRedis(reply[1]), duplicate: reply[0] === 1 };
  }

  announce(room: string, users: string[]): void {
    const event: BusEvent = { kind: "presence", room, users, from: this.#id };
    this.client.publish(CHANNEL, JSON.stringify(event)).catch(() => {});
  }

  onEvent(handler: (event: BusEvent) => void): void {
    this.#handler = handler;
  }

  catchUp(room: string): Promise<void> {
    return this.#step(() => this.#fetchNewer(room));
  }

  /** Catches up every room that has a stream in Redis. */
  #catchUpAll(): void {
    this.#step(async () => {
      const pattern = `${PREFIX}{*}:log`;
      for await (const keys of this.client.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
        for (const key of keys) {
          await this.#fetchNewer(key.slice(PREFIX.length + 1, -"}:log".length));
        }
      }
    });
  }

  async #fetchNewer(room: string): Promise<void> {
    this.#record(await this.#range(room, this.history.lastId(room) + 1, "+"));
  }

  #receive(text: string): void {
    const event = JSON.parse(text) as BusEvent | RedisMessage;
    if ("kind" in event) {
      if (event.kind === "presence" && event.from !== this.#id) this.#handler(event);
      return;
    }
    this.#inbound.push(fromRedis(event));
    if (this.#inbound.length === 1) this.#step(() => this.#drain());
  }

  /** Records and delivers what arrived, fetching from the stream whatever fell in a gap. */
  async #drain(): Promise<void> {
    const arrived = this.#inbound;
    this.#inbound = [];
    const byRoom = Map.groupBy(arrived, (message) => message.room);
    for (const [room, messages] of byRoom) {
      const last = this.history.lastId(room);
      const fresh = messages.filter((m) => m.id > last).sort((a, b) => a.id - b.id);
      if (fresh.length === 0) continue;
      const contiguous = fresh.every((m, i) => m.id === last + 1 + i);
      this.#record(contiguous ? fresh : await this.#range(room, last + 1, fresh.at(-1)!.id));
    }
  }

  async #range(room: string, from: number, to: number | "+"): Promise<ChatMessage[]> {
    const entries = await this.client.xRange(
      `${PREFIX}{${room}}:log`,
      `${from}-0`,
      to === "+" ? "+" : `${to}-0`,
    );
    return entries.map((entry) => fromRedis(entry.message.m as string));
  }

  #record(messages: ChatMessage[]): void {
    this.history.record(messages);
    for (const message of messages) this.#handler({ kind: "message", message });
  }

  #step(work: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(work).catch((error: Error) => {
      this.onError(`redis: could not catch up: ${error.message}`);
    });
    this.#chain = next;
    return next;
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    await this.#chain;
    // A client that is reconnecting would wait for Redis to come back before quitting.
    await Promise.allSettled(
      [this.subscriber, this.client].map(async (c) => c.isReady ? await c.quit() : c.destroy()),
    );
  }
}
