/**
 * Redis killed with SIGKILL and restarted on the same port 1.5 s later, several times, while
 * clients of two instances publish with clientIds and resend whatever is refused as
 * `unavailable`. Kill points are chosen by observed ack counts; the 1.5 s is the fault itself.
 *
 * - Every instance reconnects by itself every time; `/healthz` says degraded while Redis is away.
 * - With Redis persisting every write, every acked message is in both instances' `/history`
 *   exactly once, with the acked id.
 * - With a Redis that comes back empty, no id ever names two different messages, on either
 *   instance or in an ack, and both instances agree on every message after the last restart.
 * - An instance shuts down within seconds while Redis is away.
 */

import assert from "node:assert/strict";
import { type RedisServer, sayIfSkipped, skipRedis, startRedis } from "./redis_server.ts";
import {
  type Event,
  healthSays,
  historyOf,
  startTestServer,
  type StoredMessage,
  TestClient,
  type TestServer,
  Wakeup,
  within,
} from "./support.ts";

sayIfSkipped("redis_restart_test");

const ROOM = "restarts";
/** A client's pause before it resends a refused message: its backoff. */
const RESEND_MS = 100;
/** How long Redis stays away each time. */
const DOWN_MS = 1500;
/** Acks to see between two kills. */
const ACKS_BETWEEN = 40;
/** Generous: other test files share the two CPUs. */
const WAIT_MS = 15_000;

/**
 * A client of one instance that publishes with fresh clientIds, `inFlight` unanswered at a time,
 * and resends a message with the same clientId whenever it is refused as unavailable.
 */
class Resender {
  /** clientId -> the id it was acked with. */
  readonly acked = new Map<string, number>();
  /** Anything unexpected: other errors, a clientId acked twice with different ids. */
  readonly problems: string[] = [];
  readonly client: TestClient;
  readonly #unanswered = new Set<string>();
  readonly #changed = new Wakeup();
  #sent = 0;
  #sending = false;
  #cursor = 0;

  constructor(
    readonly userName: string,
    readonly server: TestServer,
    private readonly onAck: () => void,
  ) {
    this.client = new TestClient(server.wsUrl({ room: ROOM, userName }));
    this.client.socket.addEventListener("message", () => this.#drain());
  }

  start(inFlight: number): void {
    this.#sending = true;
    for (let i = 0; i < inFlight; i++) this.#sendNew();
  }

  stop(): void {
    this.#sending = false;
  }

  /** Resolves once every message sent has been acked. */
  settled(): Promise<void> {
    return this.#changed.until(
      () => this.#unanswered.size === 0,
      `${this.userName}'s last acks`,
      WAIT_MS,
    );
  }

  bodyOf(clientId: string): string {
    return `message ${clientId}`;
  }

  #sendNew(): void {
    const clientId = `${this.userName}-${++this.#sent}`;
    this.#unanswered.add(clientId);
    this.#send(clientId);
  }

  #send(clientId: string): void {
    if (this.client.socket.readyState !== WebSocket.OPEN) return;
    this.client.send({ type: "message", body: this.bodyOf(clientId), clientId });
  }

  #drain(): void {
    const events = this.client.events;
    while (this.#cursor < events.length) this.#handle(events[this.#cursor++]);
    this.#changed.wake();
  }

  #handle(event: Event): void {
    if (event.type === "ack") {
      const earlier = this.acked.get(event.clientId);
      if (earlier !== undefined && earlier !== event.id) {
        this.problems.push(`${event.clientId} acked as ${earlier}, then as ${event.id}`);
      }
      this.acked.set(event.clientId, event.id);
      this.#unanswered.delete(event.clientId);
      this.onAck();
      if (this.#sending) this.#sendNew();
    } else if (event.type === "error" && event.code === "unavailable") {
      // The client's backoff before it resends, as a real client's: not a wait for an event.
      setTimeout(() => this.#send(event.clientId), RESEND_MS);
    } else if (event.type === "error") {
      this.problems.push(`error event: ${JSON.stringify(event)}`);
    }
  }
}

