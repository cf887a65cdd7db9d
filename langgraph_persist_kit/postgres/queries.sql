-- The hot path of the Postgres savers, by name: migrations, put, put_writes and
-- the reads (the same names and parameter names as sqlite/queries.sql; deletes,
-- copies, pruning, cleanup and stats are in upkeep.sql). {schema} is the saver's
-- schema, quoted once by psycopg; {where} is assembled in _sql/plans.py from fixed
-- text (never user input); {head} is one of the head_* blocks and {bases} one of the
-- bases_* blocks (postgres/_plans.py).
-- put and put_writes are one statement each, atomic without an explicit
-- transaction. Bytes travel as binary parameters (%(name)b), not escaped text; the other
-- columns of a put's or put_writes' rows as one JSON array of arrays (value_rows,
-- write_rows; joined to the bytes by position): one parameter for the driver to adapt
-- where seven arrays took it 20 µs a call.

-- find_migrations_table --
-- The version table if it exists (NULL otherwise), without needing any privilege.
SELECT to_regclass(%(table)s)::text

-- lock_setup --
-- Serialise concurrent setup() calls; released when the transaction ends.
SELECT pg_advisory_xact_lock(%(key)s)

-- create_schema --
-- The saver's schema.
CREATE SCHEMA IF NOT EXISTS {schema}

-- create_migrations_table --
-- The version table of postgres/migrations.
CREATE TABLE IF NOT EXISTS {schema}.persist_kit_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)

-- select_migrations --
-- Versions already applied.
SELECT version FROM {schema}.persist_kit_migrations ORDER BY version

-- insert_migration --
-- Record one applied migration, in the transaction that applied it.
INSERT INTO {schema}.persist_kit_migrations (version, name, applied_at) VALUES (%s, %s, %s)

-- select_checkpoints --
-- Checkpoint rows matching {where}, newest first, then every channel value and
-- pending write they need, with every version their pieces extend: one round trip.
-- Row layout: see SqlPlans. The chain is walked one step per row of arrays (the
-- keys of a step, then the versions they extend), so the planner sees a handful of
-- rows, not thousands: a misjudged cost would switch on PostgreSQL's JIT, which
-- costs more than the whole query.
WITH RECURSIVE cp AS MATERIALIZED (
    SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
           channel_versions, metadata
    FROM {schema}.checkpoints
    WHERE {where}
    ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
    LIMIT %(limit)s
), chain (depth, threads, namespaces, channels, versions) AS (
    SELECT 0, array_agg(cp.thread_id), array_agg(cp.checkpoint_ns), array_agg(je.key),
           array_agg(je.value)
    FROM cp, jsonb_each(cp.channel_versions) AS je
    UNION ALL
    SELECT c.depth + 1, n.threads, n.namespaces, n.channels, n.versions
    FROM chain AS c CROSS JOIN LATERAL (
        SELECT array_agg(k.thread_id) AS threads, array_agg(k.checkpoint_ns) AS namespaces,
               array_agg(k.channel) AS channels, array_agg(b.base_version) AS versions
        FROM unnest(c.threads, c.namespaces, c.channels, c.versions)
             AS k (thread_id, checkpoint_ns, channel, version)
        CROSS JOIN LATERAL (
            SELECT x.base_version FROM {schema}.channel_values AS x
            WHERE x.thread_id = k.thread_id AND x.checkpoint_ns = k.checkpoint_ns
              AND x.channel = k.channel AND x.version = k.version
            LIMIT 1
        ) AS b
        WHERE b.base_version IS NOT NULL
    ) AS n
    WHERE n.channels IS NOT NULL AND c.depth < 4096  -- chains cannot loop; a guard only
), wanted AS (
    SELECT DISTINCT k.thread_id, k.checkpoint_ns, k.channel, k.version
    FROM chain AS c,
         unnest(c.threads, c.namespaces, c.channels, c.versions)
         AS k (thread_id, checkpoint_ns, channel, version)
)
SELECT 0, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
       channel_versions::text, metadata::text, NULL::int
FROM cp
UNION ALL
SELECT 1, v.thread_id, v.checkpoint_ns, v.channel, v.version::text, v.type, v.value,
       v.base_version::text, v.position::text, v.items
FROM wanted AS k
-- one primary-key lookup per distinct (channel, version): the planner cannot
-- estimate jsonb_each and would otherwise hash-join a scan of the whole table
CROSS JOIN LATERAL (
    SELECT x.thread_id, x.checkpoint_ns, x.channel, x.version, x.type, x.value,
           x.base_version, x.position, x.items
    FROM {schema}.channel_values AS x
    WHERE x.thread_id = k.thread_id AND x.checkpoint_ns = k.checkpoint_ns
      AND x.channel = k.channel AND x.version = k.version
    LIMIT 1  -- the key is unique; LIMIT keeps the planner from flattening this into a scan
) AS v
UNION ALL
SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.type, w.value,
       w.channel, w.task_path, w.idx
