/**
 * The page's link to the server (static/connection.js), on a fake socket and clock: online only
 * after a welcome, a jittered backoff that doubles up to its cap, `since` on every reconnect, and
 * nothing heard from a socket it has let go.
 */
import assert from "node:assert/strict";
import {
  BACKOFF_MAX_MS,
  BACKOFF_MIN_MS,
  closeReason,
  Connection,
  type ConnectionStatus,
  isBan,
  socketUrl,
} from "../static/connection.js";
import type { ServerEvent } from "../static/protocol.js";
import { FakeSocket, FakeTimers } from "./page_fakes.ts";

const welcome = { type: "welcome", room: "ops", userName: "alice", users: [], lastId: 0 };

/** A connection to room "ops" as alice, recording what it reports; `onDrop` runs on each drop. */
function setup(random = () => 1, onDrop = (_connection: Connection) => {}) {
  FakeSocket.reset();
  const timers = new FakeTimers();
  const statuses: ConnectionStatus[] = [];
  const frames: ServerEvent[][] = [];
  const drops: { code: number; reason: string }[] = [];
  const connection = new Connection({
    origin: { protocol: "http:", host: "chat.example:8080" },
    WebSocket: FakeSocket,
    timers,
    now: () => timers.now,
    random,
    onEvents: (events) => frames.push(events),
    onStatus: (status) => statuses.push(status),
    onDrop: (close) => {
      drops.push(close);
      onDrop(connection);
    },
  });
  return { connection, timers, statuses, frames, drops };
}

const since = (socket: FakeSocket) => new URL(socket.url).searchParams.get("since");

Deno.test("the socket URL names the room and person, and `since` when there is one", () => {
  assert.equal(
    socketUrl({ protocol: "http:", host: "h:1" }, "ops", "al ice", null),
    "ws://h:1/chat?room=ops&userName=al+ice",
  );
  assert.equal(
    socketUrl({ protocol: "https:", host: "h" }, "ops", "bob", 0),
    "wss://h/chat?room=ops&userName=bob&since=0",
  );
});

Deno.test("online only after the welcome; events arrive a frame at a time", () => {
  const { connection, statuses, frames } = setup();
  connection.open("ops", "alice");
  const socket = FakeSocket.last;
  assert.equal(socket.protocol, "parley.v1");
  assert.equal(socket.url, "ws://chat.example:8080/chat?room=ops&userName=alice");
  assert.deepEqual(statuses, [{ state: "connecting" }]);
  assert.equal(connection.online, false);
  assert.equal(connection.send("{}"), false);
  assert.deepEqual(socket.sent, []);

  const message = { type: "message", id: 1, userName: "bob", body: "hi", timestamp: "" };
  socket.receive(welcome, message);
  assert.equal(connection.online, true);
  assert.deepEqual(statuses.at(-1), { state: "online" });
  assert.deepEqual(frames.map((f) => f.map((e) => e.type)), [["welcome", "message"]]);
  assert.equal(connection.send('{"type":"message"}'), true);
  assert.deepEqual(socket.sent, ['{"type":"message"}']);
});

Deno.test("a drop is reported, then a reconnect after a doubling, capped, jittered wait", () => {
  const { connection, timers, statuses, drops } = setup(() => 1);
  connection.open("ops", "alice");
  FakeSocket.last.drop(1011, "");
  assert.deepEqual(drops, [{ code: 1011, reason: "" }]);
  assert.equal(connection.online, false);
  const waits: number[] = [];
  for (let i = 0; i < 7; i++) {
    const wait = timers.nextDelay()!;
    waits.push(wait);
    assert.deepEqual(statuses.at(-1), { state: "waiting", retryAt: timers.now + wait });
    timers.advance(wait);
    assert.deepEqual(statuses.at(-1), { state: "reconnecting" });
    FakeSocket.last.drop();
  }
  assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, BACKOFF_MAX_MS, BACKOFF_MAX_MS]);
  assert.equal(FakeSocket.made.length, 8);

  // A welcome resets the backoff; the least random wait is half the ceiling.
  const low = setup(() => 0);
  low.connection.open("ops", "alice");
  FakeSocket.last.drop();
  assert.equal(low.timers.nextDelay(), BACKOFF_MIN_MS / 2);
  low.timers.advance(BACKOFF_MIN_MS);
  FakeSocket.last.drop();
  assert.equal(low.timers.nextDelay(), BACKOFF_MIN_MS);
  low.timers.advance(BACKOFF_MIN_MS);
  FakeSocket.last.receive(welcome);
  FakeSocket.last.drop();
  assert.equal(low.timers.nextDelay(), BACKOFF_MIN_MS / 2);
});

Deno.test("a reconnect resumes after the newest message received", () => {
  const { connection, timers } = setup();
  connection.open("ops", "alice");
  connection.resumeAfter(41);
  connection.resumeAfter(40); // an older one, from "Load older"
  FakeSocket.last.drop();
  timers.advance(timers.nextDelay()!);
  assert.equal(since(FakeSocket.last), "41");

  // An empty room: the reconnect asks for everything since 0; a message moves it on.
  connection.open("ops", "alice");
  assert.equal(since(FakeSocket.last), null);
  connection.resumeFromStart();
  FakeSocket.last.drop();
  timers.advance(timers.nextDelay()!);
  assert.equal(since(FakeSocket.last), "0");
  connection.resumeAfter(1);
  connection.resumeFromStart();
  connection.forgetPosition();
  FakeSocket.last.drop();
  timers.advance(timers.nextDelay()!);
  assert.equal(since(FakeSocket.last), null);
});

