/**
 * Who is present: the bookkeeping of {@link Presence} on its own, then rooms of several workers on
 * a real `BroadcastChannel`, whose heartbeat keeps the living present and forgets the dead.
 */
import assert from "node:assert/strict";
import { LocalBus } from "../chat/bus.ts";
import { HistoryStore } from "../chat/history.ts";
import { MAX_LISTED_USERS, Presence, SILENCE_FACTOR } from "../chat/presence.ts";
import { type RoomEvent, Rooms } from "../chat/room.ts";
import { Wakeup } from "./support.ts";

Deno.test("a name joins with its first connection here and leaves with its last", () => {
  const presence = new Presence();
  assert.equal(presence.join("r", "ann"), "room");
  assert.equal(presence.join("r", "ann"), "none");
  assert.equal(presence.join("r", "bob"), "room");
  assert.deepEqual([presence.users("r"), presence.count("r")], [["ann", "bob"], 2]);
  assert.equal(presence.leave("r", "ann"), "none");
  assert.equal(presence.leave("r", "ann"), "room");
  assert.equal(presence.leave("r", "ann"), "none", "a name that is not here");
  assert.deepEqual(presence.local("r"), ["bob"]);
  assert.equal(presence.leave("r", "bob"), "room");
  assert.deepEqual(presence.counts(), new Map());
});

Deno.test("a source's snapshots join and leave only the names that changed in the room", () => {
  const presence = new Presence();
  presence.join("r", "ann");
  assert.deepEqual(presence.announced("r", "w2", ["ann", "bob"], 0), {
    room: "r",
    joined: ["bob"],
    left: [],
  });
  assert.deepEqual(presence.announced("r", "w3", ["bob", "cat"], 0).joined, ["cat"]);
  assert.deepEqual(presence.users("r"), ["ann", "bob", "cat"]);
  // ann is still present through w2: her last connection here changes this process's list only.
  assert.equal(presence.leave("r", "ann"), "local");
  assert.deepEqual(presence.local("r"), []);
  assert.deepEqual(presence.announced("r", "w2", [], 0), { room: "r", joined: [], left: ["ann"] });
  assert.deepEqual(presence.announced("r", "w3", ["cat"], 0).left, ["bob"]);
  assert.deepEqual(presence.counts(), new Map([["r", 1]]));
  // A name that arrives here while present elsewhere is new to this process, not to the room.
  assert.equal(presence.join("r", "cat"), "local");
});

Deno.test("a room lists its first 100 names in order of arrival and counts them all", () => {
  const presence = new Presence();
  const many = Array.from({ length: 150 }, (_, i) => `u${i}`);
  for (const name of many.slice(0, 120)) presence.join("big", name);
  presence.announced("big", "w2", many.slice(100), 0);
  assert.equal(presence.count("big"), 150);
  assert.deepEqual(presence.users("big"), many.slice(0, MAX_LISTED_USERS));
});

Deno.test("a source not heard from for three announce intervals is forgotten, with its people", () => {
  const presence = new Presence();
  const interval = 1000;
  presence.announced("a", "quiet", ["zoe", "ann"], 0);
  presence.announced("b", "quiet", ["zoe"], 0);
  presence.announced("a", "alive", ["ann"], 0);
  presence.join("a", "me");
  presence.announced("a", "alive", ["ann"], 2 * interval);
  assert.deepEqual(presence.expire(interval, SILENCE_FACTOR * interval - 1), []);
  assert.deepEqual(presence.expire(interval, SILENCE_FACTOR * interval), [
    { room: "a", joined: [], left: ["zoe"] },
    { room: "b", joined: [], left: ["zoe"] },
  ]);
  assert.deepEqual(presence.users("a"), ["ann", "me"]);
  assert.deepEqual(presence.expire(interval, (SILENCE_FACTOR + 2) * interval), [
    { room: "a", joined: [], left: ["ann"] },
  ]);
  assert.deepEqual(presence.counts(), new Map([["a", 1]]), "this process's own names stay");
});

/** The presence events a room's subscriber sees. */
function watch(rooms: Rooms, room: string) {
  const events: RoomEvent[] = [];
  const seen = new Wakeup();
  const subscription = rooms.get(room).subscribe();
  const reading = (async () => {
    for await (const batches of subscription) {
      events.push(...batches.flatMap((batch) => batch.events));
      seen.wake();
    }
  })();
  return {
    events,
    until: (found: (event: RoomEvent) => boolean, what: string) =>
      seen.until(() => events.some(found), what),
    async close() {
      subscription.close();
      await reading;
    },
  };
}

Deno.test("workers on a BroadcastChannel: a worker that stops beating has its people gone; a living one keeps them", async () => {
  const channel = `parley-presence-test-${crypto.randomUUID()}`;
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
  // Short, but long enough that a busy machine does not make a living worker look silent.
  const seconds = 0.25;
  const buses = [0, 1, 2].map(() => new LocalBus(history, channel, seconds));
  const [listenerBus, livingBus, dyingBus] = buses;
  const listener = new Rooms(history, listenerBus, assert.fail);
  const living = new Rooms(history, livingBus, assert.fail);
  const watcher = watch(listener, "r");
  const ann = living.get("r");
  ann.hold();
  ann.join("ann");
  await watcher.until((e) => e.type === "join" && e.userName === "ann", "ann");
  // A worker that dies says nothing: its last word is that zoe is here.
  dyingBus.announce("r", ["zoe"]);
  await watcher.until((e) => e.type === "join" && e.userName === "zoe", "zoe");
  await dyingBus.close();
  await watcher.until((e) => e.type === "leave" && e.userName === "zoe", "zoe to be forgotten");
  // ann was announced before zoe: she is still here only because her worker kept announcing her.
  assert.deepEqual(listener.get("r").users, ["ann"]);
  assert.equal(watcher.events.filter((e) => e.type === "leave").length, 1);
  ann.leave("ann");
  await watcher.until((e) => e.type === "leave" && e.userName === "ann", "ann to leave");
  ann.release();
  await watcher.close();
  await Promise.all([listenerBus.close(), livingBus.close()]);
  await history.close();
});
