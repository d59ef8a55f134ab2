// @ts-check
/// <reference lib="dom" />
/**
 * The conversation as drawn: confirmed messages in id order, the person's unsent ones after them,
 * consecutive messages of one author grouped, the view kept at the bottom while the reader is
 * there, and at most MAX_RENDERED confirmed messages. Every text goes in with textContent.
 */

import { hueOf, initialOf } from "./avatar.js";

// Past this many rendered messages the oldest are dropped (they stay reachable with "Load older").
export const MAX_RENDERED = 1500;
const STICK_PX = 48;
const GROUP_GAP_MS = 5 * 60_000;

/**
 * What the list needs: its element, the "Load older" row kept at its top, the "New messages"
 * button, and what the buttons on a failed message do.
 * @typedef {{
 *   list: HTMLElement,
 *   older: HTMLElement,
 *   jump: HTMLElement,
 *   onRetry: (clientId: string) => void,
 *   onEdit: (clientId: string) => void,
 * }} MessageListOptions
 */

/** The rendered messages of the room on screen. */
export class MessageList {
  /** @type {MessageListOptions} */ #o;
  /** @type {Map<number, HTMLElement>} */ #byId = new Map();
  /** @type {Map<string, HTMLElement>} */ #outgoing = new Map();

  /** @param {MessageListOptions} options */
  constructor(options) {
    this.#o = options;
    options.jump.addEventListener("click", () => this.scrollToBottom());
    options.list.addEventListener("scroll", () => {
      if (this.isNearBottom()) options.jump.hidden = true;
    }, { passive: true });
  }

