/// <reference lib="deno.worker" />
/**
 * A worker thread of the load tool: holds a share of the subscribers, runs the senders among them,
 * and counts what arrives. Receivers never parse JSON: they scan each frame for the run's marker,
 * so a frame holding several `\n`-separated events costs one pass. Legacy receivers (no
 * subprotocol) also check that each frame is exactly one message object followed by `\n`.
 */

import { classifyLegacyFrame } from "./legacy_frame.ts";
import { Histogram } from "./stats.ts";
import { WsClient } from "./ws_client.ts";
import type {
  ConnectCommand,
  FinalReport,
  ProgressReport,
  StartCommand,
  WorkerCommand,
  WorkerReport,
} from "./worker_messages.ts";

interface Connection {
  index: number;
  socket: WsClient | null;
  sender: boolean;
  /** Connected without a subprotocol: parley's legacy dialect. */
  legacy: boolean;
  /** Connected to the second instance (`alternateUrl`). */
  alternate: boolean;
  sent: number;
  acked: number;
}

const connections: Connection[] = [];
/** Latencies of the `parley.v1` connections and of the legacy ones; bench.ts merges them. */
const v1Latency = new Histogram();
const legacyLatency = new Histogram();
const closes: Record<string, number> = {};
const errorEvents: Record<string, number> = {};
let delivered = 0;
let deliveredInWindow = 0;
let frames = 0;
let legacyDelivered = 0;
let legacyDeliveredInWindow = 0;
let legacyFrames = 0;
let legacyMultiMessageFrames = 0;
let legacyBadFrames = 0;
let sentTotal = 0;
let ackedTotal = 0;
let closing = false;
let run: StartCommand | null = null;
let padding = "";

const ACK = '"ack"';
const ERROR = '"type":"error"';

/** Epoch microseconds, comparable across threads. */
function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

function post(report: WorkerReport): void {
  self.postMessage(report);
}

function send(connection: Connection, start: StartCommand): void {
  const seq = connection.sent++;
  sentTotal++;
  const head = `${start.marker}${connection.index}|${seq}|${nowUs()}|`;
  const body = head + padding.slice(0, Math.max(1, start.bodyBytes - head.length));
  // The sender's index in the clientId: in accounts mode every sender is the same account, and a
  // clientId is unique per name.
  const clientId = `c${connection.index}-${seq}`;
  connection.socket?.send(`{"type":"message","body":"${body}","clientId":"${clientId}"}`);
}

/** Reads the send time that follows `<marker><sender>|<seq>|` at `from`; -1 if malformed. */
function sendTimeAt(text: string, from: number): number {
  let i = from;
  let bars = 0;
  while (bars < 2 && i < text.length) {
    if (text.charCodeAt(i++) === 124) bars++; // "|"
  }
  let value = 0;
  let digits = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    value = value * 10 + c;
    digits++;
  }
  return digits > 0 ? value : -1;
}

function onFrame(connection: Connection, text: string): void {
  const start = run;
  if (start === null) return; // nothing of ours can arrive before the start
  const marker = start.marker;
  frames++;
  const now = nowUs();
  const inWindow = now >= start.warmupEndUs && now <= start.sendEndUs;
  const legacy = connection.legacy;
  if (legacy) {
    legacyFrames++;
    const kind = classifyLegacyFrame(text);
    if (kind === "multi") legacyMultiMessageFrames++;
    else if (kind === "bad") legacyBadFrames++;
  }
  let at = text.indexOf(marker);
  while (at >= 0) {
    delivered++;
    if (inWindow) deliveredInWindow++;
    if (legacy) {
      legacyDelivered++;
      if (inWindow) legacyDeliveredInWindow++;
    }
    const sentUs = sendTimeAt(text, at + marker.length);
    if (sentUs >= start.warmupEndUs) (legacy ? legacyLatency : v1Latency).record(now - sentUs);
    at = text.indexOf(marker, at + marker.length);
  }
  if (connection.sender) {
    let acks = 0;
    let a = text.indexOf(ACK);
    while (a >= 0) {
      acks++;
      a = text.indexOf(ACK, a + ACK.length);
    }
    if (acks > 0) {
      connection.acked += acks;
      ackedTotal += acks;
      if (start.mode === "window") {
        while (connection.sent - connection.acked < start.inFlight && nowUs() < start.sendEndUs) {
          send(connection, start);
        }
      }
    }
  }
  if (text.includes(ERROR)) {
    const code = /"code":"([^"]*)"/.exec(text)?.[1] ?? "unknown";
    errorEvents[code] = (errorEvents[code] ?? 0) + 1;
  }
}

