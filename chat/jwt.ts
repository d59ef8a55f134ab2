/**
 * Tokens that another service signs to say who people are (`auth.mode: "jwt"`): the key they are
 * checked with, and what a valid one says. The checking itself is `jose`'s.
 *
 * A token is an HS256 JWT signed with `auth.jwt.secret`, or an RS256, ES256 or EdDSA one signed
 * with the private half of `auth.jwt.publicKeyFile`; only the algorithm of the configured key is
 * accepted. It must have `exp` and `sub`, and the `iss` and `aud` configured, if they are;
 * {@link CLOCK_SKEW_MS} of difference between the clocks is allowed. Its claims:
 *
 * - `sub`: the person (required);
 * - `name`: the name they post under (default: `sub`), a valid user name;
 * - `rooms`: the rooms they may use, names or patterns with `*` ("ops", "team-*", "*"); absent,
 *   every room;
 * - `admin`: true for an admin.
 *
 * @module
 */

import { createPublicKey } from "node:crypto";
import type * as Jose from "npm:jose@6.2.18";
import type { AuthConfig } from "./config.ts";
import { ProtocolError, validateUserName } from "./message.ts";

/**
 * `jose`, pinned. Not a literal in `import()`, so that it is no part of the module graph: only
 * a server in `jwt` mode loads it, and `deno task start` downloads it only then.
 */
const JOSE = "npm:jose@6.2.18";

/** How far the issuer's clock and this server's may disagree about `exp` and `nbf`. */
export const CLOCK_SKEW_MS = 30_000;

/** What a valid token says. */
export interface TokenClaims {
  sub: string;
  name: string;
  /** Room names and patterns; null for every room. */
  rooms: string[] | null;
  admin: boolean;
  /** The token's `exp`, in milliseconds since the epoch. */
  expiresAt: number;
}

/** A token that vouches for nobody; the message says why (never quoting the token). */
export class TokenError extends Error {
  override name = "TokenError";
}

/** A room name, or a pattern of room-name characters and `*`. */
const ROOM_PATTERN = /^[A-Za-z0-9_.*-]{1,64}$/;
const MAX_ROOM_PATTERNS = 100;
const MAX_SUB = 256;

/** Checks tokens with the configured key. */
export class TokenVerifier {
  readonly #jose: typeof Jose;
  readonly #key: Jose.CryptoKey | Uint8Array;
  readonly #options: Jose.JWTVerifyOptions;

  private constructor(jose: typeof Jose, key: Jose.CryptoKey | Uint8Array, options: {
    algorithm: string;
    issuer: string | null;
    audience: string | null;
  }) {
    this.#jose = jose;
    this.#key = key;
    this.#options = {
      algorithms: [options.algorithm],
      issuer: options.issuer ?? undefined,
      audience: options.audience ?? undefined,
      clockTolerance: CLOCK_SKEW_MS / 1000,
      requiredClaims: ["exp", "sub"],
    };
  }

  /**
   * Loads `jose` and the key: the secret, or the PEM public key of `publicKeyFile`. A key file
   * that cannot be read, is no public key, or of a kind parley does not accept is an Error
   * naming the file.
   */
  static async open(config: AuthConfig["jwt"]): Promise<TokenVerifier> {
    const jose: typeof Jose = await import(JOSE);
    const { issuer, audience } = config;
    if (config.publicKeyFile === null) {
      const secret = new TextEncoder().encode(config.secret ?? "");
      return new TokenVerifier(jose, secret, { algorithm: "HS256", issuer, audience });
    }
    const { pem, algorithm } = await readPublicKey(config.publicKeyFile);
    const key = await jose.importSPKI(pem, algorithm);
    return new TokenVerifier(jose, key, { algorithm, issuer, audience });
  }

  /** The claims of `token` if it is valid at `now` (ms since the epoch); else a {@link TokenError}. */
  async verify(token: string, now: number): Promise<TokenClaims> {
    let payload: Jose.JWTPayload;
    try {
      ({ payload } = await this.#jose.jwtVerify(token, this.#key, {
        ...this.#options,
        currentDate: new Date(now),
      }));
    } catch (error) {
      throw this.#explain(error);
    }
    return claimsOf(payload);
  }

  /** What a refusal of `jose` means to whoever sent the token. */
  #explain(error: unknown): Error {
    const { errors } = this.#jose;
    if (error instanceof errors.JWTExpired) {
      return new TokenError("the token has expired; get a new one");
    }
    if (error instanceof errors.JWTClaimValidationFailed) return claimError(error, this.#options);
    if (error instanceof errors.JOSEAlgNotAllowed) {
      return new TokenError(
        `the token is signed with an algorithm this server does not accept; it accepts only ${
          this.#options.algorithms!.join(", ")
        }`,
      );
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return new TokenError("the token's signature does not match this server's key");
    }
    if (error instanceof errors.JOSEError) {
      return new TokenError("the token is not a well-formed signed JWT");
    }
    return error as Error;
  }
}

