/**
 * Who may read and post where, outside open mode, against a real server: a person posts under
 * their account's name only, nobody without a credential reads anything, a private or direct
 * room is invisible to whoever is not in it (answering as a room that does not exist), and a ban
 * or a removal closes the connections the person lost.
 */

import assert from "node:assert/strict";
import { Browser, invite, withPeople } from "./people.ts";
import {
  type HasUrl,
  parleyDir,
  ParleyProcess,
  startTestServer,
  TestClient,
  type TestServer,
  within,
} from "./support.ts";

/** An HTTP answer as bytes a client could compare: status, content type, body text. */
interface RawAnswer {
  status: number;
  type: string | null;
  text: string;
}

/** `method path` as `who` (a browser with its cookie, or headers), answered as bytes. */
async function ask(
  server: HasUrl,
  path: string,
  who: Browser | Record<string, string> = {},
  init: RequestInit = {},
): Promise<RawAnswer> {
  const headers = who instanceof Browser
    ? (who.cookie === null ? {} : { cookie: who.cookie })
    : who;
  const response = await fetch(new URL(path, server.url), {
    ...init,
    headers: { ...headers, ...init.headers as Record<string, string> },
  });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    text: await response.text(),
  };
}

/** The HTTP answer to a WebSocket upgrade of `/chat?query`, with `headers`, on a raw TCP connection. */
async function upgradeAnswer(
  server: TestServer,
  query: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; error: string | null; head: string }> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  await conn.write(new TextEncoder().encode(
    `GET /chat?${new URLSearchParams(query)} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`,
  ));
  let text = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  const read = async () => {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
      const [head, body] = text.split("\r\n\r\n", 2);
      if (/^HTTP\/1.1 101/.test(head) && body !== undefined) return;
      const length = /content-length: (\d+)/i.exec(head)?.[1];
      if (body !== undefined && length !== undefined && body.length >= Number(length)) return;
    }
  };
  await within(read(), "the answer to the upgrade");
  const [head, body] = text.split("\r\n\r\n", 2);
  const status = Number(/^HTTP\/1.1 (\d+)/.exec(head)![1]);
  return { status, error: status === 101 ? null : JSON.parse(body).error, head };
}

/** A `parley.v1` client of `room` signed in as `who` (its cookie), or with these headers. */
function connect(
  server: TestServer,
  query: Record<string, string>,
  who: Browser | Record<string, string>,
  protocol: string | null = "parley.v1",
): TestClient {
  const headers = who instanceof Browser ? who.headers : who;
  return new TestClient(server.wsUrl(query), protocol, { headers });
}

Deno.test("setup, admin, invite, a second person: both chat over WebSocket under their accounts' names", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const adminSocket = connect(server, { room: "lobby", userName: "mallory" }, admin);
  const welcome = await adminSocket.next("welcome");
  assert.equal(welcome.userName, "Admin", "the account's name, not the query's");
  const bearer = { authorization: `Bearer ${await bob.token()}` };
  // No name in the query and no hello: the account names the connection.
  const bobSocket = connect(server, { room: "lobby" }, bearer);
  assert.equal((await bobSocket.next("welcome")).userName, "bob");
  assert.deepEqual((await adminSocket.next("join")).users, ["Admin", "bob"]);
  bobSocket.send({ type: "message", body: "hi admin", clientId: "b1" });
  adminSocket.send({ type: "message", body: "hi bob", clientId: "a1" });
  for (const socket of [adminSocket, bobSocket]) {
    const messages = await socket.waitFor("message", 2);
    assert.deepEqual(
      messages.map((m) => [m.userName, m.body]).sort(),
      [["Admin", "hi bob"], ["bob", "hi admin"]],
    );
  }
  await Promise.all([adminSocket.close(), bobSocket.close()]);
});

