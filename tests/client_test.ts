import assert from "node:assert/strict";
import { LocalBus } from "../chat/bus.ts";
import { Client } from "../chat/client.ts";
import { Admission } from "../chat/admission.ts";
import { type Config, defaultConfig } from "../chat/config.ts";
import { HistoryStore } from "../chat/history.ts";
import { ANYONE } from "../chat/identity.ts";
import { Logger } from "../chat/log.ts";
import { type Dialect, messageEvent } from "../chat/message.ts";
import { exposition, Metrics } from "../chat/metrics.ts";
import { Rooms } from "../chat/room.ts";
import { MemoryTransport } from "./memory_transport.ts";
import { RawSocket } from "./raw_socket.ts";
import {
  historyOf,
  joinRoom,
  metric,
  postMessage,
  startTestServer,
  TestClient,
  within,
} from "./support.ts";

Deno.test("a parley.v1 client is welcomed with the room, its name and who is online", async () => {
  await using server = await startTestServer();
  const { client: ann, welcome } = await joinRoom(server, { room: "ops", userName: "ann" });
  assert.deepEqual(welcome, {
    type: "welcome",
    room: "ops",
    userName: "ann",
    users: ["ann"],
    userCount: 1,
    lastId: 0,
    limits: { maxMessageBytes: 4096, messagesPerSecond: 10, burst: 20 },
  });
  const { client: bob, welcome: second } = await joinRoom(server, { room: "ops", userName: "bob" });
  assert.deepEqual(second.users, ["ann", "bob"]);
  assert.deepEqual(await ann.next("join"), {
    type: "join",
    userName: "bob",
    users: ["ann", "bob"],
  });
  await bob.close();
  assert.deepEqual(await ann.next("leave"), { type: "leave", userName: "bob", users: ["ann"] });
  await ann.close();
});

Deno.test("a message reaches everyone in the room, the sender included, and is acked", async () => {
  await using server = await startTestServer();
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  const { client: bob } = await joinRoom(server, { room: "r", userName: "bob" });
  const { client: eve } = await joinRoom(server, { room: "elsewhere", userName: "eve" });
  ann.send({ type: "message", body: "hi bob", clientId: "c-1" });
  const ack = await ann.next("ack");
  assert.deepEqual(ack, { type: "ack", clientId: "c-1", id: 1 });
  for (const client of [ann, bob]) {
    const [message] = await client.waitFor("message", 1);
    assert.equal(message.id, 1);
    assert.equal(message.room, "r");
    assert.equal(message.userName, "ann");
    assert.equal(message.body, "hi bob");
    assert.ok(Math.abs(Date.parse(message.timestamp) - Date.now()) < 60_000);
  }
  eve.send({ type: "message", body: "anyone?", clientId: "e-1" });
  await eve.next("ack");
  assert.equal((await eve.waitFor("message", 1))[0].body, "anyone?");
  assert.equal(bob.events.filter((e) => e.type === "message").length, 1);
  await Promise.all([ann.close(), bob.close(), eve.close()]);
});

Deno.test("a resend of the same clientId is acked with the original id and not stored twice", async () => {
  await using server = await startTestServer();
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  ann.send({ type: "message", body: "once", clientId: "same" });
  assert.equal((await ann.next("ack")).id, 1);
  await ann.close();
  const { client: again } = await joinRoom(server, { room: "r", userName: "ann", since: "1" });
  again.send({ type: "message", body: "once", clientId: "same" });
  assert.deepEqual(await again.next("ack"), { type: "ack", clientId: "same", id: 1 });
  again.send({ type: "message", body: "twice", clientId: "other" });
  assert.equal((await again.next("ack")).id, 2);
  const messages = await again.waitFor("message", 1);
  assert.deepEqual(messages.map((m) => m.body), ["twice"]);
  assert.deepEqual((await historyOf(server, "r")).map((m) => m.body), ["once", "twice"]);
  await again.close();
});

Deno.test("a clientId used again for a different message is refused, naming the reuse", async () => {
  await using server = await startTestServer();
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  ann.send({ type: "message", body: "mine", clientId: "c-1" });
  assert.equal((await ann.next("ack")).id, 1);
  // Anyone may claim the name: a different body under a known clientId is not a resend.
  const { client: fake } = await joinRoom(server, { room: "r", userName: "ann", since: "1" });
  fake.send({ type: "message", body: "not hers", clientId: "c-1" });
  const error = await fake.next("error");
  assert.equal(error.code, "bad_frame");
  assert.equal(error.clientId, "c-1");
  assert.match(error.message, /clientId "c-1" was already used for a different message/);
  assert.equal(fake.events.some((e) => e.type === "ack"), false);
  assert.deepEqual((await historyOf(server, "r")).map((m) => m.body), ["mine"]);
  await Promise.all([ann.close(), fake.close()]);
});

Deno.test("a client without a name says hello first", async () => {
  await using server = await startTestServer();
  const client = new TestClient(server.wsUrl({ room: "r" }));
  await client.opened;
  client.send({ type: "message", body: "who am I", clientId: "x" });
  const error = await client.next("error");
  assert.equal(error.code, "bad_name");
  client.send({ type: "hello", userName: "zoe" });
  const welcome = await client.next("welcome");
  assert.equal(welcome.userName, "zoe");
  assert.deepEqual(welcome.users, ["zoe"]);
  client.send({ type: "message", body: "now I can", clientId: "y" });
  assert.equal((await client.next("ack")).id, 1);
  assert.deepEqual((await historyOf(server, "r")).map((m) => m.body), ["now I can"]);
  await client.close();
});

