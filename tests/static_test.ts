/**
 * The page's files served from memory (chat/static.ts): every module in static/ is served, as
 * JavaScript with the page's headers, and everything the page imports resolves to one of them.
 */
import assert from "node:assert/strict";
import { assets, CONTENT_SECURITY_POLICY } from "../chat/static.ts";
import { startTestServer } from "./support.ts";

const STATIC = new URL("../static/", import.meta.url);

/** The relative imports of a module's source, as paths on the server. */
function importsOf(path: string, source: string): string[] {
  const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"/gm)]
    .map((m) => m[1]);
  return specifiers.map((s) => new URL(s, new URL(path, "http://page/")).pathname);
}

Deno.test("each module in static/ is served as JavaScript, byte for byte", async () => {
  await using server = await startTestServer();
  const files = [...Deno.readDirSync(STATIC)].map((e) => e.name).filter((n) => n.endsWith(".js"));
  assert.ok(files.includes("app.js") && files.length >= 6, `modules: ${files}`);
  for (const name of files) {
    const response = await fetch(new URL(`/${name}`, server.url));
    assert.equal(response.status, 200, name);
    assert.equal(response.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(response.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.match(response.headers.get("etag") ?? "", /^"[0-9a-f]+"$/);
    assert.equal(await response.text(), await Deno.readTextFile(new URL(name, STATIC)));
  }
});

Deno.test("the page loads /app.js as a module, and every import it reaches is served", () => {
  const html = new TextDecoder().decode(assets.get("/")!.body);
  const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]);
  assert.deepEqual(scripts, [' type="module" src="/app.js"']);
  const seen = new Set<string>();
  const pending = ["/app.js"];
  while (pending.length) {
    const path = pending.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const asset = assets.get(path);
    assert.ok(asset, `${path} is imported but not served`);
    assert.equal(asset.type, "text/javascript; charset=utf-8");
    pending.push(...importsOf(path, new TextDecoder().decode(asset.body)));
  }
  const served = [...assets.keys()].filter((p) => p.endsWith(".js"));
  assert.deepEqual([...seen].sort(), served.sort(), "a served module nothing imports");
});

Deno.test("/setup and /join/<code> are the chat page, with its headers; other paths are not", async () => {
  await using server = await startTestServer({ auth: { mode: "accounts" } });
  const home = await fetch(server.url);
  const page = await home.text();
  for (const path of ["/setup?token=abc", "/join/Zm9v_-x", "/join/a%20b"]) {
    const response = await fetch(new URL(path, server.url));
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(response.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.equal(response.headers.get("referrer-policy"), "no-referrer", "a link's secret leaks");
    assert.equal(response.headers.get("etag"), home.headers.get("etag"));
    assert.equal(await response.text(), page);
  }
  const head = await fetch(new URL("/join/abc", server.url), { method: "HEAD" });
  assert.equal(head.status, 200);
  for (const path of ["/join/a/b", "/join/", "/setup/x"]) {
    const response = await fetch(new URL(path, server.url));
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
  const post = await fetch(new URL("/join/abc", server.url), { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});
