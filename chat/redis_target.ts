/**
 * Where parley's Redis is, as `redis` in `config.json` says: one server (`redis://host:6379`),
 * or a Redis Cluster, named by some of its nodes (a list of `redis://` URLs, or one
 * `redis+cluster://host:port,host:port` URL); the client finds the rest of a cluster itself.
 *
 * @module
 */

/** One server, or the nodes a cluster is discovered from. */
export type RedisTarget =
  | { cluster: false; url: string }
  | { cluster: true; urls: string[] };

/** A `redis` setting that names no Redis; the message says what is wrong with it. */
export class RedisTargetError extends Error {
  override name = "RedisTargetError";
}

const SERVER = /^rediss?:\/\/./;
const CLUSTER = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^@/?#]+)\/?$/;
const NODE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

/** Reads a `redis` setting; throws a {@link RedisTargetError} for one that names no Redis. */
export function redisTarget(value: string | readonly string[]): RedisTarget {
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RedisTargetError("an empty list names no cluster node");
    for (const url of value) checkUrl(url);
    return { cluster: true, urls: [...value] };
  }
  const url = value as string;
  const cluster = CLUSTER.exec(url);
  if (cluster === null) {
    checkUrl(url);
    return { cluster: false, url };
  }
  const [, scheme, credentials, nodes] = cluster;
  const urls = nodes.split(",").map((node) => {
    const port = NODE.exec(node)?.[1];
    if (port === undefined || Number(port) < 1 || Number(port) > 65535) {
      throw new RedisTargetError(`${JSON.stringify(node)} is not a host:port`);
    }
    return `${scheme}://${credentials === undefined ? "" : `${credentials}@`}${node}`;
  });
  for (const node of urls) checkUrl(node);
  return { cluster: true, urls };
}

function checkUrl(url: unknown): void {
  if (typeof url !== "string" || !SERVER.test(url)) {
    throw new RedisTargetError(`${JSON.stringify(url)} is not a redis:// or rediss:// URL`);
  }
  try {
    new URL(url);
  } catch {
    throw new RedisTargetError(`${JSON.stringify(url)} is not a URL`);
  }
}
