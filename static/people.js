// @ts-check
/// <reference lib="dom" />
/**
 * What a signed-in person can do with someone in the online list: message them (their direct
 * room), take them out of the private room on screen, and, as an admin, ban them. What cannot be
 * undone is confirmed first; the server decides, and the page says how it went.
 */

import { confirmAction } from "./forms.js";

/**
 * Where the person is: the room on screen as the page names it, and its kind.
 * @typedef {{ room: string, label: string, kind: import("./rooms.js").RoomKind }} Place
 */

/**
 * What the actions need: the API, the confirmation dialog, a notice, who the person is (null in
 * open mode, which has none of this), where they are, and how to open a direct room.
 * @typedef {{
 *   api: import("./api.js").Api,
 *   confirm: import("./forms.js").ConfirmElements,
 *   notice: (text: string) => void,
 *   me: () => { userName: string, admin: boolean } | null,
 *   place: () => Place,
 *   openDirect: (room: string, peer: string) => void,
 * }} PeopleOptions
 */

/** The actions offered on the people in the online list. */
export class PeopleActions {
  /** @type {PeopleOptions} */ #o;

  /** @param {PeopleOptions} options */
  constructor(options) {
    this.#o = options;
  }

  /**
   * What the person can do with `name`: nothing in open mode, nor with themselves.
   * @param {string} name
   * @returns {import("./users.js").PersonAction[]}
   */
  for(name) {
    const me = this.#o.me();
    if (me === null || name === me.userName) return [];
    /** @type {import("./users.js").PersonAction[]} */
    const actions = [{ label: "Message", run: () => this.#message(name) }];
    if (this.#o.place().kind === "private") {
      actions.push({ label: "Remove", run: () => this.#remove(name), danger: true });
    }
    if (me.admin) actions.push({ label: "Ban", run: () => this.#ban(name), danger: true });
    return actions;
  }

  /** @param {string} name */
  async #message(name) {
    try {
      this.#o.openDirect(await this.#o.api.direct(name), name);
    } catch (error) {
      this.#o.notice(/** @type {Error} */ (error).message);
    }
  }

  /** @param {string} name */
  async #remove(name) {
    const { room, label } = this.#o.place();
    const question = {
      title: `Remove ${name}?`,
      text: `${name} leaves #${label} at once and no longer sees it.`,
      ok: "Remove",
    };
    await this.#confirmed(
      question,
      `${name} was removed from #${label}.`,
      () => this.#o.api.removeMember(room, name),
    );
  }

  /** @param {string} name */
  async #ban(name) {
    const question = {
      title: `Ban ${name}?`,
      text: `${name} is signed out everywhere and cannot sign in again until an admin unbans them.`,
      ok: "Ban",
    };
    await this.#confirmed(question, `${name} is banned.`, () => this.#o.api.ban(name));
  }

  /**
   * Asks `question`; if confirmed, does `work` and says `done`, or why it failed.
   * @param {{ title: string, text: string, ok: string }} question
   * @param {string} done
   * @param {() => Promise<void>} work
   */
  async #confirmed(question, done, work) {
    if (!await confirmAction(this.#o.confirm, question)) return;
    try {
      await work();
      this.#o.notice(done);
    } catch (error) {
      this.#o.notice(/** @type {Error} */ (error).message);
    }
  }
}