Deno.test("nobody can post as someone else: the name in a query, hello, legacy frame or POST is ignored", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const token = await bob.token();
  const bearer = { authorization: `Bearer ${token}` };
  const v1 = connect(server, { room: "r", userName: "Admin" }, bearer);
  assert.equal((await v1.next("welcome")).userName, "bob");
  v1.send({ type: "hello", userName: "Admin" });
  v1.send({ type: "message", body: "v1", clientId: "same", userName: "Admin" });
  assert.equal((await v1.next("ack")).id, 1);
  assert.equal(v1.events.filter((e) => e.type === "error").length, 0, "the hello is ignored");

  const legacy = connect(server, { room: "r", userName: "Admin" }, bearer, null);
  await legacy.opened;
  legacy.send({ userName: "Admin", body: "legacy", timestamp: "" });
  legacy.send({ body: "legacy without a name" });
  const frames = [await legacy.nextFrame(), await legacy.nextFrame(), await legacy.nextFrame()];
  assert.deepEqual(frames.map((frame) => JSON.parse(frame).userName), ["bob", "bob", "bob"]);

  const viaQuery = await ask(server, "/rooms/r/messages?userName=Admin", bearer, {
    method: "POST",
    body: "query",
  });
  assert.equal(viaQuery.status, 201, viaQuery.text);
  const viaJson = await ask(server, "/rooms/r/messages", bearer, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userName: "Admin", body: "json" }),
  });
  assert.equal(viaJson.status, 201, viaJson.text);
  const viaCookie = await bob.call("POST", "/rooms/r/messages", { userName: "Admin", body: "c" });
  assert.equal(viaCookie.body.userName, "bob");

  // A clientId is bob's own: the admin's same clientId is another message.
  const adminSocket = connect(server, { room: "r" }, admin);
  await adminSocket.next("welcome");
  adminSocket.send({ type: "message", body: "admin's", clientId: "same" });
  assert.equal((await adminSocket.next("ack")).id, 7);

  const history = JSON.parse((await ask(server, "/history?room=r", bob)).text).messages;
  assert.deepEqual(
    history.map((m: { userName: string; body: string }) => [m.userName, m.body]),
    [
      ["bob", "v1"],
      ["bob", "legacy"],
      ["bob", "legacy without a name"],
      ["bob", "query"],
      ["bob", "json"],
      ["bob", "c"],
      ["Admin", "admin's"],
    ],
  );
  await Promise.all([v1.close(), legacy.close(), adminSocket.close()]);
});

Deno.test("without a credential every route of a room is 401 with a sentence, the upgrade before upgrading", async () => {
  await using server = await startTestServer({ auth: { mode: "accounts" } });
  const needs = /^this server needs an account: sign in on its page, or send an API token/;
  // No admin yet: nobody has a credential.
  for (const path of ["/history", "/history?room=ops", "/getAllMessages", "/rooms"]) {
    const answer = await ask(server, path);
    assert.equal(answer.status, 401, path);
    assert.match(JSON.parse(answer.text).error, needs, path);
  }
  const posted = await ask(server, "/rooms/ops/messages?userName=x", {}, {
    method: "POST",
    body: "hi",
  });
  assert.equal(posted.status, 401);
  const dialects: Record<string, string>[] = [{}, { "sec-websocket-protocol": "parley.v1" }];
  for (const protocol of dialects) {
    const refused = await upgradeAnswer(server, { room: "lobby", userName: "gopher" }, protocol);
    assert.equal(refused.status, 401, refused.head);
    assert.match(refused.error!, needs);
    assert.match(refused.head, /www-authenticate: Bearer realm="parley"/i);
  }
  const forged = await upgradeAnswer(server, {}, { authorization: "Bearer parley_forged" });
  assert.equal(forged.status, 401);
  assert.match(forged.error!, /unknown or was revoked/);
  assert.equal((await ask(server, "/")).status, 200, "the page itself is public");
  assert.equal((await ask(server, "/healthz")).status, 200);
});

Deno.test("API tokens work on the upgrade; a revoked one is 401 before it", async () => {
  const { server, bob } = await withPeople();
  await using _ = server;
  const made = await bob.call("POST", "/api/tokens", { label: "bot" });
  const bearer = { authorization: `Bearer ${made.body.token}` };
  assert.equal((await upgradeAnswer(server, { room: "ops" }, bearer)).status, 101);
  assert.equal((await bob.call("DELETE", `/api/tokens/${made.body.id}`)).status, 204);
  const revoked = await upgradeAnswer(server, { room: "ops" }, bearer);
  assert.equal(revoked.status, 401);
  assert.match(revoked.error!, /revoked/);
});

