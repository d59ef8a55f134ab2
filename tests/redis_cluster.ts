/**
 * A real three-master Redis Cluster of a test's own, on free ports, every node keeping every
 * write (`appendonly yes`, `appendfsync always`), so that a node killed with SIGKILL and started
 * again comes back with its data. Where redis-server is not installed the tests that need it are
 * skipped with the reason (`redis_server.ts`), except in CI, where they fail.
 */

import { type RedisServer, startRedis } from "./redis_server.ts";
import { eventually } from "./support.ts";

/** Generous: other test files share the two CPUs. */
const WAIT_MS = 20_000;
/** A Redis Cluster node talks to the others on its port + this (the cluster bus). */
const BUS_OFFSET = 10000;

/** One master of the cluster. */
export interface ClusterNode {
  port: number;
  /** The slots it serves, as inclusive ranges. */
  slots: [number, number][];
  /** SIGKILL, and wait for it to be gone. */
  kill(): Promise<void>;
  /** Starts it again where it was, with its data, and waits until the cluster is whole again. */
  restart(): Promise<void>;
}

/** A running cluster. */
export interface RedisCluster {
  nodes: ClusterNode[];
  /** Every node's URL, as `redis` in `config.json` may list them. */
  urls: string[];
  /** The master serving `slot`. */
  nodeOf(slot: number): ClusterNode;
  /** Runs redis-cli against the node on `port`; returns what it printed. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Kills every node. */
  stop(): Promise<void>;
}

/** Runs redis-cli with `args`; fails with what it said when it fails. */
async function redisCli(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("redis-cli", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(`redis-cli ${args.join(" ")}: ${out}${new TextDecoder().decode(stderr)}`);
  }
  return out;
}

/** A free port below 55536 whose cluster bus port is free too. */
function freeClusterPort(taken: Set<number>): number {
  for (;;) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    try {
      if (port + BUS_OFFSET > 65535 || taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
      try {
        Deno.listen({ hostname: "127.0.0.1", port: port + BUS_OFFSET }).close();
      } catch {
        continue;
      }
      taken.add(port).add(port + BUS_OFFSET);
      return port;
    } finally {
      probe.close();
    }
  }
}

/** Polls `check` (a failure counts as not yet) until it holds or `ms` pass. */
function until(check: () => Promise<boolean>, what: string, ms = WAIT_MS): Promise<void> {
  // Polling pace: a cluster has no way to say when it has become whole.
  return eventually(() => check().catch(() => false), what, ms, 100);
}

/** Whether every node in `ports` says `cluster_state:ok`. */
async function clusterOk(ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const info = await redisCli("-p", String(port), "cluster", "info");
    if (!info.includes("cluster_state:ok")) return false;
  }
  return true;
}

/** Each master's slot ranges, by port, from `CLUSTER NODES`. */
async function slotsByPort(port: number): Promise<Map<number, [number, number][]>> {
  const slots = new Map<number, [number, number][]>();
  for (const line of (await redisCli("-p", String(port), "cluster", "nodes")).split("\n")) {
    const [, address, flags, , , , , , ...ranges] = line.trim().split(" ");
    if (flags === undefined || !flags.includes("master")) continue;
    const nodePort = Number(address.split("@")[0].split(":").at(-1));
    slots.set(
      nodePort,
      ranges.map((range) => {
        const [from, to] = range.split("-").map(Number);
        return [from, to ?? from];
      }),
    );
  }
  return slots;
}

/**
 * Starts three masters with their data in `dir`, makes them a cluster, and waits until every
 * node says it is whole. A master that is away stops only its own slots
 * (`cluster-require-full-coverage no`).
 */
export async function startRedisCluster(dir: string): Promise<RedisCluster> {
  const taken = new Set<number>();
  const ports = [freeClusterPort(taken), freeClusterPort(taken), freeClusterPort(taken)];
  const servers = new Map<number, RedisServer>();
  const start = async (port: number) => {
    const nodeDir = `${dir}/${port}`;
    await Deno.mkdir(nodeDir, { recursive: true });
    servers.set(
      port,
      await startRedis(nodeDir, {
        persist: true,
        port,
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `${nodeDir}/nodes.conf`,
          "--cluster-node-timeout",
          "2000",
          "--cluster-require-full-coverage",
          "no",
        ],
      }),
    );
  };
  const stop = async () => {
    for (const server of servers.values()) await server.stop();
  };
  try {
    for (const port of ports) await start(port);
    await redisCli(
      "--cluster",
      "create",
      ...ports.map((port) => `127.0.0.1:${port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    );
    await until(() => clusterOk(ports), "the cluster to say cluster_state:ok on every node");
    const slots = await slotsByPort(ports[0]);
    const nodes = ports.map((port): ClusterNode => ({
      port,
      slots: slots.get(port) ?? [],
      kill: () => servers.get(port)!.stop(),
      restart: async () => {
        await start(port);
        await until(() => clusterOk(ports), `the cluster to be whole again with ${port} back`);
      },
    }));
    return {
      nodes,
      urls: ports.map((port) => `redis://127.0.0.1:${port}`),
      nodeOf: (slot) => {
        const node = nodes.find((n) => n.slots.some(([from, to]) => slot >= from && slot <= to));
        if (node === undefined) throw new Error(`no master serves slot ${slot}`);
        return node;
      },
      cli: (port, ...args) => redisCli("-p", String(port), ...args),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
