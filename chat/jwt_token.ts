/**
 * `deno task jwt-token SUB [--name NAME] [--rooms ops,team-*] [--admin] [--minutes 60]
 * [--config config.json]`: prints a token for trying `auth.mode: "jwt"`, signed (HS256) with the
 * config's `auth.jwt.secret` and carrying its `iss` and `aud`. In production the service people
 * sign in to makes the tokens; this is for a person trying parley, and for tests.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { SignJWT } from "npm:jose@6.2.18";
import { ConfigError, loadConfig } from "./config.ts";

const USAGE = "usage: deno task jwt-token SUB [--name NAME] [--rooms ops,team-*] [--admin] " +
  "[--minutes 60] [--config config.json]";

/** The token `args` ask for; a {@link ConfigError} for a wrong argument or config. */
export async function makeToken(args: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      rooms: { type: "string" },
      admin: { type: "boolean", default: false },
      minutes: { type: "string", default: "60" },
      config: { type: "string", default: "config.json" },
    },
  });
  const minutes = Number(values.minutes);
  if (positionals.length !== 1 || !(minutes > 0)) throw new ConfigError(USAGE);
  const config = await loadConfig(["--config", values.config], () => undefined);
  const { secret, issuer, audience } = config.auth.jwt;
  if (secret === null) {
    throw new ConfigError(`${values.config} has no "auth.jwt.secret" to sign a token with`);
  }
  const claims: Record<string, unknown> = { admin: values.admin };
  if (values.name !== undefined) claims.name = values.name;
  if (values.rooms !== undefined) claims.rooms = values.rooms.split(",").map((r) => r.trim());
  const token = new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(positionals[0])
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000 + minutes * 60));
  if (issuer !== null) token.setIssuer(issuer);
  if (audience !== null) token.setAudience(audience);
  return await token.sign(new TextEncoder().encode(secret));
}

if (import.meta.main) {
  try {
    console.log(await makeToken(Deno.args));
  } catch (error) {
    console.error(`jwt-token: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
