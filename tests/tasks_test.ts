/**
 * One list of what parley may do: the start task's flags. The compile task grants the same, and
 * the benchmarks and the tests' subprocesses run parley with them (`parleyRunArgs`).
 */
import assert from "node:assert/strict";
import denoConfig from "../deno.json" with { type: "json" };
import { PARLEY_FLAGS, parleyRunArgs, REPO_ROOT } from "../bench/server_process.ts";
import { ParleyProcess, tempDir } from "./support.ts";

/** The words of a task without the options that only say what to build. */
function permissionWords(task: string): string[] {
  const words = task.trim().split(/\s+/).slice(2);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i] === "--include" || words[i] === "--output") i++;
    else if (words[i] !== "main.ts") kept.push(words[i]);
  }
  return kept;
}

Deno.test("the compile task grants exactly what the start task does", () => {
  assert.deepEqual(permissionWords(denoConfig.tasks.compile), [...PARLEY_FLAGS]);
});

Deno.test("the benchmarks and tests run parley with the start task's flags", () => {
  const args = parleyRunArgs("config.json", ["--port", "0"]);
  assert.deepEqual(args.slice(1, 1 + PARLEY_FLAGS.length), [...PARLEY_FLAGS]);
  assert.ok(PARLEY_FLAGS.includes("--allow-read=."), "parley reads only below where it runs");
  assert.ok(!PARLEY_FLAGS.some((flag) => flag === "--allow-read" || flag === "-A"));
});

// `deno task` installs every package of deno.json's import map before it runs a task, so parley
// has none: npm packages are pinned where they are imported (deno.json turns off `deno lint`'s
// no-import-prefix rule for that), and Redis and jose are loaded only when configured.
Deno.test("deno task start downloads no npm package for the default server", async () => {
  await using dir = await tempDir("parley-start-");
  const denoDir = await Deno.makeTempDir({ prefix: "parley-deno-dir-" });
  try {
    await Deno.writeTextFile(
      `${dir.path}/config.json`,
      JSON.stringify({
        port: 0,
        logfilePath: `${dir.path}/parley.log`,
        history: { path: `${dir.path}/parley.db` },
      }),
    );
    const command = new Deno.Command(Deno.execPath(), {
      args: ["task", "start", "--config", `${dir.path}/config.json`],
      cwd: REPO_ROOT,
      env: { DENO_DIR: denoDir, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    await using parley = await ParleyProcess.start(dir.path, { command });
    assert.equal((await fetch(new URL("/healthz", parley.url))).status, 200);
    // Deno makes an empty npm/ at start; a package fetched would be below it.
    const npm = await Array.fromAsync(Deno.readDir(`${denoDir}/npm`)).catch(() => []);
    assert.deepEqual(npm.map((entry) => entry.name), [], "npm packages were fetched");
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
