/**
 * A room's fan-out, read through its subscriptions: the real room, history store (in memory) and
 * bus of a single process.
 */
import assert from "node:assert/strict";
import { LocalBus } from "../chat/bus.ts";
import { HistoryStore } from "../chat/history.ts";
import type { ChatMessage } from "../chat/message.ts";
import { type Batch, HANDOVER_CHUNK, Rooms, type Subscription } from "../chat/room.ts";
import { within } from "./support.ts";

function message(id: number): ChatMessage {
  return { id, room: "big", userName: "ann", body: `m${id}`, timestamp: new Date().toISOString() };
}

/** Reads a subscription, keeping what each iteration yielded as the message ids of its batches. */
function reader(subscription: Subscription) {
  const reads: number[][] = [];
  let woken = () => {};
  (async () => {
    for await (const batches of subscription) {
      reads.push(batches.flatMap((batch: Batch) => batch.messageIds));
      woken();
    }
  })();
  return {
    reads,
    /** Waits until `count` messages have been read. */
    until(count: number): Promise<void> {
      return within(
        (async () => {
          while (reads.flat().length < count) await new Promise<void>((r) => woken = r);
        })(),
        `${count} messages`,
      );
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

  room.accept(message(1));
  // The first slice reads message 1 before this turn ends; the last subscriber is due next turn.
  await first.until(1);
  assert.deepEqual(last.reads, []);
  room.accept(message(2));
  await Promise.all(readers.map((r) => r.until(2)));

  assert.deepEqual(first.reads, [[1], [2]]);
  assert.deepEqual(last.reads, [[1, 2]]);
  for (const r of readers) assert.deepEqual(r.reads.flat(), [1, 2]);
  for (const subscription of subscriptions) subscription.close();
  await history.close();
});
