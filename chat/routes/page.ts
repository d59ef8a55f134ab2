/**
 * The page and its assets: one route per entry of `assets`, so a new file needs no new route;
 * and an invite's link, `/join/<code>`, which is the page too.
 */

import { assets, chatPage, serveAsset } from "../static.ts";
import { literalPath, type Route, route, type RouteParams } from "./route.ts";
import type { Services } from "../services.ts";

/** `GET` or `HEAD` of an asset, with 304 when the client's copy is current. */
export function page(_context: Services, request: Request, { url }: RouteParams): Response {
  // The route table only sends here the paths in `assets`.
  return serveAsset(request, assets.get(url.pathname)!);
}

/** A route for each path in `assets`. */
export function assetRoutes(): Route[] {
  return [...assets.keys()].map((path) => route(["GET", "HEAD"], literalPath(path), page));
}

/** `GET` or `HEAD` of `/join/<code>`: the chat page, which shows the invite's form. */
export function invitePage(_context: Services, request: Request): Response {
  return serveAsset(request, chatPage);
}
