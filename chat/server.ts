/**
 * The HTTP server: wires the config, the history store, the rooms and the clients together behind
 * `Deno.serve`, and answers the routes of `docs/protocol.md`.
 */

import { resolve } from "node:path";
import { Client } from "./client.ts";
import { CloseCode, WebSocketTransport } from "./transport.ts";
import { TokenBucket } from "./admission.ts";
import type { Config } from "./config.ts";
import { type Bus, LocalBus, RedisBus } from "./bus.ts";
import { HistoryError, HistoryStore } from "./history.ts";
import { Logger } from "./log.ts";
import {
  type ChatMessage,
  DEFAULT_ROOM,
  type Dialect,
  encodeEvent,
  goJson,
  maxFrameBytes,
  PROTOCOL_V1,
  ProtocolError,
  type ServerEvent,
  validateBody,
  validateRoom,
  validateUserName,
} from "./message.ts";
import { Metrics } from "./metrics.ts";
import { Rooms } from "./room.ts";
import { assets, serveAsset } from "./static.ts";

/** The server could not start; the message says why and what to change. */
export class StartupError extends Error {
  override name = "StartupError";
}

/** A started server. */
export interface RunningServer {
  /** Where to open the page, e.g. `http://127.0.0.1:8080/`. */
  url: URL;
  port: number;
  /** Stops accepting, closes every socket with 1001, flushes history; idempotent. */
  shutdown(): Promise<void>;
}

/** How the server runs beside its config. */
export interface ServerOptions {
  /** Log to the log file only, not stderr (tests). */
  quiet?: boolean;
  /** Share the port and the rooms with other workers (`workers` > 1). */
  reusePort?: boolean;
  /** Prefixes this server's log lines, e.g. "worker 2". */
  name?: string;
  /** Called with the history store once it is open: tests use it to make the store fail. */
  onHistoryOpened?: (store: HistoryStore) => void;
}

/** A user's mistake in an HTTP request: answered with its status and `{"error": message}`. */
class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

const MAX_HISTORY_LIMIT = 1000;

