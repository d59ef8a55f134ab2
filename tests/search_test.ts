/**
 * `GET /search` against a real server: words, prefixes and phrases, diacritics folded both ways,
 * newest first across rooms, `limit` and `room`, a private room's messages never found by an
 * outsider, bad queries refused with a sentence, edits and deletes reflected, retention, and an
 * index that survives SIGKILL and is built for a file from before search.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { HistoryStore } from "../chat/history.ts";
import { SearchIndex, snippetParts } from "../chat/search.ts";
import { MAX_QUERY_LENGTH, toFtsQuery } from "../chat/search_query.ts";
import { withPeople } from "./people.ts";
import {
  type HasUrl,
  parleyDir,
  ParleyProcess,
  postMessage,
  startTestServer,
  type StoredMessage,
  tempDir,
} from "./support.ts";

const UNLIMITED = { limits: { messagesPerSecond: 1000, burst: 1000, readsPerSecond: 1000 } };

/** One hit of `/search`. */
interface Hit {
  room: string;
  id: number;
  userName: string;
  timestamp: string;
  snippet: { text: string; match?: true }[];
}

/** `GET /search` with these parameters: the status and the JSON answer. */
async function searchRaw(
  server: HasUrl,
  params: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { results: Hit[]; partial: boolean; error?: string } }> {
  const url = new URL("/search", server.url);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.json() };
}

/** The hits of `q` (and `params`), as `room/id`; fails unless 200. */
async function found(
  server: HasUrl,
  q: string,
  params: Record<string, string> = {},
): Promise<string[]> {
  const { status, body } = await searchRaw(server, { q, ...params });
  assert.equal(status, 200, JSON.stringify(body));
  return body.results.map((hit) => `${hit.room}/${hit.id}`);
}

/** Posts `body`, after the clock has moved past `after`'s millisecond: "newest" is then exact. */
async function postAfter(
  server: HasUrl,
  after: StoredMessage | null,
  room: string,
  body: string,
): Promise<StoredMessage> {
  while (after !== null && Date.now() <= Date.parse(after.timestamp)) {
    await new Promise((resolve) => queueMicrotask(() => resolve(null)));
  }
  return await postMessage(server, room, "alice", body);
}

