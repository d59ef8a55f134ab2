/**
 * Hostile input against one running server, through its public HTTP and WebSocket interface only:
 * over 100 000 generated frames, upgrades and requests from a fixed seed, so a failure recurs on
 * every run. The server must answer each one (an error event, an ack, a close code, a 2xx for a
 * valid request, a 4xx for the rest), never answer 500, never log a stack, and stay healthy.
 */

import assert from "node:assert/strict";
import { maxFrameBytes } from "../chat/message.ts";
import {
  brokenWsFrames,
  ByteReader,
  chatQuery,
  concat,
  CountingSocket,
  encodeRequest,
  type FuzzFrame,
  fuzzFrame,
  garbageRequest,
  type HttpInput,
  httpRequest,
  oversizeFrame,
  Random,
  readResponse,
  readWsAnswer,
  upgradeRequest,
} from "./fuzz.ts";
import { startTestServer, type TestServer, within } from "./support.ts";

const SEED = 20261127;
/** How many of each input; together over 100 000. */
const PLAN = {
  wsWorkers: 6,
  framesPerWsWorker: 14_000,
  httpWorkers: 3,
  requestsPerHttpWorker: 6_000,
  upgrades: 1_200,
  oversizeFrames: 100,
  garbageRequests: 500,
  brokenWsStreams: 400,
};
const FRAMES_PER_BATCH = 200;
const BATCHES_PER_SESSION = 5;
const REQUESTS_PER_PIPELINE = 50;
/** Inputs between two health probes. */
const PROBE_EVERY = 5_000;
const ANSWER_MS = 15_000;

/** The counts, failures and health probes of one run. */
class FuzzRun {
  readonly counts = new Map<string, number>();
  readonly failures: string[] = [];
  /** What each worker is waiting on an answer to, for a report of an uncaught exception. */
  readonly inFlight = new Map<string, string[]>();
  #total = 0;
  #sinceProbe = 0;
  #probes = 0;

  constructor(readonly server: TestServer) {}

  get total(): number {
    return this.#total;
  }

