/**
 * Browser plumbing for `browser_test.ts`: Debian's Chromium driven by `npm:playwright-core`, and
 * small helpers that read the chat page's DOM. Nothing here is mocked: the page talks to a real
 * parley server.
 */
/// <reference lib="dom" />

import fs from "node:fs";
import type { Browser, BrowserContext, Page } from "npm:playwright-core@1.65.1";
import { startTestServer, type TestServer } from "./support.ts";

/** Where Debian installs Chromium (`apt-get install chromium`). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** How long a browser test waits for the page to reach a state before it fails. */
export const UI_TIMEOUT_MS = 10_000;

/** How long to wait for a page to notice a restarted server and reconnect by itself. */
export const RECONNECT_TIMEOUT_MS = 20_000;

/** Why the browser tests cannot run here, or null when Chromium is installed. */
export function chromiumMissing(): string | null {
  try {
    if (Deno.statSync(CHROMIUM_PATH).isFile) return null;
    return `${CHROMIUM_PATH} is not a file`;
  } catch {
    return `${CHROMIUM_PATH} is not installed (apt-get install chromium)`;
  }
}

/**
 * Node's `fs.existsSync` never throws; Deno's throws NotCapable for /proc/sys/… unless the whole
 * process runs with --allow-all. playwright-core probes /proc/sys/fs/binfmt_misc/WSLInterop when
 * it loads (is-wsl), so without this the test task would need -A. Restore Node's answer, false,
 * for paths Deno refuses to look at, and only for those.
 */
function restoreNodeExistsSync(): void {
  const original = fs.existsSync;
  if ((original as { parleyPatched?: boolean }).parleyPatched) return;
  const patched = (path: fs.PathLike): boolean => {
    try {
      return original(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) return false;
      throw error;
    }
  };
  Object.assign(patched, { parleyPatched: true });
  fs.existsSync = patched;
}

/** Launches headless Chromium the way the design says: Debian's binary, no sandbox, no GPU. */
export async function launchBrowser(): Promise<Browser> {
  restoreNodeExistsSync();
  const { chromium } = await import("npm:playwright-core@1.65.1");
  return await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** What one `.message` element in `#messages` shows. */
export interface ShownMessage {
  id: string | null;
  clientId: string | null;
  author: string;
  body: string;
  time: string;
  datetime: string;
  mine: boolean;
  pending: boolean;
  outgoing: boolean;
  state: string;
  visible: boolean;
}

/** Every `.message` element in `#messages`, in document order, hidden ones included. */
export function shownMessages(page: Page): Promise<ShownMessage[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>("#messages .message"), (item) => ({
      id: item.dataset.id ?? null,
      clientId: item.dataset.clientId ?? null,
      author: item.querySelector(".author")?.textContent ?? "",
      body: item.querySelector(".body")?.textContent ?? "",
      time: item.querySelector(".time")?.textContent ?? "",
      datetime: item.querySelector(".time")?.getAttribute("datetime") ?? "",
      mine: item.classList.contains("mine"),
      pending: item.classList.contains("pending"),
      outgoing: item.classList.contains("outgoing"),
      state: item.querySelector(".state")?.textContent ?? "",
      visible: item.checkVisibility(),
    }))
  );
}

/**
 * Waits until every body in `bodies` is shown as a confirmed message (it has an id and the
 * server's timestamp) and nothing is still waiting for an ack.
 */
export async function waitForSettled(
  page: Page,
  bodies: string[],
  timeout = UI_TIMEOUT_MS,
): Promise<void> {
  try {
    await page.waitForFunction(
      (wanted) => {
        const items = Array.from(document.querySelectorAll<HTMLElement>("#messages .message"));
        if (items.some((i) => i.matches(".outgoing, .pending, .provisional"))) return false;
        const shown = new Set(items.map((i) => i.querySelector(".body")?.textContent));
        return wanted.every((body) => shown.has(body));
      },
      bodies,
      { timeout },
    );
  } catch (error) {
    const shown = await shownMessages(page).catch(() => []);
    const status = await page.locator("#status").textContent().catch(() => "?");
    throw new Error(
      `${(error as Error).message}\nwanted ${JSON.stringify(bodies)}; status "${status}"; ` +
        `the page shows ${JSON.stringify(shown, null, 1)}`,
    );
  }
}

/** Waits for `#status[data-state=…]`. */
export async function waitForStatus(
  page: Page,
  state: "connecting" | "online" | "reconnecting" | "stopped",
  timeout = UI_TIMEOUT_MS,
): Promise<void> {
  await page.locator(`#status[data-state="${state}"]`).waitFor({ state: "attached", timeout });
}

/** The names in the online list, sorted (a name with actions is its `.person` button). */
export function onlineUsers(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(
      document.querySelectorAll("#users li"),
      (li) => (li.querySelector(".person") ?? li).textContent ?? "",
    ).sort()
  );
}

/** Waits until the online list shows exactly these names. */
export async function waitForUsers(page: Page, names: string[]): Promise<void> {
  await page.waitForFunction(
    (wanted) => {
      const shown = Array.from(
        document.querySelectorAll("#users li"),
        (li) => (li.querySelector(".person") ?? li).textContent,
      );
      return shown.length === wanted.length && wanted.every((name) => shown.includes(name));
    },
    names,
    { timeout: UI_TIMEOUT_MS },
  );
}

