import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openWorkspace } from '../../cli/workspace.js';
import type { OpenDatabase } from '../../data/database.js';
import { isProcessAlive } from '../../core/process-alive.js';
import { FAILURE_REASON_TAG, failStaleRuns } from '../../tracking/stale-runs.js';
import type { TrackingStore } from '../../tracking/tracking-store.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';
import { memoryTrackingStore } from '../helpers/tracking.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  describe('failStaleRuns', () => {
    let store: TrackingStore;
    let database: OpenDatabase;
    let dispose: () => Promise<void>;
    beforeEach(async () => {
      ({ store, database, dispose } = await memoryTrackingStore(backend));
    });
    afterEach(() => dispose());

    async function runOwnedBy(owner: {
      pid: number | null;
      hostname: string;
      heartbeatAt: number;
    }) {
      const experiment = await store.getOrCreateExperiment('e');
      const run = await store.createRun({ experimentId: experiment.id });
      await database.db
        .updateTable('runs')
        .set({ owner_pid: owner.pid, hostname: owner.hostname, heartbeat_at: owner.heartbeatAt })
        .where('id', '=', run.id)
        .execute();
      return run.id;
    }

    it('fails runs of dead processes on this host and silent runs of other hosts, and only those', async () => {
      const now = 10_000_000;
      const dead = await runOwnedBy({ pid: 4242, hostname: 'here', heartbeatAt: now - 5000 });
      const alive = await runOwnedBy({
        pid: 4343,
        hostname: 'here',
        heartbeatAt: now - 99_999_999,
      });
      const own = await runOwnedBy({ pid: process.pid, hostname: 'here', heartbeatAt: 0 });
      const silent = await runOwnedBy({ pid: 1, hostname: 'far', heartbeatAt: now - 11 * 60_000 });
      const recent = await runOwnedBy({ pid: 1, hostname: 'far', heartbeatAt: now - 60_000 });
      const finished = await runOwnedBy({ pid: 4242, hostname: 'here', heartbeatAt: 0 });
      await database.db
        .updateTable('runs')
        .set({ status: 'FINISHED', end_time: 5 })
        .where('id', '=', finished)
        .execute();

      const failed = await failStaleRuns(database.db, {
        now,
        hostname: 'here',
        isProcessAlive: (pid) => pid !== 4242,
      });
      expect(failed.map((f) => f.runId).sort()).toEqual([dead, silent].sort());
      expect(await store.getRun(dead)).toMatchObject({
        status: 'FAILED',
        endTime: now - 5000,
        tags: { [FAILURE_REASON_TAG]: 'owner process 4242 on here exited without ending the run' },
      });
      expect((await store.getRun(silent)).tags[FAILURE_REASON_TAG]).toMatch(
        /^no heartbeat from far since .* \(timeout 600 s\)$/,
      );
      for (const id of [alive, own, recent])
        expect((await store.getRun(id)).status).toBe('RUNNING');
      expect((await store.getRun(finished)).endTime).toBe(5);
      // Failed runs are settled; a later pass fails only what has gone stale since.
      expect(
        await failStaleRuns(database.db, { now, hostname: 'here', isProcessAlive: () => false }),
      ).toEqual([expect.objectContaining({ runId: alive })]);
    });

    it('isProcessAlive tells this process from an exited one', async () => {
      expect(isProcessAlive(process.pid)).toBe(true);
      const child = spawn(process.execPath, ['-e', '0']);
      const pid = child.pid!;
      await new Promise((resolve) => child.once('exit', resolve));
      expect(isProcessAlive(pid)).toBe(false);
    });
  });

  describe('a process killed mid-run', () => {
    const { dir, remove } = tempDir('menagerie-stale-');
    afterEach(remove);

    it('leaves a RUNNING run that the next workspace open marks FAILED', async () => {
      const dataDir = path.join(dir, 'data');
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'tests/fixtures/tracking/start-run.ts'), dataDir],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const runId = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('\n')) resolve(out.trim());
        });
        child.once('exit', (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
      });
      expect(runId).toMatch(/^[0-9a-f]{32}$/);

      // While the owner lives, another open leaves its run alone.
      const during = await openWorkspace({ dataDir });
      expect((await during.tracking.getRun(runId)).status).toBe('RUNNING');
      await during.close();

      child.kill('SIGKILL');
      await exited;
      const after = await openWorkspace({ dataDir });
      try {
        const run = await after.tracking.getRun(runId);
        expect(run.status).toBe('FAILED');
        expect(run.endTime).toBeGreaterThanOrEqual(run.startTime);
        expect(run.tags[FAILURE_REASON_TAG]).toBe(
          `owner process ${child.pid} on ${run.hostname} exited without ending the run`,
        );
        expect(run.metrics).toEqual({ loss: 1.5 });
        await expect(after.tracking.logMetric(runId, 'loss', 1)).rejects.toMatchObject({
          code: 'RUN_NOT_ACTIVE',
        });
      } finally {
        await after.close();
      }
    });
  });
});
