// @ts-check
/// <reference lib="dom" />
/**
 * One message as drawn: avatar, author, body, time, and what the log adds: the "edited" label,
 * reaction chips with counts (who reacted in their title), a mark when it mentions the person, an
 * error next to it. The body is built from its parts as text nodes and `<a>`, `<code>` and
 * `<pre>` elements, each filled with textContent: no HTML from a message is ever interpreted.
 */

import { hueOf, initialOf } from "./avatar.js";
import { textParts } from "./message_text.js";

/**
 * @param {string} userName
 * @param {string} body
 * @param {Date} date
 * @param {boolean} mine
 * @returns {HTMLElement}
 */
export function messageElement(userName, body, date, mine) {
  const item = element("div", "message");
  if (mine) item.classList.add("mine");

  const avatar = element("div", `avatar ${hueOf(userName)}`);
  avatar.dataset.initial = initialOf(userName);
  avatar.setAttribute("aria-hidden", "true");

  const meta = element("div", "meta");
  meta.append(element("span", "author", userName));

  const time = /** @type {HTMLTimeElement} */ (element("time", "time"));
  setTime(time, date);
  const stamp = element("div", "stamp");
  stamp.append(time);
  const text = element("div", "body");
  fillBody(text, body);
  const bubble = element("div", "bubble");
  bubble.append(text, stamp);

  const content = element("div", "content");
  content.append(meta, bubble);
  item.append(avatar, content);
  return item;
}

/**
 * Fills `el` with a body's parts: text, links (opening in a new tab, with no opener or referrer),
 * inline code and code blocks.
 * @param {HTMLElement} el
 * @param {string} body
 */
export function fillBody(el, body) {
  el.replaceChildren(
    ...textParts(body).map((part) => {
      switch (part.kind) {
        case "text":
          return document.createTextNode(part.text);
        case "link": {
          const a = /** @type {HTMLAnchorElement} */ (element("a", "link", part.text));
          a.href = part.href;
          a.rel = "noopener noreferrer";
          a.target = "_blank";
          return a;
        }
        case "code":
          return element("code", "code", part.text);
        case "block":
          return element("pre", "code-block", part.text);
      }
    }),
  );
}

/**
 * Shows a new body, and that it was edited.
 * @param {HTMLElement} item
 * @param {string} body
 * @param {string | null} editedAt
 */
export function showBody(item, body, editedAt) {
  fillBody(/** @type {HTMLElement} */ (item.querySelector(".body")), body);
  if (editedAt === null) return;
  let label = item.querySelector(".edited");
  if (!label) {
    label = element("span", "edited", "edited");
    stampElement(item).prepend(label);
  }
  const date = new Date(editedAt);
  if (!Number.isNaN(date.getTime())) {
    label.setAttribute("title", `edited ${date.toLocaleString(undefined, dateFormat)}`);
  }
}

/**
 * Draws the reaction chips under the bubble (none: no row). Each is a button for its emoji;
 * pressed when the person is among those who reacted.
 * @param {HTMLElement} item
 * @param {{ emoji: string, count: number, names: string[], mine: boolean }[]} chips
 */
export function showReactions(item, chips) {
  let row = /** @type {HTMLElement | null} */ (item.querySelector(".reactions"));
  if (chips.length === 0) {
    row?.remove();
    return;
  }
  if (!row) {
    row = element("div", "reactions");
    item.querySelector(".content")?.append(row);
  }
  row.replaceChildren(...chips.map((chip) => {
    const button = /** @type {HTMLButtonElement} */ (element("button", "reaction"));
    button.type = "button";
    button.dataset.emoji = chip.emoji;
    button.setAttribute("aria-pressed", String(chip.mine));
    button.title = chip.names.join(", ");
    button.setAttribute("aria-label", `${chip.emoji} ${chip.count}: ${chip.names.join(", ")}`);
    button.append(element("span", "emoji", chip.emoji), element("span", "count", `${chip.count}`));
    return button;
  }));
}

/**
 * Shows why a change to the message failed, next to it ("" removes it).
 * @param {HTMLElement} item
 * @param {string} text
 */
export function showMessageError(item, text) {
  item.querySelector(".message-error")?.remove();
  if (!text) return;
  const error = element("div", "message-error", text);
  error.setAttribute("role", "alert");
  item.querySelector(".content")?.append(error);
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text] set with textContent, never as HTML
 * @returns {HTMLElement}
 */
export function element(tag, className, text) {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * @param {string} label
 * @param {string} title
 * @param {() => void} onClick
 */
export function actionButton(label, title, onClick) {
  const button = /** @type {HTMLButtonElement} */ (element("button", "action", label));
  button.type = "button";
  button.title = title;
  button.addEventListener("click", onClick);
  return button;
}

/** @type {Intl.DateTimeFormatOptions} */
const dateFormat = { dateStyle: "full", timeStyle: "medium" };

/**
 * The local time as HH:MM, the full date on hover; blank for a date that is not one.
 * @param {HTMLTimeElement} timeEl
 * @param {Date} date
 */
export function setTime(timeEl, date) {
  if (Number.isNaN(date.getTime())) {
    timeEl.textContent = "";
    timeEl.removeAttribute("title");
    timeEl.removeAttribute("datetime");
    return;
  }
  const pad2 = (/** @type {number} */ n) => String(n).padStart(2, "0");
  timeEl.textContent = `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
  timeEl.dateTime = date.toISOString();
  timeEl.title = date.toLocaleString(undefined, dateFormat);
}

/** @param {HTMLElement} item */
export function timeElement(item) {
  return /** @type {HTMLTimeElement} */ (item.querySelector(".time"));
}

/** @param {HTMLElement} item */
export function stampElement(item) {
  return /** @type {HTMLElement} */ (item.querySelector(".stamp"));
}
