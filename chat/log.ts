/** One line per event, to stderr and appended to `logfilePath`; message bodies are never logged. */

/** Writes timestamped log lines; a log file that cannot be written is a start-up error. */
export class Logger {
  readonly #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();

  /**
   * Opens `path` for appending (never truncating); `stderr: false` keeps tests quiet, and `name`
   * tells apart the lines of workers sharing the file.
   */
  constructor(readonly path: string, private readonly stderr = true, private readonly name = "") {
    this.#file = Deno.openSync(path, { append: true, create: true });
  }

  info(message: string): void {
    this.#write("info", message);
  }

  error(message: string): void {
    this.#write("error", message);
  }

  #write(level: string, message: string): void {
    const line = this.#encoder.encode(
      `${new Date().toISOString()} ${level} ${this.name ? `${this.name}: ` : ""}${message}\n`,
    );
    if (this.stderr) Deno.stderr.writeSync(line);
    try {
      this.#file.writeSync(line);
    } catch {
      // A full disk must not take the chat down; stderr still has the line.
    }
  }

  close(): void {
    this.#file.close();
  }
}
