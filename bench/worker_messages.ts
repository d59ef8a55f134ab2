/** The messages between the load tool (`bench.ts`) and its worker threads (`load_worker.ts`). */

import type { HistogramSnapshot } from "./stats.ts";

/** Opens the connections `indices` (subscriber numbers) to `url`, `concurrency` at a time. */
export interface ConnectCommand {
  type: "connect";
  /** The WebSocket URL without `userName`; the worker appends `&userName=u<index>`. */
  url: string;
  indices: number[];
  /** Which of `indices` send messages once started. */
  senders: number[];
  /**
   * Which of `indices` connect without a subprotocol (parley's legacy dialect: one message object
   * per frame, no `welcome`; such a connection counts as connected at the upgrade). Never senders.
   */
  legacy: number[];
  /**
   * A second instance's URL (two instances on Redis): every odd-numbered subscriber that is not a
   * sender connects there instead of `url`. Null or absent: all connect to `url`.
   */
  alternateUrl?: string | null;
  concurrency: number;
  /**
   * An API token every connection sends (`Authorization: Bearer`), for parley in accounts mode;
   * none when absent or null.
   */
  token?: string | null;
  /** Give up on a connection that has no `welcome` after this long. */
  timeoutMs: number;
}

/** Starts the senders. Times are epoch microseconds, the same clock in every thread. */
export interface StartCommand {
  type: "start";
  /** Unique per run: a body is `<marker><sender>|<seq>|<sendTimeUs>|` padded to `bodyBytes`. */
  marker: string;
  bodyBytes: number;
  /** `window`: keep `inFlight` unacked messages; `rate`: `rate` messages per second each. */
  mode: "window" | "rate";
  inFlight: number;
  rate: number;
  startUs: number;
  /** Deliveries before this are warm-up: counted for loss, not for rate and latency. */
  warmupEndUs: number;
  /** No message is sent after this. */
  sendEndUs: number;
}

/**
 * Asks for a {@link ProgressReport} (`progress`) or a {@link FinalReport} (`report`), or (`close`)
 * has the worker close every connection and answer `{ type: "closed" }`.
 */
export interface QueryCommand {
  type: "progress" | "report" | "close";
}

/** What the main thread sends a worker. */
export type WorkerCommand = ConnectCommand | StartCommand | QueryCommand;

/** The answer to {@link ConnectCommand}. */
export interface ConnectedReport {
  type: "connected";
  connected: number;
  /** Of `connected`, the legacy connections, and those to the second instance. */
  legacyConnected: number;
  alternateConnected: number;
  failed: number;
  /** Epoch ms of the first connection attempt and of the last `welcome`. */
  firstStartMs: number;
  lastWelcomeMs: number;
  /** The first few failure reasons. */
  failures: string[];
}

/** Running counts of one worker. */
export interface ProgressReport {
  type: "progress";
  /** Messages with this run's marker received, over all connections. */
  delivered: number;
  /** Of those, the ones received between the warm-up's end and the end of sending. */
  deliveredInWindow: number;
  /** WebSocket messages received after the start, for messages per frame. */
  frames: number;
  sent: number;
  acked: number;
  /** Connections still open. */
  open: number;
  /** Of `delivered`, `deliveredInWindow` and `frames`: the legacy connections' share. */
  legacyDelivered: number;
  legacyDeliveredInWindow: number;
  legacyFrames: number;
  /** Legacy frames holding more than one message object (the dialect allows exactly one). */
  legacyMultiMessageFrames: number;
  /** Legacy frames that are not a message object (a `parley.v1` event, or not `{…}\n`). */
  legacyBadFrames: number;
}

/** The final counts of one worker. */
export interface FinalReport extends Omit<ProgressReport, "type"> {
  type: "report";
  /** Latency of messages sent after the warm-up, in microseconds: `parley.v1` connections. */
  v1Latency: HistogramSnapshot;
  /** The same, of the legacy connections. */
  legacyLatency: HistogramSnapshot;
  /** Closes the tool did not ask for, by close code. */
  closes: Record<string, number>;
  /** `error` events from the server, by code. */
  errorEvents: Record<string, number>;
}

/** What a worker sends the main thread. */
export type WorkerReport = ConnectedReport | ProgressReport | FinalReport | { type: "closed" };