/** The rows of `sql` in the SQLite file at `path`. */
function readFile(path: string, sql: string): Record<string, unknown>[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

Deno.test("words, prefixes and phrases match; diacritics and case are folded both ways", async () => {
  await using server = await startTestServer(UNLIMITED);
  await postMessage(server, "ops", "alice", "We ship it tomorrow");
  await postMessage(server, "ops", "bob", "it will ship, they say");
  await postMessage(server, "ops", "carol", "the deployment of the café");
  await postMessage(server, "ops", "dave", "Deploys to the CAFE are done");

  assert.deepEqual(await found(server, "ship"), ["ops/2", "ops/1"]);
  assert.deepEqual(await found(server, "SHIP tomorrow"), ["ops/1"], "every word must match");
  assert.deepEqual(await found(server, '"ship it"'), ["ops/1"], "a phrase, in order");
  assert.deepEqual(await found(server, "deploy*"), ["ops/4", "ops/3"]);
  assert.deepEqual(await found(server, "deploy"), [], "a word is a whole word");
  assert.deepEqual(await found(server, "cafe"), ["ops/4", "ops/3"]);
  assert.deepEqual(await found(server, "café"), ["ops/4", "ops/3"]);
  assert.deepEqual(await found(server, "CAFÉ"), ["ops/4", "ops/3"]);
  assert.deepEqual(await found(server, "nothing"), []);

  const { body } = await searchRaw(server, { q: '"ship it"' });
  assert.deepEqual(body, {
    results: [{
      room: "ops",
      id: 1,
      userName: "alice",
      timestamp: body.results[0].timestamp,
      snippet: [{ text: "We " }, { text: "ship it", match: true }, { text: " tomorrow" }],
    }],
    partial: false,
  });
  const [cafe] = (await searchRaw(server, { q: "cafe", room: "ops", limit: "1" })).body.results;
  assert.deepEqual(cafe.snippet, [
    { text: "Deploys to the " },
    { text: "CAFE", match: true },
    { text: " are done" },
  ]);
});

Deno.test("FTS5 syntax in a query is searched for as text, never run", async () => {
  await using server = await startTestServer(UNLIMITED);
  await postMessage(server, "ops", "alice", "NOT OR AND near body: ^start x-ray don't");
  for (const q of ["NOT", "OR", "near", "body:", "^start", "near(body", "x-ray", "don't"]) {
    assert.deepEqual(await found(server, q), ["ops/1"], q);
  }
  assert.deepEqual(await found(server, "xray"), []);
  assert.equal(toFtsQuery('ship "it all"  de*'), '"ship" "it all" "de"*');
  assert.equal(toFtsQuery("x-ray 🚀"), '"x ray"');
});

Deno.test("newest first across rooms, at most limit, and room narrows to one room", async () => {
  await using server = await startTestServer(UNLIMITED);
  let last: StoredMessage | null = null;
  const posted: StoredMessage[] = [];
  for (const room of ["a", "b", "a", "c", "b", "a"]) {
    last = await postAfter(server, last, room, `standup notes ${posted.length}`);
    posted.push(last);
  }
  const newestFirst = posted.toReversed().map((m) => `${m.room}/${m.id}`);
  assert.deepEqual(await found(server, "standup"), newestFirst);
  assert.deepEqual(await found(server, "standup", { limit: "2" }), newestFirst.slice(0, 2));
  assert.deepEqual(await found(server, "standup", { room: "a" }), ["a/3", "a/2", "a/1"]);
  assert.deepEqual(await found(server, "standup", { room: "a", limit: "1" }), ["a/3"]);
  assert.deepEqual(await found(server, "standup", { room: "nowhere" }), []);
  const many = await Promise.all(
    Array.from({ length: 30 }, (_, i) => postMessage(server, "d", "bob", `bulk ${i}`)),
  );
  assert.equal(many.length, 30);
  assert.equal((await found(server, "bulk")).length, 20, "20 by default");
  assert.equal((await found(server, "bulk", { limit: "100" })).length, 30);
});

Deno.test("a bad query or limit is a 400 with a sentence", async () => {
  await using server = await startTestServer(UNLIMITED);
  await postMessage(server, "ops", "alice", "something to find");
  const cases: [Record<string, string>, RegExp][] = [
    [{}, /at least one word/],
    [{ q: "" }, /at least one word/],
    [{ q: "   " }, /at least one word/],
    [{ q: "🚀 !!" }, /at least one word/],
    [{ q: '"ship it' }, /closing quote/],
    [{ q: "x".repeat(MAX_QUERY_LENGTH + 1) }, /at most 200/],
    [{ q: "a*" }, /at least 2 letters/],
    [{ q: "de*ploy" }, /may only end a word/],
    [{ q: "*" }, /at least one word/],
    [{ q: Array.from({ length: 17 }, (_, i) => `w${i}`).join(" ") }, /at most 16/],
    [{ q: "something", limit: "0" }, /limit must be a whole number from 1 to 100/],
    [{ q: "something", limit: "101" }, /limit must be a whole number from 1 to 100/],
    [{ q: "something", room: "no spaces allowed" }, /room/],
  ];
  for (const [params, message] of cases) {
    const { status, body } = await searchRaw(server, params);
    assert.equal(status, 400, JSON.stringify(params));
    assert.match(body.error!, message, JSON.stringify(params));
  }
  assert.equal((await searchRaw(server, { q: "x".repeat(MAX_QUERY_LENGTH) })).status, 200);
});

Deno.test("searches are reads: past the read limit they are 429", async () => {
  await using server = await startTestServer({ limits: { readsPerSecond: 1 } });
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await searchRaw(server, { q: "x" })).status);
  assert.deepEqual(statuses, [200, 200, 429, 429]);
});

