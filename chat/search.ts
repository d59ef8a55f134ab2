/**
 * The search index: SQLite FTS5 over the bodies of stored messages, kept in the history file on
 * the history store's own connection, so that it survives whatever the store survives.
 *
 * - `search_rooms` numbers the rooms and keeps, per room, the id up to which its messages are
 *   indexed (`indexed_to`): after a restart, or in a file from before search, it says what is
 *   left to index. `search_docs` maps an index row (`seq`) to its message (room number, id).
 * - `seq` orders the index newest first across rooms: the message's millisecond (its timestamp)
 *   times 2^10, plus its place among the messages of that millisecond indexed so far (more than
 *   1024 spill into the next milliseconds' places). So a page of
 *   the newest hits is the first rows of one FTS5 query, however late a message was indexed.
 * - `search_index` is contentless (the bodies stay in `messages` only); a search shows its hits'
 *   current bodies, marked by FTS5 itself in a small temporary table (see {@link SnippetPart}).
 *
 * Indexing stays off the ack path: the store tells {@link SearchIndex} which rooms each commit
 * wrote to, and it indexes what is new since their markers a moment later
 * ({@link INDEX_DELAY_MS}), in transactions of its own of at most {@link INDEX_BATCH} messages,
 * yielding to the event loop between them; while publishing is busy, only a few a second
 * ({@link BUSY_BATCH}), so that indexing does not slow publishing. A search first catches the index up, so it finds a
 * message acked just before. Edits and deletes (`UPDATE messages SET body`) reach the index
 * through a trigger, in the transaction that makes them; rows retention deleted are left out of
 * results at once (a hit needs its row) and taken out of the index by the next indexing of the
 * room.
 *
 * @module
 */

import type { DatabaseSync, SQLOutputValue, StatementSync } from "node:sqlite";
import { HistoryError, type HistoryStore } from "./history.ts";

/** How long after a commit its messages are indexed: a longer wait makes fewer, bigger batches. */
export const INDEX_DELAY_MS = 200;

/** The most messages indexed in one transaction, which blocks the event loop while it runs. */
export const INDEX_BATCH = 2000;

/**
 * While messages are being committed, indexing takes at most {@link BUSY_BATCH} of them per
 * {@link BUSY_PERIOD_MS}: publishing comes first (indexing costs about half of what storing a
 * message does, on the same thread), and what is left waits for a pause, on disk, not in memory.
 */
export const BUSY_BATCH = 200;
export const BUSY_PERIOD_MS = 1000;

/** Publishing counts as busy until this long after its last commit. */
const QUIET_MS = 500;

/** A search indexes at most this many messages first; beyond it the answer is `partial`. */
const SEARCH_CATCH_UP = 10_000;

/** A search looks at most at this many of the newest matches for hits the requester may read. */
const SCAN_LIMIT = 20_000;

/** Places of one millisecond in `seq`: 2^10; 2^43 ms (to the year 2248) stay below 2^53. */
const MS_SLOTS = 2 ** 10;
const LAST_MS = 2 ** 43 - 1;

/** How long indexing waits after a failure (a locked or full file) before it tries again. */
const RETRY_MS = 1000;

/** Marks a matched run in FTS5's `snippet()`: control characters, which no body holds. */
const OPEN = "\x01";
const CLOSE = "\x02";

/** Tokens of context a snippet keeps around the matches (FTS5 allows at most 64). */
const SNIPPET_TOKENS = 32;

