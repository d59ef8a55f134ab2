/** A room's stored messages: pages of them, and the Go server's `/getAllMessages`. */

import { type ChatMessage, DEFAULT_ROOM, goJson } from "../message.ts";
import type { Services } from "../services.ts";
import { HttpError, intParam, roomParam, type RouteParams } from "./route.ts";

/** The most `/history` returns at once. */
const MAX_HISTORY_LIMIT = 1000;

/** `GET /history?room&limit&before|after`: a page of a room's messages, oldest first. */
export function history({ history }: Services, _request: Request, { url }: RouteParams): Response {
  const room = roomParam(url);
  const limit = intParam(url, "limit", 1, MAX_HISTORY_LIMIT) ?? 50;
  const before = intParam(url, "before", 1);
  const after = intParam(url, "after", 0);
  if (before !== undefined && after !== undefined) {
    throw new HttpError(400, "give either before or after, not both");
  }
  const page: { room: string; messages: ChatMessage[]; hasMore: boolean } = {
    room,
    ...history.page(room, { limit, before, after }),
  };
  return Response.json(page);
}

/** `GET /getAllMessages`: the default room's latest messages, byte for byte as the Go server. */
export function getAllMessages({ history, config }: Services): Response {
  const messages = history.recent(DEFAULT_ROOM, config.history.legacyLimit)
    .map(({ userName, body, timestamp }) => ({ userName, body, timestamp }));
  return new Response(goJson({ Messages: messages }) + "\n", {
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
