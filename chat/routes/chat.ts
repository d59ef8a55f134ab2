/**
 * `GET /chat`: the WebSocket endpoint. It checks who may connect, upgrades, and hands the socket
 * to a {@link Client}; a connection refused after the upgrade is closed with 1008 and why. A
 * request without a credential, or with one that signs nobody in, is a 401 before the upgrade; a
 * person is present and posts under their own name only; a room the person may not use is
 * refused as if it did not exist.
 */

import type { Lease } from "../admission.ts";
import { Client } from "../client.ts";
import type { Identity } from "../identity.ts";
import { clientText } from "../log.ts";
import { CloseCode, closeReason, WebSocketTransport } from "../transport.ts";
import {
  type Dialect,
  encodeEvent,
  PROTOCOL_V1,
  ProtocolError,
  type ServerEvent,
  validateUserName,
} from "../message.ts";
import type { Services } from "../services.ts";
import { checkOrigin, HttpError, personOf, roomParam, type RouteParams } from "./route.ts";

/** The query of `GET /chat`, validated. */
interface ChatQuery {
  room: string;
  userName: string | null;
  since: number | null;
}

/** `GET /chat`: upgrades to a WebSocket and starts a {@link Client} in the asked room. */
export async function chat(
  context: Services,
  request: Request,
  { url, address }: RouteParams,
): Promise<Response> {
  const { config, admission, metrics } = context;
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(
      426,
      "this is the WebSocket endpoint; connect with a WebSocket client, or open / in a browser",
      { upgrade: "websocket" },
    );
  }
  checkOrigin(context, request, url, address);
  const who = await personOf(context, request, url);
  if (context.stopping) throw new HttpError(503, "the server is shutting down; reconnect shortly");
  if (admission.full) {
    metrics.refused++;
    throw new HttpError(503, "the server is full; try again later");
  }
  const dialect = offeredDialect(request);
  const { socket, response } = upgrade(context, request, dialect);
  const lease = admission.lease(address);
  if (lease === null) {
    const limit = config.limits.maxConnectionsPerIp;
    refuse(context, socket, address, `too many connections from ${address}; the limit is ${limit}`);
    return response;
  }
  let query: ChatQuery;
  try {
    query = chatQuery(url, who.userName !== null);
    if (!context.identity.mayRead(who, query.room)) {
      throw new ProtocolError(
        "bad_room",
        `there is no room ${JSON.stringify(query.room)} that you may join`,
      );
    }
  } catch (error) {
    if (!(error instanceof ProtocolError)) {
      lease.release();
      throw error;
    }
    const event: ServerEvent = { type: "error", code: error.code, message: error.message };
    refuse(context, socket, address, error.message, dialect === PROTOCOL_V1 ? event : undefined);
    socket.addEventListener("close", lease.release);
    return response;
  }
  try {
    start(context, socket, dialect, query, who, address, lease);
  } catch (error) {
    lease.release();
    throw error;
  }
  return response;
}

/** `parley.v1` if the client offers it, else the Go server's dialect. */
function offeredDialect(request: Request): Dialect {
  const offered = request.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim());
  return offered?.includes(PROTOCOL_V1) ? PROTOCOL_V1 : "legacy";
}

/** Upgrades, or answers 400: a handshake `Deno.upgradeWebSocket` refuses is the client's fault. */
function upgrade(
  { config, metrics }: Services,
  request: Request,
  dialect: Dialect,
): Deno.WebSocketUpgrade {
  try {
    return Deno.upgradeWebSocket(request, {
      protocol: dialect === PROTOCOL_V1 ? PROTOCOL_V1 : undefined,
      idleTimeout: config.limits.idleTimeoutSeconds,
    });
  } catch (error) {
    metrics.refused++;
    throw new HttpError(
      400,
      `the WebSocket handshake is malformed (${(error as Error).message}); ` +
        "connect with a WebSocket client",
    );
  }
}

/** Hands the socket to a new {@link Client}, which gives the lease back as it leaves and closes. */
function start(
  { config, rooms, log, metrics, clients, identity, live }: Services,
  socket: WebSocket,
  dialect: Dialect,
  query: ChatQuery,
  who: Identity,
  address: string,
  lease: Lease,
): void {
  const client = new Client({
    transport: new WebSocketTransport(socket),
    dialect,
    room: rooms.get(query.room),
    userName: query.userName,
    identity: who,
    expiry: identity.expiry(who, query.room),
    since: query.since,
    limits: config.limits,
    onJoin: config.history.onJoin,
    maxReplay: config.history.maxReplay,
    address,
    lease,
    log,
    metrics,
    onClose: () => clients.delete(client),
    live,
  });
  clients.add(client);
}

/** Closes an upgraded socket with 1008 and `message`, sending `event` first if given. */
function refuse(
  { metrics, log }: Services,
  socket: WebSocket,
  address: string,
  message: string,
  event?: ServerEvent,
): void {
  metrics.refused++;
  log.limited(address, `refused ${address}: ${message}`);
  socket.onopen = () => {
    if (event !== undefined) socket.send(encodeEvent(event));
    socket.close(CloseCode.policy, closeReason(message));
  };
  socket.onerror = () => {};
}

/**
 * The query of `GET /chat`; a bad value is a {@link ProtocolError}. The name is not read for a
 * connection `named` by its account.
 */
function chatQuery(url: URL, named: boolean): ChatQuery {
  const room = roomParam(url);
  const name = named ? null : url.searchParams.get("userName");
  const userName = name === null || name === "" ? null : validateUserName(name);
  const rawSince = url.searchParams.get("since");
  let since: number | null = null;
  if (rawSince !== null && rawSince !== "") {
    since = /^\d{1,16}$/.test(rawSince) ? Number(rawSince) : NaN;
    if (Number.isNaN(since)) {
      throw new ProtocolError(
        "bad_frame",
        `since must be a message id, not ${clientText(rawSince)}`,
      );
    }
  }
  return { room, userName, since };
}
