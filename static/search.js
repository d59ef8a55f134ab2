// @ts-check
/**
 * Searching the rooms the person may read: `GET /search?q=…` and its answer checked. A hit's
 * snippet comes as parts, the matched ones marked, so the page draws it as text, never as HTML.
 * No DOM here; `fetch` is injectable.
 */

/** How many results one search asks for. */
export const SEARCH_LIMIT = 20;

/**
 * One part of a snippet; `match` when it is what the query matched.
 * @typedef {{ text: string, match: boolean }} SnippetPart
 */

/**
 * One hit.
 * @typedef {{ room: string, id: number, userName: string, timestamp: string,
 *   snippet: SnippetPart[] }} SearchResult
 */

/** The search could not be made; the message says why, for the person. */
export class SearchError extends Error {
  /** @override */
  name = "SearchError";
}

/**
 * The results of a `/search` answer; malformed ones are dropped.
 * @param {unknown} data
 * @returns {SearchResult[]}
 */
export function readResults(data) {
  const results = isObject(data) && Array.isArray(data.results) ? data.results : [];
  /** @type {SearchResult[]} */
  const out = [];
  for (const value of results) {
    if (!isObject(value) || typeof value.room !== "string") continue;
    if (!Number.isSafeInteger(value.id) || typeof value.userName !== "string") continue;
    out.push({
      room: value.room,
      id: Number(value.id),
      userName: value.userName,
      timestamp: typeof value.timestamp === "string" ? value.timestamp : "",
      snippet: readSnippet(value.snippet),
    });
  }
  return out;
}

/**
 * @param {unknown} value
 * @returns {SnippetPart[]}
 */
function readSnippet(value) {
  if (!Array.isArray(value)) return [];
  return value.filter((part) => isObject(part) && typeof part.text === "string")
    .map((part) => ({ text: String(part.text), match: part.match === true }));
}

/**
 * Searches; throws a SearchError with the server's reason (a bad query is a 400 that says why).
 * @param {string} query
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<SearchResult[]>}
 */
export async function search(query, fetchFn = fetch) {
  const params = new URLSearchParams({ q: query, limit: String(SEARCH_LIMIT) });
  let response;
  try {
    response = await fetchFn(`/search?${params}`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
  } catch {
    throw new SearchError("The server could not be reached; try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch { /* handled below */ }
  if (!response.ok) {
    const reason = isObject(data) && typeof data.error === "string" ? data.error : "";
    throw new SearchError(reason || `The search failed (HTTP ${response.status}).`);
  }
  return readResults(data);
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
