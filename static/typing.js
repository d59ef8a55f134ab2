// @ts-check
/**
 * Who is typing, both ways: the names the server says are typing, each dropped after TYPING_SHOWN_MS
 * or when their message arrives; and the pace of the person's own `typing` pings, at most one per
 * TYPING_EVERY_MS however fast they type. The timers are injectable. No DOM here.
 */

/** How long a name stays "typing" after its last ping. */
export const TYPING_SHOWN_MS = 5000;
/** The person's own pings go out at most this often (the server drops extra ones). */
export const TYPING_EVERY_MS = 2000;

/** The names typing in the room on screen. */
export class TypingTracker {
  /** @type {Map<string, unknown>} */ #timers = new Map();
  /** @type {() => void} */ #onChange;
  /** @type {import("./connection.js").Timers} */ #clock;

  /**
   * @param {() => void} onChange called whenever the names change
   * @param {import("./connection.js").Timers} [timers]
   */
  constructor(onChange, timers = globalThis) {
    this.#onChange = onChange;
    this.#clock = timers;
  }

  /**
   * The names typing, in the order they started.
   * @returns {string[]}
   */
  get names() {
    return [...this.#timers.keys()];
  }

  /**
   * `userName` is typing: shown (again) for TYPING_SHOWN_MS.
   * @param {string} userName
   */
  typing(userName) {
    const known = this.#timers.has(userName);
    this.#clock.clearTimeout(this.#timers.get(userName));
    this.#timers.set(
      userName,
      this.#clock.setTimeout(() => this.stopped(userName), TYPING_SHOWN_MS),
    );
    if (!known) this.#onChange();
  }

  /**
   * `userName` stopped typing (their message arrived, or the time ran out).
   * @param {string} userName
   */
  stopped(userName) {
    if (!this.#timers.has(userName)) return;
    this.#clock.clearTimeout(this.#timers.get(userName));
    this.#timers.delete(userName);
    this.#onChange();
  }

  /** Nobody is typing any more (another room, a new connection). */
  clear() {
    if (this.#timers.size === 0) return;
    for (const timer of this.#timers.values()) this.#clock.clearTimeout(timer);
    this.#timers.clear();
    this.#onChange();
  }
}

/**
 * The line shown for the names typing: "" for none, "bob is typing…", "bob and carol are
 * typing…", and past three names "several people are typing…".
 * @param {readonly string[]} names
 * @returns {string}
 */
export function typingText(names) {
  switch (names.length) {
    case 0:
      return "";
    case 1:
      return `${names[0]} is typing…`;
    case 2:
      return `${names[0]} and ${names[1]} are typing…`;
    case 3:
      return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
    default:
      return "several people are typing…";
  }
}

/** Paces the person's own typing pings. */
export class TypingPacer {
  #last = -Infinity;
  /** @type {() => number} */ #now;

  /** @param {() => number} [now] */
  constructor(now = Date.now) {
    this.#now = now;
  }

  /**
   * The person typed: true when a ping should go now.
   * @returns {boolean}
   */
  typed() {
    const now = this.#now();
    if (now - this.#last < TYPING_EVERY_MS) return false;
    this.#last = now;
    return true;
  }

  /** The message was sent: the next keystroke is a new start, pinged at once. */
  sent() {
    this.#last = -Infinity;
  }
}