const TOKENIZE = "tokenize = 'unicode61 remove_diacritics 2'";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS search_rooms (
  no INTEGER PRIMARY KEY,
  room TEXT NOT NULL UNIQUE,
  indexed_to INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS search_docs (
  seq INTEGER PRIMARY KEY,
  room_no INTEGER NOT NULL,
  id INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS search_docs_message ON search_docs (room_no, id);
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5 (
  body, content = '', columnsize = 0, ${TOKENIZE}
);
-- Indexed messages that retention deleted: taken out of search_index by the next indexing, which
-- needs the text that was indexed (a contentless index deletes by it) and the row is gone.
CREATE TABLE IF NOT EXISTS search_gone (
  seq INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
-- An edit re-indexes an indexed message; a delete (body '') takes it out. A message not indexed
-- yet has no search_docs row, and is indexed as it is by then.
CREATE TRIGGER IF NOT EXISTS search_edited AFTER UPDATE OF body ON messages
WHEN new.body IS NOT old.body AND old.body <> ''
BEGIN
  INSERT INTO search_index (search_index, rowid, body)
    SELECT 'delete', d.seq, old.body FROM search_rooms r JOIN search_docs d ON d.room_no = r.no
    WHERE r.room = old.room AND d.id = old.id;
  INSERT INTO search_index (rowid, body)
    SELECT d.seq, new.body FROM search_rooms r JOIN search_docs d ON d.room_no = r.no
    WHERE r.room = old.room AND d.id = old.id AND new.body <> '';
  DELETE FROM search_docs WHERE new.body = '' AND seq = (
    SELECT d.seq FROM search_rooms r JOIN search_docs d ON d.room_no = r.no
    WHERE r.room = old.room AND d.id = old.id);
END;
-- Retention deletes oldest first, in the store's own transaction: this only notes what to take
-- out (two lookups and an insert), so that the work is not on the ack path.
CREATE TRIGGER IF NOT EXISTS search_trimmed AFTER DELETE ON messages
WHEN old.body <> ''
BEGIN
  INSERT OR IGNORE INTO search_gone (seq, body)
    SELECT d.seq, old.body FROM search_rooms r JOIN search_docs d ON d.room_no = r.no
    WHERE r.room = old.room AND d.id = old.id;
END;
-- Merging 8 segments at a time instead of 4 halves the cost of indexing; searches read the few
-- more segments in well under a millisecond.
INSERT INTO search_index (search_index, rank) VALUES ('automerge', 8);
`;

/** Where a search's hits are marked: its bodies, and an index of them alone, emptied after. */
const MARKS_SCHEMA = `
CREATE TEMP TABLE IF NOT EXISTS search_marks_text (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_marks USING fts5 (
  body, content = 'search_marks_text', content_rowid = 'id', ${TOKENIZE}
);
`;

/** One piece of a snippet: text to show as it is, `match: true` where the query matched. */
export interface SnippetPart {
  text: string;
  match?: true;
}

/** One hit of a search: where the message is, who wrote it, when, and the marked snippet. */
export interface SearchHit {
  room: string;
  id: number;
  userName: string;
  timestamp: string;
  snippet: SnippetPart[];
}

/** What {@linkcode SearchIndex.search} looks for. */
export interface SearchQuery {
  /** An FTS5 query built by `toFtsQuery` (never a client's text as it came). */
  fts: string;
  /** Only this room, or every room the requester may read. */
  room: string | null;
  limit: number;
  /** Whether the requester may read `room`: hits in any other room are never returned. */
  mayRead(room: string): boolean;
}

/** A page of hits, newest first. */
export interface SearchResult {
  hits: SearchHit[];
  /**
   * Matches may be missing: the index is still catching up on a backlog (a file from before
   * search), or more than {@link SCAN_LIMIT} newer matches were in rooms the requester may not
   * read (or other rooms than `room`).
   */
  partial: boolean;
}

interface Statements {
  behindAll: StatementSync;
  behindOne: StatementSync;
  addRoom: StatementSync;
  newMessages: StatementSync;
  gone: StatementSync;
  unindex: StatementSync;
  forgetDoc: StatementSync;
  forgetGone: StatementSync;
  topOf: StatementSync;
  taken: StatementSync;
  addDoc: StatementSync;
  index: StatementSync;
  setMarker: StatementSync;
  roomNumbers: StatementSync;
  hits: StatementSync;
  moreMatches: StatementSync;
  markText: StatementSync;
  mark: StatementSync;
  snippets: StatementSync;
  unmark: StatementSync;
  unmarkText: StatementSync;
}

/** A room whose stored messages are not all indexed. */
interface Behind {
  room: string;
  lastId: number;
  no: number | null;
  indexedTo: number;
}

/** A message to index, with the `seq` it is given. */
interface Doc {
  no: number;
  id: number;
  body: string;
  /** The message's timestamp in ms since the epoch. */
  ms: number;
  seq: number;
}

/** The search index of one {@link HistoryStore}; see the module documentation. */
export class SearchIndex {
  readonly #db: DatabaseSync;
  readonly #sql: Statements;
  readonly #onError: (message: string) => void;
  /** Rooms committed to since they were last indexed; null: look at every room. */
  #pending: Set<string> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the store last committed, by `performance.now()`. */
  #lastCommit = -Infinity;
  #failing = false;
  #closed = false;
  /** `PRAGMA synchronous` of the store, put back after each indexing transaction. */
  readonly #synchronous: number;

  private constructor(db: DatabaseSync, sql: Statements, onError: (message: string) => void) {
    this.#db = db;
    this.#sql = sql;
    this.#onError = onError;
    this.#synchronous = db.prepare("PRAGMA synchronous").get()!.synchronous as number;
  }

  /**
   * Adds the index's tables to the store's file if they are missing, and starts indexing what is
   * not indexed yet (all of a file from before search) in the background; from then on indexes
   * what the store commits. Indexing failures go to `onError`, and are retried. Throws
   * {@linkcode HistoryError} if the tables cannot be made.
   */
  static open(store: HistoryStore, onError: (message: string) => void): SearchIndex {
    const db = store.database;
    let sql: Statements;
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(SCHEMA);
        db.exec("COMMIT");
      } catch (error) {
        rollback(db);
        throw error;
      }
      db.exec(MARKS_SCHEMA);
      sql = prepare(db);
    } catch (error) {
      throw new HistoryError(
        `Cannot add the search index to the history store: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const index = new SearchIndex(db, sql, onError);
    store.onCommitted = (rooms) => index.#committed(rooms);
    index.#schedule(0);
    return index;
  }

  /**
   * The newest hits of `query` in rooms the requester may read, after indexing what is new (at
   * most {@link SEARCH_CATCH_UP} messages). Throws {@linkcode HistoryError} if the file cannot
   * be read.
   */
  search(query: SearchQuery): SearchResult {
    const behind = !this.catchUp(SEARCH_CATCH_UP);
    try {
      const rooms = this.#sql.roomNumbers.all().map((row) => ({
        no: row.no as number,
        room: row.room as string,
      }));
      const only = query.room === null ? null : rooms.find((r) => r.room === query.room);
      if (only === undefined) return { hits: [], partial: behind };
      const hidden = rooms.filter((r) => !query.mayRead(r.room)).map((r) => r.no);
      if (only !== null && hidden.includes(only.no)) return { hits: [], partial: behind };
      const rows = this.#sql.hits.all(
        query.fts,
        SCAN_LIMIT,
        only?.no ?? null,
        JSON.stringify(hidden),
        query.limit,
      );
      const scannedAll = rows.length === query.limit ||
        this.#sql.moreMatches.get(query.fts, SCAN_LIMIT) === undefined;
      return { hits: this.#snippets(query.fts, rows), partial: behind || !scannedAll };
    } catch (error) {
      throw new HistoryError(
        `Cannot search the history store: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /**
   * Indexes what every room has that is not indexed, at most `budget` messages; true if nothing
   * is left. A failure is reported to `onError` and retried later.
   */
  catchUp(budget = Infinity): boolean {
    this.#pending = null;
    const done = this.#indexSome(budget);
    if (!done) this.#schedule(this.#failing ? RETRY_MS : 0);
    return done;
  }

  /** Stops indexing; what is not indexed yet is indexed after the next open. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #committed(rooms: Iterable<string>): void {
    if (this.#closed) return;
    if (this.#pending !== null) { for (const room of rooms) this.#pending.add(room); }
    this.#lastCommit = performance.now();
    this.#schedule(INDEX_DELAY_MS);
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const busy = performance.now() - this.#lastCommit < QUIET_MS;
      if (this.#indexSome(busy ? BUSY_BATCH : INDEX_BATCH)) return;
      this.#schedule(this.#failing ? RETRY_MS : busy ? BUSY_PERIOD_MS : 0);
    }, ms);
  }

  /** Indexes up to `budget` messages, a batch per transaction; true if nothing is left. */
  #indexSome(budget: number): boolean {
    let left = budget;
    while (left > 0) {
      const indexed = this.#indexBatch(Math.min(left, INDEX_BATCH));
      if (indexed === null) return false;
      if (indexed === "done") return true;
      left -= indexed;
    }
    return false;
  }

  /**
   * One transaction indexing at most `limit` messages of the pending rooms: the count, "done"
   * when no room is behind any more, or null if it failed.
   */
  #indexBatch(limit: number): number | "done" | null {
    if (this.#closed || this.#db.isTransaction) return null;
    const db = this.#db;
    try {
      // The markers are in the same transaction as the index: a commit lost on power failure
      // (possible with NORMAL) is indexed again. The store's own commits stay FULL.
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("BEGIN IMMEDIATE");
      const result = this.#indexBehind(limit);
      db.exec("COMMIT");
      if (this.#failing) this.#onError("search: indexing works again");
      this.#failing = false;
      return result;
    } catch (error) {
      rollback(db);
      if (!this.#failing) {
        this.#onError(`search: cannot index new messages, will retry: ${(error as Error).message}`);
      }
      this.#failing = true;
      return null;
    } finally {
      if (db.isOpen) db.exec(`PRAGMA synchronous = ${this.#synchronous}`);
    }
  }

  /** Takes out what retention deleted, then indexes what is new: at most `limit` in all. */
  #indexBehind(limit: number): number | "done" {
    const gone = this.#forgetGone(limit);
    const behind = gone === limit ? [] : this.#behind();
    if (behind.length === 0) return gone === 0 ? "done" : gone;
    const docs: Doc[] = [];
    // A commit's messages share one timestamp: each is parsed once.
    const times = new Map<string, number>();
    for (const room of behind) {
      const left = limit - gone - docs.length;
      if (left <= 0) break;
      const no = room.no ?? (this.#sql.addRoom.get(room.room)!.no as number);
      const rows = this.#sql.newMessages.all(room.room, room.indexedTo, left);
      const complete = rows.length < left;
      for (const row of rows) docs.push(toDoc(no, row, times));
      const marker = complete ? room.lastId : (rows.at(-1)!.id as number);
      this.#sql.setMarker.run(marker, no);
      if (complete) this.#pending?.delete(room.room);
    }
    this.#insert(docs);
    return gone + docs.length;
  }

  /** The rooms with messages not indexed: the pending ones, or all of them. */
  #behind(): Behind[] {
    const pending = this.#pending;
    const rows = pending === null
      ? this.#sql.behindAll.all()
      : [...pending].flatMap((room) => this.#sql.behindOne.all(room));
    // A pending room not behind (its commit only found resends) is pending no more.
    this.#pending = new Set(rows.map((row) => row.room as string));
    return rows.map((row) => ({
      room: row.room as string,
      lastId: row.last_id as number,
      no: row.no as number | null,
      indexedTo: row.indexed_to as number,
    }));
  }

  /** Takes out of the index at most `limit` messages that retention deleted; how many. */
  #forgetGone(limit: number): number {
    const gone = this.#sql.gone.all(limit);
    for (const { seq, body } of gone) {
      this.#sql.unindex.run(seq, body);
      this.#sql.forgetDoc.run(seq);
      this.#sql.forgetGone.run(seq);
    }
    return gone.length;
  }

  /** Gives `docs` their `seq` and indexes them, in `seq` order (FTS5 writes that fastest). */
  #insert(docs: Doc[]): void {
    docs.sort((a, b) => a.ms - b.ms || a.no - b.no || a.id - b.id);
    const next = new Map<number, number>();
    const indexed: Doc[] = [];
    for (const doc of docs) {
      let seq = next.get(doc.ms);
      if (seq === undefined) {
        const base = doc.ms * MS_SLOTS;
        const top = this.#sql.topOf.get(base, base + MS_SLOTS)?.top as number | null;
        seq = top === null ? base : top + 1;
      }
      // Past the millisecond's places (spilled into, or spilling): the next free one.
      while (seq >= (doc.ms + 1) * MS_SLOTS && this.#sql.taken.get(seq) !== undefined) seq++;
      next.set(doc.ms, seq + 1);
      // Written now, so that a later place of this batch sees it taken.
      doc.seq = seq;
      if (this.#sql.addDoc.run(seq, doc.no, doc.id).changes === 1) indexed.push(doc);
    }
    indexed.sort((a, b) => a.seq - b.seq);
    for (const doc of indexed) this.#sql.index.run(doc.seq, doc.body);
  }

  /** The hits with their snippets, marked by FTS5 in a temporary table of just these bodies. */
  #snippets(fts: string, rows: Record<string, SQLOutputValue>[]): SearchHit[] {
    const sql = this.#sql;
    rows.forEach((row, i) => {
      sql.markText.run(i + 1, row.body);
      sql.mark.run(i + 1, row.body);
    });
    const marked = new Map<number, string>();
    try {
      for (const row of sql.snippets.all(fts)) {
        marked.set(row.rowid as number, row.marked as string);
      }
    } finally {
      sql.unmark.run();
      sql.unmarkText.run();
    }
    return rows.map((row, i) => ({
      room: row.room as string,
      id: row.id as number,
      userName: row.user_name as string,
      timestamp: row.timestamp as string,
      snippet: snippetParts(marked.get(i + 1) ?? (row.body as string)),
    }));
  }
}

