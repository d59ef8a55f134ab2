/**
 * One line per event, to stderr and appended to `logfilePath`; message bodies are never logged,
 * nor is anything shaped like a JWT (see {@link withoutTokens}). Client text cannot forge or hide
 * lines: every line is escaped, cut to a bounded length, and refusals can be rate limited per
 * address.
 */

import { setImmediate } from "node:timers";

/** The longest message a line carries; the rest is cut, so a client cannot flood the log. */
const MAX_MESSAGE = 4096;

/**
 * Writes timestamped log lines. Info lines of one event-loop turn go out in one write: a line per
 * connection, written at once, cost the server a tenth of its time when thousands joined together.
 * Errors are written at once. A log file that cannot be opened is a start-up error.
 */
export class Logger {
  readonly #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();
  readonly #limited = new RateLimitedLog((line) => this.error(line));
  #pending = "";

  /**
   * Opens `path` for appending (never truncating); `stderr: false` keeps tests quiet, and `name`
   * tells apart the lines of workers sharing the file.
   */
  constructor(readonly path: string, private readonly stderr = true, private readonly name = "") {
    this.#file = Deno.openSync(path, { append: true, create: true });
  }

  info(message: string): void {
    if (this.#pending === "") setImmediate(() => this.flush());
    this.#pending += this.#line("info", message);
  }

  error(message: string): void {
    this.#pending += this.#line("error", message);
    this.flush();
  }

  /**
   * An error line that a client can cause at will (a refusal): at most 10 per `key` (its
   * address) in 10 s, then one line saying how many more there were (see {@link RateLimitedLog}).
   */
  limited(key: string, message: string): void {
    this.#limited.write(key, message);
  }

  /** Writes the lines not written yet. */
  flush(): void {
    if (this.#pending === "") return;
    const bytes = this.#encoder.encode(this.#pending);
    this.#pending = "";
    if (this.stderr) writeAll(Deno.stderr, bytes);
    try {
      writeAll(this.#file, bytes);
    } catch {
      // A full disk must not take the chat down; stderr still has the line.
    }
  }

  close(): void {
    this.#limited.close();
    this.flush();
    this.#file.close();
  }

  #line(level: string, message: string): string {
    const text = message.length > MAX_MESSAGE
      ? `${cut(message, MAX_MESSAGE)}… (${message.length} characters)`
      : message;
    const name = this.name ? `${escapeControls(this.name)}: ` : "";
    return `${new Date().toISOString()} ${level} ${name}${escapeControls(withoutTokens(text))}\n`;
  }
}

/** A JWT, or the start of one: its header is base64url JSON, which begins `eyJ` (`{"`). */
const JWT = /(?<![\w-])eyJ[\w-]{4,}(?:\.[\w-]*){0,2}/g;

/**
 * The text with every JWT in it, whole or cut, replaced by `[token]`. Whoever logs a URL or a
 * frame need not remember that a token may be in it (`?token=` on `/chat`, a `refresh` frame).
 */
export function withoutTokens(text: string): string {
  return text.includes("eyJ") ? text.replace(JWT, "[token]") : text;
}

function writeAll(target: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += target.writeSync(bytes.subarray(at));
}

// Controls (C0, DEL, C1), format characters (bidi overrides, zero-width), line separators: what
// could end a line, hide text, or reorder it on a terminal.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** The text with every {@link UNSAFE} character written as an escape such as `\n` or `\u202e`. */
function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.codePointAt(0)!;
    return SHORT_ESCAPES[c] ??
      (code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}

/** The first `max` UTF-16 units of `text`, one fewer rather than half a surrogate pair. */
function cut(text: string, max: number): string {
  const end = /[\ud800-\udbff]/.test(text[max - 1] ?? "") ? max - 1 : max;
  return text.slice(0, end);
}

/**
 * A value from a client, fit for a log line: a string quoted as JSON, anything else as its JSON,
 * cut after `max` characters with "…" and the original length, controls escaped. Use it for every
 * client value a line quotes (a query parameter, a frame's field, a close reason).
 */
export function clientText(value: unknown, max = 64): string {
  const quoted = typeof value === "string";
  const text = quoted ? value : jsonOf(value);
  const shown = text.length > max ? cut(text, max) : text;
  const more = shown.length < text.length ? `… (${text.length} characters)` : "";
  return escapeControls(quoted ? JSON.stringify(shown) : shown) + more;
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Time for {@link RateLimitedLog}: the system's, or a test's that it moves by hand. */
export interface Clock {
  /** Milliseconds since some fixed point. */
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels that. */
  after(ms: number, fn: () => void): () => void;
}

/** `Date.now` and timers that never keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    Deno.unrefTimer(timer);
    return () => clearTimeout(timer);
  },
};

/** How {@link RateLimitedLog} limits. */
export interface RateLimitOptions {
  /** Lines written per key per interval (10). */
  lines?: number;
  /** The interval in milliseconds (10 000). */
  intervalMs?: number;
  /** Keys tracked at once (10 000); lines of further keys share one key, "(other keys)". */
  maxKeys?: number;
  clock?: Clock;
}

interface Window {
  start: number;
  written: number;
  dropped: number;
}

const OTHER_KEYS = "(other keys)";

/**
 * Writes at most `lines` lines per key per interval, then drops the rest of that interval's lines
 * and writes one summary, "KEY: and 812 more not logged", once the interval has ended. A flood of
 * refusals then costs the log a few lines, however many the client sends.
 */
export class RateLimitedLog {
  readonly #write: (line: string) => void;
  readonly #lines: number;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #clock: Clock;
  readonly #windows = new Map<string, Window>();
  #cancelSweep: (() => void) | null = null;

  constructor(write: (line: string) => void, options: RateLimitOptions = {}) {
    this.#write = write;
    this.#lines = options.lines ?? 10;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#clock = options.clock ?? systemClock;
  }

  /** Writes `line` unless `key` has used up its lines for this interval; true if written. */
  write(key: string, line: string): boolean {
    const now = this.#clock.now();
    const window = this.#window(key, now);
    if (window.written < this.#lines) {
      window.written++;
      this.#write(line);
      return true;
    }
    window.dropped++;
    this.#cancelSweep ??= this.#clock.after(this.#intervalMs, () => this.#sweep());
    return false;
  }

  /** Writes the summary of every key with dropped lines, now, and stops the timer. */
  close(): void {
    this.#cancelSweep?.();
    this.#cancelSweep = null;
    for (const [key, window] of this.#windows) this.#summarise(key, window);
    this.#windows.clear();
  }

  /** The current window of `key`, ending (and summarising) an expired one. */
  #window(key: string, now: number): Window {
    let window = this.#windows.get(key);
    if (window !== undefined && now - window.start >= this.#intervalMs) {
      this.#summarise(key, window);
      this.#windows.delete(key);
      window = undefined;
    }
    if (window !== undefined) return window;
    if (this.#windows.size >= this.#maxKeys) this.#endWindows(now);
    if (this.#windows.size >= this.#maxKeys && key !== OTHER_KEYS) {
      return this.#window(OTHER_KEYS, now);
    }
    window = { start: now, written: 0, dropped: 0 };
    this.#windows.set(key, window);
    return window;
  }

  #sweep(): void {
    this.#cancelSweep = null;
    this.#endWindows(this.#clock.now());
    const owed = [...this.#windows.values()].some((window) => window.dropped > 0);
    if (owed) this.#cancelSweep = this.#clock.after(this.#intervalMs, () => this.#sweep());
  }

  /** Summarises and forgets the windows that have ended. */
  #endWindows(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.start < this.#intervalMs) continue;
      this.#summarise(key, window);
      this.#windows.delete(key);
    }
  }

  #summarise(key: string, window: Window): void {
    if (window.dropped === 0) return;
    const seconds = this.#intervalMs / 1000;
    this.#write(
      `${key}: and ${window.dropped} more not logged (at most ${this.#lines} lines in ${seconds} s)`,
    );
    window.dropped = 0;
  }
}
