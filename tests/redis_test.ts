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
import { ClientIdReusedError } from "../chat/history.ts";
import { COMMAND_TIMEOUT_MS } from "../chat/redis_link.ts";
import { RedisProxy } from "./redis_proxy.ts";
import {
  type Event,
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

/** Runs `fn` with a server whose shutdown must take at most a few seconds, whatever Redis does. */
async function withBoundedServer(
  overrides: Record<string, unknown>,
  fn: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await startTestServer(overrides);
  try {
    await fn(server);
  } finally {
    await within(server.close(), "the server to shut down", 5000);
  }
}

/**
 * Sends the message until it is acked, again with the same clientId after each `unavailable`,
 * as a client does while Redis is away; fails on any other error.
 */
async function resendUntilAcked(
  client: TestClient,
  message: { body: string; clientId: string },
  ms = 15_000,
): Promise<Event> {
  let retrying = true;
  return await within(
    (async () => {
      while (retrying) {
        client.send({ type: "message", ...message });
        let event = await client.next();
        while (event.type !== "ack" && event.type !== "error") event = await client.next();
        if (event.type === "ack") return event;
        assert.equal(event.code, "unavailable", event.message);
        // The client's retry pacing, as a real client's backoff: not a wait for an event.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error("gave up");
    })(),
    `an ack for ${message.clientId}`,
    ms,
  ).finally(() => retrying = false);
}

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
      const ack = await resendUntilAcked(client, { body: "during", clientId: "2" });
      assert.equal(ack.id, 2);
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

test("through Redis, a clientId used again for a different message is refused on any instance", async () => {
  await withRedis(async (redis) => {
    await using a = await startTestServer({ redis: redis.url });
    await using b = await startTestServer({ redis: redis.url });
    const { client: ann } = await joinRoom(a, { room: "claims", userName: "ann" });
    ann.send({ type: "message", body: "mine", clientId: "c-1" });
    assert.equal((await ann.next("ack")).id, 1);
    const { client: fake } = await joinRoom(b, { room: "claims", userName: "ann", since: "1" });
    fake.send({ type: "message", body: "not hers", clientId: "c-1" });
    const error = await fake.next("error");
    assert.equal(error.code, "bad_frame");
    assert.equal(error.clientId, "c-1");
    assert.match(error.message, /clientId "c-1" was already used for a different message/);
    fake.send({ type: "message", body: "mine", clientId: "c-1" });
    assert.equal((await fake.next("ack")).id, 1);
    await Promise.all([ann.close(), fake.close()]);
    // An instance that has not the original either: Redis's script tells them apart.
    const fresh = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
    const bus = await RedisBus.connect(redis.url, fresh, 100, assert.fail);
    await assert.rejects(
      bus.append({ room: "claims", userName: "ann", body: "not hers", clientId: "c-1" }),
      ClientIdReusedError,
    );
    const again = await bus.append({
      room: "claims",
      userName: "ann",
      body: "mine",
      clientId: "c-1",
    });
    assert.deepEqual([again.duplicate, again.message.id], [true, 1]);
    await bus.close();
    await fresh.close();
    for (const server of [a, b]) {
      assert.deepEqual((await historyOf(server, "claims")).map((m) => m.body), ["mine"]);
    }
  });
});

test("a connection cut off in its handshake is made again, instead of looking ready and never answering", async () => {
  await withRedis(async (redis) => {
    await using proxy = RedisProxy.start(redis.port);
    await withBoundedServer({ redis: proxy.url }, async (server) => {
      const { client } = await joinRoom(server, { room: "cut", userName: "ann" });
      // As Redis dies, it accepts the instance's reconnections and drops them mid-handshake.
      proxy.cutHandshakes(4);
      proxy.dropAll();
      const ack = await resendUntilAcked(client, { body: "after the cut", clientId: "c-1" });
      assert.equal(ack.id, 1);
      assert.deepEqual((await historyOf(server, "cut")).map((m) => m.body), ["after the cut"]);
      await client.close();
    });
  });
});

test("a call Redis never answers fails with unavailable within seconds, and the connection is made again", async () => {
  await withRedis(async (redis) => {
    await using proxy = RedisProxy.start(redis.port);
    await withBoundedServer({ redis: proxy.url }, async (server) => {
      const { client } = await joinRoom(server, { room: "stalled", userName: "ann" });
      // The connections stay open and carry nothing, as across a broken network.
      proxy.stallAll();
      const sent = Date.now();
      client.send({ type: "message", body: "into the void", clientId: "s-1" });
      const error = await client.next("error");
      assert.equal(error.code, "unavailable");
      assert.equal(error.clientId, "s-1");
      const waited = Date.now() - sent;
      assert.ok(waited < COMMAND_TIMEOUT_MS + 2000, `refused after ${waited} ms`);
      const ack = await resendUntilAcked(client, { body: "into the void", clientId: "s-1" });
      assert.equal(ack.id, 1);
      await client.close();
    });
  });
});

test("a subscription that goes silent is made again", async () => {
  await withRedis(async (redis) => {
    await using proxy = RedisProxy.start(redis.port);
    const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
    const errors: string[] = [];
    const reported = new Wakeup();
    const onError = (message: string) => {
      errors.push(message);
      reported.wake();
    };
    const listener = await RedisBus.connect(proxy.url, history, 100, onError, 0.2);
    const heard = new Wakeup();
    listener.onEvent(heard.wake);
    const elsewhere = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 100 });
    const writer = await RedisBus.connect(redis.url, elsewhere, 100, assert.fail, 60);
    // Both of the listener's connections stay open and carry nothing.
    proxy.stallAll();
    await reported.until(
      () => errors.some((e) => e.includes("heard nothing on the subscription")),
      "the listener to notice",
      15_000,
    );
    // Published after it noticed, so only a working subscription (or a new catch-up) brings it.
    await writer.append({ room: "quiet", userName: "bot", body: "anyone there?" });
    await heard.until(() => history.lastId("quiet") === 1, "the listener to hear again");
    await Promise.all([listener.close(), writer.close()]);
    await Promise.all([history.close(), elsewhere.close()]);
  });
});

