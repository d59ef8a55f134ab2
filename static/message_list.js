// @ts-check
/// <reference lib="dom" />
/**
 * The conversation as drawn: confirmed messages in id order, the person's unsent ones after them,
 * consecutive messages of one author grouped, the view kept at the bottom while the reader is
 * there, and at most MAX_RENDERED confirmed messages. Edits, deletes and reactions change the
 * messages drawn (through the log's model of them). Every text goes in with textContent.
 */

import { MessageLog, reactionChips } from "./message_log.js";
import { mentionsMe } from "./mentions.js";
import {
  actionButton,
  messageElement,
  setTime,
  showBody,
  showMessageError,
  showReactions,
  stampElement,
  timeElement,
} from "./message_view.js";

// Past this many rendered messages the oldest are dropped (they stay reachable with "Load older").
export const MAX_RENDERED = 1500;
const STICK_PX = 48;
const GROUP_GAP_MS = 5 * 60_000;
const ERROR_SHOWN_MS = 8000;

/**
 * What the list needs: its element, the "Load older" row kept at its top, the "New messages"
 * button, and what the buttons on a failed message do.
 * @typedef {{
 *   list: HTMLElement,
 *   older: HTMLElement,
 *   jump: HTMLElement,
 *   onRetry: (clientId: string) => void,
 *   onEdit: (clientId: string) => void,
 *   me: () => string,
 * }} MessageListOptions
 */

/** The rendered messages of the room on screen. */
export class MessageList {
  /** @type {MessageListOptions} */ #o;
  /** @type {Map<number, HTMLElement>} */ #byId = new Map();
  /** @type {Map<string, HTMLElement>} */ #outgoing = new Map();
  /** @type {Map<string, import("./outbox.js").Entry>} */ #outgoingEntries = new Map();
  #log = new MessageLog();

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
    const state = this.#log.add(message);
    if (!state) return false; // deleted while shown: a late copy does not bring it back
    this.#draw(state, mine);
    return true;
  }

  /**
   * @param {import("./message_log.js").MessageState} state
   * @param {boolean} mine
   */
  #draw(state, mine) {
    const item = messageElement(state.userName, state.body, new Date(state.timestamp), mine);
    if (state.editedAt !== null) showBody(item, state.body, state.editedAt);
    item.classList.toggle("mentions-me", !mine && mentionsMe(state.mentions, this.#o.me()));
    showReactions(item, reactionChips(state, this.#o.me()));
    this.#place(item, state.id);
  }

  /**
   * Applies an edit, delete or reaction to the message it is about, if it is shown; true when
   * that changed what is drawn.
   * @param {import("./protocol.js").ChangeEvent} event
   * @returns {boolean}
   */
  applyChange(event) {
    const change = this.#log.apply(event);
    const item = this.#byId.get(event.messageId);
    if (!change || !item) return false;
    switch (change.kind) {
      case "edit":
        showBody(item, change.state.body, change.state.editedAt);
        break;
      case "delete":
        this.#byId.delete(event.messageId);
        removeGrouped(item);
        this.updateEmptyState();
        break;
      case "reaction":
        showReactions(item, reactionChips(change.state, this.#o.me()));
        break;
    }
    return true;
  }

  /**
   * The current state of a shown message.
   * @param {number} id
   * @returns {import("./message_log.js").MessageState | undefined}
   */
  state(id) {
    return this.#byId.has(id) ? this.#log.get(id) : undefined;
  }

  /**
   * The element of a shown message.
   * @param {number} id
   * @returns {HTMLElement | undefined}
   */
  element(id) {
    return this.#byId.get(id);
  }

  /**
   * Shows why a change to message `id` failed, next to it, for a while.
   * @param {number} id
   * @param {string} text
   */
  showError(id, text) {
    const item = this.#byId.get(id);
    if (!item) return;
    showMessageError(item, text);
    setTimeout(() => {
      if (item.querySelector(".message-error")?.textContent === text) showMessageError(item, "");
    }, ERROR_SHOWN_MS);
  }

  /**
   * Scrolls message `id` into the middle of the view and marks it for a moment (a search result).
   * @param {number} id
   * @returns {boolean} false when it is not shown
   */
  reveal(id) {
    const item = this.#byId.get(id);
    if (!item) return false;
    for (const other of this.#o.list.querySelectorAll(".message.found")) {
      other.classList.remove("found");
    }
    item.classList.add("found");
    item.scrollIntoView({ block: "center" });
    this.#o.jump.hidden = this.isNearBottom();
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
    this.#outgoingEntries.set(entry.clientId, entry);
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
    this.#outgoingEntries.delete(clientId);
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
    const entry = this.#outgoingEntries.get(clientId);
    if (!item || !entry) return false;
    this.#outgoing.delete(clientId);
    this.#outgoingEntries.delete(clientId);
    if (this.#byId.has(id) || !this.#log.add(ownMessage(entry, id, authorOf(item), timestamp))) {
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
    this.#log.clear();
    regroup(this.#firstOutgoing());
    this.updateEmptyState();
  }

  /** Empties the list for another room: it shows "loading" until `loaded`. */
  reset() {
    this.#byId.clear();
    this.#outgoing.clear();
    this.#outgoingEntries.clear();
    this.#log.clear();
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
      this.#log.forget(id);
    }
    regroup(/** @type {HTMLElement | null} */ (this.#o.list.querySelector(":scope > .message")));
    return true;
  }
}

/**
 * The person's own message as the server stored it, from its unsent entry.
 * @param {import("./outbox.js").Entry} entry
 * @param {number} id
 * @param {string} userName
 * @param {string | null} timestamp
 * @returns {import("./protocol.js").ChatMessage}
 */
function ownMessage(entry, id, userName, timestamp) {
  return {
    id,
    userName,
    body: entry.body,
    timestamp: timestamp ?? entry.createdAt.toISOString(),
    room: null,
    clientId: entry.clientId,
    mentions: [],
    editedAt: null,
    reactions: {},
  };
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
