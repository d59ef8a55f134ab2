// @ts-check
/**
 * Messages typed but not yet stored, per room, and changes to stored ones (edit, delete, react).
 * Each has a clientId, so sending it again is safe: the server applies it once. Sending is paced
 * to stay under the limits the server announced; an ack, the own event coming back, or an error
 * names the entry by its clientId. A refused change is dropped (it has no Retry): the page says
 * why next to its message.
 */

import {
  changeCommand,
  DEFAULT_LIMITS,
  messageCommand,
  newClientId,
  sizeError,
} from "./protocol.js";

/** A message sent but neither acked nor seen for this long is sent again. */
export const RESEND_AFTER_MS = 15_000;
/** The first wait after the server could not store a message; each retry doubles it. */
export const UNAVAILABLE_RETRY_MS = 2000;
const RETRY_MAX_MS = 10_000;
// Pace at this share of the server's rate and burst, so clock drift never trips its bucket.
const PACE = 0.8;

/**
 * `queued` waits for its turn, `sent` waits for the server, `waiting` retries after the server
 * could not store it, `failed` waits for the person (Retry or Edit).
 * @typedef {"queued" | "sent" | "waiting" | "failed"} EntryState
 */

/**
 * One unsent message, or change when `command` is set (`body` is then the edit's, or "").
 * `reason` says briefly why a failed one failed, `detail` at length.
 * @typedef {{
 *   clientId: string, body: string, createdAt: Date, state: EntryState,
 *   sentAt: number, reason: string, detail: string, retries: number,
 *   command: import("./protocol.js").LogCommand | null
 * }} Entry
 */

/**
 * What an outbox needs from its surroundings.
 * @typedef {{
 *   send: (text: string) => boolean,
 *   onChange: (entry: Entry) => void,
 *   timers?: import("./connection.js").Timers,
 *   now?: () => number,
 *   random?: () => number,
 *   newId?: () => string,
 * }} OutboxOptions
 */

/** Why the server refused a message, by error code, as the page shows it next to the message. */
const REFUSALS = new Map([
  ["too_large", "too long"],
  ["rate_limited", "sending too fast"],
  ["forbidden", "not allowed"],
  ["not_found", "no such message"],
]);

/** The unsent messages of each room, and the pacing of the current room's. */
export class Outbox {
  /** @type {OutboxOptions} */ #o;
  /** @type {import("./connection.js").Timers} */ #timers;
  /** @type {() => number} */ #now;
  /** @type {Map<string, Map<string, Entry>>} */ #rooms = new Map();
  /** @type {Map<string, Entry>} */ #box = new Map();
  /** @type {Map<Entry, unknown>} */ #retryTimers = new Map();
  /** @type {import("./protocol.js").Limits} */ #limits = DEFAULT_LIMITS;
  #tokens = this.#burst();
  #tokensAt = 0;
  /** @type {unknown} */ #pumpTimer = undefined;

  /** @param {OutboxOptions} options */
  constructor(options) {
    this.#o = options;
    this.#timers = options.timers ?? globalThis;
    this.#now = options.now ?? Date.now;
    this.#tokensAt = this.#now();
  }

  /** The limits sending keeps to: the server's defaults until `setLimits`. */
  get limits() {
    return this.#limits;
  }

  /**
   * Adopts the limits a welcome announced.
   * @param {import("./protocol.js").Limits} limits
   */
  setLimits(limits) {
    this.#limits = limits;
    this.#tokens = Math.min(this.#tokens, this.#burst());
  }

  /**
   * Switches to a room's messages; those an earlier visit left sent or waiting are queued again.
   * @param {string} room
   */
  setRoom(room) {
    let box = this.#rooms.get(room);
    if (!box) {
      box = new Map();
      this.#rooms.set(room, box);
    }
    this.#box = box;
    for (const entry of box.values()) {
      if (entry.state === "sent" || entry.state === "waiting") this.#queue(entry);
    }
  }

