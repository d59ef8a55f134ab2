/**
 * Who is typing, against real servers: `{"type":"typing"}` reaches the others in the room (in one
 * process, across workers and through Redis), never the sender, never a legacy client or an event
 * stream, at most once per 2 s per connection, and is stored nowhere.
 */

import assert from "node:assert/strict";
import { TYPING_INTERVAL_MS, TypingGate } from "../chat/typing.ts";
import { EventStreamReader } from "./event_stream.ts";
import { sayIfSkipped, skipRedis, startRedis } from "./redis_server.ts";
import {
  type Event,
  historyOf,
  joinRoom,
  parleyDir,
  ParleyProcess,
  startTestServer,
  TestClient,
  within,
} from "./support.ts";

sayIfSkipped("typing_test");

/** Limits that let a test send as fast as it likes. */
const FAST = { messagesPerSecond: 1e6, burst: 1e6 };

/**
 * Waits until `client` has what the server sent it before the answer to a frame sent now: an
 * invalid `read` is refused, and frames are answered in order.
 */
async function settled(client: TestClient): Promise<void> {
  const errors = client.events.filter((e) => e.type === "error").length;
  client.send({ type: "read", id: -1 });
  await client.waitFor("error", errors + 1);
}

function typingOf(client: TestClient): Event[] {
  return client.events.filter((e) => e.type === "typing");
}

Deno.test("a connection's typing notices pass once per 2 s: the rest are dropped", () => {
  let now = 1000;
  const gate = new TypingGate(() => now);
  assert.equal(gate.pass(), true);
  now += TYPING_INTERVAL_MS - 1;
  assert.equal(gate.pass(), false);
  now += 1;
  assert.equal(gate.pass(), true);
  assert.equal(gate.pass(), false, "a dropped notice does not move the window");
});

Deno.test("typing reaches the others in the room once however often it is sent; not the sender, a legacy client, an event stream or the history", async () => {
  await using server = await startTestServer({ limits: FAST });
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  const { client: bob } = await joinRoom(server, { room: "r", userName: "bob" });
  const { client: elsewhere } = await joinRoom(server, { room: "other", userName: "cat" });
  const legacy = new TestClient(server.wsUrl({ room: "r", userName: "old" }), null);
  await legacy.opened;
  const stream = await EventStreamReader.fetch(new URL("/rooms/r/events", server.url));
  try {
    for (let i = 0; i < 20; i++) bob.send({ type: "typing" });
    bob.send({ type: "message", body: "done typing", clientId: "c1" });
    const message = await ann.next("message");
    assert.equal(message.body, "done typing");
    // The notices are sent as they are received, the message once it is stored: every notice
    // that went out came before it.
    assert.deepEqual(typingOf(ann).map(({ type, room, userName }) => ({ type, room, userName })), [
      { type: "typing", room: "r", userName: "bob" },
    ]);
    assert.equal(Object.hasOwn(typingOf(ann)[0], "id"), false, "a notice has no id");
    await bob.next("ack");
    await Promise.all([settled(bob), settled(elsewhere)]);
    assert.deepEqual(typingOf(bob), [], "the sender is not told");
    assert.deepEqual(typingOf(elsewhere), [], "another room is not told");
    await legacy.nextFrame();
    assert.deepEqual(legacy.frames.map((frame) => Object.keys(JSON.parse(frame))), [
      ["userName", "body", "timestamp", "id"],
    ]);
    await stream.until(() => stream.events.length > 0, "the message on the stream");
    assert.deepEqual(stream.events.map((e) => e.event), ["message"]);
    assert.deepEqual((await historyOf(server, "r")).map((m) => m.body), ["done typing"]);
    // A newcomer resuming from the start gets the message and no notice.
    const { client: late } = await joinRoom(server, { room: "r", userName: "dan", since: "0" });
    await late.next("message");
    await settled(late);
    assert.deepEqual(typingOf(late), []);
    await late.close();
  } finally {
    await stream.close();
    await Promise.all([ann.close(), bob.close(), elsewhere.close(), legacy.close()]);
  }
});

Deno.test("typing before hello is dropped; a person's other connections are not told of their own typing", async () => {
  await using server = await startTestServer({ limits: FAST });
  const anonymous = new TestClient(server.wsUrl({ room: "r" }));
  await anonymous.opened;
  anonymous.send({ type: "typing" });
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  const { client: annAgain } = await joinRoom(server, { room: "r", userName: "ann" });
  const { client: bob } = await joinRoom(server, { room: "r", userName: "bob" });
  try {
    ann.send({ type: "typing" });
    assert.equal((await bob.next("typing")).userName, "ann");
    await Promise.all([settled(ann), settled(annAgain)]);
    assert.deepEqual([...typingOf(ann), ...typingOf(annAgain)], []);
    anonymous.send({ type: "hello", userName: "zed" });
    await anonymous.next("welcome");
    await settled(anonymous);
    assert.deepEqual(anonymous.events.filter((e) => e.type === "error").length, 1, "only ours");
  } finally {
    await Promise.all([anonymous, ann, annAgain, bob].map((client) => client.close()));
  }
});

Deno.test("with 2 workers typing reaches the others in the room on both", async () => {
  await using dir = await parleyDir({
    workers: 2,
    history: { path: "parley.db" },
    limits: FAST,
  }, "parley-typing-");
  await using parley = await ParleyProcess.start(dir.path);
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 12; i++) {
      const client = new TestClient(parley.wsUrl({ room: "shared", userName: `u${i}` }));
      clients.push(client);
      await client.next("welcome");
    }
    const log = await Deno.readTextFile(`${dir.path}/parley.log`);
    assert.match(log, /worker 1: open/);
    assert.match(log, /worker 2: open/);
    clients[0].send({ type: "typing" });
    for (const client of clients.slice(1)) {
      const typing = await client.next("typing");
      assert.deepEqual([typing.room, typing.userName], ["shared", "u0"]);
    }
    await settled(clients[0]);
    assert.deepEqual(typingOf(clients[0]), []);
  } finally {
    for (const client of clients) await client.close().catch(() => {});
  }
});

Deno.test({
  name: "through Redis typing reaches the others in the room on every instance, not the sender",
  ignore: skipRedis,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "parley-typing-redis-" });
    const redis = await startRedis(dir, { persist: false });
    try {
      await using a = await startTestServer({ redis: redis.url, limits: FAST });
      await using b = await startTestServer({ redis: redis.url, limits: FAST });
      const { client: ann } = await joinRoom(a, { room: "shared", userName: "ann" });
      const { client: cat } = await joinRoom(a, { room: "shared", userName: "cat" });
      const { client: bob } = await joinRoom(b, { room: "shared", userName: "bob" });
      try {
        await ann.waitFor("join", 2);
        ann.send({ type: "typing" });
        for (const client of [bob, cat]) {
          const typing = await client.next("typing");
          assert.deepEqual([typing.room, typing.userName], ["shared", "ann"]);
        }
        bob.send({ type: "typing" });
        assert.equal((await within(ann.next("typing"), "bob's notice on a")).userName, "bob");
        await Promise.all([settled(ann), settled(bob)]);
        assert.deepEqual(typingOf(ann).map((e) => e.userName), ["bob"]);
        assert.deepEqual(typingOf(bob).map((e) => e.userName), ["ann"]);
      } finally {
        await Promise.all([ann.close(), cat.close(), bob.close()]);
      }
    } finally {
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
