-- Append-delta storage (_core/deltas.py): a channel value of type 'append' holds
-- only the items its version appended to base_version of the same channel;
-- position is its place in the chain of pieces, items the number of items of the
-- whole list. Rows stored before this migration are whole values (all NULL).
-- Adding columns rewrites nothing.
ALTER TABLE channel_values ADD COLUMN base_version;  -- no affinity, as version
ALTER TABLE channel_values ADD COLUMN position INTEGER;
ALTER TABLE channel_values ADD COLUMN items INTEGER;
