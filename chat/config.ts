/**
 * parley's settings: `config.json`, then the `PORT` environment variable, then flags.
 * Every problem is a {@link ConfigError} whose message names the key and the fix.
 */

import { redisTarget, RedisTargetError } from "./redis_target.ts";

/** Every setting, with the defaults of {@link defaultConfig}. */
export interface Config {
  hostName: string;
  port: number;
  logfilePath: string;
  history: {
    path: string;
    maxMessagesPerRoom: number;
    onJoin: number;
    legacyLimit: number;
    /** The most events a resume (`since`) replays; further back, `recovered: false`. */
    maxReplay: number;
  };
  limits: {
    maxMessageBytes: number;
    messagesPerSecond: number;
    burst: number;
    maxConnections: number;
    maxConnectionsPerIp: number;
    sendBufferBytes: number;
    idleTimeoutSeconds: number;
    /** Reads (`/history`, `/rooms`, `/metrics`) per second from one address; the burst is twice. */
    readsPerSecond: number;
  };
  allowedOrigins: string[];
  /**
   * Host names the server answers to besides loopback ones (behind a proxy: the public name).
   * With a loopback `hostName`, a request for any other `Host` is refused (DNS rebinding).
   */
  allowedHosts: string[];
  workers: number | "auto";
  /**
   * Redis, to share rooms between instances: a server's URL, or a Redis Cluster's (some of its
   * nodes: a list of URLs, or a `redis+cluster://host:port,host:port` URL); see `redis_target.ts`.
   */
  redis: string | string[] | null;
  auth: AuthConfig;
  /**
   * PEM files to serve HTTPS and WSS with, both or neither; read at start. With them the session
   * cookie is `Secure`.
   */
  tls: { certFile: string | null; keyFile: string | null };
}

/** Who people are (see `chat/identity.ts`). */
export interface AuthConfig {
  /**
   * `open`: anyone posts under any name (the Go server's behaviour); `accounts`: people sign in
   * to accounts kept in the history file; `jwt`: another service signs tokens saying who they are.
   */
  mode: "open" | "accounts" | "jwt";
  /** How long a sign-in lasts. */
  sessionDays: number;
  /** How long an invite can be used. */
  inviteDays: number;
  /**
   * For `jwt`: an HS256 `secret`, or a `publicKeyFile` (PEM: RSA, EC P-256 or Ed25519), and the
   * `iss` and `aud` to require, if set (see `chat/jwt.ts`).
   */
  jwt: {
    secret: string | null;
    publicKeyFile: string | null;
    issuer: string | null;
    audience: string | null;
  };
}

/** A configuration that cannot be used; the message says which key and what to do. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The defaults (README, "Configuration"); a key left out of `config.json` takes its value here. */
export const defaultConfig: Readonly<Config> = Object.freeze<Config>({
  hostName: "127.0.0.1",
  port: 8080,
  logfilePath: "parley.log",
  history: {
    path: "data/parley.db",
    maxMessagesPerRoom: 10000,
    onJoin: 100,
    legacyLimit: 1000,
    maxReplay: 1000,
  },
  limits: {
    maxMessageBytes: 4096,
    messagesPerSecond: 10,
    burst: 20,
    maxConnections: 10000,
    maxConnectionsPerIp: 100,
    sendBufferBytes: 1048576,
    idleTimeoutSeconds: 60,
    readsPerSecond: 20,
  },
  allowedOrigins: [],
  allowedHosts: [],
  workers: 1,
  redis: null,
  auth: {
    mode: "open",
    sessionDays: 30,
    inviteDays: 7,
    jwt: { secret: null, publicKeyFile: null, issuer: null, audience: null },
  },
  tls: { certFile: null, keyFile: null },
});

type Check = (value: unknown, key: string) => void;

const nonEmptyString: Check = (v, key) => {
  if (typeof v !== "string" || v === "") fail(key, "a non-empty string", v);
};
const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v, key) => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(key, `a whole number from ${min} to ${max}`, v);
  }
};
const positive: Check = (v, key) => {
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) fail(key, "a number above 0", v);
};

