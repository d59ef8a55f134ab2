// @ts-check
/**
 * Desktop notifications: off until the person presses the button that turns them on (the page
 * never asks the browser unprompted), remembered in storage once on; then, while the tab is
 * hidden, a message that mentions the person or any message in a direct room notifies. The
 * browser's Notification API is injectable. No DOM here.
 */

/** Where the person's choice is remembered. */
export const NOTIFY_KEY = "parley.notifications";

/**
 * The part of the browser's `Notification` the page uses.
 * @typedef {{
 *   permission: "default" | "granted" | "denied",
 *   requestPermission(): Promise<"default" | "granted" | "denied">,
 *   new (title: string, options?: { body?: string, tag?: string }): unknown,
 * }} NotificationApi
 */

/**
 * `unsupported` (no API, or not a secure context), `blocked` (the browser said no), `off`, `on`.
 * @typedef {"unsupported" | "blocked" | "off" | "on"} NotifyState
 */

/**
 * Whether a message notifies: only with notifications on and the tab hidden, never the person's
 * own, and then a mention or any message in a direct room.
 * @param {{ on: boolean, hidden: boolean, mine: boolean, mentioned: boolean, direct: boolean }} m
 * @returns {boolean}
 */
export function shouldNotify(m) {
  return m.on && m.hidden && !m.mine && (m.mentioned || m.direct);
}

/**
 * A notification's title and text for a message.
 * @param {{ userName: string, body: string }} message
 * @param {string} where the room as the page names it (`#ops`, `@bob`)
 * @param {boolean} mentioned
 * @returns {{ title: string, body: string }}
 */
export function notificationText(message, where, mentioned) {
  const title = where.startsWith("@")
    ? message.userName
    : `${message.userName}${mentioned ? " mentioned you" : ""} in ${where}`;
  const body = message.body.length > 200 ? `${message.body.slice(0, 199)}…` : message.body;
  return { title, body };
}

/** The person's notification switch. */
export class Notifications {
  /** @type {NotificationApi | null} */ #api;
  /** @type {import("./unread.js").StorageLike | null} */ #storage;
  #on = false;

  /**
   * @param {NotificationApi | null} api null where the browser has none
   * @param {import("./unread.js").StorageLike | null} storage
   */
  constructor(api, storage) {
    this.#api = api;
    this.#storage = storage;
    this.#on = this.#remembered() && api?.permission === "granted";
  }

  /** @returns {NotifyState} */
  get state() {
    if (!this.#api) return "unsupported";
    if (this.#api.permission === "denied") return "blocked";
    return this.#on && this.#api.permission === "granted" ? "on" : "off";
  }

  /**
   * The person pressed "turn on": asks the browser if it has not been asked; the new state.
   * @returns {Promise<NotifyState>}
   */
  async turnOn() {
    if (!this.#api) return "unsupported";
    const permission = this.#api.permission === "default"
      ? await this.#api.requestPermission()
      : this.#api.permission;
    this.#on = permission === "granted";
    this.#remember(this.#on);
    return this.state;
  }

  /** The person pressed "turn off". */
  turnOff() {
    this.#on = false;
    this.#remember(false);
  }

  /**
   * Shows a notification if they are on; true if one was shown.
   * @param {{ title: string, body: string }} text
   * @param {string} tag notifications with one tag replace each other
   * @returns {boolean}
   */
  show(text, tag) {
    if (this.state !== "on" || !this.#api) return false;
    try {
      new this.#api(text.title, { body: text.body, tag });
      return true;
    } catch {
      return false; // some browsers only notify from a service worker
    }
  }

  #remembered() {
    try {
      return this.#storage?.getItem(NOTIFY_KEY) === "on";
    } catch {
      return false;
    }
  }

  /** @param {boolean} on */
  #remember(on) {
    try {
      this.#storage?.setItem(NOTIFY_KEY, on ? "on" : "off");
    } catch { /* storage may be disabled */ }
  }
}
