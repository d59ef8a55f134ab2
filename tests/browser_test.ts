/**
 * The chat page in a real Chromium against a real parley server: chatting, restarts, escaping,
 * CSP, keyboard use, rooms, unread counts and layout. One browser for the file, a fresh context
 * per step; every wait is on DOM state with a timeout, never a sleep. Screenshots go to
 * test-output/ (git-ignored); PARLEY_UPDATE_SCREENSHOT=1 also refreshes docs/screenshot.png.
 */
/// <reference lib="dom" />

import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "npm:playwright-core@1.65.1";
import { historyOf, joinRoom, postMessage, startTestServer, type TestServer } from "./support.ts";
import {
  chromiumMissing,
  clockTime,
  closeAll,
  createAccount,
  historyIn,
  joinWithForm,
  launchBrowser,
  listedRooms,
  notificationsOf,
  onlineUsers,
  personPage,
  RECONNECT_TIMEOUT_MS,
  recordNotifications,
  send,
  setHidden,
  shownMessages,
  submitSignIn,
  tally,
  UI_TIMEOUT_MS,
  waitForSettled,
  waitForStatus,
  waitForUsers,
  withServer,
} from "./browser.ts";

const missing = chromiumMissing();
const inCI = Deno.env.get("CI") === "true";
if (missing !== null && !inCI) console.log(`browser tests skipped: ${missing}`);

const OUTPUT = new URL("../test-output/", import.meta.url);

/** Asserts each body shows exactly once, and no id shows twice. */
async function assertShownOnce(page: Page, bodies: string[], who: string): Promise<void> {
  const shown = await shownMessages(page);
  const byBody = tally(shown.map((m) => m.body));
  for (const body of bodies) {
    assert.equal(byBody.get(body), 1, `${who} shows "${body}" ${byBody.get(body) ?? 0} times`);
  }
  const ids = shown.map((m) => m.id);
  assert.ok(ids.every((id) => id !== null), `${who} has a message without an id`);
  for (const [id, count] of tally(ids)) assert.equal(count, 1, `${who} shows id ${id} twice`);
  assert.ok(shown.every((m) => m.visible), `${who} has a hidden message element left over`);
}

