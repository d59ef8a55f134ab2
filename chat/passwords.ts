/**
 * Passwords: the rule a new one must meet, and scrypt (`node:crypto`) with a salt per password.
 * A stored password is `scrypt$N$r$p$salt$key` (base64url), so the cost can rise later without
 * making old passwords unusable. Nothing here logs or returns a password.
 */

import { Buffer } from "node:buffer";
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** The shortest password accepted. */
export const MIN_PASSWORD_LENGTH = 10;
/** The longest: scrypt's cost does not grow with it, but a request body should stay small. */
export const MAX_PASSWORD_LENGTH = 1024;

/** scrypt's cost: about 80 ms on the development machine, off the event loop. */
const COST = { N: 16384, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** A password that breaks the rule; the message says what the rule is. */
export class PasswordError extends Error {
  override name = "PasswordError";
}

/** `password` if it is a string of {@link MIN_PASSWORD_LENGTH} to {@link MAX_PASSWORD_LENGTH} characters. */
export function validatePassword(password: unknown): string {
  if (typeof password !== "string") {
    throw new PasswordError('send the password as a string: {"password": "…"}');
  }
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw new PasswordError(
      `a password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`,
    );
  }
  return password;
}

/** The stored form of `password`, with a fresh salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, COST);
  const { N, r, p } = COST;
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/**
 * Whether `password` is the one `stored` was made from, compared in constant time. A `stored`
 * that is not a password hash (null: the account does not exist) still costs one scrypt, so the
 * answer takes as long whether or not the account exists.
 */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = stored?.split("$") ?? [];
  const [scheme, N, r, p, salt, key] = parts;
  const cost = { N: Number(N), r: Number(r), p: Number(p) };
  const valid = parts.length === 6 && scheme === "scrypt" &&
    Object.values(cost).every(Number.isSafeInteger);
  const expected = valid ? Buffer.from(key, "base64url") : Buffer.alloc(KEY_BYTES);
  const derived = await derive(
    password,
    valid ? Buffer.from(salt, "base64url") : Buffer.alloc(SALT_BYTES),
    valid ? cost : COST,
    expected.length || KEY_BYTES,
  );
  return valid && derived.length === expected.length && timingSafeEqual(derived, expected);
}

function derive(
  password: string,
  salt: Buffer,
  cost: { N: number; r: number; p: number },
  bytes = KEY_BYTES,
): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; the default cap (32 MiB) is just below that for N = 2^15.
  const maxmem = 256 * cost.N * cost.r;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, bytes, { ...cost, maxmem }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}
