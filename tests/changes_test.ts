/**
 * Changes to messages (issue #12, "The log"): `edit`, `delete` and `react` through the real
 * server, in one process, in two workers and in two instances sharing Redis. Every change is an
 * event of the room's log with the room's next id; a resume with `since` replays all of it, a
 * newcomer and `/history` get the messages in their current state, legacy clients never see a
 * change event. See docs/protocol.md, "Changing a message".
 */
import assert from "node:assert/strict";
import { type Browser, invite, withPeople } from "./people.ts";
import { type RedisServer, sayIfSkipped, skipRedis, startRedis } from "./redis_server.ts";
import {
  type Event,
  type HasUrl,
  historyOf,
  parleyDir,
  ParleyProcess,
  postMessage,
  startTestServer,
  TestClient,
  within,
} from "./support.ts";

sayIfSkipped("changes_test");

/** Where clients connect: a server, a process with workers, or one of two instances. */
interface Place extends HasUrl {
  wsUrl(query?: Record<string, string>): string;
}

/** A change event or message as a client sees it, with the fields of every kind. */
type LogEntry = Event & {
  messageId?: number;
  emoji?: string;
  on?: boolean;
  editedAt?: string;
  reactions?: Record<string, string[]>;
  mentions?: string[];
};

const LOG_TYPES = new Set(["message", "edit", "delete", "reaction"]);

/** The events of the log a client has received so far, in arrival order. */
function logOf(client: TestClient): LogEntry[] {
  return client.events.filter((e) => LOG_TYPES.has(e.type)) as LogEntry[];
}

/** Waits for `count` log events in all, and returns them. */
async function waitForLog(client: TestClient, count: number): Promise<LogEntry[]> {
  await within(
    (async () => {
      while (logOf(client).length < count) await client.next();
    })(),
    `${count} events of the log`,
  ).catch((error) => {
    throw new Error(`got ${JSON.stringify(logOf(client).map((e) => [e.type, e.id]))}`, {
      cause: error,
    });
  });
  return logOf(client);
}

/** Sends a command and returns the ack or error that answers its clientId. */
async function command(client: TestClient, frame: Record<string, unknown>): Promise<Event> {
  const clientId = frame.clientId as string;
  client.send(frame);
  for (;;) {
    const event = await client.next();
    if ((event.type === "ack" || event.type === "error") && event.clientId === clientId) {
      return event;
    }
  }
}

async function acked(client: TestClient, frame: Record<string, unknown>): Promise<number> {
  const answer = await command(client, frame);
  assert.equal(answer.type, "ack", JSON.stringify(answer));
  return answer.id;
}

async function refused(client: TestClient, frame: Record<string, unknown>, code: string) {
  const answer = await command(client, frame);
  assert.deepEqual([answer.type, answer.code], ["error", code], JSON.stringify(answer));
  assert.equal(answer.clientId, frame.clientId);
}

/** Joins a room and waits for the welcome. */
async function join(place: Place, query: Record<string, string>): Promise<TestClient> {
  const client = new TestClient(place.wsUrl({ room: "lobby", ...query }));
  await client.next("welcome");
  return client;
}

/** The messages of `/history` as the tests compare them. */
async function state(place: Place): Promise<unknown[]> {
  return (await historyOf(place, "lobby")).map((m) => {
    const { id, body, userName, editedAt, reactions } = m as LogEntry;
    return { id, body, userName, edited: editedAt !== undefined, reactions };
  });
}

/**
 * The story every deployment is put through: ann writes two messages, edits the second, bob
 * reacts to both (and again, which changes nothing), ann deletes the first; bob may neither edit
 * nor delete ann's, nor change a deleted one. Then resumes, a newcomer, a legacy client and
 * resends of every command. `a` and `b` are where ann and bob connect.
 */
