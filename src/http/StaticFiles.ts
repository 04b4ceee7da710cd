import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

export interface StaticFile {
  readonly absolutePath: string;
  readonly contentType: string;
}

/**
 * The files the server may send, listed once from fixed folders. A URL only ever selects a name from this list;
 * it never becomes a file-system path, so no traversal is possible.
 */
export class StaticFiles {
  readonly #files = new Map<string, StaticFile>();
  readonly missing: string[] = [];

  constructor(folders: readonly string[]) {
    for (const folder of folders) {
      if (!existsSync(folder)) {
        this.missing.push(folder);
        continue;
      }
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        const type = TYPES[extname(entry.name)];
        if (!entry.isFile() || !type || this.#files.has(entry.name)) continue;
        this.#files.set(entry.name, { absolutePath: join(folder, entry.name), contentType: type });
      }
    }
  }

  get(name: string): StaticFile | undefined {
    return this.#files.get(name);
  }

  /** Reads the file now, so a rebuilt bundle is served without a restart. */
  read(name: string): { body: Buffer; contentType: string } | undefined {
    const file = this.#files.get(name);
    if (!file) return undefined;
    return { body: readFileSync(file.absolutePath), contentType: file.contentType };
  }
}
