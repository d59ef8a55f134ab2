/**
 * The {@link Bus} of several instances sharing rooms through one Redis server or a Redis Cluster.
 *
 * A Lua script in Redis assigns a room's next id, appends the message (or the change to one: an
 * edit, delete or reaction, which share the sequence) to the room's stream and publishes it, so
 * the order is Redis's. Every instance records what it hears in its own history
 * store, filling gaps from the stream, and catches every room up from the streams whenever its
 * connections come back. An append is acked once the message is in Redis and in this instance's
 * store.
 *
 * Every key of a room carries the room as its hash tag (`parley:{room}:…`), so that on a cluster
 * a room lives on one master and every script touches keys of one slot. Events go on one
 * channel, which a cluster carries to the subscribers of every node (see `redis_subscription.ts`
 * for which node an instance listens on). Catching up lists the rooms of every master.
 *
 * Redis may restart. If it kept its data (`appendonly yes`, `appendfsync always`) nothing acked
 * is lost: the instances catch up from the streams. If it comes back empty, ids must still never
 * be reused. A room's epoch (`parley:{room}:epoch`) names the data Redis holds of it: an instance
 * that finds it missing or changed for a room it has knows Redis lost that room's data. After
 * every (re)connect each instance raises every room's sequence to at least the last id it has,
 * and after a loss nobody appends for {@link SETTLE_MS}, so that every instance reconnecting
 * meanwhile has raised the sequences before the first new id is taken. A room new to Redis gets
 * its epoch with its first message, from an instance that has none of it. What the loss costs:
 * a message an instance had not yet
 * recorded when Redis lost it stays missing there (the acking instance always has it); a
 * message stored but not yet acked is stored again, under a new id, when its sender resends it
 * through an instance that has not the original; the streams start empty, so an instance started
 * afterwards gets only newer messages.
 *
 * @module
 */

import { ANNOUNCE_SECONDS, type Bus, type BusEvent } from "./bus.ts";
import {
  type AppendResult,
  ChangeRefusedError,
  type ChangeResult,
  ClientIdReusedError,
  type HistoryStore,
  isResend,
  type NewChange,
  type NewMessage,
  type RecordedMessage,
} from "./history.ts";
import { type ChangeEvent, type LogEvent, messageEvent } from "./message.ts";
import {
  COMMAND_TIMEOUT_MS,
  deadline,
  type RedisClient,
  RedisLink,
  RedisUnavailableError,
} from "./redis_link.ts";
import { keySlot } from "./redis_slot.ts";
import { RedisSubscription } from "./redis_subscription.ts";
import { redisTarget } from "./redis_target.ts";

/** Everything parley keeps in Redis starts with this; a room's keys share its hash tag. */
const PREFIX = "parley:";
const CHANNEL = `${PREFIX}events`;
/** How long Redis remembers a clientId for dedupe: longer than any client retries. */
const DEDUPE_SECONDS = 86400;

/**
 * How long appends wait after Redis lost its data: much longer than instances take to reconnect
 * (`RECONNECT_MAX_MS` apart at most: `redis_link.ts`), so all of them raise the sequences first.
 */
export const SETTLE_MS = 2000;
/** How long an append waits to hear its own message from the subscription before recording it. */
const RECORD_GRACE_MS = 200;
/**
 * How long a published echo may take to come back before the subscription counts as broken:
 * longer than its PUBLISH may take to fail, which says nothing about the subscription.
 */
const ECHO_WAIT_MS = 2 * COMMAND_TIMEOUT_MS;
/** How soon a failed catch-up or epoch check is tried again. */
const RETRY_MS = 500;
/** Stream entries per read, keys per scan, rooms per re-seed. */
const PAGE = 1000;
/** How many re-seeds are sent at once. */
const RESEEDS_AT_ONCE = 64;

/** The append script's answers. */
const STORED = 0;
const DUPLICATE = 1;
const STALE_EPOCH = 2;
const REUSED = 3;

/**
 * The room's next id as `id`, from KEYS[1], the sequence; `lastId` names the ARGV holding the
 * last id this instance has (a Redis that lost its data must not hand out used ids). Then `ms`,
 * Redis's clock.
 */
function nextId(lastId: string): string {
  return `
local id = redis.call('INCR', KEYS[1])
if id <= tonumber(${lastId}) then
  id = tonumber(${lastId}) + 1
  redis.call('SET', KEYS[1], id)
end
local now = redis.call('TIME')
local ms = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
`;
}

/**
 * Stops with {STALE_EPOCH, ""} unless the room's epoch in KEYS[4] is `known` (the ARGV holding
 * the one this instance re-seeded in), or the room is new to both Redis and this instance
 * (`lastId` is 0), which then gets `fresh`.
 */