Deno.test({
  name: "browser: the chat page in Chromium against a real server",
  ignore: missing !== null && !inCI,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (missing !== null) {
      throw new Error(`${missing}; CI=true, so the browser tests fail instead of being skipped`);
    }
    const browser = await launchBrowser();
    const step = (name: string, fn: () => Promise<void>) =>
      t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
    try {
      await step("two people chat in a room; a third in another room sees neither", async () => {
        const zone = "Asia/Kolkata"; // +05:30: a page that showed UTC would show the wrong time
        await withServer({}, async (server, contexts) => {
          // The room has history, as most rooms do, before the two arrive.
          const earlier = "Morning all, the standup notes are in the doc.";
          await postMessage(server, "lobby", "dana", earlier);
          const options = { timezoneId: zone, locale: "en-US" };
          const alice = await personPage(browser, contexts, options);
          const bob = await personPage(browser, contexts, options);
          const carol = await personPage(browser, contexts, options);
          await joinWithForm(alice, server, "alice", "lobby");
          await joinWithForm(bob, server, "bob", "lobby");
          await joinWithForm(carol, server, "carol", "elsewhere");
          await waitForUsers(alice, ["alice", "bob"]);
          await waitForUsers(bob, ["alice", "bob"]);

          const fromAlice = "Hi Bob! Standup in five?";
          const fromBob = "Sure, joining now.";
          const again = "See you there.";
          await send(alice, fromAlice);
          await waitForSettled(bob, [earlier, fromAlice]);
          await bob.locator("#message").fill(fromBob);
          await bob.getByRole("button", { name: "Send", exact: true }).click();
          await waitForSettled(alice, [earlier, fromAlice, fromBob]);
          await send(alice, again);
          await waitForSettled(bob, [earlier, fromAlice, fromBob, again]);
          await waitForSettled(alice, [earlier, fromAlice, fromBob, again]);

          const stored = await historyOf(server, "lobby");
          assert.deepEqual(stored.map((m) => [m.userName, m.body]), [
            ["dana", earlier],
            ["alice", fromAlice],
            ["bob", fromBob],
            ["alice", again],
          ]);
          for (const [page, me] of [[alice, "alice"], [bob, "bob"]] as const) {
            const shown = await shownMessages(page);
            assert.equal(shown.length, 4, `${me} shows ${shown.length} messages`);
            for (const [i, message] of stored.entries()) {
              const item = shown[i];
              assert.equal(item.id, String(message.id));
              assert.equal(item.body, message.body);
              assert.equal(item.author, message.userName);
              assert.equal(item.mine, message.userName === me);
              assert.equal(item.time, clockTime(message.timestamp, zone), `time in ${me}'s page`);
              assert.equal(Date.parse(item.datetime), Date.parse(message.timestamp));
            }
            assert.deepEqual(await onlineUsers(page), ["alice", "bob"]);
          }

          // Carol's room heard nothing: her own message arrives, and it is all she has.
          await send(carol, "Anyone here?");
          await waitForSettled(carol, ["Anyone here?"]);
          const carolSees = await shownMessages(carol);
          assert.deepEqual(carolSees.map((m) => m.body), ["Anyone here?"]);
          assert.deepEqual(await onlineUsers(carol), ["carol"]);
          assert.deepEqual(await onlineUsers(alice), ["alice", "bob"]);
          assert.equal((await shownMessages(alice)).length, 4);
        });
      });

      await step(
        "a server restart: reconnecting, back by itself, nothing lost or doubled",
        async () => {
          const dir = await Deno.makeTempDir({ prefix: "parley-browser-" });
          const history = { path: `${dir}/parley.db` };
          const contexts: BrowserContext[] = [];
          let first: TestServer | null = null;
          let second: TestServer | null = null;
          try {
            first = await startTestServer({ history });
            const room = "standup";
            const alice = await personPage(browser, contexts);
            const bob = await personPage(browser, contexts);
            await alice.goto(new URL(`/?room=${room}&userName=alice`, first.url).href);
            await bob.goto(new URL(`/?room=${room}&userName=bob`, first.url).href);
            await waitForStatus(alice, "online");
            await waitForStatus(bob, "online");
            await send(alice, "before the restart");
            await waitForSettled(bob, ["before the restart"]);
            await waitForSettled(alice, ["before the restart"]);

            await first.shutdown();
            await waitForStatus(alice, "reconnecting");
            await waitForStatus(bob, "reconnecting");
            await alice.locator("#status").filter({ hasText: /reconnecting/ }).waitFor({
              timeout: UI_TIMEOUT_MS,
            });

            const offline = ["typed while the server was down", "and a second one"];
            for (const body of offline) await send(alice, body);
            const waiting = (await shownMessages(alice)).filter((m) => m.pending);
            assert.deepEqual(waiting.map((m) => m.body), offline);
            assert.ok(waiting.every((m) => m.state === "sending…" && m.id === null));

            second = await startTestServer({ port: first.port, history });
            // No nudging: the page's own backoff brings it back.
            await waitForStatus(alice, "online", RECONNECT_TIMEOUT_MS);
            await waitForStatus(bob, "online", RECONNECT_TIMEOUT_MS);
            const all = ["before the restart", ...offline];
            await waitForSettled(alice, all);
            await waitForSettled(bob, all);
            await waitForUsers(bob, ["alice", "bob"]);
            // And the conversation carries on live, both ways.
            await send(alice, "all back?");
            await waitForSettled(bob, [...all, "all back?"]);
            await send(bob, "yes, all here");
            await waitForSettled(alice, [...all, "all back?", "yes, all here"]);
            all.push("all back?", "yes, all here");

            const stored = await historyOf(second, room);
            assert.deepEqual(stored.map((m) => m.body), all, "each message stored exactly once");
            for (const [page, who] of [[alice, "alice"], [bob, "bob"]] as const) {
              await assertShownOnce(page, all, who);
              const shown = await shownMessages(page);
              assert.deepEqual(shown.map((m) => m.id), stored.map((m) => String(m.id)));
            }
          } finally {
            await closeAll(contexts);
            await second?.close();
            await first?.close();
            await Deno.remove(dir, { recursive: true });
          }
        },
      );

      await step("“sending…” until acked; a notice when history is incomplete", async () => {
        const dir = await Deno.makeTempDir({ prefix: "parley-browser-" });
        const path = `${dir}/parley.db`;
        const contexts: BrowserContext[] = [];
        const servers: TestServer[] = [];
        try {
          const room = "retention";
          const first = await startTestServer({ history: { path } });
          servers.push(first);
          await postMessage(first, room, "bob", "one");
          await postMessage(first, room, "bob", "two");
          const alice = await personPage(browser, contexts);
          await alice.goto(new URL(`/?room=${room}&userName=alice`, first.url).href);
          await waitForSettled(alice, ["one", "two"]);

          await first.shutdown();
          await waitForStatus(alice, "reconnecting");
          await send(alice, "am I through?");
          const pending = alice.locator("#messages .message.pending", { hasText: "am I through?" });
          await pending.locator(".state", { hasText: "sending…" }).waitFor({
            timeout: UI_TIMEOUT_MS,
          });

          // While the page is away, more than the room keeps is said (on another port, so the
          // page cannot slip in between): the page's `since` now points below the oldest kept.
          const retention = { path, maxMessagesPerRoom: 5 };
          const gap = await startTestServer({ history: retention });
          servers.push(gap);
          const said = ["three", "four", "five", "six", "seven", "eight", "nine", "ten"];
          for (const body of said) await postMessage(gap, room, "bob", body);
          await gap.shutdown();

          const second = await startTestServer({ port: first.port, history: retention });
          servers.push(second);
          await waitForStatus(alice, "online", RECONNECT_TIMEOUT_MS);
          await alice.locator("#notice.visible", { hasText: /incomplete/i }).waitFor({
            timeout: UI_TIMEOUT_MS,
          });
          // The pending message resolves: acked, shown once, with an id, no longer "sending…".
          // The room keeps five: the page's own message pushed "six" out.
          const kept = ["seven", "eight", "nine", "ten", "am I through?"];
          await waitForSettled(alice, kept);
          await assertShownOnce(alice, kept, "alice");
          const shown = await shownMessages(alice);
          assert.ok(!shown.some((m) => m.pending || m.state.includes("sending")));
          const stored = await historyOf(second, room);
          assert.deepEqual(stored.map((m) => m.body), kept);
          // The page reloaded the newest history; "six" shows too if that read beat the send.
          const bodies = shown.map((m) => m.body);
          assert.deepEqual(bodies[0] === "six" ? bodies.slice(1) : bodies, kept);
        } finally {
          await closeAll(contexts);
          for (const server of servers.reverse()) await server.close();
          await Deno.remove(dir, { recursive: true });
        }
      });

      await step("own messages and refusals are matched by clientId, not guessed", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          const room = "matching";
          const bodies = ["one, settled by its echo", "two, refused", "three, settled too"];
          let refusing: string | null = bodies[1];
          const refusedIds: string[] = [];
          // Between the page and the server: no ack reaches the page, so only a message event's
          // clientId can settle a pending copy; and the middle message is refused with an error
          // naming its clientId, as the server answers a message it will not take.
          await page.routeWebSocket(/\/chat\?/, (ws) => {
            const upstream = ws.connectToServer();
            ws.onMessage((frame) => {
              const command = JSON.parse(String(frame));
              if (command.body !== refusing) return upstream.send(frame);
              refusedIds.push(command.clientId);
              ws.send(JSON.stringify({
                type: "error",
                code: "rate_limited",
                message: "slow down: this one was not sent",
                clientId: command.clientId,
              }));
            });
            upstream.onMessage((frame) => {
              const lines = String(frame).split("\n");
              const kept = lines.filter((line) => JSON.parse(line).type !== "ack");
              if (kept.length > 0) ws.send(kept.join("\n"));
            });
          });
          await page.goto(new URL(`/?room=${room}&userName=alice`, server.url).href);
          await waitForStatus(page, "online");
          for (const body of bodies) await send(page, body);

          const failed = page.locator("#messages .message.failed", { hasText: bodies[1] });
          await failed.locator(".state", { hasText: "not sent — sending too fast" }).waitFor();
          for (const body of [bodies[0], bodies[2]]) {
            await page.locator("#messages .message[data-id]", { hasText: body }).waitFor();
          }
          await page.locator("#notice.visible", { hasText: "slow down" }).waitFor();
          const shown = await shownMessages(page);
          assert.deepEqual(shown.map((m) => [m.body, m.outgoing]), [
            [bodies[0], false],
            [bodies[2], false],
            [bodies[1], true],
          ]);
          assert.equal(refusedIds.length, 1);
          assert.equal(shown[2].clientId, refusedIds[0], "the failed copy is the refused one");
          const stored = await historyOf(server, room);
          assert.deepEqual(stored.map((m) => m.body), [bodies[0], bodies[2]]);
          // Settled by the message event: the server's time at once, nothing provisional.
          for (const [i, message] of stored.entries()) {
            assert.equal(shown[i].id, String(message.id));
            assert.equal(Date.parse(shown[i].datetime), Date.parse(message.timestamp));
          }

          refusing = null;
          await failed.getByRole("button", { name: "Retry" }).click();
          const all = [bodies[0], bodies[2], bodies[1]];
          await waitForSettled(page, all);
          await assertShownOnce(page, all, "alice");
          assert.deepEqual((await historyOf(server, room)).map((m) => m.body), all);
        });
      });

      await step("the size limit comes from the welcome; too long is never sent", async () => {
        await withServer({ limits: { maxMessageBytes: 40 } }, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          const framesSent: string[] = [];
          page.on("websocket", (socket) => {
            socket.on("framesent", (frame) => framesSent.push(String(frame.payload)));
          });
          await page.goto(new URL("/?room=sizes&userName=alice", server.url).href);
          await waitForStatus(page, "online");
          const tooLong = "é".repeat(21); // 21 characters, 42 bytes: under 4096, over 40
          await send(page, tooLong);
          const failed = page.locator("#messages .message.failed", { hasText: tooLong });
          await failed.locator(".state", { hasText: "not sent — too long" }).waitFor();
          await page.locator("#notice.visible", { hasText: "42 bytes; the limit is 40" })
            .waitFor();
          await send(page, "short enough");
          await page.locator("#messages .message[data-id]", { hasText: "short enough" })
            .waitFor();
          assert.ok(!framesSent.some((f) => f.includes(tooLong)), "the long body was sent");

          await failed.getByRole("button", { name: "Edit" }).click();
          const box = page.locator("#message");
          assert.equal(await box.inputValue(), tooLong);
          await box.fill("é".repeat(20));
          await box.press("Enter");
          await waitForSettled(page, ["short enough", "é".repeat(20)]);
          assert.deepEqual((await historyOf(server, "sizes")).map((m) => m.body), [
            "short enough",
            "é".repeat(20),
          ]);
        });
      });

      await step("HTML in a message is shown as text and runs nothing", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          const dialogs: string[] = [];
          const requested: string[] = [];
          page.on("dialog", (dialog) => {
            dialogs.push(dialog.message());
            dialog.dismiss().catch(() => {});
          });
          page.on("request", (request) => requested.push(new URL(request.url()).pathname));
          await page.goto(new URL("/?room=xss&userName=mallory", server.url).href);
          await waitForStatus(page, "online");
          const img = "<img src=x onerror=alert(1)>";
          const script = "<script>alert(2)</script><b onmouseover=alert(3)>bold?</b>";
          await postMessage(server, "xss", "eve", img);
          await send(page, script);
          await waitForSettled(page, [img, script]);
          // A round trip after them: had an <img> been created, its request for /x and its
          // onerror would have happened by now.
          await send(page, "after");
          await waitForSettled(page, ["after"]);
          const bodies = await page.locator("#messages .body").evaluateAll((els) =>
            els.map((el) => ({ text: el.textContent, children: el.childElementCount }))
          );
          assert.deepEqual(bodies, [
            { text: img, children: 0 },
            { text: script, children: 0 },
            { text: "after", children: 0 },
          ]);
          assert.equal(
            await page.locator("#messages img, #messages script, #messages b").count(),
            0,
          );
          assert.deepEqual(dialogs, [], "a dialog opened");
          assert.ok(!requested.includes("/x"), `the page requested /x: ${requested}`);
        });
      });

      await step("links and code render as elements; nothing else in a body is HTML", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          await page.goto(new URL("/?room=text&userName=kim", server.url).href);
          await waitForStatus(page, "online");
          const link = "Docs at https://deno.com/manual (see `deno task test`).";
          const block =
            "Run this:\n```sh\ncurl http://127.0.0.1:8080/healthz\n<b>x</b>\n```\nthen wait.";
          const sneaky = 'javascript:alert(1) and <a href="https://evil.example">a link</a>';
          await postMessage(server, "text", "lee", link);
          await postMessage(server, "text", "lee", block);
          await send(page, sneaky);
          await waitForSettled(page, [
            "Docs at https://deno.com/manual (see deno task test).", // code shows without its backticks
            "Run this:curl http://127.0.0.1:8080/healthz\n<b>x</b>then wait.",
            sneaky,
          ]);
          const bodies = await page.locator("#messages .body").evaluateAll((els) =>
            els.map((el) => ({
              children: Array.from(el.children, (child) => ({
                tag: child.tagName.toLowerCase(),
                text: child.textContent,
                href: child.getAttribute("href"),
                rel: child.getAttribute("rel"),
                target: child.getAttribute("target"),
                elements: child.childElementCount,
              })),
            }))
          );
          const none = { href: null, rel: null, target: null, elements: 0 };
          assert.deepEqual(bodies, [
            {
              children: [
                {
                  tag: "a",
                  text: "https://deno.com/manual",
                  href: "https://deno.com/manual",
                  rel: "noopener noreferrer",
                  target: "_blank",
                  elements: 0,
                },
                { tag: "code", text: "deno task test", ...none },
              ],
            },
            {
              children: [{
                tag: "pre",
                text: "curl http://127.0.0.1:8080/healthz\n<b>x</b>",
                ...none,
              }],
            },
            // The text around a link stays text: no <a> from markup, none for javascript:.
            {
              children: [{
                tag: "a",
                text: "https://evil.example",
                href: "https://evil.example/",
                rel: "noopener noreferrer",
                target: "_blank",
                elements: 0,
              }],
            },
          ]);
          assert.equal(
            await page.locator("#messages .body").nth(2).textContent(),
            sneaky,
            "every character of the body is shown",
          );
          assert.equal(await page.locator("#messages b, #messages [onclick]").count(), 0);
          // The link opens in a new tab, with no way back to this page (and goes nowhere real).
          await page.context().route(
            "https://deno.com/**",
            (route) => route.fulfill({ body: "" }),
          );
          const [popup] = await Promise.all([
            page.context().waitForEvent("page"),
            page.locator("#messages a", { hasText: "deno.com" }).click({ modifiers: [] }),
          ]);
          assert.equal(await popup.evaluate(() => globalThis.opener), null);
          await popup.close();
        });
      });

      await step("loads nothing from elsewhere; the CSP stops inline script", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          const urls: string[] = [];
          page.on("request", (request) => urls.push(request.url()));
          page.on("websocket", (socket) => urls.push(socket.url()));
          const response = await page.goto(server.url.href);
          assert.ok(response?.ok());
          const csp = (await response!.allHeaders())["content-security-policy"] ?? "";
          const directives = new Map(
            csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]),
          );
          const scriptSrc = directives.get("script-src") ?? directives.get("default-src");
          assert.ok(scriptSrc, `no script-src in the CSP: ${csp}`);
          assert.deepEqual(scriptSrc, ["'self'"], `script-src is ${scriptSrc}`);
          assert.ok(!csp.includes("'unsafe-inline'"), csp);

          await page.locator("#name").fill("quinn");
          await page.locator("#join").click();
          await waitForStatus(page, "online");
          await send(page, "hello");
          await waitForSettled(page, ["hello"]);

          const outcome = await page.evaluate(() =>
            new Promise<{ ran: boolean; directive: string }>((resolve) => {
              const w = globalThis as unknown as { inlineRan?: boolean };
              document.addEventListener("securitypolicyviolation", (event) => {
                resolve({ ran: w.inlineRan === true, directive: event.effectiveDirective });
              }, { once: true });
              const el = document.createElement("script");
              el.textContent = "window.inlineRan = true;";
              document.head.append(el);
              if (w.inlineRan === true) resolve({ ran: true, directive: "" });
            })
          );
          assert.deepEqual(outcome, { ran: false, directive: "script-src-elem" });

          const origin = server.url.origin;
          assert.ok(urls.length >= 4, `only ${urls.length} requests seen: ${urls}`);
          for (const url of urls) {
            const parsed = new URL(url);
            const http = new URL(parsed.href.replace(/^ws/, "http"));
            assert.equal(http.origin, origin, `the page loaded ${url}`);
          }
          assert.ok(urls.some((url) => url.startsWith("ws:")), "no WebSocket seen");
        });
      });

      await step("keyboard only, and every control has an accessible name", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          await page.goto(server.url.href);
          await assertNamedControls(page);
          const active = () => page.evaluate(() => document.activeElement?.id ?? "");
          assert.equal(await active(), "name");
          await page.keyboard.type("kim");
          await page.keyboard.press("Tab");
          assert.equal(await active(), "room");
          await page.keyboard.press("ControlOrMeta+A");
          await page.keyboard.type("keys");
          await page.keyboard.press("Tab");
          assert.equal(await active(), "join");
          await page.keyboard.press("Enter");
          await waitForStatus(page, "online");
          assert.equal(await active(), "message");
          assert.equal(await page.locator("#room-name").textContent(), "keys");

          await page.keyboard.type("sent with Enter");
          await page.keyboard.press("Enter");
          await waitForSettled(page, ["sent with Enter"]);
          const box = page.getByRole("textbox", { name: "Message", exact: true });
          assert.equal(await box.inputValue(), "");

          await page.keyboard.type("line one");
          await page.keyboard.press("Shift+Enter");
          await page.keyboard.type("line two");
          assert.equal(await box.inputValue(), "line one\nline two");
          assert.equal(await page.locator("#messages .message").count(), 1);
          await page.keyboard.press("Enter");
          await waitForSettled(page, ["line one\nline two"]);
          assert.equal(await box.inputValue(), "");
          // Shift+Enter sent nothing: the server has exactly the two messages sent with Enter.
          const stored = await historyOf(server, "keys");
          assert.deepEqual(stored.map((m) => m.body), ["sent with Enter", "line one\nline two"]);

          await assertNamedControls(page);
          await box.waitFor({ timeout: UI_TIMEOUT_MS });
          await page.getByRole("button", { name: "Send", exact: true }).waitFor();
          await page.getByRole("textbox", { name: "Switch room", exact: true }).waitFor();
          await page.getByRole("log", { name: "Chat history" }).waitFor();
        });
      });

      await step(
        "/?room=ops&userName=alice joins directly, and the name is remembered",
        async () => {
          await withServer({}, async (server, contexts) => {
            const page = await personPage(browser, contexts);
            await page.goto(new URL("/?room=ops&userName=alice", server.url).href);
            await waitForStatus(page, "online");
            assert.ok(await page.locator("#join-view").isHidden());
            assert.ok(await page.locator("#chat-view").isVisible());
            assert.equal(await page.locator("#room-name").textContent(), "ops");
            assert.equal(await page.locator("#me").textContent(), "alice");
            await waitForUsers(page, ["alice"]);
            assert.match(await page.title(), /#ops/);
            const rooms = await (await fetch(new URL("/rooms", server.url))).json();
            assert.deepEqual(rooms, [{ room: "ops", users: 1, lastId: 0 }]);

            const again = await page.context().newPage();
            await again.goto(server.url.href);
            await again.locator("#join-form").waitFor({ timeout: UI_TIMEOUT_MS });
            assert.equal(await again.locator("#name").inputValue(), "alice");
            assert.equal(await again.locator("#room").inputValue(), "lobby");
            assert.ok(await again.locator("#chat-view").isHidden());
          });
        },
      );

      await step("switching rooms keeps the page and shows the new room's history", async () => {
        await withServer({}, async (server, contexts) => {
          await postMessage(server, "lobby", "bob", "lobby chatter");
          await postMessage(server, "garden", "bob", "the tomatoes are in");
          await postMessage(server, "garden", "carol", "photos please");
          const page = await personPage(browser, contexts);
          await joinWithForm(page, server, "dana", "lobby");
          await waitForSettled(page, ["lobby chatter"]);
          await page.evaluate(() => Object.assign(globalThis, { parleyMarker: "still here" }));

          await page.locator("#switch-room").fill("garden");
          await page.locator("#switch-button").click();
          await page.locator("#room-name", { hasText: /^garden$/ }).waitFor({
            timeout: UI_TIMEOUT_MS,
          });
          await waitForStatus(page, "online");
          await waitForSettled(page, ["the tomatoes are in", "photos please"]);
          const bodies = (await shownMessages(page)).map((m) => m.body);
          assert.deepEqual(bodies, ["the tomatoes are in", "photos please"]);
          const kept = await page.evaluate(() => ({
            marker: (globalThis as unknown as { parleyMarker?: string }).parleyMarker,
            navigations: performance.getEntriesByType("navigation").length,
            room: new URL(location.href).searchParams.get("room"),
          }));
          assert.deepEqual(kept, { marker: "still here", navigations: 1, room: "garden" });
          assert.match(await page.title(), /#garden/);

          await send(page, "on my way");
          await waitForSettled(page, ["on my way"]);
          assert.deepEqual((await historyOf(server, "garden")).map((m) => m.body), [
            "the tomatoes are in",
            "photos please",
            "on my way",
          ]);
          assert.deepEqual((await historyOf(server, "lobby")).map((m) => m.body), [
            "lobby chatter",
          ]);
        });
      });

      await step("an unread count in the title while the tab is hidden", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          await page.goto(new URL("/?room=unread&userName=erin", server.url).href);
          await waitForStatus(page, "online");
          assert.equal(await page.title(), "#unread — parley");
          await using bob = (await joinRoom(server, { room: "unread", userName: "bob" })).client;
          await waitForUsers(page, ["bob", "erin"]);

          await setHidden(page, true);
          for (const body of ["ping", "ping again", "are you there?"]) {
            bob.send({ type: "message", body, clientId: crypto.randomUUID() });
          }
          await bob.waitFor("ack", 3);
          await waitForSettled(page, ["ping", "ping again", "are you there?"]);
          await page.waitForFunction(() => document.title.startsWith("(3) "), null, {
            timeout: UI_TIMEOUT_MS,
          });
          assert.equal(await page.title(), "(3) #unread — parley");
          // Our own messages are not unread.
          await send(page, "back in a minute");
          await waitForSettled(page, ["back in a minute"]);
          assert.equal(await page.title(), "(3) #unread — parley");

          await setHidden(page, false);
          await page.waitForFunction(() => document.title === "#unread — parley", null, {
            timeout: UI_TIMEOUT_MS,
          });
        });
      });

      await step("layout on a phone and a desktop, light and dark", async () => {
        await Deno.mkdir(OUTPUT, { recursive: true });
        await withServer({}, async (server) => {
          const room = "design-review";
          const conversation: [string, string][] = [
            ["bob", "Morning! I pushed the new onboarding flow to staging."],
            ["alice", "Nice — looking at it now."],
            ["alice", "The second step feels long. Could we split the profile form in two?"],
            ["bob", "Good call. I'll move avatar + bio to a separate step."],
            [
              "bob",
              "Also: the copy on the welcome screen still says “beta”. Should we drop that " +
              "before Thursday's release, or keep it until the metrics look stable?",
            ],
            ["alice", "Drop it. Ship Thursday."],
          ];
          for (const [who, body] of conversation) await postMessage(server, room, who, body);
          const bodies = conversation.map(([, body]) => body);
          await using bob = (await joinRoom(server, { room, userName: "bob" })).client;
          const sizes = [
            { name: "phone", viewport: { width: 390, height: 844 }, isMobile: true, scale: 2 },
            { name: "desktop", viewport: { width: 1280, height: 800 }, isMobile: false, scale: 1 },
          ];
          for (const size of sizes) {
            for (const scheme of ["light", "dark"] as const) {
              const contexts: BrowserContext[] = [];
              try {
                const page = await personPage(browser, contexts, {
                  viewport: size.viewport,
                  isMobile: size.isMobile,
                  hasTouch: size.isMobile,
                  deviceScaleFactor: size.scale,
                  colorScheme: scheme,
                  reducedMotion: "reduce",
                });
                await page.goto(new URL(`/?room=${room}&userName=alice`, server.url).href);
                await waitForStatus(page, "online");
                await waitForSettled(page, bodies);
                await waitForUsers(page, ["alice", "bob"]);
                await page.locator("#message").fill("Sounds good, ship it");
                const label = `${size.name}-${scheme}`;
                const shot = new URL(`chat-${label}.png`, OUTPUT);
                await page.screenshot({ path: shot.pathname });
                if (size.name === "desktop" && scheme === "light") {
                  if (Deno.env.get("PARLEY_UPDATE_SCREENSHOT") === "1") {
                    await Deno.copyFile(shot, new URL("../docs/screenshot.png", import.meta.url));
                  }
                }
                await assertLayout(page, label, size.name === "desktop", scheme);
              } finally {
                await closeAll(contexts);
              }
            }
          }
          assert.equal(bob.socket.readyState, WebSocket.OPEN);
        });
      });
    } finally {
      await browser.close();
    }
  },
});

