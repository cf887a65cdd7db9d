-- The first schema: a thread registry, checkpoints, channel values stored once
-- per (thread, namespace, channel, version), and pending writes. {schema} is the
-- saver's quoted schema name. Ids use the "C" collation so they sort by bytes,
-- as uuid6 checkpoint ids are meant to.

CREATE TABLE {schema}.threads (
    thread_id TEXT COLLATE "C" PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,           -- newest checkpoint or write
    latest_checkpoint_id TEXT COLLATE "C",     -- newest root checkpoint
    metadata JSONB                             -- its metadata
);
CREATE INDEX threads_by_updated_at ON {schema}.threads (updated_at, thread_id);
CREATE INDEX threads_by_metadata ON {schema}.threads USING GIN (metadata jsonb_path_ops);

CREATE TABLE {schema}.checkpoints (
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    parent_checkpoint_id TEXT COLLATE "C",
    type TEXT NOT NULL,
    checkpoint BYTEA NOT NULL,                 -- body without channel values and versions
    channel_versions JSONB NOT NULL,
    metadata JSONB NOT NULL,
    run_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE INDEX checkpoints_by_run_id ON {schema}.checkpoints (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX checkpoints_by_metadata ON {schema}.checkpoints USING GIN (metadata jsonb_path_ops);

CREATE TABLE {schema}.channel_values (
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    version JSONB NOT NULL,
    type TEXT NOT NULL,                        -- serde type tag, or 'empty'
    value BYTEA NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE {schema}.writes (
    thread_id TEXT COLLATE "C" NOT NULL,
    checkpoint_ns TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT COLLATE "C" NOT NULL,
    task_id TEXT COLLATE "C" NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    value BYTEA NOT NULL,
    task_path TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
