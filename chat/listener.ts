/**
 * The listening socket, kept listening. `Deno.serve` stops accepting for good when accepting fails
 * (out of file descriptors: "Too many open files"), and the process would go on refusing every
 * connection; so a listener that fails while not shutting down is served again on its port, after
 * a pause that grows until it binds. The connections it had go on being served. With `tls` set it
 * serves HTTPS and WSS, with the certificate and key read once at start, also when served again.
 */

import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { StartupError } from "./services.ts";

/** A listener that is served again if it fails. */
export interface Listener {
  /** Where it listens: the port chosen, when the config says 0. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting and stops serving again; resolves once every listener has finished. */
  shutdown(): Promise<void>;
}

/** The first pause before serving again; it doubles with each failure, up to the second. */
const FIRST_PAUSE_MS = 50;
const MAX_PAUSE_MS = 1000;
/**
 * Failed servers kept serving the connections they had; past this many the oldest is shut down,
 * closing them (a flood that fails the listener every second would otherwise grow the list).
 */
const MAX_FAILED = 32;
/** The key of the listener's lines in the log's rate limit: a flood can fail it again and again. */
const LOG_KEY = "listener";

/**
 * Reads `config`'s TLS files and binds its address and port; a failure is a {@link StartupError}
 * saying what to change.
 */
export function listen(
  config: Config,
  reusePort: boolean,
  log: Logger,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Listener {
  const tls = readTls(config.tls);
  const serve = (port: number) =>
    Deno.serve({
      hostname: config.hostName,
      port,
      reusePort,
      ...tls,
      onListen: () => {},
      // The dispatcher answers whatever a handler throws; this is for a failure of its own.
      onError: (error) => {
        log.error(`request failed: ${(error as Error).stack ?? error}`);
        return Response.json({ error: "internal error; see the server log" }, { status: 500 });
      },
    }, handler);
  let first: Deno.HttpServer<Deno.NetAddr>;
  try {
    first = serve(config.port);
  } catch (error) {
    throw new StartupError(
      (tls && tlsError(config.tls, error as Error)) ?? bindError(config, error as Error),
    );
  }
  return new Supervised(first, serve, log);
}

type Server = Deno.HttpServer<Deno.NetAddr>;

/** Serves again, on the same port, whenever the current server fails. */
class Supervised implements Listener {
  readonly addr: Deno.NetAddr;
  #current: Server;
  /** Servers that failed, oldest first: the connections they had are still theirs. */
  readonly #failed: Server[] = [];
  #pauseMs = FIRST_PAUSE_MS;
  #stopping = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    first: Server,
    private readonly serve: (port: number) => Server,
    private readonly log: Logger,
  ) {
    this.addr = first.addr;
    this.#current = first;
    this.#watch(first);
  }

  #watch(server: Server): void {
    server.finished.catch((error: Error) => {
      if (this.#stopping) return;
      this.#failed.push(server);
      if (this.#failed.length > MAX_FAILED) this.#failed.shift()!.shutdown().catch(() => {});
      this.log.limited(
        LOG_KEY,
        `the listener on port ${this.addr.port} failed (${error.message}); ` +
          "serving it again as soon as it can",
      );
      this.#retry();
    });
  }

  #retry(): void {
    this.#timer = setTimeout(() => {
      if (this.#stopping) return;
      try {
        this.#current = this.serve(this.addr.port);
      } catch {
        return this.#retry();
      }
      this.log.limited(LOG_KEY, `listening again on port ${this.addr.port}`);
      this.#watch(this.#current);
    }, this.#pauseMs);
    this.#pauseMs = Math.min(2 * this.#pauseMs, MAX_PAUSE_MS);
  }

  async shutdown(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    const servers = new Set([this.#current, ...this.#failed]);
    await Promise.all([...servers].map((server) => server.shutdown().catch(() => {})));
  }
}

/** The certificate and key `Deno.serve` is given, or null without `tls`. */
function readTls({ certFile, keyFile }: Config["tls"]): Deno.TlsCertifiedKeyPem | null {
  if (certFile === null || keyFile === null) return null;
  return { cert: readPem("tls.certFile", certFile), key: readPem("tls.keyFile", keyFile) };
}

function readPem(key: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    // deno.json's start task lets parley read only below the directory it runs in.
    const fix = error instanceof Deno.errors.NotCapable
      ? "put it below the directory parley runs in"
      : `check "${key}"`;
    throw new StartupError(`cannot read "${key}" ${path}: ${(error as Error).message}; ${fix}`);
  }
}

/**
 * What is wrong with the certificate or the key, naming the file, if `error` is Deno refusing
 * one of them; null if it is about something else (the address).
 */
function tlsError({ certFile, keyFile }: Config["tls"], error: Error): string | null {
  const why = error.message;
  if (/mismatch|consistent/i.test(why)) {
    return `the key in "tls.keyFile" ${keyFile} is not the key of the certificate in ` +
      `"tls.certFile" ${certFile} (${why}); give the key the certificate was made with`;
  }
  if (/certificate/i.test(why)) {
    return `"tls.certFile" ${certFile} holds no usable PEM certificate (${why}); give the ` +
      'file that starts with "-----BEGIN CERTIFICATE-----"';
  }
  if (/key/i.test(why)) {
    return `"tls.keyFile" ${keyFile} holds no usable PEM private key (${why}); give the ` +
      'unencrypted key, the file that starts with "-----BEGIN PRIVATE KEY-----"';
  }
  return null;
}

function bindError(config: Config, error: Error): string {
  const where = `${config.hostName}:${config.port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return `cannot listen on ${where}: the port is in use; stop the other server or choose ` +
      "another port with --port or PORT";
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `cannot listen on ${where}: this machine has no such address; check "hostName"`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `cannot listen on ${where}: permission denied; ports below 1024 need privileges`;
  }
  return `cannot listen on ${where}: ${error.message}; check "hostName" and "port"`;
}