Deno.test("a newcomer gets the last history.onJoin messages, oldest first, then live ones", async () => {
  await using server = await startTestServer({
    history: { onJoin: 100 },
    limits: { messagesPerSecond: 1000, burst: 1000 },
  });
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  // More than the Go server's channel buffer of 100, after which it froze for good.
  for (let i = 1; i <= 160; i++) ann.send({ type: "message", body: `m${i}`, clientId: `${i}` });
  await ann.waitFor("ack", 160);
  const { client: bob, welcome } = await joinRoom(server, { room: "r", userName: "bob" });
  assert.equal(welcome.lastId, 160);
  const replay = await bob.waitFor("message", 100);
  assert.deepEqual(replay.map((m) => m.id), Array.from({ length: 100 }, (_, i) => 61 + i));
  ann.send({ type: "message", body: "live", clientId: "live" });
  await bob.waitFor("message", 101);
  assert.equal(bob.events.filter((e) => e.type === "message").at(-1)?.body, "live");
  await Promise.all([ann.close(), bob.close()]);
});

Deno.test("since replays exactly the missed messages; too old a since says recovered: false", async () => {
  await using server = await startTestServer({
    history: { maxMessagesPerRoom: 20 },
    limits: { messagesPerSecond: 1000, burst: 1000 },
  });
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  for (let i = 1; i <= 30; i++) ann.send({ type: "message", body: `m${i}`, clientId: `${i}` });
  await ann.waitFor("ack", 30);
  const { client: back, welcome } = await joinRoom(server, {
    room: "r",
    userName: "b",
    since: "25",
  });
  assert.equal(welcome.recovered, undefined);
  assert.deepEqual((await back.waitFor("message", 5)).map((m) => m.id), [26, 27, 28, 29, 30]);
  const { client: late, welcome: lost } = await joinRoom(server, {
    room: "r",
    userName: "c",
    since: "3",
  });
  assert.equal(lost.recovered, false);
  // Retention kept ids 11..30, and the client gets all of them.
  assert.deepEqual(
    (await late.waitFor("message", 20)).map((m) => m.id),
    Array.from({ length: 20 }, (_, i) => 11 + i),
  );
  await Promise.all([ann.close(), back.close(), late.close()]);
});

Deno.test("a legacy client chats with a parley.v1 client in the same room", async () => {
  await using server = await startTestServer();
  const { client: modern } = await joinRoom(server, { room: "lobby", userName: "ann" });
  modern.send({ type: "message", body: "before you came", clientId: "1" });
  await modern.waitFor("ack", 1);
  await modern.waitFor("message", 1);
  // Exactly like the Go server's page: no subprotocol, room from nothing, name in each frame.
  const legacy = new TestClient(server.wsUrl(), null);
  await legacy.opened;
  const history = JSON.parse(await legacy.nextFrame());
  assert.equal(history.userName, "ann");
  assert.equal(history.body, "before you came");
  legacy.send({ userName: "gopher", body: "hello from 2019", timestamp: "2019-01-01T00:00:00Z" });
  const own = JSON.parse(await legacy.nextFrame());
  assert.deepEqual(Object.keys(own).slice(0, 3), ["userName", "body", "timestamp"]);
  assert.equal(own.userName, "gopher");
  assert.equal(own.body, "hello from 2019");
  assert.notEqual(own.timestamp, "2019-01-01T00:00:00Z");
  const seen = (await modern.waitFor("message", 2))[1];
  assert.equal(seen.userName, "gopher");
  assert.equal(seen.body, "hello from 2019");
  assert.deepEqual((await modern.waitFor("join", 1))[0].users, ["ann", "gopher"]);
  modern.send({ type: "message", body: "hi gopher", clientId: "2" });
  modern.send({ type: "message", body: "how is Go?", clientId: "3" });
  const frames = [await legacy.nextFrame(), await legacy.nextFrame()];
  assert.deepEqual(frames.map((f) => JSON.parse(f).body), ["hi gopher", "how is Go?"]);
  assert.ok(frames.every((frame) => frame.endsWith("}\n") && !frame.slice(0, -1).includes("\n")));
  assert.ok(legacy.frames.every((frame) => !frame.includes('"type"')));
  await Promise.all([modern.close(), legacy.close()]);
});

Deno.test("bad input gets an error event, stores nothing, and the connection keeps working", async () => {
  await using server = await startTestServer({ limits: { maxMessageBytes: 64 } });
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  const badFrames: [string, string | Uint8Array, string][] = [
    ["malformed JSON", "{oops", "bad_frame"],
    ["wrong types", '{"type":"message","body":["x"]}', "bad_frame"],
    ["unknown type", '{"type":"nuke"}', "bad_frame"],
    ["binary frame", new Uint8Array([1, 2, 3]), "bad_frame"],
    ["empty body", '{"type":"message","body":""}', "bad_frame"],
    ["oversized body", JSON.stringify({ type: "message", body: "x".repeat(65) }), "too_large"],
    ["bad name", '{"type":"hello","userName":""}', "bad_name"],
  ];
  for (const [what, frame, code] of badFrames) {
    ann.socket.send(frame);
    const error = await ann.next("error");
    assert.equal(error.code, code, what);
    assert.ok(error.message.length > 10, what);
    assert.equal(ann.socket.readyState, WebSocket.OPEN, what);
  }
  ann.send({ type: "message", body: "still here", clientId: "ok" });
  assert.equal((await ann.next("ack")).id, 1);
  assert.deepEqual((await historyOf(server, "r")).map((m) => m.body), ["still here"]);
  await ann.close();
});

