// @ts-check
/**
 * The rooms a person can open, as `GET /rooms` lists them: open rooms, the private rooms they are a
 * member of, and their direct rooms, each shown by its label (a direct room by the other person's
 * name, never by its opaque room name). No DOM here; `fetch` is injectable.
 */

/** How many rooms the list asks for at once. */
export const ROOMS_LIMIT = 1000;

/**
 * `open` (anyone signed in), `private` (its members), `direct` (two people).
 * @typedef {"open" | "private" | "direct"} RoomKind
 */

/**
 * One room of the list; `peer` is the other person of a direct room, else null. With accounts,
 * `lastRead` is the person's read marker and `mentions` how many messages after it mention them;
 * null where the server keeps no markers.
 * @typedef {{
 *   room: string, kind: RoomKind, peer: string | null, users: number, lastId: number,
 *   lastRead: number | null, mentions: number | null
 * }} RoomEntry
 */

const KINDS = new Set(["open", "private", "direct"]);

/**
 * The entries of a `/rooms` answer (`with` names the other person of a direct room); malformed
 * ones are dropped, and a missing kind (open mode) is `open`.
 * @param {unknown} data
 * @returns {RoomEntry[]}
 */
export function readRooms(data) {
  if (!Array.isArray(data)) return [];
  /** @type {RoomEntry[]} */
  const entries = [];
  for (const value of data) {
    if (typeof value !== "object" || value === null || typeof value.room !== "string") continue;
    const kind = KINDS.has(value.kind) ? /** @type {RoomKind} */ (value.kind) : "open";
    const peer = kind === "direct" && typeof value.with === "string" ? value.with : null;
    entries.push({
      room: value.room,
      kind,
      peer,
      users: Number.isSafeInteger(value.users) ? value.users : 0,
      lastId: Number.isSafeInteger(value.lastId) ? value.lastId : 0,
      lastRead: Number.isSafeInteger(value.lastRead) ? value.lastRead : null,
      mentions: Number.isSafeInteger(value.mentions) ? value.mentions : null,
    });
  }
  return entries;
}

/**
 * How a room is named on the page: a direct room by the other person, any other by its name.
 * @param {{ room: string, kind: RoomKind, peer: string | null }} entry
 * @returns {string}
 */
export function roomLabel(entry) {
  return entry.kind === "direct" && entry.peer ? entry.peer : entry.room;
}

/**
 * The rooms in the two groups the page lists, each in label order: rooms (open and private), and
 * direct rooms.
 * @param {readonly RoomEntry[]} entries
 * @returns {{ rooms: RoomEntry[], direct: RoomEntry[] }}
 */
export function groupRooms(entries) {
  /** @param {RoomEntry} a @param {RoomEntry} b */
  const byLabel = (a, b) =>
    roomLabel(a).localeCompare(roomLabel(b), undefined, { sensitivity: "base" });
  return {
    rooms: entries.filter((e) => e.kind !== "direct").sort(byLabel),
    direct: entries.filter((e) => e.kind === "direct").sort(byLabel),
  };
}

/**
 * Fetches the rooms the person may open; throws an Error with the server's reason on failure.
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<RoomEntry[]>}
 */
export async function fetchRooms(fetchFn = fetch) {
  const response = await fetchFn(`/rooms?limit=${ROOMS_LIMIT}`, {
    headers: { Accept: "application/json" },
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch { /* handled below */ }
  if (!response.ok) {
    const reason = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
    throw new Error(`Could not list the rooms: ${reason}`);
  }
  return readRooms(data);
}

/**
 * The rooms the person may open, as last listed, and rooms known before the list says so (one
 * just made); a room it does not know is an open room.
 */
export class RoomDirectory {
  /** @type {RoomEntry[]} */ #entries = [];
  /** How many times the list was asked for. */
  #asked = 0;

  /** @returns {readonly RoomEntry[]} */
  get entries() {
    return this.#entries;
  }

  /**
   * The entry of `room`.
   * @param {string} room
   * @returns {RoomEntry}
   */
  entry(room) {
    return this.#entries.find((entry) => entry.room === room) ??
      { room, kind: "open", peer: null, users: 0, lastId: 0, lastRead: null, mentions: null };
  }

  /**
   * Records what is known of `room` until the list is read again, unless the list has it.
   * @param {string} room
   * @param {RoomKind} kind
   * @param {string | null} peer
   */
  know(room, kind, peer) {
    if (this.#entries.some((entry) => entry.room === room)) return;
    const entry = { room, kind, peer, users: 0, lastId: 0, lastRead: null, mentions: null };
    this.#entries = [...this.#entries, entry];
  }

  /**
   * Reads the list again; throws (keeping the old list) if it cannot. Answers may come back out of
   * order, and an older one would undo what a newer one said: only the answer to the latest
   * request is kept, and the call says whether its answer was.
   * @param {typeof fetch} [fetchFn]
   * @returns {Promise<boolean>}
   */
  async refresh(fetchFn) {
    const asked = ++this.#asked;
    const entries = await fetchRooms(fetchFn);
    if (asked !== this.#asked) return false;
    this.#entries = entries;
    return true;
  }

  /** Forgets every room (the person signed out). */
  clear() {
    this.#entries = [];
  }
}
