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
 * maxBytes, meta TTL ms, deadline (Redis time in ms; 0: none). Returns `{json, epoch, bytes}` (`bytes`: what
 * the log holds now). Trims the log oldest first past any of the three bounds, reading each trimmed entry once
 * (its size is subtracted from `bytes`), never the message just added. Past its deadline it stores nothing and
 * fails with LATE: the node has told its publisher the publish failed (cluster.redisCommandTimeoutMs), so a
 * Redis that was stuck must not store it afterwards.
 */
export const PUBLISH_LUA = `${PRELUDE}
local deadline = tonumber(ARGV[10])
if deadline > 0 and now > deadline then
  return redis.error_reply('LATE the publish reached Redis ' .. fmt(now - deadline) .. ' ms after its deadline')
end
local meta, log = KEYS[1], KEYS[2]
local max_messages, max_age, max_bytes, meta_ttl =
  tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local epoch, top, time = ensure_epoch(meta, log, 0, 0, meta_ttl)
if now < time then now = time end
local id = top + 1
local json = '{"id":' .. fmt(id) .. ',"channel":' .. ARGV[2] .. ',"time":' .. fmt(now) .. ',"from":' .. ARGV[3] ..
  ',"type":' .. ARGV[4] .. ',"data":' .. ARGV[5] .. '}'
redis.call('XADD', log, fmt(id) .. '-0', 'm', json, 't', fmt(now))
local length = redis.call('XLEN', log)
-- A log that expired while its meta lived on (idle past its TTL) held nothing: its old count must not stay.
local bytes = #json
if length > 1 then bytes = bytes + (tonumber(redis.call('HGET', meta, 'bytes')) or 0) end
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
return {json, fmt(epoch), fmt(bytes)}
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

/**
 * The history of all channels together (messaging.maxHistoryBytesTotal), kept under one hash tag so each call
 * stays in one Redis Cluster slot, apart from every channel's keys:
 * - `{messaging}:hbytes`, a hash: channel → JSON bytes its log held when a node last reported it;
 * - `{messaging}:hused`, a sorted set: channel → Redis time of its last reported publish (least recent first);
 * - `{messaging}:htotal`: the sum of `hbytes`.
 */
export const HISTORY_TOTAL_KEYS = ['{messaging}:hbytes', '{messaging}:hused', '{messaging}:htotal'] as const;

/**
 * KEYS hbytes, hused, htotal. ARGV: maxTotal, forget-after ms, then triples (channel, bytes, published: 1 or 0).
 * Records each channel's bytes (a published one also becomes the most recently used), forgets the least
 * recently used channel when its log has surely expired (no publish for forget-after ms: the log's TTL), and
 * returns `{total}`, or past maxTotal `{total, channel…}` with the least recently used channels to trim.
 */
export const HISTORY_TOTAL_LUA = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local sizes, used, total_key = KEYS[1], KEYS[2], KEYS[3]
local max_total, forget_after = tonumber(ARGV[1]), tonumber(ARGV[2])
local delta = 0
for i = 3, #ARGV, 3 do
  local channel, bytes = ARGV[i], tonumber(ARGV[i + 1])
  delta = delta + bytes - (tonumber(redis.call('HGET', sizes, channel)) or 0)
  if bytes > 0 then
    redis.call('HSET', sizes, channel, bytes)
    if ARGV[i + 2] == '1' then redis.call('ZADD', used, now, channel) end
  else
    redis.call('HDEL', sizes, channel)
    redis.call('ZREM', used, channel)
  end
end
local oldest = redis.call('ZRANGE', used, 0, 0, 'WITHSCORES')
if #oldest > 0 and tonumber(oldest[2]) < now - forget_after then
  delta = delta - (tonumber(redis.call('HGET', sizes, oldest[1])) or 0)
  redis.call('HDEL', sizes, oldest[1])
  redis.call('ZREM', used, oldest[1])
end
local total = redis.call('INCRBY', total_key, delta)
if total < 0 then
  total = 0
  redis.call('SET', total_key, '0')
end
if total <= max_total then return {total} end
local out = {total}
for _, channel in ipairs(redis.call('ZRANGE', used, 0, 15)) do out[#out + 1] = channel end
return out
`;

/**
 * KEYS meta, log. ARGV: bytes to free. Drops the oldest messages of one channel until that many bytes are
 * freed or the log is empty (a client resuming before them gets an `evicted` gap, as after any trim) and
 * returns the bytes the log still holds.
 */
export const TRIM_LUA = `
local meta, log = KEYS[1], KEYS[2]
local want = tonumber(ARGV[1])
local bytes = tonumber(redis.call('HGET', meta, 'bytes'))
if bytes == nil then
  redis.call('DEL', log)
  return 0
end
local freed, last_dropped, start = 0, nil, '-'
while freed < want do
  local batch = redis.call('XRANGE', log, start, '+', 'COUNT', 64)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    if freed >= want then break end
    freed = freed + #entry[2][2]
    last_dropped = entry[1]
  end
  start = '(' .. batch[#batch][1]
end
if last_dropped == nil then
  if redis.call('XLEN', log) == 0 then bytes = 0 end
  redis.call('HSET', meta, 'bytes', string.format('%d', bytes))
else
  local next_entry = redis.call('XRANGE', log, '(' .. last_dropped, '+', 'COUNT', 1)
  if #next_entry == 0 then
    redis.call('XTRIM', log, 'MAXLEN', 0)
    bytes = 0
  else
    redis.call('XTRIM', log, 'MINID', next_entry[1][1])
    bytes = bytes - freed
  end
  redis.call('HSET', meta, 'bytes', string.format('%d', bytes))
end
return bytes
`;
