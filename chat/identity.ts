/**
 * Who is asking, and what they may do: the one place a route learns the person behind a request
 * and asks whether they may read or post in a room.
 *
 * How a route uses it:
 *
 * ```ts
 * const who = await personOf(context, request, url); // routes/route.ts: 401 for nobody
 * if (!context.identity.mayRead(who, room)) return answerAsForARoomThatDoesNotExist();
 * const userName = who.userName ?? nameTheClientGave; // null only in open mode
 * ```
 *
 * - `auth.mode: "open"`: {@link IdentityService.identify} answers {@link ANYONE} (no account, no
 *   name: the client names itself, as before) and every room is readable and writable.
 * - `"accounts"`: a person is an account of the {@link AccountStore}, signed in by the session
 *   cookie {@link SESSION_COOKIE} or by `Authorization: Bearer <API token>`; no credential is
 *   `null`. A request that changes something with a cookie must come from an allowed origin.
 *   Until the first account exists nobody holds a credential, so whatever needs a person is 401.
 * - `"jwt"`: a person is whoever a token signed by another service says (`jwt.ts`): sent as
 *   `Authorization: Bearer <JWT>`, or by a browser's WebSocket, which cannot send headers, as
 *   `?token=` on the upgrade. Its `rooms` claim limits the rooms; its expiry ends a connection
 *   (see {@link IdentityService.expiry}) unless the connection renews it in time.
 *
 * Rooms outside open mode are `open` (anyone signed in), `private` or `direct` (their members
 * only; see `AccountStore`): {@link IdentityService.mayRead} is the one rule every route applies.
 *
 * A ban, and a member taken out of a room, are announced to {@link IdentityService.subscribe}rs
 * in every worker (so that they close the connections the person lost; see {@link revokedBy}):
 * workers sharing the history file share a `BroadcastChannel`, which also carries the setup
 * token's hash (see {@link IdentityService.open}).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";
import { type Account, AccountStore, digest, newSecret } from "./accounts.ts";
import type { AuthConfig, Config } from "./config.ts";
import { CLOCK_SKEW_MS, type TokenClaims, TokenError, TokenVerifier } from "./jwt.ts";
import { clientText, type Logger } from "./log.ts";
import { ProtocolError } from "./message.ts";
import { HttpError } from "./routes/route.ts";

/** How an identity was established. */
export type Via = "open" | "session" | "token" | "jwt";

/** The person behind a request or a connection. */
export interface Identity {
  /**
   * Who it is, for comparing identities: an account's id in decimal (see {@link accountId}), a
   * JWT's `sub`; "" for {@link ANYONE}.
   */
  readonly id: string;
  /** The account's name, which is the name a person posts under; null for {@link ANYONE}. */
  readonly userName: string | null;
  readonly admin: boolean;
  readonly via: Via;
  /**
   * The rooms the credential itself is limited to (a JWT's claim: names, or patterns such as
   * "team-*"), or null: no limit beyond the rooms' own rules. {@link IdentityService.mayRead}
   * applies it.
   */
  readonly rooms: readonly string[] | null;
  /** When the credential stops vouching for the person (a JWT's `exp`), in ms; null: never. */
  readonly expiresAt: number | null;
}

/** Open mode's answer to every request: nobody in particular, who may do anything open mode allows. */
export const ANYONE: Identity = Object.freeze({
  id: "",
  userName: null,
  admin: false,
  via: "open",
  rooms: null,
  expiresAt: null,
});

/**
 * What other code may react to: account `id` was banned, or taken out of `room`. More kinds may
 * come, so switch on `type`.
 */
export type IdentityEvent =
  | { type: "banned"; id: string; userName: string }
  | { type: "removed"; id: string; userName: string; room: string };

/** The cookie a browser's session travels in. */
export const SESSION_COOKIE = "parley_session";

/** What workers tell each other (see the module's documentation). */
type WorkerNote =
  | IdentityEvent
  | { type: "setup?" }
  | { type: "setup"; hash: string };

