import assert from "node:assert/strict";
import { defaultConfig, mergeConfig } from "../chat/config.ts";
import type { HistoryStore } from "../chat/history.ts";
import { startServer } from "../chat/server.ts";
import { openServices, StartupError } from "../chat/services.ts";
import { tempDir } from "./support.ts";

/** A config with its log in `dir`, history in memory, and these overrides. */
function configIn(dir: string, overrides: Record<string, unknown> = {}) {
  return mergeConfig(defaultConfig, {
    port: 0,
    logfilePath: `${dir}/parley.log`,
    history: { path: ":memory:" },
    ...overrides,
  }, "test config");
}

/**
 * How many of this process's file descriptors are open on `path`, as Linux's /proc has them
 * (Deno does not let a test read its own /proc/self, so `ls` does).
 */
async function openOn(path: string): Promise<number> {
  const { stdout } = await new Deno.Command("ls", { args: ["-l", `/proc/${Deno.pid}/fd`] })
    .output();
  return new TextDecoder().decode(stdout).split("\n").filter((line) => line.endsWith(` -> ${path}`))
    .length;
}

/** Counts the store's closes, and notes whether the log had said "stopped" by the first. */
function watchClose(closes: { count: number; logAtClose?: string }, logPath: string) {
  return (store: HistoryStore) => {
    const close = store.close.bind(store);
    store.close = () => {
      closes.count++;
      closes.logAtClose ??= Deno.readTextFileSync(logPath);
      return close();
    };
  };
}

Deno.test("disposing the services closes the history, then the log, once", async () => {
  await using dir = await tempDir();
  const logPath = `${dir.path}/parley.log`;
  const closes = { count: 0 } as { count: number; logAtClose?: string };
  const services = await openServices(configIn(dir.path), {
    quiet: true,
    onHistoryOpened: watchClose(closes, logPath),
  });
  services.log.info("serving");
  assert.equal(await openOn(logPath), 1);
  services.stopping = true;
  await services[Symbol.asyncDispose]();
  await services[Symbol.asyncDispose]();
  assert.equal(closes.count, 1);
  assert.equal(await openOn(logPath), 0);
  assert.doesNotMatch(closes.logAtClose!, /stopped/);
  const lines = Deno.readTextFileSync(logPath).trim().split("\n");
  assert.match(lines.at(-1)!, / info stopped$/);
  assert.equal(lines.filter((line) => line.endsWith("stopped")).length, 1);
});

Deno.test("a failure half-way through start-up closes what was opened, once", async (t) => {
  await t.step("a Redis that cannot be reached is a StartupError", async () => {
    await using dir = await tempDir();
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    closed.close();
    const closes = { count: 0 };
    const config = configIn(dir.path, { redis: `redis://127.0.0.1:${closed.addr.port}` });
    await assert.rejects(
      openServices(config, {
        quiet: true,
        onHistoryOpened: watchClose(closes, `${dir.path}/parley.log`),
      }),
      (error) => error instanceof StartupError && /cannot reach Redis/.test(error.message),
    );
    assert.equal(closes.count, 1);
    assert.equal(await openOn(`${dir.path}/parley.log`), 0, "the log is closed");
  });
  await t.step("an error of a test's hook is rethrown as it is", async () => {
    await using dir = await tempDir();
    let store: HistoryStore | undefined;
    await assert.rejects(
      openServices(configIn(dir.path), {
        quiet: true,
        onHistoryOpened: (opened) => {
          store = opened;
          throw new RangeError("hook failed");
        },
      }),
      RangeError,
    );
    // A closed store refuses to be read.
    assert.throws(() => store!.count());
    assert.equal(await openOn(`${dir.path}/parley.log`), 0, "the log is closed");
  });
  await t.step("a port in use: everything is closed and the log has no 'stopped'", async () => {
    await using dir = await tempDir();
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closes = { count: 0 };
    try {
      await assert.rejects(
        startServer(configIn(dir.path, { port: taken.addr.port }), {
          quiet: true,
          onHistoryOpened: watchClose(closes, `${dir.path}/parley.log`),
        }),
        (error) => error instanceof StartupError && /the port is in use/.test(error.message),
      );
    } finally {
      taken.close();
    }
    assert.equal(closes.count, 1);
    assert.equal(await openOn(`${dir.path}/parley.log`), 0, "the log is closed");
    assert.doesNotMatch(Deno.readTextFileSync(`${dir.path}/parley.log`), /stopped/);
  });
});

Deno.test("a server that was shut down says so last in its log", async () => {
  await using dir = await tempDir();
  const server = await startServer(configIn(dir.path), { quiet: true });
  await server.shutdown();
  await server.shutdown();
  const lines = Deno.readTextFileSync(`${dir.path}/parley.log`).trim().split("\n");
  assert.match(lines[0], / info listening on http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(lines.at(-1)!, / info stopped$/);
  assert.equal(lines.length, 2);
});
