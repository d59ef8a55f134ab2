/**
 * Unread rooms (static/unread.js): a room is unread while its log has ids past the person's read
 * marker; mentions are counted from /rooms and summaries; a marker never moves backwards; with no
 * server markers (open mode) they are kept in storage.
 */
import assert from "node:assert/strict";
import { READ_KEY, UnreadTracker } from "../static/unread.js";

class MemoryStorage {
  values = new Map<string, string>();
  getItem(key: string): string | null {
    return this.values.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.values.set(key, value);
  }
}

const listed = (
  room: string,
  lastId: number,
  lastRead: number | null,
  mentions: number | null,
) => ({
  room,
  lastId,
  lastRead,
  mentions,
});

Deno.test("with server markers: /rooms says what is unread and how many mention me", () => {
  const unread = new UnreadTracker();
  unread.listed([listed("ops", 10, 10, 0), listed("dev", 12, 7, 2), listed("new", 3, 0, 0)]);
  assert.equal(unread.isUnread("ops"), false);
  assert.equal(unread.isUnread("dev"), true);
  assert.equal(unread.mentions("dev"), 2);
  assert.equal(unread.isUnread("new"), true);
  assert.equal(unread.isUnread("unknown"), false);
  // Another device read dev meanwhile: the next list says so.
  unread.listed([listed("dev", 12, 12, 0)]);
  assert.equal(unread.isUnread("dev"), false);
  assert.equal(unread.mentions("dev"), 0);
});

Deno.test("summaries move rooms on and add their mentions, except for the room on screen", () => {
  const unread = new UnreadTracker();
  unread.listed([listed("ops", 5, 5, 0), listed("dev", 5, 5, 0)]);
  const mentioned = unread.summary([
    { room: "ops", lastId: 8, mentions: 1 },
    { room: "dev", lastId: 9, mentions: 2 },
  ], "dev");
  assert.deepEqual(mentioned, ["ops"]);
  assert.equal(unread.isUnread("ops"), true);
  assert.equal(unread.mentions("ops"), 1);
  assert.equal(unread.mentions("dev"), 0, "the room on screen is being read");
  unread.summary([{ room: "ops", lastId: 9, mentions: 2 }], "dev");
  assert.equal(unread.mentions("ops"), 3);
  // An older summary (or list) never moves a room back.
  unread.summary([{ room: "ops", lastId: 4, mentions: 0 }], "dev");
  assert.equal(unread.isUnread("ops"), true);
});

Deno.test("reading moves the marker forward only, and reads the mentions with it", () => {
  const unread = new UnreadTracker();
  unread.welcomed("ops", 20, 15);
  assert.equal(unread.readUpTo("ops"), 15);
  assert.equal(unread.isUnread("ops"), true);
  unread.summary([{ room: "ops", lastId: 21, mentions: 1 }], "lobby");
  assert.equal(unread.read("ops", 21), true, "moved: the server is told");
  assert.equal(unread.isUnread("ops"), false);
  assert.equal(unread.mentions("ops"), 0);
  assert.equal(unread.read("ops", 21), false, "the same marker again is not news");
  assert.equal(unread.read("ops", 3), false, "never backwards");
  assert.equal(unread.readUpTo("ops"), 21);
  unread.seen("ops", 22);
  assert.equal(unread.isUnread("ops"), true);
  // A welcome's marker below the one here is older news.
  unread.welcomed("ops", 22, 10);
  assert.equal(unread.readUpTo("ops"), 21);
});

Deno.test("without server markers they are kept in storage, and read back next time", () => {
  const storage = new MemoryStorage();
  const first = new UnreadTracker(storage);
  first.welcomed("lobby", 9, null);
  assert.equal(first.isUnread("lobby"), true);
  first.read("lobby", 9);
  first.read("ops", 4);
  assert.deepEqual(JSON.parse(storage.getItem(READ_KEY)!), { lobby: 9, ops: 4 });
  const later = new UnreadTracker(storage);
  assert.equal(later.readUpTo("lobby"), 9);
  later.welcomed("lobby", 12, null);
  assert.equal(later.isUnread("lobby"), true);
  // Something else in storage is ignored, not trusted.
  storage.setItem(READ_KEY, '{"lobby":"9","ops":2}');
  assert.equal(new UnreadTracker(storage).readUpTo("lobby"), 0);
  storage.setItem(READ_KEY, "not json");
  assert.equal(new UnreadTracker(storage).readUpTo("ops"), 0);
});
