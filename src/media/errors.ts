/**
 * Thrown by every parser under `media/` when its input is malformed: truncated, out of range, or not what the
 * caller said it was. The message names the structure, what was wrong and the offending value or offset, so a
 * log line alone is enough to tell a broken publisher from a bug of ours.
 */
export class MediaParseError extends Error {
  override readonly name = 'MediaParseError';
  /** Byte offset into the parsed buffer where the problem was found, when one is meaningful. */
  readonly offset: number | undefined;

  constructor(message: string, offset?: number) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
    this.offset = offset;
  }
}