function checkEpoch(known: string, lastId: string, fresh: string): string {
  return `
local epoch = redis.call('GET', KEYS[4])
if not epoch and ${known} == '' and ${lastId} == '0' then
  redis.call('SET', KEYS[4], ${fresh})
elseif epoch ~= ${known} then
  return {${STALE_EPOCH}, ''}
end
`;
}

/**
 * Appends `entry` (JSON) to the stream KEYS[2], remembers it under KEYS[3] if `remember`, and
 * publishes it.
 */
const STORE = `
redis.call('XADD', KEYS[2], 'MAXLEN', '~', MAXLEN, id .. '-0', 'm', entry)
if remember then redis.call('SET', KEYS[3], entry, 'EX', ${DEDUPE_SECONDS}) end
redis.call('PUBLISH', '${CHANNEL}', entry)
return {${STORED}, entry}
`;

/**
 * Assigns the room's next id, appends the message to the room's stream (trimmed to about the
 * retention), remembers its clientId, and publishes it: all at once, so Redis alone orders them.
 * KEYS (the room's, so of one slot): sequence, stream, clientId key (any key of the room for
 * none), epoch. ARGV: room, userName, body, max length, the last id this instance has, the
 * clientId ("" for none), the room's epoch this instance re-seeded in ("" for none), the
 * author's id ("" for none), the mentions (a JSON array, "" for none), and the epoch to give a
 * room new to Redis. Returns {STALE_EPOCH, ""} if Redis holds other data of the room than that,
 * {DUPLICATE, original} for a known clientId with the same body, {REUSED, original} for one
 * with another body or of a change, else {STORED, message}; messages are JSON.
 */
const APPEND_SCRIPT = `
${checkEpoch("ARGV[7]", "ARGV[5]", "ARGV[10]")}
local remember = ARGV[6] ~= ''
if remember then
  local original = redis.call('GET', KEYS[3])
  if original then
    local known = cjson.decode(original)
    if known.type == nil and known.body == ARGV[3] then return {${DUPLICATE}, original} end
    return {${REUSED}, original}
  end
end
${nextId("ARGV[5]")}
local fields = {id = id, room = ARGV[1], userName = ARGV[2], body = ARGV[3], ms = ms}
if remember then fields.clientId = ARGV[6] end
if ARGV[8] ~= '' then fields.authorId = ARGV[8] end
if ARGV[9] ~= '' then fields.mentions = cjson.decode(ARGV[9]) end
local entry = cjson.encode(fields)
local MAXLEN = ARGV[4]
${STORE}`;

/**
 * The same for a change to a message: KEYS as for a message. ARGV: the change's fields (JSON:
 * type, room, messageId, userName, body, emoji, on, clientId), max length, the last id this
 * instance has, the room's epoch, the epoch to give a room new to Redis. A known clientId is a
 * duplicate if it was this same change.
 */
const CHANGE_SCRIPT = `
${checkEpoch("ARGV[4]", "ARGV[3]", "ARGV[5]")}
local fields = cjson.decode(ARGV[1])
local remember = fields.clientId ~= nil
if remember then
  local original = redis.call('GET', KEYS[3])
  if original then
    local k = cjson.decode(original)
    if k.type == fields.type and k.messageId == fields.messageId and k.body == fields.body
      and k.emoji == fields.emoji and k.on == fields.on then
      return {${DUPLICATE}, original}
    end
    return {${REUSED}, original}
  end
end
${nextId("ARGV[3]")}
fields.id = id
fields.ms = ms
local entry = cjson.encode(fields)
local MAXLEN = ARGV[2]
${STORE}`;

/**
 * Re-seeds rooms: makes each room's epoch if missing, and raises its sequence to at least the
 * last id this instance has. KEYS: each room's epoch and sequence, room after room (on a
 * cluster, of rooms of one slot). ARGV: a new epoch's name, how long appends wait in a new epoch
 * (ms), then each room's last id here. An epoch is "<random name> <until when appends wait, ms
 * since the epoch>". Returns {Redis's clock in ms, {each room's epoch}}.
 */
const RESEED_SCRIPT = `
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local epochs = {}
for i = 1, #KEYS / 2 do
  local epoch = redis.call('GET', KEYS[2 * i - 1])
  if not epoch then
    epoch = ARGV[1] .. ' ' .. string.format('%.0f', ms + tonumber(ARGV[2]))
    redis.call('SET', KEYS[2 * i - 1], epoch)
  end
  epochs[i] = epoch
  local mine = tonumber(ARGV[2 + i])
  if tonumber(redis.call('GET', KEYS[2 * i]) or '0') < mine then
    redis.call('SET', KEYS[2 * i], mine)
  end
end
return {string.format('%.0f', ms), epochs}
`;