Deno.test("a private room's messages are never found by someone outside it", async () => {
  const { server, admin, bob } = await withPeople(undefined, {}, UNLIMITED);
  await using _ = server;
  const made = await admin.call("POST", "/api/rooms", { room: "staff", kind: "private" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  for (const [room, body] of [["staff", "the secret launch plan"], ["lobby", "launch party"]]) {
    assert.equal((await admin.call("POST", `/rooms/${room}/messages`, { body })).status, 201);
  }
  const ask = async (who: typeof bob, query: string) => {
    const answer = await who.call("GET", `/search?${query}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body;
  };
  const rooms = (body: { results: Hit[] }) => body.results.map((hit) => hit.room);
  assert.deepEqual(rooms(await ask(admin, "q=launch")), ["lobby", "staff"]);
  assert.deepEqual(rooms(await ask(bob, "q=launch")), ["lobby"]);
  assert.deepEqual(rooms(await ask(bob, "q=secret")), []);
  // Narrowed to the room, bob is answered as for a room that does not exist.
  assert.deepEqual(await ask(bob, "q=secret&room=staff"), await ask(bob, "q=secret&room=nope"));
  assert.deepEqual(rooms(await ask(admin, "q=secret&room=staff")), ["staff"]);
  const anonymous = await fetch(new URL("/search?q=launch", server.url));
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();

  assert.equal(
    (await admin.call("POST", "/api/rooms/staff/members", { userName: "bob" })).status,
    200,
  );
  assert.deepEqual(rooms(await ask(bob, "q=launch")), ["lobby", "staff"]);
});

/** Edits (PATCH) or deletes (DELETE) message `id` of `room` as alice, through the HTTP API. */
async function change(server: HasUrl, room: string, id: number, body?: string): Promise<void> {
  const url = new URL(`/rooms/${room}/messages/${id}?userName=alice`, server.url);
  const response = await fetch(url, {
    method: body === undefined ? "DELETE" : "PATCH",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify({ body }),
  });
  assert.equal(response.status, 200, await response.text());
}

Deno.test("an edit changes what is found, and a delete removes the message from search", async () => {
  await using server = await startTestServer(UNLIMITED);
  await postMessage(server, "ops", "alice", "the build is green");
  await postMessage(server, "ops", "alice", "the build is red");
  assert.deepEqual(await found(server, "build"), ["ops/2", "ops/1"], "both indexed now");

  await change(server, "ops", 1, "the tests are flaky");
  assert.deepEqual(await found(server, "green"), []);
  assert.deepEqual(await found(server, "flaky"), ["ops/1"]);
  assert.deepEqual(await found(server, "build"), ["ops/2"]);
  const [hit] = (await searchRaw(server, { q: "flaky" })).body.results;
  assert.deepEqual(hit.snippet.map((part) => part.text).join(""), "the tests are flaky");

  await change(server, "ops", 2);
  assert.deepEqual(await found(server, "build"), []);
  assert.deepEqual(await found(server, "red"), []);

  // Messages edited and deleted before they were indexed are indexed as they are by then.
  const one = await postMessage(server, "ops", "alice", "draft one");
  const two = await postMessage(server, "ops", "alice", "draft two");
  await change(server, "ops", one.id, "final one");
  await change(server, "ops", two.id);
  assert.deepEqual(await found(server, "draft"), []);
  assert.deepEqual(await found(server, "final"), [`ops/${one.id}`]);
  await change(server, "ops", one.id, "final answer");
  assert.deepEqual(await found(server, "one"), []);
  assert.deepEqual(await found(server, "answer"), [`ops/${one.id}`]);
});

Deno.test("two workers share the file and its index: every message is found once, whichever worker answers", async () => {
  await using dir = await parleyDir({
    workers: 2,
    history: { path: "parley.db" },
    ...UNLIMITED,
  }, "parley-search-workers-");
  await using parley = await ParleyProcess.start(dir.path);
  const posted = [];
  for (let i = 0; i < 30; i++) {
    posted.push(await postMessage(parley, `room-${i % 3}`, "alice", `shipping crate ${i}`));
  }
  const everyOne = posted.map((m) => `${m.room}/${m.id}`).sort();
  // A new connection for each search: the kernel spreads them over the workers (reusePort).
  const freshly = async (q: string) => {
    using client = Deno.createHttpClient({});
    const url = new URL(`/search?limit=100&q=${encodeURIComponent(q)}`, parley.url);
    const response = await fetch(url, { client });
    assert.equal(response.status, 200);
    return ((await response.json()).results as Hit[]).map((hit) => `${hit.room}/${hit.id}`);
  };
  for (let i = 0; i < 8; i++) {
    assert.deepEqual((await freshly("crate")).sort(), everyOne, `search ${i}: each message once`);
  }
  await change(parley, posted[0].room, posted[0].id, "a parcel instead");
  for (let i = 0; i < 8; i++) {
    assert.deepEqual(await freshly("parcel"), [`${posted[0].room}/${posted[0].id}`]);
    assert.equal((await freshly("crate")).length, 29);
  }
});

/**
 * The room log's edit and delete as statements on the history file (its contract), from another
 * connection while the server runs: the index follows whoever changes the file.
 */
Deno.test("an edit or delete written to the file by another connection is followed", async () => {
  await using dir = await tempDir("parley-search-");
  const path = `${dir.path}/history.db`;
  await using server = await startTestServer({ ...UNLIMITED, history: { path } });
  await postMessage(server, "ops", "alice", "the build is green");
  await postMessage(server, "ops", "alice", "the build is red");
  assert.deepEqual(await found(server, "build"), ["ops/2", "ops/1"]);
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.prepare("UPDATE messages SET body = ?, edited_at = ? WHERE room = ? AND id = ?")
      .run("the tests are flaky", new Date().toISOString(), "ops", 1);
    db.prepare("UPDATE messages SET body = '', deleted_at = ? WHERE room = ? AND id = ?")
      .run(new Date().toISOString(), "ops", 2);
  } finally {
    db.close();
  }
  assert.deepEqual(await found(server, "build"), []);
  assert.deepEqual(await found(server, "flaky"), ["ops/1"]);
});

Deno.test("messages retention removed are never found", async () => {
  await using server = await startTestServer({ ...UNLIMITED, history: { maxMessagesPerRoom: 2 } });
  await postMessage(server, "ops", "alice", "alpha report");
  assert.deepEqual(await found(server, "report"), ["ops/1"]);
  await postMessage(server, "ops", "alice", "beta report");
  await postMessage(server, "ops", "alice", "gamma report");
  assert.deepEqual(await found(server, "report"), ["ops/3", "ops/2"]);
  assert.deepEqual(await found(server, "alpha"), []);
  for (let i = 0; i < 5; i++) await postMessage(server, "ops", "alice", `filler ${i}`);
  assert.deepEqual(await found(server, "report"), []);
});

Deno.test("the index survives SIGKILL: what was indexed stays, what was not is indexed on restart", async () => {
  await using dir = await parleyDir({ ...UNLIMITED, history: { path: "history.db" } });
  const path = `${dir.path}/history.db`;
  {
    await using parley = await ParleyProcess.start(dir.path);
    await postMessage(parley, "ops", "alice", "indexed before the crash");
    assert.deepEqual(await found(parley, "indexed"), ["ops/1"]);
    await postMessage(parley, "ops", "alice", "acked just before the crash");
    await parley.crash();
  }
  const marker = readFile(path, "SELECT indexed_to FROM search_rooms WHERE room = 'ops'");
  assert.ok((marker[0]?.indexed_to as number) >= 1, "the marker was committed with the index");
  await using parley = await ParleyProcess.start(dir.path);
  assert.deepEqual(await found(parley, "crash"), ["ops/2", "ops/1"]);
  assert.deepEqual(await found(parley, "indexed"), ["ops/1"]);
});

Deno.test("a history file from before search is indexed when it is opened, newest first", async () => {
  await using dir = await tempDir("parley-search-");
  const path = `${dir.path}/history.db`;
  const store = HistoryStore.open({ path, maxMessagesPerRoom: 100 });
  const stored: string[] = [];
  let last = 0;
  // Rooms in the order z, a, z, m: indexed room by room, found by time.
  for (const room of ["z", "a", "z", "m"]) {
    while (Date.now() <= last) await new Promise((resolve) => queueMicrotask(() => resolve(null)));
    const { message } = await store.append({ room, userName: "old", body: `legacy note ${room}` });
    last = Date.parse(message.timestamp);
    stored.push(`${room}/${message.id}`);
  }
  await store.close();
  const tables = readFile(path, "SELECT name FROM sqlite_schema WHERE name LIKE 'search%'");
  assert.deepEqual(tables, [], "a file without the index");
  await using server = await startTestServer({ ...UNLIMITED, history: { path } });
  assert.deepEqual(await found(server, "legacy"), stored.toReversed());
  assert.deepEqual(await found(server, "note", { room: "z" }), ["z/2", "z/1"]);
});

Deno.test("snippet parts: the marked runs are matches, the rest plain text", () => {
  assert.deepEqual(snippetParts("a \x01b\x02 c \x01d\x02"), [
    { text: "a " },
    { text: "b", match: true },
    { text: " c " },
    { text: "d", match: true },
  ]);
  assert.deepEqual(snippetParts("<b>no html</b>"), [{ text: "<b>no html</b>" }]);
  assert.deepEqual(snippetParts("…tail \x01x"), [{ text: "…tail x" }]);
});

Deno.test("a search on a large backlog indexes 10,000 messages first and says it is partial", async () => {
  const store = HistoryStore.open({ path: ":memory:", maxMessagesPerRoom: 20_000 });
  try {
    await Promise.all(
      Array.from(
        { length: 12_000 },
        (_, i) => store.append({ room: "big", userName: "u", body: `n${i}` }),
      ),
    );
    const index = SearchIndex.open(store, (message) => assert.fail(message));
    try {
      const query = { room: null, limit: 5, mayRead: () => true };
      // Synchronously after opening: the background indexing has not run yet.
      assert.deepEqual(index.search({ ...query, fts: toFtsQuery("n0") }).partial, true);
      const second = index.search({ ...query, fts: toFtsQuery("n11999") });
      assert.deepEqual([second.partial, second.hits.map((hit) => hit.id)], [false, [12_000]]);
    } finally {
      index.close();
    }
  } finally {
    await store.close();
  }
});