test("after Redis comes back empty, ids go on and a resend is still recognised", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-redis-" });
  let redis = await startRedis(dir, { persist: false });
  try {
    await using server = await startTestServer({ redis: redis.url });
    const { client } = await joinRoom(server, { room: "reset", userName: "ann" });
    client.send({ type: "message", body: "before", clientId: "c-1" });
    assert.equal((await client.next("ack")).id, 1);
    await redis.stop();
    redis = await startRedis(dir, { persist: false, port: redis.port });
    // Redis forgot c-1; the instance has it.
    const resent = await resendUntilAcked(client, { body: "before", clientId: "c-1" });
    assert.equal(resent.id, 1);
    client.send({ type: "message", body: "reused", clientId: "c-1" });
    assert.equal((await client.next("error")).code, "bad_frame");
    // Ids go on above the instance's, once it has re-seeded them in the empty Redis.
    assert.equal((await resendUntilAcked(client, { body: "after", clientId: "c-2" })).id, 2);
    assert.deepEqual((await historyOf(server, "reset")).map((m) => [m.id, m.body]), [
      [1, "before"],
      [2, "after"],
    ]);
    await client.close();
  } finally {
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

test("an instance warns at start-up when Redis does not keep every write", async () => {
  const cases = [
    { persist: true, args: [], warning: null },
    {
      persist: false,
      args: [],
      warning:
        /Redis at redis:\/\/127\.0\.0\.1:\d+ has no append-only file \(appendonly no\) and keeps nothing on disk/,
    },
    // Where CONFIG is disabled, INFO still tells whether there is an append-only file.
    {
      persist: false,
      args: ["--rename-command", "CONFIG", ""],
      warning: /has no append-only file \(appendonly no\) and may keep only snapshots/,
    },
  ];
  for (const { persist, args, warning } of cases) {
    const dir = await Deno.makeTempDir({ prefix: "parley-redis-" });
    const redis = await startRedis(dir, { persist, args });
    try {
      await using server = await startTestServer({ redis: redis.url });
      const log = await Deno.readTextFile(`${server.dir}/parley.log`);
      const logged = /redis: warning: .*/.exec(log)?.[0];
      if (warning === null) {
        assert.equal(logged, undefined);
      } else {
        assert.match(logged ?? "", warning);
        assert.match(logged ?? "", /acks are only as durable as Redis/);
        assert.match(logged ?? "", /set appendonly yes and appendfsync always/);
      }
    } finally {
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  }
});
