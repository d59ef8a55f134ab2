/**
 * The account API under `/api/` (`auth.mode: "accounts"`): the first admin, signing in and out,
 * invites, API tokens, bans and admins (rooms and their members are in `access.ts`). Every answer
 * is JSON; every state-changing request passes the origin rule. In open mode these routes answer
 * 404: there are no accounts.
 */

import { type Account, AccountError, type AccountStore, nameKey } from "../accounts.ts";
import { accountId, type Identity, readCookie, SESSION_COOKIE } from "../identity.ts";
import { clientText } from "../log.ts";
import { validateUserName } from "../message.ts";
import { hashPassword, PasswordError, validatePassword, verifyPassword } from "../passwords.ts";
import type { Services } from "../services.ts";
import { checkOrigin, HttpError, type Route, route, type RouteParams } from "./route.ts";

/** Every route of the account API. */
export function accountRoutes(): Route[] {
  return [
    route(["POST"], "/api/setup", setup),
    route(["POST"], "/api/session", signIn),
    route(["DELETE"], "/api/session", signOut),
    route(["GET"], "/api/me", me),
    route(["POST"], "/api/invites", createInvite),
    route(["DELETE"], "/api/invites/:code", revokeInvite),
    route(["POST"], "/api/join/:code", join),
    route(["POST"], "/api/tokens", createToken),
    route(["GET"], "/api/tokens", listTokens),
    route(["DELETE"], "/api/tokens/:id", revokeToken),
    route(["POST"], "/api/users/:userName/ban", (c, r, p) => setBanned(c, r, p, true)),
    route(["DELETE"], "/api/users/:userName/ban", (c, r, p) => setBanned(c, r, p, false)),
    route(["POST"], "/api/users/:userName/admin", grantAdmin),
  ];
}

/** What `/api/me` and a sign-in answer: who you are. */
interface Me {
  userName: string | null;
  admin: boolean;
  mode: Services["identity"]["mode"];
}

/** The largest JSON body an API request may have. */
const MAX_BODY_BYTES = 8192;

/** `POST /api/setup {token, userName, password}`: the first account, an admin, signed in. */
async function setup(context: Services, request: Request, { url, address }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  if (accounts.count() > 0) {
    throw new HttpError(409, "this server has its admin already; sign in with POST /api/session");
  }
  const body = await readJson(request);
  if (typeof body.token !== "string" || !context.identity.setupTokenValid(body.token)) {
    throw new HttpError(
      403,
      "this setup link is not valid: use the link parley printed when it started, or sign in",
    );
  }
  const { userName, passwordHash } = await newCredentials(body);
  const account = refusing(() => accounts.createFirstAdmin(userName, passwordHash));
  context.log.info(`setup: ${clientText(account.userName)} is the first admin (from ${address})`);
  return signedIn(context, accounts, account, 201);
}

/**
 * `POST /api/session {userName, password}`: a session cookie. After 10 failed sign-ins from one
 * address or for one account within three minutes, 429 with `Retry-After` (see `AccountStore`).
 */
async function signIn(context: Services, request: Request, { url, address }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const body = await readJson(request);
  const userName = validateUserName(body.userName);
  if (typeof body.password !== "string") throw new HttpError(400, "send a password");
  const accountKey = `account ${nameKey(userName)}`;
  const keys = [`address ${address}`, accountKey];
  const waitMs = accounts.signInWait(keys);
  if (waitMs > 0) {
    const seconds = Math.ceil(waitMs / 1000);
    throw new HttpError(429, `too many failed sign-ins; try again in ${seconds} s`, {
      "retry-after": String(seconds),
    });
  }
  const failures = accounts.countFailure(keys);
  const found = accounts.credentials(userName);
  if (!await verifyPassword(body.password, found?.password ?? null) || found === null) {
    context.log.limited(address, `sign-in refused for ${clientText(userName)} from ${address}`);
    throw new HttpError(401, "wrong name or password");
  }
  accounts.forgive(failures, accountKey);
  if (found.account.banned) throw new HttpError(403, "this account is banned; ask an admin");
  context.log.info(`${clientText(found.account.userName)} signed in from ${address}`);
  return signedIn(context, accounts, found.account, 200);
}

