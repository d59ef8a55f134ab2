/**
 * What the server runs on (the log, the history store, the bus, the rooms, the metrics, the
 * clients and the admission rules), built in one place and closed in reverse order, once, however
 * far the building got.
 */

import { resolve } from "node:path";
import { Admission, allowedHostsOf } from "./admission.ts";
import { type Bus, LocalBus, RedisBus } from "./bus.ts";
import type { Client } from "./client.ts";
import type { Config } from "./config.ts";
import { fitConnections } from "./descriptors.ts";
import { HistoryError, HistoryStore } from "./history.ts";
import { LagMonitor } from "./lag.ts";
import { IdentityService, revokedBy } from "./identity.ts";
import { Live } from "./live.ts";
import { Logger } from "./log.ts";
import { type Exchange, Metrics } from "./metrics.ts";
import { ReadMarkers } from "./read_markers.ts";
import { Rooms } from "./room.ts";
import { SearchIndex } from "./search.ts";
import { CloseCode, KEEPALIVE_MS } from "./transport.ts";

/** The server could not start; the message says why and what to change. */
export class StartupError extends Error {
  override name = "StartupError";
}

/** How the server runs beside its config. */
export interface ServerOptions {
  /** Log to the log file only, not stderr (tests). */
  quiet?: boolean;
  /** Share the port and the rooms with other workers (`workers` > 1). */
  reusePort?: boolean;
  /** Prefixes this server's log lines, e.g. "worker 2". */
  name?: string;
  /** This server's worker number, labelling its per-worker gauges in `/metrics`. */
  worker?: number;
  /** How `/metrics` gets the other workers' samples, to answer for the whole process. */
  exchange?: Exchange;
  /** Called with the history store once it is open: tests use it to make the store fail. */
  onHistoryOpened?: (store: HistoryStore) => void;
  /** The clock sessions, invites and failed sign-ins are judged by: tests move it. */
  now?: () => number;
  /** How often a quiet event stream sends a keepalive comment (`KEEPALIVE_MS`): tests wait less. */
  keepaliveMs?: number;
}

/**
 * The services of one server: what its routes are given. Disposing it stops the lag monitor and
 * closes the bus, the history and the log, in that order; the log says "stopped" if
 * {@link Services.stopping} was set.
 */
export interface Services extends AsyncDisposable {
  readonly config: Config;
  readonly log: Logger;
  readonly history: HistoryStore;
  /** The search index of the history's messages. */
  readonly search: SearchIndex;
  readonly bus: Bus;
  readonly rooms: Rooms;
  readonly metrics: Metrics;
  /** The connected clients; each removes itself when its socket closes. */
  readonly clients: Set<Client>;
  readonly admission: Admission;
  /** Who is asking, and what they may do. */
  readonly identity: IdentityService;
  /** Typing, read markers and room summaries (`live.ts`). */
  readonly live: Live;
  /** How often a quiet event stream says it is alive. */
  readonly keepaliveMs: number;
  /** Set when shutdown begins: upgrades are refused and `/healthz` answers 503. */
  stopping: boolean;
}

/**
 * Opens the log, the history store and the bus, and makes the rest. A failure is a
 * {@link StartupError} (an unexpected one is rethrown as it is), after closing what was opened.
 */