const ADMIN_PASSWORD = "admin-password-1";
const BOB_PASSWORD = "bob-password-22";
const ACCOUNTS = { auth: { mode: "accounts" } };

/** The admin made with the setup link in `page`, signed in and online in the lobby. */
async function setUpAdmin(page: Page, server: TestServer): Promise<void> {
  await createAccount(page, server.setupLink!.href, "Admin", ADMIN_PASSWORD);
}

/** An invite link the admin signed in on `admin` makes with the API (not the dialog). */
function inviteLink(admin: Page): Promise<string> {
  return admin.evaluate(async () => {
    const response = await fetch("/api/invites", { method: "POST" });
    return (await response.json()).url;
  });
}

/** Waits for the notice to say `text`. */
async function waitForNotice(page: Page, text: RegExp): Promise<void> {
  await page.locator("#notice.visible", { hasText: text }).waitFor({ timeout: UI_TIMEOUT_MS });
}

/** Opens a room of the sidebar's list by its label. */
async function openListed(page: Page, list: "rooms" | "direct-rooms", label: string) {
  await page.locator(`#${list} button`, { hasText: new RegExp(`^${label}$`) }).click();
  await page.locator("#room-name", { hasText: new RegExp(`^${label}$`) }).waitFor();
  await waitForStatus(page, "online");
}

