/**
 * `deno task backup FILE` copies the history file while parley runs and publishing goes on; a
 * server started on the copy has every message acked before the backup began.
 */
import assert from "node:assert/strict";
import denoConfig from "../deno.json" with { type: "json" };
import { REPO_ROOT } from "../bench/server_process.ts";
import { historyOf, startTestServer, tempDir, TestClient, within } from "./support.ts";

/** Runs the backup task's command, as `deno task backup` would, from the repository root. */
async function runBackup(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const words = denoConfig.tasks.backup.split(/\s+/).slice(1);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...words, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/**
 * Publishes one message at a time until stopped, recording each acked id and its body;
 * `reached(n)` settles once `n` are acked.
 */
function publish(client: TestClient) {
  const acked = new Map<number, string>();
  const wanted: { count: number; resolve: () => void }[] = [];
  let stopping = false;
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const body = `message ${i}`;
      client.send({ type: "message", body, clientId: `c${i}` });
      const ack = await client.next("ack");
      acked.set(ack.id as number, body);
      for (const want of wanted) if (acked.size >= want.count) want.resolve();
    }
  })();
  // A failure is reported by stop(), not as an unhandled rejection.
  done.catch(() => {});
  return {
    acked,
    reached(count: number): Promise<void> {
      const { promise, resolve } = Promise.withResolvers<void>();
      wanted.push({ count, resolve });
      return within(promise, `${count} acks`);
    },
    stop: async () => {
      stopping = true;
      await within(done, "the publisher to stop");
    },
  };
}

Deno.test("a backup made while messages are being published restores every message acked before it", async () => {
  await using dir = await tempDir("parley-backup-");
  const historyPath = `${dir.path}/parley.db`;
  const backupPath = `${dir.path}/copy.db`;
  await Deno.writeTextFile(
    `${dir.path}/config.json`,
    JSON.stringify({ history: { path: historyPath } }),
  );
  const server = await startTestServer({
    history: { path: historyPath },
    limits: { messagesPerSecond: 100_000, burst: 100_000 },
  });
  const client = new TestClient(server.wsUrl({ room: "ops", userName: "ci" }));
  let ackedBefore: Map<number, string>;
  let backup: { code: number; stdout: string; stderr: string };
  try {
    await client.next("welcome");
    const publisher = publish(client);
    await publisher.reached(200);
    ackedBefore = new Map(publisher.acked);
    backup = await runBackup([backupPath, "--config", `${dir.path}/config.json`]);
    const after = publisher.acked.size;
    await publisher.stop();
    assert.ok(after > ackedBefore.size, "publishing went on during the backup");
  } finally {
    await client.close();
    await server.close();
  }
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(
    backup.stdout,
    /^backed up to .*copy\.db: \d+\.\d\d MiB, 1 rooms\n {2}ops: last id \d+\n$/,
  );
  const lastId = Number(/last id (\d+)/.exec(backup.stdout)![1]);
  assert.ok(lastId >= Math.max(...ackedBefore.keys()));

  const restored = await startTestServer({ history: { path: backupPath } });
  try {
    const stored = new Map((await historyOf(restored, "ops")).map((m) => [m.id, m.body]));
    assert.equal(stored.size, lastId, "the copy holds the room up to its last id, no more");
    for (const [id, body] of ackedBefore) assert.equal(stored.get(id), body, `message ${id}`);
  } finally {
    await restored.close();
  }
});

Deno.test("a backup never overwrites a file, and says what to do", async () => {
  await using dir = await tempDir("parley-backup-");
  await Deno.writeTextFile(`${dir.path}/taken.db`, "keep me");
  await Deno.writeTextFile(
    `${dir.path}/config.json`,
    JSON.stringify({ history: { path: `${dir.path}/none.db` } }),
  );
  const taken = await runBackup([`${dir.path}/taken.db`, "--config", `${dir.path}/config.json`]);
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, /^parley backup: .*taken\.db already exists; name a new file/);
  assert.equal(await Deno.readTextFile(`${dir.path}/taken.db`), "keep me");
  const missing = await runBackup([`${dir.path}/new.db`, "--config", `${dir.path}/config.json`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /there is no history file at .*none\.db; check "history.path"/);
});
