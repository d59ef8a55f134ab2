/**
 * How late the event loop runs. A timer due every 20 ms notes how much later than due it fires:
 * while the loop is busy (a long synchronous task, a GC pause), every socket's reads and writes
 * wait as long, so this is the delay every client saw at worst. A block shows as up to one
 * interval less than it lasted; a longer interval would miss blocks between its ticks.
 */

/** How a {@link LagMonitor} samples; the defaults suit `/metrics`, tests shorten them. */
export interface LagOptions {
  /** How often its timer is due, in milliseconds; default 20. */
  intervalMs?: number;
  /** How far back {@link LagMonitor.maxSeconds} looks, in milliseconds; default 10,000. */
  windowMs?: number;
}

/**
 * Measures event-loop lag until disposed. Its timer is unref'd: it never keeps a process alive.
 */
export class LagMonitor implements Disposable {
  readonly #intervalMs: number;
  /** The lag of each of the last ticks, in milliseconds: a ring, overwritten oldest first. */
  readonly #recent: Float64Array;
  #slot = 0;
  /** When the pending tick is due, `performance.now()` milliseconds. */
  #due = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: LagOptions = {}) {
    this.#intervalMs = options.intervalMs ?? 20;
    const windowMs = options.windowMs ?? 10_000;
    this.#recent = new Float64Array(Math.max(1, Math.ceil(windowMs / this.#intervalMs)));
    this.#schedule();
  }

  /**
   * The largest lag over the last window, in seconds. A tick that is overdue right now counts
   * too: read at the end of a long block, before the timer could fire, it still shows it.
   */
  maxSeconds(): number {
    let max = Math.max(0, performance.now() - this.#due);
    for (const lag of this.#recent) if (lag > max) max = lag;
    return max / 1000;
  }

  /** Stops the timer; from then on it reports only the lag it had seen. */
  [Symbol.dispose](): void {
    clearTimeout(this.#timer);
    this.#due = Infinity;
  }

  #schedule(): void {
    this.#due = performance.now() + this.#intervalMs;
    this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  #tick(): void {
    this.#recent[this.#slot] = Math.max(0, performance.now() - this.#due);
    this.#slot = (this.#slot + 1) % this.#recent.length;
    this.#schedule();
  }
}
