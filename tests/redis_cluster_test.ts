/**
 * Two instances share rooms through a real three-master Redis Cluster started here on free
 * ports (`redis_cluster.ts`); rooms are chosen so that their keys land on different masters.
 *
 * - Each instance sees the other's messages (and changes to them) in every room, with
 *   consecutive ids, and a room's keys live on the master its hash tag names.
 * - A master killed with SIGKILL and started again with its data: clients of a room on it see
 *   `unavailable` and, resending with the same clientId, are acked once it is back; nothing
 *   acked is lost; `/healthz` says degraded meanwhile; a room on another master keeps working.
 */

import assert from "node:assert/strict";
import { keySlot } from "../chat/redis_slot.ts";
import { type ClusterNode, type RedisCluster, startRedisCluster } from "./redis_cluster.ts";
import { sayIfSkipped, skipRedis } from "./redis_server.ts";
import {
  type Event,
  healthSays,
  historyOf,
  joinRoom,
  startTestServer,
  type TestClient,
  type TestServer,
  Wakeup,
  within,
} from "./support.ts";

sayIfSkipped("redis_cluster_test");

/** Generous: other test files share the two CPUs. */
const WAIT_MS = 20_000;
/** A client's pause before it resends a refused message: its backoff. */
const RESEND_MS = 100;

/** A room name (`prefix` and a number) whose keys land on `node`. */
function roomOn(node: ClusterNode, prefix: string): string {
  for (let i = 0;; i++) {
    const room = `${prefix}-${i}`;
    const slot = keySlot(room);
    if (node.slots.some(([from, to]) => slot >= from && slot <= to)) return room;
  }
}

/**
 * Runs `fn` with a cluster and two instances on it: one given the nodes as a list, the other as
 * a `redis+cluster://` URL. Everything is stopped and removed afterwards, whatever happens.
 */