FROM cp JOIN {schema}.writes AS w
  ON w.thread_id = cp.thread_id AND w.checkpoint_ns = cp.checkpoint_ns
 AND w.checkpoint_id = cp.checkpoint_id

-- insert_checkpoint --
-- A checkpoint, its new channel values and the registry row, in one statement.
-- bases checks that every version the put's pieces extend is still stored; {head}
-- moves the registry row first (head_any, or one of the compare-and-set heads of a
-- versioned run) only then; the checkpoint and its values are stored only if it
-- returned a row. Returns the number of checkpoints stored (0 or 1), whether the
-- bases were found (if not, nothing was stored: the put is retried whole) and the
-- channels whose values were written. A stored version is never replaced (a channel
-- version names one value).
WITH bases AS (
{bases}
), head AS (
{head}
), new_values AS (
    INSERT INTO {schema}.channel_values AS cv
        (thread_id, checkpoint_ns, channel, version, type, value, base_version, position, items)
    SELECT %(thread_id)s, %(checkpoint_ns)s, r.v ->> 0, r.v -> 1, r.v ->> 2, b.value,
           nullif(r.v -> 3, 'null'), (r.v ->> 4)::int, (r.v ->> 5)::int
    FROM jsonb_array_elements(%(value_rows)s::jsonb) WITH ORDINALITY AS r (v, n)
    JOIN unnest(%(values)b::bytea[]) WITH ORDINALITY AS b (value, n) USING (n)
    WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
    RETURNING channel
), new_checkpoint AS (
    INSERT INTO {schema}.checkpoints (
        thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
        channel_versions, metadata, run_id, created_at
    )
    SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_checkpoint_id)s,
           %(type)s, %(checkpoint)b, %(channel_versions)s::jsonb, %(metadata)s::jsonb,
           %(run_id)s, now()
    WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type,
        checkpoint = excluded.checkpoint, channel_versions = excluded.channel_versions,
        metadata = excluded.metadata, run_id = excluded.run_id, created_at = excluded.created_at
)
SELECT (SELECT count(*) FROM head), (SELECT found FROM bases),
       (SELECT array_agg(channel) FROM new_values)

-- bases_some --
-- Whether every version the put's pieces extend is still stored.
SELECT count(b.found) = jsonb_array_length(%(bases)s::jsonb) AS found
FROM jsonb_array_elements(%(bases)s::jsonb) AS x (base)
CROSS JOIN LATERAL (  -- a primary-key lookup per base version
    SELECT 1 AS found FROM {schema}.channel_values AS v
    WHERE v.thread_id = %(thread_id)s AND v.checkpoint_ns = %(checkpoint_ns)s
      AND v.channel = x.base ->> 0 AND v.version = x.base -> 1
    LIMIT 1
) AS b

-- bases_none --
-- A put without pieces extends nothing. A statement of its own: with the lookup in
-- every put, each custom plan (no bases) looked far cheaper than the generic one (100
-- estimated), so put was planned at every call; and it saves 10% of the run time.
SELECT TRUE AS found

-- head_any --
-- The registry row after any put: last-write time, and the latest root
-- checkpoint with its metadata when this one is newer.
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
SELECT %(thread_id)s, now(), now(),
       CASE WHEN %(checkpoint_ns)s::text = '' THEN %(checkpoint_id)s::text END,
       CASE WHEN %(checkpoint_ns)s::text = '' THEN %(metadata)s::jsonb END
WHERE (SELECT found FROM bases)
ON CONFLICT (thread_id) DO UPDATE SET
    updated_at = greatest(t.updated_at, excluded.updated_at),
    metadata = CASE WHEN excluded.latest_checkpoint_id >= coalesce(t.latest_checkpoint_id, '')
                    THEN excluded.metadata ELSE t.metadata END,
    latest_checkpoint_id = CASE
        WHEN excluded.latest_checkpoint_id >= coalesce(t.latest_checkpoint_id, '')
        THEN excluded.latest_checkpoint_id ELSE t.latest_checkpoint_id END
RETURNING 1

-- head_after_parent --
-- A versioned run's root checkpoint: moves the head only if it still is the parent
-- (or already is this checkpoint: a put retried after its reply was lost).
-- UPDATE locks the row; a racing put with the same parent waits, then re-reads the
-- row (READ COMMITTED re-checks WHERE on the newest version) and updates nothing.
UPDATE {schema}.threads AS t SET
    updated_at = greatest(t.updated_at, now()),
    latest_checkpoint_id = %(checkpoint_id)s, metadata = %(metadata)s::jsonb
WHERE t.thread_id = %(thread_id)s
  AND t.latest_checkpoint_id IN (%(parent_checkpoint_id)s, %(checkpoint_id)s)
  AND (SELECT found FROM bases)
RETURNING 1

