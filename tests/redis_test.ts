/**
 * Several instances share rooms through a real `redis-server`, started here on a free port. Where
 * it is not installed the tests are skipped with the reason, except in CI, where they fail.
 * Restarts of Redis under traffic are in `redis_restart_test.ts`.
 */
import assert from "node:assert/strict";
import { RedisBus } from "../chat/bus.ts";
import { HistoryStore } from "../chat/history.ts";
import { type RoomEvent, Rooms } from "../chat/room.ts";
import { type RedisServer, sayIfSkipped, skipRedis, startRedis } from "./redis_server.ts";
import {
  historyOf,
  joinRoom,
  postMessage,
  startTestServer,
  TestClient,
  type TestServer,
  Wakeup,
  within,
} from "./support.ts";

sayIfSkipped("redis_test");

/** Runs `fn` with a redis-server that keeps every write, in a temporary directory. */
async function withRedis(fn: (redis: RedisServer, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "parley-redis-" });
  const redis = await startRedis(dir, { persist: true });
  try {
    await fn(redis, dir);
  } finally {
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skipRedis, fn });

test("two instances share a room: messages in one order, presence, and dedupe by clientId", async () => {
  await withRedis(async (redis) => {
    await using a = await startTestServer({ redis: redis.url });
    await using b = await startTestServer({ redis: redis.url });
    const { client: ann } = await joinRoom(a, { room: "shared", userName: "ann" });
    const { client: bob } = await joinRoom(b, { room: "shared", userName: "bob" });
    assert.deepEqual((await ann.waitFor("join", 1))[0].users, ["ann", "bob"]);
    ann.send({ type: "message", body: "from a", clientId: "a1" });
    bob.send({ type: "message", body: "from b", clientId: "b1" });
    for (const client of [ann, bob]) {
      const messages = await client.waitFor("message", 2);
      assert.deepEqual(messages.map((m) => m.id), [1, 2]);
      assert.deepEqual(messages.map((m) => m.body).sort(), ["from a", "from b"]);
      // Through Redis, and from the history each instance records, the clientId comes along.
      assert.deepEqual(messages.map((m) => m.clientId).sort(), ["a1", "b1"]);
    }
    // Replayed from the history instance b recorded, the clientId comes along too.
    const { client: cat } = await joinRoom(b, { room: "shared", userName: "cat", since: "0" });
    assert.deepEqual(
      (await cat.waitFor("message", 2)).map((m) => [m.id, m.clientId]),
      (await ann.waitFor("message", 2)).map((m) => [m.id, m.clientId]),
    );
    await cat.close();
    // The same clientId through the other instance is the same message.
    const { client: annOnB } = await joinRoom(b, { room: "shared", userName: "ann", since: "2" });
    annOnB.send({ type: "message", body: "from a", clientId: "a1" });
    const ack = await annOnB.next("ack");
    assert.equal(ack.id, (await ann.waitFor("ack", 1))[0].id);
    for (const server of [a, b]) {
      assert.deepEqual((await historyOf(server, "shared")).map((m) => m.id), [1, 2]);
    }
    await Promise.all([ann.close(), bob.close(), annOnB.close()]);
  });
});

test("an instance that joins later catches up from the stream", async () => {
  await withRedis(async (redis) => {
    await using a = await startTestServer({ redis: redis.url });
    for (let i = 1; i <= 5; i++) assert.equal((await postMessage(a, "late", "bot", `m${i}`)).id, i);
    await using c = await startTestServer({ redis: redis.url });
    const { client, welcome } = await joinRoom(c, { room: "late", userName: "cat" });
    assert.equal(welcome.lastId, 5);
    const replay = await client.waitFor("message", 5);
    assert.deepEqual(replay.map((m) => m.body), ["m1", "m2", "m3", "m4", "m5"]);
    await client.close();
  });
});

test("an instance started later has every room's history at once, though nobody joined there", async () => {
  await withRedis(async (redis) => {
    const writer = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
    const first = await RedisBus.connect(redis.url, writer, 100, assert.fail);
    for (const room of ["north", "south", "south"]) {
      await first.append({ room, userName: "bot", body: `to ${room}` });
    }
    const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
    const later = await RedisBus.connect(redis.url, history, 100, assert.fail);
    const heard = new Wakeup();
    later.onEvent(heard.wake);
    await heard.until(
      () => history.lastId("north") === 1 && history.lastId("south") === 2,
      "the later instance to catch up both rooms",
    );
    assert.deepEqual(history.recent("south", 10).map((m) => [m.id, m.body]), [
      [1, "to south"],
      [2, "to south"],
    ]);
    await Promise.all([first.close(), later.close()]);
    await Promise.all([writer.close(), history.close()]);
  });
});