  /** Counts `n` inputs of `kind`; a health probe is due every {@link PROBE_EVERY}. */
  async count(kind: string, n = 1): Promise<void> {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
    this.#total += n;
    this.#sinceProbe += n;
    if (this.#sinceProbe < PROBE_EVERY) return;
    this.#sinceProbe = 0;
    await this.probe();
  }

  async probe(): Promise<void> {
    this.#probes++;
    try {
      const response = await within(fetch(new URL("/healthz", this.server.url)), "/healthz");
      const body = await response.json();
      if (response.status !== 200 || body.status !== "ok") {
        this.fail(
          `health probe after ${this.#total} inputs: ${response.status} ${JSON.stringify(body)}`,
        );
      }
    } catch (error) {
      this.fail(`health probe after ${this.#total} inputs: ${(error as Error).message}`);
    }
  }

  get probes(): number {
    return this.#probes;
  }

  fail(what: string): void {
    if (this.failures.length < 40) this.failures.push(what.slice(0, 1500));
  }
}

/** An input shown in a failure: the start of its text, or of its bytes in hex. */
function show(data: string | Uint8Array, max = 200): string {
  if (typeof data !== "string") {
    const hex = [...data.subarray(0, max / 2)].map((b) => b.toString(16).padStart(2, "0"));
    return `bytes ${hex.join("")}${data.length > max / 2 ? `… (${data.length})` : ""}`;
  }
  return JSON.stringify(data.slice(0, max)) + (data.length > max ? `… (${data.length})` : "");
}

/** What was in flight when an uncaught exception happened: one of these inputs caused it. */
function inFlight(run: FuzzRun): string {
  return [...run.inFlight].map(([worker, inputs]) => `${worker}:\n  ${inputs.join("\n  ")}`)
    .join("\n").slice(0, 20_000);
}

/** Whether a frame might be answered by nothing: a hello with the name already set is. */
function maySilentlySucceed(frame: FuzzFrame): boolean {
  if (typeof frame.data !== "string") return false;
  try {
    const value = JSON.parse(frame.data);
    return typeof value === "object" && value !== null && value.type === "hello";
  } catch {
    return false;
  }
}

const ERROR_CODES = new Set(["bad_frame", "too_large", "rate_limited", "bad_name", "bad_room"]);

interface Session {
  socket: CountingSocket;
  name: string;
  legacy: boolean;
  named: boolean;
  id: string;
}

/**
 * Sends a batch, then a sentinel the server answers only after everything before it (an acked
 * message, or for the legacy dialect a message it echoes), and checks each frame was answered.
 * False if the session cannot go on.
 */
async function sendBatch(
  run: FuzzRun,
  session: Session,
  batch: FuzzFrame[],
  n: number,
): Promise<boolean> {
  const { socket } = session;
  const before = { ...socket.counts };
  const where = () =>
    `session ${session.id} batch ${n}:\n${
      batch.map((f) => `  ${f.kind} ${show(f.data)}`).join("\n")
    }`;
  run.inFlight.set(`session ${session.id}`, batch.map((f) => `${f.kind} ${show(f.data, 100)}`));
  for (const frame of batch) socket.send(frame.data);
  try {
    await sendSentinel(session, `sentinel-${session.id}-${n}`);
  } catch (error) {
    run.fail(`${(error as Error).message}, ${where()}`);
    return false;
  }
  run.inFlight.delete(`session ${session.id}`);
  for (const frame of batch) await run.count(`ws ${frame.kind}`);
  if (socket.closeCode !== null) {
    run.fail(`closed with ${socket.closeCode} mid-batch, ${where()}`);
    return false;
  }
  if (session.legacy) return true;
  const errors = socket.counts.error - before.error;
  const acks = socket.counts.ack - before.ack - 1;
  const mayBeSilent = batch.filter(maySilentlySucceed).length;
  const extra = session.named ? 0 : 1;
  if (errors + acks < batch.length - mayBeSilent || errors + acks > batch.length + extra) {
    run.fail(`${errors} errors and ${acks} acks for ${batch.length} frames, ${where()}`);
  }
  if (session.named && acks < batch.filter((f) => f.valid).length) {
    run.fail(`${acks} acks for ${batch.filter((f) => f.valid).length} valid messages, ${where()}`);
  }
  session.named = true;
  return true;
}

/** Sends what the server answers after all before it, and waits for that answer. */
async function sendSentinel({ socket, legacy, named, name }: Session, sentinel: string) {
  if (legacy) {
    socket.send(JSON.stringify({ userName: name, body: sentinel }));
    let seen = "";
    await socket.until(() => (seen += socket.takeText()).includes(sentinel), sentinel, ANSWER_MS);
    return;
  }
  if (!named) socket.send(JSON.stringify({ type: "hello", userName: name }));
  socket.send(JSON.stringify({ type: "message", body: sentinel, clientId: sentinel }));
  await socket.until(() => socket.acked.has(sentinel), `the ack of ${sentinel}`, ANSWER_MS);
}

/** Sessions of a few batches each, named or not, most `parley.v1`, some legacy. */
async function wsWorker(run: FuzzRun, worker: number): Promise<void> {
  const rng = new Random(SEED + worker);
  const limit = run.server.config.limits.maxMessageBytes;
  const frameLimit = maxFrameBytes(limit);
  let sent = 0;
  for (let s = 0; sent < PLAN.framesPerWsWorker; s++) {
    const legacy = rng.chance(0.05);
    const named = legacy || rng.chance(0.85);
    const name = `fz${worker}-${s}`;
    const query: Record<string, string> = { room: `fuzz${worker}` };
    if (named) query.userName = name;
    const socket = new CountingSocket(run.server.wsUrl(query), legacy ? null : "parley.v1");
    if (!await socket.opened) return run.fail(`session ${worker}-${s} did not open`);
    if (named && !legacy) await socket.until(() => socket.counts.welcome > 0, "welcome", ANSWER_MS);
    const session = { socket, name, legacy, named, id: `${worker}-${s}` };
    for (let b = 0; b < BATCHES_PER_SESSION && sent < PLAN.framesPerWsWorker; b++) {
      const batch = Array.from(
        { length: FRAMES_PER_BATCH },
        () => fuzzFrame(rng, name, limit, frameLimit),
      );
      sent += batch.length;
      if (!await sendBatch(run, session, batch, b)) break;
    }
    for (const [code] of socket.errorCodes) {
      if (!ERROR_CODES.has(code)) run.fail(`session ${session.id}: error code ${code}`);
    }
    for (const oddity of socket.oddities.slice(0, 3)) run.fail(`session ${session.id}: ${oddity}`);
    await socket.close();
  }
}

/** Frames over the size the server reads at all: each closes its connection with 1009. */
async function oversizeWorker(run: FuzzRun): Promise<void> {
  const rng = new Random(SEED + 100);
  const limit = maxFrameBytes(run.server.config.limits.maxMessageBytes);
  for (let i = 0; i < PLAN.oversizeFrames; i++) {
    const socket = new CountingSocket(
      run.server.wsUrl({ room: "fuzz-big", userName: "big" }),
      "parley.v1",
    );
    await socket.opened;
    await socket.until(() => socket.counts.welcome > 0, "welcome", ANSWER_MS);
    const frame = oversizeFrame(rng, limit);
    socket.send(frame);
    await socket.until(() => false, "the close of an oversize frame", ANSWER_MS).catch(() => {});
    if (socket.closeCode !== 1009) {
      run.fail(`oversize frame: close code ${socket.closeCode}, ${show(frame)}`);
    }
    await socket.close();
    await run.count("ws oversize frame");
  }
}

/**
 * Upgrades with odd since, room and userName: each opens, then welcomes, or sends one error event
 * and closes with 1008.
 */
async function upgradeWorker(run: FuzzRun, worker: number, count: number): Promise<void> {
  const rng = new Random(SEED + 200 + worker);
  for (let i = 0; i < count; i++) {
    const query = chatQuery(rng);
    const socket = new CountingSocket(`${run.server.wsUrl()}?${query}`, "parley.v1");
    if (!await socket.opened) {
      const status = await rawUpgradeStatus(run.server, query);
      run.fail(`upgrade ?${query} did not open: the handshake answered ${status}`);
      continue;
    }
    socket.send(JSON.stringify({ type: "hello", userName: `fzq${worker}` }));
    const answered = await socket.until(
      () => socket.counts.welcome > 0 || socket.counts.error > 0,
      "a welcome or an error",
      ANSWER_MS,
    ).then(() => true, (error) => run.fail(`upgrade ?${query}: ${error.message}`));
    if (answered === undefined) {
      await socket.close();
      continue;
    }
    const refusal = socket.counts.welcome === 0 ? socket.lastError : undefined;
    if (refusal !== undefined) await checkRefusal(run, socket, query);
    await socket.close();
    await run.count(refusal !== undefined ? "upgrade refused" : "upgrade welcomed");
  }
}

/** A refused upgrade closes with 1008 after its one error event. */
async function checkRefusal(run: FuzzRun, socket: CountingSocket, query: string) {
  await socket.until(() => false, "the close of a refused upgrade", ANSWER_MS).catch(() => {});
  if (socket.closeCode !== 1008 || socket.counts.error !== 1) {
    run.fail(`upgrade ?${query}: ${socket.counts.error} errors and close ${socket.closeCode}`);
  }
}

/** The status line of a raw handshake with `query`, to say why a WebSocket did not open. */
async function rawUpgradeStatus(server: TestServer, query: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(upgradeRequest(`127.0.0.1:${server.port}`, query));
    const response = await readResponse(new ByteReader(conn), "GET");
    return response === null ? "nothing" : String(response.status);
  } finally {
    conn.close();
  }
}