const nullOrString: Check = (v, key) => {
  if (v !== null) nonEmptyString(v, key);
};

/** The checks of a section, by key; a nested section has checks of its own. */
interface Checks {
  [key: string]: Check | Checks;
}

const checks: Checks = {
  hostName: nonEmptyString,
  port: integer(0, 65535),
  logfilePath: nonEmptyString,
  history: {
    path: nonEmptyString,
    maxMessagesPerRoom: integer(1),
    onJoin: integer(0, 10000),
    legacyLimit: integer(0, 100000),
    maxReplay: integer(0, 100000),
  },
  limits: {
    maxMessageBytes: integer(1, 1 << 20),
    messagesPerSecond: positive,
    burst: integer(1),
    maxConnections: integer(1),
    maxConnectionsPerIp: integer(1),
    sendBufferBytes: integer(1024),
    idleTimeoutSeconds: integer(0),
    readsPerSecond: positive,
  },
  allowedOrigins: (v, key) => {
    if (!Array.isArray(v)) {
      return fail(key, 'a list of origins such as ["https://chat.example"]', v);
    }
    for (const origin of v) {
      if (typeof origin !== "string" || !isOrigin(origin)) {
        fail(
          key,
          'origins written as scheme://host[:port], such as "https://chat.example"',
          origin,
        );
      }
    }
  },
  allowedHosts: (v, key) => {
    const name = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;
    if (!Array.isArray(v) || !v.every((host) => typeof host === "string" && name.test(host))) {
      fail(key, 'a list of host names such as ["chat.example"]', v);
    }
  },
  workers: (v, key) => {
    if (v !== "auto") integer(1, 256)(v, key);
  },
  redis: (v, key) => {
    if (v === null) return;
    try {
      if (typeof v !== "string" && !Array.isArray(v)) throw new RedisTargetError("");
      redisTarget(v);
    } catch (error) {
      if (!(error instanceof RedisTargetError)) throw error;
      fail(
        key,
        'null, a URL such as "redis://127.0.0.1:6379", or a Redis Cluster\'s nodes: a list of ' +
          'such URLs, or "redis+cluster://10.0.0.1:6379,10.0.0.2:6379"' +
          (error.message === "" ? "" : ` (${error.message})`),
        v,
      );
    }
  },
  auth: {
    mode: (v, key) => {
      if (v !== "open" && v !== "accounts" && v !== "jwt") {
        fail(key, '"open", "accounts" or "jwt"', v);
      }
    },
    sessionDays: integer(1, 3650),
    inviteDays: integer(1, 365),
    jwt: {
      secret: (v, key) => {
        if (v !== null && (typeof v !== "string" || v.length < 32)) {
          fail(key, "null or a secret of at least 32 characters", v === null ? v : "…");
        }
      },
      publicKeyFile: nullOrString,
      issuer: nullOrString,
      audience: nullOrString,
    },
  },
  tls: { certFile: nullOrString, keyFile: nullOrString },
};

function isOrigin(value: string): boolean {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}