async function story(a: Place, b: Place): Promise<void> {
  const ann = await join(a, { userName: "ann" });
  const bob = await join(b, { userName: "bob" });
  const watchers = await Promise.all([a, b, a, b].map((p, i) => join(p, { userName: `w${i}` })));
  assert.equal(await acked(ann, { type: "message", body: "first @BOB", clientId: "m1" }), 1);
  assert.equal(await acked(ann, { type: "message", body: "second", clientId: "m2" }), 2);
  const edit = { type: "edit", messageId: 2, body: "second, fixed", clientId: "e1" };
  assert.equal(await acked(ann, edit), 3);
  const thumbs = { type: "react", messageId: 2, emoji: "👍", on: true, clientId: "r1" };
  assert.equal(await acked(bob, thumbs), 4);
  assert.equal(await acked(bob, { ...thumbs, messageId: 1, emoji: "🎉", clientId: "r2" }), 5);
  // Already on: no event, acked with the message's id.
  assert.equal(await acked(bob, { ...thumbs, clientId: "r3" }), 2);
  assert.deepEqual(await state(b), [
    { id: 1, body: "first @BOB", userName: "ann", edited: false, reactions: { "🎉": ["bob"] } },
    {
      id: 2,
      body: "second, fixed",
      userName: "ann",
      edited: true,
      reactions: { "👍": ["bob"] },
    },
  ]);
  await refused(bob, { ...edit, body: "bob was here", clientId: "x1" }, "forbidden");
  await refused(bob, { type: "delete", messageId: 2, clientId: "x2" }, "forbidden");
  assert.equal(await acked(ann, { type: "delete", messageId: 1, clientId: "d1" }), 6);
  await refused(bob, { ...thumbs, messageId: 1, clientId: "x3" }, "not_found");
  await refused(ann, { ...edit, messageId: 1, clientId: "x4" }, "not_found");
  await refused(ann, { ...edit, messageId: 99, clientId: "x5" }, "not_found");
  assert.deepEqual(await state(a), [
    {
      id: 2,
      body: "second, fixed",
      userName: "ann",
      edited: true,
      reactions: { "👍": ["bob"] },
    },
  ]);

  // Everyone live saw the log once, in id order, each change as its event.
  const expected = [
    ["message", 1, undefined],
    ["message", 2, undefined],
    ["edit", 3, 2],
    ["reaction", 4, 2],
    ["reaction", 5, 1],
    ["delete", 6, 1],
  ];
  for (const client of [ann, bob, ...watchers]) {
    const log = await waitForLog(client, 6);
    assert.deepEqual(log.map((e) => [e.type, e.id, e.messageId]), expected);
  }
  const live = logOf(bob);
  assert.deepEqual(live[0].mentions, ["bob"], "@BOB names bob, as he spells it");
  assert.equal(live[1].mentions, undefined);
  assert.deepEqual(
    [live[2].body, live[2].userName, live[2].clientId],
    ["second, fixed", "ann", "e1"],
  );
  assert.deepEqual([live[3].emoji, live[3].on, live[3].userName], ["👍", true, "bob"]);
  assert.deepEqual([live[5].userName, live[5].clientId], ["ann", "d1"]);

  // A client away since message 1 sees everything after it once; message 2 as it is now.
  const away = await join(b, { userName: "cat", since: "1" });
  const missed = await waitForLog(away, 5);
  assert.deepEqual(missed.map((e) => [e.type, e.id]), expected.slice(1).map(([t, id]) => [t, id]));
  assert.equal(missed[0].body, "second, fixed");
  assert.ok(missed[0].editedAt !== undefined);
  assert.deepEqual(missed[0].reactions, { "👍": ["bob"] });
  // From the start: the deleted message is left out, its delete is there.
  const fresh = await join(a, { userName: "dan", since: "0" });
  assert.deepEqual(
    (await waitForLog(fresh, 5)).map((e) => [e.type, e.id]),
    expected.slice(1).map(([t, id]) => [t, id]),
  );
  // A newcomer: the messages alone, in their current state.
  const newcomer = await join(b, { userName: "eve" });
  const seen = await waitForLog(newcomer, 1);
  assert.deepEqual(seen.map((e) => [e.type, e.id, e.body]), [["message", 2, "second, fixed"]]);

  // Legacy: the current state, one message per frame, and no change event ever.
  const legacy = new TestClient(a.wsUrl({ room: "lobby", userName: "old" }), null);
  assert.deepEqual(JSON.parse(await legacy.nextFrame()).body, "second, fixed");
  const all = await (await fetch(new URL("/getAllMessages", a.url))).json();
  assert.deepEqual(all.Messages.map((m: { body: string }) => m.body), ["second, fixed"]);

  // Resends after a reconnect: acked with the original ids, nothing applied twice.
  await ann.close();
  const again = await join(a, { userName: "ann", since: "6" });
  assert.equal(await acked(again, edit), 3);
  assert.equal(await acked(again, { type: "delete", messageId: 1, clientId: "d1" }), 6);
  assert.equal(await acked(again, { type: "message", body: "second", clientId: "m2" }), 2);
  assert.equal(await acked(bob, thumbs), 4);
  // A clientId is one command's: another command under it is refused.
  await refused(again, { ...edit, body: "other", clientId: "e1" }, "bad_frame");
  const edit2 = { type: "edit", messageId: 2, body: "third time", clientId: "e2" };
  assert.equal(await acked(again, edit2), 7);
  assert.equal(await acked(again, { type: "message", body: "after", clientId: "m3" }), 8);
  const tail = await waitForLog(bob, 8);
  assert.deepEqual(tail.slice(6).map((e) => [e.type, e.id]), [["edit", 7], ["message", 8]]);
  assert.deepEqual(
    (await waitForLog(again, 2)).map((e) => [e.type, e.id]),
    [["edit", 7], ["message", 8]],
  );
  const frame = JSON.parse(await legacy.nextFrame());
  assert.deepEqual(
    [frame.body, frame.id],
    ["after", 8],
    "the edit never reached the legacy client",
  );
  for (const client of [again, bob, away, fresh, newcomer, legacy, ...watchers]) {
    await client.close();
  }
}

