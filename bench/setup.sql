-- scripts/bench.sh: the schema of the raw baselines, and belay's queues.
-- bench.raw_tasks has belay.tasks' columns, defaults, checks and indexes (LIKE ... INCLUDING
-- ALL), but no foreign key, no functions and no history table: the "plain table".
CREATE EXTENSION IF NOT EXISTS belay;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TABLE bench.raw_tasks (LIKE belay.tasks INCLUDING ALL);
SELECT belay.create_queue(q) FROM unnest(ARRAY['bench', 'drain', 'latency', 'timer', 'depth', 'bloat']) q;
