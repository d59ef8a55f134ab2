/**
 * The durable history store: every room's log in one SQLite file (Deno's built-in `node:sqlite`),
 * with per-room ids, retention, dedupe by `clientId` and group commit. The log is the messages
 * and the changes to them (edits, deletes, reactions), numbered by one sequence per room:
 * `messages` holds each message's current state, `events` the changes, `reactions` who reacted
 * with what now. Retention counts messages; the changes to a message go with it.
 * See `docs/protocol.md` for what clients see of it, and the README for `history.*`.
 *
 * @module
 */

import { DatabaseSync, type SQLOutputValue } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { clearImmediate, setImmediate } from "node:timers";
import { dirname } from "node:path";
import {
  type ChangeEvent,
  type ChatMessage,
  type LogEvent,
  MAX_REACTIONS,
  messageEvent,
} from "./message.ts";

/** A message to store; id and timestamp are assigned by the store. */
export interface NewMessage {
  room: string;
  userName: string;
  body: string;
  /**
   * When present, a second append of the same `(room, userName, clientId)` and body is not
   * stored, and one with another body is refused with {@linkcode ClientIdReusedError}.
   */
  clientId?: string;
  /** The names its `@name` tokens refer to; absent or empty when none. */
  mentions?: string[];
  /**
   * Who wrote it, by a stable id (see {@linkcode authorOf}); null or absent in open mode, where
   * a name is all there is.
   */
  author?: string | null;
}

/** What a change to a stored message is, whoever asks for it. */
export type ChangeRequest =
  & {
    messageId: number;
    /** The name it is done under, which its event carries. */
    userName: string;
    /** The requester's stable id (see {@linkcode authorOf}), null in open mode. */
    author: string | null;
    /** Whether the requester may delete anyone's message. */
    admin?: boolean;
    clientId?: string;
  }
  & ({ type: "edit"; body: string } | { type: "delete" } | {
    type: "reaction";
    emoji: string;
    on: boolean;
  });

/** A change to store; its id and timestamp are assigned by the store. */
export type NewChange = ChangeRequest & { room: string };

/** What {@linkcode HistoryStore.change} stored, or found already stored. */
export interface ChangeResult {
  /** The change's event; null when it changed nothing (a reaction already in that state). */
  event: ChangeEvent | null;
  /**
   * What the ack says: the event's id, or, for a change that changed nothing, the message's
   * (no event was made for it).
   */
  id: number;
  /** True when the `clientId` was seen before: `event` is the original, nothing was stored. */
  duplicate: boolean;
}

/** Why a change was refused: `code` is the protocol's error code for it. */
export class ChangeRefusedError extends Error {
  override name = "ChangeRefusedError";
  constructor(readonly code: "not_found" | "forbidden" | "too_large", message: string) {
    super(message);
  }
}

/**
 * Who may edit a message: an identity's stable id, kind by kind (two JWT subjects may share a
 * display name, an account keeps its id when renamed), or null for open mode's nobody in
 * particular, where the name alone says who wrote a message.
 */
export function authorOf(identity: { id: string; via: string }): string | null {
  if (identity.id === "") return null;
  return identity.via === "jwt" ? `jwt:${identity.id}` : `account:${identity.id}`;
}

/** A message recorded as stored elsewhere (by Redis): with its author's id, when it has one. */
export type RecordedMessage = ChatMessage & { type?: "message"; author?: string | null };

/**
 * A `clientId` came again with a different body. A resend is recognised only as the same
 * message; acking this one with the other's id would drop it, and let anyone who claims a name
 * pre-empt that user's next `clientId`. Nothing was stored.
 */
export class ClientIdReusedError extends Error {
  override name = "ClientIdReusedError";
  /** `clientId` is the command's (validated printable ASCII, so safe to quote). */
  constructor(readonly clientId: string) {
    super(
      `clientId ${JSON.stringify(clientId)} was already used for a different message; ` +
        "use a new clientId for each message",
    );
  }
}

/** What {@linkcode HistoryStore.append} stored, or found already stored. */
export interface AppendResult {
  message: ChatMessage;
  /** True when the `clientId` was seen before: `message` is the original, nothing was stored. */
  duplicate: boolean;
}

/** A `/history` request: `after` wins over `before` (the server refuses both at once). */
export interface HistoryQuery {
  limit: number;
  before?: number;
  after?: number;
}

/** One page of history, oldest first. */
export interface HistoryPage {
  messages: ChatMessage[];
  /** More messages exist beyond the page in the direction of the query. */
  hasMore: boolean;
}

/** How to open a {@linkcode HistoryStore}. */
export interface HistoryOptions {
  /** The SQLite file (missing directories are created), or `":memory:"`. */
  path: string;
  /** Retention: the newest this many messages are kept per room; at least 1. */
  maxMessagesPerRoom: number;
  /**
   * How long to wait for another connection's write lock before failing, in milliseconds.
   * Defaults to {@linkcode DEFAULT_BUSY_TIMEOUT_MS}; tests shorten it.
   */
  busyTimeoutMs?: number;
}

