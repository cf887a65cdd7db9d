-- prelude --
-- Prepended to every script. KEYS of a per-thread script, always in this order:
-- the thread's own keys (1-7, they expire together), then its bucket's indexes (8-10).
-- Members are built from ids joined by NUL bytes, which ids never contain:
-- a checkpoint is ns\0checkpoint_id; a pending write ns\0checkpoint_id\0task_id\0idx.
-- No script compares strings in Lua (that would follow the server's locale):
-- order always comes from sorted sets, which compare bytes.
local INFO, IDX, CP, BODY, VAL, WIDX, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local THREADS, CPS, RUNS = KEYS[8], KEYS[9], KEYS[10]
local CHUNK = 2000

-- ttl: milliseconds to expire in, '0' to leave expiry alone (reads), or 'persist'
-- (a write by a saver without TTL): every key of the thread always shares one expiry.
local function refresh(ttl)
  if ttl == 'persist' then
    for i = 1, 7 do redis.call('PERSIST', KEYS[i]) end
  elseif tonumber(ttl) > 0 then
    for i = 1, 7 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end

local function touch(thread, now, ttl_ms)
  redis.call('HSETNX', INFO, 'created', now)
  redis.call('HSET', INFO, 'updated', now)
  redis.call('ZADD', THREADS, now, thread)
  refresh(ttl_ms)
end

local function each_chunk(items, first, last, fn)
  for i = first, last, CHUNK do fn(unpack(items, i, math.min(i + CHUNK - 1, last))) end
end

local function hmget(key, fields)
  local out = {}
  each_chunk(fields, 1, #fields, function(...)
    for _, v in ipairs(redis.call('HMGET', key, ...)) do out[#out + 1] = v end
  end)
  return out
end

-- The field of the version a stored piece extends (payload 'append\0<base version
-- JSON>\0<position>\0<items>\0<bytes>', see _keys.py), or nil for any other payload.
local function base_of(field, payload)
  if not payload or payload:sub(1, 7) ~= 'append\0' then return nil end
  return field:match('^(.*%z)') .. payload:sub(8, payload:find('\0', 8, true) - 1)
end

-- Append to out the field, payload pairs of every version the value (field, payload)
-- extends, transitively (a chain: at most ~22 pieces); seen holds the fields already out.
local function add_bases(field, payload, seen, out)
  local base = base_of(field, payload)
  while base and not seen[base] do
    seen[base] = true
    local stored = redis.call('HGET', VAL, base)
    if not stored then break end
    out[#out + 1] = base
    out[#out + 1] = stored
    base = base_of(base, stored)
  end
end

local function remove(key, command, items)
  if #items > 0 then
    each_chunk(items, 1, #items, function(...) redis.call(command, key, ...) end)
  end
end

local function writes_of(member)
  return redis.call('ZRANGEBYLEX', WIDX, '(' .. member .. '\0', '(' .. member .. '\1')
end

local function index_checkpoint(thread, member, header)
  local ns, cid = member:match('^(.-)%z(.*)$')
  redis.call('ZADD', IDX, 0, member)
  redis.call('ZADD', CPS, 0, cid .. '\0' .. thread .. '\0' .. ns)
  local run = cmsgpack.unpack(header)[3]
  if run ~= '' then redis.call('ZADD', RUNS, 0, run .. '\0' .. thread .. '\0' .. member) end
end

local function unindex_checkpoint(thread, member)
  local header = redis.call('HGET', CP, member)
  if not header then return end
  local ns, cid = member:match('^(.-)%z(.*)$')
  redis.call('ZREM', CPS, cid .. '\0' .. thread .. '\0' .. ns)
  local run = cmsgpack.unpack(header)[3]
  if run ~= '' then redis.call('ZREM', RUNS, run .. '\0' .. thread .. '\0' .. member) end
end

local function set_root_metadata()
  local root = redis.call('ZREVRANGEBYLEX', IDX, '(\1', '(\0', 'LIMIT', 0, 1)[1]
  if root then
    local header = cmsgpack.unpack(redis.call('HGET', CP, root))
    redis.call('HSET', INFO, 'root', root, 'metadata', header[6])
  else
    redis.call('HDEL', INFO, 'root', 'metadata')
  end
end

local function delete_thread(thread)
  for _, member in ipairs(redis.call('ZRANGE', IDX, 0, -1)) do unindex_checkpoint(thread, member) end
  redis.call('DEL', INFO, IDX, CP, BODY, VAL, WIDX, W)
  redis.call('ZREM', THREADS, thread)
end

-- setup --
-- Raise the key space's layout version to ARGV[1]. KEYS: the schema key only.
-- Returns the version stored now (higher than ARGV[1]: written by a newer release).
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
if stored < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return stored

-- put --
-- Store one checkpoint. ARGV: thread_id, member, header, body, now, ttl_ms, head,
-- then field/payload pairs of the new channel values. head is '' for any put; in a
-- versioned run '=' followed by the parent's member ('=' alone: no root checkpoint
-- yet), and the put stores nothing and returns 0 unless that is the latest root one.
-- A piece is stored only if the version it extends still is: else the put stores
-- nothing and returns 2 (the plan sends the values whole). A stored value is kept.
-- Returns {1, index of each value held already...} once stored.
local thread, member, head = ARGV[1], ARGV[2], ARGV[7]
if head ~= '' then
  local root = redis.call('ZREVRANGEBYLEX', IDX, '(\1', '(\0', 'LIMIT', 0, 1)[1] or ''
  if '=' .. root ~= head and root ~= member then return 0 end  -- member: a put retried
end
for i = 8, #ARGV, 2 do
  local base = base_of(ARGV[i], ARGV[i + 1])
  if base and redis.call('HEXISTS', VAL, base) == 0 then return 2 end
end
local old = redis.call('HGET', CP, member)
if old then unindex_checkpoint(thread, member) end
local reply = {1}  -- then the 0-based indexes of the values held already (not written)
for i = 8, #ARGV, 2 do
  if redis.call('HSETNX', VAL, ARGV[i], ARGV[i + 1]) == 0 then reply[#reply + 1] = (i - 8) / 2 end
end
redis.call('HSET', CP, member, ARGV[3])
redis.call('HSET', BODY, member, ARGV[4])
index_checkpoint(thread, member, ARGV[3])
if member:byte(1) == 0 then set_root_metadata() end
touch(thread, ARGV[5], ARGV[6])
return reply

-- put_writes --
-- Store a task's pending writes. ARGV: thread_id, now, ttl_ms, then
-- (member, payload, replace) triples: replace '1' overwrites, '0' keeps a stored write.
for i = 4, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    redis.call('HSET', W, ARGV[i], ARGV[i + 1])
    redis.call('ZADD', WIDX, 0, ARGV[i])
  elseif redis.call('HSETNX', W, ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', WIDX, 0, ARGV[i])
  end
end
touch(ARGV[1], ARGV[2], ARGV[3])
return 1

-- read --
-- Read checkpoints. ARGV: ttl_ms (0: no refresh), parts ('0': header and body,
-- 'w': and pending writes, '1': and channel values), mode, then the mode's arguments:
-- 'latest' ns | 'range' max min count (ZREVRANGEBYLEX bounds) | 'ids' member...
-- | 'all' (every member, nothing else).
-- Returns {member, header, body, value payloads (in the header's order), write ids
-- (task_id NUL idx), write payloads, bases} per checkpoint found, bases being
-- field, payload pairs of the versions its pieces extend (transitively) that the
-- reply holds nowhere before (a reader rebuilds values from the whole reply).
local parts, mode = ARGV[2], ARGV[3]
local members
if mode == 'latest' then
  members = redis.call('ZREVRANGEBYLEX', IDX, '(' .. ARGV[4] .. '\1', '(' .. ARGV[4] .. '\0',
                       'LIMIT', 0, 1)
elseif mode == 'range' then
  members = redis.call('ZREVRANGEBYLEX', IDX, ARGV[4], ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
elseif mode == 'all' then
  refresh(ARGV[1])
  return redis.call('ZRANGE', IDX, 0, -1)
else
  members = {}
  for i = 4, #ARGV do members[#members + 1] = ARGV[i] end
end
local out, sent = {}, {}
for _, member in ipairs(members) do
  local header = redis.call('HGET', CP, member)
  if header then
    local fields, values, write_members, writes, bases = {}, {}, {}, {}, {}
    if parts == '1' then
      local refs = cmsgpack.unpack(header)[2]
      for i = 2, #refs, 2 do fields[#fields + 1] = refs[i] end
      values = hmget(VAL, fields)
      for i, field in ipairs(fields) do if values[i] then sent[field] = true end end
      for i, field in ipairs(fields) do add_bases(field, values[i], sent, bases) end
    end
    if parts ~= '0' then
      write_members = writes_of(member)
      writes = hmget(W, write_members)
      for i, w in ipairs(write_members) do write_members[i] = w:sub(#member + 2) end
    end
    out[#out + 1] = {member, header, redis.call('HGET', BODY, member), values,
                     write_members, writes, bases}
  end
end
refresh(ARGV[1])
return out

-- walk --
-- Follow parent links from a checkpoint for DeltaChannel history.
-- ARGV: ns, checkpoint_id, depth, channel... Returns per ancestor (depth 0 first):
-- {checkpoint_id, parent_id ('' at the root), {value field ('' if none), '1' if it holds a value}}
-- (a whole value or a piece: any payload but the empty one)
local ns, current, depth = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for _ = 0, depth do
  if current == '' then break end
  local stored = redis.call('HGET', CP, ns .. '\0' .. current)
  if not stored then break end
  local header = cmsgpack.unpack(stored)
  local field_of = {}
  for i = 1, #header[2], 2 do field_of[header[2][i]] = header[2][i + 1] end
  local per_channel = {}
  for i = 4, #ARGV do
    local field = field_of[ARGV[i]]
    per_channel[#per_channel + 1] = field or ''
    per_channel[#per_channel + 1] = (field and redis.call('HSTRLEN', VAL, field) > 0) and '1' or '0'
  end
  out[#out + 1] = {current, header[1], per_channel}
  current = header[1]
end
return out

-- delete_thread --
-- Remove a thread: its keys and its entries in the bucket's indexes. ARGV: thread_id.
delete_thread(ARGV[1])
return 1

-- delete_checkpoints --
-- Delete checkpoints with their pending writes, then the channel values no
-- checkpoint refers to any more; a thread left without checkpoints is removed.
-- ARGV: thread_id, mode, then
-- 'members' n, member x n, run index entry... : exactly these checkpoints, and these
--   entries of the run index (also when their checkpoint is gone already);
-- 'keep' n, (ns, latest_id) x n, kept member... : in each listed namespace, the
--   checkpoints and writes older than latest_id that are not kept. Returns -1 and
--   changes nothing if a namespace's latest is no longer latest_id (plan again).
local thread, mode = ARGV[1], ARGV[2]
local doomed, doomed_writes = {}, {}
if mode == 'members' then
  local n = tonumber(ARGV[3])
  for i = 4, 3 + n do
    doomed[#doomed + 1] = ARGV[i]
    for _, w in ipairs(writes_of(ARGV[i])) do doomed_writes[#doomed_writes + 1] = w end
  end
  for i = 4 + n, #ARGV do redis.call('ZREM', RUNS, ARGV[i]) end
else
  local n = tonumber(ARGV[3])
  for i = 4, 2 + 2 * n, 2 do
    local latest = redis.call('ZREVRANGEBYLEX', IDX, '(' .. ARGV[i] .. '\1',
                              '(' .. ARGV[i] .. '\0', 'LIMIT', 0, 1)[1]
    if latest ~= ARGV[i] .. '\0' .. ARGV[i + 1] then return -1 end
  end
  local kept = {}
  for i = 4 + 2 * n, #ARGV do kept[ARGV[i]] = true end
  for i = 4, 2 + 2 * n, 2 do
    local low, high = '(' .. ARGV[i] .. '\0', '(' .. ARGV[i] .. '\0' .. ARGV[i + 1]
    for _, member in ipairs(redis.call('ZRANGEBYLEX', IDX, low, high)) do
      if not kept[member] then doomed[#doomed + 1] = member end
    end
    for _, w in ipairs(redis.call('ZRANGEBYLEX', WIDX, low, high)) do
      local ns, cid = w:match('^(.-)%z(.-)%z')
      if not kept[ns .. '\0' .. cid] then doomed_writes[#doomed_writes + 1] = w end
    end
  end
end
for _, member in ipairs(doomed) do unindex_checkpoint(thread, member) end
remove(CP, 'HDEL', doomed); remove(BODY, 'HDEL', doomed); remove(IDX, 'ZREM', doomed)
remove(W, 'HDEL', doomed_writes); remove(WIDX, 'ZREM', doomed_writes)
if redis.call('ZCARD', IDX) == 0 and redis.call('ZCARD', WIDX) == 0 then
  delete_thread(thread)
  return #doomed
end
local used, used_list = {}, {}
for _, header in ipairs(redis.call('HVALS', CP)) do
  local refs = cmsgpack.unpack(header)[2]
  for i = 2, #refs, 2 do
    if not used[refs[i]] then used[refs[i]] = true; used_list[#used_list + 1] = refs[i] end
  end
end
local unused, losing = {}, {}
for _, field in ipairs(redis.call('HKEYS', VAL)) do
  if not used[field] then
    unused[#unused + 1] = field
    losing[field:match('^(.*)%z')] = true
  end
end
-- Keep every version a used piece extends (transitively); only the channels that
-- lose values need their used payloads read.
for _, field in ipairs(used_list) do
  if losing[field:match('^(.*)%z')] then
    local base = base_of(field, redis.call('HGET', VAL, field))
    while base and not used[base] do
      used[base] = true
      base = base_of(base, redis.call('HGET', VAL, base))
    end
  end
end
local doomed_values = {}
for _, field in ipairs(unused) do
  if not used[field] then doomed_values[#doomed_values + 1] = field end
end
remove(VAL, 'HDEL', doomed_values)
set_root_metadata()
return #doomed

-- dump --
-- Everything of a thread, for copy_thread: {checkpoint headers, bodies, values, writes}
-- as HGETALL replies (pieces as they are stored).
return {redis.call('HGETALL', CP), redis.call('HGETALL', BODY), redis.call('HGETALL', VAL),
        redis.call('HGETALL', W)}

-- restore --
-- Add a dumped thread to this thread. ARGV: thread_id, now, ttl_ms, n_checkpoints,
-- n_values, then (member, header, body) per checkpoint, (field, payload) per value,
-- (member, payload) per pending write. A value the thread holds already is kept.
local thread, n_cp, n_val = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
local first_value = 6 + 3 * n_cp
for i = 6, first_value - 1, 3 do
  unindex_checkpoint(thread, ARGV[i])
  redis.call('HSET', CP, ARGV[i], ARGV[i + 1])
  redis.call('HSET', BODY, ARGV[i], ARGV[i + 2])
  index_checkpoint(thread, ARGV[i], ARGV[i + 1])
end
local first_write = first_value + 2 * n_val
for i = first_value, first_write - 1, 2 do redis.call('HSETNX', VAL, ARGV[i], ARGV[i + 1]) end
for i = first_write, #ARGV, 2 do
  redis.call('HSET', W, ARGV[i], ARGV[i + 1])
  redis.call('ZADD', WIDX, 0, ARGV[i])
end
set_root_metadata()
touch(thread, ARGV[2], ARGV[3])
return 1

-- purge --
-- Drop bucket index entries that outlived their thread (its keys expired).
-- ARGV: thread_id, then (checkpoint index entry, member) pairs. The registry
-- entry goes if the thread's info is gone; an index entry if its checkpoint is.
local thread = ARGV[1]
if redis.call('EXISTS', INFO) == 0 then redis.call('ZREM', THREADS, thread) end
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', CP, ARGV[i + 1]) == 0 then redis.call('ZREM', CPS, ARGV[i]) end
end
return 1

-- delete_if_idle --
-- cleanup_expired on one thread: delete it if its last write is older than the
-- cutoff (Unix seconds). ARGV: thread_id, cutoff, dry ('1': count only).
-- Returns {deleted 0/1, checkpoints, stays 0/1}: a thread written since it was
-- listed stays; a registry entry whose thread expired (TTL) is removed.
local thread, cutoff = ARGV[1], tonumber(ARGV[2])
local updated = redis.call('HGET', INFO, 'updated')
if not updated then
  if ARGV[3] ~= '1' then redis.call('ZREM', THREADS, thread) end
  return {0, 0, 0}
end
if tonumber(updated) >= cutoff then return {0, 0, 1} end
local checkpoints = redis.call('ZCARD', IDX)
if ARGV[3] ~= '1' then delete_thread(thread) end
return {1, checkpoints, 0}

-- values --
-- Channel values by field, with every version their pieces extend (transitively).
-- ARGV: field... Returns field, payload pairs of those stored.
local out, seen = {}, {}
for _, field in ipairs(ARGV) do
  local payload = not seen[field] and redis.call('HGET', VAL, field)
  seen[field] = true
  if payload then
    out[#out + 1] = field
    out[#out + 1] = payload
    add_bases(field, payload, seen, out)
  end
end
return out

-- value_heads --
-- What stats needs of each stored channel value, without its bytes: {field, payload
-- length, head} per field, head being a piece's payload up to its bytes, or a whole
-- value's type NUL and the first bytes of the value (a list's msgpack header).
local out = {}
for _, field in ipairs(redis.call('HKEYS', VAL)) do
  local payload = redis.call('HGET', VAL, field)
  local stop = payload:find('\0', 1, true) or 0
  if payload:sub(1, stop) == 'append\0' then
    for _ = 1, 3 do stop = payload:find('\0', stop + 1, true) end
  elseif stop > 0 then
    stop = math.min(stop + 5, #payload)
  end
  out[#out + 1] = field
  out[#out + 1] = #payload
  out[#out + 1] = payload:sub(1, stop)
end
return out
