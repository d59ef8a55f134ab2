/**
 * How many WebSockets this process can hold: each is a file descriptor, and past the process's
 * limit (`ulimit -n`, systemd's `LimitNOFILE`) the listener cannot accept anything at all. Deno
 * has no `getrlimit` and refuses to read `/proc/self/limits` without `--allow-all`, so the limit
 * is found by opening descriptors until there are enough or the system says there are no more.
 */

import { closeSync, openSync } from "node:fs";

/**
 * Descriptors left for all but WebSockets (the runtime, the store, the log, the listener, Redis,
 * and plain HTTP requests for the page and history): this many, or a quarter of a smaller limit.
 * No more, so that 19,000 WebSockets fit in a limit of 20,000 (the `idle` benchmark).
 */
const RESERVE = 256;

/** The process's open-file limit if it is below `files`; null if it is at least that. */
export type LimitBelow = (files: number) => number | null;

/** The limit proven so far in this process: descriptors opened at once without running out. */
let proven = 0;
/** The limit found, once it has been run into. */
let found: number | null = null;

/**
 * The open-file limit, if it is below `files`: it opens `.` until the highest descriptor reaches
 * `files` or opening fails with EMFILE, then closes them all. The result is kept, so a process
 * pays for this once (about 10 µs a descriptor).
 */
export const fileLimitBelow: LimitBelow = (files) => {
  if (found !== null) return found < files ? found : null;
  if (files <= proven) return null;
  const opened: number[] = [];
  try {
    // Descriptors are handed out lowest first, so the newest is the highest in use.
    while ((opened.at(-1) ?? -1) + 1 < files) opened.push(openSync(".", "r"));
    proven = files;
    return null;
  } catch (error) {
    // Out of descriptors before opening one, it cannot tell how many there are.
    if ((error as { code?: string }).code !== "EMFILE" || opened.length === 0) return null;
    found = opened.at(-1)! + 1;
    return found;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
};

/** What {@link fitConnections} decided. */
export interface FittedConnections {
  maxConnections: number;
  /** The line to log when it lowered the setting, saying what to raise; else null. */
  note: string | null;
}

/**
 * `maxConnections`, lowered if the process cannot open that many descriptors with some to spare
 * for everything else; then the server answers 503 to upgrades past it instead of failing to
 * accept. `limitBelow` is the probe (tests give another).
 */
export function fitConnections(
  maxConnections: number,
  limitBelow: LimitBelow = fileLimitBelow,
): FittedConnections {
  const limit = limitBelow(maxConnections + RESERVE);
  const fitted = limit === null
    ? maxConnections
    : Math.max(1, limit - Math.min(RESERVE, Math.floor(limit / 4)));
  if (fitted >= maxConnections) return { maxConnections, note: null };
  return {
    maxConnections: fitted,
    note: `maxConnections lowered from ${maxConnections} to ${fitted}: the process may open ` +
      `${limit} files; raise the limit with ulimit -n or systemd's LimitNOFILE to allow more`,
  };
}