/** Checks one HTTP answer: 2xx if valid, never 5xx. */
function checkResponse(run: FuzzRun, input: HttpInput, status: number | null, body: string) {
  const where = () =>
    `${input.kind}: ${show(`${input.method} ${input.target} ${JSON.stringify(input.headers)}`)}`;
  if (status === null) return run.fail(`no answer to ${where()}`);
  if (status >= 500) {
    run.fail(`${status} ${body.slice(0, 200)} for ${where()}`);
  } else if (input.valid && (status < 200 || status > 299)) {
    run.fail(`${status} ${body.slice(0, 200)} for a valid ${where()}`);
  } else if (status === 101 && input.kind === "upgrade headers") {
    // Enough of a handshake for Deno: the connection is a WebSocket now.
  } else if (status < 200 || (status > 299 && status !== 304 && status < 400)) {
    run.fail(`${status} for ${where()}`);
  }
}

/** Requests pipelined on raw connections; what a closed connection left unanswered is resent. */
async function httpWorker(run: FuzzRun, worker: number): Promise<void> {
  const rng = new Random(SEED + 300 + worker);
  const host = `127.0.0.1:${run.server.port}`;
  for (let sent = 0; sent < PLAN.requestsPerHttpWorker; sent += REQUESTS_PER_PIPELINE) {
    let pending = Array.from({ length: REQUESTS_PER_PIPELINE }, () => {
      const input = httpRequest(rng, host);
      return { input, bytes: encodeRequest(rng, input) };
    });
    run.inFlight.set(
      `http ${worker}`,
      pending.map(({ input }) => `${input.method} ${input.target}`),
    );
    while (pending.length > 0) {
      // A server that hangs up on a bad request with more unread resets the connection, which
      // can lose the answers before it: a request left unanswered is sent again on its own.
      const answered = await pipeline(run, pending) || await pipeline(run, pending.slice(0, 1));
      if (answered === 0) checkResponse(run, pending[0].input, null, "");
      for (const { input } of pending.slice(0, Math.max(answered, 1))) {
        await run.count(`http ${input.kind}`);
      }
      pending = pending.slice(Math.max(answered, 1));
    }
    run.inFlight.delete(`http ${worker}`);
  }
}

