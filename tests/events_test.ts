import assert from "node:assert/strict";
import { HistoryStore } from "../chat/history.ts";
import { chromiumMissing, launchBrowser, RECONNECT_TIMEOUT_MS } from "./browser.ts";
import { EventStreamReader, RawFollower } from "./event_stream.ts";
import { withPeople } from "./people.ts";
import {
  eventually,
  hasProgram,
  historyOf,
  joinRoom,
  metric,
  metricTotal,
  postMessage,
  startTestServer,
  TestClient,
  type TestServer,
  TIMEOUT_MS,
  within,
} from "./support.ts";

/** Limits that let a test post as fast as it likes. */
const FAST = { messagesPerSecond: 1e6, burst: 1e6, readsPerSecond: 1e6 };

function eventsUrl(server: TestServer, room: string, query = ""): URL {
  return new URL(`/rooms/${room}/events${query}`, server.url);
}

/**
 * Waits until `/metrics` says `value` for `name`: how a test learns that the server noticed a
 * follower going away, which it tells nobody else.
 */
async function metricBecomes(
  server: TestServer,
  name: string,
  value: number,
  ms = TIMEOUT_MS,
): Promise<void> {
  await eventually(
    async () => await metricTotal(server, name) === value,
    `${name} to be ${value}`,
    ms,
    10,
  );
}

/** Posts `count` messages to `room`, `parallel` at a time, and returns their ids. */
async function postMany(
  server: TestServer,
  room: string,
  count: number,
  parallel = 1,
  body = "m",
): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, (_, j) => i + j);
    const stored = await Promise.all(
      batch.map((n) => postMessage(server, room, "bot", `${body}${n}`)),
    );
    ids.push(...stored.map((m) => m.id));
  }
  return ids;
}

Deno.test("curl -N follows a room: each message is an event with its id and its JSON, in order; presence is left out", async () => {
  assert.ok(await hasProgram("curl"), "curl is needed for this test");
  await using server = await startTestServer({ history: { onJoin: 0 }, limits: FAST });
  await using curl = EventStreamReader.curl(eventsUrl(server, "ops"));
  await metricBecomes(server, "parley_connections", 1);
  const { client: ann, welcome } = await joinRoom(server, { room: "ops", userName: "ann" });
  assert.deepEqual(welcome.users, ["ann"], "a follower is not present");
  const ids = await postMany(server, "ops", 20, 5);
  await ann.close();
  const last = await postMessage(server, "ops", "bot", "after ann left");
  const events = await curl.waitFor(21);
  assert.deepEqual(curl.ids(), [...ids.sort((a, b) => a - b), last.id]);
  assert.deepEqual(curl.ids(), Array.from({ length: 21 }, (_, i) => i + 1));
  const stored = await historyOf(server, "ops");
  assert.deepEqual(
    events.map((e) => ({ event: e.event, id: e.id, data: JSON.parse(e.data) })),
    stored.map((m) => ({ event: "message", id: String(m.id), data: { type: "message", ...m } })),
  );
});

Deno.test("an event stream is text/event-stream, not cached, and refuses what a WebSocket would", async () => {
  await using server = await startTestServer({ allowedOrigins: ["https://chat.example"] });
  await using reader = await EventStreamReader.fetch(eventsUrl(server, "ops"), {
    origin: "https://chat.example",
  });
  const head = await fetch(eventsUrl(server, "ops"), { method: "HEAD" });
  assert.equal(head.status, 405);
  await head.body?.cancel();
  const refusals: [string, string, HeadersInit, number, RegExp][] = [
    ["bad%20room", "", {}, 400, /room/],
    ["%E0%A4%A", "", {}, 400, /percent-encoding/],
    ["ops", "?since=x", {}, 400, /since/],
    ["ops", "", { "last-event-id": "nope" }, 400, /Last-Event-ID/],
    ["ops", "", { origin: "https://evil.example" }, 403, /origin/],
  ];
  for (const [room, query, headers, status, error] of refusals) {
    const response = await fetch(eventsUrl(server, room, query), { headers });
    assert.equal(response.status, status, `${room}${query}`);
    assert.match((await response.json()).error, error, `${room}${query}`);
  }
  await reader.close();
  const response = await fetch(eventsUrl(server, "ops"), {
    headers: { origin: "https://chat.example" },
  });
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  assert.equal(response.headers.get("cache-control"), "no-cache");
  assert.equal(response.headers.get("access-control-allow-origin"), "https://chat.example");
  await response.body?.cancel();
});