  /**
   * The oldest and newest confirmed ids shown, or null when none is.
   * @returns {{ oldest: number, newest: number } | null}
   */
  ids() {
    const ids = [...this.#byId.keys()];
    return ids.length ? { oldest: Math.min(...ids), newest: Math.max(...ids) } : null;
  }

  /** True when the reader is at (or very near) the newest message. */
  isNearBottom() {
    const list = this.#o.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= STICK_PX;
  }

  scrollToBottom() {
    this.#o.list.scrollTop = this.#o.list.scrollHeight;
    this.#o.jump.hidden = true;
  }

  /**
   * Runs a change and keeps the list at the bottom if it was there (or `forceBottom`); otherwise
   * offers "New messages" when the change says it added something.
   * @param {() => boolean} change
   * @param {{ forceBottom?: boolean }} [options]
   */
  withStickiness(change, { forceBottom = false } = {}) {
    const stick = forceBottom || this.isNearBottom();
    const added = change();
    if (stick) this.scrollToBottom();
    else if (added) this.#o.jump.hidden = false;
  }

  /**
   * Runs a change above what the reader is looking at (older messages) without moving it.
   * @param {() => void} change
   */
  keepPosition(change) {
    const list = this.#o.list;
    const fromBottom = list.scrollHeight - list.scrollTop;
    change();
    list.scrollTop = list.scrollHeight - fromBottom;
  }

  /**
   * Applies one frame's worth of changes, measured once: a frame can carry a whole replay. At the
   * bottom, the oldest messages past MAX_RENDERED are dropped; returns true if any were.
   * @param {() => boolean} change true when it added a message
   * @returns {boolean}
   */
  applyFrame(change) {
    const stick = this.isNearBottom();
    const added = change();
    if (stick) {
      const trimmed = this.#trimOldest();
      this.scrollToBottom();
      return trimmed;
    }
    if (added) this.#o.jump.hidden = false;
    return false;
  }

  /**
   * Shows a message (live, replayed or from /history) in id order unless it is shown already;
   * true if it was added.
   * @param {import("./protocol.js").ChatMessage} message
   * @param {boolean} mine
   * @returns {boolean}
   */
  add(message, mine) {
    const existing = this.#byId.get(message.id);
    if (existing) {
      // It was drawn from an ack with the local clock; the server's timestamp is the truth.
      if (existing.classList.contains("provisional")) {
        existing.classList.remove("provisional");
        setTime(timeElement(existing), new Date(message.timestamp));
      }
      return false;
    }
    const item = messageElement(message.userName, message.body, new Date(message.timestamp), mine);
    this.#place(item, message.id);
    return true;
  }

  /**
   * Draws an unsent message at the end, with its state.
   * @param {import("./outbox.js").Entry} entry
   * @param {string} userName
   */
  addOutgoing(entry, userName) {
    const item = messageElement(userName, entry.body, entry.createdAt, true);
    item.classList.add("outgoing");
    item.dataset.clientId = entry.clientId;
    const status = document.createElement("span");
    status.className = "state";
    stampElement(item).append(status);
    this.#outgoing.set(entry.clientId, item);
    this.showState(entry);
    this.#o.list.append(item);
    regroup(item);
  }

  /**
   * Shows an unsent message's state: "sending…", or why it failed with Retry and Edit.
   * @param {import("./outbox.js").Entry} entry
   */
  showState(entry) {
    const item = this.#outgoing.get(entry.clientId);
    if (!item) return;
    const status = /** @type {HTMLElement} */ (item.querySelector(".state"));
    const failed = entry.state === "failed";
    item.classList.toggle("pending", !failed);
    item.classList.toggle("failed", failed);
    if (!failed) {
      status.textContent = "sending…";
      return;
    }
    const reason = document.createElement("span");
    reason.textContent = `not sent${entry.reason ? ` — ${entry.reason}` : ""}`;
    const { clientId } = entry;
    const retry = actionButton("Retry", "Send this message again", () => this.#o.onRetry(clientId));
    const edit = actionButton(
      "Edit",
      "Move this message back into the message box",
      () => this.#o.onEdit(clientId),
    );
    status.replaceChildren(reason, " ", retry, " ", edit);
  }

  /**
   * Removes an unsent message's element.
   * @param {string} clientId
   */
  removeOutgoing(clientId) {
    const item = this.#outgoing.get(clientId);
    if (!item) return;
    this.#outgoing.delete(clientId);
    removeGrouped(item);
  }

  /**
   * The server stored an unsent message as `id`: its element becomes that message. With the
   * server's `timestamp` (the message came back) it is final; without (an ack) it shows the
   * local clock until the message arrives. Returns true unless `id` was already shown.
   * @param {string} clientId
   * @param {number} id
   * @param {string | null} timestamp
   * @returns {boolean}
   */
  confirmOutgoing(clientId, id, timestamp) {
    const item = this.#outgoing.get(clientId);
    if (!item) return false;
    this.#outgoing.delete(clientId);
    if (this.#byId.has(id)) {
      removeGrouped(item);
      return false;
    }
    const next = nearbyMessage(item, "nextElementSibling");
    item.classList.remove("outgoing", "pending", "failed", "continued");
    item.querySelector(".state")?.remove();
    delete item.dataset.clientId;
    if (timestamp === null) item.classList.add("provisional");
    else setTime(timeElement(item), new Date(timestamp));
    this.#place(item, id);
    regroup(next);
    return true;
  }

  /** Removes every confirmed message (the unsent ones stay). */
  clearConfirmed() {
    for (const item of this.#byId.values()) item.remove();
    this.#byId.clear();
    regroup(this.#firstOutgoing());
    this.updateEmptyState();
  }

  /** Empties the list for another room: it shows "loading" until `loaded`. */
  reset() {
    this.#byId.clear();
    this.#outgoing.clear();
    this.#o.list.replaceChildren(this.#o.older);
    this.#o.list.classList.add("loading");
    this.#o.jump.hidden = true;
  }

  /** The room's first welcome arrived. */
  loaded() {
    this.#o.list.classList.remove("loading");
  }

  /** Marks the list empty (for its placeholder) when it has no message at all. */
  updateEmptyState() {
    const list = this.#o.list;
    list.classList.toggle("empty", !list.querySelector(".message"));
  }

  /**
   * @param {HTMLElement} item
   * @param {number} id
   */
  #place(item, id) {
    item.dataset.id = String(id);
    this.#byId.set(id, item);
    placeConfirmed(this.#o.list, this.#firstOutgoing(), item, id);
  }

  #firstOutgoing() {
    return /** @type {HTMLElement | null} */ (this.#o.list.querySelector(":scope > .outgoing"));
  }

  #trimOldest() {
    if (this.#byId.size <= MAX_RENDERED) return false;
    const ids = [...this.#byId.keys()].sort((a, b) => a - b);
    for (const id of ids.slice(0, ids.length - MAX_RENDERED)) {
      this.#byId.get(id)?.remove();
      this.#byId.delete(id);
    }
    regroup(/** @type {HTMLElement | null} */ (this.#o.list.querySelector(":scope > .message")));
    return true;
  }
}

/**
 * Inserts a confirmed message by id: confirmed ones in id order, unsent ones always after them.
 * @param {HTMLElement} list
 * @param {HTMLElement | null} firstOutgoing
 * @param {HTMLElement} item
 * @param {number} id
 */
function placeConfirmed(list, firstOutgoing, item, id) {
  item.remove();
  let before = firstOutgoing;
  let cursor = before ? before.previousElementSibling : list.lastElementChild;
  const first = /** @type {HTMLElement | null} */ (
    list.querySelector(":scope > .message:not(.outgoing)")
  );
  if (first && Number(first.dataset.id) > id) {
    cursor = null;
    before = first;
  }
  while (cursor instanceof HTMLElement && isMessage(cursor) && Number(cursor.dataset.id) > id) {
    before = cursor;
    cursor = cursor.previousElementSibling;
  }
  list.insertBefore(item, before);
  regroup(item);
  regroup(nearbyMessage(item, "nextElementSibling"));
}

/**
 * @param {string} userName
 * @param {string} body
 * @param {Date} date
 * @param {boolean} mine
 * @returns {HTMLElement}
 */
function messageElement(userName, body, date, mine) {
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
  const bubble = element("div", "bubble");
  bubble.append(element("div", "body", body), stamp);

  const content = element("div", "content");
  content.append(meta, bubble);
  item.append(avatar, content);
  return item;
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text] set with textContent, never as HTML
 * @returns {HTMLElement}
 */
function element(tag, className, text) {
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
function actionButton(label, title, onClick) {
  const button = /** @type {HTMLButtonElement} */ (element("button", "action", label));
  button.type = "button";
  button.title = title;
  button.addEventListener("click", onClick);
  return button;
}

/**
 * The local time as HH:MM, the full date on hover; blank for a date that is not one.
 * @param {HTMLTimeElement} timeEl
 * @param {Date} date
 */
function setTime(timeEl, date) {
  if (Number.isNaN(date.getTime())) {
    timeEl.textContent = "";
    timeEl.removeAttribute("title");
    timeEl.removeAttribute("datetime");
    return;
  }
  const pad2 = (/** @type {number} */ n) => String(n).padStart(2, "0");
  timeEl.textContent = `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
  timeEl.dateTime = date.toISOString();
  timeEl.title = date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "medium" });
}

/** @param {HTMLElement} item */
function timeElement(item) {
  return /** @type {HTMLTimeElement} */ (item.querySelector(".time"));
}

/** @param {HTMLElement} item */
function stampElement(item) {
  return /** @type {HTMLElement} */ (item.querySelector(".stamp"));
}

/** @param {Element} el */
function isMessage(el) {
  return el.classList.contains("message");
}

/**
 * The message element just before or after this one, if any.
 * @param {HTMLElement} item
 * @param {"previousElementSibling" | "nextElementSibling"} direction
 * @returns {HTMLElement | null}
 */
function nearbyMessage(item, direction) {
  const sibling = item[direction];
  return sibling instanceof HTMLElement && isMessage(sibling) ? sibling : null;
}

/** @param {HTMLElement} item */
function authorOf(item) {
  return item.querySelector(".author")?.textContent ?? "";
}

/** @param {HTMLElement} item */
function timeOf(item) {
  return Date.parse(item.querySelector(".time")?.getAttribute("datetime") || "");
}

/**
 * Consecutive messages from one author within a few minutes are drawn as one group.
 * @param {HTMLElement | null} item
 */
function regroup(item) {
  if (!item || !isMessage(item)) return;
  const prev = nearbyMessage(item, "previousElementSibling");
  const continued = prev !== null && authorOf(prev) === authorOf(item) &&
    Math.abs(timeOf(item) - timeOf(prev)) < GROUP_GAP_MS;
  item.classList.toggle("continued", continued);
}

/** @param {HTMLElement} item */
function removeGrouped(item) {
  const next = nearbyMessage(item, "nextElementSibling");
  item.remove();
  regroup(next);
}