/** Opens the actions of `name` in the online list and runs the one labelled `action`. */
async function actOn(page: Page, name: string, action: string): Promise<void> {
  const person = page.locator("#users .person", { hasText: new RegExp(`^${name}$`) });
  if (await person.getAttribute("aria-expanded") !== "true") await person.click();
  await page.getByRole("button", { name: `${action} ${name}`, exact: true }).click();
}

Deno.test({
  name: "browser: accounts in Chromium against a real server",
  ignore: missing !== null && !inCI,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (missing !== null) {
      throw new Error(`${missing}; CI=true, so the browser tests fail instead of being skipped`);
    }
    const browser = await launchBrowser();
    const step = (name: string, fn: () => Promise<void>) =>
      t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
    try {
      await step("the setup link makes the admin; signing out and in again", async () => {
        await withServer(ACCOUNTS, async (server, contexts) => {
          const admin = await personPage(browser, contexts);
          await admin.goto(server.setupLink!.href);
          await admin.locator("#account-form").waitFor();
          assert.match(await admin.locator("#account-intro").textContent() ?? "", /admin/);
          const hint = admin.locator("#account-password-hint");
          assert.equal(await hint.textContent(), "At least 10 characters.");
          assert.ok(await admin.locator("#join-form").isHidden(), "the open form is shown");
          await assertNamedControls(admin);

          // A short password is refused by the page, saying why, before the server sees it.
          await admin.locator("#account-name").fill("Admin");
          await admin.locator("#account-password").fill("short");
          await admin.locator("#account-submit").click();
          await admin.locator("#account-error", { hasText: "at least 10 characters" }).waitFor();
          assert.equal(
            await admin.locator("#account-password").getAttribute("aria-invalid"),
            "true",
          );
          assert.equal(
            await admin.evaluate(() => document.activeElement?.id),
            "account-password",
          );

          await admin.locator("#account-password").fill(ADMIN_PASSWORD);
          await admin.locator("#account-password").press("Enter");
          await waitForStatus(admin, "online");
          // In the chat under the account's name; the one-time token is out of the address bar.
          assert.equal(await admin.locator("#me").textContent(), "Admin");
          assert.ok(await admin.locator("#join-view").isHidden());
          const address = new URL(admin.url());
          assert.equal(address.pathname, "/");
          assert.equal(address.searchParams.get("token"), null);
          assert.equal(address.searchParams.get("room"), "lobby");
          assert.ok(await admin.locator("#sign-out").isVisible());
          assert.ok(await admin.locator("#invite").isVisible(), "an admin can invite");
          assert.ok(await admin.locator("#leave").isHidden());
          assert.deepEqual(await listedRooms(admin), { rooms: ["lobby"], direct: [] });
          await send(admin, "First!");
          await waitForSettled(admin, ["First!"]);

          // A reload keeps the session: straight to the chat, no form.
          await admin.reload();
          await waitForStatus(admin, "online");
          await waitForSettled(admin, ["First!"]);
          assert.equal(await admin.locator("#me").textContent(), "Admin");

          await admin.getByRole("button", { name: "Sign out" }).click();
          await admin.locator("#signin-form").waitFor();
          assert.ok(await admin.locator("#chat-view").isHidden());
          assert.equal(await admin.locator("#signin-name").inputValue(), "Admin");
          const me = await admin.evaluate(async () => (await fetch("/api/me")).status);
          assert.equal(me, 401, "signing out ended the session");

          await submitSignIn(admin, "Admin", "not the password");
          await admin.locator("#signin-error", { hasText: /^Wrong name or password\.$/ })
            .waitFor();
          assert.equal(await admin.locator("#signin-password").inputValue(), "not the password");
          await submitSignIn(admin, "admin", ADMIN_PASSWORD);
          await waitForStatus(admin, "online");
          assert.equal(await admin.locator("#me").textContent(), "Admin");
          await waitForSettled(admin, ["First!"]);

          // Another visitor of / is asked to sign in, and the setup link, used, says so.
          const stranger = await personPage(browser, contexts);
          await stranger.goto(server.url.href);
          await stranger.locator("#signin-form").waitFor();
          assert.ok(await stranger.locator("#join-form").isHidden());
          await stranger.goto(server.setupLink!.href);
          await stranger.locator("#account-name").fill("mallory");
          await stranger.locator("#account-password").fill("mallory-password");
          await stranger.locator("#account-submit").click();
          await stranger.locator("#signin-error", { hasText: "has its admin already" }).waitFor();
        });
      });

      await step(
        "an invite, joined in a second browser; a private room; a direct message; removal",
        async () => {
          await withServer(ACCOUNTS, async (server, contexts) => {
            const admin = await personPage(browser, contexts, {
              permissions: ["clipboard-read", "clipboard-write"],
            });
            await setUpAdmin(admin, server);

            // "Invite people": a link, copied, and shown selected for copying by hand.
            await admin.getByRole("button", { name: "Invite people" }).click();
            await admin.locator("#invite-status", { hasText: "Copied to the clipboard." })
              .waitFor();
            const field = admin.locator("#invite-link");
            const link = await field.inputValue();
            assert.match(link, new RegExp(`^${server.url.origin}/join/[\\w-]{20,}$`));
            assert.equal(await admin.evaluate(() => navigator.clipboard.readText()), link);
            const selected = await field.evaluate((el: HTMLInputElement) =>
              el.value.slice(el.selectionStart ?? 0, el.selectionEnd ?? 0)
            );
            assert.equal(selected, link);
            assert.match(await admin.locator("#invite-help").textContent() ?? "", /works once/);
            await admin.getByRole("button", { name: "Done" }).click();
            await admin.locator("#invite-dialog").waitFor({ state: "hidden" });

            const bob = await personPage(browser, contexts);
            await bob.goto(link);
            await bob.locator("#account-form").waitFor();
            assert.match(await bob.locator("#account-intro").textContent() ?? "", /invited/);
            await bob.locator("#account-name").fill("ADMIN");
            await bob.locator("#account-password").fill(BOB_PASSWORD);
            await bob.locator("#account-submit").click();
            await bob.locator("#account-error", { hasText: "is taken" }).waitFor();
            await createAccount(bob, link, "bob", BOB_PASSWORD);
            assert.equal(await bob.locator("#me").textContent(), "bob");
            assert.equal(new URL(bob.url()).pathname, "/", "the invite's code left the URL");
            assert.ok(await bob.locator("#invite").isHidden(), "bob is no admin");

            await waitForUsers(admin, ["Admin", "bob"]);
            await waitForUsers(bob, ["Admin", "bob"]);
            await send(admin, "Welcome, bob!");
            await waitForSettled(bob, ["Welcome, bob!"]);
            await send(bob, "Thanks!");
            await waitForSettled(admin, ["Welcome, bob!", "Thanks!"]);
            assert.deepEqual(await historyIn(admin, "lobby"), [
              { userName: "Admin", body: "Welcome, bob!" },
              { userName: "bob", body: "Thanks!" },
            ]);

            await privateRoom(admin, bob);
            await directMessage(admin, bob);
            await removal(admin, bob);
          });
        },
      );

      await step("a ban, an ended session and too many sign-ins: said, and no loop", async () => {
        const dir = await Deno.makeTempDir({ prefix: "parley-browser-" });
        const config = { ...ACCOUNTS, history: { path: `${dir}/parley.db` } };
        const contexts: BrowserContext[] = [];
        const servers: TestServer[] = [];
        try {
          const first = await startTestServer(config);
          servers.push(first);
          const admin = await personPage(browser, contexts);
          await setUpAdmin(admin, first);
          const bob = await personPage(browser, contexts);
          await createAccount(bob, await inviteLink(admin), "bob", BOB_PASSWORD);
          await waitForUsers(admin, ["Admin", "bob"]);
          const sockets: string[] = [];
          bob.on("websocket", (socket) => sockets.push(socket.url()));

          await actOn(admin, "bob", "Ban");
          await admin.locator("#confirm-dialog").waitFor();
          assert.equal(await admin.locator("#confirm-title").textContent(), "Ban bob?");
          await admin.getByRole("button", { name: "Cancel" }).click();
          await admin.locator("#confirm-dialog").waitFor({ state: "hidden" });
          await actOn(admin, "bob", "Ban");
          await admin.locator("#confirm-ok").click();
          await waitForNotice(admin, /bob is banned/);
          // bob's socket is closed with 1008 "banned": back to signing in, saying why.
          await bob.locator("#signin-error", { hasText: "This account has been banned" })
            .waitFor();
          assert.ok(await bob.locator("#chat-view").isHidden());
          await waitForUsers(admin, ["Admin"]);
          await submitSignIn(bob, "bob", BOB_PASSWORD);
          await bob.locator("#signin-error", { hasText: "This account is banned" }).waitFor();
          assert.deepEqual(sockets, [], "the banned page opened a socket again");

          // The session ends while the server is away: the page, reconnecting, is refused
          // (401 on the upgrade) and asks to sign in again instead of trying for ever.
          await first.shutdown();
          await waitForStatus(admin, "reconnecting");
          await admin.context().clearCookies();
          const second = await startTestServer({ ...config, port: first.port });
          servers.push(second);
          await admin.locator("#signin-error", { hasText: "Your session has ended" }).waitFor({
            timeout: RECONNECT_TIMEOUT_MS,
          });
          assert.ok(await admin.locator("#chat-view").isHidden());

          // Ten wrong passwords from this address: the eleventh try is told how long to wait.
          for (let i = 0; i < 10; i++) {
            const response = await fetch(new URL("/api/session", second.url), {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ userName: "Admin", password: `wrong-${i}` }),
            });
            assert.equal(response.status, 401);
            await response.body?.cancel();
          }
          await submitSignIn(admin, "Admin", ADMIN_PASSWORD);
          await admin.locator("#signin-error", {
            hasText: /^Too many failed sign-ins; try again in \d+ s\.$/,
          }).waitFor();
        } finally {
          await closeAll(contexts);
          for (const server of servers.reverse()) await server.close().catch(() => {});
          await Deno.remove(dir, { recursive: true });
        }
      });

      await step("without accounts, a setup or invite link shows the open form", async () => {
        await withServer({}, async (server, contexts) => {
          const page = await personPage(browser, contexts);
          for (const path of ["/setup?token=abc", "/join/abc"]) {
            await page.goto(new URL(path, server.url).href);
            await page.locator("#join-error", { hasText: "This server has no accounts" })
              .waitFor();
            assert.ok(await page.locator("#join-form").isVisible());
            assert.ok(await page.locator("#account-form").isHidden());
            assert.equal(new URL(page.url()).pathname, "/", "the link stays in the URL");
          }
          await page.locator("#name").fill("quinn");
          await page.locator("#join").click();
          await waitForStatus(page, "online");
          assert.ok(await page.locator("#rooms-section").isHidden(), "a room list in open mode");
          assert.ok(await page.locator("#leave").isVisible());
          assert.ok(await page.locator("#sign-out").isHidden());
        });
      });

      await step(
        "notifications: only once turned on with the button; a direct message notifies",
        async () => {
          await withServer(ACCOUNTS, async (server, contexts) => {
            const admin = await personPage(browser, contexts);
            await recordNotifications(admin.context());
            await setUpAdmin(admin, server);
            const bob = await personPage(browser, contexts);
            await createAccount(bob, await inviteLink(admin), "bob", BOB_PASSWORD);
            const room = await bob.evaluate(async () => {
              const response = await fetch("/api/direct", {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ userName: "Admin" }),
              });
              return (await response.json()).room as string;
            });
            const say = (body: string, where = room) =>
              bob.evaluate(async ([where, body]) => {
                const response = await fetch(`/rooms/${where}/messages`, {
                  method: "POST",
                  headers: { "content-type": "application/json" },
                  body: JSON.stringify({ body }),
                });
                return response.status;
              }, [where, body]);
            await admin.goto(new URL(`/?room=${room}`, server.url).href);
            await waitForStatus(admin, "online");
            await admin.locator("#room-name", { hasText: /^bob$/ }).waitFor();
            const button = admin.locator("#notify");
            assert.equal(await button.textContent(), "Turn on notifications");
            assert.equal(await button.getAttribute("aria-pressed"), "false");

            // Permission is granted, but the person has not asked: nothing notifies.
            await setHidden(admin, true);
            assert.equal(await say("are you there?"), 201);
            await waitForSettled(admin, ["are you there?"]);
            assert.deepEqual(await notificationsOf(admin), { shown: [], asks: 0 });

            await setHidden(admin, false);
            await button.click();
            await admin.locator("#notify[aria-pressed=true]", { hasText: "Notifications on" })
              .waitFor();
            await setHidden(admin, true);
            assert.equal(await say("a word in private"), 201);
            await waitForSettled(admin, ["are you there?", "a word in private"]);
            await admin.waitForFunction(
              () =>
                (globalThis as unknown as { parleyNotifications: unknown[] })
                  .parleyNotifications.length > 0,
              null,
              { timeout: UI_TIMEOUT_MS },
            );
            // A message in an open room that does not mention the admin does not notify.
            await openListed(admin, "rooms", "lobby");
            await setHidden(admin, true);
            assert.equal(await say("lobby chatter", "lobby"), 201);
            await waitForSettled(admin, ["lobby chatter"]);
            assert.deepEqual(await notificationsOf(admin), {
              shown: [{ title: "bob", body: "a word in private" }],
              asks: 0,
            });
            // The choice is remembered: after a reload the button still says on.
            await admin.reload();
            await waitForStatus(admin, "online");
            assert.equal(await button.getAttribute("aria-pressed"), "true");
          });
        },
      );

      await step("the new forms on a phone and a desktop, light and dark", async () => {
        await Deno.mkdir(OUTPUT, { recursive: true });
        await withServer(ACCOUNTS, async (server, contexts) => {
          const admin = await personPage(browser, contexts);
          await setUpAdmin(admin, server);
          await send(admin, "Hello from the admin.");
          await waitForSettled(admin, ["Hello from the admin."]);
          const bob = await personPage(browser, contexts);
          await createAccount(bob, await inviteLink(admin), "bob", BOB_PASSWORD);
          await waitForUsers(admin, ["Admin", "bob"]);
          // A private room and a direct room, for the list to show every kind.
          const made = await admin.evaluate(async () => {
            const post = (path: string, body: unknown) =>
              fetch(path, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify(body),
              });
            const plans = await post("/api/rooms", { room: "plans", kind: "private" });
            const direct = await post("/api/direct", { userName: "bob" });
            return [plans.status, direct.status];
          });
          assert.deepEqual(made, [201, 201]);
          for (const size of SIZES) {
            for (const scheme of ["light", "dark"] as const) {
              await formScreenshots(browser, server, size, scheme);
            }
          }
        });
      });
    } finally {
      await browser.close();
    }
  },
});