/** What an instance publishes to itself at every heartbeat, to know its subscription works. */
interface Echo {
  kind: "echo";
  from: string;
  n: number;
}

/**
 * An entry of a room's stream as the scripts write it: a message (no `type`) or a change; the
 * time is milliseconds since the epoch, as text.
 */
interface RedisEntry {
  id: number;
  room: string;
  userName: string;
  ms: string;
  clientId?: string;
  type?: ChangeEvent["type"];
  body?: string;
  authorId?: string;
  mentions?: string[];
  messageId?: number;
  emoji?: string;
  on?: boolean;
}

/** A stream entry (JSON, or parsed) as this instance stores it. */
function fromRedis(entry: string | RedisEntry): RecordedMessage | ChangeEvent {
  const fields = typeof entry === "string" ? JSON.parse(entry) as RedisEntry : entry;
  const { id, room, userName, ms, clientId } = fields;
  const timestamp = new Date(Number(ms)).toISOString();
  let stored: RecordedMessage | ChangeEvent;
  if (fields.type === undefined) {
    stored = { id, room, userName, body: fields.body!, timestamp };
    if (fields.authorId !== undefined) stored.author = fields.authorId;
    if (Array.isArray(fields.mentions)) stored.mentions = fields.mentions;
  } else {
    const base = { id, room, messageId: fields.messageId!, userName, timestamp };
    stored = fields.type === "edit"
      ? { type: "edit", ...base, body: fields.body! }
      : fields.type === "delete"
      ? { type: "delete", ...base }
      : { type: "reaction", ...base, emoji: fields.emoji!, on: fields.on === true };
  }
  if (clientId !== undefined) stored.clientId = clientId;
  return stored;
}

/** The event of a stored entry, as clients are sent it (a message's author id is not). */
function logEvent(entry: RecordedMessage | ChangeEvent): LogEvent {
  return entry.type === undefined || entry.type === "message"
    ? messageEvent(entry as RecordedMessage)
    : entry as ChangeEvent;
}

/** An entry's place in its room's log. */
interface Logged {
  room: string;
  id: number;
}

/** A room's keys: they share its hash tag. */
function roomKeys(
  room: string,
): { seq: string; log: string; epoch: string; client: (id: string) => string } {
  const tag = `${PREFIX}{${room}}`;
  return {
    seq: `${tag}:seq`,
    log: `${tag}:log`,
    epoch: `${tag}:epoch`,
    client: (id) => `${tag}:client:${id}`,
  };
}

/** A room and the last id this instance has of it. */
interface RoomLastId {
  room: string;
  lastId: number;
}

/** An append waiting for its message to be in this instance's store. */
interface Waiter {
  id: number;
  resolve: () => void;
}

/**
 * The {@link Bus} of several instances sharing rooms through a Redis server. See the module
 * documentation for what survives a restart of Redis.
 */
export class RedisBus implements Bus {
  readonly #id = crypto.randomUUID();
  #handler: (event: BusEvent) => void = () => {};
  /** Received entries of the log not yet recorded and delivered. */
  #inbound: (RecordedMessage | ChangeEvent)[] = [];
  /** Recording and delivery happen one step at a time, in order. */
  #chain: Promise<boolean> = Promise.resolve(true);
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** The echo published and not yet heard back, with when it was published. */
  #echo: { n: number; at: number } | null = null;
  #echoes = 0;
  #retryCheck: ReturnType<typeof setTimeout> | undefined;
  #retrySync: ReturnType<typeof setTimeout> | undefined;
  /** Whether the last epoch check failed (it is reported once per run of failures). */
  #checkFailing = false;
  /** Appends waiting for their message to be recorded here, by room. */
  readonly #waiters = new Map<string, Waiter[]>();
  /** Ends the waits of settling and of appends at shutdown. */
  readonly #onClose = new Set<() => void>();
  #closed = false;
  /** The epoch this instance re-seeded each room's ids in, by room. */
  readonly #epochs = new Map<string, string>();
  /** Appends wait for this: the epoch check after a (re)connect, and the settling after a loss. */
  #gate: Promise<void> = Promise.resolve();
  #gateOpen = false;
  /** Whether every room has been caught up since the connections last came back. */
  #synced = false;
  /** Counts catch-ups of every room: only the latest one may say the bus is in sync. */
  #syncs = 0;

  private constructor(
    private readonly commands: RedisLink,
    private readonly events: RedisSubscription,
    private readonly history: HistoryStore,
    private readonly maxPerRoom: number,
    private readonly onError: (message: string) => void,
  ) {}