/** Sends the requests on one connection and checks the answers; returns how many came. */
async function pipeline(
  run: FuzzRun,
  requests: { input: HttpInput; bytes: Uint8Array }[],
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: run.server.port });
  const writing = writeAll(conn, concat(requests.map((r) => r.bytes)));
  const reader = new ByteReader(conn);
  let answered = 0;
  try {
    for (const { input } of requests) {
      const response = await within(
        readResponse(reader, input.method),
        `an answer to ${input.kind}`,
        ANSWER_MS,
      );
      if (response === null) break;
      checkResponse(run, input, response.status, new TextDecoder().decode(response.body));
      answered++;
      if (response.status === 101) break;
    }
  } catch (error) {
    run.fail(`pipeline: ${(error as Error).message}`);
    answered = requests.length;
  } finally {
    conn.close();
    await writing;
  }
  return answered;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  try {
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  } catch {
    // The server hung up; what it did not read is resent or reported.
  }
}

/** Bytes that are no HTTP request, then the end of what we send: a 4xx or a hang-up answers. */
async function garbageWorker(run: FuzzRun): Promise<void> {
  const rng = new Random(SEED + 400);
  for (let i = 0; i < PLAN.garbageRequests; i++) {
    const bytes = garbageRequest(rng);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: run.server.port });
    try {
      await writeAll(conn, bytes);
      await conn.closeWrite().catch(() => {});
      const response = await within(
        readResponse(new ByteReader(conn), "GET"),
        "an answer to garbage",
        ANSWER_MS,
      );
      if (response !== null && response.status >= 500) {
        run.fail(`${response.status} for garbage ${show(bytes)}`);
      }
      await run.count(response === null ? "garbage: hung up" : `garbage: ${response.status}`);
    } catch (error) {
      run.fail(`garbage ${show(bytes)}: ${(error as Error).message}`);
    } finally {
      conn.close();
    }
  }
}

/**
 * A real handshake, then bytes that break the WebSocket protocol (invalid UTF-8, reserved
 * opcodes and bits, unmasked frames, bad close codes, huge lengths, random bytes). The server
 * must answer with a frame or hang up; if it waits for more bytes, it must hang up once we stop.
 */