  /** Forgets every room's messages (they belong to the name they were typed under). */
  clear() {
    for (const timer of this.#retryTimers.values()) this.#timers.clearTimeout(timer);
    this.#retryTimers.clear();
    this.#rooms.clear();
    this.#box = new Map();
  }

  /**
   * The current room's unsent messages (not changes), oldest first.
   * @returns {Entry[]}
   */
  entries() {
    return [...this.#box.values()].filter((entry) => entry.command === null);
  }

  /**
   * Queues a message in the current room and sends what the pacing allows. A body over the
   * size limit fails at once: the server would refuse it.
   * @param {string} body
   * @returns {Entry}
   */
  add(body) {
    return this.#enqueue(body, null);
  }

  /**
   * Queues a change to a stored message in the current room, sent as a message is.
   * @param {import("./protocol.js").LogCommand} command
   * @returns {Entry}
   */
  change(command) {
    return this.#enqueue(command.type === "edit" ? command.body : "", command);
  }

  /**
   * @param {string} body
   * @param {import("./protocol.js").LogCommand | null} command
   * @returns {Entry}
   */
  #enqueue(body, command) {
    /** @type {Entry} */
    const entry = {
      clientId: (this.#o.newId ?? newClientId)(),
      body,
      createdAt: new Date(this.#now()),
      state: "queued",
      sentAt: 0,
      reason: "",
      detail: "",
      retries: 0,
      command,
    };
    this.#box.set(entry.clientId, entry);
    const tooLong = sizeError(body, this.#limits.maxMessageBytes);
    if (tooLong) this.#fail(entry, "too long", tooLong);
    else this.pump();
    return entry;
  }

  /** Sends queued messages, oldest first, as far as the tokens go; the rest wait their turn. */
  pump() {
    this.#timers.clearTimeout(this.#pumpTimer);
    this.#refill();
    for (const entry of this.#box.values()) {
      if (entry.state !== "queued") continue;
      const tooLong = sizeError(entry.body, this.#limits.maxMessageBytes);
      if (tooLong) {
        this.#fail(entry, "too long", tooLong);
        continue;
      }
      if (this.#tokens < 1) {
        const wait = (1 - this.#tokens) * 1000 / this.#rate();
        this.#pumpTimer = this.#timers.setTimeout(() => this.pump(), wait);
        return;
      }
      const frame = entry.command
        ? changeCommand(entry.command, entry.clientId)
        : messageCommand(entry.body, entry.clientId);
      if (!this.#o.send(frame)) return;
      this.#tokens -= 1;
      entry.state = "sent";
      entry.sentAt = this.#now();
    }
  }

  /**
   * The server stored this message (an ack, or the message itself came back): it leaves the
   * outbox. Returns the entry, or undefined when it is not (or no longer) here.
   * @param {string} clientId
   * @returns {Entry | undefined}
   */
  settle(clientId) {
    const entry = this.#box.get(clientId);
    if (!entry) return undefined;
    this.#box.delete(clientId);
    this.#stopRetry(entry);
    return entry;
  }

  /**
   * The server answered this message with an error: `unavailable` is retried after a backoff,
   * anything else fails it. Returns the entry, or undefined when it is not here.
   * @param {string} clientId
   * @param {string} code
   * @param {string} text the server's sentence
   * @returns {Entry | undefined}
   */
  refuse(clientId, code, text) {
    const entry = this.#box.get(clientId);
    if (!entry) return undefined;
    if (code === "unavailable") this.#retryLater(entry);
    else this.#fail(entry, REFUSALS.get(code) ?? "refused by the server", text);
    return entry;
  }

  /**
   * Sends a failed message again, as the person asked.
   * @param {string} clientId
   */
  retry(clientId) {
    const entry = this.#box.get(clientId);
    if (!entry || entry.state !== "failed") return;
    this.#queue(entry);
    this.pump();
  }

  /**
   * Takes a failed message out, to be edited; undefined unless it is here and failed.
   * @param {string} clientId
   * @returns {Entry | undefined}
   */
  take(clientId) {
    const entry = this.#box.get(clientId);
    if (!entry || entry.state !== "failed") return undefined;
    return this.settle(clientId);
  }

  /** The socket dropped or was replaced: what was in flight on it is queued again. */
  requeue() {
    for (const entry of this.#box.values()) if (entry.state === "sent") this.#queue(entry);
  }

  /** Queues again what was sent too long ago without an answer, and sends it. */
  resendStale() {
    const now = this.#now();
    let any = false;
    for (const entry of this.#box.values()) {
      if (entry.state === "sent" && now - entry.sentAt > RESEND_AFTER_MS) {
        this.#queue(entry);
        any = true;
      }
    }
    if (any) this.pump();
  }

  /** @param {Entry} entry */
  #queue(entry) {
    this.#stopRetry(entry);
    const wasFailed = entry.state === "failed";
    entry.state = "queued";
    entry.reason = "";
    entry.detail = "";
    if (wasFailed) this.#o.onChange(entry);
  }

  /**
   * @param {Entry} entry
   * @param {string} reason
   * @param {string} detail
   */
  #fail(entry, reason, detail) {
    this.#stopRetry(entry);
    if (entry.command) this.#box.delete(entry.clientId);
    entry.state = "failed";
    entry.reason = reason;
    entry.detail = detail;
    this.#o.onChange(entry);
  }

  /** @param {Entry} entry */
  #retryLater(entry) {
    this.#stopRetry(entry);
    entry.state = "waiting";
    entry.retries += 1;
    const backoff = Math.min(RETRY_MAX_MS, UNAVAILABLE_RETRY_MS * 2 ** (entry.retries - 1));
    const jitter = 0.75 + (this.#o.random ?? Math.random)() * 0.5;
    this.#retryTimers.set(
      entry,
      this.#timers.setTimeout(() => {
        this.#retryTimers.delete(entry);
        if (entry.state !== "waiting") return;
        entry.state = "queued";
        this.pump();
      }, backoff * jitter),
    );
  }

  /** @param {Entry} entry */
  #stopRetry(entry) {
    this.#timers.clearTimeout(this.#retryTimers.get(entry));
    this.#retryTimers.delete(entry);
  }

  #refill() {
    const now = this.#now();
    const refilled = this.#tokens + ((now - this.#tokensAt) / 1000) * this.#rate();
    this.#tokens = Math.min(this.#burst(), refilled);
    this.#tokensAt = now;
  }

  #rate() {
    return this.#limits.messagesPerSecond * PACE;
  }

  #burst() {
    return Math.max(1, Math.floor(this.#limits.burst * PACE));
  }
}
