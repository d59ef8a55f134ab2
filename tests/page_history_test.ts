/**
 * How the page reads `/history` (static/history.js): the room and paging parameters it asks
 * with, the messages it keeps, and the sentence it has for a failure.
 */
import assert from "node:assert/strict";
import { fetchHistory, HistoryError } from "../static/history.js";
import { postMessage, startTestServer } from "./support.ts";

/** A fetch that answers every request with `status` and `body`, recording what was asked. */
function answering(status: number, body: string) {
  const asked: string[] = [];
  const fetchFn = (input: RequestInfo | URL, init?: RequestInit) => {
    asked.push(String(input));
    assert.equal(new Headers(init?.headers).get("accept"), "application/json");
    return Promise.resolve(new Response(body, { status }));
  };
  return { asked, fetchFn: fetchFn as typeof fetch };
}

Deno.test("a page of history: the query names the room; malformed messages are dropped", async () => {
  const good = {
    id: 3,
    room: "ops",
    userName: "bob",
    body: "hi",
    timestamp: "2025-01-01T00:00:00Z",
  };
  const { asked, fetchFn } = answering(
    200,
    JSON.stringify({ messages: [good, { id: "4", body: "x" }, null], hasMore: true }),
  );
  const page = await fetchHistory("ops", { before: "10", limit: "50" }, fetchFn);
  assert.deepEqual(asked, ["/history?room=ops&before=10&limit=50"]);
  const fresh = { clientId: null, mentions: [], editedAt: null, reactions: {} };
  assert.deepEqual(page, { messages: [{ ...good, ...fresh }], hasMore: true });
});

Deno.test("a failed read throws a HistoryError with the server's reason", async () => {
  const refused = answering(400, JSON.stringify({ error: "before must be a positive integer" }));
  await assert.rejects(
    fetchHistory("ops", { before: "0" }, refused.fetchFn),
    (error: unknown) =>
      error instanceof HistoryError && error.message === "before must be a positive integer",
  );
  const broken = answering(502, "<html>bad gateway</html>");
  await assert.rejects(fetchHistory("ops", {}, broken.fetchFn), /^HistoryError: HTTP 502$/);
  const odd = answering(200, JSON.stringify({ items: [] }));
  await assert.rejects(fetchHistory("ops", {}, odd.fetchFn), /unexpected answer from \/history/);
});

Deno.test("against the real server, the newest page and the one before it", async () => {
  await using server = await startTestServer();
  for (let i = 1; i <= 5; i++) await postMessage(server, "ops", "bob", `m${i}`);
  const onServer = (input: RequestInfo | URL, init?: RequestInit) =>
    fetch(new URL(String(input), server.url), init);
  const newest = await fetchHistory("ops", { limit: "2" }, onServer);
  assert.deepEqual(newest.messages.map((m) => m.body), ["m4", "m5"]);
  assert.equal(newest.hasMore, true);
  const older = await fetchHistory("ops", { before: "4", limit: "50" }, onServer);
  assert.deepEqual(older.messages.map((m) => [m.id, m.body]), [[1, "m1"], [2, "m2"], [3, "m3"]]);
  assert.equal(older.hasMore, false);
});
