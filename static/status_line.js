// @ts-check
/// <reference lib="dom" />
/**
 * The page's two lines of news: the connection's status under the room name (with a countdown
 * while it waits to reconnect), and the notice over the conversation, which goes by itself after a
 * while unless it is sticky; a click dismisses it.
 */

const NOTICE_MS = 6000;
/** A notice shown this long stays until it is clicked. */
export const STICKY = 0;

const STATUS_TEXT = {
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  online: "online",
  stopped: "disconnected",
};

/** The status line and the notice. */
export class StatusLine {
  /** @type {HTMLElement} */ #status;
  /** @type {HTMLElement} */ #notice;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #noticeTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */ #countdown;

  /**
   * @param {HTMLElement} status
   * @param {HTMLElement} notice
   */
  constructor(status, notice) {
    this.#status = status;
    this.#notice = notice;
    notice.addEventListener("click", () => this.hideNotice());
  }

  /**
   * @param {string} text
   * @param {number} [ms] how long it shows; STICKY until clicked
   */
  notice(text, ms = NOTICE_MS) {
    clearTimeout(this.#noticeTimer);
    this.#notice.textContent = text;
    this.#notice.classList.add("visible");
    if (ms !== STICKY) this.#noticeTimer = setTimeout(() => this.hideNotice(), ms);
  }

  hideNotice() {
    clearTimeout(this.#noticeTimer);
    this.#notice.classList.remove("visible");
    this.#notice.textContent = "";
  }

  /** @param {import("./connection.js").ConnectionStatus} status */
  show(status) {
    this.stopCountdown();
    if (status.state !== "waiting") {
      this.#set(status.state, STATUS_TEXT[status.state]);
      return;
    }
    const { retryAt } = status;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
      this.#set("reconnecting", `reconnecting in ${seconds} s…`);
    };
    tick();
    this.#countdown = setInterval(tick, 250);
  }

  stopCountdown() {
    clearInterval(this.#countdown);
    this.#countdown = undefined;
  }

  /**
   * @param {string} kind
   * @param {string} text
   */
  #set(kind, text) {
    this.#status.dataset.state = kind;
    this.#status.textContent = text;
  }
}
