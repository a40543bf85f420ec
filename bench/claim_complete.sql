-- (3) ours: claim one task (its own transaction), then complete it (another).
SELECT run_id FROM belay.claim('bench', 'pgbench', 1, 60) \gset
SELECT belay.complete(:run_id);
