/**
 * The page and its assets, imported as text so they are part of the module graph: `deno compile`
 * puts them inside the binary, and nothing is read from disk at run time.
 */

import { createHash } from "node:crypto";
import html from "../static/chat.html" with { type: "text" };
import css from "../static/chat.css" with { type: "text" };
import accountForms from "../static/account_forms.js" with { type: "text" };
import api from "../static/api.js" with { type: "text" };
import app from "../static/app.js" with { type: "text" };
import avatar from "../static/avatar.js" with { type: "text" };
import composer from "../static/composer.js" with { type: "text" };
import connection from "../static/connection.js" with { type: "text" };
import elements from "../static/elements.js" with { type: "text" };
import entry from "../static/entry.js" with { type: "text" };
import forms from "../static/forms.js" with { type: "text" };
import history from "../static/history.js" with { type: "text" };
import invite from "../static/invite.js" with { type: "text" };
import mentions from "../static/mentions.js" with { type: "text" };
import messageActions from "../static/message_actions.js" with { type: "text" };
import messageList from "../static/message_list.js" with { type: "text" };
import messageLog from "../static/message_log.js" with { type: "text" };
import messageText from "../static/message_text.js" with { type: "text" };
import messageView from "../static/message_view.js" with { type: "text" };
import notifier from "../static/notifier.js" with { type: "text" };
import notify from "../static/notify.js" with { type: "text" };
import outbox from "../static/outbox.js" with { type: "text" };
import people from "../static/people.js" with { type: "text" };
import protocol from "../static/protocol.js" with { type: "text" };
import remembered from "../static/remembered.js" with { type: "text" };
import roomDialogs from "../static/room_dialogs.js" with { type: "text" };
import roomList from "../static/room_list.js" with { type: "text" };
import rooms from "../static/rooms.js" with { type: "text" };
import search from "../static/search.js" with { type: "text" };
import searchBox from "../static/search_box.js" with { type: "text" };
import statusLine from "../static/status_line.js" with { type: "text" };
import typing from "../static/typing.js" with { type: "text" };
import unread from "../static/unread.js" with { type: "text" };
import users from "../static/users.js" with { type: "text" };

/** The page forbids inline script and anything from another origin. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; " +
  "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'none'";

/** A file served from memory. */
export interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

function asset(text: string, type: string): Asset {
  const body = new TextEncoder().encode(text);
  const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 24)}"`;
  return { body, type, etag };
}

const page = asset(html, "text/html; charset=utf-8");

/** One of the page's ES modules; the browser fetches each as another imports it. */
function script(text: string): Asset {
  return asset(text, "text/javascript; charset=utf-8");
}

/**
 * The chat page, which is also the setup page (`/setup?token=…`) and an invite's page
 * (`/join/<code>`): the page decides what to show from its path.
 */
export const chatPage: Asset = page;

/** The assets by path. */
export const assets: ReadonlyMap<string, Asset> = new Map([
  ["/", page],
  ["/messages", page],
  ["/setup", page],
  ["/chat.css", asset(css, "text/css; charset=utf-8")],
  ["/account_forms.js", script(accountForms)],
  ["/api.js", script(api)],
  ["/app.js", script(app)],
  ["/avatar.js", script(avatar)],
  ["/composer.js", script(composer)],
  ["/connection.js", script(connection)],
  ["/elements.js", script(elements)],
  ["/entry.js", script(entry)],
  ["/forms.js", script(forms)],
  ["/history.js", script(history)],
  ["/invite.js", script(invite)],
  ["/mentions.js", script(mentions)],
  ["/message_actions.js", script(messageActions)],
  ["/message_list.js", script(messageList)],
  ["/message_log.js", script(messageLog)],
  ["/message_text.js", script(messageText)],
  ["/message_view.js", script(messageView)],
  ["/notifier.js", script(notifier)],
  ["/notify.js", script(notify)],
  ["/outbox.js", script(outbox)],
  ["/people.js", script(people)],
  ["/protocol.js", script(protocol)],
  ["/remembered.js", script(remembered)],
  ["/room_dialogs.js", script(roomDialogs)],
  ["/room_list.js", script(roomList)],
  ["/rooms.js", script(rooms)],
  ["/search.js", script(search)],
  ["/search_box.js", script(searchBox)],
  ["/status_line.js", script(statusLine)],
  ["/typing.js", script(typing)],
  ["/unread.js", script(unread)],
  ["/users.js", script(users)],
]);

/** Answers GET or HEAD for an asset, with 304 when the client's copy is current. */
export function serveAsset(request: Request, asset: Asset): Response {
  const headers = new Headers({
    "content-type": asset.type,
    "etag": asset.etag,
    "cache-control": "no-cache",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  const match = request.headers.get("if-none-match");
  if (match !== null && match.split(",").some((tag) => tag.trim() === asset.etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers.set("content-length", String(asset.body.byteLength));
  return new Response(request.method === "HEAD" ? null : asset.body, { headers });
}