Deno.test("a bad room or name is told why and closed with 1008", async () => {
  await using server = await startTestServer();
  for (
    const [query, code] of [[{ room: "no spaces" }, "bad_room"], [{ userName: "\t" }, "bad_name"]]
  ) {
    const client = new TestClient(server.wsUrl(query as Record<string, string>));
    const error = await client.next("error");
    assert.equal(error.code, code);
    const closed = await within(client.closed, "the close");
    assert.equal(closed.code, 1008);
  }
});

Deno.test("a bad first frame from a legacy client stores nothing", async () => {
  await using server = await startTestServer();
  const legacy = new TestClient(server.wsUrl(), null);
  await legacy.opened;
  legacy.send("not json at all");
  legacy.send('{"userName":"gopher"}');
  legacy.send('{"userName":"gopher","body":"real"}');
  assert.equal(JSON.parse(await legacy.nextFrame()).body, "real");
  assert.deepEqual((await historyOf(server, "lobby")).map((m) => m.body), ["real"]);
  await legacy.close();
});

Deno.test("a flood is rate limited with one error, and the rest of the room is unaffected", async () => {
  await using server = await startTestServer({ limits: { messagesPerSecond: 1, burst: 5 } });
  const { client: flooder } = await joinRoom(server, { room: "r", userName: "flood" });
  const { client: calm } = await joinRoom(server, { room: "r", userName: "calm" });
  for (let i = 0; i < 50; i++) {
    flooder.send({ type: "message", body: `spam ${i}`, clientId: `${i}` });
  }
  calm.send({ type: "message", body: "normal", clientId: "n" });
  await calm.next("ack");
  const error = await flooder.next("error");
  assert.equal(error.code, "rate_limited");
  await flooder.waitFor("ack", 5);
  const stored = await historyOf(server, "r");
  assert.ok(stored.length <= 7, `stored ${stored.length}`);
  assert.ok(stored.some((m) => m.body === "normal"));
  assert.equal(flooder.events.filter((e) => e.type === "error").length, 1);
  await Promise.all([flooder.close(), calm.close()]);
});

Deno.test("a frame far beyond the limit closes the connection with 1009", async () => {
  await using server = await startTestServer({ limits: { maxMessageBytes: 100 } });
  const { client } = await joinRoom(server, { room: "r", userName: "big" });
  client.send({ type: "message", body: "fits" });
  assert.deepEqual(await client.next("ack"), { type: "ack", id: 1 });
  client.send({ type: "message", body: "x".repeat(10_000) });
  assert.equal((await within(client.closed, "the close")).code, 1009);
});

Deno.test("connections beyond the per-address limit are closed with 1008", async () => {
  await using server = await startTestServer({
    limits: { maxConnectionsPerIp: 2, maxConnections: 3 },
  });
  const first = await joinRoom(server, { userName: "a" });
  const second = await joinRoom(server, { userName: "b" });
  const third = new TestClient(server.wsUrl({ userName: "c" }));
  const closed = await within(third.closed, "the close");
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /too many connections/);
  await second.client.close();
  const again = await joinRoom(server, { userName: "c" });
  assert.deepEqual(again.welcome.users, ["a", "c"]);
  await Promise.all([first.client.close(), again.client.close()]);
});

Deno.test("an upgrade beyond limits.maxConnections is refused with 503 before it upgrades", async () => {
  await using server = await startTestServer({ limits: { maxConnections: 2 } });
  const first = await joinRoom(server, { userName: "a" });
  const second = await joinRoom(server, { userName: "b" });
  const third = await fetch(server.wsUrl({ userName: "c" }).replace("ws:", "http:"), {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    },
  });
  assert.equal(third.status, 503);
  assert.match((await third.json()).error, /full/);
  await second.client.close();
  const again = await joinRoom(server, { userName: "c" });
  assert.deepEqual(again.welcome.users, ["a", "c"]);
  await Promise.all([first.client.close(), again.client.close()]);
});

Deno.test("a client whose send buffer passes the limit is closed with 1013; others go on", async () => {
  await using server = await startTestServer({
    limits: { sendBufferBytes: 65536, messagesPerSecond: 1e6, burst: 1e6, maxMessageBytes: 4096 },
  });
  // A raw TCP client that completes the handshake and then never reads: its buffer fills up.
  const stuck = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await stuck.write(new TextEncoder().encode(
    "GET /chat?room=r&userName=stuck HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1\r\n\r\n",
  ));
  const response = new Uint8Array(1024);
  const read = await stuck.read(response);
  assert.match(new TextDecoder().decode(response.subarray(0, read!)), /^HTTP\/1.1 101/);
  const { client: sender, welcome } = await joinRoom(server, { room: "r", userName: "sender" });
  assert.deepEqual(welcome.users, ["stuck", "sender"]);
  let sent = 0;
  const body = "y".repeat(4000);
  const metricsDrops = () => metric(server, "parley_slow_consumer_drops_total");
  // Bounded: the kernel buffers some megabytes before the server sees backpressure.
  while ((await metricsDrops()) === 0 && sent < 20_000) {
    for (let i = 0; i < 10; i++) sender.send({ type: "message", body, clientId: `${sent++}` });
    await sender.waitFor("ack", sent, 30_000);
  }
  assert.equal(await metricsDrops(), 1);
  assert.equal(sender.socket.readyState, WebSocket.OPEN);
  const leave = await sender.next("leave", 30_000);
  assert.equal(leave.userName, "stuck");
  stuck.close();
  await sender.close();
});