async function brokenWsWorker(run: FuzzRun, worker: number, count: number): Promise<void> {
  const rng = new Random(SEED + 500 + worker);
  const host = `127.0.0.1:${run.server.port}`;
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: run.server.port });
    const reader = new ByteReader(conn);
    const bytes = brokenWsFrames(rng);
    try {
      await writeAll(conn, upgradeRequest(host, `room=fuzz-raw-${worker}-${i}&userName=raw`));
      const response = await within(readResponse(reader, "GET"), "the handshake", ANSWER_MS);
      if (response?.status !== 101) throw new Error(`the handshake answered ${response?.status}`);
      // The welcome comes first.
      await within(readWsAnswer(reader), "the welcome", ANSWER_MS);
      await writeAll(conn, bytes);
      const answer = readWsAnswer(reader);
      // A frame header promising more bytes than came is waited on: then we stop sending.
      const first = await within(answer, "an answer", 1000).catch(() => null);
      if (first === null) {
        await conn.closeWrite().catch(() => {});
        await within(answer, "an answer once we stopped sending", ANSWER_MS);
      }
      await run.count(`broken WebSocket stream: ${first ?? "answered once we stopped"}`);
    } catch (error) {
      run.fail(`broken WebSocket stream ${show(bytes)}: ${(error as Error).message}`);
    } finally {
      conn.close();
    }
  }
}

/**
 * Log lines that carry a stack or an internal error, and lines a
 * client forged or bloated: each must be one timestamped line of at most a few KB.
 */
function unexpectedLogLines(log: string): string[] {
  return log.trimEnd().split("\n").filter((line) =>
    /internal error|request failed|(\\n|^)\s+at (\S+ \()?(file|ext|node):/.test(line) ||
    !/^\d{4}-\d\d-\d\dT[\d:.]+Z (info|error) /.test(line) || line.length > 4200 ||
    /[\p{Cc}\p{Cf}\u2028\u2029]/u.test(line)
  );
}

Deno.test({
  name: "100 000 hostile inputs: every one answered, no 500, no stack in the log, always healthy",
  async fn() {
    await using server = await startTestServer({
      limits: {
        messagesPerSecond: 1e6,
        burst: 1e6,
        readsPerSecond: 1e6,
        maxConnectionsPerIp: 10_000,
      },
    });
    const run = new FuzzRun(server);
    const uncaught: string[] = [];
    const onError = (event: ErrorEvent) => {
      event.preventDefault();
      // The first few, each with the inputs that may have caused it.
      if (uncaught.length < 3) {
        uncaught.push(`${event.error?.stack ?? event.message}\nwhile in flight:\n${inFlight(run)}`);
      }
    };
    const onRejection = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      uncaught.push(`unhandled rejection: ${(event.reason as Error)?.stack ?? event.reason}`);
    };
    globalThis.addEventListener("error", onError);
    globalThis.addEventListener("unhandledrejection", onRejection);
    const started = performance.now();
    try {
      await Promise.all([
        ...Array.from({ length: PLAN.wsWorkers }, (_, i) => wsWorker(run, i)),
        ...Array.from({ length: PLAN.httpWorkers }, (_, i) => httpWorker(run, i)),
        ...Array.from({ length: 8 }, (_, i) => upgradeWorker(run, i, PLAN.upgrades / 8)),
        ...Array.from({ length: 8 }, (_, i) => brokenWsWorker(run, i, PLAN.brokenWsStreams / 8)),
        oversizeWorker(run),
        garbageWorker(run),
      ]);
      await run.probe();
    } finally {
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onRejection);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const log = await Deno.readTextFile(`${server.dir}/parley.log`);
    report(run, seconds);
    assert.deepEqual(uncaught, [], "uncaught exceptions");
    assert.deepEqual(run.failures, [], "inputs answered wrongly");
    assert.deepEqual(unexpectedLogLines(log).slice(0, 10).map((line) => line.slice(0, 600)), []);
    assert.ok(run.total >= 100_000, `only ${run.total} inputs`);
  },
});

function report(run: FuzzRun, seconds: string): void {
  const rows = [...run.counts].sort(([a], [b]) => a.localeCompare(b));
  console.log(
    `fuzz: ${run.total} inputs in ${seconds} s, seed ${SEED}, ${run.probes} health probes`,
  );
  for (const [kind, n] of rows) console.log(`  ${String(n).padStart(7)}  ${kind}`);
}
