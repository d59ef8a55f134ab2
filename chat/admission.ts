/**
 * Who may connect and how fast: the rate buckets of connections and posts.
 */

/** Allows `rate` events per second on average and `burst` at once. */
export class TokenBucket {
  #tokens: number;
  #last = performance.now();

  constructor(private readonly rate: number, private readonly burst: number) {
    this.#tokens = burst;
  }

  /** Takes a token if there is one. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#last) * this.rate / 1000);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