  /**
   * Connects to Redis (`redis` as `config.json` has it: a URL, or a cluster's nodes); a server
   * or cluster that cannot be reached at start-up is an error. Warns through `onError` when
   * Redis does not keep what it acks. The bus beats every `announceSeconds`.
   */
  static async connect(
    redis: string | readonly string[],
    history: HistoryStore,
    maxPerRoom: number,
    onError: (message: string) => void,
    announceSeconds = ANNOUNCE_SECONDS,
  ): Promise<RedisBus> {
    const target = redisTarget(redis);
    const commands = await RedisLink.open(target, "commands", onError);
    let events: RedisSubscription | undefined;
    try {
      let receive = (_text: string) => {};
      events = await RedisSubscription.open(target, CHANNEL, (text) => receive(text), onError);
      const bus = new RedisBus(commands, events, history, maxPerRoom, onError);
      receive = (text) => bus.#receive(text);
      await bus.#start(announceSeconds);
      return bus;
    } catch (error) {
      await Promise.all([commands.close(), events?.close()]);
      throw error;
    }
  }

  async #start(announceSeconds: number): Promise<void> {
    const down = () => this.#synced = false;
    this.commands.onDown = down;
    this.events.onDown = down;
    this.commands.onUp = () => this.#reconnected();
    this.events.onUp = () => {
      this.#echo = null;
      this.#resync();
    };
    await this.#verify();
    for (const { client, host } of await this.commands.masters()) {
      const warning = await persistenceWarning(this.commands, client, host);
      if (warning !== null) this.onError(`redis: warning: ${warning}`);
    }
    const intervalMs = announceSeconds * 1000;
    this.#heartbeat = setInterval(() => {
      this.#handler({ kind: "heartbeat", intervalMs });
      this.#checkEcho();
    }, intervalMs);
    // Whatever was published while this instance was away is in the streams, in rooms it knows
    // and rooms made meanwhile.
    this.#resync();
  }

  /**
   * "ok" once both connections are up, the epochs are checked and every room caught up since they
   * came back; "down" otherwise (appends fail or wait, and `/history` may be behind).
   */
  get redis(): "ok" | "down" {
    const up = this.commands.up && this.events.up && this.#gateOpen && this.#synced;
    return up ? "ok" : "down";
  }

  async append(message: NewMessage): Promise<AppendResult> {
    if (this.#closed) throw new RedisUnavailableError("this instance is shutting down");
    const known = this.#known(message);
    if (known !== null) return known;
    const [status, text] = await this.#run(message.room, () => this.#eval(message));
    if (status === REUSED) throw new ClientIdReusedError(message.clientId ?? "");
    const stored = fromRedis(text) as RecordedMessage;
    await this.#recorded(stored);
    const { author: _, ...chat } = stored;
    return { message: chat, duplicate: status === DUPLICATE };
  }

  /**
   * Judges the change by this instance's store (caught up first when the message may be newer
   * than what it has), then has Redis give it its id like a message. Two instances may judge
   * at once: a change that reaches a message deleted meanwhile is stored, and changes nothing.
   */
  async change(change: NewChange): Promise<ChangeResult> {
    if (this.#closed) throw new RedisUnavailableError("this instance is shutting down");
    let verdict = this.history.judge(change);
    const notFound = verdict instanceof ChangeRefusedError && verdict.code === "not_found";
    if (notFound && change.messageId > this.history.lastId(change.room)) {
      await this.catchUp(change.room);
      verdict = this.history.judge(change);
    }
    if (verdict instanceof Error) throw verdict;
    if (verdict !== null) return verdict;
    const [status, text] = await this.#run(change.room, () => this.#evalChange(change));
    if (status === REUSED) throw new ClientIdReusedError(change.clientId ?? "");
    const event = fromRedis(text) as ChangeEvent;
    await this.#recorded(event);
    return { event, id: event.id, duplicate: status === DUPLICATE };
  }

  /**
   * Runs a script of `room`; if Redis lost the room's data since this instance last looked,
   * re-seeds and retries once.
   */
  async #run(room: string, script: () => Promise<[number, string]>): Promise<[number, string]> {
    let [status, text] = await script();
    if (status === STALE_EPOCH) {
      // Redis lost the room's data since this instance last looked (if it had looked: else
      // another instance made the room): re-seed, then try once more.
      const { settleMs, lost } = await this.#reseed([{ room, lastId: this.history.lastId(room) }]);
      if (lost && this.#gateOpen) this.#reconnected();
      await this.#sleep(settleMs);
      [status, text] = await script();
      if (status === STALE_EPOCH) {
        throw new RedisUnavailableError("Redis lost its data and is being re-seeded");
      }
    }
    return [status, text];
  }

  /**
   * A resend of a message this instance has: answered here, so that it is not stored again
   * where Redis has forgotten its clientId (it lost its data, or a day went by).
   */
  #known({ room, userName, body, clientId }: NewMessage): AppendResult | null {
    if (clientId === undefined) return null;
    const original = this.history.byClientId(room, userName, clientId);
    if (original === null) return null;
    if (!isResend(original, body)) throw new ClientIdReusedError(clientId);
    return { message: original, duplicate: true };
  }

  async #eval(
    { room, userName, body, clientId, author, mentions }: NewMessage,
  ): Promise<[number, string]> {
    await this.#gated();
    const keys = roomKeys(room);
    const epoch = this.#epochs.get(room) ?? "";
    const lastId = this.history.lastId(room);
    const fresh = `${crypto.randomUUID()} 0`;
    const reply = await this.commands.call("the append", (c) =>
      c.eval(APPEND_SCRIPT, {
        keys: scriptKeys(keys, userName, clientId),
        arguments: [
          room,
          userName,
          body,
          String(this.maxPerRoom),
          String(lastId),
          clientId ?? "",
          epoch,
          author ?? "",
          mentions === undefined || mentions.length === 0 ? "" : JSON.stringify(mentions),
          fresh,
        ],
      })) as [number, string];
    // Stored without an epoch: this append gave the room its first one.
    if (reply[0] !== STALE_EPOCH && epoch === "") this.#epochs.set(room, fresh);
    return reply;
  }

  async #evalChange(change: NewChange): Promise<[number, string]> {
    await this.#gated();
    const { room, userName, clientId, messageId } = change;
    const keys = roomKeys(room);
    const fields: Record<string, unknown> = { type: change.type, room, messageId, userName };
    if (change.type === "edit") fields.body = change.body;
    if (change.type === "reaction") Object.assign(fields, { emoji: change.emoji, on: change.on });
    if (clientId !== undefined) fields.clientId = clientId;
    const epoch = this.#epochs.get(room) ?? "";
    const fresh = `${crypto.randomUUID()} 0`;
    const reply = await this.commands.call("the change", (c) =>
      c.eval(CHANGE_SCRIPT, {
        keys: scriptKeys(keys, userName, clientId),
        arguments: [
          JSON.stringify(fields),
          String(this.maxPerRoom),
          String(this.history.lastId(room)),
          epoch,
          fresh,
        ],
      })) as [number, string];
    if (reply[0] !== STALE_EPOCH && epoch === "") this.#epochs.set(room, fresh);
    return reply;
  }

  /** Waits for the epoch check (and the settling after a loss of data) before an id is taken. */
  async #gated(): Promise<void> {
    if (!this.#gateOpen) {
      await deadline(this.#gate, SETTLE_MS + COMMAND_TIMEOUT_MS, "checking Redis's data");
    }
  }

  /**
   * Resolves once `message` (or change) is in this instance's store: normally it arrives
   * through the subscription like everyone's; if it is slow to, it is recorded from the
   * script's answer.
   */
  #recorded(message: Logged & (RecordedMessage | ChangeEvent)): Promise<void> {
    const { room, id } = message;
    if (this.history.lastId(room) >= id) return Promise.resolve();
    if (this.#closed) {
      return Promise.reject(new RedisUnavailableError("this instance is shutting down"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter: Waiter = { id, resolve };
    const waiters = this.#waiters.get(room) ?? [];
    waiters.push(waiter);
    this.#waiters.set(room, waiters);
    const grace = setTimeout(() => this.#arrived(message), RECORD_GRACE_MS);
    const fail = () => {
      this.#forget(room, waiter);
      reject(
        new RedisUnavailableError(`message ${id} is in Redis but could not be recorded here`),
      );
    };
    const limit = setTimeout(fail, RECORD_GRACE_MS + COMMAND_TIMEOUT_MS);
    this.#onClose.add(fail);
    return promise.finally(() => {
      clearTimeout(grace);
      clearTimeout(limit);
      this.#onClose.delete(fail);
    });
  }

  #forget(room: string, waiter: Waiter): void {
    const rest = (this.#waiters.get(room) ?? []).filter((w) => w !== waiter);
    if (rest.length === 0) this.#waiters.delete(room);
    else this.#waiters.set(room, rest);
  }

  /** Resolves the appends whose messages are now recorded in these rooms. */
  #wakeWaiters(rooms: Iterable<string>): void {
    for (const room of rooms) {
      const waiters = this.#waiters.get(room);
      if (waiters === undefined) continue;
      const lastId = this.history.lastId(room);
      for (const waiter of waiters) if (waiter.id <= lastId) waiter.resolve();
      const rest = waiters.filter((w) => w.id > lastId);
      if (rest.length === 0) this.#waiters.delete(room);
      else this.#waiters.set(room, rest);
    }
  }

  announce(room: string, users: string[]): void {
    const event: BusEvent = { kind: "presence", room, users, from: this.#id };
    this.commands.call("a presence announcement", (c) => c.publish(CHANNEL, JSON.stringify(event)))
      .catch(() => {});
  }

  onEvent(handler: (event: BusEvent) => void): void {
    this.#handler = handler;
  }

  typing(room: string, userName: string): void {
    const event: BusEvent = { kind: "typing", room, userName, from: this.#id };
    this.#handler(event);
    this.commands.call("a typing notice", (c) => c.publish(CHANNEL, JSON.stringify(event)))
      .catch(() => {});
  }

  /**
   * Makes the subscription again if the echo it published did not come back in time (a
   * connection can stay open and carry nothing, as across a broken network), and publishes the
   * next echo. Called at every beat.
   */
  #checkEcho(): void {
    if (!this.events.up) return;
    const echo = this.#echo;
    if (echo !== null) {
      if (Date.now() - echo.at < ECHO_WAIT_MS) return;
      this.#echo = null;
      const waited = Math.round((Date.now() - echo.at) / 1000);
      return this.events.revive(`heard nothing on the subscription for ${waited} s`);
    }
    // Pending before it is published: it may come back before Redis answers the PUBLISH.
    const pending = this.#echo = { n: ++this.#echoes, at: Date.now() };
    const sent: Echo = { kind: "echo", from: this.#id, n: pending.n };
    this.commands.call("an echo", (c) => c.publish(CHANNEL, JSON.stringify(sent))).catch(() => {
      // Not published: nothing to hear back.
      if (this.#echo === pending) this.#echo = null;
    });
  }

  async catchUp(room: string): Promise<void> {
    await this.#step(() => this.#fetchNewer(room));
  }

  /** The commands connection is back: check the epoch, then catch up. */
  #reconnected(): void {
    clearTimeout(this.#retryCheck);
    this.#verify().then(() => {
      this.#checkFailing = false;
      this.#resync();
    }, (error: Error) => {
      if (!this.#checkFailing) {
        this.onError(`redis: could not check Redis's data: ${error.message}`);
      }
      this.#checkFailing = true;
      if (this.commands.up && !this.#closed) {
        this.#retryCheck = setTimeout(() => this.#reconnected(), RETRY_MS);
      }
    });
  }

  /**
   * Checks which data Redis holds and raises the sequences to this instance's ids; appends wait
   * until that is done and, after a loss of data, until the epoch has settled.
   */
  #verify(): Promise<void> {
    this.#gateOpen = false;
    const checked = this.#checkEpoch();
    const gate = this.#gate = checked.then((settleMs) => this.#sleep(settleMs));
    gate.then(() => {
      if (this.#gate === gate) this.#gateOpen = true;
    }, () => {});
    return checked.then(() => {});
  }

  /** Returns how long appends must still wait in the epochs Redis holds. */
  async #checkEpoch(): Promise<number> {
    const { settleMs, lost } = await this.#reseed(this.history.rooms());
    if (lost) {
      this.onError(
        "redis: Redis lost parley's data (it restarted without persistence, or was flushed): " +
          "ids go on above the highest this instance has; messages it had not yet recorded " +
          "are missing here",
      );
    }
    return settleMs;
  }

  /**
   * Raises the rooms' sequences in Redis to at least the last id this instance has, and learns
   * their epochs: returns how long appends must still wait in them, and whether one changed
   * (Redis lost a room's data).
   */
  async #reseed(rooms: readonly RoomLastId[]): Promise<{ settleMs: number; lost: boolean }> {
    const batches = this.#batches(rooms);
    let settleMs = 0;
    let lost = false;
    for (let i = 0; i < batches.length; i += RESEEDS_AT_ONCE) {
      await Promise.all(
        batches.slice(i, i + RESEEDS_AT_ONCE).map(async (batch) => {
          const [now, epochs] = await this.commands.call(
            "re-seeding ids",
            (c) =>
              c.eval(RESEED_SCRIPT, {
                keys: batch.flatMap(({ room }) => [roomKeys(room).epoch, roomKeys(room).seq]),
                arguments: [
                  crypto.randomUUID(),
                  String(SETTLE_MS),
                  ...batch.map(({ lastId }) => String(lastId)),
                ],
              }),
          ) as [string, string[]];
          for (const [n, { room }] of batch.entries()) {
            const known = this.#epochs.get(room);
            lost ||= known !== undefined && known !== epochs[n];
            this.#epochs.set(room, epochs[n]);
            const until = Number(epochs[n].split(" ")[1]);
            if (Number.isFinite(until)) settleMs = Math.max(settleMs, until - Number(now));
          }
        }),
      );
    }
    return { settleMs, lost };
  }

  /** Rooms in batches for one script each: on a cluster, of one slot each. */
  #batches(rooms: readonly RoomLastId[]): RoomLastId[][] {
    const groups = this.commands.cluster
      ? [...Map.groupBy(rooms, ({ room }) => keySlot(room)).values()]
      : [rooms];
    return groups.flatMap((group) => {
      const batches = [];
      for (let i = 0; i < group.length; i += PAGE) batches.push(group.slice(i, i + PAGE));
      return batches;
    });
  }

  /**
   * Catches up every room that has a stream, once both connections are up, until it succeeds.
   * With a master of a cluster away, the rooms of the others are caught up meanwhile, and all of
   * them once it is back.
   */
  #resync(): void {
    clearTimeout(this.#retrySync);
    if (this.#closed || !this.commands.usable || !this.events.up) return;
    const sync = ++this.#syncs;
    this.#catchUpAll().then((ok) => {
      if (sync !== this.#syncs) return;
      if (ok) this.#synced = true;
      else this.#resyncSoon();
    });
  }

  #resyncSoon(): void {
    this.#synced = false;
    clearTimeout(this.#retrySync);
    // With Redis (or a master) away, its return catches up again.
    if (!this.#closed && this.commands.up) {
      this.#retrySync = setTimeout(() => this.#resync(), RETRY_MS);
    }
  }

  /**
   * Catches up the rooms of every master, a scan of each; a master that is away does not keep
   * the others' rooms from catching up.
   */
  async #catchUpAll(): Promise<boolean> {
    let masters: RedisClient[];
    try {
      masters = (await this.commands.masters()).map(({ client }) => client);
    } catch (error) {
      this.#report(error as Error);
      return false;
    }
    let ok = true;
    for (const master of masters) {
      try {
        ok = await this.#catchUpMaster(master) && ok;
      } catch (error) {
        this.#report(error as Error);
        ok = false;
      }
    }
    return ok;
  }

  async #catchUpMaster(master: RedisClient): Promise<boolean> {
    let cursor = "0";
    do {
      const reply = await this.commands.call(
        "listing the rooms",
        (c) => c.scan(cursor, { MATCH: `${PREFIX}{*}:log`, COUNT: PAGE }),
        master,
      );
      cursor = String(reply.cursor);
      for (const key of reply.keys) {
        const room = key.slice(PREFIX.length + 1, -"}:log".length);
        if (!(await this.#step(() => this.#fetchNewer(room)))) return false;
      }
    } while (cursor !== "0");
    return true;
  }

  /** Records the room's messages after the last one here, up to `to`, a page at a time. */
  async #fetchNewer(room: string, to: number | "+" = "+"): Promise<void> {
    while (!this.#closed) {
      const from = this.history.lastId(room) + 1;
      if (to !== "+" && from > to) return;
      const page = await this.#range(room, from, to);
      this.#record(page);
      if (page.length < PAGE) return;
    }
  }

  async #range(
    room: string,
    from: number,
    to: number | "+",
  ): Promise<(RecordedMessage | ChangeEvent)[]> {
    const entries = await this.commands.call(
      "a read of the room's stream",
      (c) =>
        c.xRange(roomKeys(room).log, `${from}-0`, to === "+" ? "+" : `${to}-0`, { COUNT: PAGE }),
    );
    return entries.map((entry) => fromRedis(entry.message.m as string));
  }

  #receive(text: string): void {
    let event: BusEvent | Echo | RedisEntry;
    try {
      event = JSON.parse(text);
    } catch {
      return this.onError(`redis: ignored a malformed event on ${CHANNEL}`);
    }
    if ("kind" in event) {
      if (event.kind === "echo") {
        if (event.from === this.#id && event.n >= (this.#echo?.n ?? Infinity)) this.#echo = null;
      } else if (event.kind === "presence" && event.from !== this.#id) this.#handler(event);
      else if (event.kind === "typing" && event.from !== this.#id) this.#handler(event);
      return;
    }
    this.#arrived(fromRedis(event));
  }

  #arrived(message: RecordedMessage | ChangeEvent): void {
    this.#inbound.push(message);
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
      if (!fresh.every((m, i) => m.id === last + 1 + i)) {
        await this.#fetchNewer(room, fresh.at(-1)!.id);
      }
      // What the stream no longer has (Redis lost it) is recorded as it arrived.
      const lastNow = this.history.lastId(room);
      this.#record(fresh.filter((m) => m.id > lastNow));
    }
  }

  #record(messages: (RecordedMessage | ChangeEvent)[]): void {
    // A step that outlived the wait at shutdown must not write to a store being closed.
    if (messages.length === 0 || this.#closed) return;
    this.history.record(messages);
    for (const message of messages) this.#handler({ kind: "log", event: logEvent(message) });
    if (this.#waiters.size > 0) this.#wakeWaiters(new Set(messages.map((m) => m.room)));
  }

  /** Runs `work` after the steps before it; resolves false if it failed (it is reported). */
  #step(work: () => Promise<void>): Promise<boolean> {
    const next = this.#chain.then(work).then(() => true, (error: Error) => {
      this.#report(error);
      // What was not recorded is still in the streams.
      this.#resyncSoon();
      return false;
    });
    this.#chain = next;
    return next;
  }

  /** Reports a failed catch-up, unless a lost connection explains it (that was reported). */
  #report(error: Error): void {
    const explained = error instanceof RedisUnavailableError && !this.commands.up;
    if (!explained) this.onError(`redis: could not catch up: ${error.message}`);
  }

  /** Waits `ms`, or less if the bus closes meanwhile. */
  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#onClose.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#onClose.add(done);
    });
  }

  /** Stops at once: nothing waits on Redis for longer than a command's timeout. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#retryCheck);
    clearTimeout(this.#retrySync);
    for (const end of [...this.#onClose]) end();
    await deadline(this.#chain, COMMAND_TIMEOUT_MS, "the last catch-up").catch(() => {});
    await Promise.all([this.events.close(), this.commands.close()]);
  }
}

/**
 * Why an ack is not as durable as this Redis can make it, or null when it keeps every write
 * (`appendonly yes`, `appendfsync always`). A Redis that refuses `CONFIG` is asked `INFO`.
 */