Deno.test("a room the requester may not read is a 404, as if it did not exist", async () => {
  await using server = await startTestServer({ auth: { mode: "accounts" } });
  const response = await fetch(eventsUrl(server, "ops"));
  assert.equal(response.status, 404);
  assert.match((await response.json()).error, /no room ops that you may read/);
  assert.equal(await metricTotal(server, "parley_connections"), 0);
});

Deno.test("a follower that reconnects with Last-Event-ID, or follows with ?since=, while messages are posted, gets each once: no gap, no duplicate", async () => {
  await using server = await startTestServer({ history: { onJoin: 0 }, limits: FAST });
  await postMany(server, "r", 30);
  // Posting goes on while the followers connect, reconnect and catch up.
  const posting = postMany(server, "r", 300, 3);
  const first = await EventStreamReader.fetch(eventsUrl(server, "r", "?since=10"));
  const fromSince = await EventStreamReader.fetch(eventsUrl(server, "r", "?since=25"));
  await first.waitFor(60);
  await first.close();
  const lastSeen = first.ids().at(-1)!;
  // EventSource reconnects to the same URL: the header is newer than its ?since=, and wins.
  const again = await EventStreamReader.fetch(eventsUrl(server, "r", "?since=10"), {
    "last-event-id": String(lastSeen),
  });
  await posting;
  const ids = (await historyOf(server, "r")).map((m) => m.id);
  const newest = ids.at(-1)!;
  for (const reader of [again, fromSince]) {
    await reader.until(() => reader.ids().at(-1) === newest, `message ${newest}`);
    await reader.close();
  }
  assert.deepEqual([...first.ids(), ...again.ids()], ids.filter((id) => id > 10));
  assert.deepEqual(fromSince.ids(), ids.filter((id) => id > 25));
  assert.ok([first, again, fromSince].every((r) => r.events.every((e) => e.event === "message")));
});

Deno.test("a resume from further back than history.maxReplay starts with event: recovered, then the newest onJoin", async () => {
  await using server = await startTestServer({
    history: { maxReplay: 50, onJoin: 10 },
    limits: FAST,
  });
  await postMany(server, "r", 80, 10);
  const resumes: [string, Record<string, string>][] = [["?since=29", {}], ["", {
    "last-event-id": "29",
  }]];
  for (const [query, headers] of resumes) {
    await using far = await EventStreamReader.fetch(eventsUrl(server, "r", query), headers);
    const [recovered, ...messages] = await far.waitFor(11);
    assert.deepEqual(recovered, { event: "recovered", data: '{"recovered":false}' });
    assert.deepEqual(
      messages.map((e) => Number(e.id)),
      Array.from({ length: 10 }, (_, i) => 71 + i),
    );
  }
  await using near = await EventStreamReader.fetch(eventsUrl(server, "r", "?since=30"));
  const events = await near.waitFor(50);
  assert.deepEqual(near.ids(), Array.from({ length: 50 }, (_, i) => 31 + i));
  assert.ok(events.every((e) => e.event === "message"));
});

Deno.test("a quiet event stream sends a keepalive comment every keepalive interval", async () => {
  await using server = await startTestServer({}, { keepaliveMs: 50 });
  await using reader = await EventStreamReader.fetch(eventsUrl(server, "quiet"));
  await reader.until(() => reader.parser.comments.length >= 3, "three keepalives");
  assert.deepEqual(reader.parser.comments.slice(0, 3), ["keepalive", "keepalive", "keepalive"]);
  assert.deepEqual(reader.events, []);
});

Deno.test("an event stream counts against maxConnectionsPerIp like a WebSocket, and its place is free once the reader goes away", async () => {
  await using server = await startTestServer({ limits: { maxConnectionsPerIp: 1 } });
  const curl = EventStreamReader.curl(eventsUrl(server, "r"));
  await metricBecomes(server, "parley_connections", 1);
  const second = await fetch(eventsUrl(server, "r"));
  assert.equal(second.status, 429);
  assert.match((await second.json()).error, /too many connections from 127.0.0.1; the limit is 1/);
  const socket = new TestClient(server.wsUrl({ room: "r", userName: "ann" }));
  assert.equal((await socket.closed).code, 1008);
  await curl.close();
  await metricBecomes(server, "parley_connections", 0);
  const { client, welcome } = await joinRoom(server, { room: "r", userName: "ann" });
  assert.deepEqual(welcome.users, ["ann"]);
  const third = await fetch(eventsUrl(server, "r"));
  assert.equal(third.status, 429, "the WebSocket holds the address's one place");
  await third.body?.cancel();
  await client.close();
  await using reader = await EventStreamReader.fetch(eventsUrl(server, "r"));
  const stored = await postMessage(server, "r", "bot", "the new follower hears this");
  assert.equal((await reader.next()).id, String(stored.id));
});

