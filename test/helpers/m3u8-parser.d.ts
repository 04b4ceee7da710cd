/** The part of m3u8-parser (video.js/VHS's playlist parser, shipped without types) the tests use. */
declare module 'm3u8-parser' {
  export class Parser {
    on(event: 'warn' | 'info', listener: (event: { message: string }) => void): void;
    push(chunk: string): void;
    end(): void;
    manifest: Record<string, unknown>;
  }
}