Deno.test("closed connections release their resources", async () => {
  await using server = await startTestServer();
  const rooms = async () => await (await fetch(new URL("/rooms", server.url))).json();
  for (let round = 0; round < 3; round++) {
    const clients = await Promise.all(
      Array.from({ length: 20 }, (_, i) => joinRoom(server, { room: "churn", userName: `u${i}` })),
    );
    assert.deepEqual(await rooms(), [{ room: "churn", users: 20, lastId: 0 }]);
    await Promise.all(clients.map(({ client }) => client.close()));
    assert.deepEqual(await rooms(), []);
    assert.equal(
      await metric(server, 'parley_connections{dialect="parley.v1",transport="websocket"}'),
      0,
    );
    assert.equal(await metric(server, "parley_rooms"), 0);
  }
});

Deno.test("the same name in two tabs is one presence until both leave", async () => {
  await using server = await startTestServer();
  const { client: watcher } = await joinRoom(server, { room: "r", userName: "w" });
  const { client: tab1 } = await joinRoom(server, { room: "r", userName: "ann" });
  const { client: tab2, welcome } = await joinRoom(server, { room: "r", userName: "ann" });
  assert.deepEqual(welcome.users, ["w", "ann"]);
  await tab1.close();
  await tab2.close();
  const leave = await watcher.next("leave");
  assert.deepEqual(leave.users, ["w"]);
  assert.equal(watcher.events.filter((e) => e.type === "join").length, 1);
  assert.equal(watcher.events.filter((e) => e.type === "leave").length, 1);
  await watcher.close();
});

Deno.test("a client that answers no ping for limits.idleTimeoutSeconds is closed with 1001", async () => {
  await using server = await startTestServer({ limits: { idleTimeoutSeconds: 1 } });
  // A raw TCP client that completes the handshake and then never answers anything.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(new TextEncoder().encode(
    "GET /chat?room=r&userName=mute HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1\r\n\r\n",
  ));
  const received: number[] = [];
  const buffer = new Uint8Array(4096);
  const closeFrame = async () => {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("the connection ended without a close frame");
      received.push(...buffer.subarray(0, n));
      // Frames after the HTTP head: opcode 0x8 is close, its payload starts with the code.
      const head = new TextDecoder().decode(new Uint8Array(received)).indexOf("\r\n\r\n");
      if (head === -1) continue;
      for (let i = head + 4; i + 3 < received.length;) {
        const opcode = received[i] & 0x0f;
        let length = received[i + 1] & 0x7f;
        let header = 2;
        // A longer frame (the welcome, for one) gives its length in the next 2 bytes.
        if (length === 126) [length, header] = [(received[i + 2] << 8) | received[i + 3], 4];
        if (opcode === 0x8) return (received[i + 2] << 8) | received[i + 3];
        i += header + length;
      }
    }
  };
  assert.equal(await within(closeFrame(), "the idle close", 10_000), 1001);
  conn.close();
});

Deno.test("resuming with since under continuous publishing loses nothing and repeats nothing", async () => {
  await using server = await startTestServer({ limits: { messagesPerSecond: 1e6, burst: 1e6 } });
  const { client: writer } = await joinRoom(server, { room: "seam", userName: "writer" });
  const total = 600;
  let sent = 0;
  // The writer keeps 8 messages in flight the whole time the reader comes and goes.
  const writing = (async () => {
    while (sent < total) {
      const acked = writer.events.filter((e) => e.type === "ack").length;
      while (sent < total && sent - acked < 8) {
        writer.send({ type: "message", body: `n${sent + 1}`, clientId: `w${sent}` });
        sent++;
      }
      await writer.waitFor("ack", Math.min(acked + 1, total));
    }
    await writer.waitFor("ack", total);
  })();
  const seen: number[] = [];
  let since = "0";
  for (let round = 0; round < 20 && seen.at(-1) !== total; round++) {
    const { client: reader } = await joinRoom(server, { room: "seam", userName: "reader", since });
    const want = Math.min(total - seen.length, 25 + round);
    const got = await reader.waitFor("message", want);
    for (const message of got.slice(0, want)) seen.push(message.id);
    since = String(seen.at(-1));
    await reader.close();
  }
  await writing;
  assert.equal(seen.length, total);
  assert.equal(seen[0], 1);
  for (let i = 1; i < seen.length; i++) {
    assert.equal(seen[i], seen[i - 1] + 1, `after ${seen[i - 1]} came ${seen[i]}`);
  }
  await writer.close();
});

Deno.test("a room of more than 100 lists the first 100 names and announces no joins", async () => {
  await using server = await startTestServer({ limits: { maxConnectionsPerIp: 200 } });
  const { client: first } = await joinRoom(server, { room: "big", userName: "u0" });
  const clients = [first];
  for (let i = 1; i <= 101; i++) {
    clients.push((await joinRoom(server, { room: "big", userName: `u${i}` })).client);
  }
  const joins = await first.waitFor("join", 99);
  assert.deepEqual(joins.at(-1)!.users.length, 100);
  const { client: late, welcome } = await joinRoom(server, { room: "big", userName: "late" });
  assert.equal(welcome.userCount, 103);
  assert.equal(welcome.users.length, 100);
  assert.equal(welcome.users[0], "u0");
  const rooms = await (await fetch(new URL("/rooms", server.url))).json();
  assert.deepEqual(rooms, [{ room: "big", users: 103, lastId: 0 }]);
  late.send({ type: "message", body: "still delivered", clientId: "1" });
  await first.waitFor("message", 1);
  assert.equal(first.events.filter((e) => e.type === "join").length, 99);
  await Promise.all([...clients, late].map((c) => c.close()));
});