/** `DELETE /api/session`: ends this browser's session and clears its cookie; 204 either way. */
function signOut(context: Services, request: Request, { url }: RouteParams): Response {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const session = readCookie(request, SESSION_COOKIE);
  if (session !== null) accounts.endSession(session);
  return new Response(null, {
    status: 204,
    headers: { "set-cookie": context.identity.clearedCookie() },
  });
}

/** `GET /api/me`: who you are, or 401 (with the mode, so a page knows how to sign in). */
async function me(context: Services, request: Request, { url }: RouteParams) {
  const who = await context.identity.identify(request, url);
  const mode = context.identity.mode;
  if (who === null) {
    return Response.json({ error: "you are not signed in", mode }, { status: 401 });
  }
  return Response.json({ userName: who.userName, admin: who.admin, mode } satisfies Me);
}

/** `POST /api/invites` (admin): a single-use invite, `{code, url, expiresAt}`. */
async function createInvite(context: Services, request: Request, { url }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const admin = await adminOf(context, request, url);
  const { secret, expiresAt } = accounts.createInvite(accountId(admin));
  return Response.json({
    code: secret,
    url: new URL(`/join/${secret}`, url).href,
    expiresAt: new Date(expiresAt).toISOString(),
  }, { status: 201 });
}

/** `DELETE /api/invites/:code` (admin): revokes an invite. */
async function revokeInvite(context: Services, request: Request, { url, path }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  await adminOf(context, request, url);
  if (!accounts.revokeInvite(path.code!)) throw new HttpError(404, "there is no such invite");
  return new Response(null, { status: 204 });
}

/** `POST /api/join/:code {userName, password}`: an account made with an invite, signed in. */
async function join(context: Services, request: Request, { url, path, address }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const code = path.code!;
  // Before hashing the password: a guessed code must not cost the server a scrypt.
  refusing(() => accounts.checkInvite(code));
  const { userName, passwordHash } = await newCredentials(await readJson(request));
  const account = refusing(() => accounts.join(code, userName, passwordHash));
  context.log.info(`${clientText(account.userName)} joined with an invite (from ${address})`);
  return signedIn(context, accounts, account, 201);
}

/** `POST /api/tokens {label}`: a new API token, `{id, label, createdAt, token}`, shown once. */
async function createToken(context: Services, request: Request, { url }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const who = await signedInAs(context, request, url);
  const { label } = await readJson(request);
  if (typeof label !== "string" || label.trim() === "" || label.length > 100) {
    throw new HttpError(400, 'give the token a label of 1 to 100 characters: {"label": "ci"}');
  }
  return Response.json(accounts.createToken(accountId(who), label.trim()), { status: 201 });
}

/** `GET /api/tokens`: your API tokens, `[{id, label, createdAt}]`, without the tokens. */
async function listTokens(context: Services, request: Request, { url }: RouteParams) {
  const accounts = accountsOf(context);
  const who = await signedInAs(context, request, url);
  return Response.json(accounts.tokens(accountId(who)));
}

/** `DELETE /api/tokens/:id`: revokes one of your API tokens. */
async function revokeToken(context: Services, request: Request, { url, path }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const who = await signedInAs(context, request, url);
  const id = /^\d{1,15}$/.test(path.id!) ? Number(path.id) : NaN;
  if (!accounts.revokeToken(accountId(who), id)) {
    throw new HttpError(404, `you have no API token with the id ${clientText(path.id)}`);
  }
  return new Response(null, { status: 204 });
}

