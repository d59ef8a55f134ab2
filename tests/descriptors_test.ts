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
  assert.equal(maxConnections, 192, "a quarter of a small limit is kept for the rest");
  assert.equal(
    note,
    `maxConnections lowered from 10000 to ${maxConnections}: the process may open 256 files; ` +
      "raise the limit with ulimit -n or systemd's LimitNOFILE to allow more",
  );
  assert.equal(fitConnections(30_000, () => 20_000).maxConnections, 19_744, "at most 256 kept");
  assert.equal(fitConnections(10_000, () => 1).maxConnections, 1, "never below one");
  assert.deepEqual(fitConnections(50, () => 150), { maxConnections: 50, note: null }, "never up");
});

Deno.test("the probe finds no limit below what this test process may open", () => {
  assert.equal(fileLimitBelow(100), null);
});