Deno.test("clients that joined a room with history get every live message", async () => {
  await using server = await startTestServer();
  assert.equal((await postMessage(server, "r", "bot", "earlier")).id, 1);
  const { client: bob } = await joinRoom(server, { room: "r", userName: "bob" });
  const { client: alice } = await joinRoom(server, { room: "r", userName: "alice" });
  alice.send({ type: "message", body: "a", clientId: "a" });
  await alice.waitFor("ack", 1);
  alice.send({ type: "message", body: "b", clientId: "b" });
  await alice.waitFor("ack", 2);
  for (const client of [bob, alice]) {
    const messages = await client.waitFor("message", 3);
    assert.deepEqual(messages.map((m) => m.body), ["earlier", "a", "b"]);
  }
  await Promise.all([bob.close(), alice.close()]);
});

Deno.test("a message event carries its sender's clientId, live and replayed; legacy frames and /getAllMessages never do", async () => {
  await using server = await startTestServer();
  const { client: ann } = await joinRoom(server, { room: "lobby", userName: "ann" });
  const { client: bob } = await joinRoom(server, { room: "lobby", userName: "bob" });
  const legacy = new TestClient(server.wsUrl(), null);
  await legacy.opened;
  ann.send({ type: "message", body: "tagged", clientId: "ann-1" });
  ann.send({ type: "message", body: "plain" });
  for (const client of [ann, bob]) {
    const messages = await client.waitFor("message", 2);
    assert.deepEqual(messages.map((m) => [m.body, m.clientId]), [
      ["tagged", "ann-1"],
      ["plain", undefined],
    ]);
  }
  const { client: late } = await joinRoom(server, { room: "lobby", userName: "cat" });
  assert.deepEqual((await late.waitFor("message", 2)).map((m) => m.clientId), ["ann-1", undefined]);
  const frames = [await legacy.nextFrame(), await legacy.nextFrame()];
  assert.deepEqual(frames.map((f) => Object.keys(JSON.parse(f))), [
    ["userName", "body", "timestamp", "id"],
    ["userName", "body", "timestamp", "id"],
  ]);
  const all = await (await fetch(new URL("/getAllMessages", server.url))).text();
  assert.ok(!all.includes("clientId") && !all.includes("ann-1"), all);
  await Promise.all([ann.close(), bob.close(), late.close(), legacy.close()]);
});

Deno.test("an error caused by a command carries the command's clientId", async () => {
  await using server = await startTestServer({
    limits: { maxMessageBytes: 64, messagesPerSecond: 1, burst: 2 },
  });
  const stranger = new TestClient(server.wsUrl({ room: "r" }));
  await stranger.opened;
  stranger.send({ type: "message", body: "who am I" });
  stranger.send({ type: "message", body: "who am I", clientId: "s-1" });
  const unnamed = await stranger.waitFor("error", 2);
  assert.deepEqual(unnamed.map((e) => [e.code, e.clientId]), [
    ["bad_name", undefined],
    ["bad_name", "s-1"],
  ]);
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  ann.send({ type: "message", body: "x".repeat(65), clientId: "big" });
  ann.send({ type: "message", body: "fits", clientId: "ok" });
  ann.send({ type: "message", body: "one too many", clientId: "fast" });
  const errors = await ann.waitFor("error", 2);
  assert.deepEqual(errors.map((e) => [e.code, e.clientId]), [
    ["too_large", "big"],
    ["rate_limited", "fast"],
  ]);
  assert.equal((await ann.next("ack")).clientId, "ok");
  await Promise.all([stranger.close(), ann.close()]);
});

// Sessions over the in-memory transport: the real rooms, store and bus of one process, no sockets.