/** What `who` gets from every reading route for `room`, as bytes. */
async function readings(server: TestServer, who: Browser, room: string): Promise<RawAnswer[]> {
  const paths = [
    `/history?room=${room}`,
    `/history?room=${room}&limit=1`,
    `/history?room=${room}&after=0`,
    `/history?room=${room}&before=2`,
    `/history?room=${room}&around=2`,
    `/search?q=one&room=${room}`,
    `/api/rooms/${room}/members`,
  ];
  return await Promise.all(paths.map((path) => ask(server, path, who)));
}

/** The rooms `who`'s `/rooms` lists, by name. */
async function roomsOf(server: TestServer, who: Browser): Promise<Record<string, unknown>[]> {
  return JSON.parse((await ask(server, "/rooms", who)).text);
}

Deno.test("a private room answers a non-member exactly as a room that does not exist, in every route", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  // What bob is told of "staff" and of the lobby before they exist.
  const before = await readings(server, bob, "staff");
  const beforeLobby = await ask(server, "/getAllMessages", bob);
  assert.deepEqual(before.map((answer) => answer.status), [200, 200, 200, 200, 200, 200, 404]);

  for (const room of ["staff", "lobby"]) {
    const made = await admin.call("POST", "/api/rooms", { room, kind: "private" });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual(made.body, { room, kind: "private", members: ["Admin"] });
    for (const body of ["one", "two", "three"]) {
      assert.equal((await admin.call("POST", `/rooms/${room}/messages`, { body })).status, 201);
    }
  }
  assert.deepEqual(await readings(server, bob, "staff"), before);
  assert.deepEqual(await ask(server, "/getAllMessages", bob), beforeLobby);
  const lobby = JSON.parse((await ask(server, "/getAllMessages", admin)).text);
  assert.equal(lobby.Messages.length, 3);
  assert.deepEqual(await roomsOf(server, bob), []);
  assert.deepEqual(await roomsOf(server, admin), [
    { room: "lobby", users: 0, lastId: 3, kind: "private", lastRead: 0, mentions: 0 },
    { room: "staff", users: 0, lastId: 3, kind: "private", lastRead: 0, mentions: 0 },
  ]);
  const post = await bob.call("POST", "/rooms/staff/messages", { body: "let me in" });
  assert.equal(post.status, 404);
  assert.equal(post.body.error, 'there is no room "staff" that you may post in');

  // The WebSocket is refused after the upgrade, so that a browser can read why.
  const v1 = connect(server, { room: "staff" }, bob);
  const error = await v1.next("error");
  const why = 'there is no room "staff" that you may join';
  assert.deepEqual([error.code, error.message], ["bad_room", why]);
  const closed = await within(v1.closed, "the close");
  assert.deepEqual([closed.code, closed.reason], [1008, why]);
  const legacy = connect(server, {}, bob, null);
  assert.equal((await within(legacy.closed, "the legacy close")).code, 1008);
  assert.equal(legacy.frames.length, 0, "not one message of the lobby");

  // Once a member, bob sees it all.
  const added = await admin.call("POST", "/api/rooms/staff/members", { userName: "BOB" });
  assert.deepEqual(added.body, { room: "staff", kind: "private", members: ["Admin", "bob"] });
  const inside = await readings(server, bob, "staff");
  assert.equal(JSON.parse(inside[0].text).messages.length, 3);
  assert.equal(JSON.parse(inside[4].text).messages.length, 3, "around=2");
  assert.deepEqual(JSON.parse(inside[5].text).results.map((hit: { id: number }) => hit.id), [1]);
  assert.deepEqual(await roomsOf(server, bob), [
    { room: "staff", users: 0, lastId: 3, kind: "private", lastRead: 0, mentions: 0 },
  ]);
  const member = connect(server, { room: "staff" }, bob);
  assert.equal((await member.waitFor("message", 3)).length, 3);
  await member.close();
});

