import assert from "node:assert/strict";
import { HistoryError, type HistoryStore } from "../chat/history.ts";
import { assets, CONTENT_SECURITY_POLICY } from "../chat/static.ts";
import {
  historyOf,
  joinRoom,
  metric,
  postMessage,
  startTestServer,
  TestClient,
  within,
} from "./support.ts";

/** `from..to`, both included. */
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test("the page is served at / and /messages with ETag, 304, HEAD and a strict CSP", async () => {
  await using server = await startTestServer();
  for (const path of ["/", "/messages", "/?room=ops&userName=alice"]) {
    const response = await fetch(new URL(path, server.url));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(response.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.match(await response.text(), /<html/i);
    const etag = response.headers.get("etag")!;
    assert.match(etag, /^"[0-9a-f]+"$/);
    const again = await fetch(new URL(path, server.url), { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), "");
  }
  const head = await fetch(server.url, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.ok(Number(head.headers.get("content-length")) > 100);
  assert.equal(await head.text(), "");
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline/);
  for (const asset of ["/app.js", "/chat.css"]) {
    const response = await fetch(new URL(asset, server.url));
    assert.equal(response.status, 200, asset);
    await response.body?.cancel();
  }
});

Deno.test("a plain GET to /chat is 426 with a sentence, and the server keeps serving", async () => {
  await using server = await startTestServer();
  const response = await fetch(new URL("/chat", server.url));
  assert.equal(response.status, 426);
  assert.equal(response.headers.get("upgrade"), "websocket");
  assert.match((await response.json()).error, /WebSocket/);
  const health = await fetch(new URL("/healthz", server.url));
  assert.deepEqual(await health.json(), { status: "ok", store: "ok", redis: null, workers: 1 });
});

Deno.test("unknown paths are 404 and wrong methods 405 with Allow, as JSON errors", async () => {
  await using server = await startTestServer();
  const missing = await fetch(new URL("/nope", server.url));
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error, /no such page/);
  const wrong = await fetch(new URL("/history", server.url), { method: "DELETE" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET");
  assert.match((await wrong.json()).error, /use GET/);
  const getPost = await fetch(new URL("/rooms/lobby/messages", server.url));
  assert.equal(getPost.status, 405);
  assert.equal(getPost.headers.get("allow"), "POST");
  await getPost.body?.cancel();
});

async function post(server: { url: URL }, room: string, body: string, type = "text/plain") {
  return await fetch(new URL(`/rooms/${room}/messages?userName=curl`, server.url), {
    method: "POST",
    headers: { "content-type": type },
    body,
  });
}

Deno.test("curl can post text or JSON, and gets the stored message back", async () => {
  await using server = await startTestServer();
  const text = await post(server, "ops", "deploy done");
  assert.equal(text.status, 201);
  const stored = await text.json();
  assert.equal(stored.id, 1);
  assert.equal(stored.userName, "curl");
  assert.equal(stored.body, "deploy done");
  assert.equal(stored.room, "ops");
  assert.ok(Math.abs(Date.parse(stored.timestamp) - Date.now()) < 60_000);
  const json = await post(server, "ops", '{"userName":"bot","body":"hi"}', "application/json");
  assert.equal(json.status, 201);
  assert.deepEqual({ ...(await json.json()), timestamp: "" }, {
    id: 2,
    room: "ops",
    userName: "bot",
    body: "hi",
    timestamp: "",
  });
});

Deno.test("bad posts are 400 or 413 and store nothing", async () => {
  await using server = await startTestServer({ limits: { maxMessageBytes: 10 } });
  const cases: [string, string, string, number][] = [
    ["bad room", "a b", "x", 400],
    ["blank body", "ops", "   ", 400],
    ["too large", "ops", "x".repeat(11), 413],
    ["far too large", "ops", "x".repeat(100_000), 413],
  ];
  for (const [what, room, body, status] of cases) {
    const response = await post(server, encodeURIComponent(room), body);
    assert.equal(response.status, status, what);
    assert.ok((await response.json()).error.length > 5, what);
  }
  const badJson = await post(server, "ops", "{", "application/json");
  assert.equal(badJson.status, 400);
  assert.match((await badJson.json()).error, /not valid JSON/);
  assert.deepEqual(await historyOf(server, "ops"), []);
});

Deno.test("/history pages through a room with before, after and limit", async () => {
  await using server = await startTestServer({ limits: { messagesPerSecond: 1e6, burst: 1e6 } });
  for (let i = 1; i <= 120; i++) assert.equal((await post(server, "big", `m${i}`)).status, 201);
  const cases: [query: string, ids: number[], hasMore: boolean][] = [
    ["room=big", range(71, 120), true],
    ["room=big&before=71&limit=50", range(21, 70), true],
    ["room=big&before=21&limit=50", range(1, 20), false],
    ["room=big&after=100&limit=10", range(101, 110), true],
    ["room=big&after=110&limit=10", range(111, 120), false],
    ["room=empty", [], false],
  ];
  for (const [query, ids, hasMore] of cases) {
    const response = await fetch(new URL(`/history?${query}`, server.url));
    assert.equal(response.status, 200, query);
    assert.equal(response.headers.get("content-type"), "application/json", query);
    const page = await response.json();
    assert.deepEqual(
      {
        room: page.room,
        ids: page.messages.map((m: { id: number }) => m.id),
        hasMore: page.hasMore,
      },
      { room: new URLSearchParams(query).get("room"), ids, hasMore },
      query,
    );
  }
  for (
    const bad of ["room=a%20b", "limit=0", "limit=1001", "before=x", "after=-1", "before=5&after=1"]
  ) {
    const response = await fetch(new URL(`/history?${bad}`, server.url));
    assert.equal(response.status, 400, bad);
    assert.ok((await response.json()).error, bad);
  }
});

Deno.test("/getAllMessages answers in the Go server's shape, byte for byte", async () => {
  await using server = await startTestServer({ history: { legacyLimit: 2 } });
  const empty = await fetch(new URL("/getAllMessages", server.url));
  assert.equal(empty.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await empty.text(), '{"Messages":[]}\n');
  const posts = [
    ["lobby", "one"],
    ["lobby", "<b>two</b> & co"],
    ["lobby", "three"],
    ["other", "elsewhere"],
  ];
  for (const [room, body] of posts) {
    const response = await post(server, room, body);
    assert.equal(response.status, 201, body);
    await response.body?.cancel();
  }
  // The timestamps are the stored ones, as /history has them.
  const [, two, three] = await historyOf(server, "lobby");
  const text = await (await fetch(new URL("/getAllMessages", server.url))).text();
  assert.equal(
    text,
    `{"Messages":[{"userName":"curl","body":"\\u003cb\\u003etwo\\u003c/b\\u003e \\u0026 co",` +
      `"timestamp":"${two.timestamp}"},{"userName":"curl","body":"three",` +
      `"timestamp":"${three.timestamp}"}]}\n`,
  );
});

Deno.test("/rooms lists rooms with people and rooms with history", async () => {
  await using server = await startTestServer();
  await post(server, "quiet", "hello?");
  const { client } = await joinRoom(server, { room: "busy", userName: "ann" });
  const rooms = await (await fetch(new URL("/rooms", server.url))).json();
  assert.deepEqual(rooms, [
    { room: "busy", users: 1, lastId: 0 },
    { room: "quiet", users: 0, lastId: 1 },
  ]);
  await client.close();
});

Deno.test("/metrics is Prometheus text with connections, messages and disconnects", async () => {
  await using server = await startTestServer();
  const { client } = await joinRoom(server, { room: "m", userName: "ann" });
  client.send({ type: "message", body: "hi", clientId: "1" });
  await client.next("ack");
  await client.waitFor("message", 1);
  let text = await (await fetch(new URL("/metrics", server.url))).text();
  assert.match(text, /^parley_connections\{dialect="parley.v1",transport="websocket"\} 1$/m);
  assert.match(text, /^parley_rooms 1$/m);
  assert.match(text, /^parley_messages_in_total 1$/m);
  assert.match(text, /^parley_messages_out_total 1$/m);
  assert.match(text, /^parley_history_messages 1$/m);
  await client.close();
  text = await (await fetch(new URL("/metrics", server.url))).text();
  assert.match(text, /^parley_connections\{dialect="parley.v1",transport="websocket"\} 0$/m);
  assert.match(text, /^parley_disconnects_total\{code="1005"\} 1$/m);
});

Deno.test("a foreign Origin is refused with 403; the server's own and listed ones are not", async () => {
  await using server = await startTestServer({ allowedOrigins: ["https://chat.example"] });
  const upgrade = (origin: string) =>
    fetch(server.wsUrl().replace("ws:", "http:"), {
      headers: {
        origin,
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
  const foreign = await upgrade("https://evil.example");
  assert.equal(foreign.status, 403);
  assert.match((await foreign.json()).error, /allowedOrigins/);
  // A post without an Origin (curl) is fine; the same post from a foreign page is not.
  const plain = await post(server, "lobby", "x");
  assert.equal(plain.status, 201);
  await plain.body?.cancel();
  const forged = await fetch(new URL("/rooms/lobby/messages", server.url), {
    method: "POST",
    headers: { origin: "https://evil.example" },
    body: "csrf",
  });
  assert.equal(forged.status, 403);
  await forged.body?.cancel();
  assert.deepEqual((await historyOf(server, "lobby")).map((m) => m.body), ["x"]);
  for (const origin of [server.url.origin, "https://chat.example"]) {
    const ok = await upgrade(origin);
    assert.equal(ok.status, 101, origin);
    await ok.body?.cancel();
  }
});

Deno.test("posts from one address are rate limited with 429; a bad percent-encoding is 400", async () => {
  await using server = await startTestServer({ limits: { messagesPerSecond: 1, burst: 3 } });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const response = await post(server, "ops", `m${i}`);
    statuses.push(response.status);
    await response.body?.cancel();
  }
  assert.deepEqual(statuses.slice(0, 3), [201, 201, 201]);
  assert.equal(statuses[4], 429);
  const limited = await post(server, "ops", "again");
  assert.equal(limited.headers.get("retry-after"), "1");
  assert.match((await limited.json()).error, /slow down/);
  await using other = await startTestServer();
  const bad = await fetch(new URL("/rooms/%E0%A4%A/messages", other.url), {
    method: "POST",
    body: "x",
  });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /percent-encoding/);
});

Deno.test("every asset answers GET and HEAD, and another method 405 with Allow", async () => {
  await using server = await startTestServer();
  for (const [path, asset] of assets) {
    const get = await fetch(new URL(path, server.url));
    assert.equal(get.status, 200, path);
    assert.equal(get.headers.get("content-type"), asset.type, path);
    assert.equal((await get.bytes()).byteLength, asset.body.byteLength, path);
    const head = await fetch(new URL(path, server.url), { method: "HEAD" });
    assert.equal(head.status, 200, path);
    await head.body?.cancel();
    const put = await fetch(new URL(path, server.url), { method: "PUT", body: "x" });
    assert.equal(put.status, 405, path);
    assert.equal(put.headers.get("allow"), "GET, HEAD", path);
    assert.match((await put.json()).error, /use GET or HEAD/);
  }
  const postChat = await fetch(new URL("/chat", server.url), { method: "POST" });
  assert.equal(postChat.status, 405);
  assert.equal(postChat.headers.get("allow"), "GET");
  await postChat.body?.cancel();
});

/** A store whose `method` throws `error` the first time it is called, then works again. */
function failOnce(method: "rooms" | "page", error: Error): (store: HistoryStore) => void {
  return (store) => {
    const original: (...args: never[]) => unknown = store[method].bind(store);
    let failed = false;
    Object.assign(store, {
      [method]: (...args: never[]) => {
        if (failed) return original(...args);
        failed = true;
        throw error;
      },
    });
  };
}

Deno.test("a bug in a handler is a 500 with a sentence, logged once with its stack; the server goes on", async () => {
  await using server = await startTestServer({}, {
    onHistoryOpened: failOnce("rooms", new Error("the rooms query broke")),
  });
  const failed = await fetch(new URL("/rooms", server.url));
  assert.equal(failed.status, 500);
  assert.match((await failed.json()).error, /internal error; see the server log/);
  const log = await Deno.readTextFile(`${server.dir}/parley.log`);
  assert.equal(log.match(/the rooms query broke/g)?.length, 1, log);
  assert.match(log, /error GET "\/rooms": Error: the rooms query broke\\n\s+at /);
  const again = await fetch(new URL("/rooms", server.url));
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json(), []);
});

Deno.test("a failing history store is a 503 naming it, logged without a stack", async () => {
  await using server = await startTestServer({}, {
    onHistoryOpened: failOnce("page", new HistoryError("the disk is full")),
  });
  const failed = await fetch(new URL("/history?room=lobby", server.url));
  assert.equal(failed.status, 503);
  assert.equal((await failed.json()).error, "the history store failed: the disk is full");
  const log = await Deno.readTextFile(`${server.dir}/parley.log`);
  assert.match(log, /error GET "\/history": the disk is full\n/);
  assert.doesNotMatch(log, /(\n|\\n)\s+at /);
  const again = await fetch(new URL("/history?room=lobby", server.url));
  assert.equal(again.status, 200);
  assert.equal((await again.json()).hasMore, false);
});

/** Sends `head` on a new TCP connection and returns what the server answers, until it closes. */
async function rawRequest(server: { port: number }, head: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(new TextEncoder().encode(head));
  let text = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
    // The whole answer is in once the body is as long as its content-length says.
    const [headers, body] = text.split("\r\n\r\n", 2);
    const length = /content-length: (\d+)/i.exec(headers ?? "")?.[1];
    if (body !== undefined && length !== undefined && body.length >= Number(length)) break;
  }
  return text;
}

Deno.test("an upgrade without Sec-WebSocket-Key is a 400 with a sentence, and no stack in the log", async () => {
  await using server = await startTestServer();
  const answer = await rawRequest(
    server,
    "GET /chat?room=r HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  assert.match(answer, /^HTTP\/1.1 400 /);
  const error = JSON.parse(answer.split("\r\n\r\n")[1]).error;
  assert.match(error, /the WebSocket handshake is malformed .*sec-websocket-key/i);
  const log = await Deno.readTextFile(`${server.dir}/parley.log`);
  assert.doesNotMatch(log, /(\n|\\n)\s+at /);
  assert.doesNotMatch(log, /error/);
  const { client } = await joinRoom(server, { room: "r", userName: "after" });
  await client.close();
});

/** The status line and headers of the answer to `head`, sent on a new TCP connection. */
async function rawHead(server: { port: number }, head: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(new TextEncoder().encode(head));
  let text = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  for (let n; !text.includes("\r\n\r\n") && (n = await conn.read(buffer)) !== null;) {
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
  }
  return text.split("\r\n\r\n")[0];
}

/** A request head for `path` claiming `host`, with a WebSocket handshake if `upgrade`. */
function headFor(path: string, host: string, upgrade = false): string {
  const handshake = upgrade
    ? "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    : "Connection: close\r\n";
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${handshake}\r\n`;
}

Deno.test("on a loopback address, a request for another Host (DNS rebinding) is 421 naming allowedHosts", async () => {
  await using server = await startTestServer();
  for (const path of ["/", "/history?room=lobby", "/rooms", "/metrics"]) {
    const answer = await rawRequest(server, headFor(path, `evil.example:${server.port}`));
    assert.match(answer, /^HTTP\/1.1 421 /, path);
    assert.match(
      JSON.parse(answer.split("\r\n\r\n")[1]).error,
      /"evil\.example:\d+".*allowedHosts/,
    );
  }
  const upgrade = await rawHead(server, headFor("/chat?room=r", "evil.example", true));
  assert.match(upgrade, /^HTTP\/1.1 421 /);
  // A load balancer's health check comes by address.
  assert.match(await rawRequest(server, headFor("/healthz", "10.0.0.5:8080")), /^HTTP\/1.1 200 /);
  for (
    const host of [`127.0.0.1:${server.port}`, `localhost:${server.port}`, "[::1]", "localhost"]
  ) {
    assert.match(await rawRequest(server, headFor("/rooms", host)), /^HTTP\/1.1 200 /, host);
    assert.match(await rawHead(server, headFor("/chat?room=r", host, true)), /^HTTP\/1.1 101 /);
  }
  const log = await Deno.readTextFile(`${server.dir}/parley.log`);
  assert.match(log, /refused 127\.0\.0\.1: Host "evil\.example:\d+" is not this server's/);
});

Deno.test("allowedHosts adds the names a server behind a proxy answers to", async () => {
  await using server = await startTestServer({
    allowedHosts: ["chat.example", "alt.example:8443"],
  });
  for (const host of ["chat.example", "chat.example:443", "alt.example:8443", "localhost"]) {
    assert.match(await rawRequest(server, headFor("/rooms", host)), /^HTTP\/1.1 200 /, host);
  }
  for (const host of ["alt.example", "alt.example:443", "evil.example"]) {
    assert.match(await rawRequest(server, headFor("/rooms", host)), /^HTTP\/1.1 421 /, host);
  }
});

Deno.test("reads from one address are limited with 429 and Retry-After; the page and /healthz are not", async () => {
  await using server = await startTestServer({ limits: { readsPerSecond: 1 } });
  const status = async (path: string) => {
    const response = await fetch(new URL(path, server.url));
    await response.body?.cancel();
    return response.status;
  };
  // A burst of twice the rate, then one read a second.
  assert.deepEqual(await Promise.all(["/history", "/rooms"].map(status)), [200, 200]);
  for (const path of ["/history?room=lobby", "/rooms", "/metrics", "/getAllMessages"]) {
    const refused = await fetch(new URL(path, server.url));
    assert.equal(refused.status, 429, path);
    assert.equal(refused.headers.get("retry-after"), "1", path);
    assert.match((await refused.json()).error, /slow down: at most 1 reads per second/, path);
  }
  for (const path of ["/", "/", "/", "/healthz", "/healthz", "/healthz"]) {
    assert.equal(await status(path), 200, path);
  }
});

Deno.test("/rooms pages by name with limit and after; Link names the next page", async () => {
  const names = range(0, 249).map((i) => `r${String(i).padStart(3, "0")}`);
  await using server = await startTestServer({}, {
    onHistoryOpened: (store) => {
      for (const room of names) store.append({ room, userName: "seed", body: "x" });
    },
  });
  // People in a room without history, and in one with history.
  const { client: early } = await joinRoom(server, { room: "Q", userName: "ann" });
  const { client: late } = await joinRoom(server, { room: "zz", userName: "bob" });
  const { client: inside } = await joinRoom(server, { room: "r100", userName: "cy" });
  const pages: { room: string; users: number; lastId: number }[][] = [];
  let next: string | null = "/rooms";
  while (next !== null) {
    const response: Response = await fetch(new URL(next, server.url));
    assert.equal(response.status, 200, next);
    pages.push(await response.json());
    next = /^<([^>]+)>; rel="next"$/.exec(response.headers.get("link") ?? "")?.[1] ?? null;
  }
  assert.deepEqual(pages.map((page) => page.length), [100, 100, 52]);
  const listed = pages.flat();
  assert.deepEqual(listed.map((r) => r.room), ["Q", ...names, "zz"]);
  assert.deepEqual(listed.find((r) => r.room === "r100"), { room: "r100", users: 1, lastId: 1 });
  assert.deepEqual(listed.at(-1), { room: "zz", users: 1, lastId: 0 });
  const after = await (await fetch(new URL("/rooms?after=r247&limit=2", server.url))).json();
  assert.deepEqual(after.map((r: { room: string }) => r.room), ["r248", "r249"]);
  const all = await fetch(new URL("/rooms?limit=1000", server.url));
  assert.equal((await all.json()).length, 252);
  assert.equal(all.headers.get("link"), null);
  for (const bad of ["limit=0", "limit=1001", "limit=x", "after=a%20b"]) {
    const response = await fetch(new URL(`/rooms?${bad}`, server.url));
    assert.equal(response.status, 400, bad);
    assert.ok((await response.json()).error, bad);
  }
  await Promise.all([early.close(), late.close(), inside.close()]);
});

/** The median time, in ms, of `count` sequential GETs of `path`. */
async function medianMs(server: { url: URL }, path: string, count: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const response = await fetch(new URL(path, server.url));
    assert.equal(response.status, 200);
    await response.text();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(count / 2)];
}

Deno.test("a /metrics scrape costs the same with 100,000 rooms as with one", async () => {
  await using few = await startTestServer();
  await postMessage(few, "lobby", "ann", "hi");
  let filled: Promise<unknown> = Promise.resolve();
  await using many = await startTestServer({}, {
    onHistoryOpened: (store) => {
      filled = Promise.all(
        range(1, 100_000).map((i) => store.append({ room: `r${i}`, userName: "u", body: "x" })),
      );
    },
  });
  await filled;
  assert.equal(await metric(many, "parley_history_messages"), 100_000);
  const fast = await medianMs(few, "/metrics", 9);
  const slow = await medianMs(many, "/metrics", 9);
  assert.ok(
    slow < 5 * fast + 15,
    `a scrape took ${slow} ms with 100,000 rooms, ${fast} ms with one`,
  );
});

Deno.test("1,000 refused upgrades from one address write a few log lines, not 1,000", async () => {
  await using server = await startTestServer();
  const long = "9".repeat(5000) + "x";
  for (let batch = 0; batch < 10; batch++) {
    const clients = range(1, 100).map(() => new TestClient(server.wsUrl({ since: long })));
    const closes = await Promise.all(clients.map((client) => within(client.closed, "a refusal")));
    assert.ok(closes.every((close) => close.code === 1008));
  }
  assert.equal(await metric(server, "parley_refused_total"), 1000);
  const lines = (await Deno.readTextFile(`${server.dir}/parley.log`)).split("\n")
    .filter((line) => line.includes("refused"));
  assert.ok(lines.length <= 10, `${lines.length} lines:\n${lines.slice(0, 20).join("\n")}`);
  // The client's value is quoted and cut.
  assert.match(lines[0], /since must be a message id, not "9{64}"… \(5001 characters\)$/);
});