/**
 * How long a write waits for another process's lock. `node:sqlite` is synchronous, so the wait
 * blocks the event loop: long enough to ride out another worker's commit, short enough that a
 * stuck lock surfaces as an error instead of a frozen server.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 2000;

/** Start-up and storage failures; message names the path, the cause, and what to do. */
export class HistoryError extends Error {
  /** Creates the error; `cause` is the underlying SQLite or file-system error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HistoryError";
  }
}

const SCHEMA_VERSION = 2;

/** Counting every room's messages again takes at most this share of the time (see `count`). */
const RECOUNT_SHARE = 0.01;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL,
  id INTEGER NOT NULL,
  user_name TEXT NOT NULL,
  body TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  client_id TEXT,
  edited_at TEXT,
  deleted_at TEXT,
  mentions TEXT,
  author_id TEXT,
  PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_client
  ON messages (room, user_name, client_id) WHERE client_id IS NOT NULL;
-- The last id per room outlives retention, so ids are never reused; messages counts the room's
-- rows in messages, which retention keeps to the limit.
CREATE TABLE IF NOT EXISTS rooms (
  room TEXT PRIMARY KEY,
  last_id INTEGER NOT NULL,
  messages INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Edits, deletes and reactions: type is the event's; body an edit's, emoji and added a reaction's.
CREATE TABLE IF NOT EXISTS events (
  room TEXT NOT NULL,
  id INTEGER NOT NULL,
  type TEXT NOT NULL,
  message_id INTEGER NOT NULL,
  user_name TEXT NOT NULL,
  body TEXT,
  emoji TEXT,
  added INTEGER,
  timestamp TEXT NOT NULL,
  client_id TEXT,
  PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_client
  ON events (room, user_name, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_message ON events (room, message_id);
-- Who reacts with what now; event_id (the event that put it on) orders them.
CREATE TABLE IF NOT EXISTS reactions (
  room TEXT NOT NULL,
  message_id INTEGER NOT NULL,
  emoji TEXT NOT NULL,
  user_name TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  PRIMARY KEY (room, message_id, emoji, user_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;

/**
 * The columns version 1 lacked, added to a file it made: `ALTER TABLE ADD COLUMN` changes no row,
 * so migrating costs one count of each room's messages.
 */
const MIGRATION: readonly [table: string, column: string, definition: string][] = [
  ["messages", "edited_at", "TEXT"],
  ["messages", "deleted_at", "TEXT"],
  ["messages", "mentions", "TEXT"],
  ["messages", "author_id", "TEXT"],
  ["rooms", "messages", "INTEGER NOT NULL DEFAULT 0"],
];

const COLUMNS = "id, user_name, body, timestamp, client_id, edited_at, mentions";
const EVENT_COLUMNS = "id, type, message_id, user_name, body, emoji, added, timestamp, client_id";

/** Why a queued write was refused, beside a failed transaction (HistoryError). */
type Refusal = ClientIdReusedError | ChangeRefusedError;

type Pending =
  | {
    message: NewMessage;
    change?: undefined;
    resolve: (result: AppendResult) => void;
    reject: (error: HistoryError | Refusal) => void;
  }
  | {
    change: NewChange;
    message?: undefined;
    resolve: (result: ChangeResult) => void;
    reject: (error: HistoryError | Refusal) => void;
  };

/** A room as one write transaction leaves it: read once, written once at its end. */
interface Tally {
  lastId: number;
  /** Messages the room holds, with those this transaction added. */
  messages: number;
  /** Messages this transaction added. */
  added: number;
}

type Statements = ReturnType<typeof prepare>;

/**
 * The durable history of every room. Reads are synchronous; appends are queued and written in
 * one transaction per event-loop turn (group commit), and resolve once committed.
 */
export class HistoryStore {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #maxPerRoom: number;
  readonly #sql: Statements;
  #queue: Pending[] = [];
  #timer: ReturnType<typeof setImmediate> | undefined;
  #closed = false;
  /** Why the store is failing; null while it is not. See {@linkcode HistoryStore.failing}. */
  #failure: HistoryError | null = null;
  /** Whether {@link #failure} is a busy or full file, which the next committed write clears. */
  #passing = false;
  /** The file the store opened, to tell when another is put at its path; null in memory. */
  readonly #identity: FileIdentity | null;
  /** Messages stored: counted at open and after another connection wrote, kept as this writes. */
  #count = 0;
  /** `PRAGMA data_version` when `#count` was counted: it changes when another connection commits. */
  #countedVersion = 0;
  #countedAt = 0;
  #countMs = 0;
  /** Told how long each committed write transaction took, in seconds (for `/metrics`). */
  onCommit: ((seconds: number) => void) | null = null;
  /** Told the rooms each committed write transaction stored messages in (`search.ts` indexes them). */
  onCommitted: ((rooms: Iterable<string>) => void) | null = null;
  /** {@link mentionCount}'s query, once prepared. */
  #mentionCount: ReturnType<DatabaseSync["prepare"]> | null = null;

  private constructor(db: DatabaseSync, sql: Statements, path: string, maxPerRoom: number) {
    this.#db = db;
    this.#sql = sql;
    this.#path = path;
    this.#maxPerRoom = maxPerRoom;
    const identity = path === ":memory:" ? undefined : fileIdentity(path);
    this.#identity = identity === undefined || identity === "gone" ? null : identity;
    try {
      this.#read(() => this.#recount());
    } catch {
      // The store is failing, and says why; the count is counted again at the next scrape.
    }
  }

  /** Opens (creating if needed) the store; throws HistoryError for a corrupt, locked or unwritable file. */
  static open(options: HistoryOptions): HistoryStore {
    const { path, maxMessagesPerRoom } = options;
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(maxMessagesPerRoom) || maxMessagesPerRoom < 1) {
      throw new HistoryError(
        `Cannot open history store "${path}": maxMessagesPerRoom is ${maxMessagesPerRoom}; ` +
          "set history.maxMessagesPerRoom to a whole number of at least 1",
      );
    }
    const inMemory = path === ":memory:";
    if (!inMemory) {
      try {
        mkdirSync(dirname(path), { recursive: true });
      } catch (error) {
        throw openError(path, error, busyTimeoutMs);
      }
    }
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
      // Reading the journal mode is the first read of the file: a corrupt file fails here.
      const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (!inMemory && mode !== "wal") {
        throw new Error(`could not switch to WAL mode (journal_mode is ${mode})`);
      }
      // In WAL mode, NORMAL syncs only at checkpoints: a commit survives a crash of the process
      // but may be lost on power loss or an OS crash. FULL adds one fsync of the WAL per commit;
      // group commit amortises it over the batch. Measured with 100 concurrent appenders on 2
      // cores: FULL 26,000-29,000 acked messages/s (p99 8 ms), NORMAL 27,000-30,000 (p99 20 ms,
      // its checkpoints sync in bigger lumps). Too close to give up an ack meaning on disk.
      db.exec("PRAGMA synchronous = FULL");
      // After a burst, truncate the WAL back to 64 MiB instead of keeping its peak size.
      db.exec("PRAGMA journal_size_limit = 67108864");
      // A commit that touches many rooms writes many pages: checkpointing every 16 MiB of WAL
      // instead of 4, with 64 MiB of page cache, took 100 publishers in 100 rooms from about
      // 21,000 to 26,000 appends/s on the 2-core machine (bench/README.md, "History").
      db.exec("PRAGMA wal_autocheckpoint = 4000");
      db.exec("PRAGMA cache_size = -65536");
      const version = readVersion(db);
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `its schema version is ${version}, newer than this parley's ${SCHEMA_VERSION}`,
        );
      }
      // Creating the schema and writing a row proves the file and its directory are writable
      // now, rather than at the first message. Preparing every statement checks that existing
      // tables have the columns this code expects, before anything is written to them.
      let sql: Statements;
      db.exec("BEGIN IMMEDIATE");
      try {
        if (version === 1) migrate(db);
        db.exec(SCHEMA);
        sql = prepare(db);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        db.prepare(
          "INSERT INTO meta (key, value) VALUES ('opened_at', ?) " +
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ).run(new Date().toISOString());
        db.exec("COMMIT");
      } catch (error) {
        rollback(db);
        throw error;
      }
      return new HistoryStore(db, sql, path, maxMessagesPerRoom);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // The open error is the one worth reporting.
      }
      throw openError(path, error, busyTimeoutMs);
    }
  }

  /** The connection to the file: `search.ts` keeps its index in it, in transactions of its own. */
  get database(): DatabaseSync {
    return this.#db;
  }

  /** Stores a message; resolves only after it is committed. Same (room, userName, clientId) and body again -> the original message, duplicate: true, nothing stored; another body -> rejects with ClientIdReusedError. Rejects with HistoryError if the write fails. */
  append(message: NewMessage): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(this.#closedError("message"));
    return new Promise<AppendResult>((resolve, reject) => {
      this.#enqueue({ message, resolve, reject });
    });
  }

  /**
   * Stores a change to a message with the room's next id, in the same group commit as the
   * messages: resolves once committed, with the event; a resend of a known `clientId` with the
   * original, a reaction already in that state with no event. Rejects with
   * {@linkcode ChangeRefusedError} (no such message, not the requester's), with
   * {@linkcode ClientIdReusedError}, or with HistoryError if the write fails.
   */
  change(change: NewChange): Promise<ChangeResult> {
    if (this.#closed) return Promise.reject(this.#closedError("change"));
    return new Promise<ChangeResult>((resolve, reject) => {
      this.#enqueue({ change, resolve, reject });
    });
  }

  #closedError(what: string): HistoryError {
    return new HistoryError(`History store "${this.#path}" is closed; the ${what} was not stored`);
  }

  #enqueue(pending: Pending): void {
    this.#queue.push(pending);
    // Not a microtask: frames already received this turn join the batch. Not setTimeout: it
    // is clamped to 4 ms when nested, which capped throughput at one batch per 4 ms.
    this.#timer ??= setImmediate(() => this.#writeQueued());
  }