async function withCluster(
  fn: (cluster: RedisCluster, servers: [TestServer, TestServer]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-redis-cluster-" });
  let cluster: RedisCluster | undefined;
  const servers: TestServer[] = [];
  try {
    cluster = await startRedisCluster(dir);
    const limits = { messagesPerSecond: 1000, burst: 1000 };
    const hosts = cluster.urls.map((url) => new URL(url).host).join(",");
    servers.push(await startTestServer({ redis: cluster.urls, limits }));
    servers.push(await startTestServer({ redis: `redis+cluster://${hosts}`, limits }));
    await fn(cluster, servers as [TestServer, TestServer]);
  } finally {
    for (const server of servers) {
      await within(server.close(), "an instance to shut down", 5000).catch(() => {});
    }
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Sends a message and waits for its ack, or the error that refuses it. */
function attempt(client: TestClient, body: string, clientId: string): Promise<Event> {
  return request(client, { type: "message", body, clientId });
}

/** Sends a command with a clientId and waits for the ack or error that answers it. */
async function request(
  client: TestClient,
  command: { type: string; clientId: string; [field: string]: unknown },
): Promise<Event> {
  const known = client.events.length;
  client.send(command);
  const answers = () =>
    client.events.slice(known).find((e) =>
      (e.type === "ack" || e.type === "error") && e.clientId === command.clientId
    );
  for (;;) {
    const answer = answers();
    if (answer !== undefined) return answer;
    await client.next(undefined, WAIT_MS);
  }
}

/**
 * A client that publishes one message after another, each resent with its clientId after every
 * `unavailable` until it is acked, as a real client does.
 */
class Publisher {
  /** clientId -> the id it was acked with. */
  readonly acked = new Map<string, number>();
  unavailable = 0;
  readonly changed = new Wakeup();
  #running = true;
  readonly done: Promise<void>;

  constructor(readonly client: TestClient, readonly name: string) {
    this.done = this.#run();
    // Awaited by stop(); a failure meanwhile is reported there.
    this.done.catch(() => {});
  }

  bodyOf(clientId: string): string {
    return `message ${clientId}`;
  }

  async #run(): Promise<void> {
    for (let n = 1; this.#running; n++) {
      const clientId = `${this.name}-${n}`;
      for (;;) {
        const answer = await attempt(this.client, this.bodyOf(clientId), clientId);
        if (answer.type === "ack") {
          assert.equal(this.acked.get(clientId), undefined, `${clientId} acked twice`);
          this.acked.set(clientId, answer.id);
          break;
        }
        assert.equal(answer.code, "unavailable", answer.message);
        this.unavailable++;
        this.changed.wake();
        // The client's backoff before it resends: not a wait for an event.
        await new Promise((resolve) => setTimeout(resolve, RESEND_MS));
      }
      this.changed.wake();
    }
  }

  /** Stops after the message in flight is acked. */
  stop(): Promise<void> {
    this.#running = false;
    return within(this.done, `${this.name}'s last ack`, WAIT_MS);
  }
}

Deno.test({
  name: "two instances share rooms on every master: each sees the other's messages, in order",
  ignore: skipRedis,
  fn: () =>
    withCluster(async (cluster, [a, b]) => {
      const rooms = cluster.nodes.map((node) => roomOn(node, "shared"));
      for (const [i, room] of rooms.entries()) {
        const { client: ann } = await joinRoom(a, { room, userName: "ann" });
        const { client: bob } = await joinRoom(b, { room, userName: "bob" });
        for (let n = 1; n <= 6; n++) {
          const [sender, name] = n % 2 === 1 ? [ann, "ann"] : [bob, "bob"];
          const answer = await attempt(sender, `${name} ${n}`, `${name}-${n}`);
          assert.equal(answer.type, "ack", `${room}: ${JSON.stringify(answer)}`);
          assert.equal(answer.id, n, `${room}: the ack of message ${n}`);
        }
        for (const client of [ann, bob]) {
          const messages = await client.waitFor("message", 6, WAIT_MS);
          assert.deepEqual(messages.map((m) => m.id), [1, 2, 3, 4, 5, 6], room);
          assert.deepEqual(
            messages.map((m) => m.body),
            ["ann 1", "bob 2", "ann 3", "bob 4", "ann 5", "bob 6"],
          );
        }
        // A change to a message takes the room's next id through the cluster too.
        const edited = { type: "edit", messageId: 1, body: "ann 1, fixed", clientId: "ann-edit" };
        assert.equal((await request(ann, edited)).id, 7, `${room}: the edit's ack`);
        const edit: Event & { messageId?: number } = await bob.next("edit", WAIT_MS);
        assert.deepEqual([edit.id, edit.messageId, edit.body], [7, 1, "ann 1, fixed"]);
        assert.deepEqual(await historyOf(a, room), await historyOf(b, room));
        // The room's keys are on the master its hash tag names: the others send there.
        const owner = cluster.nodes[i].port;
        for (const node of cluster.nodes) {
          const held = (await cluster.cli(node.port, "exists", `parley:{${room}}:log`)).trim();
          const moved = `MOVED ${keySlot(room)} 127.0.0.1:${owner}`;
          assert.equal(held, node.port === owner ? "1" : moved, `${room} on ${node.port}`);
        }
        await Promise.all([ann.close(), bob.close()]);
      }
    }),
});

Deno.test({
  name: "a master killed and restarted: its rooms say unavailable, then recover losing no ack",
  ignore: skipRedis,
  fn: () =>
    withCluster(async (cluster, [a, b]) => {
      const [victim, survivor] = cluster.nodes;
      const hot = roomOn(victim, "hot");
      const calm = roomOn(survivor, "calm");
      const { client: annHot } = await joinRoom(a, { room: hot, userName: "ann" });
      const { client: bobHot } = await joinRoom(b, { room: hot, userName: "bob" });
      const { client: annCalm } = await joinRoom(a, { room: calm, userName: "ann" });
      const { client: bobCalm } = await joinRoom(b, { room: calm, userName: "bob" });
      const publishers = [new Publisher(annHot, "ann"), new Publisher(bobHot, "bob")];
      try {
        const ackedAtLeast = async (count: (p: Publisher) => number, what: string) => {
          for (const p of publishers) await p.changed.until(() => count(p) > 0, what, WAIT_MS);
        };
        await ackedAtLeast((p) => p.acked.size - 4, "acks before the kill");

        await victim.kill();
        for (const server of [a, b]) {
          await healthSays(server, "degraded", "with a master away", WAIT_MS);
        }
        await ackedAtLeast((p) => p.unavailable, "unavailable while the master is away");
        const ackedWhileDown = publishers.map((p) => p.acked.size);

        // The room on another master works meanwhile, both ways, live.
        for (
          const [from, to, name] of [[annCalm, bobCalm, "ann"], [bobCalm, annCalm, "bob"]] as const
        ) {
          const answer = await attempt(from, `${name} while a master is away`, `${name}-calm`);
          assert.equal(answer.type, "ack", JSON.stringify(answer));
          const heard = (await to.waitFor("message", name === "ann" ? 1 : 2, WAIT_MS)).at(-1)!;
          assert.equal(heard.body, `${name} while a master is away`);
        }
        assert.deepEqual(
          publishers.map((p) => p.acked.size),
          ackedWhileDown,
          "no ack in the hot room",
        );

        await victim.restart();
        for (const server of [a, b]) {
          await healthSays(server, "ok", "with the master back", WAIT_MS);
        }
        const before = publishers.map((p) => p.acked.size);
        await ackedAtLeast(
          (p) => p.acked.size - before[publishers.indexOf(p)] - 4,
          "acks after the restart",
        );
      } catch (error) {
        await Promise.all(publishers.map((p) => p.stop().catch(() => {})));
        throw error;
      }
      await Promise.all(publishers.map((p) => p.stop()));

      const acked = new Map<string, number>();
      for (const p of publishers) for (const [id, n] of p.acked) acked.set(p.bodyOf(id), n);
      for (const server of [a, b]) {
        const history = await historyOf(server, hot);
        const stored = new Map(history.map((m) => [m.body, m.id]));
        for (const [body, id] of acked) {
          assert.equal(stored.get(body), id, `"${body}" acked as ${id}`);
        }
        // Every message was resent until acked: nothing else is stored, and no id is skipped.
        assert.deepEqual(
          history.map((m) => m.id),
          [...acked.values()].sort((x, y) => x - y),
        );
        assert.deepEqual(history.map((m) => m.id), history.map((_, n) => n + 1));
      }
      assert.deepEqual(await historyOf(a, hot), await historyOf(b, hot));
      await Promise.all([annHot, bobHot, annCalm, bobCalm].map((client) => client.close()));
    }),
});
