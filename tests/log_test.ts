import { strict as assert } from "node:assert";
import { setImmediate } from "node:timers";
import { startTestServer, TestClient, type TestServer, within } from "./support.ts";
import { clientText, type Clock, Logger, RateLimitedLog } from "../chat/log.ts";

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

Deno.test("client text cannot start a line of its own: every control character is escaped", async () => {
  await withLog((log, read) => {
    // What `GET /chat?since=1%0A…` put in the log: a forged line, colours and a reversed name.
    log.error(
      'refused 127.0.0.1: since must be a message id, not "1\n2026-01-01T00:00:00.000Z info ' +
        'admin logged in\r\x1b[2J\x7f\x85\u2028\u2029\u202ename\u200b\ttab"',
    );
    const text = read();
    assert.equal(text.split("\n").length, 2, "one line and the newline that ends it");
    assert.ok(text.endsWith('tab"\n'));
    assert.ok(
      text.includes(
        '"1\\n2026-01-01T00:00:00.000Z info admin logged in\\r\\u001b[2J\\u007f\\u0085' +
          '\\u2028\\u2029\\u202ename\\u200b\\ttab"',
      ),
      text,
    );
    assert.doesNotMatch(text.slice(0, -1), /[\p{Cc}\p{Cf}\u2028\u2029]/u);
  });
});

Deno.test("the worker name and info lines are escaped as well", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new Logger(`${dir}/parley.log`, false, "worker\n1");
    log.info("open\u2028x");
    log.close();
    assert.match(await Deno.readTextFile(`${dir}/parley.log`), / info worker\\n1: open\\u2028x\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a huge line is cut: a 33 KB frame type is not logged whole", async () => {
  await withLog((log, read) => {
    log.error(`bad_frame: unknown frame type "${"t".repeat(33_000)}"`);
    const line = read();
    assert.ok(line.length < 4200, `the line is ${line.length} characters`);
    assert.match(line, /t… \(33032 characters\)\n$/);
  });
});

