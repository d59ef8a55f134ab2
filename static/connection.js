// @ts-check
/**
 * The page's link to the server: one WebSocket at a time, opened again with a jittered backoff
 * when it drops, resuming with `since` after the newest message received so nothing is missed;
 * not after a refusal on policy (1008: a ban, a room taken away), which would only repeat.
 * The socket constructor and the timers are injectable, so it runs without a browser.
 */

import { PROTOCOL, splitFrame } from "./protocol.js";

/** The first reconnect waits up to this long; each failure doubles it. */
export const BACKOFF_MIN_MS = 500;
/** The longest wait between reconnects. */
export const BACKOFF_MAX_MS = 10_000;

const OPEN = 1; // WebSocket.OPEN
/** The close code of a refusal on policy (a ban, a room the person may not use): final. */
export const POLICY_CLOSE = 1008;

/**
 * What the connection is doing, for the status line: `waiting` until `retryAt` (ms since epoch);
 * `stopped` after a refusal on policy, which trying again would only repeat.
 * @typedef {{ state: "connecting" | "reconnecting" | "online" | "stopped" }
 *   | { state: "waiting", retryAt: number }} ConnectionStatus
 */

/**
 * The part of a WebSocket the connection uses, and of the events it listens to.
 * @typedef {{ data?: unknown, code?: number, reason?: string }} SocketEvent
 * @typedef {{
 *   readyState: number,
 *   send(data: string): void,
 *   close(code?: number, reason?: string): void,
 *   addEventListener(type: "message" | "close", listener: (event: SocketEvent) => void): void
 * }} SocketLike
 * @typedef {new (url: string, protocol: string) => SocketLike} SocketConstructor
 */

/**
 * Timers, as `globalThis` has them; an id is whatever `setTimeout` returned.
 * @typedef {{
 *   setTimeout(fn: () => void, ms: number): unknown,
 *   clearTimeout(id: unknown): void
 * }} Timers
 */

/**
 * What a connection needs from its surroundings.
 * @typedef {{
 *   origin: { protocol: string, host: string },
 *   onEvents: (events: import("./protocol.js").ServerEvent[]) => void,
 *   onStatus: (status: ConnectionStatus) => void,
 *   onDrop: (close: { code: number, reason: string }) => void,
 *   WebSocket?: SocketConstructor,
 *   timers?: Timers,
 *   now?: () => number,
 *   random?: () => number,
 * }} ConnectionOptions
 */

/**
 * The URL of `/chat` for a room and name; `since` (null for none) resumes after that id.
 * @param {{ protocol: string, host: string }} origin the page's `location`
 * @param {string} room
 * @param {string} userName
 * @param {number | null} since
 * @returns {string}
 */
export function socketUrl(origin, room, userName, since) {
  const scheme = origin.protocol === "https:" ? "wss" : "ws";
  const params = new URLSearchParams({ room, userName });
  if (since !== null) params.set("since", String(since));
  return `${scheme}://${origin.host}/chat?${params}`;
}

/**
 * Why the server closed the socket, as a sentence for a notice ("" for an ordinary close).
 * @param {{ code: number, reason: string }} close
 * @returns {string}
 */
export function closeReason(close) {
  if (isBan(close)) return "This account has been banned; ask an admin.";
  if (close.code === POLICY_CLOSE && /\bremoved\b/i.test(close.reason)) {
    return "You were removed from this room; pick another one.";
  }
  if (close.reason) return `Disconnected: ${close.reason}`;
  switch (close.code) {
    case POLICY_CLOSE:
      return "The server refused the connection (policy).";
    case 1009:
      return "A message was too large for the server.";
    case 1011:
      return "The server had a problem; reconnecting.";
    case 1013:
      return "The connection fell behind; reconnecting.";
    default:
      return "";
  }
}

/**
 * Whether the server closed the socket because the person's account was banned.
 * @param {{ code: number, reason: string }} close
 * @returns {boolean}
 */
export function isBan(close) {
  return close.code === POLICY_CLOSE && /\bbanned\b/i.test(close.reason);
}

/** A resumable session in one room under one name; `open` starts it, `close` ends it. */
export class Connection {
  /** @type {ConnectionOptions} */ #o;
  /** @type {SocketConstructor} */ #WebSocket;
  /** @type {Timers} */ #timers;
  /** @type {SocketLike | null} */ #socket = null;
  #room = "";
  #userName = "";
  /** @type {number | null} */ #since = null;
  #online = false;
  #welcomed = false;
  #attempt = 0;
  /** @type {unknown} */ #retryTimer = undefined;
  /** Counts `close` calls, so a drop handler that closed or reopened is not overruled. */
  #closes = 0;
  #stopped = false;

