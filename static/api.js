// @ts-check
/**
 * The account API (`/api/…`) as the page calls it: who the person is, signing in and out, the
 * first admin, invites, bans, private rooms and their members, direct rooms. Every failure is an
 * ApiError whose message is a sentence for a person. No DOM here; `fetch` is injectable.
 */

/** The shortest password the server accepts (chat/passwords.ts). */
export const MIN_PASSWORD_LENGTH = 10;

/**
 * Who the person is. `mode` is the server's `auth.mode`; `userName` is null when nobody is signed
 * in (and always in open mode, where a person names themselves).
 * @typedef {{ mode: "open" | "accounts", userName: string | null, admin: boolean }} Me
 */

/** An invite: its link, and when it stops working. @typedef {{ url: string, expiresAt: string }} Invite */

/** An API request that failed; `status` is the HTTP status, 0 when the server was not reached. */
export class ApiError extends Error {
  /** @override */
  name = "ApiError";

  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * A server's terse reason as a sentence: a capital first letter and a full stop.
 * @param {string} text
 * @returns {string}
 */
export function sentence(text) {
  const trimmed = text.trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * Why a new password would be refused, as a sentence for the form; "" when it is fine.
 * @param {string} password
 * @returns {string}
 */
export function passwordError(password) {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    return `A password needs at least ${MIN_PASSWORD_LENGTH} characters.`;
  }
  return "";
}

/**
 * An answer of `/api/me` or of a sign-in as a Me; open mode for anything unexpected (an older
 * server without the API answers 404), so the page still works as it did.
 * @param {number} status
 * @param {unknown} data
 * @returns {Me}
 */
export function readMe(status, data) {
  const body = isObject(data) ? data : {};
  const mode = body.mode === "accounts" ? "accounts" : "open";
  const signedIn = mode === "accounts" && status >= 200 && status < 300 &&
    typeof body.userName === "string";
  return {
    mode,
    userName: signedIn ? /** @type {string} */ (body.userName) : null,
    admin: signedIn && body.admin === true,
  };
}

/** The account API of the server that served the page. */
export class Api {
  /** @type {typeof fetch} */ #fetch;

  /** @param {typeof fetch} [fetchFn] */
  constructor(fetchFn = (input, init) => fetch(input, init)) {
    this.#fetch = fetchFn;
  }

  /**
   * Who the person is. Never throws: a server that cannot be asked is taken to be in open mode.
   * @returns {Promise<Me>}
   */
  async me() {
    try {
      const response = await this.#fetch("/api/me", {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      return readMe(response.status, await jsonOf(response));
    } catch {
      return readMe(0, null);
    }
  }

  /**
   * Signs in; a wrong password, a ban or too many attempts is an ApiError saying so.
   * @param {string} userName
   * @param {string} password
   * @returns {Promise<Me>}
   */
  async signIn(userName, password) {
    return readMe(200, await this.#call("POST", "/api/session", { userName, password }));
  }

  /** Ends this browser's session. */
  async signOut() {
    await this.#call("DELETE", "/api/session");
  }

  /**
   * Creates the first account, an admin, with the setup link's token; signed in.
   * @param {string} token
   * @param {string} userName
   * @param {string} password
   * @returns {Promise<Me>}
   */
  async setup(token, userName, password) {
    return readMe(201, await this.#call("POST", "/api/setup", { token, userName, password }));
  }

  /**
   * Creates an account with an invite's code; signed in.
   * @param {string} code
   * @param {string} userName
   * @param {string} password
   * @returns {Promise<Me>}
   */
  async join(code, userName, password) {
    const path = `/api/join/${encodeURIComponent(code)}`;
    return readMe(201, await this.#call("POST", path, { userName, password }));
  }

  /**
   * A new single-use invite link (admins only).
   * @returns {Promise<Invite>}
   */
  async invite() {
    const data = await this.#call("POST", "/api/invites");
    if (typeof data.url !== "string") throw new ApiError(201, "The server sent no invite link.");
    return { url: data.url, expiresAt: typeof data.expiresAt === "string" ? data.expiresAt : "" };
  }

  /**
   * Bans an account (admins only): its sessions end and its connections close.
   * @param {string} userName
   */
  async ban(userName) {
    await this.#call("POST", `/api/users/${encodeURIComponent(userName)}/ban`);
  }

  /**
   * Creates a private room; its creator is its first member.
   * @param {string} room
   */
  async createPrivateRoom(room) {
    await this.#call("POST", "/api/rooms", { room, kind: "private" });
  }

  /**
   * Adds a person to a private room.
   * @param {string} room
   * @param {string} userName
   */
  async addMember(room, userName) {
    await this.#call("POST", `/api/rooms/${encodeURIComponent(room)}/members`, { userName });
  }

  /**
   * Removes a person from a private room; their connections to it close.
   * @param {string} room
   * @param {string} userName
   */
  async removeMember(room, userName) {
    const path = `/api/rooms/${encodeURIComponent(room)}/members/${encodeURIComponent(userName)}`;
    await this.#call("DELETE", path);
  }

  /**
   * The members of a private room (for its members and admins).
   * @param {string} room
   * @returns {Promise<string[]>}
   */
  async members(room) {
    const data = await this.#call("GET", `/api/rooms/${encodeURIComponent(room)}/members`);
    const members = Array.isArray(data.members) ? data.members : [];
    return members.filter((name) => typeof name === "string");
  }

  /**
   * The direct room of the person and `userName`, made if there is none yet.
   * @param {string} userName
   * @returns {Promise<string>} the room's name
   */
  async direct(userName) {
    const data = await this.#call("POST", "/api/direct", { userName });
    if (typeof data.room !== "string") throw new ApiError(201, "The server named no room.");
    return data.room;
  }

  /**
   * One request; its JSON object answer, or an ApiError with the server's reason.
   * @param {string} method
   * @param {string} path
   * @param {Record<string, unknown>} [body]
   * @returns {Promise<Record<string, unknown>>}
   */
  async #call(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await this.#fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "The server could not be reached; check the connection and try again.");
    }
    const data = await jsonOf(response);
    if (!response.ok) throw new ApiError(response.status, failureText(response, data));
    return isObject(data) ? data : {};
  }
}

/**
 * What a failed answer says, as a sentence; a 429 without a reason still says how long to wait.
 * @param {Response} response
 * @param {unknown} data
 * @returns {string}
 */
function failureText(response, data) {
  const reason = isObject(data) && typeof data.error === "string" ? data.error : "";
  if (reason) return sentence(reason);
  const wait = response.headers.get("retry-after");
  if (response.status === 429 && wait) return `Too many attempts; try again in ${wait} s.`;
  return `The server answered ${response.status}; try again.`;
}

/**
 * A response's body as JSON, or null when it has none or it is not JSON.
 * @param {Response} response
 * @returns {Promise<unknown>}
 */
async function jsonOf(response) {
  try {
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