/** Opens `/`, picks a name and a room with the join form, and waits until the page is online. */
export async function joinWithForm(
  page: Page,
  server: TestServer,
  userName: string,
  room: string,
): Promise<void> {
  await page.goto(server.url.href);
  await page.locator("#name").fill(userName);
  await page.locator("#room").fill(room);
  await page.locator("#join").click();
  await waitForStatus(page, "online");
}

/** Types into the message box and presses Enter. */
export async function send(page: Page, body: string): Promise<void> {
  await page.locator("#message").fill(body);
  await page.locator("#message").press("Enter");
}

/** `HH:MM` of an ISO timestamp on a 24-hour clock in `timeZone`, as the page shows it. */
export function clockTime(timestamp: string, timeZone: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone,
  }).format(new Date(timestamp));
}

/** How many times each value occurs. */
export function tally<T>(values: T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

/**
 * Opens `link` (the setup link or an invite), makes the account with the page's form, and waits
 * until the page is online under that name.
 */
export async function createAccount(
  page: Page,
  link: string,
  userName: string,
  password: string,
): Promise<void> {
  await page.goto(link);
  await page.locator("#account-name").fill(userName);
  await page.locator("#account-password").fill(password);
  await page.locator("#account-submit").click();
  await waitForStatus(page, "online");
}

/** Fills and sends the sign-in form, which must be on screen. */
export async function submitSignIn(page: Page, userName: string, password: string): Promise<void> {
  await page.locator("#signin-name").fill(userName);
  await page.locator("#signin-password").fill(password);
  await page.locator("#signin").click();
}

/** The labels of the rooms listed in the sidebar (rooms, then direct rooms), in order. */
export function listedRooms(page: Page): Promise<{ rooms: string[]; direct: string[] }> {
  return page.evaluate(() => {
    const labels = (id: string) =>
      Array.from(document.querySelectorAll(`#${id} button`), (b) => b.textContent ?? "");
    return { rooms: labels("rooms"), direct: labels("direct-rooms") };
  });
}

/** A room's stored messages as the signed-in person of `page` reads them (`/history`). */
export function historyIn(
  page: Page,
  room: string,
): Promise<{ userName: string; body: string }[]> {
  return page.evaluate(async (room) => {
    const response = await fetch(`/history?room=${encodeURIComponent(room)}&limit=1000`);
    if (!response.ok) throw new Error(`/history answered ${response.status}`);
    const page = await response.json();
    return page.messages.map((m: { userName: string; body: string }) => ({
      userName: m.userName,
      body: m.body,
    }));
  }, room);
}

/** Emulates the tab going to the background (or back, with `hidden` false). */
export async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hide) => {
    if (hide) {
      Object.defineProperty(document, "hidden", { value: true, configurable: true });
      Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    } else {
      // The own properties shadowed the prototype's getters; removing them restores the truth.
      Reflect.deleteProperty(document, "hidden");
      Reflect.deleteProperty(document, "visibilityState");
    }
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

/** A desktop notification the page showed. */
export interface ShownNotification {
  title: string;
  body: string;
}

/**
 * Grants the context's pages the notification permission, and records in every page what it
 * does with the Notification API: each notification made, and each time it asked for permission.
 * (The recorder is put in place by Playwright before the page's own scripts, outside its CSP.)
 */
export async function recordNotifications(context: BrowserContext): Promise<void> {
  await context.grantPermissions(["notifications"]);
  await context.addInitScript(() => {
    const record = globalThis as unknown as {
      parleyNotifications: { title: string; body: string }[];
      parleyPermissionAsks: number;
    };
    record.parleyNotifications = [];
    record.parleyPermissionAsks = 0;
    const Original = globalThis.Notification;
    if (typeof Original !== "function") return;
    class Recorded extends Original {
      constructor(title: string, options?: NotificationOptions) {
        record.parleyNotifications.push({ title, body: options?.body ?? "" });
        super(title, options);
      }
    }
    Object.defineProperty(Recorded, "permission", { get: () => Original.permission });
    Object.defineProperty(Recorded, "requestPermission", {
      value: () => {
        record.parleyPermissionAsks += 1;
        return Original.requestPermission();
      },
    });
    Object.defineProperty(globalThis, "Notification", { value: Recorded, configurable: true });
  });
}

/** What `recordNotifications` saw in `page`: the notifications shown, the permission asks. */
export function notificationsOf(
  page: Page,
): Promise<{ shown: ShownNotification[]; asks: number }> {
  return page.evaluate(() => {
    const record = globalThis as unknown as {
      parleyNotifications?: { title: string; body: string }[];
      parleyPermissionAsks?: number;
    };
    return { shown: record.parleyNotifications ?? [], asks: record.parleyPermissionAsks ?? -1 };
  });
}

/**
 * Runs `fn` with a fresh server and a list for the browser contexts it opens (`personPage`),
 * closing the contexts, then the server, afterwards.
 */
export async function withServer(
  overrides: Record<string, unknown>,
  fn: (server: TestServer, contexts: BrowserContext[]) => Promise<void>,
): Promise<void> {
  const server = await startTestServer(overrides);
  const contexts: BrowserContext[] = [];
  try {
    await fn(server, contexts);
  } finally {
    await closeAll(contexts);
    await server.close();
  }
}

/** Opens a page in a new context (a separate browser profile: one person). */
export async function personPage(
  browser: Browser,
  contexts: BrowserContext[],
  options: Parameters<Browser["newContext"]>[0] = {},
): Promise<Page> {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  contexts.push(context);
  return await context.newPage();
}

export /** Closes every context a test opened. */
async function closeAll(contexts: BrowserContext[]): Promise<void> {
  await Promise.allSettled(contexts.map((context) => context.close()));
}