Deno.test("/rooms pages over the rooms the requester may see, however many it may not", async () => {
  const { server, admin, bob } = await withPeople(undefined, {}, {
    limits: { messagesPerSecond: 1000, burst: 1000 },
  });
  await using _ = server;
  for (const room of ["a1", "a2", "a3", "a4", "a5", "a6"]) {
    assert.equal((await admin.call("POST", "/api/rooms", { room, kind: "private" })).status, 201);
    await admin.call("POST", `/rooms/${room}/messages`, { body: "x" });
  }
  for (const room of ["a0", "a7", "b"]) {
    await admin.call("POST", `/rooms/${room}/messages`, { body: "x" });
  }
  // bob is in a private room without a message yet: it is listed for him.
  await admin.call("POST", "/api/rooms", { room: "a35", kind: "private" });
  await admin.call("POST", "/api/rooms/a35/members", { userName: "bob" });
  const pages: string[][] = [];
  let next: string | null = "/rooms?limit=2";
  while (next !== null) {
    const response: Response = await fetch(new URL(next, server.url), { headers: bob.headers });
    pages.push((await response.json()).map((entry: { room: string }) => entry.room));
    next = /^<([^>]+)>; rel="next"$/.exec(response.headers.get("link") ?? "")?.[1] ?? null;
  }
  assert.deepEqual(pages, [["a0", "a35"], ["a7", "b"]]);
});

Deno.test("private rooms: made once by anyone signed in; its maker and admins manage its members", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const { browser: carol } = await invite(admin, "carol");
  const { browser: dave } = await invite(admin, "dave");
  assert.equal((await bob.call("POST", "/api/rooms", { room: "bobs" })).status, 400, "no kind");
  assert.equal(
    (await bob.call("POST", "/api/rooms", { room: "a b", kind: "private" })).status,
    400,
  );
  assert.equal(
    (await bob.call("POST", "/api/rooms", { room: "bobs", kind: "private" })).status,
    201,
  );
  const again = await carol.call("POST", "/api/rooms", { room: "bobs", kind: "private" });
  assert.equal(again.status, 409);
  assert.match(again.body.error, /exists already/);
  await carol.call("POST", "/rooms/open1/messages", { body: "an open room with history" });
  assert.equal(
    (await carol.call("POST", "/api/rooms", { room: "open1", kind: "private" })).status,
    409,
  );

  // An admin who is no member may add people; a member who is not the maker may not.
  assert.equal(
    (await admin.call("POST", "/api/rooms/bobs/members", { userName: "carol" })).status,
    200,
  );
  const byCarol = await carol.call("POST", "/api/rooms/bobs/members", { userName: "dave" });
  assert.equal(byCarol.status, 403);
  assert.equal((await carol.call("DELETE", "/api/rooms/bobs/members/bob")).status, 403);
  const unknown = await bob.call("POST", "/api/rooms/bobs/members", { userName: "nobody" });
  assert.equal(unknown.status, 404);
  // A non-member learns nothing: the same 404 as for a room that is not private.
  const hidden = await dave.call("GET", "/api/rooms/bobs/members");
  const none = await dave.call("GET", "/api/rooms/bobz/members");
  assert.equal(hidden.status, 404);
  assert.equal(hidden.body.error, none.body.error.replace("bobz", "bobs"));
  assert.equal(
    (await dave.call("POST", "/api/rooms/bobs/members", { userName: "dave" })).status,
    404,
  );
  assert.deepEqual((await carol.call("GET", "/api/rooms/bobs/members")).body.members, [
    "bob",
    "carol",
  ]);
  // A member may leave.
  assert.equal((await carol.call("DELETE", "/api/rooms/bobs/members/carol")).status, 204);
  assert.equal((await carol.call("GET", "/api/rooms/bobs/members")).status, 404);
  assert.equal((await bob.call("DELETE", "/api/rooms/bobs/members/carol")).status, 404);
  const log = await Deno.readTextFile(server.config.logfilePath);
  assert.match(log, /"bob" made the private room "bobs"/);
  assert.match(log, /"Admin" added "carol" to "bobs"/);
});

