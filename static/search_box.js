// @ts-check
/// <reference lib="dom" />
/**
 * The search box: a query goes to `/search`, the results show room, author, time and a snippet
 * whose matched words are `<mark>` elements filled with textContent (never HTML); choosing one
 * opens its room with that message in view.
 */

import { search } from "./search.js";

/**
 * What the search box needs: its form, field, results panel and list, how a room is named, and
 * what choosing a result does (and what showing results does: on a phone, close the drawer the
 * box is in).
 * @typedef {{
 *   form: HTMLFormElement,
 *   input: HTMLInputElement,
 *   panel: HTMLElement,
 *   results: HTMLElement,
 *   status: HTMLElement,
 *   close: HTMLButtonElement,
 *   roomName: (room: string) => string,
 *   open: (room: string, id: number) => void,
 *   onShow?: () => void,
 *   fetch?: typeof fetch,
 * }} SearchBoxOptions
 */

/** The search form and its results. */
export class SearchBox {
  /** @type {SearchBoxOptions} */ #o;
  #asked = 0;

  /** @param {SearchBoxOptions} options */
  constructor(options) {
    this.#o = options;
    options.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.run(options.input.value.trim());
    });
    options.close.addEventListener("click", () => this.hide());
    options.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.hide();
        options.input.focus();
      }
    });
  }

  /**
   * Searches for `query` and shows what was found, or why nothing could be.
   * @param {string} query
   */
  async run(query) {
    if (!query) return;
    const asked = ++this.#asked;
    this.#o.panel.hidden = false;
    this.#o.onShow?.();
    this.#o.status.textContent = "Searching…";
    this.#o.results.replaceChildren();
    try {
      const results = await search(query, this.#o.fetch);
      if (asked !== this.#asked) return;
      this.#o.status.textContent = results.length === 0
        ? `Nothing found for “${query}”.`
        : `${results.length} result${results.length === 1 ? "" : "s"} for “${query}”`;
      this.#o.results.replaceChildren(...results.map((result) => this.#item(result)));
    } catch (error) {
      if (asked === this.#asked) this.#o.status.textContent = /** @type {Error} */ (error).message;
    }
  }

  hide() {
    this.#asked += 1;
    this.#o.panel.hidden = true;
    this.#o.results.replaceChildren();
  }

  /** @param {import("./search.js").SearchResult} result */
  #item(result) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "result";
    button.dataset.room = result.room;
    button.dataset.id = String(result.id);
    const head = span("result-head", "");
    const time = document.createElement("time");
    time.className = "result-time";
    const date = new Date(result.timestamp);
    if (!Number.isNaN(date.getTime())) {
      time.dateTime = date.toISOString();
      time.textContent = date.toLocaleString(undefined, {
        dateStyle: "medium",
        timeStyle: "short",
      });
    }
    head.append(
      span("result-room", this.#o.roomName(result.room)),
      span("result-author", result.userName),
      time,
    );
    const snippet = span("result-snippet", "");
    snippet.append(...result.snippet.map((part) => {
      if (!part.match) return document.createTextNode(part.text);
      const mark = document.createElement("mark");
      mark.textContent = part.text;
      return mark;
    }));
    button.append(head, snippet);
    button.addEventListener("click", () => {
      this.hide();
      this.#o.open(result.room, result.id);
    });
    const li = document.createElement("li");
    li.append(button);
    return li;
  }
}

/**
 * @param {string} className
 * @param {string} text
 */
function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}