/**
 * The admin makes a private room: bob neither sees it listed nor can open it, until the admin
 * adds him with "Members"; then both chat in it.
 */
async function privateRoom(admin: Page, bob: Page): Promise<void> {
  await admin.getByRole("button", { name: "New private room" }).click();
  await admin.locator("#new-room-name").fill("no spaces");
  await admin.locator("#room-create").click();
  await admin.locator("#room-form-error", { hasText: "letters, digits" }).waitFor();
  await admin.locator("#new-room-name").fill("secret");
  await admin.locator("#room-create").click();
  await admin.locator("#room-name", { hasText: /^secret$/ }).waitFor();
  await waitForStatus(admin, "online");
  assert.equal(await admin.locator("#room-name").getAttribute("data-kind"), "private");
  await send(admin, "Only for members.");
  await waitForSettled(admin, ["Only for members."]);
  await admin.locator("#rooms button.private", { hasText: /^secret$/ }).waitFor();

  await bob.reload();
  await waitForStatus(bob, "online");
  await bob.locator("#rooms button", { hasText: /^lobby$/ }).waitFor();
  assert.deepEqual(await listedRooms(bob), { rooms: ["lobby"], direct: [] });
  const sockets: string[] = [];
  bob.on("websocket", (socket) => sockets.push(socket.url()));
  await bob.locator("#switch-room").fill("secret");
  await bob.locator("#switch-button").click();
  await waitForNotice(bob, /There is no room "secret" that you may join/);
  await waitForStatus(bob, "stopped");
  assert.equal(await bob.locator("#status").textContent(), "disconnected");
  assert.deepEqual(await shownMessages(bob), []);
  assert.equal(sockets.length, 1, `one refused socket, not a loop: ${sockets}`);
  assert.ok(await bob.locator("#chat-view").isVisible(), "bob stays in the chat");

  await admin.getByRole("button", { name: "Members of this room" }).click();
  await admin.locator("#members li", { hasText: "Admin" }).waitFor();
  await admin.locator("#member-name").fill("bob");
  await admin.locator("#member-add").click();
  await admin.locator("#members-status", { hasText: "bob was added to the room." }).waitFor();
  await admin.locator("#members li", { hasText: "bob" }).waitFor();
  await admin.getByRole("button", { name: "Close" }).click();
  await admin.locator("#members-dialog").waitFor({ state: "hidden" });

  await bob.locator("#switch-room").fill("secret");
  await bob.locator("#switch-button").click();
  await waitForStatus(bob, "online");
  await waitForSettled(bob, ["Only for members."]);
  await bob.locator("#rooms button.private", { hasText: /^secret$/ }).waitFor();
  await waitForUsers(admin, ["Admin", "bob"]);
  await send(bob, "Glad to be in.");
  await waitForSettled(admin, ["Only for members.", "Glad to be in."]);
}