-- head_first --
-- A versioned run's first root checkpoint of a thread: only while it has none. Of
-- two racing inserts, the second meets the first's row and its WHERE is false.
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
SELECT %(thread_id)s, now(), now(), %(checkpoint_id)s, %(metadata)s::jsonb
WHERE (SELECT found FROM bases)
ON CONFLICT (thread_id) DO UPDATE SET
    updated_at = greatest(t.updated_at, excluded.updated_at),
    latest_checkpoint_id = excluded.latest_checkpoint_id, metadata = excluded.metadata
WHERE t.latest_checkpoint_id IS NULL OR t.latest_checkpoint_id = %(checkpoint_id)s
RETURNING 1

-- insert_writes --
-- A task's pending writes and the registry's last-write time, in one statement.
-- A regular write (idx >= 0) already stored is kept; a special one is replaced.
WITH new_writes AS (
    INSERT INTO {schema}.writes AS w (
        thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
        task_path, created_at
    )
    SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s,
           (r.w ->> 0)::int, r.w ->> 1, r.w ->> 2, b.value, %(task_path)s, now()
    FROM jsonb_array_elements(%(write_rows)s::jsonb) WITH ORDINALITY AS r (w, n)
    JOIN unnest(%(values)b::bytea[]) WITH ORDINALITY AS b (value, n) USING (n)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        channel = excluded.channel, type = excluded.type, value = excluded.value,
        task_path = excluded.task_path, created_at = excluded.created_at
    WHERE excluded.idx < 0
    RETURNING 1
)
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at)
SELECT %(thread_id)s, now(), now() WHERE EXISTS (SELECT 1 FROM new_writes)
ON CONFLICT (thread_id) DO UPDATE SET updated_at = greatest(t.updated_at, excluded.updated_at)

-- select_latest_checkpoint_id --
-- The newest checkpoint id of one namespace of a thread.
SELECT max(checkpoint_id) FROM {schema}.checkpoints
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s

-- walk_ancestors --
-- The checkpoint %(checkpoint_id)s and up to %(depth)s ancestors, nearest first,
-- with the version and value type of each of %(channels)s at each of them.
WITH RECURSIVE chain (depth, checkpoint_id, parent_checkpoint_id, channel_versions) AS (
    SELECT 0, checkpoint_id, parent_checkpoint_id, channel_versions
    FROM {schema}.checkpoints
    WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
      AND checkpoint_id = %(checkpoint_id)s
    UNION ALL
    SELECT chain.depth + 1, c.checkpoint_id, c.parent_checkpoint_id, c.channel_versions
    FROM chain JOIN {schema}.checkpoints AS c
      ON c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
     AND c.checkpoint_id = chain.parent_checkpoint_id
    WHERE chain.depth < %(depth)s
)
SELECT chain.depth, chain.checkpoint_id, chain.parent_checkpoint_id, je.key, je.value::text,
       v.type
FROM chain
LEFT JOIN LATERAL jsonb_each(chain.channel_versions) AS je
       ON je.key = ANY(%(channels)s::text[])
LEFT JOIN LATERAL (  -- a primary-key lookup per (channel, version); see select_checkpoints
    SELECT x.type FROM {schema}.channel_values AS x
    WHERE x.thread_id = %(thread_id)s AND x.checkpoint_ns = %(checkpoint_ns)s
      AND x.channel = je.key AND x.version = je.value
    LIMIT 1
) AS v ON TRUE
ORDER BY chain.depth

-- select_delta_history --
-- Seed values, with every version their pieces extend, and the pending writes of
-- %(checkpoint_ids)s on %(channels)s. Kinds: 0 seed value, 1 pending write.
WITH RECURSIVE wanted (channel, version) AS (
    SELECT s.channel COLLATE "C", s.version::jsonb
    FROM unnest(%(seed_channels)s::text[], %(seed_versions)s::text[]) AS s (channel, version)
    UNION
    SELECT p.channel, p.base_version
    FROM wanted AS w JOIN {schema}.channel_values AS p
      ON p.thread_id = %(thread_id)s AND p.checkpoint_ns = %(checkpoint_ns)s
     AND p.channel = w.channel AND p.version = w.version
    WHERE p.base_version IS NOT NULL
)
SELECT 0, channel, version::text, type, value, base_version::text, position, items::text
FROM {schema}.channel_values
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND (channel, version) IN (SELECT channel, version FROM wanted)
UNION ALL
SELECT 1, checkpoint_id, channel, type, value, task_id, idx, task_path
FROM {schema}.writes
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND checkpoint_id = ANY(%(checkpoint_ids)s::text[]) AND channel = ANY(%(channels)s::text[])

-- select_threads --
-- The registry, newest-updated first, rows matching {where}.
SELECT thread_id, created_at, updated_at, metadata::text
FROM {schema}.threads
WHERE {where}
ORDER BY updated_at DESC, thread_id DESC
LIMIT %(limit)s
