/**
 * Read markers: in `accounts` and `jwt` modes `{"type":"read","id":N}` keeps how far a person has
 * read a room, never backwards and never past the room's last id; the welcome and `GET /rooms`
 * carry it, across reconnects and restarts. Writes are coalesced. In open mode `read` is accepted
 * and ignored.
 */

import assert from "node:assert/strict";
import * as jose from "npm:jose@6.2.18";
import { FLUSH_MS, readerOf, ReadMarkers } from "../chat/read_markers.ts";
import { ANYONE } from "../chat/identity.ts";
import { Browser, manualClock, withPeople } from "./people.ts";
import {
  type Event,
  eventually,
  joinRoom,
  startTestServer,
  tempDir,
  TestClient,
  type TestServer,
} from "./support.ts";

/**
 * Waits until the server has handled every frame `client` sent before: an invalid `read` is
 * refused, and frames are handled in order.
 */
async function settled(client: TestClient): Promise<void> {
  const errors = client.events.filter((e) => e.type === "error").length;
  client.send({ type: "read", id: -1 });
  await client.waitFor("error", errors + 1);
}

/** The welcome's read marker; absent in open mode. */
function lastReadOf(welcome: Event): number | undefined {
  return (welcome as Event & { lastRead?: number }).lastRead;
}

/** A signed-in person's `parley.v1` connection to `room`, once welcomed. */
async function connect(server: TestServer, who: Browser, room: string) {
  const client = new TestClient(server.wsUrl({ room }), "parley.v1", { headers: who.headers });
  return { client, welcome: await client.next("welcome") };
}

/** The room's entry in the person's `GET /rooms`. */
async function entryOf(who: Browser, room: string): Promise<Record<string, unknown>> {
  const answer = await who.call("GET", "/rooms");
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.find((entry: { room: string }) => entry.room === room);
}

Deno.test("a marker never moves backwards; writes wait, coalesced, and another connection to the file sees them once written", async () => {
  await using dir = await tempDir("parley-markers-");
  const path = `${dir.path}/parley.db`;
  const errors: string[] = [];
  const markers = ReadMarkers.open(path, (message) => errors.push(message));
  const other = ReadMarkers.open(path, (message) => errors.push(message));
  try {
    assert.equal(markers.get("account:1", "r"), 0);
    markers.mark("account:1", "r", 5);
    markers.mark("account:1", "r", 3);
    markers.mark("account:1", "r", 7);
    markers.mark("account:2", "r", 2);
    assert.equal(markers.get("account:1", "r"), 7, "this worker knows at once");
    assert.equal(other.get("account:1", "r"), 0, "nothing written yet");
    markers.flush();
    assert.equal(other.get("account:1", "r"), 7);
    assert.deepEqual(other.all("account:1"), new Map([["r", 7]]));
    // Two workers each keep one before either writes: the older one written last is no step back.
    markers.mark("account:1", "s", 9);
    other.mark("account:1", "s", 4);
    markers.flush();
    other.flush();
    assert.equal(markers.get("account:1", "s"), 9);
    assert.equal(other.get("account:1", "s"), 9);
    assert.deepEqual(markers.all("account:2"), new Map([["r", 2]]));
    assert.deepEqual(errors, []);
  } finally {
    markers.close();
    other.close();
  }
});

Deno.test("pending markers are written within a second, and at close", async () => {
  await using dir = await tempDir("parley-markers-");
  const path = `${dir.path}/parley.db`;
  const markers = ReadMarkers.open(path, assert.fail);
  const reader = ReadMarkers.open(path, assert.fail);
  try {
    markers.mark("jwt:x", "r", 9);
    await eventually(() => reader.get("jwt:x", "r") === 9, "the marker written", 5 * FLUSH_MS);
    markers.mark("jwt:x", "s", 1);
  } finally {
    markers.close();
  }
  try {
    assert.equal(reader.get("jwt:x", "s"), 1);
  } finally {
    reader.close();
  }
});

Deno.test("markers are kept for accounts and JWT subjects apart, and for nobody in open mode", () => {
  assert.equal(readerOf(ANYONE), null);
  const person = { ...ANYONE, id: "7", userName: "bob" };
  assert.equal(readerOf({ ...person, via: "session" }), "account:7");
  assert.equal(readerOf({ ...person, via: "token" }), "account:7");
  assert.equal(readerOf({ ...person, via: "jwt" }), "jwt:7");
});

