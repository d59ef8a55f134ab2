/**
 * Room summaries: a connection that sent `{"type":"summary","on":true}` gets, at most once a
 * second, the rooms it may see whose last id moved, with how many new messages mention it; a
 * connection that did not ask gets none, and a private room's activity reaches only its members.
 * The tracker hears every room, in every worker and instance.
 */

import assert from "node:assert/strict";
import { ANYONE, type Identity } from "../chat/identity.ts";
import { Live } from "../chat/live.ts";
import { type BusEvent, LocalBus } from "../chat/bus.ts";
import { HistoryStore } from "../chat/history.ts";
import { Summaries } from "../chat/summaries.ts";
import { type Browser, invite, withPeople } from "./people.ts";
import { sayIfSkipped, skipRedis, startRedis } from "./redis_server.ts";
import {
  type Event,
  joinRoom,
  parleyDir,
  ParleyProcess,
  postMessage,
  startTestServer,
  TestClient,
  type TestServer,
} from "./support.ts";

sayIfSkipped("summaries_test");

/** A summary's rooms. */
interface SummaryRoom {
  room: string;
  lastId: number;
  mentions: number;
}

function roomsOf(event: Event): SummaryRoom[] {
  return (event as Event & { rooms: SummaryRoom[] }).rooms;
}

/** Every room entry of the summaries `client` got so far, oldest first. */
function summarised(client: TestClient): SummaryRoom[] {
  return client.events.filter((e) => e.type === "summary").flatMap(roomsOf);
}

/** Waits until a summary (this one or one before) listed `room` at `lastId` or later. */
async function summaryOf(client: TestClient, room: string, lastId: number): Promise<SummaryRoom> {
  for (let count = 1;; count++) {
    await client.waitFor("summary", count);
    const found = summarised(client).find((r) => r.room === room && r.lastId >= lastId);
    if (found !== undefined) return found;
  }
}

/**
 * Waits until the server has handled every frame `client` sent, and sent it whatever it sent
 * before: an invalid `read` is refused, and frames are answered in order.
 */
async function settled(client: TestClient): Promise<void> {
  const errors = client.events.filter((e) => e.type === "error").length;
  client.send({ type: "read", id: -1 });
  await client.waitFor("error", errors + 1);
}

const person = (id: string, userName: string): Identity => ({
  ...ANYONE,
  id,
  userName,
  via: "session",
});

Deno.test("a tick summarises what moved for each subscriber: visible rooms only, its own mentions, nothing twice, nothing for nobody", () => {
  const summaries = new Summaries((who, room) => room !== "staff" || who.id === "1");
  const frames = { ann: [] as string[], bob: [] as string[] };
  summaries.saw("lobby", 1, ["ann"]);
  const stopAnn = summaries.subscribe({
    identity: person("1", "ann"),
    userName: "ann",
    summary: (frame) => frames.ann.push(frame),
  });
  summaries.subscribe({
    identity: person("2", "bob"),
    userName: "bob",
    summary: (frame) => frames.bob.push(frame),
  });
  try {
    summaries.tick();
    assert.deepEqual(frames, { ann: [], bob: [] }, "what came before anyone asked is not kept");
    summaries.saw("lobby", 2, ["ann", "bob", "ann"]);
    summaries.saw("lobby", 3, ["bob"]);
    summaries.saw("staff", 7, ["bob"]);
    summaries.tick();
    assert.deepEqual(frames.ann.map((f) => JSON.parse(f)), [{
      type: "summary",
      rooms: [{ room: "lobby", lastId: 3, mentions: 1 }, { room: "staff", lastId: 7, mentions: 0 }],
    }]);
    assert.deepEqual(frames.bob.map((f) => JSON.parse(f)), [{
      type: "summary",
      rooms: [{ room: "lobby", lastId: 3, mentions: 2 }],
    }]);
    summaries.tick();
    assert.equal(frames.ann.length + frames.bob.length, 2, "nothing moved: nothing sent");
    summaries.saw("staff", 8, []);
    summaries.tick();
    assert.equal(frames.bob.length, 1, "nothing bob may see moved");
    stopAnn();
    summaries.saw("staff", 9, []);
    summaries.tick();
    assert.equal(frames.ann.length, 2, "unsubscribed");
  } finally {
    summaries.close();
  }
});

Deno.test("the live extras count the mentions a message event carries; a change moves the last id", () => {
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 10 });
  const live = new Live({
    bus: new LocalBus(history, null),
    mayRead: () => true,
    markers: null,
    onError: assert.fail,
  });
  const frames: string[] = [];
  const stop = live.summaries.subscribe({
    identity: ANYONE,
    userName: "ann",
    summary: (frame) => frames.push(frame),
  });
  try {
    // As the room log's bus carries its events (a message with its mentions, an edit, ...).
    const logged = (event: Record<string, unknown>) =>
      live.hear({ kind: "log", event: { room: "r", ...event } } as unknown as BusEvent);
    const message = { type: "message", userName: "bob", timestamp: "" };
    logged({ ...message, id: 4, body: "@ann", mentions: ["ann"] });
    logged({ ...message, id: 5, body: "no one" });
    // Other events move the last id, and mention nobody.
    logged({ type: "edit", id: 6, messageId: 4, body: "@ann", mentions: ["ann"] });
    live.summaries.tick();
    assert.deepEqual(JSON.parse(frames[0]).rooms, [{ room: "r", lastId: 6, mentions: 1 }]);
  } finally {
    stop();
    live.close();
    history.close();
  }
});