/** Opens the store and the log, binds the port, and serves until {@link RunningServer.shutdown}. */
export async function startServer(
  config: Config,
  options: ServerOptions = {},
): Promise<RunningServer> {
  let log: Logger;
  try {
    log = new Logger(config.logfilePath, !options.quiet, options.name);
  } catch (error) {
    throw new StartupError(
      `cannot open the log file ${config.logfilePath}: ${(error as Error).message}; ` +
        'set "logfilePath" to a writable file',
    );
  }
  let history: HistoryStore;
  try {
    history = HistoryStore.open(config.history);
    options.onHistoryOpened?.(history);
  } catch (error) {
    log.close();
    if (error instanceof HistoryError) throw new StartupError(error.message);
    throw error;
  }
  // Workers share the history file, and so the channel named after it.
  const busName = options.reusePort ? `parley:${resolve(config.history.path)}` : null;
  let bus: Bus;
  try {
    bus = config.redis === null ? new LocalBus(history, busName) : await RedisBus.connect(
      config.redis,
      history,
      config.history.maxMessagesPerRoom,
      (message) => log.error(message),
    );
  } catch (error) {
    await history.close();
    log.close();
    throw new StartupError((error as Error).message);
  }
  const rooms = new Rooms(history, bus);
  const metrics = new Metrics();
  const clients = new Set<Client>();
  const perAddress = new Map<string, number>();
  const postBuckets = new Map<string, TokenBucket>();
  let stopping = false;

  const handler = (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Response | Promise<Response> => {
    const url = new URL(request.url);
    const failed = (error: unknown) => errorResponse(error, request, url);
    try {
      const address = info.remoteAddr.hostname;
      if (url.pathname === "/chat") return upgrade(request, url, address);
      const response = route(request, url, address);
      return response instanceof Promise ? response.catch(failed) : response;
    } catch (error) {
      return failed(error);
    }
  };

  /** The answer to a request that failed: what the client can fix, or 503 or 500 and a log line. */
  function errorResponse(error: unknown, request: Request, url: URL): Response {
    if (error instanceof HttpError) {
      return Response.json({ error: error.message }, {
        status: error.status,
        headers: error.headers,
      });
    }
    if (error instanceof ProtocolError) {
      return Response.json({ error: error.message }, {
        status: error.code === "too_large" ? 413 : 400,
      });
    }
    const where = `${request.method} ${url.pathname}`;
    if (error instanceof HistoryError) {
      log.error(`${where}: ${error.message}`);
      return Response.json({ error: `the history store failed: ${error.message}` }, {
        status: 503,
      });
    }
    log.error(`${where}: ${(error as Error).stack ?? error}`);
    return Response.json({ error: "internal error; see the server log" }, { status: 500 });
  }

  function upgrade(request: Request, url: URL, address: string): Response {
    allow(request, ["GET"]);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpError(
        426,
        "this is the WebSocket endpoint; connect with a WebSocket client, or open / in a browser",
        { upgrade: "websocket" },
      );
    }
    checkOrigin(request, url);
    if (stopping) throw new HttpError(503, "the server is shutting down; reconnect shortly");
    if (clients.size >= config.limits.maxConnections) {
      metrics.refused++;
      throw new HttpError(503, "the server is full; try again later");
    }
    const offered = request.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim());
    const dialect: Dialect = offered?.includes(PROTOCOL_V1) ? PROTOCOL_V1 : "legacy";
    const { socket, response } = Deno.upgradeWebSocket(request, {
      protocol: dialect === PROTOCOL_V1 ? PROTOCOL_V1 : undefined,
      idleTimeout: config.limits.idleTimeoutSeconds,
    });

    const count = (perAddress.get(address) ?? 0) + 1;
    perAddress.set(address, count);
    const release = () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left === 0) perAddress.delete(address);
      else perAddress.set(address, left);
    };
    const refused = (message: string, event?: ServerEvent) => {
      refuse(socket, dialect === PROTOCOL_V1 ? event : undefined, message, address, release);
      return response;
    };
    if (count > config.limits.maxConnectionsPerIp) {
      return refused(
        `too many connections from ${address}; the limit is ${config.limits.maxConnectionsPerIp}`,
      );
    }
    let params: { room: string; userName: string | null; since: number | null };
    try {
      params = chatParams(url);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return refused(error.message, { type: "error", code: error.code, message: error.message });
    }
    const client = new Client({
      transport: new WebSocketTransport(socket),
      dialect,
      room: rooms.get(params.room),
      userName: params.userName,
      since: params.since,
      limits: config.limits,
      onJoin: config.history.onJoin,
      address,
      log,
      metrics,
      onClose: () => {
        clients.delete(client);
        release();
      },
    });
    clients.add(client);
    return response;
  }

  /** Closes an upgraded socket with 1008 and `message`, sending `event` first if given. */
  function refuse(
    socket: WebSocket,
    event: ServerEvent | undefined,
    message: string,
    address: string,
    release: () => void,
  ): void {
    metrics.refused++;
    log.error(`refused ${address}: ${message}`);
    socket.onopen = () => {
      if (event !== undefined) socket.send(encodeEvent(event));
      // A close reason is at most 123 bytes.
      socket.close(CloseCode.policy, message.slice(0, 120));
    };
    socket.onclose = release;
    socket.onerror = () => {};
  }

  function checkOrigin(request: Request, url: URL): void {
    const origin = request.headers.get("origin");
    if (origin === null || origin === url.origin || config.allowedOrigins.includes(origin)) return;
    metrics.refused++;
    throw new HttpError(
      403,
      `origin ${origin} is not allowed; add it to "allowedOrigins" in config.json to allow it`,
    );
  }

  function route(request: Request, url: URL, address: string): Response | Promise<Response> {
    const path = url.pathname;
    const asset = assets.get(path);
    if (asset !== undefined) {
      allow(request, ["GET", "HEAD"]);
      return serveAsset(request, asset);
    }
    switch (path) {
      case "/history":
        allow(request, ["GET"]);
        return Response.json(historyPage(url));
      case "/getAllMessages":
        allow(request, ["GET"]);
        return getAllMessages();
      case "/rooms":
        allow(request, ["GET"]);
        return Response.json(roomList());
      case "/healthz":
        allow(request, ["GET", "HEAD"]);
        return stopping
          ? Response.json({ status: "shutting down" }, { status: 503 })
          : Response.json({ status: "ok" });
      case "/metrics":
        allow(request, ["GET"]);
        return new Response(
          metrics.render({
            connections: clients.size,
            rooms: rooms.size,
            historyMessages: history.count(),
          }),
          { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } },
        );
    }
    const post = path.match(/^\/rooms\/([^/]+)\/messages$/);
    if (post !== null) {
      allow(request, ["POST"]);
      checkOrigin(request, url);
      if (!postAllowance(address).take()) {
        throw new HttpError(
          429,
          `slow down: at most ${config.limits.messagesPerSecond} messages per second from one address`,
          { "retry-after": "1" },
        );
      }
      return postMessage(request, url, post[1]);
    }
    throw new HttpError(404, `no such page: ${path}; the chat is at /`);
  }

  function historyPage(url: URL): { room: string; messages: ChatMessage[]; hasMore: boolean } {
    const room = roomParam(url);
    const limit = intParam(url, "limit", 1, MAX_HISTORY_LIMIT) ?? 50;
    const before = intParam(url, "before", 1);
    const after = intParam(url, "after", 0);
    if (before !== undefined && after !== undefined) {
      throw new HttpError(400, "give either before or after, not both");
    }
    return { room, ...history.page(room, { limit, before, after }) };
  }

  function getAllMessages(): Response {
    const messages = history.recent(DEFAULT_ROOM, config.history.legacyLimit)
      .map(({ userName, body, timestamp }) => ({ userName, body, timestamp }));
    return new Response(goJson({ Messages: messages }) + "\n", {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }

  function roomList(): { room: string; users: number; lastId: number }[] {
    const list = new Map<string, { room: string; users: number; lastId: number }>();
    for (const { room, lastId } of history.rooms()) list.set(room, { room, users: 0, lastId });
    for (const [room, users] of rooms.presence()) {
      list.set(room, { room, users, lastId: list.get(room)?.lastId ?? 0 });
    }
    return [...list.values()].sort((a, b) => a.room.localeCompare(b.room));
  }

  /** The token bucket of an address's posts: the same limits as a connection's. */
  function postAllowance(address: string): TokenBucket {
    let bucket = postBuckets.get(address);
    if (bucket === undefined) {
      // Forgetting every address now and then keeps the map bounded; it only refills buckets.
      if (postBuckets.size >= 10_000) postBuckets.clear();
      bucket = new TokenBucket(config.limits.messagesPerSecond, config.limits.burst);
      postBuckets.set(address, bucket);
    }
    return bucket;
  }

  async function postMessage(request: Request, url: URL, rawRoom: string): Promise<Response> {
    let roomName: string;
    try {
      roomName = decodeURIComponent(rawRoom);
    } catch {
      throw new HttpError(400, `the room in ${url.pathname} is not valid percent-encoding`);
    }
    const room = validateRoom(roomName);
    const text = await readBody(request, maxFrameBytes(config.limits.maxMessageBytes));
    let userName: unknown = url.searchParams.get("userName") ?? "anonymous";
    let body: unknown = text;
    if (request.headers.get("content-type")?.startsWith("application/json")) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new HttpError(400, 'the body is not valid JSON; send {"userName":"…","body":"…"}');
      }
      ({ userName, body } = (json ?? {}) as Record<string, unknown>);
    }
    const { message } = await rooms.get(room).publish({
      userName: validateUserName(userName),
      body: validateBody(body, config.limits.maxMessageBytes),
    });
    return Response.json(message, { status: 201 });
  }

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: config.hostName,
      port: config.port,
      reusePort: options.reusePort,
      onListen: () => {},
      onError: (error) => {
        log.error(`request failed: ${(error as Error).stack ?? error}`);
        return Response.json({ error: "internal error; see the server log" }, { status: 500 });
      },
    }, handler as Deno.ServeHandler<Deno.NetAddr>);
  } catch (error) {
    await bus.close();
    await history.close();
    log.close();
    throw new StartupError(bindError(config, error as Error));
  }

  const { hostname, port } = server.addr;
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = new URL(`http://${shown === "0.0.0.0" ? "127.0.0.1" : shown}:${port}/`);
  log.info(`listening on ${url}`);

  let stopped: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      for (const client of clients) client.close(CloseCode.goingAway, "server shutting down");
      await server.shutdown();
      await bus.close();
      await history.close();
      log.info("stopped");
      log.close();
    })();
    return stopped;
  };
  return { url, port, shutdown };
}