/** How long a worker starting without accounts waits to hear another one's setup token. */
const SETUP_ASK_MS = 250;

/**
 * The end of a connection's credential (see {@link IdentityService.expiry}): the connection
 * closes then, unless it renews the credential with a newer token first.
 */
export interface Expiry {
  /** The credential's expiry, in ms since the epoch. */
  readonly expiresAt: number;
  /** Milliseconds until the connection must close: the expiry, and the clock skew allowed. */
  msLeft(): number;
  /**
   * The expiry of `token`, a newer token for the same person and room; a ProtocolError
   * (`forbidden`) if it is not valid, is another person's, or does not allow the room.
   */
  renew(token: string): Promise<Expiry>;
}

/** How to build an {@link IdentityService}. */
export interface IdentityOptions {
  config: Pick<Config, "auth" | "history">;
  /** Workers sharing the history file share this channel name; a lone server has none. */
  channel: string | null;
  /** `Admission.originAllowed`: the rule a cookie's state-changing request must pass. */
  originAllowed(origin: string | null, own: string): boolean;
  /** Give the session cookie the `Secure` attribute (the server is reached over TLS). */
  secureCookies: boolean;
  /** Milliseconds since the epoch; `Date.now` unless a test moves time. */
  now?: () => number;
}

/** One server's view of who people are; see the module's documentation. */
export class IdentityService {
  readonly mode: AuthConfig["mode"];
  /** The accounts in `accounts` mode; null in open mode. */
  readonly accounts: AccountStore | null;
  readonly #options: IdentityOptions;
  /** The key tokens are checked with in `jwt` mode; null in the others. */
  readonly #tokens: TokenVerifier | null;
  readonly #now: () => number;
  readonly #channel: BroadcastChannel | null;
  readonly #listeners = new Set<(event: IdentityEvent) => void>();
  /** Hashes of setup tokens this worker or another printed; a token itself is never kept. */
  readonly #setupHashes = new Set<string>();
  /** The token this server made and has yet to print. */
  #unprinted: string | null = null;
  /** Called when another worker tells its setup token's hash, while this one is asking. */
  #heardSetup: (() => void) | null = null;

  private constructor(
    options: IdentityOptions,
    accounts: AccountStore | null,
    tokens: TokenVerifier | null,
  ) {
    this.#options = options;
    this.mode = options.config.auth.mode;
    this.accounts = accounts;
    this.#tokens = tokens;
    this.#now = options.now ?? Date.now;
    this.#channel = accounts !== null && options.channel !== null
      ? new BroadcastChannel(options.channel)
      : null;
    if (this.#channel !== null) {
      this.#channel.onmessage = (event: MessageEvent<WorkerNote>) => this.#hear(event.data);
    }
  }

  /**
   * Opens the account store (in `accounts` mode) and, if there are no accounts yet, makes the
   * setup token that {@link announce} prints, unless another worker already has one: then this
   * one accepts that worker's token instead of printing a second. In `jwt` mode, loads the key
   * tokens are checked with. Throws an Error for a store that cannot be opened or a key that
   * cannot be used.
   */
  static async open(options: IdentityOptions): Promise<IdentityService> {
    const { auth, history } = options.config;
    if (auth.mode === "jwt") {
      return new IdentityService(options, null, await TokenVerifier.open(auth.jwt));
    }
    const accounts = auth.mode === "accounts"
      ? AccountStore.open({
        path: history.path,
        sessionDays: auth.sessionDays,
        inviteDays: auth.inviteDays,
        now: options.now,
      })
      : null;
    const service = new IdentityService(options, accounts, null);
    try {
      if (accounts !== null && accounts.count() === 0) await service.#prepareSetup();
    } catch (error) {
      service.close();
      throw error;
    }
    return service;
  }