  /**
   * What storing `change` would do as the store is now: the result of a duplicate or of a change
   * that changes nothing, a refusal, or null when it is to be stored. {@linkcode change} asks
   * inside its write; a bus that assigns ids elsewhere asks before it does.
   */
  judge(change: NewChange): ChangeResult | ClientIdReusedError | ChangeRefusedError | null {
    return this.#read(() => this.#judge(change));
  }

  #judge(change: NewChange): ChangeResult | Refusal | null {
    const sql = this.#sql;
    const { room, messageId, userName, clientId } = change;
    if (clientId !== undefined) {
      const prior = sql.eventByClient.get(room, userName, clientId);
      if (prior !== undefined) {
        const event = toChange(room, prior);
        return sameChange(event, change)
          ? { event, id: event.id, duplicate: true }
          : new ClientIdReusedError(clientId);
      }
      if (sql.byClient.get(room, userName, clientId) !== undefined) {
        return new ClientIdReusedError(clientId);
      }
    }
    const target = sql.target.get(room, messageId);
    if (target === undefined || target.deleted_at !== null) {
      return new ChangeRefusedError(
        "not_found",
        `there is no message ${messageId} in the room ${room}: it was deleted, or never was`,
      );
    }
    // A message of open mode has no author id: its name is all that says who wrote it.
    const own = target.author_id !== null
      ? target.author_id === change.author
      : target.user_name === userName;
    if (change.type === "edit" && !own) {
      return new ChangeRefusedError("forbidden", `message ${messageId} is not yours to edit`);
    }
    if (change.type === "delete" && !own && change.admin !== true) {
      return new ChangeRefusedError(
        "forbidden",
        `message ${messageId} is not yours; only its author or an admin may delete it`,
      );
    }
    return change.type === "reaction" ? this.#judgeReaction(change) : null;
  }

  #judgeReaction(change: NewChange & { type: "reaction" }): ChangeResult | Refusal | null {
    const { room, messageId, emoji, userName, on } = change;
    const state = this.#sql.reactionState.get(emoji, room, messageId, userName)!;
    if ((state.mine as number) > 0 === on) return { event: null, id: messageId, duplicate: false };
    if (on && (state.present as number) === 0 && (state.emoji as number) >= MAX_REACTIONS) {
      return new ChangeRefusedError(
        "too_large",
        `message ${messageId} has ${MAX_REACTIONS} different reactions, the most it may have; ` +
          "react with one of those",
      );
    }
    return null;
  }

  /**
   * The message this user stored in the room under `clientId`, if this store has it: a resend
   * is answered from it even where whoever assigns ids (Redis) has forgotten the clientId.
   */
  byClientId(room: string, userName: string, clientId: string): ChatMessage | null {
    return this.#read(() => {
      const row = this.#sql.byClient.get(room, userName, clientId);
      return row === undefined ? null : toMessage(room, row);
    });
  }

  /** /history semantics: no cursor -> newest `limit`; before=ID -> newest `limit` below ID; after=ID -> oldest `limit` above ID. Each page oldest first, messages in their current state, deleted ones left out. hasMore: more exist beyond the page in that direction (older for no-cursor/before, newer for after). */
  page(room: string, query: HistoryQuery): HistoryPage {
    return this.#read(() => this.#page(room, query));
  }

  #page(room: string, query: HistoryQuery): HistoryPage {
    const limit = clampLimit(query.limit);
    // One row beyond the page tells whether there is more.
    let rows: Record<string, SQLOutputValue>[];
    let newestFirst = true;
    if (query.after !== undefined) {
      rows = this.#sql.after.all(room, query.after, limit + 1);
      newestFirst = false;
    } else if (query.before !== undefined) {
      rows = this.#sql.before.all(room, query.before, limit + 1);
    } else {
      rows = this.#sql.newest.all(room, limit + 1);
    }
    const hasMore = rows.length > limit;
    const messages = rows.slice(0, limit).map((row) => toMessage(room, row));
    if (newestFirst) messages.reverse();
    return { messages: this.#withReactions(room, messages), hasMore };
  }

  /** Messages with id > afterId, oldest first, at most `limit`: current state, deleted left out. */
  after(room: string, afterId: number, limit: number): ChatMessage[] {
    return this.#read(() =>
      this.#withReactions(
        room,
        this.#sql.after.all(room, afterId, clampLimit(limit)).map((row) => toMessage(room, row)),
      )
    );
  }

  /** The newest `limit` messages, oldest first: current state, deleted left out. */
  recent(room: string, limit: number): ChatMessage[] {
    return this.#read(() =>
      this.#withReactions(
        room,
        this.#sql.newest.all(room, clampLimit(limit)).map((row) => toMessage(room, row))
          .reverse(),
      )
    );
  }

  /**
   * The log after `afterId` up to `upTo`, in id order, at most `limit` events: every change,
   * and the messages in their current state (deleted ones are left out; their delete is in).
   */
  log(room: string, afterId: number, upTo: number, limit: number): LogEvent[] {
    return this.#read(() => {
      const count = clampLimit(limit);
      const sql = this.#sql;
      const messages = this.#withReactions(
        room,
        sql.messagesBetween.all(room, afterId, upTo, count).map((row) => toMessage(room, row)),
      );
      const changes = sql.eventsBetween.all(room, afterId, upTo, count);
      const log: LogEvent[] = [];
      let m = 0;
      let c = 0;
      while (log.length < count && (m < messages.length || c < changes.length)) {
        const next = changes[c];
        if (m < messages.length && (next === undefined || messages[m].id < (next.id as number))) {
          log.push(messageEvent(messages[m++]));
        } else {
          log.push(toChange(room, changes[c++]));
        }
      }
      return log;
    });
  }

  /**
   * Where a replay of the newest `count` messages up to `upTo` starts: the id before the oldest
   * of them (deleted ones do not count), 0 if the room has no more than that.
   */
  startOfRecent(room: string, upTo: number, count: number): number {
    if (count <= 0 || upTo <= 0) return Math.max(0, upTo);
    return this.#read(() => {
      const row = this.#sql.nthNewest.get(room, upTo, count - 1);
      return row === undefined ? 0 : (row.id as number) - 1;
    });
  }

  /** Adds their reactions to messages (a run of one room's, in id order). */
  #withReactions(room: string, messages: ChatMessage[]): ChatMessage[] {
    if (messages.length === 0) return messages;
    const rows = this.#sql.reactionsBetween.all(room, messages[0].id, messages.at(-1)!.id);
    if (rows.length === 0) return messages;
    const byId = new Map(messages.map((message) => [message.id, message]));
    for (const row of rows) {
      const message = byId.get(row.message_id as number);
      if (message === undefined) continue;
      const reactions = message.reactions ??= {};
      (reactions[row.emoji as string] ??= []).push(row.user_name as string);
    }
    return messages;
  }

  /** Highest id stored in the room, 0 if none (ids survive retention and restarts). */
  lastId(room: string): number {
    return this.#read(() => (this.#sql.lastId.get(room)?.last_id as number | undefined) ?? 0);
  }

  /** Oldest retained id in the room, 0 if none: nothing of the log before it is kept. */
  firstId(room: string): number {
    return this.#read(() => (this.#sql.firstId.get(room)?.id as number | undefined) ?? 0);
  }

  /** The rooms that have messages, with their last ids, by name: all, or `limit` after `after`. */
  rooms(after = "", limit = -1): { room: string; lastId: number }[] {
    return this.#read(() =>
      this.#sql.rooms.all(after, limit).map((row) => ({
        room: row.room as string,
        lastId: row.last_id as number,
      }))
    );
  }

  /**
   * Messages stored (for /metrics), without reading them: this store keeps the count as it writes
   * and trims. Once another process sharing the file has written, it counts every room again, but
   * no more than {@link RECOUNT_SHARE} of the time: a scrape stays cheap however many rooms.
   */
  count(): number {
    return this.#read(() => {
      const version = this.#sql.dataVersion.get()?.data_version as number;
      const due = this.#countedAt + this.#countMs / RECOUNT_SHARE;
      if (version !== this.#countedVersion && performance.now() >= due) this.#recount();
      return this.#count;
    });
  }

  #recount(): void {
    const start = performance.now();
    this.#countedVersion = this.#sql.dataVersion.get()?.data_version as number;
    this.#count = (this.#sql.count.get()?.total as number | undefined) ?? 0;
    this.#countedAt = performance.now();
    this.#countMs = this.#countedAt - start;
  }

  /**
   * True once a read or a write has failed, or the file at the path is no longer the one opened
   * (deleted or replaced under the running server): the store may be damaged, and `/healthz` says
   * so. A busy or full file stops failing at the next write that commits; anything else lasts
   * until a restart. Checking the file costs one `stat`.
   */
  get failing(): boolean {
    this.#checkIdentity();
    return this.#failure !== null;
  }

  /** Why the store is {@linkcode failing}: the latest failure, or null. */
  get failure(): HistoryError | null {
    this.#checkIdentity();
    return this.#failure;
  }

  /**
   * Stores a log whose ids were assigned elsewhere (by Redis, for several instances), in one
   * transaction: messages, and changes, which are applied to their messages. What is already
   * stored is skipped. Throws {@linkcode HistoryError} if it fails.
   */
  record(entries: readonly (RecordedMessage | ChangeEvent)[]): void {
    if (entries.length === 0) return;
    this.#transaction(entries.length, (tally) => {
      for (const entry of entries) {
        const room = tally(entry.room);
        if (isChange(entry)) this.#applyChange(entry);
        else if (this.#recordMessage(entry)) {
          room.messages++;
          room.added++;
        }
        room.lastId = Math.max(room.lastId, entry.id);
      }
    });
  }

  /** Inserts a message stored elsewhere; false if it was here already. */
  #recordMessage(message: RecordedMessage): boolean {
    const { room, id, userName, body, timestamp, clientId } = message;
    const mentions = mentionsColumn(message.mentions);
    const author = message.author ?? null;
    const { changes } = this.#sql.insertKnown.run(
      room,
      id,
      userName,
      body,
      timestamp,
      clientId ?? null,
      mentions,
      author,
    );
    if (changes > 0 || clientId === undefined) return changes > 0;
    // Whoever assigned the id forgets a clientId sooner than this store (Redis after a day):
    // a reused one must not cost the message, only its clientId.
    const bare = this.#sql.insertKnown.run(
      room,
      id,
      userName,
      body,
      timestamp,
      null,
      mentions,
      author,
    );
    return bare.changes > 0;
  }

  /**
   * Stores a change's event and applies it to its message, unless it is stored already. A
   * change recorded from elsewhere may come after its message was deleted here: it changes
   * nothing then.
   */
  #applyChange(event: ChangeEvent): void {
    const sql = this.#sql;
    const { room, id, type, messageId, userName, timestamp, clientId } = event;
    const body = event.type === "edit" ? event.body : null;
    const emoji = event.type === "reaction" ? event.emoji : null;
    const on = event.type === "reaction" ? Number(event.on) : null;
    const row = [room, id, type, messageId, userName, body, emoji, on, timestamp] as const;
    let { changes } = sql.insertEvent.run(...row, clientId ?? null);
    // As for messages: a clientId whoever assigned the id forgot costs the change its clientId.
    if (changes === 0 && clientId !== undefined) ({ changes } = sql.insertEvent.run(...row, null));
    if (changes === 0) return;
    if (event.type === "edit") sql.edit.run(event.body, timestamp, room, messageId);
    else if (event.type === "delete") {
      sql.delete.run(timestamp, room, messageId);
      sql.unreactAll.run(room, messageId);
    } else if (event.on) sql.react.run(room, messageId, event.emoji, userName, id, room, messageId);
    else sql.unreact.run(room, messageId, event.emoji, userName);
  }

  /** Resolves when every append issued so far is committed. */
  flush(): Promise<void> {
    this.#writeQueued();
    return Promise.resolve();
  }

  /**
   * How many messages (not deleted) after `after` in `room` mention `userName`: names in the
   * JSON array of their `mentions` column.
   */
  mentionCount(room: string, after: number, userName: string): number {
    return this.#read(() => {
      this.#mentionCount ??= prepareMentionCount(this.#db);
      return (this.#mentionCount.get(room, after, userName)?.n as number | undefined) ?? 0;
    });
  }

  /** Writes what is queued, then closes the database. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#writeQueued();
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }

  #writeQueued(): void {
    clearImmediate(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    let results: (AppendResult | ChangeResult | Refusal)[];
    try {
      results = this.#transaction(batch.length, (tally) => this.#insert(batch, tally));
    } catch (error) {
      for (const pending of batch) pending.reject(error as HistoryError);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const result = results[i];
      const pending = batch[i];
      if (result instanceof ClientIdReusedError || result instanceof ChangeRefusedError) {
        pending.reject(result);
      } else if (pending.change === undefined) pending.resolve(result as AppendResult);
      else pending.resolve(result as ChangeResult);
    }
  }

  /**
   * Runs `write` in one transaction, then moves each room it touched to the last id and message
   * count it left in its {@link Tally} and trims the room to the retention. Throws
   * {@linkcode HistoryError} if it fails.
   */
  #transaction<T>(count: number, write: (tally: (room: string) => Tally) => T): T {
    const sql = this.#sql;
    const started = performance.now();
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      const tallies = new Map<string, Tally>();
      const result = write((room) => {
        let tally = tallies.get(room);
        if (tally === undefined) {
          const row = sql.roomRow.get(room);
          tally = {
            lastId: (row?.last_id as number | undefined) ?? 0,
            messages: (row?.messages as number | undefined) ?? 0,
            added: 0,
          };
          tallies.set(room, tally);
        }
        return tally;
      });
      let added = 0;
      for (const [room, tally] of tallies) {
        added += tally.added - this.#trim(room, tally);
        sql.setRoom.run(room, tally.lastId, tally.messages);
      }
      this.#db.exec("COMMIT");
      this.onCommit?.((performance.now() - started) / 1000);
      this.onCommitted?.(tallies.keys());
      this.#count += added;
      if (this.#passing) this.#failure = null;
      return result;
    } catch (error) {
      rollback(this.#db);
      throw this.#failed(
        new HistoryError(
          `Cannot write to history store "${this.#path}": ${causeOf(error)}; ` +
            `${count} message(s) or change(s) were not stored. ${adviceFor(causeOf(error))}`,
          { cause: error },
        ),
      );
    }
  }

  /**
   * Deletes the room's oldest messages beyond the retention, and the changes to them; returns
   * how many messages went.
   */
  #trim(room: string, tally: Tally): number {
    const excess = tally.messages - this.#maxPerRoom;
    if (excess <= 0) return 0;
    const sql = this.#sql;
    const cut = sql.nthOldest.get(room, excess - 1)?.id as number | undefined;
    if (cut === undefined) return 0;
    const removed = Number(sql.trim.run(room, cut).changes);
    sql.trimEvents.run(room, cut);
    sql.trimReactions.run(room, cut);
    tally.messages -= removed;
    return removed;
  }

  /** Runs a read; a failure is a {@linkcode HistoryError} naming the file and the cause. */
  #read<T>(read: () => T): T {
    try {
      return read();
    } catch (error) {
      if (error instanceof HistoryError) throw error;
      const closed = this.#closed ? " (the store is closed)" : "";
      const failure = new HistoryError(
        `Cannot read history store "${this.#path}"${closed}: ${causeOf(error)}. ` +
          adviceFor(causeOf(error)),
        { cause: error },
      );
      throw this.#closed ? failure : this.#failed(failure);
    }
  }

  /** Makes the store {@linkcode failing} with `error`, and returns it. */
  #failed(error: HistoryError): HistoryError {
    const passing = isPassing(error.cause);
    // A lasting failure is not hidden by a passing one after it.
    if (this.#failure === null || this.#passing || !passing) {
      this.#failure = error;
      this.#passing = passing;
    }
    return error;
  }

  /** Fails the store for good if the file at its path is not the one it opened. */
  #checkIdentity(): void {
    if (this.#identity === null || this.#closed) return;
    if (this.#failure !== null && !this.#passing) return;
    const now = fileIdentity(this.#path);
    if (now === undefined) return;
    if (now !== "gone" && now.dev === this.#identity.dev && now.ino === this.#identity.ino) return;
    const what = now === "gone" ? "was deleted" : "was replaced by another file";
    this.#failure = new HistoryError(
      `History store "${this.#path}" ${what} while parley was running: messages are being ` +
        "written to a file no longer at that path, and will be lost. Put the file back (or " +
        "restore a backup) and restart parley.",
    );
    this.#passing = false;
  }

  /** Assigns ids from the stored last id (so several processes may share the file) and inserts. */
  #insert(
    batch: Pending[],
    tally: (room: string) => Tally,
  ): (AppendResult | ChangeResult | Refusal)[] {
    const sql = this.#sql;
    const timestamp = new Date().toISOString();
    const results: (AppendResult | ChangeResult | Refusal)[] = [];
    for (const pending of batch) {
      if (pending.change !== undefined) {
        results.push(this.#storeChange(pending.change, tally(pending.change.room), timestamp));
        continue;
      }
      const { room, userName, body, clientId, mentions, author } = pending.message;
      const room_ = tally(room);
      const id = room_.lastId + 1;
      const mentioned = mentionsColumn(mentions);
      // The unique index on (room, user_name, client_id) finds a known clientId as it inserts,
      // earlier in this batch or before a restart: then the original is the answer, if it is
      // the same message.
      const { changes } = sql.insert.run(
        room,
        id,
        userName,
        body,
        timestamp,
        clientId ?? null,
        mentioned,
        author ?? null,
      );
      if (changes === 0) {
        const original = toMessage(room, sql.byClient.get(room, userName, clientId as string)!);
        results.push(
          isResend(original, body)
            ? { message: original, duplicate: true }
            : new ClientIdReusedError(clientId as string),
        );
        continue;
      }
      room_.lastId = id;
      room_.messages++;
      room_.added++;
      const stored: ChatMessage = { id, room, userName, body, timestamp };
      if (clientId !== undefined) stored.clientId = clientId;
      if (mentioned !== null) stored.mentions = mentions;
      results.push({ message: stored, duplicate: false });
    }
    return results;
  }

  /** Judges a change and, unless that settles it, stores it with the room's next id. */
  #storeChange(change: NewChange, tally: Tally, timestamp: string): ChangeResult | Refusal {
    const verdict = this.#judge(change);
    if (verdict !== null) return verdict;
    const event = changeEvent(change, tally.lastId + 1, timestamp);
    this.#applyChange(event);
    tally.lastId = event.id;
    return { event, id: event.id, duplicate: false };
  }
}

