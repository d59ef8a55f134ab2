/**
 * `workers` above 1: that many threads each run a whole server on one port (`reusePort`), and the
 * main thread watches them. A worker that throws or stops answering is a dead worker: its people
 * would stay "online" and shutdown would wait for it forever, so the pool reports it and main.ts
 * exits non-zero for a supervisor to restart parley. Shutdown is bounded whatever the workers do.
 * A `/metrics` scrape is for the whole process: the worker that answers it asks the main thread,
 * which asks the others (see {@link SCRAPE_MS}).
 */

import { type Config, ConfigError } from "./config.ts";
import type { Samples } from "./metrics.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

/**
 * How long a scrape waits for each other worker's samples, in milliseconds. One that has not
 * answered by then (its loop is blocked, or it is dead) is counted with the last samples it gave,
 * at worst those of its last pong (one that answers no ping for `2 × pingMs` ends the process):
 * its counters never go back.
 */
export const SCRAPE_MS = 500;

/** A worker threw, stopped answering, or failed to start; the message says which and why. */
export class WorkerFailure extends Error {
  override name = "WorkerFailure";
}

/** How a pool watches its workers; the defaults are for production, tests shorten them. */
export interface PoolOptions {
  /** How often each worker is asked whether it is alive; it must answer within twice that. */
  pingMs?: number;
  /** How long shutdown waits for the workers to close their sockets before ending them. */
  stopMs?: number;
}

/** Running workers sharing a port. */
export interface WorkerPool {
  url: URL;
  /** The link that creates the first account, if a worker made one. */
  setupLink: URL | null;
  /** Settles once, with the first worker that died. */
  failed: Promise<WorkerFailure>;
  /** The threads, in start order (tests use them to make one fail). */
  readonly workers: readonly Worker[];
  /** Asks every worker to stop, waits at most `stopMs`, then ends them all; idempotent. */
  shutdown(): Promise<void>;
}

type Answer = Exclude<FromWorker, { type: "ready" | "scrape" }>;
/** A request before it is given its id. */
type Request = ToWorker extends infer T ? T extends ToWorker ? Omit<T, "id"> : never : never;

/** One worker thread, its requests matched to its answers by id. */
class Thread {
  readonly #waiting = new Map<number, (answer: Answer | null) => void>();
  #nextId = 1;
  /** Set once it threw: it answers nothing any more. */
  #dead = false;
  readonly ready: Promise<void>;
  readonly died: Promise<WorkerFailure>;
  /** The newest samples it gave, with an answer or a scrape; null before the first. */
  latest: Samples | null = null;
  /** Called with the id of each `scrape` it asks. */
  onScrape: (id: number) => void = () => {};

  constructor(readonly worker: Worker, readonly index: number) {
    const ready = Promise.withResolvers<void>();
    const died = Promise.withResolvers<WorkerFailure>();
    this.ready = ready.promise;
    this.died = died.promise;
    worker.onmessage = ({ data }: MessageEvent<FromWorker>) => {
      if (data.type === "ready") return ready.resolve();
      // Even an answer that came too late is newer than what it gave before.
      if ("samples" in data && data.samples !== null) this.latest = data.samples;
      if (data.type === "scrape") return this.onScrape(data.id);
      this.#waiting.get(data.id)?.(data);
      this.#waiting.delete(data.id);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#dead = true;
      for (const answer of this.#waiting.values()) answer(null);
      this.#waiting.clear();
      died.resolve(new WorkerFailure(`worker ${index} failed: ${event.message}`));
    };
  }

  /** Sends a request; resolves with its answer, or null if none came within `ms`. */
  ask(message: Request, ms: number): Promise<Answer | null> {
    if (this.#dead) return Promise.resolve(null);
    const id = this.#nextId++;
    const { promise, resolve } = Promise.withResolvers<Answer | null>();
    const timer = setTimeout(() => {
      this.#waiting.delete(id);
      resolve(null);
    }, ms);
    this.#waiting.set(id, (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
    this.worker.postMessage({ ...message, id } as ToWorker);
    return promise;
  }

  /** Answers its `scrape` of `id` with every other thread's samples, fresh or their last. */
  async answerScrape(id: number, threads: readonly Thread[]): Promise<void> {
    const others = threads.filter((thread) => thread !== this);
    const answers = await Promise.all(
      others.map((thread) => thread.ask({ type: "samples" }, SCRAPE_MS)),
    );
    const stale = answers.filter((answer) => answer?.type !== "samples" || answer.samples === null);
    // Each answer that came has made its thread's latest.
    const samples = others.flatMap((thread) => thread.latest === null ? [] : [thread.latest]);
    const peers: ToWorker = { type: "peers", id, report: { samples, stale: stale.length } };
    this.worker.postMessage(peers);
  }
}

/** Starts `count` workers on one port: the first binds (port 0 picks one), the rest join it. */
export async function startWorkers(
  config: Config,
  count: number,
  options: PoolOptions = {},
): Promise<WorkerPool> {
  if (config.history.path === ":memory:") {
    throw new ConfigError(
      'workers share the history file, so "history.path" cannot be ":memory:" with "workers" above 1',
    );
  }
  const { pingMs = 5000, stopMs = 8000 } = options;
  const threads: Thread[] = [];
  const stop = once(() => stopAll(threads, stopMs));
  let port = config.port;
  let url = "";
  let setupLink: string | null = null;
  try {
    for (let index = 1; index <= count; index++) {
      const thread = new Thread(
        new Worker(new URL("./worker.ts", import.meta.url), { type: "module" }),
        index,
      );
      threads.push(thread);
      thread.onScrape = (id) => thread.answerScrape(id, threads);
      const died = thread.died.then((failure) => Promise.reject(failure));
      await Promise.race([thread.ready, died]);
      const answer = await Promise.race([
        thread.ask({ type: "start", config: { ...config, port }, index, count }, 30_000),
        died,
      ]);
      if (answer?.type !== "listening") {
        throw new Error(
          answer?.type === "failed" ? answer.message : `worker ${index} did not start`,
        );
      }
      ({ port, url } = answer);
      setupLink ??= answer.setupLink;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const failed = watch(threads, pingMs);
  return {
    url: new URL(url),
    setupLink: setupLink === null ? null : new URL(setupLink),
    failed,
    workers: threads.map((t) => t.worker),
    shutdown: stop,
  };
}

/** The first death among the threads: an error, or a ping left unanswered for two periods. */
function watch(threads: Thread[], pingMs: number): Promise<WorkerFailure> {
  const { promise, resolve } = Promise.withResolvers<WorkerFailure>();
  const timer = setInterval(async () => {
    for (const thread of threads) {
      const answer = await thread.ask({ type: "ping" }, 2 * pingMs);
      if (answer === null) {
        resolve(new WorkerFailure(`worker ${thread.index} stopped answering for ${2 * pingMs} ms`));
      }
    }
  }, pingMs);
  // A pool that is being watched must not keep a finished process alive.
  Deno.unrefTimer(timer);
  for (const thread of threads) thread.died.then(resolve);
  return promise.finally(() => clearInterval(timer));
}

/** Asks every worker to stop and waits at most `ms` for them, then ends every thread. */
async function stopAll(threads: Thread[], ms: number): Promise<void> {
  await Promise.all(threads.map((thread) => thread.ask({ type: "stop" }, ms)));
  for (const thread of threads) thread.worker.terminate();
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => done ??= fn();
}
