/**
 * `deno task compile` makes one binary with the page inside. Compiling needs Deno's runtime
 * (`denort`): from `DENORT_BIN` if set, else downloaded, which fails on a machine without internet;
 * then this test is skipped with the reason.
 */
import assert from "node:assert/strict";
import { ParleyProcess, tempDir, within } from "./support.ts";

const root = new URL("..", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "parley-compile-" });
const binary = `${dir}/parley`;
const task = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks.compile as string;
const args = task.replace(/^deno /, "").split(" ").map((a) => a === "parley" ? binary : a);
const compiled = await new Deno.Command(Deno.execPath(), {
  args,
  cwd: root,
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
}).output();
const output = new TextDecoder().decode(compiled.stderr);
const unavailable = !compiled.success && !Deno.env.get("DENORT_BIN") &&
  /download|dns error|error sending request|denort/i.test(output);
if (unavailable) {
  console.log(
    "compile_test skipped: deno compile could not download its runtime (denort) and DENORT_BIN " +
      "is not set; set DENORT_BIN to a denort binary of this Deno version to run it",
  );
  await Deno.remove(dir, { recursive: true });
}

Deno.test({
  name: "deno task compile makes a single binary that serves the page from inside itself",
  ignore: unavailable,
  fn: async () => {
    try {
      assert.ok(compiled.success, output);
      await using work = await tempDir("parley-binary-");
      await Deno.writeTextFile(`${work.path}/config.json`, '{"port": 0}');
      await using parley = await ParleyProcess.start(work.path, {
        command: new Deno.Command(binary, {
          cwd: work.path,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }),
      });
      const page = await fetch(parley.url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
      parley.kill("SIGTERM");
      assert.equal((await within(parley.exited, "the binary to exit")).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