function open(
  url: string,
  alternate: boolean,
  index: number,
  sender: boolean,
  legacy: boolean,
  timeoutMs: number,
  headers: Record<string, string>,
): Promise<string> {
  return new Promise((resolve) => {
    let settled = false;
    const connection: Connection = {
      index,
      socket: null,
      sender,
      legacy,
      alternate,
      sent: 0,
      acked: 0,
    };
    const settle = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (reason !== "") connection.socket?.close();
      resolve(reason);
    };
    const timer = setTimeout(() => settle(`no welcome within ${timeoutMs} ms`), timeoutMs);
    // A legacy connection gets no welcome: it counts as connected once the upgrade is answered.
    let welcomed = false;
    WsClient.connect(
      `${url}&userName=u${index}`,
      legacy ? "" : "parley.v1",
      {
        text: (data: string) => {
          if (welcomed || legacy) {
            onFrame(connection, data);
            return;
          }
          if (settled || !data.includes('"welcome"')) return;
          welcomed = true;
          connections.push(connection);
          settle("");
          const rest = data.indexOf("\n");
          if (rest >= 0) onFrame(connection, data.slice(rest + 1));
        },
        closed: (code: number, reason: string) => {
          if (!settled) settle(`closed ${code} ${reason}`);
          else if (!closing && welcomed) closes[code] = (closes[code] ?? 0) + 1;
        },
      },
      timeoutMs,
      headers,
    ).then(
      (socket) => {
        connection.socket = socket;
        if (settled && !welcomed) socket.close(); // timed out before the welcome
        else if (legacy && !settled) {
          welcomed = true;
          connections.push(connection);
          settle("");
        }
      },
      (error: Error) => settle(error.message),
    );
  });
}

async function connectAll(command: ConnectCommand): Promise<void> {
  const senders = new Set(command.senders);
  const legacy = new Set(command.legacy);
  const queue = command.indices.slice();
  const failures: string[] = [];
  const headers: Record<string, string> = command.token
    ? { authorization: `Bearer ${command.token}` }
    : {};
  let failed = 0;
  let lastWelcomeMs = 0;
  const firstStartMs = Date.now();
  const lane = async (): Promise<void> => {
    for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
      const sender = senders.has(index);
      const alternate = command.alternateUrl ? !sender && index % 2 === 1 : false;
      const reason = await open(
        alternate ? command.alternateUrl! : command.url,
        alternate,
        index,
        sender,
        legacy.has(index) && !sender,
        command.timeoutMs,
        headers,
      );
      if (reason === "") {
        lastWelcomeMs = Date.now();
      } else {
        failed++;
        if (failures.length < 5) failures.push(`u${index}: ${reason}`);
      }
    }
  };
  const lanes = Math.max(1, Math.min(command.concurrency, command.indices.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  post({
    type: "connected",
    connected: connections.length,
    legacyConnected: connections.filter((c) => c.legacy).length,
    alternateConnected: connections.filter((c) => c.alternate).length,
    failed,
    firstStartMs,
    lastWelcomeMs,
    failures,
  });
}

function startSending(start: StartCommand): void {
  run = start;
  padding = "x".repeat(start.bodyBytes);
  const senders = connections.filter((c) => c.sender);
  if (senders.length === 0) return;
  if (start.mode === "window") {
    const begin = (): void => {
      for (const connection of senders) {
        while (connection.sent < start.inFlight) send(connection, start);
      }
    };
    setTimeout(begin, Math.max(0, (start.startUs - nowUs()) / 1000));
    return;
  }
  // Rate: each sender is due `rate` messages a second from its own start, staggered evenly.
  const periodUs = 1e6 / start.rate;
  const offsets = senders.map((_c, i) => start.startUs + (periodUs * i) / senders.length);
  const cap = Math.max(1000, start.rate * 10); // never more unacked than this
  const tick = setInterval(() => {
    const now = nowUs();
    const until = Math.min(now, start.sendEndUs);
    for (let i = 0; i < senders.length; i++) {
      const connection = senders[i];
      const due = Math.floor((until - offsets[i]) / periodUs) + 1;
      while (connection.sent < due && connection.sent - connection.acked < cap) {
        send(connection, start);
      }
    }
    if (now >= start.sendEndUs) clearInterval(tick);
  }, 2);
}

function progress(): Omit<ProgressReport, "type"> {
  let open = 0;
  for (const c of connections) if (c.socket?.open) open++;
  return {
    delivered,
    deliveredInWindow,
    frames,
    sent: sentTotal,
    acked: ackedTotal,
    open,
    legacyDelivered,
    legacyDeliveredInWindow,
    legacyFrames,
    legacyMultiMessageFrames,
    legacyBadFrames,
  };
}

function closeAll(): void {
  closing = true;
  for (const c of connections) {
    c.socket?.close(1000);
  }
}

self.onmessage = (event: MessageEvent<WorkerCommand>) => {
  const command = event.data;
  switch (command.type) {
    case "connect":
      connectAll(command);
      break;
    case "start":
      startSending(command);
      break;
    case "progress":
      post({ type: "progress", ...progress() });
      break;
    case "report": {
      const report: FinalReport = {
        type: "report",
        ...progress(),
        v1Latency: v1Latency.snapshot(),
        legacyLatency: legacyLatency.snapshot(),
        closes,
        errorEvents,
      };
      post(report);
      break;
    }
    case "close": {
      closeAll();
      // Give the close frames a moment to leave before the thread is terminated.
      setTimeout(() => post({ type: "closed" }), 200);
      break;
    }
  }
};
