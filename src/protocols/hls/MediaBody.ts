/** Where a response body goes: an HTTP response being written while the media is still produced. */
export interface ChunkSink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/**
 * The bytes of a part or segment as the list of per-frame fragments CmafFeed built: the same buffers every
 * viewer gets, never copied or concatenated. While it grows, followers receive each fragment as it arrives
 * (HTTP chunked transfer: an LL-HLS preload-hinted part, an LL-DASH segment being produced).
 */
export class MediaBody {
  readonly fragments: Uint8Array[] = [];
  bytes = 0;
  complete = false;
  /** performance.now() when it completed, for measuring how fast waiting requests are answered. */
  completedAt = 0;
  #followers: Set<ChunkSink> | null = null;

  append(fragment: Uint8Array): void {
    if (this.complete) throw new Error('append to a completed media body');
    this.fragments.push(fragment);
    this.bytes += fragment.byteLength;
    if (this.#followers) for (const f of this.#followers) f.write(fragment);
  }

  finish(): void {
    if (this.complete) return;
    this.complete = true;
    this.completedAt = performance.now();
    const followers = this.#followers;
    this.#followers = null;
    if (followers) for (const f of followers) f.end();
  }

  /** Writes what exists, then every later fragment, then ends. Returns the function that stops following. */
  follow(sink: ChunkSink): () => void {
    for (const fragment of this.fragments) sink.write(fragment);
    if (this.complete) {
      sink.end();
      return () => {};
    }
    this.#followers ??= new Set();
    this.#followers.add(sink);
    return () => {
      this.#followers?.delete(sink);
    };
  }

  get followers(): number {
    return this.#followers?.size ?? 0;
  }
}
