import { strict as assert } from "node:assert";
import { setImmediate } from "node:timers";
import { Logger } from "../chat/log.ts";

async function withLog(
  fn: (log: Logger, read: () => string) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/parley.log`;
  const log = new Logger(path, false);
  try {
    await fn(log, () => Deno.readTextFileSync(path));
  } finally {
    log.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("info lines of one turn are written together at the end of the turn", async () => {
  await withLog(async (log, read) => {
    log.info("open a");
    log.info("open b");
    assert.equal(read(), "");
    // The logger's flush was queued first, so it has run when this turn-end callback does.
    await new Promise((resolve) => setImmediate(resolve));
    const lines = read().trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z info open a$/);
    assert.match(lines[1], / info open b$/);
  });
});

Deno.test("an error is written at once, after the info lines before it", async () => {
  await withLog((log, read) => {
    log.info("open a");
    log.error("refused b");
    assert.match(read(), / info open a\n.* error refused b\n$/);
  });
});

Deno.test("closing writes what is pending and appends to an existing file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/parley.log`;
  try {
    await Deno.writeTextFile(path, "earlier\n");
    const log = new Logger(path, false, "worker 1");
    log.info("stopped");
    log.close();
    assert.match(await Deno.readTextFile(path), /^earlier\n.* info worker 1: stopped\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
