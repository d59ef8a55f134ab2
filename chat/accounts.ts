/**
 * The account store: accounts, sessions, invites, API tokens, failed sign-ins, and who may use
 * which room, in tables of the history file, so that workers sharing the file share them. It has
 * its own SQLite connection (WAL, a busy timeout, like the history store's); `:memory:` is a
 * private in-memory database.
 *
 * Secrets (session ids, API tokens, invite codes) are 32 or 18 random bytes in base64url, handed
 * out once and stored only as their SHA-256: a copy of the file signs nobody in. Passwords arrive
 * here already hashed (`passwords.ts`). Time is the store's clock, which tests move.
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import { DatabaseSync, type SQLOutputValue, type StatementSync } from "node:sqlite";
import { DEFAULT_BUSY_TIMEOUT_MS } from "./history.ts";

/** An account as the rest of the server sees it (never its password). */
export interface Account {
  id: number;
  userName: string;
  admin: boolean;
  banned: boolean;
}

/** An API token as its owner lists it; the token itself is shown only when it is made. */
export interface TokenInfo {
  id: number;
  label: string;
  /** ISO 8601. */
  createdAt: string;
}

/** A new secret and when it stops working (ms since the epoch). */
export interface Issued {
  secret: string;
  expiresAt: number;
}

/** Who may use a room: anyone signed in, its members, or the two people of a direct room. */
export type RoomKind = "open" | "private" | "direct";

/** Why a store operation was refused; routes turn each into its HTTP status. */
export type AccountFailure = "name_taken" | "no_account" | "bad_invite" | "setup_done";

/** A refused operation; the message is a sentence for the person who asked. */
export class AccountError extends Error {
  override name = "AccountError";

  constructor(readonly reason: AccountFailure, message: string) {
    super(message);
  }
}

/** How to open an {@link AccountStore}. */
export interface AccountStoreOptions {
  /** The history file (`history.path`), or `":memory:"`. */
  path: string;
  sessionDays: number;
  inviteDays: number;
  busyTimeoutMs?: number;
  /** Milliseconds since the epoch; `Date.now` unless a test moves time. */
  now?: () => number;
}

/** Failed sign-ins allowed per address and per account within {@link FAILURE_WINDOW_MS}. */
export const MAX_FAILURES = 10;
export const FAILURE_WINDOW_MS = 3 * 60_000;

const DAY_MS = 86_400_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id INTEGER PRIMARY KEY,
  user_name TEXT NOT NULL,
  name_key TEXT NOT NULL UNIQUE,
  password TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  banned INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  hash TEXT PRIMARY KEY,
  account_id INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account_id);
