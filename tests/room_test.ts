/**
 * A room's fan-out, read through its subscriptions: the real room, history store (in memory) and
 * bus of a single process.
 */
import assert from "node:assert/strict";
import { LocalBus } from "../chat/bus.ts";
import { HistoryStore } from "../chat/history.ts";
import { type ChatMessage, messageEvent } from "../chat/message.ts";
import {
  Batch,
  HANDOVER_CHUNK,
  RoomFailedError,
  Rooms,
  SubscriberOverflowError,
  Subscription,
} from "../chat/room.ts";
import { Wakeup } from "./support.ts";

function message(id: number): ChatMessage {
  return { id, room: "big", userName: "ann", body: `m${id}`, timestamp: new Date().toISOString() };
}

/** Reads a subscription, keeping what each iteration yielded as the message ids of its batches. */
function reader(subscription: Subscription) {
  const reads: number[][] = [];
  const read = new Wakeup();
  (async () => {
    for await (const batches of subscription) {
      reads.push(batches.flatMap((batch: Batch) => batch.messageIds));
      read.wake();
    }
  })();
  return {
    reads,
    /** Waits until `count` messages have been read. */
    until(count: number): Promise<void> {
      return read.until(() => reads.flat().length >= count, `${count} messages`);
    },
  };
}

Deno.test("a large room wakes its subscribers a slice per turn; those reached later get everything that arrived meanwhile in one read", async () => {
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
  const rooms = new Rooms(history, new LocalBus(history, null));
  const room = rooms.get("big");
  const subscriptions = Array.from({ length: HANDOVER_CHUNK + 1 }, () => room.subscribe());
  const readers = subscriptions.map(reader);
  const first = readers[0];
  const last = readers[HANDOVER_CHUNK];

  room.accept(messageEvent(message(1)));
  // The first slice reads message 1 before this turn ends; the last subscriber is due next turn.
  await first.until(1);
  assert.deepEqual(last.reads, []);
  room.accept(messageEvent(message(2)));
  await Promise.all(readers.map((r) => r.until(2)));

  assert.deepEqual(first.reads, [[1], [2]]);
  assert.deepEqual(last.reads, [[1, 2]]);
  for (const r of readers) assert.deepEqual(r.reads.flat(), [1, 2]);
  for (const subscription of subscriptions) subscription.close();
  await history.close();
});

Deno.test("what a client missed: the last few for a newcomer, the rest after `since`, and whether that is all", async () => {
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 5 });
  const room = new Rooms(history, new LocalBus(history, null)).get("r");
  /** What the client is replayed, all of it, with `maxReplay` 1000 unless given. */
  const ids = (since: number | null, lastId: number, onJoin: number, maxReplay = 1000) => {
    const { after, recovered } = room.missed(since, lastId, onJoin, maxReplay);
    return { ids: room.replay(after, lastId, 1000).map((m) => m.id), recovered };
  };
  assert.deepEqual(ids(null, 0, 3), { ids: [], recovered: true });
  for (let i = 1; i <= 8; i++) await room.publish({ userName: "ann", body: `m${i}` });
  // Retention keeps ids 4..8.
  assert.deepEqual(ids(null, 8, 3), { ids: [6, 7, 8], recovered: true });
  assert.deepEqual(ids(5, 8, 3), { ids: [6, 7, 8], recovered: true });
  assert.deepEqual(ids(3, 8, 3), { ids: [4, 5, 6, 7, 8], recovered: true });
  assert.deepEqual(ids(2, 8, 3), { ids: [6, 7, 8], recovered: false });
  assert.deepEqual(ids(8, 8, 3), { ids: [], recovered: true });
  // A client that has seen more than the room holds (the store was replaced) starts over.
  assert.deepEqual(ids(20, 8, 3), { ids: [], recovered: false });
  // More than maxReplay missed: the newest onJoin, and not recovered; exactly maxReplay is fine.
  assert.deepEqual(ids(3, 8, 2, 4), { ids: [7, 8], recovered: false });
  assert.deepEqual(ids(4, 8, 2, 4), { ids: [5, 6, 7, 8], recovered: true });
  // A replay is read in chunks, each up to the seam however many are stored after it.
  assert.deepEqual(room.replay(3, 6, 2).map((m) => m.id), [4, 5]);
  assert.deepEqual(room.replay(5, 6, 2).map((m) => m.id), [6]);
  assert.deepEqual(room.replay(6, 6, 2), []);
  await history.close();
});