/** `POST` (ban) and `DELETE` (unban) `/api/users/:userName/ban` (admin). */
async function setBanned(
  context: Services,
  request: Request,
  { url, path }: RouteParams,
  banned: boolean,
) {
  accountsOf(context);
  checkOrigin(context, request, url);
  const admin = await adminOf(context, request, url);
  const userName = userNameOf(path.userName!);
  if (banned && nameKey(userName) === nameKey(admin.userName!)) {
    throw new HttpError(409, "you cannot ban yourself");
  }
  const account = refusing(() => context.identity.setBanned(userName, banned));
  const what = banned ? "banned" : "unbanned";
  context.log.info(`${clientText(admin.userName)} ${what} ${clientText(account.userName)}`);
  return Response.json(summary(account));
}

/** `POST /api/users/:userName/admin` (admin): makes the account an admin. */
async function grantAdmin(context: Services, request: Request, { url, path }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const admin = await adminOf(context, request, url);
  const account = refusing(() => accounts.grantAdmin(userNameOf(path.userName!)));
  context.log.info(`${clientText(admin.userName)} made ${clientText(account.userName)} an admin`);
  return Response.json(summary(account));
}

function summary({ userName, admin, banned }: Account) {
  return { userName, admin, banned };
}

/** The account store, or 404 in open mode. */
export function accountsOf(context: Services): AccountStore {
  const accounts = context.identity.accounts;
  if (accounts === null) {
    throw new HttpError(
      404,
      context.identity.mode === "jwt"
        ? 'this server has no accounts: "auth.mode" is "jwt", so tokens of another service say ' +
          "who people are"
        : 'this server has no accounts: "auth.mode" is "open", so anyone posts under any name',
    );
  }
  return accounts;
}

/** The signed-in person, or 401. */
export async function signedInAs(context: Services, request: Request, url: URL): Promise<Identity> {
  const who = await context.identity.identify(request, url);
  if (who === null) throw new HttpError(401, "sign in first: POST /api/session");
  return who;
}

/** The signed-in admin: 401 for nobody, 403 for a person who is not an admin. */
async function adminOf(context: Services, request: Request, url: URL): Promise<Identity> {
  const who = await signedInAs(context, request, url);
  if (!who.admin) throw new HttpError(403, "only an admin may do this");
  return who;
}

/** A session for `account`: 200 or 201 with who it is, and the cookie. */
function signedIn(
  context: Services,
  accounts: AccountStore,
  account: Account,
  status: number,
): Response {
  const { secret, expiresAt } = accounts.createSession(account.id);
  const body: Me = { userName: account.userName, admin: account.admin, mode: "accounts" };
  return Response.json(body, {
    status,
    headers: { "set-cookie": context.identity.sessionCookie(secret, expiresAt) },
  });
}

/** A new account's name and its password's hash, from a request body; 400 if either is bad. */
async function newCredentials(
  body: Record<string, unknown>,
): Promise<{ userName: string; passwordHash: string }> {
  const userName = validateUserName(body.userName);
  try {
    return { userName, passwordHash: await hashPassword(validatePassword(body.password)) };
  } catch (error) {
    if (error instanceof PasswordError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** What `work` returns, with its {@link AccountError} as the HTTP error it means. */
function refusing<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (!(error instanceof AccountError)) throw error;
    const status = { name_taken: 409, no_account: 404, bad_invite: 404, setup_done: 409 };
    throw new HttpError(status[error.reason], error.message);
  }
}

/** An account's name from a path (percent-encoded); one that is no valid name is a 404. */
export function userNameOf(raw: string): string {
  try {
    return validateUserName(decodeURIComponent(raw));
  } catch {
    throw new HttpError(404, `there is no account named ${clientText(raw)}`);
  }
}

/** A request's JSON object body, at most {@link MAX_BODY_BYTES}; 400 or 413 otherwise. */
export async function readJson(request: Request): Promise<Record<string, unknown>> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  const tooLarge = () => new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    text += decoder.decode(chunk, { stream: true });
  }
  let value: unknown;
  try {
    value = JSON.parse(text + decoder.decode());
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}
