/**
 * Durable history, and nothing lost across crashes and reconnects (docs/protocol.md, "Reliability
 * rules"). parley runs as a subprocess; four clients publish with `clientId`s, each keeping a few
 * messages in flight, and record every ack; the server is killed with SIGKILL once a given number
 * of acks has arrived, and restarted on the same history file. Then:
 *
 * - every acked message is in `/history` exactly once, with the acked id, and each client's acked
 *   ids increase in the order the acks came;
 * - after each client reconnects with `since` (the highest id it saw) and resends every unacked
 *   message with the same `clientId`, the history holds every message any client ever attempted
 *   exactly once, with ids 1..N contiguous;
 * - each client, from what it saw before the crash plus its since-replay and live stream after
 *   it, has seen every message of the room exactly once, in id order.
 *
 * Kill points are chosen by observed ack counts, never by time.
 */

import assert from "node:assert/strict";
import {
  type Event,
  historyOf,
  parleyDir,
  ParleyProcess,
  type StoredMessage,
  TestClient,
  within,
} from "./support.ts";

const ROOM = "crash";
const CLIENTS = 4;
/** New messages each client sends after reconnecting, so the live stream is exercised too. */
const AFTER_RESTART = 5;
/** Generous: other test suites share the two CPUs. */
const WAIT_MS = 10_000;

/** One kill: after how many acks (all clients together), with how many messages in flight each. */
interface Round {
  killAfterAcks: number;
  inFlight: number;
}

const ROUNDS: Round[] = [
  { killAfterAcks: 25, inFlight: 4 },
  { killAfterAcks: 200, inFlight: 16 },
  { killAfterAcks: 500, inFlight: 8 },
  { killAfterAcks: 1000, inFlight: 2 },
  { killAfterAcks: 2000, inFlight: 12 },
].slice(0, Deno.env.get("CI") === "true" ? 3 : undefined);

const bodyOf = (clientId: string): string => `crash test message ${clientId}`;
const clientIdOf = (body: string): string => body.replace(/^crash test message /, "");

/**
 * One client: sends `{type:"message", clientId}` frames, keeping `inFlight` unacked, and records
 * every ack and every message id it is shown. Each ack is answered with the next message while
 * sending is on.
 */
class Publisher {
  /** Every clientId this client has sent, in send order. */
  readonly attempted: string[] = [];
  /** Acks received before the crash, in arrival order. */
  readonly acks: { clientId: string; id: number }[] = [];
  /** clientId -> acked id, from before the crash. */
  readonly acked = new Map<string, number>();
  /** Ids of the message events received before the crash, in arrival order. */
  readonly seen: number[] = [];
  /** Anything unexpected: error events, acks for unknown or already acked clientIds. */
  readonly problems: string[] = [];
  readonly client: TestClient;
  #cursor = 0;
  #sending = false;

