// @ts-check
/**
 * Which rooms hold something the person has not read, and how many messages there mention them:
 * per room the newest id in its log against the person's read marker. With accounts the server
 * keeps the markers (`welcome.lastRead`, `/rooms` `lastRead` and `mentions`), so they follow the
 * person across devices; without, they are kept in this browser's storage. Summaries move rooms'
 * newest ids on without a reload. A marker never moves backwards. No DOM here.
 */

/** Where markers are kept in open mode. */
export const READ_KEY = "parley.read";

/**
 * The part of `localStorage` the tracker uses.
 * @typedef {{ getItem(key: string): string | null, setItem(key: string, value: string): void }}
 *   StorageLike
 */

/**
 * What the tracker knows of a room.
 * @typedef {{ lastId: number, read: number, mentions: number }} RoomReading
 */

/** The read state of every room the page knows of. */
export class UnreadTracker {
  /** @type {Map<string, RoomReading>} */ #rooms = new Map();
  /** @type {StorageLike | null} */ #storage;

  /** @param {StorageLike | null} storage where markers are kept; null when the server keeps them */
  constructor(storage = null) {
    this.#storage = storage;
    for (const [room, read] of Object.entries(this.#stored())) this.#reading(room).read = read;
  }

  /**
   * Whether the room has events after the person's marker. (Edits and reactions count: they are
   * in the same log.)
   * @param {string} room
   */
  isUnread(room) {
    const reading = this.#rooms.get(room);
    return reading !== undefined && reading.lastId > reading.read;
  }

  /**
   * How many unread messages mention the person in the room.
   * @param {string} room
   */
  mentions(room) {
    return this.#rooms.get(room)?.mentions ?? 0;
  }

  /**
   * The person's marker in the room (0 when there is none).
   * @param {string} room
   */
  readUpTo(room) {
    return this.#rooms.get(room)?.read ?? 0;
  }

  /**
   * What `/rooms` said: each room's newest id and, with accounts, the marker and mentions.
   * @param {readonly { room: string, lastId: number, lastRead: number | null,
   *   mentions: number | null }[]} entries
   */
  listed(entries) {
    for (const entry of entries) {
      const reading = this.#reading(entry.room);
      reading.lastId = Math.max(reading.lastId, entry.lastId);
      if (entry.lastRead !== null) reading.read = Math.max(reading.read, entry.lastRead);
      if (entry.mentions !== null) reading.mentions = entry.mentions;
    }
  }

  /**
   * A summary: rooms whose newest id moved, with the new messages mentioning the person. The room
   * on screen is not counted: the person is reading it. Returns the rooms with new mentions.
   * @param {readonly import("./protocol.js").RoomSummary[]} rooms
   * @param {string} current
   * @returns {string[]}
   */
  summary(rooms, current) {
    /** @type {string[]} */
    const mentioned = [];
    for (const summary of rooms) {
      const reading = this.#reading(summary.room);
      reading.lastId = Math.max(reading.lastId, summary.lastId);
      if (summary.room === current || summary.mentions === 0) continue;
      reading.mentions += summary.mentions;
      mentioned.push(summary.room);
    }
    return mentioned;
  }

  /**
   * A welcome for the room: its newest id and, with accounts, the marker the server has.
   * @param {string} room
   * @param {number} lastId
   * @param {number | null} lastRead
   */
  welcomed(room, lastId, lastRead) {
    const reading = this.#reading(room);
    reading.lastId = Math.max(reading.lastId, lastId);
    if (lastRead !== null) reading.read = Math.max(reading.read, lastRead);
  }

  /**
   * Something newer arrived in the room on screen.
   * @param {string} room
   * @param {number} id
   */
  seen(room, id) {
    const reading = this.#reading(room);
    reading.lastId = Math.max(reading.lastId, id);
  }

  /**
   * The person has read the room up to `id`; true when that moved the marker on (the server is
   * then told). Its mentions are read with it.
   * @param {string} room
   * @param {number} id
   * @returns {boolean}
   */
  read(room, id) {
    const reading = this.#reading(room);
    reading.lastId = Math.max(reading.lastId, id);
    reading.mentions = 0;
    if (id <= reading.read) return false;
    reading.read = id;
    this.#store(room, id);
    return true;
  }

  /** @param {string} room */
  #reading(room) {
    let reading = this.#rooms.get(room);
    if (!reading) {
      reading = { lastId: 0, read: 0, mentions: 0 };
      this.#rooms.set(room, reading);
    }
    return reading;
  }

  /** @returns {Record<string, number>} */
  #stored() {
    if (!this.#storage) return {};
    try {
      const value = JSON.parse(this.#storage.getItem(READ_KEY) ?? "{}");
      /** @type {Record<string, number>} */
      const markers = {};
      for (const [room, id] of Object.entries(value)) {
        if (Number.isSafeInteger(id)) markers[room] = Number(id);
      }
      return markers;
    } catch {
      return {}; // storage disabled, or a value this page did not write
    }
  }

  /**
   * @param {string} room
   * @param {number} id
   */
  #store(room, id) {
    if (!this.#storage) return;
    try {
      this.#storage.setItem(READ_KEY, JSON.stringify({ ...this.#stored(), [room]: id }));
    } catch { /* storage may be disabled or full */ }
  }
}