/** A process's rooms and what a session needs, with a way to connect sessions over memory. */
async function sessions(
  { maxMessagesPerRoom = 100, limits = defaultConfig.limits, maxReplay = 1000 }: {
    maxMessagesPerRoom?: number;
    limits?: Config["limits"];
    maxReplay?: number;
  } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "parley-session-" });
  const history = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom });
  const rooms = new Rooms(history, new LocalBus(history, null));
  const log = new Logger(`${dir}/parley.log`, false);
  const metrics = new Metrics();
  const admission = new Admission(limits, []);
  return {
    history,
    rooms,
    metrics,
    admission,
    /** The log so far. */
    log: () => (log.flush(), Deno.readTextFileSync(`${dir}/parley.log`)),
    connect(
      { room = "r", userName = null, since = null, dialect = "parley.v1", unread = false }: {
        room?: string;
        userName?: string | null;
        since?: number | null;
        dialect?: Dialect;
        /** The peer reads nothing until the test drains the transport. */
        unread?: boolean;
      } = {},
    ) {
      const transport = new MemoryTransport(unread);
      const closes: number[] = [];
      const client = new Client({
        transport,
        dialect,
        room: rooms.get(room),
        identity: ANYONE,
        userName,
        since,
        limits,
        onJoin: defaultConfig.history.onJoin,
        maxReplay,
        address: "peer",
        lease: admission.lease("peer")!,
        log,
        metrics,
        onClose: () => closes.push(1),
      });
      return { transport, client, closes };
    },
    async [Symbol.asyncDispose]() {
      log.close();
      await history.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const disconnects = (metrics: Metrics) =>
  exposition(metrics.samples({ rooms: 0, historyMessages: 0 })).split("\n")
    .filter((line) => line.startsWith("parley_disconnects_total"));

Deno.test("a close the runtime reports twice is handled once: one disconnect, one onClose", async () => {
  await using world = await sessions();
  const { transport, closes } = world.connect({ userName: "ann" });
  transport.open();
  assert.equal(transport.events()[0].type, "welcome");
  // What Deno does when limits.idleTimeoutSeconds passes: 1001, and then 1005.
  transport.reportClose(1001);
  transport.reportClose(1005);
  assert.deepEqual(closes, [1]);
  assert.deepEqual(disconnects(world.metrics), ['parley_disconnects_total{code="1001"} 1']);
  assert.equal(world.rooms.size, 0);
});

Deno.test("an unnamed parley.v1 connection holds its room open until it leaves, and no longer", async () => {
  await using world = await sessions();
  const unnamed = world.connect();
  unnamed.transport.open();
  // Someone else comes and goes meanwhile: the room must stay the one the unnamed client is in.
  const other = world.connect({ userName: "bob" });
  other.transport.open();
  other.transport.reportClose(1000);
  assert.equal(world.rooms.size, 1);
  unnamed.transport.receive({ type: "hello", userName: "ann" });
  await world.rooms.get("r").publish({ userName: "bot", body: "for ann" });
  await unnamed.transport.until(
    () => unnamed.transport.events().some((e) => e.type === "message" && e.body === "for ann"),
    "the message in ann's room",
  );
  unnamed.transport.reportClose(1000);
  assert.equal(world.rooms.size, 0);
  const silent = world.connect({ room: "quiet" });
  silent.transport.open();
  silent.transport.reportClose(1000);
  assert.equal(world.rooms.size, 0);
});

for (const dialect of ["parley.v1", "legacy"] as const) {
  Deno.test(`a ${dialect} client gets a message once where history and live copies meet`, async () => {
    await using world = await sessions();
    const reader = world.connect({ userName: "ann", dialect });
    const room = world.rooms.get("r");
    // Stored without the room hearing of it, as the bus of several instances may lag the store.
    const stored = [];
    for (const body of ["one", "two"]) {
      stored.push((await world.history.append({ room: "r", userName: "bot", body })).message);
    }
    reader.transport.open();
    const late = (await world.history.append({ room: "r", userName: "bot", body: "three" }))
      .message;
    // One batch: the live copies of the replayed messages, a join, and a new message.
    room.accept(messageEvent(stored[0]));
    world.connect({ userName: "bob" }).transport.open();
    room.accept(messageEvent(stored[1]));
    room.accept(messageEvent(late));
    const bodies = () =>
      dialect === "legacy"
        ? reader.transport.sent.map((frame) => JSON.parse(frame).body)
        : reader.transport.events().filter((e) => e.type === "message").map((e) => e.body);
    await reader.transport.until(() => bodies().length >= 3, "three messages");
    assert.deepEqual(bodies(), ["one", "two", "three"]);
    if (dialect === "parley.v1") {
      // Welcome, the replay, then what was live: the join stays where its batch lost messages.
      const live = reader.transport.events().slice(3);
      assert.deepEqual(live.map((e) => [e.type, e.body]), [["join", undefined], [
        "message",
        "three",
      ]]);
    }
    // Counted once per recipient, live: bob joined after "three" and has it as history.
    assert.equal(world.metrics.messagesOut, 1);
  });
}

Deno.test("an exception in a connection's own code closes it with 1011, logged once; the room goes on", async () => {
  await using world = await sessions();
  const room = world.rooms.get("r");
  const join = room.join.bind(room);
  room.join = (userName) => {
    if (userName === "boom") throw new Error("kaboom in join");
    join(userName);
  };
  const calm = world.connect({ userName: "calm" });
  calm.transport.open();
  const boom = world.connect();
  boom.transport.open();
  boom.transport.receive({ type: "hello", userName: "boom" });
  assert.equal(boom.transport.closedWith?.code, 1011);
  boom.transport.receive({ type: "hello", userName: "boom" });
  boom.transport.reportClose(1011);
  assert.deepEqual(boom.closes, [1]);
  // The pump of another connection: its transport fails while it sends a live event.
  const cut = world.connect({ userName: "cut" });
  cut.transport.open();
  cut.transport.send = () => {
    throw new Error("the wire is cut");
  };
  calm.transport.receive({ type: "message", body: "still here", clientId: "1" });
  await calm.transport.until(
    () => calm.transport.events().some((e) => e.type === "ack"),
    "calm's ack",
  );
  await cut.transport.until(() => cut.transport.closedWith !== null, "cut to be closed");
  assert.equal(cut.transport.closedWith?.code, 1011);
  assert.equal(calm.transport.state, "open");
  const failures = world.log().split("\n").filter((line) => line.includes("internal error"));
  assert.equal(failures.length, 2, world.log());
  assert.match(world.log(), /kaboom in join\\n\s+at /);
  assert.match(world.log(), /the wire is cut\\n\s+at /);
});

Deno.test("a connection whose join fails in the store is closed with 1011, logged once; other rooms chat on", async () => {
  await using server = await startTestServer({}, {
    onHistoryOpened: (store) => {
      const after = store.after.bind(store);
      store.after = (room, afterId, limit) => {
        if (room === "broken") throw new Error("the history of broken cannot be read");
        return after(room, afterId, limit);
      };
    },
  });
  await postMessage(server, "broken", "bot", "there is history to read");
  const { client: ann } = await joinRoom(server, { room: "fine", userName: "ann" });
  const { client: bob } = await joinRoom(server, { room: "fine", userName: "bob" });
  const victim = new TestClient(server.wsUrl({ room: "broken", userName: "eve" }));
  const closed = await within(victim.closed, "the close of the broken room's client");
  assert.equal(closed.code, 1011);
  assert.equal(victim.events.length, 0);
  ann.send({ type: "message", body: "still chatting", clientId: "1" });
  assert.equal((await bob.waitFor("message", 1))[0].body, "still chatting");
  bob.send({ type: "message", body: "so it seems", clientId: "2" });
  assert.equal((await ann.waitFor("message", 2))[1].body, "so it seems");
  const log = await Deno.readTextFile(`${server.dir}/parley.log`);
  const failures = log.split("\n").filter((line) => line.includes("cannot be read"));
  assert.equal(failures.length, 1, log);
  assert.match(log, /cannot be read\\n\s+at /);
  await Promise.all([ann.close(), bob.close()]);
});

Deno.test("an unnamed client that leaves without hello leaves no room open behind", async () => {
  await using server = await startTestServer();
  for (let i = 0; i < 3; i++) {
    const unnamed = new TestClient(server.wsUrl({ room: `ghost${i}` }));
    await unnamed.opened;
    await unnamed.close();
  }
  assert.equal(await metric(server, "parley_rooms"), 0);
  assert.deepEqual(await (await fetch(new URL("/rooms", server.url))).json(), []);
});

// Replaying history: bounded by history.maxReplay, sent as the socket drains.

/** Stores `count` messages of about `size` bytes in room "r", bodies starting with their number. */
async function stored(history: HistoryStore, count: number, size: number): Promise<void> {
  const filler = "y".repeat(size);
  await Promise.all(
    Array.from(
      { length: count },
      (_, i) => history.append({ room: "r", userName: "bot", body: `${i + 1} ${filler}` }),
    ),
  );
}

Deno.test("a resume is replayed a chunk at a time as the peer reads, with live events behind it; an unread peer holds at most about the limit and a chunk", async () => {
  const limits = { ...defaultConfig.limits, sendBufferBytes: 64 * 1024 };
  await using world = await sessions({ maxMessagesPerRoom: 5000, limits, maxReplay: 5000 });
  await stored(world.history, 3000, 1000);
  const slow = world.connect({ userName: "slow", since: 0, unread: true });
  const watcher = world.connect({ userName: "watcher" });
  watcher.transport.open();
  slow.transport.open();
  const ids = () => slow.transport.events().filter((e) => e.type === "message").map((e) => e.id);
  assert.equal(slow.transport.events()[0].type, "welcome");
  assert.equal(ids().length, 500, "the first chunk, and no more while the peer reads nothing");
  const chunkBytes = slow.transport.sent[1].length;

  await world.rooms.get("r").publish({ userName: "live", body: "during the replay" });
  await watcher.transport.until(
    () => watcher.transport.events().some((e) => e.body === "during the replay"),
    "the live message at a client that reads",
  );
  assert.equal(ids().length, 500, "the live message waits behind the replay");
  for (let chunk = 2; chunk <= 5; chunk++) {
    slow.transport.drain();
    await slow.transport.until(() => ids().length >= 500 * chunk, `chunk ${chunk}`);
    assert.equal(ids().length, 500 * chunk, "one chunk per drain");
  }
  // The last chunk, and right behind it the live message that waited.
  slow.transport.drain();
  await slow.transport.until(() => ids().length === 3001, "the live message after the replay");
  assert.deepEqual(ids(), Array.from({ length: 3001 }, (_, i) => i + 1));
  assert.equal(slow.transport.events().at(-1)?.body, "during the replay");
  const limit = limits.sendBufferBytes / 2 + chunkBytes;
  assert.ok(slow.transport.peakBuffered <= limit, `${slow.transport.peakBuffered} > ${limit}`);
  assert.equal(slow.transport.state, "open");
});

Deno.test("a client that reads nothing while it is replayed is closed with 1013 once the room's events pile up behind", async () => {
  const limits = { ...defaultConfig.limits, sendBufferBytes: 4096 };
  await using world = await sessions({ maxMessagesPerRoom: 10_000, limits });
  await stored(world.history, 600, 10);
  const stuck = world.connect({ userName: "stuck", since: 0, unread: true });
  stuck.transport.open();
  const room = world.rooms.get("r");
  // One batch per publish: each is delivered in a turn of its own.
  for (let i = 0; i < 5000 && stuck.transport.closedWith === null; i++) {
    await room.publish({ userName: "bot", body: `live ${i}` });
  }
  assert.deepEqual(stuck.transport.closedWith, {
    code: 1013,
    reason: "too slow: fell behind the room; reconnect",
  });
  assert.equal(world.metrics.drops, 1);
  assert.equal(world.admission.heldBy("peer"), 0, "its address's place is free at once");
  assert.equal(world.admission.open, 1, "its socket still counts until the runtime closes it");
  stuck.transport.reportClose(1006);
  assert.equal(world.admission.open, 0);
  assert.deepEqual(stuck.closes, [1]);
});

Deno.test("a client whose replay retention overtakes is closed with 1013, and resuming again says recovered: false", async () => {
  const limits = { ...defaultConfig.limits, sendBufferBytes: 4096 };
  await using world = await sessions({ maxMessagesPerRoom: 1000, limits });
  await stored(world.history, 1000, 10);
  const slow = world.connect({ userName: "slow", since: 0, unread: true });
  slow.transport.open();
  const room = world.rooms.get("r");
  for (let i = 0; i < 600; i++) await room.publish({ userName: "bot", body: `live ${i}` });
  // Messages 501 to 600, still to be replayed, are gone.
  slow.transport.drain();
  await slow.transport.until(() => slow.transport.closedWith !== null, "the close");
  assert.deepEqual(slow.transport.closedWith, {
    code: 1013,
    reason: "too slow: fell behind the room; reconnect",
  });
  const again = world.connect({ userName: "slow", since: 500 });
  again.transport.open();
  const [welcome] = again.transport.events();
  assert.deepEqual([welcome.type, welcome.recovered], ["welcome", false]);
});

Deno.test("a resume from further back than history.maxReplay gets the newest onJoin and recovered: false", async () => {
  await using server = await startTestServer({
    history: { maxReplay: 50, onJoin: 10 },
    limits: { messagesPerSecond: 1000, burst: 1000 },
  });
  const { client: ann } = await joinRoom(server, { room: "r", userName: "ann" });
  for (let i = 1; i <= 80; i++) ann.send({ type: "message", body: `m${i}`, clientId: `${i}` });
  await ann.waitFor("ack", 80, 10_000);
  const { client: far, welcome: lost } = await joinRoom(server, {
    room: "r",
    userName: "far",
    since: "29",
  });
  assert.equal(lost.recovered, false);
  assert.equal(lost.lastId, 80);
  assert.deepEqual(
    (await far.waitFor("message", 10)).map((m) => m.id),
    Array.from({ length: 10 }, (_, i) => 71 + i),
  );
  const { client: near, welcome } = await joinRoom(server, {
    room: "r",
    userName: "near",
    since: "30",
  });
  assert.equal(welcome.recovered, undefined);
  assert.deepEqual(
    (await near.waitFor("message", 50)).map((m) => m.id),
    Array.from({ length: 50 }, (_, i) => 31 + i),
  );
  ann.send({ type: "message", body: "live", clientId: "live" });
  for (const client of [far, near]) {
    assert.equal((await client.waitFor("message", client === far ? 11 : 51)).at(-1)?.id, 81);
  }
  assert.equal(far.events.filter((e) => e.type === "message").length, 11);
  await Promise.all([ann.close(), far.close(), near.close()]);
});

Deno.test("a peer that stops reading during a large replay gets all of it, and what was said meanwhile after it, once it reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-replay-" });
  try {
    const path = `${dir}/parley.db`;
    const history = HistoryStore.open({ path, maxMessagesPerRoom: 5000 });
    await stored(history, 2000, 4000);
    await history.close();
    await using server = await startTestServer({
      history: { path, maxReplay: 5000, maxMessagesPerRoom: 5000 },
      limits: { sendBufferBytes: 65536 },
    });
    // 8 MB to replay: more than the kernel buffers of a connection that is not read.
    using reader = await RawSocket.connect(server.port, {
      room: "r",
      userName: "late",
      since: "0",
    });
    const live = await postMessage(server, "r", "bot", "said during the replay");
    assert.equal(live.id, 2001);
    const events = await reader.events((got) => got.some((e) => e.id === 2001));
    const ids = events.filter((e) => e.type === "message").map((e) => e.id);
    assert.equal(events[0].type, "welcome");
    assert.deepEqual(ids, Array.from({ length: 2001 }, (_, i) => i + 1));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a slow consumer closed with 1013 frees its address's place at once, though its peer never reads", async () => {
  await using server = await startTestServer({
    limits: {
      sendBufferBytes: 65536,
      messagesPerSecond: 1e6,
      burst: 1e6,
      readsPerSecond: 1e6,
      maxConnectionsPerIp: 1,
    },
  });
  using stuck = await RawSocket.connect(server.port, { room: "r", userName: "stuck" });
  const drops = () => metric(server, "parley_slow_consumer_drops_total");
  const body = "z".repeat(4000);
  // Bounded: the kernel buffers some megabytes before the server sees backpressure.
  for (let sent = 0; (await drops()) === 0 && sent < 20_000; sent += 20) {
    await Promise.all(Array.from({ length: 20 }, () => postMessage(server, "r", "bot", body)));
  }
  assert.equal(await drops(), 1);
  // The only place of 127.0.0.1 was the stuck socket's, which its peer still holds open.
  const { client, welcome } = await joinRoom(server, { room: "r", userName: "next" });
  assert.deepEqual(welcome.users, ["next"]);
  await client.close();
  stuck.close();
});

