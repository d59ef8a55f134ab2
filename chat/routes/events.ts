/**
 * `GET /rooms/:room/events`: a room followed as Server-Sent Events (`curl -N`, `EventSource`). It
 * is a connection like a WebSocket, with the same access rules and limits, driven by the same
 * {@link Client} session over an {@link EventStreamTransport}; it only reads.
 */

import type { Lease } from "../admission.ts";
import { Client } from "../client.ts";
import type { Identity } from "../identity.ts";
import type { Services } from "../services.ts";
import { EventStreamTransport } from "../transport.ts";
import { EVENT_STREAM } from "../writers.ts";
import { checkOrigin, HttpError, intParam, pathRoom, type RouteParams } from "./route.ts";

/** `GET /rooms/:room/events`: the room's events from `Last-Event-ID` or `?since=`, then live. */
export async function events(
  context: Services,
  request: Request,
  { url, address, path }: RouteParams,
): Promise<Response> {
  checkOrigin(context, request, url);
  const room = pathRoom(path, url);
  const since = resumePoint(request, url);
  const who = await context.identity.identify(request, url);
  // Saying more would tell a stranger which private rooms exist.
  if (!context.identity.mayRead(who, room)) {
    throw new HttpError(404, `no room ${room} that you may read; sign in, or check the name`);
  }
  const lease = admit(context, address);
  try {
    return follow(context, request, { room, since, address, lease, who });
  } catch (error) {
    lease.release();
    throw error;
  }
}

/**
 * Where a follower resumes: `Last-Event-ID`, which `EventSource` sends on reconnecting and so is
 * newer than the URL it reconnects to, else `?since=`; null for a newcomer.
 */
function resumePoint(request: Request, url: URL): number | null {
  const header = request.headers.get("last-event-id")?.trim();
  if (header === undefined || header === "") return intParam(url, "since", 0) ?? null;
  if (!/^\d{1,16}$/.test(header)) {
    throw new HttpError(400, `Last-Event-ID must be an event id, not ${JSON.stringify(header)}`);
  }
  return Number(header);
}

/** A lease for a connection from `address`, or the 503 or 429 of the limit it would pass. */
function admit(context: Services, address: string): Lease {
  const { admission, config, stopping } = context;
  if (stopping) throw new HttpError(503, "the server is shutting down; reconnect shortly");
  if (admission.full) return refuse(context, address, 503, "the server is full; try again later");
  const lease = admission.lease(address);
  if (lease !== null) return lease;
  const limit = config.limits.maxConnectionsPerIp;
  return refuse(
    context,
    address,
    429,
    `too many connections from ${address}; the limit is ${limit}`,
  );
}

function refuse(
  { log, metrics }: Services,
  address: string,
  status: number,
  message: string,
): never {
  metrics.refused++;
  log.error(`refused ${address}: ${message}`);
  throw new HttpError(status, message, { "retry-after": "5" });
}

/** What a follower is, once admitted. */
interface Follower {
  room: string;
  since: number | null;
  address: string;
  lease: Lease;
  /** Who opened the stream: a ban or a removal from the room ends it, as it ends a WebSocket. */
  who: Identity | null;
}

/** Starts a read-only {@link Client} on an event stream; it gives the lease back as it ends. */
function follow(context: Services, request: Request, follower: Follower): Response {
  const { config, rooms, log, metrics, clients, keepaliveMs, identity } = context;
  const transport = new EventStreamTransport(keepaliveMs);
  const client = new Client({
    transport,
    dialect: EVENT_STREAM,
    room: rooms.get(follower.room),
    userName: null,
    identity: follower.who ?? undefined,
    // A stream cannot send `refresh`: it ends at its token's expiry, and EventSource reconnects.
    expiry: follower.who === null ? null : identity.expiry(follower.who, follower.room),
    since: follower.since,
    limits: config.limits,
    onJoin: config.history.onJoin,
    maxReplay: config.history.maxReplay,
    address: follower.address,
    lease: follower.lease,
    log,
    metrics,
    onClose: () => clients.delete(client),
  });
  clients.add(client);
  return new Response(transport.body, { headers: streamHeaders(request) });
}

/**
 * An event stream's headers: not cached, not buffered by a proxy (nginx reads
 * `X-Accel-Buffering`), and readable by a page of an allowed origin, as a WebSocket is.
 */
function streamHeaders(request: Request): Headers {
  const headers = new Headers({
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  });
  // checkOrigin let it through: it is absent, the server's own, or allowed.
  const origin = request.headers.get("origin");
  if (origin !== null) {
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-allow-credentials", "true");
    headers.set("vary", "origin");
  }
  return headers;
}
