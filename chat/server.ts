/**
 * The HTTP server: `Deno.serve` and a dispatcher over the route table of `docs/protocol.md`. The
 * table alone decides 404 and 405; the handlers live in `routes/`, grouped by resource, and share
 * only the {@link Services} they are given.
 */

import { CloseCode } from "./transport.ts";
import type { Config } from "./config.ts";
import { HistoryError } from "./history.ts";
import { listen } from "./listener.ts";
import { clientText, type Logger } from "./log.ts";
import { ProtocolError } from "./message.ts";
import { accessRoutes } from "./routes/access.ts";
import { accountRoutes } from "./routes/accounts.ts";
import { chat } from "./routes/chat.ts";
import { events } from "./routes/events.ts";
import { getAllMessages, history } from "./routes/history.ts";
import type { Samples } from "./metrics.ts";
import { healthz, metrics, ownSamples } from "./routes/ops.ts";
import { assetRoutes, invitePage } from "./routes/page.ts";
import { changeMessage, listRooms, postMessage } from "./routes/rooms.ts";
import { search } from "./routes/search.ts";
import {
  checkHost,
  type Handler,
  HttpError,
  limitReads,
  matches,
  type Route,
  route,
  type RouteParams,
} from "./routes/route.ts";
import { openServices, type ServerOptions, type Services, StartupError } from "./services.ts";

export { type ServerOptions, StartupError };

/** A started server. */
export interface RunningServer {
  /** Where to open the page, e.g. `http://127.0.0.1:8080/` (`https:` with `tls`). */
  url: URL;
  port: number;
  /** The link that creates the first account, if this server made it (`accounts`, none yet). */
  setupLink: URL | null;
  /** Stops accepting, closes every socket with 1001, flushes history; idempotent. */
  shutdown(): Promise<void>;
  /** Its own `/metrics` samples, for a scrape another worker answers. */
  samples(): Samples;
}

/**
 * Every route the server answers; a path no pattern matches is a 404. Reads cost the store and
 * are rate limited per address; posts have their own limit, the page and `/healthz` none.
 */
function routeTable(): Route[] {
  return [
    route(["GET"], "/chat", chat),
    ...assetRoutes(),
    route(["GET", "HEAD"], "/join/:code", invitePage),
    route(["GET"], "/history", limitReads(history)),
    route(["GET"], "/getAllMessages", limitReads(getAllMessages)),
    route(["GET"], "/search", limitReads(search)),
    route(["GET"], "/rooms", limitReads(listRooms)),
    route(["POST"], "/rooms/:room/messages", postMessage),
    route(["PATCH", "DELETE"], "/rooms/:room/messages/:id", changeMessage),
    route(["GET"], "/rooms/:room/events", events),
    route(["GET", "HEAD"], "/healthz", healthz),
    route(["GET"], "/metrics", limitReads(metrics)),
    ...accountRoutes(),
    ...accessRoutes(),
  ];
}

/** Opens the store and the log, binds the port, and serves until {@link RunningServer.shutdown}. */
export async function startServer(
  config: Config,
  options: ServerOptions = {},
): Promise<RunningServer> {
  await using stack = new AsyncDisposableStack();
  const services = stack.use(await openServices(config, options));
  const server = listen(
    services.config,
    options.reusePort ?? false,
    services.log,
    dispatcher(routeTable(), services),
  );
  const owned = stack.move();

  const { hostname, port } = server.addr;
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  const scheme = config.tls.certFile === null ? "http" : "https";
  const url = new URL(`${scheme}://${shown === "0.0.0.0" ? "127.0.0.1" : shown}:${port}/`);
  services.log.info(`listening on ${url}`);
  const setupLink = services.identity.announce(url, config.hostName, services.log);

  let stopped: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    stopped ??= (async () => {
      services.stopping = true;
      for (const client of services.clients) {
        client.close(CloseCode.goingAway, "server shutting down");
      }
      await server.shutdown();
      await owned.disposeAsync();
    })();
    return stopped;
  };
  return { url, port, setupLink, shutdown, samples: () => ownSamples(services) };
}

/** The handler of every request: the route table's answer, or the answer to what it threw. */
function dispatcher(
  routes: readonly Route[],
  context: Services,
): Deno.ServeHandler<Deno.NetAddr> {
  return (request, info) => {
    // Deno builds request.url from the Host header, which a client may fill with anything.
    const url = URL.parse(request.url);
    if (url === null) {
      return Response.json({ error: "the Host header is not a host name; send a valid one" }, {
        status: 400,
      });
    }
    const failed = (error: unknown) => errorResponse(context.log, error, request, url);
    try {
      const address = info.remoteAddr.hostname;
      // A health check may come by any name (a load balancer's, by address); it reveals nothing.
      if (url.pathname !== "/healthz") checkHost(context, request, address);
      const { handler, path } = find(routes, request.method, url.pathname);
      const params: RouteParams = { url, address, path };
      const response = handler(context, request, params);
      return response instanceof Promise ? response.catch(failed) : response;
    } catch (error) {
      return failed(error);
    }
  };
}

/** The route of `method` on `pathname`, or the 404 or 405 (with `Allow`) the table implies. */
function find(
  routes: readonly Route[],
  method: string,
  pathname: string,
): { handler: Handler; path: RouteParams["path"] } {
  const allowed = new Set<string>();
  for (const route of routes) {
    if (!matches(route, pathname)) continue;
    if (route.methods.includes(method)) {
      const path = route.exact ? {} : route.pattern.exec({ pathname })!.pathname.groups;
      return { handler: route.handler, path };
    }
    for (const each of route.methods) allowed.add(each);
  }
  if (allowed.size === 0) throw new HttpError(404, `no such page: ${pathname}; the chat is at /`);
  const methods = [...allowed];
  throw new HttpError(405, `use ${methods.join(" or ")} here`, { allow: methods.join(", ") });
}

/**
 * The answer to a request that failed: what the client can fix (4xx), a failing store (503), or
 * a bug (500, logged once with its stack). Either way the server goes on serving.
 */
function errorResponse(log: Logger, error: unknown, request: Request, url: URL): Response {
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
  // The route table answered it, so the method is one of its own; the path is the client's.
  const where = `${request.method} ${clientText(url.pathname, 200)}`;
  if (error instanceof HistoryError) {
    log.error(`${where}: ${error.message}`);
    return Response.json({ error: `the history store failed: ${error.message}` }, {
      status: 503,
    });
  }
  log.error(`${where}: ${(error as Error).stack ?? error}`);
  return Response.json({ error: "internal error; see the server log" }, { status: 500 });
}