test("a client that says hello while its room catches up joins once, under the name it gave first", async () => {
  await withRedis(async (redis) => {
    await using server = await startTestServer({ redis: redis.url });
    // For a second Redis answers no one, so the new room's catch-up, and the join, wait for it.
    const pause = await new Deno.Command("redis-cli", {
      args: ["-p", String(redis.port), "CLIENT", "PAUSE", "1000", "ALL"],
      stdout: "null",
    }).output();
    assert.ok(pause.success);
    await using client = new TestClient(server.wsUrl({ room: "paused", userName: "ann" }));
    await within(client.opened, "the upgrade");
    client.send({ type: "hello", userName: "bob" });
    client.send({ type: "hello", userName: "ann" });
    assert.equal((await client.next("error")).code, "bad_name");
    assert.equal((await client.next("welcome")).userName, "ann");
    client.send({ type: "message", body: "once", clientId: "1" });
    // Through Redis the ack may overtake the message itself.
    await client.next("ack");
    await client.waitFor("message", 1);
    assert.deepEqual(client.events.map((e) => e.type).sort(), [
      "ack",
      "error",
      "message",
      "welcome",
    ]);
  });
});

test("while Redis is down a message is refused with unavailable, and is stored once it is back", async () => {
  await withRedis(async (redis, dir) => {
    const server: TestServer = await startTestServer({ redis: redis.url });
    const { client } = await joinRoom(server, { room: "r", userName: "ann" });
    client.send({ type: "message", body: "before", clientId: "1" });
    await client.next("ack");
    await redis.stop();
    client.send({ type: "message", body: "during", clientId: "2" });
    const error = await client.next("error");
    assert.equal(error.code, "unavailable");
    assert.equal(error.clientId, "2");
    assert.match(error.message, /same clientId/);
    const again = await startRedis(dir, { persist: true, port: redis.port });
    try {
      // The client retries with the same clientId until the server has reconnected.
      let retrying = true;
      const ack = await within(
        (async () => {
          while (retrying) {
            client.send({ type: "message", body: "during", clientId: "2" });
            let event = await client.next();
            while (event.type !== "ack" && event.type !== "error") event = await client.next();
            if (event.type === "ack") return event;
            assert.equal(event.code, "unavailable");
            // The client's retry pacing, as a real client's backoff: not a wait for an event.
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })(),
        "an ack once Redis is back",
        15_000,
      ).finally(() => retrying = false);
      assert.equal(ack?.id, 2);
      const messages = await client.waitFor("message", 2);
      assert.deepEqual(messages.map((m) => m.body), ["before", "during"]);
    } finally {
      await client.close();
      await server.close();
      await again.stop();
    }
  });
});

test("an instance shuts down at once while Redis is away", async () => {
  await withRedis(async (redis) => {
    const server = await startTestServer({ redis: redis.url });
    await redis.stop();
    await within(server.close(), "the shutdown without Redis");
  });
});

test("an instance that goes silent stops counting anyone as present", async () => {
  await withRedis(async (redis) => {
    const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
    const errors: string[] = [];
    const fail = (message: string) => errors.push(message);
    const listener = await RedisBus.connect(redis.url, history, 100, fail, 0.1);
    const rooms = new Rooms(history, listener, fail);
    const events: RoomEvent[] = [];
    const heard = new Wakeup();
    const subscription = rooms.get("r").subscribe();
    const reading = (async () => {
      for await (const batches of subscription) {
        events.push(...batches.flatMap((batch) => batch.events));
        heard.wake();
      }
    })();
    const crashing = await RedisBus.connect(redis.url, history, 100, fail, 60);
    crashing.announce("r", ["zoe"]);
    await heard.until(() => events.some((e) => e.type === "join" && e.userName === "zoe"), "zoe");
    assert.equal(rooms.presence().get("r"), 1);
    // Gone without a word: its heartbeat stops, and so does its presence, after 3 x 0.1 s.
    await crashing.close();
    await heard.until(
      () => events.some((e) => e.type === "leave" && e.userName === "zoe"),
      "zoe to be forgotten",
    );
    assert.equal(rooms.presence().get("r"), 0);
    subscription.close();
    await reading;
    await listener.close();
    await history.close();
    assert.deepEqual(errors, []);
  });
});
