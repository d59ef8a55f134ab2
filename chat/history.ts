/**
 * The durable history store: every room's messages in one SQLite file (Deno's built-in
 * `node:sqlite`), with per-room ids, retention, dedupe by `clientId` and group commit.
 * See `docs/protocol.md` for what clients see of it, and the README for `history.*`.
 *
 * @module
 */

import { DatabaseSync, type SQLOutputValue, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { clearImmediate, setImmediate } from "node:timers";
import { dirname } from "node:path";
import type { ChatMessage } from "./message.ts";

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
}

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

const SCHEMA_VERSION = 1;

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
  PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_client
  ON messages (room, user_name, client_id) WHERE client_id IS NOT NULL;
-- The last id per room outlives retention, so ids are never reused.
CREATE TABLE IF NOT EXISTS rooms (
  room TEXT PRIMARY KEY,
  last_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;

const COLUMNS = "id, user_name, body, timestamp, client_id";

interface Pending {
  message: NewMessage;
  resolve: (result: AppendResult) => void;
  reject: (error: HistoryError | ClientIdReusedError) => void;
}

interface Statements {
  newest: StatementSync;
  before: StatementSync;
  after: StatementSync;
  lastId: StatementSync;
  firstId: StatementSync;
  rooms: StatementSync;
  count: StatementSync;
  changes: StatementSync;
  dataVersion: StatementSync;
  byClient: StatementSync;
  insert: StatementSync;
  insertKnown: StatementSync;
  insertKnownBare: StatementSync;
  setLastId: StatementSync;
  trim: StatementSync;
}

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
    if (this.#closed) {
      return Promise.reject(
        new HistoryError(`History store "${this.#path}" is closed; the message was not stored`),
      );
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ message, resolve, reject });
      // Not a microtask: frames already received this turn join the batch. Not setTimeout: it
      // is clamped to 4 ms when nested, which capped throughput at one batch per 4 ms.
      this.#timer ??= setImmediate(() => this.#writeQueued());
    });
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

  /** /history semantics: no cursor -> newest `limit`; before=ID -> newest `limit` below ID; after=ID -> oldest `limit` above ID. Each page oldest first. hasMore: more exist beyond the page in that direction (older for no-cursor/before, newer for after). */
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
    return { messages, hasMore };
  }

  /** Messages with id > afterId, oldest first, at most `limit`. */
  after(room: string, afterId: number, limit: number): ChatMessage[] {
    return this.#read(() =>
      this.#sql.after.all(room, afterId, clampLimit(limit)).map((row) => toMessage(room, row))
    );
  }

  /** The newest `limit` messages, oldest first. */
  recent(room: string, limit: number): ChatMessage[] {
    return this.#read(() =>
      this.#sql.newest.all(room, clampLimit(limit)).map((row) => toMessage(room, row)).reverse()
    );
  }

  /** Highest id stored in the room, 0 if none (ids survive retention and restarts). */
  lastId(room: string): number {
    return this.#read(() => (this.#sql.lastId.get(room)?.last_id as number | undefined) ?? 0);
  }

  /** Oldest retained id in the room, 0 if none. */
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
   * Stores messages whose ids were assigned elsewhere (by Redis, for several instances), in one
   * transaction; ones already stored are skipped. Throws {@linkcode HistoryError} if it fails.
   */
  record(messages: readonly ChatMessage[]): void {
    if (messages.length === 0) return;
    this.#transaction(messages.length, (lastIds) => {
      for (const { room, id, userName, body, timestamp, clientId } of messages) {
        const { changes } = this.#sql.insertKnown.run(
          room,
          id,
          userName,
          body,
          timestamp,
          clientId ?? null,
        );
        // Whoever assigned the id forgets a clientId sooner than this store (Redis after a day):
        // a reused one must not cost the message, only its clientId.
        if (changes === 0 && clientId !== undefined) {
          this.#sql.insertKnownBare.run(room, id, userName, body, timestamp);
        }
        lastIds.set(room, Math.max(lastIds.get(room) ?? this.lastId(room), id));
      }
    });
  }

  /** Resolves when every append issued so far is committed. */
  flush(): Promise<void> {
    this.#writeQueued();
    return Promise.resolve();
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
    let results: (AppendResult | ClientIdReusedError)[];
    try {
      results = this.#transaction(batch.length, (lastIds) => this.#insert(batch, lastIds));
    } catch (error) {
      for (const pending of batch) pending.reject(error as HistoryError);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const result = results[i];
      if (result instanceof ClientIdReusedError) batch[i].reject(result);
      else batch[i].resolve(result);
    }
  }

  /**
   * Runs `insert` in one transaction, then moves each room's last id to what it left in
   * `lastIds` and trims the room to the retention. Throws {@linkcode HistoryError} if it fails.
   */
  #transaction<T>(count: number, insert: (lastIds: Map<string, number>) => T): T {
    const sql = this.#sql;
    const started = performance.now();
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      const lastIds = new Map<string, number>();
      const changedBefore = sql.changes.get()!.total as number;
      const result = insert(lastIds);
      let added = (sql.changes.get()!.total as number) - changedBefore;
      for (const [room, lastId] of lastIds) {
        sql.setLastId.run(room, lastId);
        if (lastId <= this.#maxPerRoom) continue;
        added -= Number(sql.trim.run(room, lastId - this.#maxPerRoom).changes);
      }
      this.#db.exec("COMMIT");
      this.onCommit?.((performance.now() - started) / 1000);
      this.onCommitted?.(lastIds.keys());
      this.#count += added;
      if (this.#passing) this.#failure = null;
      return result;
    } catch (error) {
      rollback(this.#db);
      throw this.#failed(
        new HistoryError(
          `Cannot write to history store "${this.#path}": ${causeOf(error)}; ` +
            `${count} message(s) were not stored. ${adviceFor(causeOf(error))}`,
          { cause: error },
        ),
      );
    }
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
  #insert(batch: Pending[], lastIds: Map<string, number>): (AppendResult | ClientIdReusedError)[] {
    const sql = this.#sql;
    const timestamp = new Date().toISOString();
    const results: (AppendResult | ClientIdReusedError)[] = [];
    for (const { message } of batch) {
      const { room, userName, body, clientId } = message;
      const id = (lastIds.get(room) ?? this.lastId(room)) + 1;
      // The unique index on (room, user_name, client_id) finds a known clientId as it inserts,
      // earlier in this batch or before a restart: then the original is the answer, if it is
      // the same message.
      const { changes } = sql.insert.run(room, id, userName, body, timestamp, clientId ?? null);
      if (changes === 0) {
        const original = sql.byClient.get(room, userName, clientId as string)!;
        results.push(
          original.body === body
            ? { message: toMessage(room, original), duplicate: true }
            : new ClientIdReusedError(clientId as string),
        );
        continue;
      }
      lastIds.set(room, id);
      const stored: ChatMessage = { id, room, userName, body, timestamp };
      if (clientId !== undefined) stored.clientId = clientId;
      results.push({ message: stored, duplicate: false });
    }
    return results;
  }
}

function prepare(db: DatabaseSync): Statements {
  return {
    newest: db.prepare(`SELECT ${COLUMNS} FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?`),
    before: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    ),
    after: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND id > ? ORDER BY id LIMIT ?`,
    ),
    lastId: db.prepare("SELECT last_id FROM rooms WHERE room = ?"),
    firstId: db.prepare("SELECT id FROM messages WHERE room = ? ORDER BY id LIMIT 1"),
    rooms: db.prepare(
      "SELECT room, last_id FROM rooms WHERE room > ? AND EXISTS " +
        "(SELECT 1 FROM messages m WHERE m.room = rooms.room) ORDER BY room LIMIT ?",
    ),
    // Ids in a room are contiguous from the oldest retained to the last, so this costs one
    // index lookup per room instead of a scan of every message.
    count: db.prepare(
      "SELECT coalesce(sum(last_id - (SELECT m.id FROM messages m WHERE m.room = rooms.room " +
        "ORDER BY m.id LIMIT 1) + 1), 0) AS total FROM rooms",
    ),
    // Rows inserted, changed or deleted by this connection: what a write added to the count.
    changes: db.prepare("SELECT total_changes() AS total"),
    dataVersion: db.prepare("PRAGMA data_version"),
    byClient: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND user_name = ? AND client_id = ?`,
    ),
    insert: db.prepare(
      "INSERT INTO messages (room, id, user_name, body, timestamp, client_id) " +
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    insertKnown: db.prepare(
      "INSERT OR IGNORE INTO messages (room, id, user_name, body, timestamp, client_id) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    ),
    insertKnownBare: db.prepare(
      "INSERT OR IGNORE INTO messages (room, id, user_name, body, timestamp) VALUES (?, ?, ?, ?, ?)",
    ),
    setLastId: db.prepare(
      "INSERT INTO rooms (room, last_id) VALUES (?, ?) " +
        "ON CONFLICT (room) DO UPDATE SET last_id = excluded.last_id",
    ),
    trim: db.prepare("DELETE FROM messages WHERE room = ? AND id <= ?"),
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
  return message;
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