Deno.test("one process: edit, delete and react are events of the log, replayed and resent as messages are", async () => {
  await using server = await startTestServer();
  await story(server, server);
});

Deno.test("two workers: the log's changes cross workers like messages", async () => {
  await using dir = await parleyDir({
    workers: 2,
    history: { path: "parley.db" },
    limits: { messagesPerSecond: 1000, burst: 1000 },
  }, "parley-changes-");
  await using parley = await ParleyProcess.start(dir.path);
  await story(parley, parley);
});

Deno.test({
  name: "two instances through Redis: changes get Redis's ids, and each instance applies them",
  ignore: skipRedis,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "parley-changes-redis-" });
    let redis: RedisServer | undefined;
    try {
      redis = await startRedis(dir, { persist: true });
      await using a = await startTestServer({ redis: redis.url });
      await using b = await startTestServer({ redis: redis.url });
      await story(a, b);
      // An instance that starts later has the current state from the stream.
      await using c = await startTestServer({ redis: redis.url });
      const later = await join(c, { userName: "late", since: "0" });
      const log = await waitForLog(later, 7);
      assert.deepEqual(log.map((e) => e.id), [2, 3, 4, 5, 6, 7, 8]);
      assert.equal(log[0].body, "third time");
      await later.close();
    } finally {
      await redis?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("PATCH and DELETE of a message: the author edits, the author deletes, others are refused", async () => {
  await using server = await startTestServer();
  const stored = await postMessage(server, "lobby", "ann", "typo");
  const url = (query = "") => new URL(`/rooms/lobby/messages/${stored.id}${query}`, server.url);
  const patch = (userName: string, body: string) =>
    fetch(url(), {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userName, body, clientId: `p-${userName}` }),
    });
  const bob = await patch("bob", "hijacked");
  assert.equal(bob.status, 403);
  assert.match((await bob.json()).error, /not yours/);
  const edited = await patch("ann", "fixed");
  assert.equal(edited.status, 200);
  const event = await edited.json();
  assert.deepEqual(
    [event.type, event.id, event.messageId, event.body, event.userName],
    ["edit", 2, 1, "fixed", "ann"],
  );
  // The same clientId again is the same edit.
  assert.equal((await (await patch("ann", "fixed")).json()).id, 2);
  assert.equal((await fetch(url("?userName=bob"), { method: "DELETE" })).status, 403);
  const deleted = await fetch(url("?userName=ann"), { method: "DELETE" });
  assert.equal(deleted.status, 200);
  assert.deepEqual((await deleted.json()).type, "delete");
  const gone = await fetch(url("?userName=ann"), { method: "DELETE" });
  assert.equal(gone.status, 404);
  assert.match((await gone.json()).error, /no message 1/);
  const bad = await fetch(new URL("/rooms/lobby/messages/abc?userName=ann", server.url), {
    method: "DELETE",
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(await historyOf(server, "lobby"), []);
});

Deno.test("accounts: only the author edits; the author or an admin deletes; a private room's outsider is told it does not exist", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const { browser: carol } = await invite(admin, "carol");
  const connect = (who: Browser, room = "lobby") => {
    const client = new TestClient(server.wsUrl({ room }), "parley.v1", { headers: who.headers });
    return client.next("welcome").then(() => client);
  };
  const [adminWs, bobWs, carolWs] = await Promise.all([admin, bob, carol].map((b) => connect(b)));
  const first = await acked(bobWs, { type: "message", body: "bob's, @carol", clientId: "b1" });
  const second = await acked(bobWs, { type: "message", body: "bob's too", clientId: "b2" });
  const mentioned = (await waitForLog(carolWs, 1))[0];
  assert.deepEqual(mentioned.mentions, ["carol"]);
  await refused(
    adminWs,
    { type: "edit", messageId: first, body: "x", clientId: "a1" },
    "forbidden",
  );
  await refused(carolWs, { type: "delete", messageId: first, clientId: "c1" }, "forbidden");
  const patched = await carol.call("PATCH", `/rooms/lobby/messages/${first}`, { body: "x" });
  assert.equal(patched.status, 403);
  await acked(bobWs, { type: "edit", messageId: first, body: "bob's, edited", clientId: "b3" });
  // The moderation delete: an admin deletes anyone's, over WebSocket or HTTP.
  await acked(adminWs, { type: "delete", messageId: first, clientId: "a2" });
  const removed = await admin.call("DELETE", `/rooms/lobby/messages/${second}`);
  assert.deepEqual([removed.status, removed.body.type, removed.body.userName], [
    200,
    "delete",
    "Admin",
  ]);
  assert.deepEqual(await historyOf({ url: server.url }, "lobby").catch(() => "401"), "401");
  const page = await bob.call("GET", "/history?room=lobby");
  assert.deepEqual(page.body.messages, []);

  // A private room bob is not in: his edit and delete are 404s, as for no room at all.
  assert.equal(
    (await admin.call("POST", "/api/rooms", { room: "staff", kind: "private" })).status,
    201,
  );
  const staff = await connect(admin, "staff");
  const secret = await acked(staff, { type: "message", body: "secret", clientId: "s1" });
  const path = `/rooms/staff/messages/${secret}`;
  const outsider = await bob.call("PATCH", path, { body: "x" });
  // As a post there would be: the room's messages are not his to know of.
  assert.equal(outsider.status, 404);
  assert.match(outsider.body.error, /there is no room "staff" that you may post in/);
  assert.equal((await bob.call("DELETE", path)).status, 404);
  // With a cookie, a change from another origin is refused like a post.
  const foreign = await admin.call("DELETE", path, undefined, { origin: "https://evil.example" });
  assert.equal(foreign.status, 403);
  for (const client of [adminWs, bobWs, carolWs, staff]) await client.close();
});