Deno.test("accounts: read moves the marker forward only, clamped to the room's last id; welcome and /rooms carry it across reconnects and a restart", async () => {
  await using dir = await tempDir("parley-markers-");
  const path = `${dir.path}/parley.db`;
  const clock = manualClock();
  const overrides = { history: { path }, limits: { messagesPerSecond: 1e6, burst: 1e6 } };
  const { server, admin, bob } = await withPeople(clock, {}, overrides);
  try {
    for (const body of ["one", "two @bob", "three @Bob", "four"]) {
      assert.equal((await admin.call("POST", "/rooms/lobby/messages", { body })).status, 201);
    }
    const first = await connect(server, bob, "lobby");
    assert.equal(lastReadOf(first.welcome), 0);
    assert.deepEqual(await entryOf(bob, "lobby"), {
      room: "lobby",
      users: 1,
      lastId: 4,
      kind: "open",
      lastRead: 0,
      mentions: 2,
    });
    first.client.send({ type: "read", id: 2 });
    first.client.send({ type: "read", id: 1 });
    await settled(first.client);
    assert.equal(first.client.events.filter((e) => e.type === "error").length, 1, "no error");
    await first.client.close();
    const again = await connect(server, bob, "lobby");
    assert.equal(lastReadOf(again.welcome), 2, "never backwards");
    assert.deepEqual(
      [(await entryOf(bob, "lobby")).lastRead, (await entryOf(bob, "lobby")).mentions],
      [2, 1],
    );
    assert.equal((await entryOf(admin, "lobby")).lastRead, 0, "markers are each person's");
    again.client.send({ type: "read", id: 99 });
    await settled(again.client);
    await again.client.close();
  } finally {
    await server.shutdown();
  }
  const restarted = await startTestServer({
    auth: { mode: "accounts" },
    ...overrides,
  }, { now: clock.read });
  try {
    const bobAgain = new Browser(restarted);
    bobAgain.cookie = bob.cookie;
    const after = await connect(restarted, bobAgain, "lobby");
    assert.equal(lastReadOf(after.welcome), 4, "clamped to the last id, and kept across a restart");
    const entry = await entryOf(bobAgain, "lobby");
    assert.deepEqual([entry.lastRead, entry.mentions], [4, 0]);
    await after.client.close();
  } finally {
    await restarted.close();
  }
});

Deno.test("jwt: a subject's marker follows it to another connection", async () => {
  const secret = "a-shared-secret-of-at-least-32-characters";
  await using server = await startTestServer({
    auth: { mode: "jwt", jwt: { secret, issuer: "https://id.example", audience: "parley" } },
  });
  const token = await new jose.SignJWT({ sub: "u-1", name: "ann" })
    .setProtectedHeader({ alg: "HS256" }).setIssuedAt().setIssuer("https://id.example")
    .setAudience("parley").setExpirationTime("10m").sign(new TextEncoder().encode(secret));
  const open = async () => {
    const client = new TestClient(server.wsUrl({ room: "r", token }));
    return { client, welcome: await client.next("welcome") };
  };
  const first = await open();
  assert.equal(lastReadOf(first.welcome), 0);
  first.client.send({ type: "message", body: "hi", clientId: "1" });
  await first.client.next("ack");
  first.client.send({ type: "read", id: 1 });
  await settled(first.client);
  const second = await open();
  assert.equal(lastReadOf(second.welcome), 1);
  await Promise.all([first.client.close(), second.client.close()]);
});

Deno.test("open mode: read is accepted and ignored; the welcome and /rooms have no marker", async () => {
  await using server = await startTestServer();
  const { client, welcome } = await joinRoom(server, { room: "r", userName: "ann" });
  assert.equal(Object.hasOwn(welcome, "lastRead"), false);
  client.send({ type: "message", body: "hi", clientId: "1" });
  await client.next("ack");
  client.send({ type: "read", id: 1 });
  await settled(client);
  assert.equal(client.events.filter((e) => e.type === "error").length, 1, "only the invalid one");
  const rooms = await (await fetch(new URL("/rooms", server.url))).json();
  assert.deepEqual(rooms, [{ room: "r", users: 1, lastId: 1 }]);
  await client.close();
});