  constructor(readonly userName: string, url: string, private readonly onAck: () => void) {
    this.client = new TestClient(url);
    // Registered after TestClient's own listener, so `client.events` already holds the frame.
    this.client.socket.addEventListener("message", () => this.#drain());
  }

  /** Starts publishing with `inFlight` messages unacked at a time. */
  start(inFlight: number): void {
    this.#sending = true;
    for (let i = 0; i < inFlight; i++) this.sendNew();
  }

  /** Sends nothing more (acks still in transit are recorded). */
  stop(): void {
    this.#sending = false;
  }

  /** Sent before the crash and never acked: the server may or may not have stored them. */
  get unacked(): string[] {
    return this.attempted.filter((clientId) => !this.acked.has(clientId));
  }

  /** The highest message id this client saw, 0 if none. */
  get lastSeen(): number {
    return this.seen.length === 0 ? 0 : Math.max(...this.seen);
  }

  /** Sends a brand-new message (a fresh clientId). */
  sendNew(client: TestClient = this.client): string {
    const clientId = `${this.userName}-${this.attempted.length + 1}`;
    this.attempted.push(clientId);
    client.send({ type: "message", body: bodyOf(clientId), clientId });
    return clientId;
  }

  #drain(): void {
    const events = this.client.events;
    while (this.#cursor < events.length) {
      const event: Event = events[this.#cursor++];
      if (event.type === "message") {
        this.seen.push(event.id);
      } else if (event.type === "ack") {
        if (!this.attempted.includes(event.clientId)) {
          this.problems.push(`ack for a clientId never sent: ${JSON.stringify(event)}`);
        } else if (this.acked.has(event.clientId)) {
          this.problems.push(`second ack on one connection: ${JSON.stringify(event)}`);
        } else {
          this.acked.set(event.clientId, event.id);
          this.acks.push({ clientId: event.clientId, id: event.id });
          this.onAck();
          if (this.#sending) this.sendNew();
        }
      } else if (event.type === "error") {
        this.problems.push(`error event: ${JSON.stringify(event)}`);
      }
    }
  }
}

/** Asserts `ids` is exactly `from..to`, in order. */
function assertRange(ids: number[], from: number, to: number, what: string): void {
  const expected = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
    const missing = expected.filter((id) => !ids.includes(id));
    const extra = ids.filter((id, i) => id < from || id > to || ids.indexOf(id) !== i);
    assert.fail(
      `${what}: expected ids ${from}..${to} once each in order; got ${ids.length} ids, ` +
        `missing ${JSON.stringify(missing.slice(0, 20))}, ` +
        `extra or repeated ${JSON.stringify(extra.slice(0, 20))}`,
    );
  }
}

/** Maps each stored message's clientId to its id, failing on a clientId stored twice. */
function idsByClientId(history: StoredMessage[], what: string): Map<string, number> {
  const byClientId = new Map<string, number>();
  for (const message of history) {
    const clientId = clientIdOf(message.body);
    assert.ok(
      clientId.startsWith(`${message.userName}-`),
      `${what}: message ${message.id} (${message.body}) stored under ${message.userName}`,
    );
    const earlier = byClientId.get(clientId);
    assert.equal(
      earlier,
      undefined,
      `${what}: ${clientId} stored twice, as ids ${earlier} and ${message.id}`,
    );
    byClientId.set(clientId, message.id);
  }
  return byClientId;
}

/** Runs one round; returns how many messages were sent and never acked when the kill landed. */
async function crashRound({ killAfterAcks, inFlight }: Round): Promise<number> {
  await using dir = await parleyDir({
    history: { path: "history.db", maxMessagesPerRoom: 1_000_000 },
    limits: { messagesPerSecond: 100_000, burst: 100_000, idleTimeoutSeconds: 0 },
  }, "parley-crash-");
  const servers: ParleyProcess[] = [];
  const clients: TestClient[] = [];
  const start = async () => {
    const server = await ParleyProcess.start(dir.path, { args: ["--port", "0"], ms: WAIT_MS });
    servers.push(server);
    return server;
  };
  const wsUrl = (server: ParleyProcess, query: Record<string, string>) =>
    server.wsUrl({ room: ROOM, ...query });
  try {
    // Publish until `killAfterAcks` acks have arrived, then SIGKILL at once, mid-stream.
    const first = await start();
    let totalAcks = 0;
    let killed = false;
    let signalKilled: () => void = () => {};
    const killedAt = new Promise<void>((resolve) => signalKilled = resolve);
    const publishers: Publisher[] = [];
    const onAck = (): void => {
      totalAcks++;
      if (killed || totalAcks < killAfterAcks) return;
      killed = true;
      for (const publisher of publishers) publisher.stop();
      first.crash().then(signalKilled);
    };
    for (let i = 0; i < CLIENTS; i++) {
      const publisher = new Publisher(`user${i}`, wsUrl(first, { userName: `user${i}` }), onAck);
      publishers.push(publisher);
      clients.push(publisher.client);
    }
    for (const { client } of publishers) {
      const welcome = await client.next("welcome", WAIT_MS);
      assert.equal(welcome.lastId, 0, "a fresh room");
    }
    for (const publisher of publishers) publisher.start(inFlight);
    await within(killedAt, `${killAfterAcks} acks and the kill`, WAIT_MS);
    assert.equal((await first.exited).signal, "SIGKILL", first.output());
    for (const { client } of publishers) await within(client.closed, "the socket to close");

    for (const publisher of publishers) {
      assert.deepEqual(publisher.problems, [], publisher.userName);
      const ids = publisher.acks.map((ack) => ack.id);
      for (let i = 1; i < ids.length; i++) {
        assert.ok(ids[i] > ids[i - 1], `${publisher.userName}: acked ids in ack order ${ids}`);
      }
      // Live delivery before the crash had no gap and no duplicate.
      assertRange(publisher.seen, 1, publisher.lastSeen, `${publisher.userName} before the crash`);
    }
    // Sent and never acked by the time the sockets closed: what the kill cut off mid-stream.
    const cutOff = publishers.reduce((n, p) => n + p.unacked.length, 0);

    // Restart on the same file: every acked message is there once, with its id.
    const second = await start();
    const recovered = await historyOf(second, ROOM, WAIT_MS);
    const stored = idsByClientId(recovered, "after the restart");
    assertRange(recovered.map((m) => m.id), 1, recovered.length, "history after the restart");
    for (const publisher of publishers) {
      for (const { clientId, id } of publisher.acks) {
        assert.equal(stored.get(clientId), id, `acked ${clientId} as ${id}`);
      }
      for (const clientId of stored.keys()) {
        if (clientId.startsWith(`${publisher.userName}-`)) {
          assert.ok(publisher.attempted.includes(clientId), `${clientId} was never sent`);
        }
      }
    }
    const lastId = recovered.length;

    // Reconnect with since, resend every unacked message (and one acked one), send a few new.
    const resumed = publishers.map((publisher) => {
      const client = new TestClient(
        wsUrl(second, { userName: publisher.userName, since: String(publisher.lastSeen) }),
      );
      clients.push(client);
      return { publisher, client, since: publisher.lastSeen };
    });
    for (const { client } of resumed) {
      const welcome = await client.next("welcome", WAIT_MS);
      assert.equal(welcome.lastId, lastId);
      assert.notEqual(welcome.recovered, false);
    }
    const expectedAcks = new Map<TestClient, string[]>();
    for (const { publisher, client } of resumed) {
      const resend = publisher.unacked;
      const lastAcked = publisher.acks.at(-1)?.clientId;
      if (lastAcked !== undefined) resend.push(lastAcked);
      for (const clientId of resend) {
        client.send({ type: "message", body: bodyOf(clientId), clientId });
      }
      for (let i = 0; i < AFTER_RESTART; i++) resend.push(publisher.sendNew(client));
      expectedAcks.set(client, resend);
    }
    const total = publishers.reduce((n, p) => n + p.attempted.length, 0);

    for (const { publisher, client, since } of resumed) {
      const sent = expectedAcks.get(client) ?? [];
      const acks = await client.waitFor("ack", sent.length, WAIT_MS);
      assert.deepEqual(
        acks.map((ack) => ack.clientId).sort(),
        [...sent].sort(),
        `${publisher.userName}: one ack per resent or new message`,
      );
      for (const ack of acks) {
        const original = publisher.acked.get(ack.clientId) ?? stored.get(ack.clientId);
        if (original !== undefined) {
          assert.equal(ack.id, original, `a resent ${ack.clientId} is acked with its original id`);
        } else {
          assert.ok(ack.id > lastId, `${ack.clientId} stored only now, as ${ack.id}`);
        }
      }
      const errors = client.events.filter((event) => event.type === "error");
      assert.deepEqual(errors, [], publisher.userName);

      // Since-replay plus live stream: everything after `since`, once, in order.
      const messages = await client.waitFor("message", total - since, WAIT_MS).catch((error) => {
        const got = client.events.filter((e) => e.type === "message").map((e) => e.id);
        throw new Error(
          `${publisher.userName} (since ${since}, total ${total}) got ${JSON.stringify(got)}`,
          { cause: error },
        );
      });
      const ids = [...publisher.seen, ...messages.map((m) => m.id)];
      assertRange(ids, 1, total, `${publisher.userName}: before the crash plus after reconnecting`);
    }

    // The final history: every message ever attempted, exactly once, ids 1..total.
    const final = await historyOf(second, ROOM, WAIT_MS);
    assertRange(final.map((m) => m.id), 1, total, "the final history");
    const finalIds = idsByClientId(final, "the final history");
    for (const publisher of publishers) {
      for (const clientId of publisher.attempted) {
        assert.ok(finalIds.has(clientId), `${clientId} is in the final history`);
      }
      for (const [clientId, id] of publisher.acked) {
        assert.equal(finalIds.get(clientId), id, `${clientId} kept its acked id`);
      }
    }
    for (const { client } of resumed) {
      const acks = client.events.filter((event) => event.type === "ack");
      for (const ack of acks) assert.equal(finalIds.get(ack.clientId), ack.id);
    }
    return cutOff;
  } finally {
    for (const client of clients) await client.close().catch(() => {});
    for (const server of servers) await server.stop();
  }
}

Deno.test("a SIGKILL loses no acked message, and resending after a restart makes no duplicate", async (t) => {
  let cutOff = 0;
  for (const round of ROUNDS) {
    await t.step(
      `killed after ${round.killAfterAcks} acks, ${round.inFlight} in flight per client`,
      async () => {
        cutOff += await crashRound(round);
      },
    );
  }
  // Each round usually leaves some unacked; if none ever did, the kills all landed between
  // messages and the resend of unacked messages was never exercised.
  assert.ok(cutOff > 0, "no kill left a message unacked: every kill landed between messages");
});

/** One change command of the mixed stream, by its clientId. */
interface Command {
  clientId: string;
  frame: Record<string, unknown>;
}

/**
 * The changes a client makes to its own messages `ids`: an edit and a reaction of each, and a
 * delete of every third after them.
 */
function changesOf(userName: string, ids: number[]): Command[] {
  const commands: Command[] = [];
  const add = (clientId: string, frame: Record<string, unknown>) =>
    commands.push({ clientId, frame: { ...frame, clientId } });
  for (const id of ids) {
    add(`${userName}-e${id}`, { type: "edit", messageId: id, body: `edited ${id}` });
    add(`${userName}-r${id}`, { type: "react", messageId: id, emoji: "👍", on: true });
    if (id % 3 === 0) add(`${userName}-d${id}`, { type: "delete", messageId: id });
  }
  return commands;
}

/** Sends `commands` keeping `inFlight` unacked; records acks by clientId; stops on demand. */
function drive(client: TestClient, commands: Command[], inFlight: number, onAck: () => void) {
  const acked = new Map<string, number>();
  const problems: string[] = [];
  let sent = 0;
  let sending = true;
  // What came before (the acks of the client's messages) is not this stream's.
  let cursor = client.events.length;
  const send = () => {
    if (sending && sent < commands.length) client.send(commands[sent++].frame);
  };
  client.socket.addEventListener("message", () => {
    while (cursor < client.events.length) {
      const event = client.events[cursor++];
      if (event.type === "ack") {
        acked.set(event.clientId, event.id);
        onAck();
        send();
      } else if (event.type === "error") problems.push(JSON.stringify(event));
    }
  });
  for (let i = 0; i < inFlight; i++) send();
  return {
    acked,
    problems,
    stop: () => sending = false,
  };
}

/** The change events of a whole replay, by clientId; fails on a clientId applied twice. */
async function changesStored(server: ParleyProcess, lastId: number): Promise<Map<string, number>> {
  const reader = new TestClient(server.wsUrl({ room: ROOM, userName: "reader", since: "0" }));
  try {
    const welcome = await reader.next("welcome", WAIT_MS);
    assert.notEqual(welcome.recovered, false);
    const byClientId = new Map<string, number>();
    if (welcome.lastId === 0) return byClientId;
    for (;;) {
      const event = await reader.next(undefined, WAIT_MS);
      if (["edit", "delete", "reaction"].includes(event.type)) {
        assert.equal(byClientId.get(event.clientId), undefined, `${event.clientId} twice`);
        byClientId.set(event.clientId, event.id);
      }
      if (event.id === Math.max(lastId, welcome.lastId)) return byClientId;
    }
  } finally {
    await reader.close();
  }
}

Deno.test("a SIGKILL mid-stream of edits, reactions and deletes: every acked one is applied exactly once", async () => {
  const writers = ["ann", "bob", "cat"];
  const perWriter = 30;
  await using dir = await parleyDir({
    history: { path: "history.db", maxReplay: 100_000 },
    limits: { messagesPerSecond: 100_000, burst: 100_000, idleTimeoutSeconds: 0 },
  }, "parley-crash-changes-");
  const first = await ParleyProcess.start(dir.path, { args: ["--port", "0"], ms: WAIT_MS });
  let second: ParleyProcess | null = null;
  const clients: TestClient[] = [];
  try {
    const connect = (server: ParleyProcess, userName: string, since?: number) => {
      const query: Record<string, string> = { room: ROOM, userName };
      if (since !== undefined) query.since = String(since);
      const client = new TestClient(server.wsUrl(query));
      clients.push(client);
      return client;
    };
    // Each writer's messages, acked before any change is sent.
    const owned = new Map<string, number[]>();
    for (const userName of writers) {
      const client = connect(first, userName);
      await client.next("welcome", WAIT_MS);
      for (let i = 0; i < perWriter; i++) {
        client.send({ type: "message", body: `${userName} ${i}`, clientId: `${userName}-m${i}` });
      }
      owned.set(userName, (await client.waitFor("ack", perWriter, WAIT_MS)).map((a) => a.id));
    }
    const commands = new Map(writers.map((w) => [w, changesOf(w, owned.get(w)!)]));
    let acks = 0;
    let killed = false;
    const { promise: killedAt, resolve } = Promise.withResolvers<void>();
    const drivers = writers.map((userName, i) =>
      drive(clients[i], commands.get(userName)!, 4, () => {
        if (killed || ++acks < 60) return;
        killed = true;
        for (const driver of drivers) driver.stop();
        first.crash().then(() => resolve());
      })
    );
    await within(killedAt, "60 acks of changes and the kill", WAIT_MS);
    for (const driver of drivers) assert.deepEqual(driver.problems, []);

    // After the restart every acked change is in the log once, with its acked id.
    second = await ParleyProcess.start(dir.path, { args: ["--port", "0"], ms: WAIT_MS });
    const stored = await changesStored(second, 0);
    for (const driver of drivers) {
      for (const [clientId, id] of driver.acked) assert.equal(stored.get(clientId), id, clientId);
    }
    // Each writer resends every command (acked or not): the acked ones keep their ids.
    const resent = writers.map((userName) => connect(second!, userName, 0));
    const total = [...commands.values()].reduce((n, c) => n + c.length, 0);
    for (const [i, userName] of writers.entries()) {
      await resent[i].next("welcome", WAIT_MS);
      for (const { frame } of commands.get(userName)!) resent[i].send(frame);
    }
    let lastId = 0;
    for (const [i, userName] of writers.entries()) {
      const answers = await resent[i].waitFor("ack", commands.get(userName)!.length, WAIT_MS);
      assert.deepEqual(resent[i].events.filter((e) => e.type === "error"), []);
      for (const ack of answers) {
        const before = drivers[i].acked.get(ack.clientId) ?? stored.get(ack.clientId);
        if (before !== undefined) assert.equal(ack.id, before, `resent ${ack.clientId}`);
        lastId = Math.max(lastId, ack.id);
      }
    }
    const final = await changesStored(second, lastId);
    assert.equal(final.size, total, "every change applied once");
    // The messages' state: edited, reacted to, every third deleted.
    const history = await historyOf(second, ROOM, WAIT_MS);
    assert.equal(history.length, writers.length * (perWriter - perWriter / 3));
    for (const message of history) {
      const { body, reactions } = message as StoredMessage & { reactions?: unknown };
      assert.equal(body, `edited ${message.id}`);
      assert.deepEqual(reactions, { "👍": [message.userName] });
    }
  } finally {
    for (const client of clients) await client.close().catch(() => {});
    await first.stop();
    await second?.stop();
  }
});