  async #prepareSetup(): Promise<void> {
    if (this.#channel !== null) {
      const heard = Promise.withResolvers<void>();
      const timer = setTimeout(heard.resolve, SETUP_ASK_MS);
      this.#heardSetup = heard.resolve;
      this.#channel.postMessage({ type: "setup?" } satisfies WorkerNote);
      await heard.promise;
      clearTimeout(timer);
      this.#heardSetup = null;
      if (this.#setupHashes.size > 0) return;
    }
    this.#unprinted = newSecret();
    const hash = digest(this.#unprinted);
    this.#setupHashes.add(hash);
    this.#channel?.postMessage({ type: "setup", hash } satisfies WorkerNote);
  }

  #hear(note: WorkerNote): void {
    switch (note.type) {
      case "banned":
      case "removed":
        return this.#emit(note);
      case "setup?":
        for (const hash of this.#setupHashes) this.#channel?.postMessage({ type: "setup", hash });
        return;
      case "setup":
        this.#setupHashes.add(note.hash);
        this.#heardSetup?.();
        return;
    }
  }

  /**
   * What a server that has started says about who people are, in the log: that anyone can post
   * under any name, if open mode listens where other machines reach it; and, if this server made
   * the setup token and there is still no account, the setup link, which it returns for main.ts
   * to print on stdout (once: a second call returns null). The setup token is printed by design:
   * it is the one secret that reaches the log, and it works once.
   */
  announce(base: URL, hostName: string, log: Logger): URL | null {
    if (this.mode === "open" && !isLoopback(hostName)) {
      log.info(
        `warning: "auth.mode" is "open" and "hostName" ${JSON.stringify(hostName)} is reachable ` +
          'from other machines: anyone who reaches it can post under any name; set "auth.mode" ' +
          'to "accounts" to make people sign in',
      );
    }
    const token = this.#unprinted;
    this.#unprinted = null;
    if (token === null || this.accounts?.count() !== 0) return null;
    const link = new URL(`/setup?token=${token}`, base);
    log.info(`no account yet: ${setupLine(link)}`);
    // On disk before anyone is told the server is up, for whoever reads the log for it.
    log.flush();
    return link;
  }

  /** Whether `token` is a setup token printed by this server or another worker. */
  setupTokenValid(token: string): boolean {
    const hash = Buffer.from(digest(token));
    let found = false;
    for (const known of this.#setupHashes) found ||= timingSafeEqual(hash, Buffer.from(known));
    return found;
  }

  /**
   * The person behind `request`: {@link ANYONE} in open mode; else the account of its API token
   * (`Authorization: Bearer …`) or of its session cookie, or null if it carries neither. A
   * credential that signs nobody in (unknown, expired, revoked, of a banned account) is a 401
   * HttpError; a cookie's request that changes something from a page of another origin is a 403.
   * In `jwt` mode, the person of the token (see the module's documentation), or null without one;
   * a token that is not valid is a 401 saying why.
   */
  identify(request: Request, url: URL): Promise<Identity | null> {
    if (this.#tokens !== null) return this.#identifyByToken(this.#tokens, request, url);
    try {
      return Promise.resolve(this.#identify(request, url));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #identifyByToken(
    tokens: TokenVerifier,
    request: Request,
    url: URL,
  ): Promise<Identity | null> {
    const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    const token = bearerToken(request, "a token") ??
      (upgrade ? url.searchParams.get("token") || null : null);
    if (token === null) return null;
    try {
      return identityOfToken(await tokens.verify(token, this.#now()));
    } catch (error) {
      if (error instanceof TokenError) {
        throw new HttpError(401, error.message, {
          "www-authenticate": 'Bearer error="invalid_token"',
        });
      }
      throw error;
    }
  }

  #identify(request: Request, url: URL): Identity | null {
    const accounts = this.accounts;
    if (accounts === null) return ANYONE;
    const token = bearerToken(request, "an API token");
    if (token !== null) {
      const account = accounts.tokenAccount(token);
      if (account === null) {
        throw new HttpError(401, "this API token is unknown or was revoked; make a new one");
      }
      return identityOf(account, "token");
    }
    const session = readCookie(request, SESSION_COOKIE);
    if (session === null) return null;
    const account = accounts.sessionAccount(session);
    if (account === null) {
      throw new HttpError(401, "your session has ended; sign in again", {
        "set-cookie": this.clearedCookie(),
      });
    }
    const origin = request.headers.get("origin");
    if (!SAFE_METHODS.has(request.method) && !this.#options.originAllowed(origin, url.origin)) {
      throw new HttpError(
        403,
        `origin ${clientText(origin)} may not act with your session; ` +
          'add it to "allowedOrigins" in config.json to allow it',
      );
    }
    return identityOf(account, "session");
  }

  /**
   * The 401 for a request that needs a person and carries no credential: how to send one. The
   * Go server's clients, which send none, are told this server needs an account.
   */
  signInFirst(): HttpError {
    return new HttpError(
      401,
      this.mode === "jwt"
        ? "send your token as Authorization: Bearer <token>, or as ?token= on /chat"
        : "this server needs an account: sign in on its page, or send an API token as " +
          "Authorization: Bearer <token>",
      { "www-authenticate": 'Bearer realm="parley"' },
    );
  }

  /**
   * Whether `identity` may read `room`: its history, its live messages. The one rule of every
   * route: anyone in open mode; else a person, within their credential's rooms, in an open room
   * or one they are a member of. A room it may not read is answered as if it did not exist.
   */
  mayRead(identity: Identity | null, room: string): boolean {
    if (this.mode === "open") return true;
    if (identity === null) return false;
    if (identity.rooms !== null && !identity.rooms.some((pattern) => matchesRoom(pattern, room))) {
      return false;
    }
    const accounts = this.accounts;
    if (accounts === null) return true;
    return accounts.roomKind(room) === "open" || accounts.isMember(room, accountId(identity));
  }

  /** Whether `identity` may post in `room`; today whoever may read it. */
  mayPost(identity: Identity | null, room: string): boolean {
    return this.mayRead(identity, room);
  }

  /**
   * The expiry of a connection to `room` opened as `identity`, which a `refresh` frame renews;
   * null for a credential that does not expire while connected.
   */
  expiry(identity: Identity, room: string): Expiry | null {
    const tokens = this.#tokens;
    const expiresAt = identity.expiresAt;
    if (tokens === null || expiresAt === null) return null;
    return {
      expiresAt,
      msLeft: () => expiresAt + CLOCK_SKEW_MS - this.#now(),
      renew: async (token) => {
        const fresh = await this.#renewed(tokens, identity, token, room);
        return this.expiry(fresh, room)!;
      },
    };
  }

  async #renewed(
    tokens: TokenVerifier,
    current: Identity,
    token: string,
    room: string,
  ): Promise<Identity> {
    let fresh: Identity;
    try {
      fresh = identityOfToken(await tokens.verify(token, this.#now()));
    } catch (error) {
      if (error instanceof TokenError) throw new ProtocolError("forbidden", error.message);
      throw error;
    }
    if (fresh.id !== current.id) {
      throw new ProtocolError(
        "forbidden",
        "this token is another person's; a connection stays the person it was opened as",
      );
    }
    if (!this.mayRead(fresh, room)) {
      throw new ProtocolError("forbidden", "this token does not allow the room of this connection");
    }
    return fresh;
  }

  /** Bans or unbans `userName` (see `AccountStore.setBanned`); a ban is announced everywhere. */
  setBanned(userName: string, banned: boolean): Account {
    const account = this.#store().setBanned(userName, banned);
    if (banned) {
      this.#announceEvent({ type: "banned", id: String(account.id), userName: account.userName });
    }
    return account;
  }

  /**
   * Takes `account` out of `room` (see `AccountStore.removeMember`), announced everywhere; false
   * if it was no member.
   */
  removeMember(room: string, account: Account): boolean {
    if (!this.#store().removeMember(room, account.id)) return false;
    const id = String(account.id);
    this.#announceEvent({ type: "removed", id, userName: account.userName, room });
    return true;
  }

  #announceEvent(event: IdentityEvent): void {
    this.#emit(event);
    this.#channel?.postMessage(event satisfies WorkerNote);
  }

  /** Calls `listener` with every {@link IdentityEvent} of any worker; returns the unsubscribe. */
  subscribe(listener: (event: IdentityEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The `Set-Cookie` value of a new session. */
  sessionCookie(secret: string, expiresAt: number): string {
    const seconds = Math.max(0, Math.floor((expiresAt - (this.#options.now ?? Date.now)()) / 1000));
    return this.#cookie(`${SESSION_COOKIE}=${secret}; Max-Age=${seconds}`);
  }

  /** The `Set-Cookie` value that removes the session cookie. */
  clearedCookie(): string {
    return this.#cookie(`${SESSION_COOKIE}=; Max-Age=0`);
  }

  #cookie(value: string): string {
    return `${value}; Path=/; HttpOnly; SameSite=Lax${
      this.#options.secureCookies ? "; Secure" : ""
    }`;
  }

  #store(): AccountStore {
    if (this.accounts === null) throw new Error("accounts are off in open mode");
    return this.accounts;
  }

  #emit(event: IdentityEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  close(): void {
    this.#channel?.close();
    this.accounts?.close();
  }
}

/**
 * Why `identity`, connected to `room`, lost it by `event` (a close reason for the person: "banned"
 * or "removed from the room"), or null if it did not.
 */
export function revokedBy(event: IdentityEvent, identity: Identity, room: string): string | null {
  // Bans and removals are of accounts: a JWT's subject is no account id.
  if ((identity.via !== "session" && identity.via !== "token") || identity.id !== event.id) {
    return null;
  }
  switch (event.type) {
    case "banned":
      return "banned";
    case "removed":
      return event.room === room ? "removed from the room" : null;
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function identityOf(account: Account, via: Via): Identity {
  return {
    id: String(account.id),
    userName: account.userName,
    admin: account.admin,
    via,
    rooms: null,
    expiresAt: null,
  };
}

function identityOfToken({ sub, name, admin, rooms, expiresAt }: TokenClaims): Identity {
  return { id: sub, userName: name, admin, via: "jwt", rooms, expiresAt };
}

/** The account id of an identity of `accounts` mode (a session's or an API token's). */
export function accountId(identity: Identity): number {
  if (identity.via !== "session" && identity.via !== "token") {
    throw new Error(`an identity of ${identity.via} mode has no account`);
  }
  return Number(identity.id);
}

/** Whether `room` is the room `pattern` names, or one of those it matches (`*`: any run). */
function matchesRoom(pattern: string, room: string): boolean {
  if (!pattern.includes("*")) return pattern === room;
  const source = pattern.replaceAll(".", "\\.").replaceAll("*", ".*");
  return new RegExp(`^${source}$`).test(room);
}

/**
 * The token of `Authorization: Bearer …`, or null without the header; another scheme is a 401
 * that asks for `what` ("an API token").
 */
function bearerToken(request: Request, what: string): string | null {
  const header = request.headers.get("authorization");
  if (header === null) return null;
  const match = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(header);
  if (match === null) {
    throw new HttpError(401, `send ${what} as Authorization: Bearer <token>`);
  }
  return match[1];
}

/** The value of cookie `name` in the request's `Cookie` header, or null. */
export function readCookie(request: Request, name: string): string | null {
  for (const pair of (request.headers.get("cookie") ?? "").split(";")) {
    const at = pair.indexOf("=");
    if (at !== -1 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim() || null;
  }
  return null;
}

/** How the setup link is offered, in the log and on stdout. */
export function setupLine(link: URL): string {
  return `create the admin account at ${link} (the link works once)`;
}

/** Whether the server listens only where other machines cannot reach it. */
export function isLoopback(hostName: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(hostName) || ["::1", "[::1]", "localhost"].includes(hostName);
}
