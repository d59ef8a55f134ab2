import assert from "node:assert/strict";
import { literalPath, matches, route } from "../chat/routes/route.ts";

const handler = () => new Response();

Deno.test("a plain path matches only itself", () => {
  const page = route(["GET"], "/history", handler);
  assert.ok(page.exact);
  assert.ok(matches(page, "/history"));
  for (const other of ["/history/", "/History", "/historyx", "/", "/history/1"]) {
    assert.ok(!matches(page, other), other);
  }
});

Deno.test("a group matches one raw segment, percent-encoding and all", () => {
  const post = route(["POST"], "/rooms/:room/messages", handler);
  assert.ok(!post.exact);
  assert.equal(post.prefix, "/rooms/");
  assert.ok(matches(post, "/rooms/%E0%A4%A/messages"));
  assert.deepEqual(post.pattern.exec({ pathname: "/rooms/%E0%A4%A/messages" })?.pathname.groups, {
    room: "%E0%A4%A",
  });
  for (const other of ["/rooms//messages", "/rooms/a/b/messages", "/rooms/a/messages/", "/rooms"]) {
    assert.ok(!matches(post, other), other);
  }
});

Deno.test("an asset path with pattern syntax in it matches exactly itself", () => {
  for (const path of ["/app(1).js", "/a+b.css", "/x:y", "/what?.js", "/*"]) {
    const asset = route(["GET"], literalPath(path), handler);
    assert.ok(matches(asset, path), path);
    assert.ok(!matches(asset, `${path}x`), path);
    assert.ok(!matches(asset, "/"), path);
  }
});
