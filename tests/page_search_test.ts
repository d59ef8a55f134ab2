/**
 * Search as the page calls it (static/search.js): the query and limit in the URL, results checked,
 * snippet parts kept as text with their matches marked, and a refusal's reason passed on.
 */
import assert from "node:assert/strict";
import { readResults, search, SEARCH_LIMIT, SearchError } from "../static/search.js";

function answering(status: number, body: string) {
  const asked: string[] = [];
  const fetchFn = (input: RequestInfo | URL) => {
    asked.push(String(input));
    return Promise.resolve(new Response(body, { status }));
  };
  return { asked, fetchFn: fetchFn as typeof fetch };
}

const hit = {
  room: "ops",
  id: 42,
  userName: "bob",
  timestamp: "2025-01-01T10:00:00.000Z",
  snippet: [{ text: "we should " }, { text: "deploy", match: true }, { text: " <b>now</b>" }],
};

Deno.test("a search asks /search with the query and a limit, and reads the results", async () => {
  const { asked, fetchFn } = answering(200, JSON.stringify({ results: [hit] }));
  const results = await search('"ship it" deploy*', fetchFn);
  assert.deepEqual(asked, [
    `/search?q=%22ship+it%22+deploy*&limit=${SEARCH_LIMIT}`,
  ]);
  assert.deepEqual(results, [{
    ...hit,
    snippet: [
      { text: "we should ", match: false },
      { text: "deploy", match: true },
      { text: " <b>now</b>", match: false },
    ],
  }]);
});

Deno.test("malformed results and snippet parts are dropped", () => {
  assert.deepEqual(readResults(null), []);
  assert.deepEqual(readResults({ results: "x" }), []);
  const read = readResults({
    results: [
      null,
      { ...hit, id: "42" },
      { ...hit, room: 1 },
      { ...hit, userName: null },
      { ...hit, timestamp: 5, snippet: [{ text: 1 }, "x", { text: "ok", match: "yes" }] },
      { ...hit, snippet: "not parts" },
    ],
  });
  assert.deepEqual(read, [
    { ...hit, timestamp: "", snippet: [{ text: "ok", match: false }] },
    { ...hit, snippet: [] },
  ]);
});

Deno.test("a refused search says why; an unreachable server says so", async () => {
  const bad = answering(400, JSON.stringify({ error: "the query has an unmatched quote" }));
  await assert.rejects(search('"ship', bad.fetchFn), (error) => {
    assert.ok(error instanceof SearchError);
    assert.equal(error.message, "the query has an unmatched quote");
    return true;
  });
  const broken = answering(500, "oops");
  await assert.rejects(search("x", broken.fetchFn), /HTTP 500/);
  const offline = (() => Promise.reject(new TypeError("failed to fetch"))) as typeof fetch;
  await assert.rejects(search("x", offline), /could not be reached/);
});