function fail(key: string, expected: string, got: unknown): never {
  throw new ConfigError(`"${key}" must be ${expected}, not ${JSON.stringify(got) ?? "undefined"}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Validates a parsed config file (or overrides) against the known keys and types, and merges it
 * over `base`. Unknown keys are errors, so a typo never silently falls back to a default; so are
 * settings that cannot work together.
 */
export function mergeConfig(base: Readonly<Config>, raw: unknown, source: string): Config {
  if (!isRecord(raw)) {
    throw new ConfigError(`${source} must hold a JSON object such as {"port": 8080}`);
  }
  const merged = structuredClone(base) as unknown as Record<string, unknown>;
  mergeSection(merged, raw, checks, source, "");
  checkCombination(merged as unknown as Config);
  return merged as unknown as Config;
}

/** Checks `raw`'s keys against `known` and writes them into `section`, sections key by key. */
function mergeSection(
  section: Record<string, unknown>,
  raw: Record<string, unknown>,
  known: Checks,
  source: string,
  prefix: string,
): void {
  for (const [key, value] of Object.entries(raw)) {
    const check = known[key];
    if (check === undefined) {
      throw unknownKey(source, `${prefix}${key}`, Object.keys(known).map((k) => `${prefix}${k}`));
    }
    if (typeof check === "function") {
      check(value, `${prefix}${key}`);
      section[key] = value;
      continue;
    }
    if (!isRecord(value)) fail(`${prefix}${key}`, "an object", value);
    mergeSection(section[key] as Record<string, unknown>, value, check, source, `${prefix}${key}.`);
  }
}

/** Refuses settings that are each valid but cannot work together; the message names both. */
function checkCombination({ auth, redis, tls }: Config): void {
  if ((tls.certFile === null) !== (tls.keyFile === null)) {
    const [set, unset] = tls.certFile === null ? ["keyFile", "certFile"] : ["certFile", "keyFile"];
    throw new ConfigError(
      `"tls.${set}" is set without "tls.${unset}": set both to serve HTTPS, or neither`,
    );
  }
  if (auth.mode === "accounts" && redis !== null) {
    throw new ConfigError(
      '"auth.mode": "accounts" cannot be used with "redis": accounts live in the history file, ' +
        'which instances do not share; set "redis" to null or choose another "auth.mode"',
    );
  }
  if (auth.mode === "jwt" && auth.jwt.secret === null && auth.jwt.publicKeyFile === null) {
    throw new ConfigError(
      '"auth.mode": "jwt" needs "auth.jwt.secret" or "auth.jwt.publicKeyFile" to check ' +
        "tokens with; set one of them",
    );
  }
  if (auth.jwt.secret !== null && auth.jwt.publicKeyFile !== null) {
    throw new ConfigError(
      '"auth.jwt.secret" and "auth.jwt.publicKeyFile" are both set, but tokens are checked ' +
        "with one key; set the other to null",
    );
  }
}

function unknownKey(source: string, key: string, known: string[]): ConfigError {
  return new ConfigError(
    `${source} has an unknown key "${key}"; known keys are ${known.join(", ")}`,
  );
}

/** Reads and validates a config file; a missing default file is not an error. */
async function readConfigFile(path: string, required: boolean): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !required) return structuredClone(defaultConfig);
    throw new ConfigError(`cannot read the config file ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  return mergeConfig(defaultConfig, raw, path);
}

/** What the command line says: `--config FILE`, `--port N`, `--host NAME`. */
export interface Flags {
  config?: string;
  port?: number;
  hostName?: string;
}

const usage = "usage: parley [--config FILE] [--port N] [--host NAME]";

/** Parses parley's flags; anything unknown is a {@link ConfigError} carrying the usage line. */
export function parseFlags(args: readonly string[]): Flags {
  const flags: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split(/=(.*)/s, 2);
    if (!["--config", "--host", "--port"].includes(name)) {
      throw new ConfigError(`unknown argument ${JSON.stringify(args[i])}; ${usage}`);
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new ConfigError(`${name} needs a value; ${usage}`);
    if (name === "--config") flags.config = value;
    else if (name === "--host") {
      nonEmptyString(value, "--host");
      flags.hostName = value;
    } else flags.port = parsePort(value, "--port");
  }
  return flags;
}

function parsePort(value: string, source: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(`${source} must be a port number from 0 to 65535, not "${value}"`);
  }
  return port;
}

/**
 * The configuration in force: the file (`--config`, else `config.json` if present), then `PORT`,
 * then flags.
 */
export async function loadConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): Promise<Config> {
  const flags = parseFlags(args);
  const config = await readConfigFile(flags.config ?? "config.json", flags.config !== undefined);
  const envPort = env("PORT");
  if (envPort !== undefined && envPort !== "") config.port = parsePort(envPort, "PORT");
  if (flags.port !== undefined) config.port = flags.port;
  if (flags.hostName !== undefined) config.hostName = flags.hostName;
  return config;
}
