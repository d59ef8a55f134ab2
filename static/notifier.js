// @ts-check
/// <reference lib="dom" />
/**
 * The notifications button and what it turns on: the browser is asked for permission only when
 * the person presses it; once on, a message that mentions the person (or any in a direct room)
 * notifies while the tab is hidden, and a mention in another room too.
 */

import { Notifications, notificationText, shouldNotify } from "./notify.js";

const LABELS = {
  unsupported: "Notifications unavailable",
  blocked: "Notifications blocked",
  off: "Turn on notifications",
  on: "Notifications on",
};

/** The button, and the notifications it switches. */
export class Notifier {
  /** @type {HTMLButtonElement} */ #button;
  /** @type {Notifications} */ #switch;

  /**
   * @param {HTMLButtonElement} button
   * @param {Storage | null} storage
   */
  constructor(button, storage) {
    this.#button = button;
    const api = typeof Notification === "undefined" || !globalThis.isSecureContext
      ? null
      : /** @type {import("./notify.js").NotificationApi} */ (/** @type {unknown} */ (Notification));
    this.#switch = new Notifications(api, storage);
    button.addEventListener("click", () => this.#toggle());
    this.#draw();
  }

  /**
   * A message arrived in the room on screen: notifies if it should.
   * @param {{ userName: string, body: string, id: number }} message
   * @param {{ mine: boolean, mentioned: boolean, direct: boolean, where: string }} about
   * @returns {boolean} whether it notified
   */
  message(message, about) {
    const on = this.#switch.state === "on";
    if (!shouldNotify({ on, hidden: document.hidden, ...about })) return false;
    const text = notificationText(message, about.where, about.mentioned);
    return this.#switch.show(text, `parley-${about.where}-${message.id}`);
  }

  /**
   * New messages in another room mention the person.
   * @param {string} where the room as the page names it
   * @param {number} count
   */
  mentionedIn(where, count) {
    if (this.#switch.state !== "on" || !document.hidden) return;
    const body = count === 1 ? "1 new message mentions you." : `${count} new messages mention you.`;
    this.#switch.show({ title: `You were mentioned in ${where}`, body }, `parley-${where}`);
  }

  async #toggle() {
    if (this.#switch.state === "on") this.#switch.turnOff();
    else await this.#switch.turnOn();
    this.#draw();
  }

  #draw() {
    const state = this.#switch.state;
    this.#button.textContent = LABELS[state];
    this.#button.setAttribute("aria-pressed", String(state === "on"));
    this.#button.disabled = state === "unsupported" || state === "blocked";
    this.#button.title = state === "on" ? "Turn notifications off" : LABELS[state];
  }
}