  /** @param {ConnectionOptions} options */
  constructor(options) {
    this.#o = options;
    this.#WebSocket = options.WebSocket ??
      /** @type {SocketConstructor} */ (/** @type {unknown} */ (globalThis.WebSocket));
    this.#timers = options.timers ?? globalThis;
  }

  /** True from the server's `welcome` until the socket drops: commands can be sent. */
  get online() {
    return this.#online && this.#socket !== null && this.#socket.readyState === OPEN;
  }

  /** True after a refusal on policy, until `open`: nothing reconnects by itself. */
  get stopped() {
    return this.#stopped;
  }

  /** The id the next socket resumes after, or null when it asks for the recent history. */
  get since() {
    return this.#since;
  }

  /**
   * Connects to a room afresh (closing any current socket): no `since`, the backoff reset.
   * @param {string} room
   * @param {string} userName
   */
  open(room, userName) {
    this.close();
    this.#room = room;
    this.#userName = userName;
    this.#since = null;
    this.#welcomed = false;
    this.#stopped = false;
    this.#attempt = 0;
    this.#connect();
  }

  /** Closes the socket and stops reconnecting; nothing is reported for this close. */
  close() {
    const socket = this.#socket;
    this.#socket = null;
    this.#online = false;
    this.#closes += 1;
    this.#clearRetry();
    try {
      socket?.close(1000, "bye");
    } catch { /* already closed */ }
  }

  /**
   * Sends one command; false when there is no open, welcomed socket to send it on.
   * @param {string} text
   * @returns {boolean}
   */
  send(text) {
    if (!this.online) return false;
    try {
      /** @type {SocketLike} */ (this.#socket).send(text);
      return true;
    } catch {
      return false; // the socket is closing; its close event follows
    }
  }

  /** Skips the rest of a reconnect wait (the tab came back, the network returned). */
  reconnectNow() {
    if (this.#socket === null && this.#retryTimer !== undefined) this.#connect();
  }

  /**
   * A message with this id was received: the next socket resumes after it.
   * @param {number} id
   */
  resumeAfter(id) {
    this.#since = Math.max(this.#since ?? 0, id);
  }

  /** The room was empty when entered: a reconnect must replay everything said since. */
  resumeFromStart() {
    this.#since ??= 0;
  }

  /** What was received is being thrown away: the next socket asks for recent history instead. */
  forgetPosition() {
    this.#since = null;
  }

  #connect() {
    this.#clearRetry();
    const again = this.#welcomed || this.#attempt > 0;
    this.#o.onStatus({ state: again ? "reconnecting" : "connecting" });
    const url = socketUrl(this.#o.origin, this.#room, this.#userName, this.#since);
    /** @type {SocketLike} */
    let socket;
    try {
      socket = new this.#WebSocket(url, PROTOCOL);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    this.#online = false;
    socket.addEventListener("message", (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket === this.#socket) this.#dropped(event.code ?? 1006, event.reason ?? "");
    });
  }

  /** @param {unknown} data */
  #receive(data) {
    const events = splitFrame(data);
    if (events.some((event) => event.type === "welcome")) {
      this.#online = true;
      this.#welcomed = true;
      this.#attempt = 0;
      this.#o.onStatus({ state: "online" });
    }
    if (events.length > 0) this.#o.onEvents(events);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  #dropped(code, reason) {
    this.#socket = null;
    this.#online = false;
    const closes = this.#closes;
    this.#o.onDrop({ code, reason });
    if (closes !== this.#closes) return;
    if (code === POLICY_CLOSE) {
      this.#stopped = true;
      this.#o.onStatus({ state: "stopped" });
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt);
    const random = this.#o.random ?? Math.random;
    const delay = ceiling / 2 + random() * (ceiling / 2);
    this.#attempt += 1;
    this.#clearRetry();
    this.#retryTimer = this.#timers.setTimeout(() => this.#connect(), delay);
    const now = this.#o.now ?? Date.now;
    this.#o.onStatus({ state: "waiting", retryAt: now() + delay });
  }

  #clearRetry() {
    this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}
