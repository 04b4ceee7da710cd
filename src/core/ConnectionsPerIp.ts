/** Thrown when a client address already holds its limit of open connections of one kind. */
export class TooManyConnectionsError extends Error {
  readonly statusCode = 429;
}

/**
 * Open connections of one kind per client address, against a limit: `admit` returns the release function
 * (safe to call more than once) or throws TooManyConnectionsError naming the setting. One instance per kind
 * of connection (messaging, dashboard events, media viewers), so one kind cannot starve another.
 */
export class ConnectionsPerIp {
  readonly #open = new Map<string, number>();
  readonly #limit: () => number;
  readonly #what: string;
  readonly #setting: string;

  /** `limit` is read at each admission, so a test or an operator's change applies to new connections. */
  constructor(limit: number | (() => number), what: string, setting: string) {
    this.#limit = typeof limit === 'number' ? () => limit : limit;
    this.#what = what;
    this.#setting = setting;
  }

  /** Open connections of `address`. */
  count(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  admit(address: string): () => void {
    const n = this.#open.get(address) ?? 0;
    const limit = this.#limit();
    if (n >= limit) {
      throw new TooManyConnectionsError(
        `too many ${this.#what} from ${address}: ${n} open, the limit is ${limit} (${this.#setting})`,
      );
    }
    this.#open.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(address) ?? 1) - 1;
      if (left > 0) this.#open.set(address, left);
      else this.#open.delete(address);
    };
  }
}
