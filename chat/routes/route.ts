/**
 * What a route is (methods, a `URLPattern`, a handler), what a handler is given, and the errors it
 * throws for a request the client can fix. Shared by the handlers in this directory.
 */

import type { Identity } from "../identity.ts";
import { clientText } from "../log.ts";
import { DEFAULT_ROOM, validateRoom } from "../message.ts";
import type { Services } from "../services.ts";

/** What a handler is told about its request beside the request itself. */
export interface RouteParams {
  /** The request's URL, parsed once. */
  url: URL;
  /** The peer's IP address. */
  address: string;
  /** The pattern's named groups as they are in the path: `URLPattern` decodes nothing. */
  path: Record<string, string | undefined>;
}

/** Answers one route's requests with the server's services. */
export type Handler = (
  context: Services,
  request: Request,
  params: RouteParams,
) => Response | Promise<Response>;

/** One entry of the route table. */
export interface Route {
  /** The methods it answers; any other on a matching path is a 405 naming these. */
  methods: readonly string[];
  pattern: URLPattern;
  handler: Handler;
  /** The pattern's text before its first group, wildcard or escape; it is all of it if `exact`. */
  prefix: string;
  exact: boolean;
}

/** Characters with a meaning in a `URLPattern` pathname. */
const PATTERN_SYNTAX = /[\\:*?+(){}]/;

/** A route for `methods` on the `URLPattern` pathname `pathname`. */
export function route(methods: readonly string[], pathname: string, handler: Handler): Route {
  const syntax = pathname.search(PATTERN_SYNTAX);
  return {
    methods,
    pattern: new URLPattern({ pathname }),
    handler,
    prefix: syntax === -1 ? pathname : pathname.slice(0, syntax),
    exact: syntax === -1,
  };
}

/**
 * Whether `route` matches `pathname`. `URLPattern` decides, but a test costs microseconds, so a
 * plain path is compared as a string and a path without the pattern's prefix is not tested.
 */
export function matches(route: Route, pathname: string): boolean {
  if (route.exact) return pathname === route.prefix;
  return pathname.startsWith(route.prefix) && route.pattern.test({ pathname });
}

/** `path` as a `URLPattern` pathname that matches exactly it. */
export function literalPath(path: string): string {
  return path.replace(new RegExp(PATTERN_SYNTAX, "g"), "\\$&");
}

/** A user's mistake in an HTTP request: answered with its status and `{"error": message}`. */
export class HttpError extends Error {
  override name = "HttpError";

  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

/** The `room` of a query; a bad one is a `ProtocolError`, which is a 400. */
export function roomParam(url: URL): string {
  return validateRoom(url.searchParams.get("room") ?? DEFAULT_ROOM);
}

/** The whole number `name` of a query, from `min` to `max`; absent is undefined. */
export function intParam(
  url: URL,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    throw new HttpError(
      400,
      `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/**
 * Refuses with 403 a request from a page of another origin (see `Admission.originAllowed`); the
 * refusal is logged, at a bounded rate per `address`.
 */
export function checkOrigin(
  context: Services,
  request: Request,
  url: URL,
  address = "an unknown address",
): void {
  const origin = request.headers.get("origin");
  if (context.admission.originAllowed(origin, url.origin)) return;
  context.metrics.refused++;
  context.log.limited(address, `refused ${address}: origin ${clientText(origin)} is not allowed`);
  throw new HttpError(
    403,
    `origin ${origin} is not allowed; add it to "allowedOrigins" in config.json to allow it`,
  );
}

/**
 * Refuses with 421 a request for a `Host` this server does not answer to (see
 * `Admission.hostAllowed`): on a loopback address, a page of any site can reach it by making its
 * own name resolve to 127.0.0.1, and would then pass the origin check as the server itself.
 */
export function checkHost(context: Services, request: Request, address: string): void {
  const host = request.headers.get("host");
  if (context.admission.hostAllowed(host)) return;
  context.metrics.refused++;
  context.log.limited(address, `refused ${address}: Host ${clientText(host)} is not this server's`);
  throw new HttpError(
    421,
    `this server does not answer to the host name ${clientText(host)}; if that is its name ` +
      '(behind a proxy), add it to "allowedHosts" in config.json',
  );
}

/**
 * The person behind a request that reads or writes a room: `ANYONE` in open mode; otherwise a
 * 401 saying how to sign in for a request without a credential (`IdentityService.signInFirst`).
 */
export async function personOf(context: Services, request: Request, url: URL): Promise<Identity> {
  const who = await context.identity.identify(request, url);
  if (who === null) throw context.identity.signInFirst();
  return who;
}

/** `handler` behind the per-address limit of reads: past it, 429 with `Retry-After`. */
export function limitReads(handler: Handler): Handler {
  return (context, request, params) => {
    if (!context.admission.mayRead(params.address)) {
      context.metrics.refused++;
      const rate = context.config.limits.readsPerSecond;
      throw new HttpError(
        429,
        `slow down: at most ${rate} reads per second from one address`,
        { "retry-after": String(Math.ceil(1 / rate)) },
      );
    }
    return handler(context, request, params);
  };
}