function rollback(db: DatabaseSync): void {
  try {
    if (db.isOpen && db.isTransaction) db.exec("ROLLBACK");
  } catch {
    // SQLite rolled back already (after SQLITE_FULL, say); nothing is left to undo.
  }
}

function toDoc(no: number, row: Record<string, SQLOutputValue>, times: Map<string, number>): Doc {
  const timestamp = row.timestamp as string;
  let ms = times.get(timestamp);
  if (ms === undefined) times.set(timestamp, ms = Date.parse(timestamp));
  const when = Number.isFinite(ms) ? Math.min(Math.max(0, ms), LAST_MS) : 0;
  return { no, id: row.id as number, body: row.body as string, ms: when, seq: 0 };
}

/** FTS5's marked snippet as parts: the text between the marks is a match. */
export function snippetParts(marked: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  let at = 0;
  while (at < marked.length) {
    const open = marked.indexOf(OPEN, at);
    if (open === -1) break;
    const close = marked.indexOf(CLOSE, open + 1);
    if (close === -1) break;
    if (open > at) parts.push({ text: marked.slice(at, open) });
    parts.push({ text: marked.slice(open + 1, close), match: true });
    at = close + 1;
  }
  if (at < marked.length) {
    parts.push({ text: marked.slice(at).replaceAll(OPEN, "").replaceAll(CLOSE, "") });
  }
  return parts;
}