function bindError(config: Config, error: Error): string {
  const where = `${config.hostName}:${config.port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return `cannot listen on ${where}: the port is in use; stop the other server or choose ` +
      "another port with --port or PORT";
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `cannot listen on ${where}: this machine has no such address; check "hostName"`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `cannot listen on ${where}: permission denied; ports below 1024 need privileges`;
  }
  return `cannot listen on ${where}: ${error.message}; check "hostName" and "port"`;
}

function allow(request: Request, methods: string[]): void {
  if (!methods.includes(request.method)) {
    throw new HttpError(405, `use ${methods.join(" or ")} here`, { allow: methods.join(", ") });
  }
}

/** The `room` of a query; a bad one is a {@link ProtocolError}, which is a 400 here. */
function roomParam(url: URL): string {
  return validateRoom(url.searchParams.get("room") ?? DEFAULT_ROOM);
}

function intParam(url: URL, name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    throw new HttpError(400, `${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

/** The query of `GET /chat`, validated. */
function chatParams(url: URL): { room: string; userName: string | null; since: number | null } {
  const room = roomParam(url);
  const name = url.searchParams.get("userName");
  const userName = name === null || name === "" ? null : validateUserName(name);
  const rawSince = url.searchParams.get("since");
  let since: number | null = null;
  if (rawSince !== null && rawSince !== "") {
    since = /^\d{1,16}$/.test(rawSince) ? Number(rawSince) : NaN;
    if (Number.isNaN(since)) {
      throw new ProtocolError("bad_frame", `since must be a message id, not "${rawSince}"`);
    }
  }
  return { room, userName, since };
}

/** Reads a request body as text, refusing one larger than `limit` bytes. */
async function readBody(request: Request, limit: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
