// @ts-check
/**
 * The messages of the room on screen as the log makes them: each message's current body, whether
 * it was edited, and who reacted with what; edits, deletes and reactions applied as they arrive.
 * Applying is idempotent: a message remembers the newest event applied to it, so a replay that
 * brings an event twice, or an older one after a newer, changes nothing. No DOM here.
 */

/**
 * A message in its current state. `version` is the id of the newest event applied to it (its own
 * id until one is).
 * @typedef {{
 *   id: number, userName: string, body: string, timestamp: string, clientId: string | null,
 *   mentions: string[], editedAt: string | null, reactions: Map<string, string[]>,
 *   version: number
 * }} MessageState
 */

/**
 * What an applied event changed: `edit` the body, `delete` the message (gone), `reaction` its
 * reactions.
 * @typedef {{ kind: "edit" | "delete" | "reaction", state: MessageState }} LogChangeResult
 */

/** The current state of the messages known, by id. */
export class MessageLog {
  /** @type {Map<number, MessageState>} */ #byId = new Map();
  /** @type {Set<number>} */ #deleted = new Set();

  /**
   * Records a message (live, replayed or from /history); null when it is known already, or was
   * deleted (a late copy must not bring it back).
   * @param {import("./protocol.js").ChatMessage} message
   * @returns {MessageState | null}
   */
  add(message) {
    if (this.#byId.has(message.id) || this.#deleted.has(message.id)) return null;
    /** @type {MessageState} */
    const state = {
      id: message.id,
      userName: message.userName,
      body: message.body,
      timestamp: message.timestamp,
      clientId: message.clientId,
      mentions: message.mentions,
      editedAt: message.editedAt,
      reactions: new Map(Object.entries(message.reactions).map(([e, names]) => [e, [...names]])),
      version: message.id,
    };
    this.#byId.set(message.id, state);
    return state;
  }

  /**
   * Applies an edit, delete or reaction; null when it changes nothing (a message not shown, or
   * an event already applied).
   * @param {import("./protocol.js").ChangeEvent} event
   * @returns {LogChangeResult | null}
   */
  apply(event) {
    const state = this.#byId.get(event.messageId);
    if (!state || event.id <= state.version) return null;
    state.version = event.id;
    switch (event.type) {
      case "edit":
        state.body = event.body;
        state.editedAt = event.timestamp || new Date().toISOString();
        return { kind: "edit", state };
      case "delete":
        this.#byId.delete(state.id);
        this.#deleted.add(state.id);
        return { kind: "delete", state };
      case "reaction":
        return react(state, event.emoji, event.userName, event.on)
          ? { kind: "reaction", state }
          : null;
    }
  }

  /**
   * The state of message `id`, if it is known.
   * @param {number} id
   * @returns {MessageState | undefined}
   */
  get(id) {
    return this.#byId.get(id);
  }

  /**
   * Whether message `id` was deleted while known.
   * @param {number} id
   */
  isDeleted(id) {
    return this.#deleted.has(id);
  }

  /**
   * Forgets message `id` (it is no longer drawn); a copy of it later is added again.
   * @param {number} id
   */
  forget(id) {
    this.#byId.delete(id);
  }

  /** Forgets everything (another room). */
  clear() {
    this.#byId.clear();
    this.#deleted.clear();
  }
}

/**
 * Adds or removes `userName`'s `emoji`; true when that changed anything.
 * @param {MessageState} state
 * @param {string} emoji
 * @param {string} userName
 * @param {boolean} on
 */
function react(state, emoji, userName, on) {
  const names = state.reactions.get(emoji) ?? [];
  const has = names.includes(userName);
  if (on === has) return false;
  const next = on ? [...names, userName] : names.filter((name) => name !== userName);
  if (next.length) state.reactions.set(emoji, next);
  else state.reactions.delete(emoji);
  return true;
}

/**
 * The reactions to show: each emoji with its count, who reacted (for a tooltip) and whether `me`
 * is among them, in the order they were first used.
 * @param {MessageState} state
 * @param {string} me
 * @returns {{ emoji: string, count: number, names: string[], mine: boolean }[]}
 */
export function reactionChips(state, me) {
  return [...state.reactions].map(([emoji, names]) => ({
    emoji,
    count: names.length,
    names,
    mine: names.includes(me),
  }));
}

/** The emoji offered to react with, besides those already on a message. */
export const QUICK_REACTIONS = Object.freeze(["👍", "❤️", "😂", "🎉", "😮", "👀"]);

/**
 * The emoji a person can pick for a message: the quick ones, then those already on it.
 * @param {MessageState} state
 * @returns {string[]}
 */
export function reactionChoices(state) {
  return [...new Set([...QUICK_REACTIONS, ...state.reactions.keys()])];
}

/**
 * What a person may do with a message: edit their own, delete their own (or any, as an admin).
 * @param {{ userName: string }} message
 * @param {{ userName: string, admin: boolean }} me
 * @returns {{ edit: boolean, delete: boolean }}
 */
export function allowedActions(message, me) {
  const own = message.userName === me.userName;
  return { edit: own, delete: own || me.admin };
}
