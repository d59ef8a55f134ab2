/** `GET /search`: the messages that match a query, in the rooms the requester may read. */

import { validateRoom } from "../message.ts";
import { SearchQueryError, toFtsQuery } from "../search_query.ts";
import type { Services } from "../services.ts";
import { HttpError, intParam, personOf, type RouteParams } from "./route.ts";

/** The most hits one search returns. */
const MAX_SEARCH_LIMIT = 100;

/** What a room the requester may not read is searched as: no room has this name. */
const NO_ROOM = "";

/**
 * `GET /search?q&room&limit`: the newest hits of `q` (see `search_query.ts` for the syntax),
 * `{"results": [{room, id, userName, timestamp, snippet}], "partial"}`; `room` narrows to one
 * room, and one the requester may not read answers as a room without messages.
 */
export async function search(
  context: Services,
  request: Request,
  { url }: RouteParams,
): Promise<Response> {
  const who = await personOf(context, request, url);
  const limit = intParam(url, "limit", 1, MAX_SEARCH_LIMIT) ?? 20;
  const named = url.searchParams.get("room");
  const room = named === null ? null : validateRoom(named);
  let fts: string;
  try {
    fts = toFtsQuery(url.searchParams.get("q") ?? "");
  } catch (error) {
    if (error instanceof SearchQueryError) throw new HttpError(400, error.message);
    throw error;
  }
  const mayRead = (each: string) => context.identity.mayRead(who, each);
  const { hits, partial } = context.search.search({
    fts,
    room: room === null || mayRead(room) ? room : NO_ROOM,
    limit,
    mayRead,
  });
  return Response.json({ results: hits, partial });
}
