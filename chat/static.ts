/**
 * The page and its assets, imported as text so they are part of the module graph: `deno compile`
 * puts them inside the binary, and nothing is read from disk at run time.
 */

import { createHash } from "node:crypto";
import html from "../static/chat.html" with { type: "text" };
import css from "../static/chat.css" with { type: "text" };
import js from "../static/chat.js" with { type: "text" };

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

/** The assets by path. */
export const assets: ReadonlyMap<string, Asset> = new Map([
  ["/", page],
  ["/messages", page],
  ["/chat.css", asset(css, "text/css; charset=utf-8")],
  ["/chat.js", asset(js, "text/javascript; charset=utf-8")],
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
