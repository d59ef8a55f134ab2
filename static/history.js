// @ts-check
/// <reference lib="dom" />
/**
 * History over HTTP: the "Load older messages" button, and the recovery after a reconnect the
 * server could not resume (`recovered: false`), which reloads the newest page of the room.
 */

import { readMessage } from "./protocol.js";

/** How many messages a recovery reloads. */
export const RECOVERY_LIMIT = 100;
/** How many older messages one "Load older" asks for. */
export const OLDER_PAGE = 50;

/** /history could not be read; the message says why, for a notice. */
export class HistoryError extends Error {
  /** @override */
  name = "HistoryError";
}

/**
 * One page of a room's history.
 * @typedef {{ messages: import("./protocol.js").ChatMessage[], hasMore: boolean }} HistoryPage
 */

/**
 * Fetches `/history?room=…&…`; throws a HistoryError with the server's reason when it fails.
 * @param {string} room
 * @param {Record<string, string>} params `before`, `limit`
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<HistoryPage>}
 */
export async function fetchHistory(room, params, fetchFn = fetch) {
  const query = new URLSearchParams({ room, ...params });
  const response = await fetchFn(`/history?${query}`, {
    headers: { Accept: "application/json" },
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch { /* handled below */ }
  if (!response.ok) {
    throw new HistoryError(
      data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`,
    );
  }
  if (!data || !Array.isArray(data.messages)) {
    throw new HistoryError("unexpected answer from /history");
  }
  const messages = [];
  for (const value of data.messages) {
    const message = readMessage(value);
    if (message) messages.push(message);
  }
  return { messages, hasMore: data.hasMore === true };
}

/**
 * What paging needs: the list, the "Load older" row and its button, the room, who "mine" is,
 * a notice, and where the newest recovered id goes (the connection resumes after it).
 * @typedef {{
 *   list: import("./message_list.js").MessageList,
 *   older: HTMLElement,
 *   button: HTMLButtonElement,
 *   room: () => string,
 *   me: () => string,
 *   notice: (text: string, ms?: number) => void,
 *   resumeAfter: (id: number) => void,
 *   fetch?: typeof fetch,
 * }} PagingOptions
 */

/** Older history on request, and recovery; answers for a room left meanwhile are dropped. */
export class HistoryPaging {
  /** @type {PagingOptions} */ #o;
  // Bumped whenever the room changes; late answers for an old epoch are dropped.
  #epoch = 0;
  #welcomed = false;
  #roomWasEmpty = false;
  #initialLastId = 0;
  /** @type {boolean | null} null: infer from ids; else what the last /history page said */
  #olderKnown = null;
  #loading = false;

  /** @param {PagingOptions} options */
  constructor(options) {
    this.#o = options;
    options.button.addEventListener("click", () => this.loadOlder());
  }

  /** The room's newest id when it was entered (0 for an empty room). */
  get initialLastId() {
    return this.#initialLastId;
  }

  /** A new room (or none): forget the old one, drop its answers still on the way. */
  reset() {
    this.#epoch += 1;
    this.#welcomed = false;
    this.#roomWasEmpty = false;
    this.#initialLastId = 0;
    this.#olderKnown = null;
    this.#o.older.hidden = true;
  }

  /**
   * A welcome arrived: the first one in a room says how much history it had. True for that one.
   * @param {number} lastId
   * @returns {boolean}
   */
  welcomed(lastId) {
    if (this.#welcomed) return false;
    this.#welcomed = true;
    this.#initialLastId = lastId;
    this.#roomWasEmpty = lastId === 0;
    return true;
  }

  /** Older messages exist than those shown (some were dropped from the top of the list). */
  olderDropped() {
    this.#olderKnown = true;
    this.update();
  }

  /** Forgets what the last page said: shown messages were cleared. */
  forgetPages() {
    this.#olderKnown = null;
    this.update();
  }

  /** Shows "Load older" when there is anything older than the oldest message shown. */
  update() {
    let more;
    if (this.#olderKnown !== null) more = this.#olderKnown;
    else {
      const ids = this.#o.list.ids();
      more = ids ? ids.oldest > 1 : !this.#roomWasEmpty && this.#initialLastId > 0;
    }
    this.#o.older.hidden = !more;
  }

  /** Loads the page before the oldest message shown, keeping the reader's place. */
  async loadOlder() {
    if (this.#loading) return;
    const ids = this.#o.list.ids();
    const before = ids ? ids.oldest : this.#initialLastId + 1;
    const epoch = this.#epoch;
    this.#setLoading(true);
    try {
      const page = await this.#fetch({ before: String(before), limit: String(OLDER_PAGE) });
      if (epoch !== this.#epoch) return;
      const me = this.#o.me();
      this.#o.list.keepPosition(() => {
        for (const m of page.messages) this.#o.list.add(m, m.userName === me);
      });
      this.#olderKnown = page.hasMore;
    } catch (error) {
      if (epoch === this.#epoch) {
        this.#o.notice(`Could not load older messages: ${/** @type {Error} */ (error).message}`);
      }
    } finally {
      this.#setLoading(false);
      this.update();
      this.#o.list.updateEmptyState();
    }
  }

  /** The server could not resume: the list was cleared; reload the newest messages. */
  async recover() {
    const epoch = this.#epoch;
    this.#o.notice(
      "Reconnected after a long gap: older history is incomplete; some messages may be missing.",
      10_000,
    );
    try {
      const page = await this.#fetch({ limit: String(RECOVERY_LIMIT) });
      if (epoch !== this.#epoch) return;
      const me = this.#o.me();
      this.#o.list.withStickiness(() => {
        for (const m of page.messages) {
          this.#o.resumeAfter(m.id);
          this.#o.list.add(m, m.userName === me);
        }
        return false;
      }, { forceBottom: true });
      this.#olderKnown = page.hasMore;
    } catch (error) {
      if (epoch === this.#epoch) {
        this.#o.notice(`Could not load history: ${/** @type {Error} */ (error).message}`);
      }
    }
    this.update();
    this.#o.list.updateEmptyState();
  }

  /** @param {Record<string, string>} params */
  #fetch(params) {
    return fetchHistory(this.#o.room(), params, this.#o.fetch);
  }

  /** @param {boolean} loading */
  #setLoading(loading) {
    this.#loading = loading;
    this.#o.button.disabled = loading;
    this.#o.button.textContent = loading ? "Loading…" : "Load older messages";
  }
}