/**
 * Whether a message with `body` under a known clientId is the stored `original` sent again. One
 * edited or deleted since cannot be compared: its clientId is taken as its resend's.
 */
export function isResend(original: ChatMessage, body: string): boolean {
  // Only a deleted message has an empty body: a message's is never blank.
  return original.body === body || original.editedAt !== undefined || original.body === "";
}

/** Whether a change stored under a clientId is the same command as `change`. */
function sameChange(stored: ChangeEvent, change: NewChange): boolean {
  if (stored.type !== change.type || stored.messageId !== change.messageId) return false;
  if (stored.type === "edit") return stored.body === (change as { body: string }).body;
  if (stored.type === "reaction") {
    const { emoji, on } = change as { emoji: string; on: boolean };
    return stored.emoji === emoji && stored.on === on;
  }
  return true;
}

/** Whether an entry of a log is a change rather than a message. */
function isChange(entry: RecordedMessage | ChangeEvent): entry is ChangeEvent {
  return entry.type !== undefined && entry.type !== "message";
}

/** The event of a change, once it has its id and time. */
function changeEvent(change: NewChange, id: number, timestamp: string): ChangeEvent {
  const { room, messageId, userName, clientId } = change;
  const base = { id, room, messageId, userName, timestamp };
  const event: ChangeEvent = change.type === "edit"
    ? { type: "edit", ...base, body: change.body }
    : change.type === "delete"
    ? { type: "delete", ...base }
    : { type: "reaction", ...base, emoji: change.emoji, on: change.on };
  if (clientId !== undefined) event.clientId = clientId;
  return event;
}

