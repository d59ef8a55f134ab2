/** Counters an operator scrapes from `GET /metrics`, in Prometheus' text format. */

import type { LagMonitor } from "./lag.ts";

/** The live counters of one server. */
export class Metrics {
  /** Frames received from clients. */
  messagesIn = 0;
  /** Message events sent to clients, counted once per recipient. */
  messagesOut = 0;
  /** Clients closed for falling behind. */
  drops = 0;
  /** Protocol errors in what clients sent (a `parley.v1` client also gets an `error` event). */
  errors = 0;
  /** Requests refused by a limit, a bad parameter or the origin check. */
  refused = 0;
  readonly #closes = new Map<number, number>();

  /** `lag` gives the event-loop lag gauge; without one, there is none. */
  constructor(readonly lag: LagMonitor | null = null) {}

  /** Counts a closed connection by its close code. */
  closed(code: number): void {
    this.#closes.set(code, (this.#closes.get(code) ?? 0) + 1);
  }

  /** The Prometheus text exposition of every counter. */
  render(gauges: { connections: number; rooms: number; historyMessages: number }): string {
    const lines = [
      metric("parley_connections", "gauge", "Open WebSocket connections.", gauges.connections),
      metric("parley_rooms", "gauge", "Rooms with someone in them.", gauges.rooms),
      ...(this.lag === null ? [] : [
        metric(
          "parley_event_loop_lag_seconds",
          "gauge",
          "The longest the event loop was blocked over the last 10 s, in seconds: how long " +
            "every socket's I/O waited at worst (a 20 ms timer's lateness, so up to 20 ms under).",
          Math.round(this.lag.maxSeconds() * 1e6) / 1e6,
        ),
      ]),
      metric("parley_messages_in_total", "counter", "Frames received.", this.messagesIn),
      metric(
        "parley_messages_out_total",
        "counter",
        "Message events sent, once per recipient.",
        this.messagesOut,
      ),
      metric(
        "parley_slow_consumer_drops_total",
        "counter",
        "Clients closed as too slow.",
        this.drops,
      ),
      metric(
        "parley_errors_total",
        "counter",
        "Protocol errors in what clients sent.",
        this.errors,
      ),
      metric(
        "parley_refused_total",
        "counter",
        "Requests refused by a limit, a bad parameter or the origin.",
        this.refused,
      ),
      metric(
        "parley_history_messages",
        "gauge",
        "Messages in the history store.",
        gauges.historyMessages,
      ),
      "# HELP parley_disconnects_total Closed connections by WebSocket close code.",
      "# TYPE parley_disconnects_total counter",
      ...[...this.#closes].map(([code, n]) => `parley_disconnects_total{code="${code}"} ${n}`),
    ];
    return lines.join("\n") + "\n";
  }
}

function metric(name: string, type: string, help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}`;
}
