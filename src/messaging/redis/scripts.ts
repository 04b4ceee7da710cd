/**
 * The Lua scripts of the Redis bus. Each touches only the keys of one channel, all hash-tagged `{ch:<name>}`,
 * so one call stays in one Redis Cluster slot; only commands Redis 7.0+ and Valkey share are used.
 *
 * Per channel:
 * - `{ch:N}:meta`, a hash: `epoch` (also the id the epoch's first message follows), `top` (newest id), `time`
 *   (newest message time; times never go backwards within a channel), `bytes` (JSON bytes the log holds);
 * - `{ch:N}:log`, a stream: entry id `<message id>-0`, fields `m` (the message's JSON) and `t` (its time);
 * - `{ch:N}:live`, the pub/sub channel: `<epoch> <json>` per message;
 * - `{ch:N}:pnodes` (sorted set: node → expiry, ms) and `{ch:N}:pcounts` (hash: node → counts JSON), presence.
 *
 * An epoch starts when a channel's meta is missing (never published, expired, or lost by Redis) at 1000 × the
 * Redis time in ms, and at least one above every id a node reports having seen: ids of a new epoch are above
 * every id of an older one, so an id is never reused for another message, and a client resuming from an old
 * epoch's id is below the new epoch and is told `reset` (docs/protocols/messaging.md, "Across nodes").
 */

/** Keys and the pub/sub channel of one channel. */
export interface ChannelKeys {
  readonly meta: string;
  readonly log: string;
  readonly live: string;
  readonly presenceNodes: string;
  readonly presenceCounts: string;
}

export function channelKeys(channel: string): ChannelKeys {
  const tag = `{ch:${channel}}`;
  return {
    meta: `${tag}:meta`,
    log: `${tag}:log`,
    live: `${tag}:live`,
    presenceNodes: `${tag}:pnodes`,
    presenceCounts: `${tag}:pcounts`,
  };
}

/** Shared head: `now` (Redis TIME, ms), `fmt` (integers without exponent), `ensure_epoch`. */
const PRELUDE = `
local function fmt(n) return string.format('%d', n) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Returns epoch, top, time; starts a new epoch when the meta is gone or behind what a node has seen.
local function ensure_epoch(meta, log, seen_epoch, seen_top, meta_ttl)
  local m = redis.call('HMGET', meta, 'epoch', 'top', 'time')
  local epoch, top, time = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]) or 0
  local lost = epoch ~= nil and seen_epoch == epoch and seen_top > top
  if epoch == nil or lost then
    epoch = now * 1000
    if seen_top >= epoch then epoch = seen_top + 1 end
    if top ~= nil and top >= epoch then epoch = top + 1 end
    top = epoch
    redis.call('DEL', log)
    redis.call('HSET', meta, 'epoch', fmt(epoch), 'top', fmt(top), 'time', fmt(time), 'bytes', '0')
    redis.call('PEXPIRE', meta, meta_ttl)
  end
  return epoch, top, time
end
`;

/**
 * KEYS meta, log. ARGV: live channel, channel JSON, from JSON, type JSON, data JSON, maxMessages, maxAgeMs,
 * maxBytes, meta TTL ms. Returns `{json, epoch}`. Trims the log oldest first past any of the three bounds, reading
 * each trimmed entry once (its size is subtracted from `bytes`), never the message just added.
 */
export const PUBLISH_LUA = `${PRELUDE}
local meta, log = KEYS[1], KEYS[2]
local max_messages, max_age, max_bytes, meta_ttl =
  tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local epoch, top, time = ensure_epoch(meta, log, 0, 0, meta_ttl)
if now < time then now = time end
local id = top + 1
local json = '{"id":' .. fmt(id) .. ',"channel":' .. ARGV[2] .. ',"time":' .. fmt(now) .. ',"from":' .. ARGV[3] ..
  ',"type":' .. ARGV[4] .. ',"data":' .. ARGV[5] .. '}'
redis.call('XADD', log, fmt(id) .. '-0', 'm', json, 't', fmt(now))
local bytes = (tonumber(redis.call('HGET', meta, 'bytes')) or 0) + #json
local length = redis.call('XLEN', log)
local cutoff = now - max_age
local dropped, first_kept, start, count = 0, nil, '-', 1
while first_kept == nil and dropped < length - 1 do
  local batch = redis.call('XRANGE', log, start, '+', 'COUNT', count)
  for _, entry in ipairs(batch) do
    local fields = entry[2]
    if dropped < length - 1 and
      (length - dropped > max_messages or bytes > max_bytes or tonumber(fields[4]) < cutoff) then
      dropped = dropped + 1
      bytes = bytes - #fields[2]
    else
      first_kept = entry[1]
      break
    end
  end
  if #batch == 0 then break end
  start = '(' .. batch[#batch][1]
  count = 64
end
if dropped > 0 then
  if first_kept == nil then first_kept = fmt(id) .. '-0' end
  redis.call('XTRIM', log, 'MINID', first_kept)
end
redis.call('HSET', meta, 'top', fmt(id), 'time', fmt(now), 'bytes', fmt(bytes))
redis.call('PEXPIRE', meta, meta_ttl)
redis.call('PEXPIRE', log, max_age + 60000)
redis.call('PUBLISH', ARGV[1], fmt(epoch) .. ' ' .. json)
return {json, fmt(epoch)}
`;

/**
 * KEYS meta, log. ARGV: since (-1: none), seen epoch, seen top (0 0: none), meta TTL ms, maxAgeMs.
 * Returns `{epoch, top, now, json…}`: the retained messages after `since` when it lies in the current epoch,
 * the whole log when it does not (a reset), none when `since` is -1 or the newest id. Starts the epoch when
 * needed, so a subscriber knows the first id it will see.
 */
export const SYNC_LUA = `${PRELUDE}
local meta, log = KEYS[1], KEYS[2]
local since = tonumber(ARGV[1])
local epoch, top = ensure_epoch(meta, log, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
local out = {fmt(epoch), fmt(top), fmt(now)}
if since < 0 or since == top then return out end
local start = '-'
if since >= epoch and since < top then start = fmt(since + 1) .. '-0' end
local cutoff = now - tonumber(ARGV[5])
for _, entry in ipairs(redis.call('XRANGE', log, start, '+')) do
  if tonumber(entry[2][4]) >= cutoff then out[#out + 1] = entry[2][2] end
end
return out
`;

/**
 * KEYS presence nodes, presence counts. ARGV: node, counts JSON ('' removes the node), TTL ms. Forgets nodes
 * whose entries expired, sets this node's, and returns every live node's counts JSON.
 */
export const PRESENCE_LUA = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local nodes, counts = KEYS[1], KEYS[2]
local ttl = tonumber(ARGV[3])
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now)) do
  redis.call('HDEL', counts, dead)
end
redis.call('ZREMRANGEBYSCORE', nodes, '-inf', now)
if ARGV[2] == '' then
  redis.call('ZREM', nodes, ARGV[1])
  redis.call('HDEL', counts, ARGV[1])
else
  redis.call('ZADD', nodes, now + ttl, ARGV[1])
  redis.call('HSET', counts, ARGV[1], ARGV[2])
  redis.call('PEXPIRE', nodes, ttl * 2)
  redis.call('PEXPIRE', counts, ttl * 2)
end
return redis.call('HVALS', counts)
`;