function mentionsColumn(mentions: readonly string[] | undefined): string | null {
  return mentions === undefined || mentions.length === 0 ? null : JSON.stringify(mentions);
}

/** Adds what version 2 has to a version 1 file, and counts each room's messages. */
function migrate(db: DatabaseSync): void {
  for (const [table, column, definition] of MIGRATION) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all().map((row) => row.name);
    if (!columns.includes(column)) {
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }
  db.exec(
    "UPDATE rooms SET messages = (SELECT count(*) FROM messages m WHERE m.room = rooms.room)",
  );
}

/** Every statement the store runs, prepared once. */
function prepare(db: DatabaseSync) {
  return { ...prepareReads(db), ...prepareWrites(db) };
}

/** A message that is not deleted. */
const LIVE = "deleted_at IS NULL";

function prepareReads(db: DatabaseSync) {
  const live = LIVE;
  return {
    newest: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND ${live} ORDER BY id DESC LIMIT ?`,
    ),
    before: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND id < ? AND ${live} ` +
        "ORDER BY id DESC LIMIT ?",
    ),
    after: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND id > ? AND ${live} ORDER BY id LIMIT ?`,
    ),
    messagesBetween: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND id > ? AND id <= ? AND ${live} ` +
        "ORDER BY id LIMIT ?",
    ),
    eventsBetween: db.prepare(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE room = ? AND id > ? AND id <= ? ` +
        "ORDER BY id LIMIT ?",
    ),
    nthNewest: db.prepare(
      `SELECT id FROM messages WHERE room = ? AND id <= ? AND ${live} ` +
        "ORDER BY id DESC LIMIT 1 OFFSET ?",
    ),
    nthOldest: db.prepare("SELECT id FROM messages WHERE room = ? ORDER BY id LIMIT 1 OFFSET ?"),
    reactionsBetween: db.prepare(
      "SELECT message_id, emoji, user_name FROM reactions WHERE room = ? AND message_id >= ? " +
        "AND message_id <= ? ORDER BY message_id, event_id",
    ),
    reactionState: db.prepare(
      "SELECT count(DISTINCT emoji) AS emoji, coalesce(sum(emoji = ?1), 0) AS present, " +
        "coalesce(sum(emoji = ?1 AND user_name = ?4), 0) AS mine " +
        "FROM reactions WHERE room = ?2 AND message_id = ?3",
    ),
    target: db.prepare(
      "SELECT user_name, author_id, deleted_at FROM messages WHERE room = ? AND id = ?",
    ),
    lastId: db.prepare("SELECT last_id FROM rooms WHERE room = ?"),
    roomRow: db.prepare("SELECT last_id, messages FROM rooms WHERE room = ?"),
    firstId: db.prepare("SELECT id FROM messages WHERE room = ? ORDER BY id LIMIT 1"),
    rooms: db.prepare(
      "SELECT room, last_id FROM rooms WHERE room > ? AND EXISTS " +
        "(SELECT 1 FROM messages m WHERE m.room = rooms.room) ORDER BY room LIMIT ?",
    ),
    count: db.prepare("SELECT coalesce(sum(messages), 0) AS total FROM rooms"),
    dataVersion: db.prepare("PRAGMA data_version"),
    byClient: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND user_name = ? AND client_id = ?`,
    ),
    eventByClient: db.prepare(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE room = ? AND user_name = ? AND client_id = ?`,
    ),
  };
}

function prepareWrites(db: DatabaseSync) {
  const live = LIVE;
  return {
    insert: db.prepare(
      "INSERT INTO messages (room, id, user_name, body, timestamp, client_id, mentions, " +
        "author_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    insertKnown: db.prepare(
      "INSERT OR IGNORE INTO messages (room, id, user_name, body, timestamp, client_id, " +
        "mentions, author_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    insertEvent: db.prepare(
      "INSERT OR IGNORE INTO events (room, id, type, message_id, user_name, body, emoji, added, " +
        "timestamp, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    edit: db.prepare(
      `UPDATE messages SET body = ?, edited_at = ? WHERE room = ? AND id = ? AND ${live}`,
    ),
    delete: db.prepare(
      "UPDATE messages SET body = '', deleted_at = ?, mentions = NULL " +
        `WHERE room = ? AND id = ? AND ${live}`,
    ),
    react: db.prepare(
      "INSERT OR IGNORE INTO reactions (room, message_id, emoji, user_name, event_id) " +
        `SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE room = ? AND id = ? ` +
        `AND ${live})`,
    ),
    unreact: db.prepare(
      "DELETE FROM reactions WHERE room = ? AND message_id = ? AND emoji = ? AND user_name = ?",
    ),
    unreactAll: db.prepare("DELETE FROM reactions WHERE room = ? AND message_id = ?"),
    setRoom: db.prepare(
      "INSERT INTO rooms (room, last_id, messages) VALUES (?, ?, ?) " +
        "ON CONFLICT (room) DO UPDATE SET last_id = excluded.last_id, messages = excluded.messages",
    ),
    trim: db.prepare("DELETE FROM messages WHERE room = ? AND id <= ?"),
    trimEvents: db.prepare("DELETE FROM events WHERE room = ? AND message_id <= ?"),
    trimReactions: db.prepare("DELETE FROM reactions WHERE room = ? AND message_id <= ?"),
  };
}

function toMessage(room: string, row: Record<string, SQLOutputValue>): ChatMessage {
  const message: ChatMessage = {
    id: row.id as number,
    room,
    userName: row.user_name as string,
    body: row.body as string,
    timestamp: row.timestamp as string,
  };
  if (row.client_id !== null) message.clientId = row.client_id as string;
  if (row.mentions !== null) message.mentions = JSON.parse(row.mentions as string);
  if (row.edited_at !== null) message.editedAt = row.edited_at as string;
  return message;
}

function toChange(room: string, row: Record<string, SQLOutputValue>): ChangeEvent {
  const base = {
    id: row.id as number,
    room,
    messageId: row.message_id as number,
    userName: row.user_name as string,
    timestamp: row.timestamp as string,
  };
  const event: ChangeEvent = row.type === "edit"
    ? { type: "edit", ...base, body: row.body as string }
    : row.type === "delete"
    ? { type: "delete", ...base }
    : { type: "reaction", ...base, emoji: row.emoji as string, on: row.added === 1 };
  if (row.client_id !== null) event.clientId = row.client_id as string;
  return event;
}

/** SQLite reads a negative LIMIT as "no limit"; a page never means that. */
function clampLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.max(0, Math.trunc(limit)) : 0;
}

function readVersion(db: DatabaseSync): number {
  return (db.prepare("PRAGMA user_version").get()?.user_version as number | undefined) ?? 0;
}

/** A file's device and inode: what stays the same while it is the same file. */
interface FileIdentity {
  dev: number;
  ino: number;
}

/** The identity of the file at `path`; "gone" if there is none, undefined if it cannot tell. */
function fileIdentity(path: string): FileIdentity | "gone" | undefined {
  try {
    const { dev, ino } = Deno.statSync(path);
    return ino === null ? undefined : { dev, ino };
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "gone" : undefined;
  }
}

/** SQLite's primary result codes for a file that is busy or full: conditions that pass. */
const PASSING_CODES = new Set([5, /* BUSY */ 6, /* LOCKED */ 13 /* FULL */]);

/**
 * Whether a SQLite error is one that passes (busy, locked, full) rather than possible damage. An
 * error from `exec` carries no code, only SQLite's message.
 */
function isPassing(cause: unknown): boolean {
  const code = (cause as { errcode?: unknown } | null)?.errcode;
  if (typeof code === "number") return PASSING_CODES.has(code & 0xff);
  return /database (table )?is locked|database is busy|database or disk is full/
    .test(causeOf(cause));
}

function rollback(db: DatabaseSync): void {
  try {
    if (db.isOpen && db.isTransaction) db.exec("ROLLBACK");
  } catch {
    // SQLite already rolled back (e.g. after SQLITE_FULL); nothing is left to undo.
  }
}

function causeOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function adviceFor(cause: string): string {
  const text = cause.toLowerCase();
  if (text.includes("not a database") || text.includes("malformed") || text.includes("corrupt")) {
    return "The file is damaged or is not a parley history file: move it aside (or restore a " +
      "backup) and start again, or set history.path to another file.";
  }
  if (text.includes("locked") || text.includes("busy")) {
    return "Another process holds a write lock on it: stop the other program or parley " +
      "instance using this file, or set history.path to another file.";
  }
  if (text.includes("full")) {
    return "The disk is full: free some space.";
  }
  if (text.includes("schema version")) {
    return "Run the newer parley, or set history.path to another file.";
  }
  return "Check that history.path names a file (not a directory) that parley may read and " +
    "write, in a directory it may write, or set history.path to another file.";
}

function openError(path: string, error: unknown, busyTimeoutMs: number): HistoryError {
  if (error instanceof HistoryError) return error;
  let cause = causeOf(error);
  if (/locked|busy/i.test(cause)) {
    cause += ` (waited ${busyTimeoutMs} ms for another connection's lock)`;
  }
  return new HistoryError(
    `Cannot open history store "${path}": ${cause}. ${adviceFor(cause)}`,
    { cause: error },
  );
}

/** The query of {@link HistoryStore.mentionCount}. */
function prepareMentionCount(db: DatabaseSync): ReturnType<DatabaseSync["prepare"]> {
  return db.prepare(
    "SELECT count(*) AS n FROM messages WHERE room = ? AND id > ? AND mentions IS NOT NULL" +
      " AND deleted_at IS NULL" +
      " AND EXISTS (SELECT 1 FROM json_each(messages.mentions) WHERE value = ?)",
  );
}
