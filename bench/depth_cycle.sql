-- (7) claim + complete one task, and spawn one so the queue keeps its depth (1,000 pending
-- must not run dry in a few hundred milliseconds). The same script runs at both depths.
SELECT run_id FROM belay.claim('depth', 'pgbench', 1, 60) \gset
SELECT belay.complete(:run_id);
SELECT task_id FROM belay.spawn('depth', 'noop', '{"n": 1}');