async function persistenceWarning(
  link: RedisLink,
  node: RedisClient,
  host: string,
): Promise<string | null> {
  const config = await readPersistence(link, node);
  const durable = "acks are only as durable as Redis: if it restarts without its data, a " +
    "message an instance had not yet recorded is missing there for good, and a resend of one " +
    "not yet acked may be stored twice";
  const fix = "set appendonly yes and appendfsync always in Redis";
  if (config === null) {
    return `cannot tell whether Redis at ${host} keeps its data (CONFIG GET and INFO ` +
      `persistence were refused): ${durable}, unless it has appendonly yes and appendfsync always`;
  }
  const { appendonly, appendfsync, save } = config;
  if (appendonly === "yes" && appendfsync === "always") return null;
  if (appendonly === "yes" && appendfsync === undefined) {
    return `Redis at ${host} has an append-only file, but refuses CONFIG GET, so whether it ` +
      `syncs every write cannot be told: ${durable}, unless it has appendfsync always`;
  }
  if (appendonly === "yes") {
    return `Redis at ${host} syncs its append-only file ` +
      `${appendfsync === "everysec" ? "once a second" : "when its system chooses"} ` +
      `(appendfsync ${appendfsync}): ${durable}; ${fix}`;
  }
  const kept = save === undefined
    ? "may keep only snapshots"
    : save === ""
    ? 'keeps nothing on disk (save "")'
    : `keeps only snapshots (save "${save}")`;
  return `Redis at ${host} has no append-only file (appendonly no) and ${kept}: ${durable}; ${fix}`;
}