CREATE TABLE IF NOT EXISTS invites (
  hash TEXT PRIMARY KEY,
  created_by INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_by INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_tokens (
  id INTEGER PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  account_id INTEGER NOT NULL,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_tokens_account ON api_tokens (account_id);
CREATE TABLE IF NOT EXISTS login_failures (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
-- A room without a row here is open. "rooms" is the history's table of last ids.
CREATE TABLE IF NOT EXISTS room_access (
  room TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('open', 'private', 'direct')),
  created_by INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_members (
  room TEXT NOT NULL,
  account_id INTEGER NOT NULL,
  PRIMARY KEY (room, account_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS room_members_account ON room_members (account_id, room);
`;

/** Columns added to tables of an earlier version, with their definitions. */
const ADDED_COLUMNS: readonly [table: string, column: string, definition: string][] = [
  ["room_access", "created_by", "INTEGER"],
];

const ACCOUNT = "a.id, a.user_name, a.admin, a.banned";

const STATEMENTS = {
  count: "SELECT count(*) AS n FROM accounts",
  byName: `SELECT ${ACCOUNT}, a.password FROM accounts a WHERE a.name_key = ?`,
  insertAccount: "INSERT INTO accounts (user_name, name_key, password, admin, created_at) " +
    "VALUES (?, ?, ?, ?, ?) RETURNING id",
  setAdmin: "UPDATE accounts SET admin = 1 WHERE id = ?",
  setBanned: "UPDATE accounts SET banned = ? WHERE id = ?",
  insertSession: "INSERT INTO sessions (hash, account_id, expires_at) VALUES (?, ?, ?)",
  session: `SELECT ${ACCOUNT} FROM sessions s JOIN accounts a ON a.id = s.account_id ` +
    "WHERE s.hash = ? AND s.expires_at > ? AND a.banned = 0",
  deleteSession: "DELETE FROM sessions WHERE hash = ?",
  deleteSessionsOf: "DELETE FROM sessions WHERE account_id = ?",
  pruneSessions: "DELETE FROM sessions WHERE expires_at <= ?",
  insertInvite: "INSERT INTO invites (hash, created_by, expires_at) VALUES (?, ?, ?)",
  invite: "SELECT 1 AS ok FROM invites WHERE hash = ? AND expires_at > ? AND used_by IS NULL",
  useInvite: "UPDATE invites SET used_by = ? WHERE hash = ?",
  deleteInvite: "DELETE FROM invites WHERE hash = ?",
  pruneInvites: "DELETE FROM invites WHERE expires_at <= ?",
  insertToken: "INSERT INTO api_tokens (hash, account_id, label, created_at) VALUES (?, ?, ?, ?) " +
    "RETURNING id",
  token: `SELECT ${ACCOUNT} FROM api_tokens t JOIN accounts a ON a.id = t.account_id ` +
    "WHERE t.hash = ? AND a.banned = 0",
  tokensOf: "SELECT id, label, created_at FROM api_tokens WHERE account_id = ? ORDER BY id",
  deleteToken: "DELETE FROM api_tokens WHERE id = ? AND account_id = ?",
  deleteTokensOf: "DELETE FROM api_tokens WHERE account_id = ?",
  insertFailure: "INSERT INTO login_failures (key, at) VALUES (?, ?) RETURNING id",
  failures: "SELECT count(*) AS n, min(at) AS first FROM login_failures WHERE key = ? AND at > ?",
  deleteFailure: "DELETE FROM login_failures WHERE id = ?",
  deleteFailuresOf: "DELETE FROM login_failures WHERE key = ?",
  pruneFailures: "DELETE FROM login_failures WHERE at <= ?",
  roomKind: "SELECT kind FROM room_access WHERE room = ?",
  setRoomKind: "INSERT INTO room_access (room, kind) VALUES (?, ?) " +
    "ON CONFLICT (room) DO UPDATE SET kind = excluded.kind",
  member: "SELECT 1 AS ok FROM room_members WHERE room = ? AND account_id = ?",
  addMember: "INSERT OR IGNORE INTO room_members (room, account_id) VALUES (?, ?)",
  removeMember: "DELETE FROM room_members WHERE room = ? AND account_id = ?",
  room: "SELECT kind, created_by FROM room_access WHERE room = ?",
  createRoom: "INSERT INTO room_access (room, kind, created_by) VALUES (?, ?, ?) " +
    "ON CONFLICT (room) DO NOTHING",
  members: "SELECT a.user_name FROM room_members m JOIN accounts a ON a.id = m.account_id " +
    "WHERE m.room = ? ORDER BY a.name_key",
  // Rooms after the first ? up to the second (null: no bound), in byte order like /rooms.
  roomsOf: "SELECT m.room, r.kind FROM room_members m JOIN room_access r ON r.room = m.room " +
    "WHERE m.account_id = ? AND m.room > ? AND (?3 IS NULL OR m.room <= ?3) ORDER BY m.room " +
    "LIMIT ?",
  direct: "SELECT r.room FROM room_members m JOIN room_members o ON o.room = m.room " +
    "JOIN room_access r ON r.room = m.room " +
    "WHERE m.account_id = ? AND o.account_id = ? AND r.kind = 'direct'",
  directPeer: "SELECT a.user_name FROM room_members m JOIN accounts a ON a.id = m.account_id " +
    "WHERE m.room = ? AND m.account_id != ?",
  directsOf: "SELECT m.room, a.user_name FROM room_members m " +
    "JOIN room_access r ON r.room = m.room AND r.kind = 'direct' " +
    "JOIN room_members o ON o.room = m.room AND o.account_id != m.account_id " +
    "JOIN accounts a ON a.id = o.account_id WHERE m.account_id = ? ORDER BY a.name_key",
} as const;

type Statements = Record<keyof typeof STATEMENTS, StatementSync>;

/**
 * The key two names share when they differ only in case (`Alice`, `ALICE`, `alice`): upper then
 * lower case, so that `ß` and `SS` meet too.
 */
export function nameKey(userName: string): string {
  return userName.normalize("NFC").toUpperCase().toLowerCase();
}

/** The SHA-256 of a secret, as the store keeps it. */
export function digest(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** A new secret: `bytes` random bytes in base64url. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** API tokens carry a prefix, so a leaked one is recognisable (and a secret scanner finds it). */
const TOKEN_PREFIX = "parley_";

/** Accounts and what belongs to them; one per server, over its own connection to the file. */
export class AccountStore {
  readonly #db: DatabaseSync;
  readonly #sql: Statements;
  readonly #now: () => number;
  readonly #sessionMs: number;
  readonly #inviteMs: number;

  private constructor(db: DatabaseSync, sql: Statements, options: AccountStoreOptions) {
    this.#db = db;
    this.#sql = sql;
    this.#now = options.now ?? Date.now;
    this.#sessionMs = options.sessionDays * DAY_MS;
    this.#inviteMs = options.inviteDays * DAY_MS;
  }

  /** Opens the store, creating its tables if absent; throws an Error saying why it cannot. */
  static open(options: AccountStoreOptions): AccountStore {
    const db = new DatabaseSync(options.path);
    try {
      const busyMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS));
      db.exec(`PRAGMA busy_timeout = ${busyMs}`);
      db.prepare("PRAGMA journal_mode = WAL").get();
      db.exec("PRAGMA synchronous = FULL");
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(SCHEMA);
        addColumns(db);
        db.exec("COMMIT");
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw error;
      }
      // Preparing every statement checks that tables made by another version have its columns.
      const sql = Object.fromEntries(
        Object.entries(STATEMENTS).map(([name, text]) => [name, db.prepare(text)]),
      ) as Statements;
      const store = new AccountStore(db, sql, options);
      store.#prune();
      return store;
    } catch (error) {
      db.close();
      throw new Error(`cannot open the accounts in "${options.path}": ${(error as Error).message}`);
    }
  }

  /** How many accounts there are (banned ones included). */
  count(): number {
    return this.#sql.count.get()!.n as number;
  }

  /** The account named `userName` in any case, or null. */
  find(userName: string): Account | null {
    return this.credentials(userName)?.account ?? null;
  }

  /** The account named `userName` and its stored password hash, for signing in. */
  credentials(userName: string): { account: Account; password: string } | null {
    const row = this.#sql.byName.get(nameKey(userName));
    return row === undefined ? null : { account: toAccount(row), password: row.password as string };
  }

  /** Makes the first account, an admin; refused once any account exists (two setups raced). */
  createFirstAdmin(userName: string, passwordHash: string): Account {
    return this.#transaction(() => {
      if (this.count() > 0) {
        throw new AccountError("setup_done", "this server has an account already; sign in");
      }
      return this.#insertAccount(userName, passwordHash, true);
    });
  }

  /** Makes an account with an invite, which is then used up. */
  join(code: string, userName: string, passwordHash: string): Account {
    return this.#transaction(() => {
      this.checkInvite(code);
      const account = this.#insertAccount(userName, passwordHash, false);
      this.#sql.useInvite.run(account.id, digest(code));
      return account;
    });
  }

  #insertAccount(userName: string, passwordHash: string, admin: boolean): Account {
    if (this.find(userName) !== null) {
      throw new AccountError(
        "name_taken",
        `the name ${JSON.stringify(userName)} is taken (names differ in more than case); ` +
          "choose another",
      );
    }
    const { id } = this.#sql.insertAccount.get(
      userName,
      nameKey(userName),
      passwordHash,
      admin ? 1 : 0,
      this.#now(),
    )!;
    return { id: id as number, userName, admin, banned: false };
  }

  /** Makes `userName` an admin. */
  grantAdmin(userName: string): Account {
    const account = this.#existing(userName);
    this.#sql.setAdmin.run(account.id);
    return { ...account, admin: true };
  }

  /** Bans or unbans `userName`; a ban also ends its sessions and revokes its API tokens. */
  setBanned(userName: string, banned: boolean): Account {
    return this.#transaction(() => {
      const account = this.#existing(userName);
      this.#sql.setBanned.run(banned ? 1 : 0, account.id);
      if (banned) {
        this.#sql.deleteSessionsOf.run(account.id);
        this.#sql.deleteTokensOf.run(account.id);
      }
      return { ...account, banned };
    });
  }

  #existing(userName: string): Account {
    const account = this.find(userName);
    if (account === null) {
      throw new AccountError("no_account", `there is no account named ${JSON.stringify(userName)}`);
    }
    return account;
  }

  /** A new session of `accountId`: the secret for its cookie, valid for `auth.sessionDays`. */
  createSession(accountId: number): Issued {
    const now = this.#now();
    this.#prune();
    const secret = newSecret();
    const expiresAt = now + this.#sessionMs;
    this.#sql.insertSession.run(digest(secret), accountId, expiresAt);
    return { secret, expiresAt };
  }

  /** The account a session secret signs in, unless it expired, was ended, or the account is banned. */
  sessionAccount(secret: string): Account | null {
    const row = this.#sql.session.get(digest(secret), this.#now());
    return row === undefined ? null : toAccount(row);
  }

  /** Ends a session; ending an unknown one does nothing. */
  endSession(secret: string): void {
    this.#sql.deleteSession.run(digest(secret));
  }

  /** A new single-use invite, valid for `auth.inviteDays`; its code is the secret. */
  createInvite(createdBy: number): Issued {
    const now = this.#now();
    const secret = newSecret(18);
    const expiresAt = now + this.#inviteMs;
    this.#sql.insertInvite.run(digest(secret), createdBy, expiresAt);
    return { secret, expiresAt };
  }

  /** Refuses (`bad_invite`) a `code` that is no invite, or one expired, used or revoked. */
  checkInvite(code: string): void {
    if (this.#sql.invite.get(digest(code), this.#now()) !== undefined) return;
    throw new AccountError(
      "bad_invite",
      "this invite is unknown, expired, used or revoked; ask an admin for a new one",
    );
  }

  /** Revokes an invite; false if there was none with that code. */
  revokeInvite(code: string): boolean {
    return this.#sql.deleteInvite.run(digest(code)).changes > 0;
  }

  /** A new API token of `accountId`; the secret is shown once and stored only hashed. */
  createToken(accountId: number, label: string): TokenInfo & { token: string } {
    const token = TOKEN_PREFIX + newSecret();
    const createdAt = this.#now();
    const { id } = this.#sql.insertToken.get(digest(token), accountId, label, createdAt)!;
    return { id: id as number, label, createdAt: new Date(createdAt).toISOString(), token };
  }

  /** The account an API token signs in, unless revoked or the account is banned. */
  tokenAccount(token: string): Account | null {
    const row = this.#sql.token.get(digest(token));
    return row === undefined ? null : toAccount(row);
  }

  /** The API tokens of `accountId`, oldest first. */
  tokens(accountId: number): TokenInfo[] {
    return this.#sql.tokensOf.all(accountId).map((row) => ({
      id: row.id as number,
      label: row.label as string,
      createdAt: new Date(row.created_at as number).toISOString(),
    }));
  }

  /** Revokes one of `accountId`'s tokens; false if it has none with that id. */
  revokeToken(accountId: number, id: number): boolean {
    return this.#sql.deleteToken.run(id, accountId).changes > 0;
  }

  /**
   * How long (ms) a sign-in must wait because one of `keys` (an address, an account) has
   * {@link MAX_FAILURES} failures within {@link FAILURE_WINDOW_MS}; 0 if it need not.
   */
  signInWait(keys: readonly string[]): number {
    const now = this.#now();
    let wait = 0;
    for (const key of keys) {
      const row = this.#sql.failures.get(key, now - FAILURE_WINDOW_MS)!;
      if ((row.n as number) >= MAX_FAILURES) {
        wait = Math.max(wait, (row.first as number) + FAILURE_WINDOW_MS - now);
      }
    }
    return wait;
  }

  /**
   * Counts a sign-in as failed for each of `keys`, before its password is checked, so that
   * parallel guesses count too; {@link forgive} takes it back if the password was right.
   */
  countFailure(keys: readonly string[]): number[] {
    const now = this.#now();
    this.#sql.pruneFailures.run(now - FAILURE_WINDOW_MS);
    return keys.map((key) => this.#sql.insertFailure.get(key, now)!.id as number);
  }

  /** Takes back the failures `ids`, and forgets every failure of `key` (the account signed in). */
  forgive(ids: readonly number[], key: string): void {
    for (const id of ids) this.#sql.deleteFailure.run(id);
    this.#sql.deleteFailuresOf.run(key);
  }

  /** Who may use `room`; a room nobody restricted is open. */
  roomKind(room: string): RoomKind {
    return (this.#sql.roomKind.get(room)?.kind as RoomKind | undefined) ?? "open";
  }

  /** Makes `room` open, private or direct. */
  setRoomKind(room: string, kind: RoomKind): void {
    this.#sql.setRoomKind.run(room, kind);
  }

  /** Whether account `accountId` is a member of `room`. */
  isMember(room: string, accountId: number): boolean {
    return this.#sql.member.get(room, accountId) !== undefined;
  }

  /** Makes account `accountId` a member of `room`. */
  addMember(room: string, accountId: number): void {
    this.#sql.addMember.run(room, accountId);
  }

  /** Takes account `accountId` out of `room`; false if it was no member. */
  removeMember(room: string, accountId: number): boolean {
    return this.#sql.removeMember.run(room, accountId).changes > 0;
  }

  /** A private or direct room's kind and maker (null for a direct room); null for an open room. */
  restriction(room: string): { kind: RoomKind; createdBy: number | null } | null {
    const row = this.#sql.room.get(room);
    if (row === undefined) return null;
    return { kind: row.kind as RoomKind, createdBy: row.created_by as number | null };
  }

  /** Makes `room` private, with its maker its first member; false if it is restricted already. */
  createPrivateRoom(room: string, createdBy: number): boolean {
    return this.#transaction(() => {
      if (this.#sql.createRoom.run(room, "private", createdBy).changes === 0) return false;
      this.#sql.addMember.run(room, createdBy);
      return true;
    });
  }

  /** The names of `room`'s members, in name order. */
  members(room: string): string[] {
    return this.#sql.members.all(room).map((row) => row.user_name as string);
  }

  /**
   * The private and direct rooms account `accountId` is a member of, in byte order: at most
   * `limit` of them after `after`, and up to `upTo` unless it is null.
   */
  memberRooms(
    accountId: number,
    after: string,
    upTo: string | null,
    limit: number,
  ): { room: string; kind: RoomKind }[] {
    return this.#sql.roomsOf.all(accountId, after, upTo, limit).map((row) => ({
      room: row.room as string,
      kind: row.kind as RoomKind,
    }));
  }

  /**
   * The direct room of accounts `a` and `b`, in either order, made if they have none. Its name is
   * random, so nobody can guess it, nor take it first as an open room.
   */
  directRoom(a: number, b: number): { room: string; created: boolean } {
    return this.#transaction(() => {
      const found = this.#sql.direct.get(a, b);
      if (found !== undefined) return { room: found.room as string, created: false };
      const room = `dm.${newSecret(12)}`;
      this.#sql.createRoom.run(room, "direct", null);
      this.#sql.addMember.run(room, a);
      this.#sql.addMember.run(room, b);
      return { room, created: true };
    });
  }

  /** The name of the other person of direct room `room`, for its member `accountId`. */
  directPeer(room: string, accountId: number): string | null {
    return (this.#sql.directPeer.get(room, accountId)?.user_name as string | undefined) ?? null;
  }

  /** The direct rooms of account `accountId`, and the other person's name, by that name. */
  directRooms(accountId: number): { room: string; with: string }[] {
    return this.#sql.directsOf.all(accountId).map((row) => ({
      room: row.room as string,
      with: row.user_name as string,
    }));
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #prune(): void {
    const now = this.#now();
    this.#sql.pruneSessions.run(now);
    this.#sql.pruneInvites.run(now);
  }

  #transaction<T>(work: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }
}

/** Adds {@link ADDED_COLUMNS} a table made by an earlier version lacks. */
function addColumns(db: DatabaseSync): void {
  for (const [table, column, definition] of ADDED_COLUMNS) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all().map((row) => row.name);
    if (!columns.includes(column)) {
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }
}

function toAccount(row: Record<string, SQLOutputValue>): Account {
  return {
    id: row.id as number,
    userName: row.user_name as string,
    admin: row.admin === 1,
    banned: row.banned === 1,
  };
}