Deno.test("what a client sent is quoted and cut in the log, and its refusals are logged at most 10 per 10 s", async () => {
  const limits = { ...defaultConfig.limits, messagesPerSecond: 1e6, burst: 1e6 };
  await using world = await sessions({ limits });
  const { transport } = world.connect({ userName: "ann" });
  transport.open();
  const forged = `${"x".repeat(3000)}\n2026-01-01T00:00:00.000Z info forged line`;
  for (let i = 0; i < 30; i++) transport.receive({ type: forged });
  await transport.until(
    () => transport.events().filter((e) => e.type === "error").length === 30,
    "30 errors to the client",
  );
  transport.reportClose(4000, "bye\nerror forged close");
  const lines = world.log().split("\n");
  const refusals = lines.filter((line) => line.includes("bad_frame"));
  assert.equal(refusals.length, 10, world.log());
  for (const line of refusals) {
    assert.ok(line.length < 400, `a line of ${line.length} characters`);
    assert.match(line, /room="r" bad_frame: "unknown frame type \\"x+… \(\d+ characters\)/);
  }
  assert.ok(!lines.some((line) => /^\S+ (info|error) forged/.test(line)), world.log());
  assert.match(world.log(), /close peer room="r" code=4000 "bye\\nerror forged close"\n/);
});
