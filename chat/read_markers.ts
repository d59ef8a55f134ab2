/**
 * Read markers: how far a person has read each room (`accounts` and `jwt` modes), so that unread
 * state follows them across devices. A table of the history file, with its own SQLite connection
 * (like the account store), so workers sharing the file share it; `:memory:` is private.
 *
 * A marker never moves backwards. Writes are coalesced: a `read` is kept here and written with
 * every other one pending in one transaction, at most once per {@link FLUSH_MS}, so however often
 * a client reports reading, a person's marker in a room costs at most one write a second. Until
 * it is written, this worker answers with it and another worker with the one before.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { DEFAULT_BUSY_TIMEOUT_MS } from "./history.ts";
import type { Identity } from "./identity.ts";

/** How long a marker may wait here before it is written. */
export const FLUSH_MS = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS read_markers (
  reader TEXT NOT NULL,
  room TEXT NOT NULL,
  last_read INTEGER NOT NULL,
  PRIMARY KEY (reader, room)
) WITHOUT ROWID;
`;

/**
 * Who a marker is kept for: an account (`account:<id>`), a JWT's subject (`jwt:<sub>`), or
 * nobody (null) for open mode's {@link ANYONE}, whose page keeps its markers itself. The kinds
 * are apart so that a server moved from one mode to the other mixes nobody up.
 */
export function readerOf(identity: Identity): string | null {
  switch (identity.via) {
    case "open":
      return null;
    case "jwt":
      return `jwt:${identity.id}`;
    default:
      return `account:${identity.id}`;
  }
}

/** The read markers in the history file. */
export class ReadMarkers {
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #all: StatementSync;
  readonly #upsert: StatementSync;
  /** Markers not yet written, by reader and room. */
  #pending = new Map<string, Map<string, number>>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(db: DatabaseSync, private readonly onError: (message: string) => void) {
    this.#db = db;
    this.#get = db.prepare("SELECT last_read FROM read_markers WHERE reader = ? AND room = ?");
    this.#all = db.prepare("SELECT room, last_read FROM read_markers WHERE reader = ?");
    this.#upsert = db.prepare(
      "INSERT INTO read_markers (reader, room, last_read) VALUES (?, ?, ?) " +
        "ON CONFLICT (reader, room) DO UPDATE SET last_read = max(last_read, excluded.last_read)",
    );
  }

  /**
   * Opens the markers of the history file at `path`, making their table if absent; throws an
   * Error saying why it cannot. A failed write later is told to `onError`, and tried again.
   */
  static open(
    path: string,
    onError: (message: string) => void,
    busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS,
  ): ReadMarkers {
    const db = new DatabaseSync(path);
    try {
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
      db.prepare("PRAGMA journal_mode = WAL").get();
      db.exec("PRAGMA synchronous = FULL");
      db.exec(SCHEMA);
      return new ReadMarkers(db, onError);
    } catch (error) {
      db.close();
      throw new Error(`cannot open the read markers in "${path}": ${(error as Error).message}`);
    }
  }

  /** How far `reader` has read `room`: 0 when it has no marker there. */
  get(reader: string, room: string): number {
    const stored = (this.#get.get(reader, room)?.last_read as number | undefined) ?? 0;
    return Math.max(stored, this.#pending.get(reader)?.get(room) ?? 0);
  }

  /** Every marker of `reader`, by room. */
  all(reader: string): Map<string, number> {
    const markers = new Map<string, number>();
    for (const row of this.#all.all(reader)) {
      markers.set(row.room as string, row.last_read as number);
    }
    for (const [room, id] of this.#pending.get(reader) ?? []) {
      markers.set(room, Math.max(id, markers.get(room) ?? 0));
    }
    return markers;
  }

  /** `reader` has read `room` up to `id`: kept if it is further, and written within a second. */
  mark(reader: string, room: string, id: number): void {
    if (id <= this.get(reader, room)) return;
    let rooms = this.#pending.get(reader);
    if (rooms === undefined) this.#pending.set(reader, rooms = new Map());
    rooms.set(room, id);
    this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Writes the pending markers in one transaction; on failure they wait for the next try. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size === 0) return;
    const pending = this.#pending;
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      for (const [reader, rooms] of pending) {
        for (const [room, id] of rooms) this.#upsert.run(reader, room, id);
      }
      this.#db.exec("COMMIT");
      this.#pending = new Map();
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      this.onError(`read markers were not written: ${(error as Error).message}; trying again`);
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
    }
  }

  /** Writes what is pending (a last try), then closes the connection. */
  close(): void {
    this.flush();
    clearTimeout(this.#timer);
    this.#db.close();
  }
}