Deno.test("summaries come only to connections that asked, at most once a second, until they stop", async () => {
  await using server = await startTestServer({
    limits: { messagesPerSecond: 1e6, burst: 1e6, readsPerSecond: 1e6 },
  });
  const { client: ann } = await joinRoom(server, { room: "lobby", userName: "ann" });
  const { client: bob } = await joinRoom(server, { room: "lobby", userName: "bob" });
  const { client: quiet } = await joinRoom(server, { room: "lobby", userName: "cat" });
  try {
    ann.send({ type: "summary", on: true });
    bob.send({ type: "summary", on: true });
    await Promise.all([settled(ann), settled(bob)]);
    // Posting all along for 2.5 s: ann's summaries come a second apart.
    const arrivals: number[] = [];
    let seen = 0;
    const started = Date.now();
    let lastId = 0;
    while (Date.now() - started < 2500) {
      lastId = (await postMessage(server, "busy", "bot", "m")).id;
      for (; seen < ann.events.length; seen++) {
        if (ann.events[seen].type === "summary") arrivals.push(Date.now());
      }
    }
    const elapsed = Date.now() - started;
    await summaryOf(ann, "busy", lastId);
    assert.ok(arrivals.length >= 1, "a summary while posting");
    assert.ok(
      arrivals.length <= Math.ceil(elapsed / 1000) + 1,
      `${arrivals.length} in ${elapsed} ms`,
    );
    for (let i = 1; i < arrivals.length; i++) {
      assert.ok(
        arrivals[i] - arrivals[i - 1] >= 500,
        `summaries ${arrivals[i] - arrivals[i - 1]} ms apart`,
      );
    }
    const ids = summarised(ann).map((r) => r.lastId);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "each later than the one before");
    // Nothing was sent to a connection that did not ask: a summary went to it with ann's.
    await settled(quiet);
    assert.deepEqual(quiet.events.filter((e) => e.type === "summary"), []);
    // Once stopped, no more.
    ann.send({ type: "summary", on: false });
    await settled(ann);
    const before = summarised(ann).length;
    const last = await postMessage(server, "busy", "bot", "after");
    await summaryOf(bob, "busy", last.id);
    await settled(ann);
    assert.equal(summarised(ann).length, before);
  } finally {
    await Promise.all([ann.close(), bob.close(), quiet.close()]);
  }
});

/** A signed-in person's `parley.v1` connection to `room`, asking for summaries. */
async function watcher(server: TestServer, who: Browser, room = "lobby"): Promise<TestClient> {
  const client = new TestClient(server.wsUrl({ room }), "parley.v1", { headers: who.headers });
  await client.next("welcome");
  client.send({ type: "summary", on: true });
  await settled(client);
  return client;
}

Deno.test("a summary lists only the rooms the person may read: a private room's activity reaches its members alone", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const { browser: carol } = await invite(admin, "carol");
  await admin.call("POST", "/api/rooms", { room: "staff", kind: "private" });
  await admin.call("POST", "/api/rooms/staff/members", { userName: "bob" });
  const bobs = await watcher(server, bob);
  const carols = await watcher(server, carol);
  try {
    for (const body of ["secret @bob", "more"]) {
      assert.equal((await admin.call("POST", "/rooms/staff/messages", { body })).status, 201);
    }
    const posted = await admin.call("POST", "/rooms/news/messages", { body: "public" });
    assert.equal(posted.status, 201);
    assert.equal((await summaryOf(bobs, "staff", 2)).lastId, 2);
    await summaryOf(bobs, "news", 1);
    // The private room's messages came before the open room's: carol was told of the open one.
    await summaryOf(carols, "news", 1);
    assert.deepEqual(summarised(carols).filter((r) => r.room === "staff"), []);
    // bob's mentions are the new messages whose events name him (`mentions`, with the room log).
    const stored = await admin.call("GET", "/history?room=staff");
    const naming = stored.body.messages.filter((m: { mentions?: string[] }) =>
      m.mentions?.includes("bob")
    );
    const counted = summarised(bobs).filter((r) => r.room === "staff");
    assert.equal(counted.reduce((sum, r) => sum + r.mentions, 0), naming.length);
  } finally {
    await Promise.all([bobs.close(), carols.close()]);
  }
});

Deno.test("with 2 workers every asking connection hears of a room nobody is in, on both", async () => {
  await using dir = await parleyDir({ workers: 2, history: { path: "parley.db" } }, "parley-sum-");
  await using parley = await ParleyProcess.start(dir.path);
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const client = new TestClient(parley.wsUrl({ room: "watch", userName: `u${i}` }));
      clients.push(client);
      await client.next("welcome");
      client.send({ type: "summary", on: true });
    }
    await Promise.all(clients.map(settled));
    const log = await Deno.readTextFile(`${dir.path}/parley.log`);
    assert.match(log, /worker 1: open/);
    assert.match(log, /worker 2: open/);
    const { id } = await postMessage(parley, "elsewhere", "bot", "hello");
    for (const client of clients) {
      assert.deepEqual(await summaryOf(client, "elsewhere", id), {
        room: "elsewhere",
        lastId: id,
        mentions: 0,
      });
    }
  } finally {
    for (const client of clients) await client.close().catch(() => {});
  }
});

Deno.test({
  name: "through Redis a connection hears of a room nobody is in on another instance",
  ignore: skipRedis,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "parley-sum-redis-" });
    const redis = await startRedis(dir, { persist: false });
    try {
      await using a = await startTestServer({ redis: redis.url });
      await using b = await startTestServer({ redis: redis.url });
      const { client: ann } = await joinRoom(a, { room: "watch", userName: "ann" });
      try {
        ann.send({ type: "summary", on: true });
        await settled(ann);
        const { id } = await postMessage(b, "far", "bot", "hello");
        assert.deepEqual(await summaryOf(ann, "far", id), { room: "far", lastId: id, mentions: 0 });
      } finally {
        await ann.close();
      }
    } finally {
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