function claimError(
  error: Jose.errors.JWTClaimValidationFailed,
  { issuer, audience }: Jose.JWTVerifyOptions,
): TokenError {
  if (error.reason === "missing") {
    return new TokenError(`the token has no "${error.claim}" claim; parley needs "sub" and "exp"`);
  }
  switch (error.claim) {
    case "iss":
      return new TokenError(`the token's issuer ("iss") must be ${JSON.stringify(issuer)}`);
    case "aud":
      return new TokenError(
        `the token is not for this server: its "aud" must include ${JSON.stringify(audience)}`,
      );
    case "nbf":
      return new TokenError('the token is not valid yet (its "nbf" is in the future)');
    default:
      return new TokenError(`the token's "${error.claim}" claim is not valid`);
  }
}

/** The claims parley reads, checked; a bad one is a {@link TokenError}. */
function claimsOf(payload: Jose.JWTPayload): TokenClaims {
  const { sub, name, rooms, admin } = payload;
  if (typeof sub !== "string" || sub === "" || sub.length > MAX_SUB) {
    throw new TokenError(`the token's "sub" must be a string of 1 to ${MAX_SUB} characters`);
  }
  let userName: string;
  try {
    userName = validateUserName(name ?? sub);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    const which = name === undefined ? '"sub" (there is no "name")' : '"name"';
    throw new TokenError(`the token's ${which} is not a valid name: ${error.message}`);
  }
  if (
    rooms !== undefined &&
    !(Array.isArray(rooms) && rooms.length <= MAX_ROOM_PATTERNS &&
      rooms.every((room) => typeof room === "string" && ROOM_PATTERN.test(room)))
  ) {
    throw new TokenError(
      `the token's "rooms" must be a list of at most ${MAX_ROOM_PATTERNS} room names or ` +
        'patterns such as ["ops", "team-*"]',
    );
  }
  if (admin !== undefined && typeof admin !== "boolean") {
    throw new TokenError('the token\'s "admin" must be true or false');
  }
  return {
    sub,
    name: userName,
    rooms: rooms === undefined ? null : rooms as string[],
    admin: admin === true,
    expiresAt: payload.exp! * 1000,
  };
}

/** The JWS algorithm of each kind of public key parley accepts. */
const ALGORITHMS: Record<string, string> = { rsa: "RS256", ec: "ES256", ed25519: "EdDSA" };

/** The public key of `path` as SPKI PEM, and the one algorithm it is used with. */
async function readPublicKey(path: string): Promise<{ pem: string; algorithm: string }> {
  const where = `"auth.jwt.publicKeyFile" ${JSON.stringify(path)}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new Error(
        `cannot read ${where}: parley may read only files below the directory it runs in; ` +
          "put the key there",
      );
    }
    throw new Error(`cannot read ${where}: ${(error as Error).message}`);
  }
  if (text.includes("PRIVATE KEY")) {
    throw new Error(`${where} holds a private key; give parley the public key only`);
  }
  let key;
  try {
    key = createPublicKey(text);
  } catch {
    throw new Error(`${where} is not a PEM public key ("-----BEGIN PUBLIC KEY-----")`);
  }
  const type = key.asymmetricKeyType ?? "unknown";
  const algorithm = ALGORITHMS[type];
  if (
    algorithm === undefined ||
    (type === "ec" && key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
  ) {
    throw new Error(
      `${where} is a key parley cannot check tokens with; use an RSA (RS256), EC P-256 (ES256) ` +
        "or Ed25519 (EdDSA) public key",
    );
  }
  return { pem: key.export({ type: "spki", format: "pem" }) as string, algorithm };
}