Deno.test("clientText quotes a client value as JSON and cuts it, saying how long it was", () => {
  assert.equal(clientText("alice"), '"alice"');
  assert.equal(clientText('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(clientText("x".repeat(100), 8), '"xxxxxxxx"… (100 characters)');
  assert.equal(clientText("1\n2\u2028\u202e\x7f"), '"1\\n2\\u2028\\u202e\\u007f"');
  // Half a surrogate pair is never shown; a lone one is escaped.
  assert.equal(clientText("ab🦊", 3), '"ab"… (4 characters)');
  assert.equal(clientText("\ud800"), '"\\ud800"');
  assert.equal(clientText(42), "42");
  assert.equal(clientText({ type: ["x"] }), '{"type":["x"]}');
  assert.equal(clientText(undefined), "undefined");
  assert.equal(clientText(10n), "10");
});

/** A clock that moves only when the test says so, with the timers set on it. */
class FakeClock implements Clock {
  time = 1_000_000;
  timers: { at: number; fn: () => void }[] = [];

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + ms, fn };
    this.timers.push(timer);
    return () => this.timers = this.timers.filter((t) => t !== timer);
  }

  /** Moves time on, running the timers that come due on the way. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
    }
    this.time = end;
  }
}

function limitedLog(options: { lines?: number; maxKeys?: number } = {}) {
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = new RateLimitedLog((line) => lines.push(line), {
    lines: 3,
    intervalMs: 10_000,
    clock,
    ...options,
  });
  return { clock, lines, log };
}

Deno.test("a flood of refusals from one address writes a few lines, then how many more", () => {
  const { clock, lines, log } = limitedLog();
  for (let i = 0; i < 815; i++) log.write("10.0.0.1", `refused 10.0.0.1: #${i}`);
  assert.deepEqual(lines, ["refused 10.0.0.1: #0", "refused 10.0.0.1: #1", "refused 10.0.0.1: #2"]);
  clock.advance(9_999);
  assert.equal(lines.length, 3, "nothing until the interval has passed");
  clock.advance(1);
  assert.deepEqual(lines.slice(3), [
    "10.0.0.1: and 812 more not logged (at most 3 lines in 10 s)",
  ]);
  assert.equal(clock.timers.length, 0, "no timer left once the summary is out");
  // The next interval starts afresh.
  log.write("10.0.0.1", "refused 10.0.0.1: later");
  assert.equal(lines.at(-1), "refused 10.0.0.1: later");
});

Deno.test("each address has its own allowance", () => {
  const { lines, log } = limitedLog({ lines: 1 });
  assert.equal(log.write("a", "a1"), true);
  assert.equal(log.write("a", "a2"), false);
  assert.equal(log.write("b", "b1"), true);
  assert.deepEqual(lines, ["a1", "b1"]);
  log.close();
  assert.deepEqual(lines, ["a1", "b1", "a: and 1 more not logged (at most 1 lines in 10 s)"]);
});

Deno.test("a line after the interval first writes the summary of the one before", () => {
  const { clock, lines, log } = limitedLog({ lines: 1 });
  log.write("a", "a1");
  log.write("a", "a2");
  log.write("a", "a3");
  // The summary timer has not fired yet (it was set at the first drop), but the window is over.
  clock.time += 10_000;
  log.write("a", "a4");
  assert.deepEqual(lines, ["a1", "a: and 2 more not logged (at most 1 lines in 10 s)", "a4"]);
  clock.advance(20_000);
  assert.equal(lines.length, 3, "no second summary for the same lines");
});

Deno.test("a flood from many addresses keeps a bounded number of keys", () => {
  const { clock, lines, log } = limitedLog({ lines: 1, maxKeys: 2 });
  for (let i = 0; i < 100; i++) log.write(`10.0.0.${i}`, `refused ${i}`);
  assert.deepEqual(lines, ["refused 0", "refused 1", "refused 2"]);
  clock.advance(10_000);
  assert.deepEqual(lines.slice(3), [
    "(other keys): and 97 more not logged (at most 1 lines in 10 s)",
  ]);
  log.write("10.0.0.50", "refused 50 later");
  assert.equal(lines.at(-1), "refused 50 later");
});

Deno.test("the logger's limited lines go to the log, and closing writes what was dropped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new Logger(`${dir}/parley.log`, false);
    for (let i = 0; i < 25; i++) log.limited("10.0.0.9", `refused 10.0.0.9: #${i}`);
    log.close();
    const lines = (await Deno.readTextFile(`${dir}/parley.log`)).trimEnd().split("\n");
    assert.equal(lines.length, 11);
    assert.match(lines[9], / error refused 10\.0\.0\.9: #9$/);
    assert.match(lines[10], / error 10\.0\.0\.9: and 15 more not logged/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The server's log so far, as lines, each of which must start with a timestamp. */
async function serverLogLines(server: TestServer): Promise<string[]> {
  const lines = (await Deno.readTextFile(`${server.dir}/parley.log`)).trimEnd().split("\n");
  for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z (info|error) /);
  return lines;
}

Deno.test("a since= with a newline in it forges no line in the server's log", async () => {
  await using server = await startTestServer();
  const forged = "1\n2026-01-01T00:00:00.000Z info admin granted to mallory";
  const client = new TestClient(server.wsUrl({ since: forged }));
  assert.equal((await client.next("error")).code, "bad_frame");
  await within(client.closed, "the refused socket to close");
  const lines = await serverLogLines(server);
  assert.ok(lines.some((line) => line.includes('not "1\\n2026-01-01T00:00:00.000Z info admin')));
});

Deno.test("a frame with a 33 KB type is refused without a 33 KB log line", async () => {
  await using server = await startTestServer();
  await using client = new TestClient(server.wsUrl({ userName: "al" }));
  await client.next("welcome");
  client.send({ type: "t".repeat(33_000) });
  assert.equal((await client.next("error")).code, "bad_frame");
  const lines = await serverLogLines(server);
  assert.ok(lines.every((line) => line.length < 4200), "no line over 4 KB");
});