/**
 * bob messages the admin from the online list: a direct room, named by the other person on
 * both sides, never by its opaque room name.
 */
async function directMessage(admin: Page, bob: Page): Promise<void> {
  await actOn(bob, "Admin", "Message");
  await bob.locator("#room-name", { hasText: /^Admin$/ }).waitFor();
  await waitForStatus(bob, "online");
  assert.equal(await bob.locator("#room-name").getAttribute("data-kind"), "direct");
  assert.equal(await bob.title(), "@Admin — parley");
  assert.equal(await bob.locator("#message").getAttribute("placeholder"), "Message @Admin");
  const room = new URL(bob.url()).searchParams.get("room")!;
  assert.notEqual(room, "Admin");
  await send(bob, "A word in private?");
  await waitForSettled(bob, ["A word in private?"]);
  await bob.locator("#direct-rooms button", { hasText: /^Admin$/ }).waitFor();
  assert.deepEqual((await listedRooms(bob)).direct, ["Admin"]);

  // The admin finds it listed under bob's name after a reload, and reads it there.
  await admin.reload();
  await waitForStatus(admin, "online");
  await admin.locator("#direct-rooms button", { hasText: /^bob$/ }).waitFor();
  await openListed(admin, "direct-rooms", "bob");
  await waitForSettled(admin, ["A word in private?"]);
  assert.equal(new URL(admin.url()).searchParams.get("room"), room);
  assert.ok(!(await listedRooms(admin)).rooms.includes(room), "the direct room in the rooms");
}

