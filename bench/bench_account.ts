/**
 * The load tool's account on a parley in accounts mode: it creates the first admin with the setup
 * link parley printed on its stdout, and makes the API token every load connection then sends on
 * its upgrade (`Authorization: Bearer …`).
 */

/** The account's name. */
const USER_NAME = "bench";

/**
 * Creates the first admin of the parley at `base`, whose stdout `banner` holds its setup link,
 * and returns a new API token of it. Throws, saying why, if parley printed no link or refused.
 */
export async function benchToken(base: string, banner: string): Promise<string> {
  const link = /create the admin account at (\S+)/.exec(banner)?.[1];
  const setupToken = link === undefined ? null : new URL(link).searchParams.get("token");
  if (setupToken === null) {
    throw new Error(
      `parley printed no setup link: is it in accounts mode, with no account yet?\n${banner}`,
    );
  }
  const setup = await post(base, "/api/setup", null, {
    token: setupToken,
    userName: USER_NAME,
    password: crypto.randomUUID(),
  });
  const cookie = /^parley_session=[^;]*/.exec(setup.headers.get("set-cookie") ?? "")?.[0];
  await setup.body?.cancel();
  if (cookie === undefined) throw new Error("parley's setup answered without a session cookie");
  const made = await post(base, "/api/tokens", cookie, { label: "bench" });
  const { token } = await made.json();
  if (typeof token !== "string") throw new Error("parley answered POST /api/tokens without one");
  return token;
}

/** POSTs `body` as JSON to `path`, with the session `cookie`; throws unless it succeeded. */
async function post(
  base: string,
  path: string,
  cookie: string | null,
  body: Record<string, unknown>,
): Promise<Response> {
  const response = await fetch(new URL(path, base), {
    method: "POST",
    headers: { "content-type": "application/json", ...(cookie === null ? {} : { cookie }) },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  }
  return response;
}