Deno.test("an event stream's place in maxConnections is given back once, when it ends", async () => {
  await using server = await startTestServer({ limits: { maxConnections: 1 } });
  const first = await EventStreamReader.fetch(eventsUrl(server, "r"));
  const full = await fetch(eventsUrl(server, "r"));
  assert.equal(full.status, 503);
  await full.body?.cancel();
  await first.close();
  await metricBecomes(server, "parley_connections", 0);
  await using second = await EventStreamReader.fetch(eventsUrl(server, "r"));
  const again = await fetch(eventsUrl(server, "r"));
  assert.equal(again.status, 503, "one place, taken by the second stream: not two");
  await again.body?.cancel();
  const stored = await postMessage(server, "r", "bot", "for the second stream");
  assert.equal((await second.next()).id, String(stored.id));
});

Deno.test("a follower that reads nothing is ended with event: error too_slow and its place freed; everyone else goes on", async () => {
  await using server = await startTestServer({
    history: { onJoin: 0 },
    limits: { ...FAST, sendBufferBytes: 65536, maxConnectionsPerIp: 2 },
  });
  using stuck = await RawFollower.connect(server.port, "/rooms/r/events");
  await metricBecomes(server, "parley_connections", 1);
  const { client: watcher } = await joinRoom(server, { room: "r", userName: "watcher" });
  const drops = () => metric(server, "parley_slow_consumer_drops_total");
  let posted = 0;
  // Bounded: the kernel buffers some megabytes before the server sees backpressure.
  while ((await drops()) === 0 && posted < 20_000) {
    posted += (await postMany(server, "r", 20, 20, "z".repeat(4000))).length;
  }
  assert.equal(await drops(), 1);
  // The stuck follower's place of 127.0.0.1 is free though its peer holds the socket.
  await using follower = await EventStreamReader.fetch(eventsUrl(server, "r"));
  const after = await postMessage(server, "r", "bot", "after the drop");
  assert.equal((await follower.next()).id, String(after.id));
  assert.equal((await watcher.waitFor("message", posted + 1, 30_000)).at(-1)?.id, after.id);

  await stuck.readToEnd();
  assert.match(stuck.head!, /^HTTP\/1.1 200/);
  assert.match(stuck.head!, /content-type: text\/event-stream/i);
  const events = stuck.parser.events;
  const last = events.at(-1)!;
  assert.equal(last.event, "error");
  assert.deepEqual(JSON.parse(last.data), {
    type: "error",
    code: "too_slow",
    message: "too slow: the send buffer is full; reconnect",
  });
  const ids = events.slice(0, -1).map((e) => Number(e.id));
  assert.ok(ids.length > 0 && ids.length < posted, `${ids.length} of ${posted}`);
  assert.deepEqual(
    ids,
    Array.from({ length: ids.length }, (_, i) => i + 1),
    "what it got, in order",
  );
  await metricBecomes(server, "parley_connections", 2);
  await watcher.close();
});