export async function openServices(given: Config, options: ServerOptions): Promise<Services> {
  await using stack = new AsyncDisposableStack();
  const log = openLog(given, options);
  const config = withinFileLimit(given, options, log);
  let shutDown = false;
  stack.defer(() => {
    // A server that failed to start says why on stderr; only one that was shut down "stopped".
    if (shutDown) log.info("stopped");
    log.close();
  });
  const history = stack.adopt(openHistory(config), (store) => store.close());
  options.onHistoryOpened?.(history);
  // Closed before the history store, which it indexes.
  const search = stack.adopt(openSearch(history, log), (index) => index.close());
  const bus = stack.adopt(await connectBus(config, options, history, log), (bus) => bus.close());
  const lag = stack.use(new LagMonitor());
  const admission = new Admission(config.limits, config.allowedOrigins, allowedHostsOf(config));
  const identity = stack.adopt(
    await openIdentity(config, options, admission),
    (identity) => identity.close(),
  );
  const live = stack.adopt(openLive(config, bus, identity, log), (live) => live.close());
  const metrics = new Metrics({ lag, worker: options.worker, exchange: options.exchange });
  history.onCommit = (seconds) => metrics.commits.observe(seconds);
  const clients = new Set<Client>();
  // A person banned or taken out of a room, in this worker or another, loses its connections.
  identity.subscribe((event) => {
    for (const client of clients) {
      const reason = revokedBy(event, client.identity, client.room);
      if (reason !== null) client.close(CloseCode.policy, reason);
    }
  });
  const owned = stack.move();
  const services: Services = {
    config,
    log,
    history,
    search,
    bus,
    rooms: new Rooms(
      history,
      bus,
      (message) => log.error(message),
      identity.accounts === null ? null : (name) => identity.accounts?.find(name)?.userName ?? null,
    ),
    metrics,
    clients,
    admission,
    identity,
    live,
    keepaliveMs: options.keepaliveMs ?? KEEPALIVE_MS,
    stopping: false,
    [Symbol.asyncDispose]() {
      shutDown = this.stopping;
      return owned.disposeAsync();
    },
  };
  services.rooms.onHeard = (event) => live.hear(event);
  return services;
}

/**
 * The config with `maxConnections` lowered to what the process's open-file limit allows, saying
 * so in the log. Workers share one limit and are left as they are.
 */
function withinFileLimit(config: Config, options: ServerOptions, log: Logger): Config {
  if (options.reusePort) return config;
  const { maxConnections, note } = fitConnections(config.limits.maxConnections);
  if (note === null) return config;
  log.error(note);
  return { ...config, limits: { ...config.limits, maxConnections } };
}

function openLog(config: Config, options: ServerOptions): Logger {
  try {
    return new Logger(config.logfilePath, !options.quiet, options.name);
  } catch (error) {
    throw new StartupError(
      `cannot open the log file ${config.logfilePath}: ${(error as Error).message}; ` +
        'set "logfilePath" to a writable file',
    );
  }
}

function openHistory(config: Config): HistoryStore {
  try {
    return HistoryStore.open(config.history);
  } catch (error) {
    if (error instanceof HistoryError) throw new StartupError(error.message);
    throw error;
  }
}

function openSearch(history: HistoryStore, log: Logger): SearchIndex {
  try {
    return SearchIndex.open(history, (message) => log.error(message));
  } catch (error) {
    if (error instanceof HistoryError) throw new StartupError(error.message);
    throw error;
  }
}

async function openIdentity(
  config: Config,
  options: ServerOptions,
  admission: Admission,
): Promise<IdentityService> {
  try {
    return await IdentityService.open({
      config,
      channel: options.reusePort ? `parley-identity:${resolve(config.history.path)}` : null,
      originAllowed: (origin, own) => admission.originAllowed(origin, own),
      // Over plain HTTP a browser would never send a Secure cookie back.
      secureCookies: config.tls.certFile !== null,
      now: options.now,
    });
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
}

/** The live extras, with read markers in the history file outside open mode. */
function openLive(config: Config, bus: Bus, identity: IdentityService, log: Logger): Live {
  const onError = (message: string) => log.error(message);
  let markers: ReadMarkers | null = null;
  if (config.auth.mode !== "open") {
    try {
      markers = ReadMarkers.open(config.history.path, onError);
    } catch (error) {
      throw new StartupError((error as Error).message);
    }
  }
  return new Live({ bus, mayRead: (who, room) => identity.mayRead(who, room), markers, onError });
}

async function connectBus(
  config: Config,
  options: ServerOptions,
  history: HistoryStore,
  log: Logger,
): Promise<Bus> {
  // Workers share the history file, and so the channel named after it.
  const busName = options.reusePort ? `parley:${resolve(config.history.path)}` : null;
  try {
    if (config.redis === null) return new LocalBus(history, busName);
    return await RedisBus.connect(
      config.redis,
      history,
      config.history.maxMessagesPerRoom,
      (message) => log.error(message),
    );
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
}
