import type { Command } from 'commander';
import sharp from 'sharp';
import { countImages } from '../../data/image-catalog.js';
import { loadTensorflow, tensorflowVersion } from '../../tf/tensorflow.js';
import { openWorkspace, type Workspace } from '../workspace.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check the TensorFlow backend, database, blob store and plugins; exit 1 on a problem',
    )
    .action(async (_opts, command: Command) => {
      const checks: Check[] = [];
      const check = async (name: string, run: () => Promise<string>) => {
        try {
          checks.push({ name, ok: true, detail: await run() });
        } catch (error) {
          checks.push({
            name,
            ok: false,
            detail: error instanceof Error ? error.message : String(error),
          });
        }
      };
      await check('node', async () => process.versions.node);
      await check('tensorflow', async () => {
        const tf = await loadTensorflow();
        return `backend ${tf.getBackend()}, TensorFlow ${await tensorflowVersion()}, tfjs-node ${tf.version_core}`;
      });
      await check('sharp', async () => `libvips ${sharp.versions.vips}`);
      let workspace: Workspace | undefined;
      await check('database', async () => {
        workspace = await openWorkspace(command.optsWithGlobals());
        const { engine, location, schemaVersion } = workspace.database;
        const name = engine.backend === 'postgres' ? 'PostgreSQL' : 'SQLite';
        const vectors = engine.vectors ?? 'no vector extension';
        return `${name} ${engine.version.split(' ')[0]}, ${vectors}: ${location}, schema ${schemaVersion}`;
      });
      if (workspace) {
        const ws = workspace;
        await check('blob store', async () => {
          const uri = await ws.blobs.put(Buffer.from('menagerie doctor probe'), { ext: 'txt' });
          const back = await ws.blobs.get(uri);
          await ws.blobs.delete(uri);
          if (back.toString() !== 'menagerie doctor probe')
            throw new Error(`${uri} read back different bytes`);
          return `${ws.blobs.location} (write, read, delete ok)`;
        });
        await check('images', async () => {
          const counts = await countImages(ws.database.db);
          const total = counts.reduce((n, c) => n + c.count, 0);
          const labels = new Set(counts.map((c) => c.label));
          return `${total} images, ${labels.size} labels`;
        });
        await check('plugins', async () =>
          ws.plugins
            .list()
            .map((p) => `${p.kind} ${p.name}@${p.version ?? '?'}`)
            .join(', '),
        );
        await ws.close();
      }
      for (const c of checks)
        console.log(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(11)} ${c.detail}`);
      if (checks.some((c) => !c.ok)) process.exitCode = 1;
    });
}