Deno.test("a follower that stops reading during a large replay gets all of it, and what was said meanwhile after it, once it reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-events-" });
  try {
    const path = `${dir}/parley.db`;
    const history = HistoryStore.open({ path, maxMessagesPerRoom: 5000 });
    const filler = "y".repeat(4000);
    await Promise.all(
      Array.from(
        { length: 5000 },
        (_, i) => history.append({ room: "r", userName: "bot", body: `${i + 1} ${filler}` }),
      ),
    );
    await history.close();
    await using server = await startTestServer({
      history: { path, maxReplay: 5000, maxMessagesPerRoom: 5000 },
      limits: { sendBufferBytes: 65536 },
    });
    // 20 MB to replay: far more than the kernel buffers of a connection that is not read.
    using reader = await RawFollower.connect(server.port, "/rooms/r/events?since=0");
    await metricBecomes(server, "parley_connections", 1);
    const live = await postMessage(server, "r", "bot", "said during the replay");
    assert.equal(live.id, 5001);
    const ids = () => reader.parser.events.map((e) => Number(e.id));
    await reader.readUntil(() => ids().at(-1) === 5001, "the live message");
    assert.deepEqual(ids(), Array.from({ length: 5001 }, (_, i) => i + 1));
    assert.equal(await metric(server, "parley_slow_consumer_drops_total"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a follower that stopped reading does not hold up shutdown", async () => {
  const server = await startTestServer({
    history: { onJoin: 0 },
    limits: { ...FAST, sendBufferBytes: 64 * 1024 * 1024 },
  });
  using _stuck = await RawFollower.connect(server.port, "/rooms/r/events");
  await metricBecomes(server, "parley_connections", 1);
  // Enough that the kernel's buffers fill and the server's write to the follower waits.
  await postMany(server, "r", 2000, 20, "z".repeat(4000));
  assert.equal(await metricTotal(server, "parley_slow_consumer_drops_total"), 0, "still following");
  await within(server.close(), "a shutdown with a stuck follower", 6000);
});

Deno.test("a follower is told the server is going away, and its stream ends", async () => {
  const server = await startTestServer();
  try {
    const reader = await EventStreamReader.fetch(eventsUrl(server, "r"));
    await metricBecomes(server, "parley_connections", 1);
    const stopped = server.shutdown();
    await reader.ended;
    await stopped;
    assert.deepEqual(reader.events.map((e) => [e.event, JSON.parse(e.data).code]), [
      ["error", "going_away"],
    ]);
  } finally {
    await server.close();
  }
});

const chromium = chromiumMissing();

Deno.test({
  name:
    "EventSource in Chromium follows a room, is told of a restart, and resumes with Last-Event-ID: nothing lost or doubled",
  ignore: chromium !== null && Deno.env.get("CI") !== "true",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    if (chromium !== null) throw new Error(`${chromium}; CI=true, so this test fails instead`);
    const dir = await Deno.makeTempDir({ prefix: "parley-events-" });
    const history = { path: `${dir}/parley.db` };
    const browser = await launchBrowser();
    let first: TestServer | null = null;
    let second: TestServer | null = null;
    try {
      first = await startTestServer({ history });
      const page = await browser.newPage();
      await page.goto(new URL("/healthz", first.url).href);
      await page.evaluate(() => {
        const seen: string[] = [];
        Object.assign(globalThis, { seen });
        const events = new EventSource("/rooms/r/events");
        events.addEventListener("message", (e) => {
          seen.push(`${e.lastEventId} ${JSON.parse(e.data).body}`);
        });
        // Connection failures are error events too; only the server's has data.
        events.addEventListener("error", (e) => {
          if (e instanceof MessageEvent) seen.push(`error ${JSON.parse(e.data).code}`);
        });
      });
      const seen = () => page.evaluate(() => (globalThis as unknown as { seen: string[] }).seen);
      const until = (count: number, timeout = TIMEOUT_MS) =>
        page.waitForFunction(
          (n) => (globalThis as unknown as { seen: string[] }).seen.length >= n,
          count,
          { timeout },
        );
      await metricBecomes(first, "parley_connections", 1);
      await postMessage(first, "r", "bot", "before the restart");
      await until(1);
      await first.close();
      first = null;
      second = await startTestServer({ port: Number(new URL(page.url()).port), history });
      await postMessage(second, "r", "bot", "while it was away");
      // EventSource reconnects by itself, after its own delay.
      await metricBecomes(second, "parley_connections", 1, RECONNECT_TIMEOUT_MS);
      await postMessage(second, "r", "bot", "live again");
      await until(4, RECONNECT_TIMEOUT_MS);
      assert.deepEqual(await seen(), [
        "1 before the restart",
        "error going_away",
        "2 while it was away",
        "3 live again",
      ]);
    } finally {
      await browser.close();
      await first?.close();
      await second?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a follower taken out of a private room, or banned, has its stream ended as its sockets are; nobody else's", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  await admin.call("POST", "/api/rooms", { room: "staff", kind: "private" });
  await admin.call("POST", "/api/rooms/staff/members", { userName: "bob" });
  const inStaff = await EventStreamReader.fetch(eventsUrl(server, "staff"), bob.headers);
  const inLobby = await EventStreamReader.fetch(eventsUrl(server, "lobby"), bob.headers);
  const adminInStaff = await EventStreamReader.fetch(eventsUrl(server, "staff"), admin.headers);
  try {
    await metricBecomes(server, "parley_connections", 3);
    assert.equal((await admin.call("DELETE", "/api/rooms/staff/members/bob")).status, 204);
    await within(inStaff.ended, "the removed member's stream to end");
    assert.deepEqual(inStaff.events.map((e) => [e.event, JSON.parse(e.data)]), [
      ["error", { type: "error", code: "policy", message: "removed from the room" }],
    ]);
    assert.equal((await admin.call("POST", "/api/users/bob/ban")).status, 200);
    await within(inLobby.ended, "the banned person's stream to end");
    assert.equal(JSON.parse(inLobby.events.at(-1)!.data).message, "banned");
    assert.equal((await admin.call("POST", "/rooms/staff/messages", { body: "here" })).status, 201);
    await adminInStaff.until(
      () => adminInStaff.events.some((e) => e.event === "message"),
      "the admin's stream to go on",
    );
  } finally {
    await Promise.all([inStaff, inLobby, adminInStaff].map((reader) => reader.close()));
  }
});