Deno.test("a subscriber that falls too far behind is told so, even while it waits", async () => {
  const subscription = new Subscription(() => {});
  const waiting = subscription.next();
  // Batches the room queued for it without waking it, past what a subscription may hold.
  for (let i = 0; i < 5000; i++) subscription.push(new Batch());
  await assert.rejects(waiting, SubscriberOverflowError);
});

Deno.test("a room that fails to deliver a message ends its own subscriptions only, and says why once", async () => {
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
  const log = history.log.bind(history);
  history.log = (room, afterId, upTo, limit) => {
    if (room === "broken") throw new Error("the history of broken cannot be read");
    return log(room, afterId, upTo, limit);
  };
  const errors: string[] = [];
  const rooms = new Rooms(history, new LocalBus(history, null), (message) => errors.push(message));
  const broken = rooms.get("broken");
  const victim = broken.subscribe();
  const subscription = rooms.get("fine").subscribe();
  const fine = reader(subscription);
  // Stored behind the room's back: the next message leaves a gap it must fill from the history.
  await history.append({ room: "broken", userName: "ann", body: "unseen" });
  const published = await broken.publish({ userName: "ann", body: "after the gap" });
  assert.equal(published.message.id, 2, "the message was stored, and its sender is told so");
  await assert.rejects(victim.next(), RoomFailedError);
  await rooms.get("fine").publish({ userName: "bob", body: "unaffected" });
  await fine.until(1);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /broken cannot be read\n\s+at /);
  subscription.close();
  await history.close();
});

Deno.test("a batch without the messages up to a seam keeps its other events, and is itself when it has none of them", () => {
  const batch = new Batch();
  batch.add({ type: "message", ...message(4) });
  batch.add({ type: "join", userName: "bob", users: ["ann", "bob"] });
  batch.add({ type: "message", ...message(5) });
  assert.equal(batch.after(3), batch);
  const rest = batch.after(4);
  assert.deepEqual(rest.events.map((e) => e.type), ["join", "message"]);
  assert.deepEqual([rest.messageCount, rest.lastId, rest.messageIds], [1, 5, [5]]);
  assert.deepEqual(batch.after(5).events.map((e) => e.type), ["join"]);
});

Deno.test("a gap is filled from the store with every kind: changes, and a deleted message's delete instead of it", async () => {
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
  const room = new Rooms(history, new LocalBus(history, null)).get("g");
  const subscription = room.subscribe();
  const seen: [string, number][] = [];
  const read = new Wakeup();
  (async () => {
    for await (const batches of subscription) {
      for (const batch of batches) {
        for (const event of batch.events) if ("id" in event) seen.push([event.type, event.id]);
      }
      read.wake();
    }
  })();
  // Stored behind the room's back, as another worker would.
  const who = { room: "g", userName: "ann", author: null };
  await history.append({ ...who, body: "one" });
  await history.append({ ...who, body: "two" });
  await history.change({ ...who, type: "delete", messageId: 2 });
  await history.change({ ...who, type: "edit", messageId: 1, body: "one, edited" });
  const last = await history.append({ ...who, body: "five" });
  room.accept(messageEvent(last.message));
  await read.until(() => seen.length >= 4, "the gap and the message");
  assert.deepEqual(seen, [["message", 1], ["delete", 3], ["edit", 4], ["message", 5]]);
  const batch = new Batch();
  batch.add({
    type: "edit",
    id: 7,
    room: "g",
    messageId: 1,
    userName: "a",
    body: "b",
    timestamp: "t",
  });
  batch.add({ type: "message", ...message(8) });
  assert.deepEqual(
    batch.after(7).events.map((e) => e.type),
    ["message"],
    "a seam drops changes too",
  );
  subscription.close();
  await history.close();
});