Deno.test("after close nothing is heard from the old socket and nothing reconnects", () => {
  const { connection, timers, frames, drops } = setup();
  connection.open("ops", "alice");
  const old = FakeSocket.last;
  old.receive(welcome);
  connection.close();
  assert.deepEqual(old.closedWith, { code: 1000, reason: "bye" });
  assert.equal(connection.online, false);
  old.receive({ type: "message", id: 9, userName: "bob", body: "late", timestamp: "" });
  old.drop();
  assert.deepEqual(drops, []);
  assert.equal(frames.length, 1);
  assert.equal(timers.nextDelay(), null);
  connection.reconnectNow();
  assert.equal(FakeSocket.made.length, 1);

  // Switching rooms: the first room's socket is let go the same way.
  connection.open("ops", "alice");
  const first = FakeSocket.last;
  connection.open("garden", "alice");
  first.drop();
  assert.deepEqual(drops, []);
  assert.equal(new URL(FakeSocket.last.url).searchParams.get("room"), "garden");
});

Deno.test("reconnectNow skips the wait; a socket that cannot be made is retried", () => {
  const { connection, timers } = setup();
  connection.open("ops", "alice");
  FakeSocket.last.drop();
  assert.ok(timers.nextDelay()! > 0);
  connection.reconnectNow();
  assert.equal(FakeSocket.made.length, 2);
  assert.equal(timers.nextDelay(), null);
  connection.reconnectNow(); // already connecting: no second socket
  assert.equal(FakeSocket.made.length, 2);

  FakeSocket.failNext = new SyntaxError("bad url");
  FakeSocket.last.drop();
  timers.advance(timers.nextDelay()!);
  assert.equal(FakeSocket.made.length, 2);
  timers.advance(timers.nextDelay()!);
  assert.equal(FakeSocket.made.length, 3);
});

Deno.test("close codes become sentences; a plain close says nothing", () => {
  assert.equal(closeReason({ code: 1000, reason: "" }), "");
  assert.equal(closeReason({ code: 1006, reason: "" }), "");
  assert.match(closeReason({ code: 1013, reason: "" }), /fell behind/);
  assert.equal(closeReason({ code: 1008, reason: "origin" }), "Disconnected: origin");
});

Deno.test("a refusal on policy (1008: banned, removed) is final: no reconnect until opened again", () => {
  for (const reason of ["banned", "removed from the room", ""]) {
    const { connection, timers, statuses, drops } = setup();
    connection.open("ops", "alice");
    FakeSocket.last.receive(welcome);
    FakeSocket.last.drop(1008, reason);
    assert.deepEqual(drops, [{ code: 1008, reason }]);
    assert.deepEqual(statuses.at(-1), { state: "stopped" }, reason);
    assert.equal(connection.stopped, true);
    assert.equal(timers.nextDelay(), null, `a reconnect is scheduled after "${reason}"`);
    connection.reconnectNow(); // the tab coming back does not undo it
    assert.equal(FakeSocket.made.length, 1);
    connection.open("ops", "alice");
    assert.equal(connection.stopped, false);
    assert.equal(FakeSocket.made.length, 2);
  }
  // Any other close is retried, as before.
  const { timers, connection } = setup();
  connection.open("ops", "alice");
  FakeSocket.last.drop(1011, "");
  assert.equal(connection.stopped, false);
  assert.ok(timers.nextDelay()! > 0);
});

Deno.test("a drop handler that closes the connection (signed out) is not overruled", () => {
  const { connection, timers, statuses } = setup(() => 1, (c) => c.close());
  connection.open("ops", "alice");
  FakeSocket.last.drop(1006, "");
  assert.equal(timers.nextDelay(), null, "it reconnects although the page closed it");
  assert.deepEqual(statuses, [{ state: "connecting" }]);
  assert.equal(FakeSocket.made.length, 1);

  // One that opens another room is not overruled either: that room's socket is the one kept.
  let reopened = false;
  const other = setup(() => 1, (c) => {
    if (reopened) return;
    reopened = true;
    c.open("garden", "alice");
  });
  other.connection.open("ops", "alice");
  FakeSocket.last.drop(1006, "");
  assert.equal(new URL(FakeSocket.last.url).searchParams.get("room"), "garden");
  assert.equal(other.timers.nextDelay(), null);
  assert.equal(FakeSocket.made.length, 2);
});

Deno.test("a ban and a removal are told apart from other refusals", () => {
  assert.equal(isBan({ code: 1008, reason: "banned" }), true);
  assert.equal(isBan({ code: 1000, reason: "banned" }), false);
  assert.equal(isBan({ code: 1008, reason: "removed from the room" }), false);
  assert.match(closeReason({ code: 1008, reason: "banned" }), /^This account has been banned/);
  assert.match(
    closeReason({ code: 1008, reason: "removed from the room" }),
    /^You were removed from this room/,
  );
  assert.equal(
    closeReason({ code: 1008, reason: "too many connections from 10.0.0.1; the limit is 20" }),
    "Disconnected: too many connections from 10.0.0.1; the limit is 20",
  );
});
