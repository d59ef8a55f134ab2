/**
 * People for the tests of accounts and access: a browser-like API client that keeps its session
 * cookie, the setup link from the log, and a server in accounts mode with its admin and `bob`.
 */

import assert from "node:assert/strict";
import { type HasUrl, startTestServer, type TestServer } from "./support.ts";

export const ADMIN_PASSWORD = "admin-password-1";
export const BOB_PASSWORD = "bob-password-22";

/** An answer of the API: its status, headers and JSON body (null for none). */
export interface Answer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** A client of the API that keeps the session cookie it is given, as a browser does. */
export class Browser {
  cookie: string | null = null;
  /** Every cookie value the server set, to look for in the log afterwards. */
  readonly secrets: string[] = [];

  constructor(readonly server: HasUrl) {}

  /** The session cookie as an upgrade request's header. */
  get headers(): Record<string, string> {
    assert.ok(this.cookie !== null, "not signed in");
    return { cookie: this.cookie };
  }

  /** A new API token of this person. */
  async token(label = "test"): Promise<string> {
    const made = await this.call("POST", "/api/tokens", { label });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body.token;
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const response = await fetch(new URL(path, this.server.url), {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(this.cookie === null ? {} : { cookie: this.cookie }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = response.headers.get("set-cookie");
    if (setCookie !== null) {
      const value = /^parley_session=([^;]*)/.exec(setCookie)![1];
      this.cookie = value === "" ? null : `parley_session=${value}`;
      if (value !== "") this.secrets.push(value);
    }
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: text ? JSON.parse(text) : null,
    };
  }
}

/** A clock the server's account store reads, moved by the test. */
export function manualClock() {
  const clock = { now: Date.now(), read: () => clock.now };
  return clock;
}

/** The token of the one setup link in the server's log. */
export async function setupToken(server: TestServer): Promise<string> {
  const log = await Deno.readTextFile(server.config.logfilePath);
  const links = [...log.matchAll(/create the admin account at (\S+)/g)].map((m) => new URL(m[1]));
  assert.equal(links.length, 1, log);
  assert.equal(links[0].origin, server.url.origin);
  assert.equal(links[0].pathname, "/setup");
  return links[0].searchParams.get("token")!;
}

/**
 * A server in accounts mode (with `auth` and the other `overrides` of its config) with its admin
 * signed in, and `bob` joined with an invite.
 */
export async function withPeople(
  clock = manualClock(),
  auth: Record<string, unknown> = {},
  overrides: Record<string, unknown> = {},
) {
  const server = await startTestServer({ ...overrides, auth: { mode: "accounts", ...auth } }, {
    now: clock.read,
  });
  const admin = new Browser(server);
  const token = await setupToken(server);
  const setup = await admin.call("POST", "/api/setup", {
    token,
    userName: "Admin",
    password: ADMIN_PASSWORD,
  });
  assert.equal(setup.status, 201, JSON.stringify(setup.body));
  const { browser: bob, code } = await invite(admin, "bob", BOB_PASSWORD);
  return { server, admin, bob, clock, setupToken: token, inviteCode: code };
}

/** A new person, invited by `admin` and joined: their browser, signed in, and the invite's code. */
export async function invite(
  admin: Browser,
  userName: string,
  password = `${userName}-password-1`,
): Promise<{ browser: Browser; code: string }> {
  const made = await admin.call("POST", "/api/invites");
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const browser = new Browser(admin.server);
  const joined = await browser.call("POST", `/api/join/${made.body.code}`, { userName, password });
  assert.equal(joined.status, 201, JSON.stringify(joined.body));
  return { browser, code: made.body.code };
}