Deno.test("a direct room is the same for the pair in either order, opaque, and theirs alone", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const { browser: carol } = await invite(admin, "carol");
  const made = await bob.call("POST", "/api/direct", { userName: "admin" });
  assert.equal(made.status, 201);
  const { room } = made.body;
  assert.deepEqual(made.body, { room, kind: "direct", with: "Admin" });
  assert.match(room, /^dm\.[\w-]{16}$/, "a name that says nothing of the two");
  const again = await bob.call("POST", "/api/direct", { userName: "Admin" });
  assert.deepEqual([again.status, again.body.room], [200, room]);
  const reverse = await admin.call("POST", "/api/direct", { userName: "bob" });
  assert.deepEqual([reverse.status, reverse.body], [200, { room, kind: "direct", with: "bob" }]);
  const other = await carol.call("POST", "/api/direct", { userName: "bob" });
  assert.notEqual(other.body.room, room);
  assert.equal((await bob.call("POST", "/api/direct", { userName: "bob" })).status, 400);
  assert.equal((await bob.call("POST", "/api/direct", { userName: "nobody" })).status, 404);

  assert.deepEqual((await admin.call("GET", "/api/direct")).body, [{ room, with: "bob" }]);
  assert.deepEqual((await bob.call("GET", "/api/direct")).body, [
    { room, with: "Admin" },
    { room: other.body.room, with: "carol" },
  ]);
  assert.equal((await bob.call("POST", `/rooms/${room}/messages`, { body: "psst" })).status, 201);
  const adminSocket = connect(server, { room }, admin);
  assert.equal((await adminSocket.waitFor("message", 1))[0].body, "psst");
  assert.deepEqual(await roomsOf(server, admin), [
    { room, users: 1, lastId: 1, kind: "direct", with: "bob", lastRead: 0, mentions: 0 },
  ]);

  const outside = await ask(server, `/history?room=${room}`, carol);
  assert.deepEqual(JSON.parse(outside.text), { room, messages: [], hasMore: false });
  assert.equal((await carol.call("POST", `/rooms/${room}/messages`, { body: "hi" })).status, 404);
  assert.deepEqual(
    (await roomsOf(server, carol)).map((entry) => entry.room),
    [other.body.room],
  );
  const refused = connect(server, { room }, carol);
  assert.equal((await refused.next("error")).code, "bad_room");
  assert.equal((await within(refused.closed, "the close")).code, 1008);
  assert.equal((await bob.call("GET", `/api/rooms/${room}/members`)).status, 404, "no members API");
  await adminSocket.close();
});

Deno.test("removing a member closes their connections to that room (1008) and no others", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  await admin.call("POST", "/api/rooms", { room: "staff", kind: "private" });
  await admin.call("POST", "/api/rooms/staff/members", { userName: "bob" });
  const token = { authorization: `Bearer ${await bob.token()}` };
  const inStaff = [
    connect(server, { room: "staff" }, bob),
    connect(server, { room: "staff" }, token, null),
  ];
  const inLobby = connect(server, { room: "lobby" }, bob);
  const adminInStaff = connect(server, { room: "staff" }, admin);
  await Promise.all([inStaff[0], inLobby, adminInStaff].map((socket) => socket.next("welcome")));
  await inStaff[1].opened;
  assert.equal((await admin.call("DELETE", "/api/rooms/staff/members/bob")).status, 204);
  for (const socket of inStaff) {
    const closed = await within(socket.closed, "the removed member's close");
    assert.deepEqual([closed.code, closed.reason], [1008, "removed from the room"]);
  }
  inLobby.send({ type: "message", body: "still here", clientId: "1" });
  assert.equal((await inLobby.next("ack")).id, 1);
  adminInStaff.send({ type: "message", body: "and me", clientId: "1" });
  assert.equal((await adminInStaff.next("ack")).id, 1);
  await Promise.all([inLobby.close(), adminInStaff.close()]);
});