/** The room's history on `server`, once `done` holds for it (re-read until then). */
async function historyWhen(
  server: TestServer,
  done: (history: StoredMessage[]) => boolean,
  what: string,
): Promise<StoredMessage[]> {
  let history: StoredMessage[] = [];
  try {
    await within(
      (async () => {
        for (;;) {
          history = await historyOf(server, ROOM);
          if (done(history)) return;
          // Polling pace: an instance catches up from the streams in the background.
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })(),
      what,
      WAIT_MS,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; it has ${history.length} messages`);
  }
  return history;
}

/** Each message's id by its body, failing on a body stored twice. */
function idsByBody(history: StoredMessage[], what: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const message of history) {
    const earlier = ids.get(message.body);
    assert.equal(
      earlier,
      undefined,
      `${what}: "${message.body}" stored as ${earlier} and ${message.id}`,
    );
    ids.set(message.body, message.id);
  }
  return ids;
}

interface Run {
  redis: RedisServer;
  servers: TestServer[];
  publishers: Resender[];
  /** The highest id either instance had while Redis was away the last time. */
  lastCut: number;
}

/**
 * Two instances, two publishers on each; Redis killed and restarted `restarts` times under
 * their traffic; then the publishers stop and every message is acked. Returns what is running.
 */
async function restartUnderTraffic(dir: string, persist: boolean, restarts: number): Promise<Run> {
  let redis = await startRedis(dir, { persist });
  const limits = { messagesPerSecond: 1000, burst: 1000 };
  const servers = [
    await startTestServer({ redis: redis.url, limits }),
    await startTestServer({ redis: redis.url, limits }),
  ];
  let acks = 0;
  const acked = new Wakeup();
  const onAck = () => {
    acks++;
    acked.wake();
  };
  const publishers = servers.flatMap((server, i) => [
    new Resender(`user${i}a`, server, onAck),
    new Resender(`user${i}b`, server, onAck),
  ]);
  for (const { client } of publishers) await client.next("welcome", WAIT_MS);
  for (const publisher of publishers) publisher.start(2);
  let lastCut = 0;
  for (let i = 1; i <= restarts; i++) {
    const before = acks;
    await acked.until(() => acks >= before + ACKS_BETWEEN, `traffic before kill ${i}`, WAIT_MS);
    await redis.stop();
    for (const server of servers) await healthSays(server, "degraded", `after kill ${i}`, WAIT_MS);
    // Nothing can be stored while Redis is away: no id above this was taken before the kill
    // by anyone an instance heard.
    const lastIds = await Promise.all(servers.map((s) => historyOf(s, ROOM)));
    lastCut = Math.max(...lastIds.map((history) => history.at(-1)?.id ?? 0));
    // The fault: Redis stays away this long.
    await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
    redis = await startRedis(dir, { persist, port: redis.port });
    for (const server of servers) await healthSays(server, "ok", `after restart ${i}`, WAIT_MS);
  }
  const before = acks;
  await acked.until(() => acks >= before + ACKS_BETWEEN, "traffic after the restarts", WAIT_MS);
  for (const publisher of publishers) publisher.stop();
  for (const publisher of publishers) await publisher.settled();
  for (const publisher of publishers) assert.deepEqual(publisher.problems, [], publisher.userName);
  return { redis, servers, publishers, lastCut };
}

/** Shuts down both instances while Redis is away: each within a few seconds. */
async function shutDownWithoutRedis(run: Run): Promise<void> {
  await run.redis.stop();
  for (const server of run.servers) {
    await healthSays(server, "degraded", "before the shutdown", WAIT_MS);
  }
  for (const server of run.servers) {
    await within(server.close(), "an instance to shut down while Redis is away", 5000);
  }
  for (const { client } of run.publishers) await client.close();
}

async function withRun(
  persist: boolean,
  restarts: number,
  check: (run: Run) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-redis-restart-" });
  let run: Run | undefined;
  try {
    run = await restartUnderTraffic(dir, persist, restarts);
    await check(run);
    await shutDownWithoutRedis(run);
  } finally {
    for (const { client } of run?.publishers ?? []) await client.close().catch(() => {});
    for (const server of run?.servers ?? []) await server.close().catch(() => {});
    await run?.redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "with Redis persisting every write, restarts lose no acked message and duplicate none",
  ignore: skipRedis,
  fn: () =>
    withRun(true, 4, async ({ servers, publishers }) => {
      const acked = new Map<string, number>();
      for (const publisher of publishers) {
        for (const [clientId, id] of publisher.acked) acked.set(publisher.bodyOf(clientId), id);
      }
      const histories = [];
      for (const [i, server] of servers.entries()) {
        const history = await historyWhen(
          server,
          (messages) => messages.length >= acked.size,
          `instance ${i} to have all ${acked.size} acked messages`,
        );
        const stored = idsByBody(history, `instance ${i}`);
        for (const [body, id] of acked) {
          assert.equal(stored.get(body), id, `instance ${i}: "${body}" acked as ${id}`);
        }
        // Every message was resent until acked, so nothing else is stored, and no id is skipped.
        assert.equal(history.length, acked.size, `instance ${i}: only acked messages`);
        assert.deepEqual(history.map((m) => m.id), history.map((_, n) => n + 1));
        histories.push(history.map(({ id, userName, body }) => ({ id, userName, body })));
      }
      assert.deepEqual(histories[0], histories[1]);
    }),
});

Deno.test({
  name: "with a Redis that comes back empty, ids are never reused, and the instances agree after",
  ignore: skipRedis,
  fn: () =>
    withRun(false, 3, async ({ servers, publishers, lastCut }) => {
      const histories: StoredMessage[][] = [];
      for (const [i, server] of servers.entries()) {
        // Every ack after the last restart is in both instances.
        const wanted = publishers.flatMap((p) => [...p.acked.values()]).filter((id) =>
          id > lastCut
        );
        histories.push(
          await historyWhen(
            server,
            (messages) => wanted.every((id) => messages.some((m) => m.id === id)),
            `instance ${i} to have every message acked after the last restart`,
          ),
        );
      }
      // No id names two different messages, in either instance or in any ack.
      const byId = new Map<number, string>();
      const name = (id: number, body: string, where: string) => {
        const earlier = byId.get(id);
        assert.ok(
          earlier === undefined || earlier === body,
          `${where}: id ${id} is "${body}" and "${earlier}"`,
        );
        byId.set(id, body);
      };
      for (const [i, history] of histories.entries()) {
        for (const { id, body } of history) name(id, body, `instance ${i}`);
      }
      for (const publisher of publishers) {
        const index = servers.indexOf(publisher.server);
        const own = new Map(histories[index].map((m) => [m.id, m.body]));
        for (const [clientId, id] of publisher.acked) {
          const body = publisher.bodyOf(clientId);
          name(id, body, `${publisher.userName}'s ack`);
          // An ack means the acking instance has recorded the message.
          assert.equal(own.get(id), body, `instance ${index} has "${body}", acked as ${id}`);
        }
      }
      const after = histories.map((history) =>
        history.filter((m) => m.id > lastCut).map(({ id, userName, body }) => ({
          id,
          userName,
          body,
        }))
      );
      assert.ok(after[0].length >= ACKS_BETWEEN, "traffic after the last restart");
      assert.deepEqual(after[0], after[1]);
    }),
});