/** The admin removes bob from the private room while he is in it: his socket closes for good. */
async function removal(admin: Page, bob: Page): Promise<void> {
  await openListed(bob, "rooms", "secret");
  await openListed(admin, "rooms", "secret");
  await waitForUsers(admin, ["Admin", "bob"]);
  const sockets: string[] = [];
  bob.on("websocket", (socket) => sockets.push(socket.url()));
  await actOn(admin, "bob", "Remove");
  await admin.locator("#confirm-ok").click();
  await waitForNotice(admin, /bob was removed/);
  await waitForNotice(bob, /You were removed from this room/);
  await waitForStatus(bob, "stopped");
  await waitForUsers(admin, ["Admin"]);
  await bob.locator("#rooms button", { hasText: /^secret$/ }).waitFor({ state: "detached" });
  assert.deepEqual(sockets, [], "the removed page opened a socket again");
  // Sign out, from the sidebar.
  await bob.getByRole("button", { name: "Sign out" }).click();
  await bob.locator("#signin-form").waitFor();
}

const SIZES = [
  { name: "phone", viewport: { width: 390, height: 844 }, isMobile: true, scale: 2 },
  { name: "desktop", viewport: { width: 1280, height: 800 }, isMobile: false, scale: 1 },
];

/**
 * Screenshots of the sign-in form, the setup and invite forms, the chat with its room list, and
 * the invite dialog, in one size and scheme, each checked for fitting and for its colours.
 */