interface Persistence {
  appendonly: string;
  appendfsync?: string;
  save?: string;
}

async function readPersistence(link: RedisLink, node: RedisClient): Promise<Persistence | null> {
  try {
    const config = await link.call(
      "CONFIG GET",
      (c: RedisClient) => c.configGet(["appendonly", "appendfsync", "save"]),
      node,
    ) as Record<string, string>;
    if (config.appendonly !== undefined) return config as unknown as Persistence;
  } catch {
    // CONFIG may be renamed away; INFO says less, but something.
  }
  try {
    const info = await link.call(
      "INFO persistence",
      (c: RedisClient) => c.info("persistence"),
      node,
    );
    const aof = /^aof_enabled:(\d)/m.exec(info)?.[1];
    if (aof === undefined) return null;
    return { appendonly: aof === "1" ? "yes" : "no" };
  } catch {
    return null;
  }
}

/**
 * The keys the append and change scripts touch, all of the room's slot: with no `clientId`, the
 * sequence stands in for the resend key (an empty key name would be another slot in a cluster).
 */
function scriptKeys(
  keys: ReturnType<typeof roomKeys>,
  userName: string,
  clientId: string | undefined,
): string[] {
  const resend = clientId === undefined ? keys.seq : keys.client(`${userName}\n${clientId}`);
  return [keys.seq, keys.log, resend, keys.epoch];
}
