/** A stream path is one or more `/`-separated segments of `[A-Za-z0-9_.-]`; `.` and `..` alone are refused. */
const SEGMENT = /^[A-Za-z0-9_.-]{1,128}$/;

export class InvalidPathError extends Error {
  readonly path: string;
  constructor(path: string, why: string) {
    super(`invalid stream path ${JSON.stringify(path.slice(0, 200))}: ${why}`);
    this.path = path;
  }
}

/** Returns the normalised path (no leading/trailing slash) or throws InvalidPathError naming the problem. */
export function parseStreamPath(raw: string): string {
  const path = raw.replace(/^\/+|\/+$/g, '');
  if (path.length === 0) throw new InvalidPathError(raw, 'it is empty');
  if (path.length > 512) throw new InvalidPathError(raw, 'it is longer than 512 characters');
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..')
      throw new InvalidPathError(raw, `segment "${segment}" is not allowed`);
    if (!SEGMENT.test(segment)) {
      throw new InvalidPathError(raw, 'each segment must be 1-128 characters of A-Z a-z 0-9 _ . -');
    }
  }
  return path;
}
