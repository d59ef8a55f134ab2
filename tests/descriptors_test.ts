import assert from "node:assert/strict";
import { fileLimitBelow, fitConnections } from "../chat/descriptors.ts";

Deno.test("maxConnections is kept when the open-file limit allows it with room to spare", () => {
  const asked: number[] = [];
  const fitted = fitConnections(10_000, (files) => {
    asked.push(files);
    return null;
  });
  assert.deepEqual(fitted, { maxConnections: 10_000, note: null });
  assert.ok(asked[0] > 10_000, `it asks for more than the WebSockets alone: ${asked[0]}`);
});

Deno.test("below the open-file limit, maxConnections is lowered and the note says what to raise", () => {
  const { maxConnections, note } = fitConnections(10_000, () => 256);
  assert.ok(maxConnections > 100 && maxConnections < 256 - 32, String(maxConnections));
  assert.equal(
    note,
    `maxConnections lowered from 10000 to ${maxConnections}: the process may open 256 files; ` +
      "raise the limit with ulimit -n or systemd's LimitNOFILE to allow more",
  );
  assert.equal(fitConnections(10_000, () => 10).maxConnections, 1, "never below one");
});

Deno.test("the probe finds no limit below what this test process may open", () => {
  assert.equal(fileLimitBelow(100), null);
});