function prepare(db: DatabaseSync): Statements {
  const behind = "SELECT r.room, r.last_id, s.no, coalesce(s.indexed_to, 0) AS indexed_to " +
    "FROM rooms r LEFT JOIN search_rooms s ON s.room = r.room " +
    "WHERE coalesce(s.indexed_to, 0) < r.last_id";
  return {
    behindAll: db.prepare(behind),
    behindOne: db.prepare(`${behind} AND r.room = ?`),
    addRoom: db.prepare("INSERT INTO search_rooms (room, indexed_to) VALUES (?, 0) RETURNING no"),
    newMessages: db.prepare(
      "SELECT id, body, timestamp FROM messages WHERE room = ? AND id > ? AND body <> '' " +
        "ORDER BY id LIMIT ?",
    ),
    gone: db.prepare("SELECT seq, body FROM search_gone LIMIT ?"),
    unindex: db.prepare(
      "INSERT INTO search_index (search_index, rowid, body) VALUES ('delete', ?, ?)",
    ),
    forgetDoc: db.prepare("DELETE FROM search_docs WHERE seq = ?"),
    forgetGone: db.prepare("DELETE FROM search_gone WHERE seq = ?"),
    topOf: db.prepare("SELECT max(seq) AS top FROM search_docs WHERE seq >= ? AND seq < ?"),
    taken: db.prepare("SELECT 1 FROM search_docs WHERE seq = ?"),
    addDoc: db.prepare(
      "INSERT INTO search_docs (seq, room_no, id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    index: db.prepare("INSERT INTO search_index (rowid, body) VALUES (?, ?)"),
    setMarker: db.prepare("UPDATE search_rooms SET indexed_to = ? WHERE no = ?"),
    roomNumbers: db.prepare("SELECT no, room FROM search_rooms"),
    // The newest SCAN_LIMIT matches, newest first, less those the requester may not read.
    hits: db.prepare(
      "SELECT r.room, m.id, m.user_name, m.timestamp, m.body " +
        "FROM (SELECT rowid AS seq FROM search_index WHERE search_index MATCH ?1 " +
        "ORDER BY rowid DESC LIMIT ?2) f " +
        "JOIN search_docs d ON d.seq = f.seq " +
        "JOIN search_rooms r ON r.no = d.room_no " +
        "JOIN messages m ON m.room = r.room AND m.id = d.id " +
        "WHERE (?3 IS NULL OR d.room_no = ?3) AND m.body <> '' " +
        "AND d.room_no NOT IN (SELECT value FROM json_each(?4)) " +
        "ORDER BY f.seq DESC LIMIT ?5",
    ),
    moreMatches: db.prepare(
      "SELECT 1 FROM search_index WHERE search_index MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
    ),
    markText: db.prepare("INSERT INTO temp.search_marks_text (id, body) VALUES (?, ?)"),
    mark: db.prepare("INSERT INTO temp.search_marks (rowid, body) VALUES (?, ?)"),
    snippets: db.prepare(
      `SELECT rowid, snippet(search_marks, 0, char(1), char(2), '…', ${SNIPPET_TOKENS}) ` +
        "AS marked FROM temp.search_marks WHERE search_marks MATCH ?",
    ),
    unmark: db.prepare("INSERT INTO temp.search_marks (search_marks) VALUES ('delete-all')"),
    unmarkText: db.prepare("DELETE FROM temp.search_marks_text"),
  };
}
