/**
 * One list of what parley may do: the start task's flags. The compile task grants the same, and
 * the benchmarks and the tests' subprocesses run parley with them (`parleyRunArgs`).
 */
import assert from "node:assert/strict";
import denoConfig from "../deno.json" with { type: "json" };
import { PARLEY_FLAGS, parleyRunArgs } from "../bench/server_process.ts";

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
