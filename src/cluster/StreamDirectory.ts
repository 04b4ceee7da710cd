import type { Redis } from 'ioredis';

/**
 * Which node is the origin of which stream, in Redis. A claim carries a generation from a per-path counter;
 * refresh and release compare it inside Redis (Lua), so an origin that paused, lost Redis or was replaced can
 * never overwrite or delete a newer claim (the bug of OvenMediaEngine #1865). A claim lives CLAIM_TTL_MS past
 * its last refresh: an origin that dies is out of the directory within that time.
 */
export const CLAIM_TTL_MS = 3000;
const PREFIX = 'subsecond:cluster:';
const INDEX = `${PREFIX}streams`;

export interface StreamClaim {
  readonly path: string;
  readonly node: string;
  readonly generation: number;
  /** The origin's HTTP base URL, where edges open the relay. */
  readonly http: string;
  readonly publishedAt: number;
}

export type ClaimResult = { ok: true; claim: StreamClaim } | { ok: false; holder: StreamClaim };

// KEYS: claim, generation counter, index. ARGV: node, ttl, claim JSON (without node/generation), index score, path.
const CLAIM = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = cjson.decode(cur)
  if c.node ~= ARGV[1] then return {0, cur} end
end
local gen = redis.call('INCR', KEYS[2])
local v = cjson.decode(ARGV[3])
v.node = ARGV[1]
v.generation = gen
local s = cjson.encode(v)
redis.call('SET', KEYS[1], s, 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
return {gen, s}
`;

// KEYS: claim, generation counter, index. ARGV: generation, ttl, claim JSON, index score, path.
// A claim Redis no longer has (restarted without persistence, or this origin paused past the TTL) is taken
// back only if no newer generation was handed out meanwhile.
const REFRESH = `
local cur = redis.call('GET', KEYS[1])
if cur then
  if tonumber(cjson.decode(cur).generation) ~= tonumber(ARGV[1]) then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  local g = tonumber(redis.call('GET', KEYS[2]) or '0')
  if g > tonumber(ARGV[1]) then return 0 end
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
return 1
`;

// KEYS: claim, index. ARGV: generation, path.
const RELEASE = `
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cjson.decode(cur).generation) == tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
`;

type DirectoryRedis = Redis & {
  streamClaim(...args: (string | number)[]): Promise<[number, string]>;
  streamRefresh(...args: (string | number)[]): Promise<number>;
  streamRelease(...args: (string | number)[]): Promise<number>;
};

function claimKey(path: string): string {
  return `${PREFIX}stream:{${path}}`;
}
function generationKey(path: string): string {
  return `${PREFIX}generation:{${path}}`;
}

function parseClaim(path: string, json: string | null): StreamClaim | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as Partial<StreamClaim>;
    if (typeof v.node !== 'string' || typeof v.generation !== 'number' || typeof v.http !== 'string')
      return null;
    return {
      path,
      node: v.node,
      generation: v.generation,
      http: v.http,
      publishedAt: Number(v.publishedAt) || 0,
    };
  } catch {
    return null;
  }
}

export class StreamDirectory {
  readonly #redis: DirectoryRedis;
  readonly #node: string;
  readonly #http: () => string;
  /** Redis commands sent and those that failed (an outage, a script error), for /metrics. */
  readonly counters = { operations: 0, failures: 0 };

  /** `http`: this node's public base URL, read at each claim (it is known once the port is bound). */
  constructor(redis: Redis, node: string, http: () => string) {
    this.#redis = redis as DirectoryRedis;
    this.#node = node;
    this.#http = http;
    if (!('streamClaim' in redis)) {
      redis.defineCommand('streamClaim', { numberOfKeys: 3, lua: CLAIM });
      redis.defineCommand('streamRefresh', { numberOfKeys: 3, lua: REFRESH });
      redis.defineCommand('streamRelease', { numberOfKeys: 2, lua: RELEASE });
    }
  }

  async #count<T>(op: Promise<T>): Promise<T> {
    this.counters.operations++;
    try {
      return await op;
    } catch (err) {
      this.counters.failures++;
      throw err;
    }
  }

  /** Claims `path` for this node with a new generation, unless another node holds it. */
  async claim(path: string, publishedAt: number): Promise<ClaimResult> {
    const body = JSON.stringify({ http: this.#http(), publishedAt });
    const [gen, json] = await this.#count(
      this.#redis.streamClaim(
        claimKey(path),
        generationKey(path),
        INDEX,
        this.#node,
        CLAIM_TTL_MS,
        body,
        Date.now() + CLAIM_TTL_MS,
        path,
      ),
    );
    const parsed = parseClaim(path, json);
    if (!parsed) throw new Error(`directory: unreadable claim for "${path}"`);
    return gen === 0 ? { ok: false, holder: parsed } : { ok: true, claim: parsed };
  }

  /** Extends this node's claim; false when a newer claim replaced it (this origin is stale). */
  async refresh(claim: StreamClaim): Promise<boolean> {
    const json = JSON.stringify({
      node: claim.node,
      generation: claim.generation,
      http: claim.http,
      publishedAt: claim.publishedAt,
    });
    const ok = await this.#count(
      this.#redis.streamRefresh(
        claimKey(claim.path),
        generationKey(claim.path),
        INDEX,
        claim.generation,
        CLAIM_TTL_MS,
        json,
        Date.now() + CLAIM_TTL_MS,
        claim.path,
      ),
    );
    return ok === 1;
  }

  /** Drops the claim if it is still this generation's; a newer one is left alone. */
  async release(claim: StreamClaim): Promise<boolean> {
    const n = await this.#count(
      this.#redis.streamRelease(claimKey(claim.path), INDEX, claim.generation, claim.path),
    );
    return n === 1;
  }

  async lookup(path: string): Promise<StreamClaim | null> {
    return parseClaim(path, await this.#count(this.#redis.get(claimKey(path))));
  }

  /** Every claim in the directory (for the dashboard and routing); expired index entries are pruned. */
  async list(): Promise<StreamClaim[]> {
    const paths = await this.#count(this.#redis.zrange(INDEX, 0, -1));
    if (paths.length === 0) return [];
    const values = await this.#count(this.#redis.mget(paths.map(claimKey)));
    const claims: StreamClaim[] = [];
    const gone: string[] = [];
    paths.forEach((p, i) => {
      const c = parseClaim(p, values[i]);
      if (c) claims.push(c);
      else gone.push(p);
    });
    if (gone.length) await this.#count(this.#redis.zremrangebyscore(INDEX, '-inf', Date.now() - 60_000));
    return claims;
  }
}
