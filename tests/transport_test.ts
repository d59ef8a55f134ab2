import assert from "node:assert/strict";
import { closeReason } from "../chat/transport.ts";

Deno.test("a close reason is cut to 123 bytes of UTF-8, never inside a character", () => {
  const bytes = (text: string) => new TextEncoder().encode(text).length;
  assert.equal(closeReason("short"), "short");
  assert.equal(closeReason("a".repeat(200)), "a".repeat(123));
  const accented = closeReason("é".repeat(100));
  assert.equal(accented, "é".repeat(61));
  assert.ok(bytes(accented) <= 123);
  const emoji = closeReason("x" + "😀".repeat(40));
  assert.equal(emoji, "x" + "😀".repeat(30));
  // WebSocket.close throws past 123 bytes: what closeReason gives it never does.
  assert.ok(bytes(closeReason("€".repeat(60))) <= 123);
});