async function formScreenshots(
  browser: Browser,
  server: TestServer,
  size: typeof SIZES[number],
  scheme: "light" | "dark",
): Promise<void> {
  const contexts: BrowserContext[] = [];
  try {
    const page = await personPage(browser, contexts, {
      viewport: size.viewport,
      isMobile: size.isMobile,
      hasTouch: size.isMobile,
      deviceScaleFactor: size.scale,
      colorScheme: scheme,
      reducedMotion: "reduce",
    });
    const label = `${size.name}-${scheme}`;
    const shot = async (name: string) => {
      await page.screenshot({ path: new URL(`${name}-${label}.png`, OUTPUT).pathname });
      await assertFits(page, `${name}-${label}`, scheme);
    };
    await page.goto(new URL("/join/an-invite-code", server.url).href);
    await page.locator("#account-form").waitFor();
    await page.locator("#account-name").fill("carol");
    await page.locator("#account-password").fill("short");
    await page.locator("#account-submit").click();
    await page.locator("#account-error", { hasText: /\S/ }).waitFor();
    await shot("invite-form");
    await page.goto(server.url.href);
    await page.locator("#signin-form").waitFor();
    await submitSignIn(page, "Admin", "wrong password");
    await page.locator("#signin-error", { hasText: /\S/ }).waitFor();
    await shot("signin");
    await submitSignIn(page, "Admin", ADMIN_PASSWORD);
    await waitForStatus(page, "online");
    await waitForSettled(page, ["Hello from the admin."]);
    await waitForUsers(page, ["Admin", "bob"]);
    if (size.isMobile) await page.locator("#users-toggle").click();
    await page.locator("#users .person", { hasText: /^bob$/ }).click();
    await page.locator("#direct-rooms button", { hasText: /^bob$/ }).waitFor();
    assert.deepEqual(await listedRooms(page), { rooms: ["lobby", "plans"], direct: ["bob"] });
    await shot("accounts-chat");
    await page.getByRole("button", { name: "Invite people" }).click();
    await page.locator("#invite-status", { hasText: /\S/ }).waitFor();
    await shot("invite-dialog");
  } finally {
    await closeAll(contexts);
  }
}

/** Nothing scrolls sideways, every visible form and dialog is on screen, the colours fit. */
async function assertFits(page: Page, label: string, scheme: "light" | "dark"): Promise<void> {
  const layout = await page.evaluate(() => {
    const boxes = Array.from(document.querySelectorAll(".card-form, .dialog[open], .sidebar"))
      .filter((el) => el.checkVisibility({ visibilityProperty: true }))
      .map((el) => {
        const r = el.getBoundingClientRect();
        return { id: el.id, top: r.top, left: r.left, bottom: r.bottom, right: r.right };
      });
    const rgb = getComputedStyle(document.body).backgroundColor.match(/\d+(\.\d+)?/g)!.map(
      Number,
    );
    return {
      width: innerWidth,
      height: innerHeight,
      scrollWidth: document.documentElement.scrollWidth,
      boxes,
      brightness: (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255,
    };
  });
  const where = `${label}: ${JSON.stringify(layout)}`;
  assert.ok(layout.scrollWidth <= layout.width, `sideways scroll, ${where}`);
  assert.ok(layout.boxes.length > 0, `no form on screen, ${where}`);
  for (const box of layout.boxes) {
    assert.ok(box.left >= 0 && box.right <= layout.width, `${box.id} is cut off, ${where}`);
    assert.ok(box.top >= 0 && box.bottom <= layout.height, `${box.id} is off screen, ${where}`);
  }
  if (scheme === "dark") assert.ok(layout.brightness < 0.2, `a light page in dark mode, ${where}`);
  else assert.ok(layout.brightness > 0.8, `a dark page in light mode, ${where}`);
}

/** Every button, input and textarea (shown or not) has a non-empty accessible name. */
async function assertNamedControls(page: Page): Promise<void> {
  const snapshot = () => page.locator("body").ariaSnapshot();
  const buttons = await page.locator("button").count();
  const namedButtons = await page.getByRole("button", { name: /\S/, includeHidden: true })
    .count();
  assert.equal(namedButtons, buttons, `a button has no accessible name:\n${await snapshot()}`);
  const fields = await page.locator("input:not([type=hidden]), textarea").count();
  const namedFields = await page.getByRole("textbox", { name: /\S/, includeHidden: true }).count();
  assert.equal(namedFields, fields, `a text field has no accessible name:\n${await snapshot()}`);
  assert.ok(buttons >= 5 && fields >= 4, `only ${buttons} buttons and ${fields} fields`);
}

/** No sideways scrolling, the composer and the newest message on screen, the right colours. */
async function assertLayout(
  page: Page,
  label: string,
  desktop: boolean,
  scheme: "light" | "dark",
): Promise<void> {
  const layout = await page.evaluate(() => {
    const box = (selector: string) => {
      const el = document.querySelector(selector);
      if (!el || !el.checkVisibility()) return null;
      const r = el.getBoundingClientRect();
      return { top: r.top, left: r.left, bottom: r.bottom, right: r.right };
    };
    const rgb = getComputedStyle(document.body).backgroundColor.match(/\d+(\.\d+)?/g)!.map(
      Number,
    );
    return {
      width: innerWidth,
      height: innerHeight,
      scrollWidth: document.documentElement.scrollWidth,
      scrollHeight: document.documentElement.scrollHeight,
      message: box("#message"),
      send: box("#send"),
      roomName: box("#room-name"),
      roomNameClipped: (() => {
        const el = document.querySelector("#room-name")!;
        return el.scrollWidth > el.clientWidth;
      })(),
      lastMessage: box("#messages .message:last-of-type .bubble"),
      sidebar: box("#sidebar"),
      toggle: box("#users-toggle"),
      dark: matchMedia("(prefers-color-scheme: dark)").matches,
      brightness: (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255,
    };
  });
  const where = `${label}: ${JSON.stringify(layout)}`;
  assert.ok(layout.scrollWidth <= layout.width, `sideways scroll, ${where}`);
  assert.ok(layout.scrollHeight <= layout.height, `the page itself scrolls, ${where}`);
  const inView = (r: { top: number; left: number; bottom: number; right: number } | null) =>
    r !== null && r.top >= 0 && r.left >= 0 && r.bottom <= layout.height &&
    r.right <= layout.width;
  assert.ok(inView(layout.message), `the message box is off screen, ${where}`);
  assert.ok(inView(layout.send), `the send button is off screen, ${where}`);
  assert.ok(inView(layout.roomName), `the room name is off screen, ${where}`);
  assert.ok(!layout.roomNameClipped, `the room name is cut short, ${where}`);
  assert.ok(inView(layout.lastMessage), `the newest message is off screen, ${where}`);
  assert.ok(layout.lastMessage!.bottom <= layout.message!.top, `overlap, ${where}`);
  if (desktop) assert.ok(inView(layout.sidebar), `the online list is hidden, ${where}`);
  else assert.ok(inView(layout.toggle), `no way to see who is online, ${where}`);
  assert.equal(layout.dark, scheme === "dark");
  if (scheme === "dark") assert.ok(layout.brightness < 0.2, `a light page in dark mode, ${where}`);
  else assert.ok(layout.brightness > 0.8, `a dark page in light mode, ${where}`);
}