Deno.test("a ban closes every connection of the person (1008 banned), and nobody else's", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const token = { authorization: `Bearer ${await bob.token()}` };
  const bobs = [
    connect(server, { room: "lobby" }, bob),
    connect(server, { room: "ops" }, token),
    connect(server, { room: "ops" }, token, null),
  ];
  const admins = connect(server, { room: "ops" }, admin);
  await Promise.all([bobs[0], bobs[1], admins].map((socket) => socket.next("welcome")));
  await bobs[2].opened;
  assert.equal((await admin.call("POST", "/api/users/bob/ban")).status, 200);
  for (const socket of bobs) {
    const closed = await within(socket.closed, "the banned person's close");
    assert.deepEqual([closed.code, closed.reason], [1008, "banned"]);
  }
  admins.send({ type: "message", body: "still here", clientId: "1" });
  assert.equal((await admins.next("ack")).id, 1);
  assert.equal((await upgradeAnswer(server, { room: "ops" }, token)).status, 401);
  await admins.close();
});

Deno.test("open mode is as before: the name is the client's, and every room is everyone's", async () => {
  await using server = await startTestServer();
  const posted = await ask(server, "/rooms/r/messages?userName=ci", {}, {
    method: "POST",
    body: "hi",
  });
  assert.equal(JSON.parse(posted.text).userName, "ci");
  const client = new TestClient(server.wsUrl({ room: "r", userName: "ann" }));
  assert.equal((await client.next("welcome")).userName, "ann");
  assert.deepEqual(JSON.parse((await ask(server, "/rooms")).text), [{
    room: "r",
    users: 1,
    lastId: 1,
  }]);
  const direct = await ask(server, "/api/direct", {}, { method: "POST", body: "{}" });
  assert.equal(direct.status, 404);
  await client.close();
});

Deno.test("with 2 workers a removal and a ban close the person's connections on both", async () => {
  await using dir = await parleyDir({
    auth: { mode: "accounts" },
    history: { path: "data/parley.db" },
    workers: 2,
  }, "parley-access-");
  await using parley = await ParleyProcess.start(dir.path);
  const token = /setup\?token=([\w-]+)/.exec(parley.output())![1];
  const admin = new Browser(parley);
  const setup = await admin.call("POST", "/api/setup", {
    token,
    userName: "root",
    password: "root-password",
  });
  assert.equal(setup.status, 201, JSON.stringify(setup.body));
  const { browser: bob } = await invite(admin, "bob");
  await admin.call("POST", "/api/rooms", { room: "staff", kind: "private" });
  await admin.call("POST", "/api/rooms/staff/members", { userName: "bob" });
  const bearer = { authorization: `Bearer ${await bob.token()}` };
  // Each socket is a connection of its own, which the kernel gives to either worker.
  const open = (room: string) =>
    Array.from(
      { length: 12 },
      () => new TestClient(parley.wsUrl({ room }), "parley.v1", { headers: bearer }),
    );
  const staff = open("staff");
  const lobby = open("lobby");
  try {
    await Promise.all([...staff, ...lobby].map((socket) => socket.next("welcome")));
    const log = await Deno.readTextFile(`${dir.path}/parley.log`);
    for (const worker of [1, 2]) {
      for (const room of ["staff", "lobby"]) {
        assert.match(log, new RegExp(`worker ${worker}: open \\S+ room="${room}"`));
      }
    }
    assert.equal((await admin.call("DELETE", "/api/rooms/staff/members/bob")).status, 204);
    for (const socket of staff) {
      const closed = await within(socket.closed, "the close of a removed member's socket");
      assert.deepEqual([closed.code, closed.reason], [1008, "removed from the room"]);
    }
    assert.ok(lobby.every((socket) => socket.socket.readyState === WebSocket.OPEN));
    assert.equal((await admin.call("POST", "/api/users/bob/ban")).status, 200);
    for (const socket of lobby) {
      const closed = await within(socket.closed, "the close of a banned person's socket");
      assert.deepEqual([closed.code, closed.reason], [1008, "banned"]);
    }
  } finally {
    for (const socket of [...staff, ...lobby]) await socket.close().catch(() => {});
  }
});
