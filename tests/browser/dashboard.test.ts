import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { GraphQLSchema } from 'graphql';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelRegistry } from '../../registry/model-registry.js';
import { buildMenagerieSchema } from '../../schema/build-schema.js';
import { serveDashboard } from '../../server/dashboard-static.js';
import { AFHQ_MINI, makeImage, REPO_ROOT } from '../helpers/fixtures.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { plannedResponse, PLANNED_ROOT_FIELD, type SeededImage } from './planned-responses.js';

const CHROMIUM = [process.env.MENAGERIE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .filter((p): p is string => !!p)
  .find((p) => fs.existsSync(p));
const CLIENT = path.join(REPO_ROOT, 'client');
const DIST = path.join(CLIENT, 'dist');
const SCREENSHOTS = path.join(REPO_ROOT, 'test-results', 'screenshots');
const MAX_FILE_SIZE = 512 * 1024;

/** The little of a canvas the page-side check reads (the root tsconfig has no DOM lib). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  };
}

/** Does the server's schema have `Type.field` (root types by their operation name)? */
function serves(schema: GraphQLSchema, dotted: string): boolean {
  const [first, second] = dotted.split('.') as [string, string | undefined];
  // `image.similar`: a field the planned schema adds to a type the server already has.
  if (second !== undefined) return hasField(schema, 'Image', second);
  return (
    hasField(schema, 'Query', first) ||
    hasField(schema, 'Mutation', first) ||
    hasField(schema, 'Subscription', first)
  );
}
function hasField(schema: GraphQLSchema, typeName: string, field: string): boolean {
  const type = schema.getType(typeName);
  return !!type && 'getFields' in type && field in (type.getFields() as Record<string, unknown>);
}

// The planned parts (schema/planned.graphql) are tested against the real server once it
// serves them; until then their cases are skipped and the screenshots use recorded answers.
const schema = await buildMenagerieSchema();
const SERVES_RUNS = serves(schema, 'runs') && serves(schema, 'run');
const SERVES_PROMOTION = serves(schema, 'promoteChampion') && serves(schema, 'serving');

/** Rebuilds the dashboard when a source file is newer than the build. */
function ensureBuilt(): void {
  const built = path.join(DIST, 'index.html');
  const builtAt = fs.existsSync(built) ? fs.statSync(built).mtimeMs : 0;
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...fs.readdirSync(dir, { withFileTypes: true }).map((entry) => {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) return entry.name === 'dist' ? 0 : newest(full);
        return fs.statSync(full).mtimeMs;
      }),
    );
  if (builtAt > newest(CLIENT)) return;
  const vite = path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(
    process.execPath,
    [vite, 'build', '--config', path.join(CLIENT, 'vite.config.ts')],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  );
  if (result.status !== 0)
    throw new Error(`vite build failed:\n${result.stdout}\n${result.stderr}`);
}

const title = CHROMIUM
  ? 'dashboard in Chromium against a real server'
  : 'dashboard (SKIPPED: no chromium binary; apt-get install -y chromium, or set MENAGERIE_CHROMIUM)';

describe.skipIf(!CHROMIUM)(title, () => {
  let api: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  const seeded: SeededImage[] = [];
  const counts = { cat: 0, dog: 0, wild: 0 };

  beforeAll(async () => {
    ensureBuilt();
    api = await startTestServer({ maxFileSize: MAX_FILE_SIZE });
    expect(serveDashboard(api.server.app, DIST)).toBe(true);

    for (const label of ['cat', 'dog', 'wild'] as const) {
      const files = fs.readdirSync(path.join(AFHQ_MINI, label)).sort().slice(0, 8);
      for (const [i, name] of files.entries()) {
        const split = i < 6 ? 'TRAIN' : i === 6 ? 'VAL' : 'TEST';
        const bytes = fs.readFileSync(path.join(AFHQ_MINI, label, name));
        const res = await api.upload<{ addImage: { image: { id: string } } }>(
          ADD_IMAGE,
          { file: null, label, split },
          [{ path: 'variables.file', file: { bytes, filename: name } }],
          { token: TOKENS.write },
        );
        seeded.push({ id: res.data!.addImage.image.id, label, split });
        counts[label] += 1;
      }
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await api?.dispose();
  });

  async function openPage(
    hash: string,
    options: { token?: string; context?: BrowserContext } = {},
  ) {
    const page = await (options.context ?? context).newPage();
    const token = options.token ?? TOKENS.write;
    await page.addInitScript(`localStorage.setItem('menagerie.token', ${JSON.stringify(token)})`);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${api.origin}/${hash}`);
    return { page, errors };
  }

  /** Answers planned operations the real server lacks, from recorded responses. */
  async function stubPlanned(page: Page) {
    await page.route('**/graphql', async (route) => {
      const body = route.request().postData() ?? '';
      const operation = /\b(?:query|mutation)\s+(\w+)/.exec(body)?.[1];
      const field = operation ? PLANNED_ROOT_FIELD[operation] : undefined;
      if (!operation || !field || serves(schema, field)) return route.fallback();
      let variables: Record<string, unknown> = {};
      try {
        variables = (JSON.parse(body) as { variables?: Record<string, unknown> }).variables ?? {};
      } catch {
        // multipart: the stubs that take files ignore their variables
      }
      const data = plannedResponse(operation, variables, api.origin, seeded);
      if (data === undefined) return route.fallback();
      await route.fulfill({ json: { data } });
    });
  }

  it('serves the dashboard with an SPA fallback, and leaves API paths alone', async () => {
    const html = await api.get('/registry', { accept: 'text/html' });
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('<div id="app">');
    const json = await api.get('/nope', { accept: 'application/json' });
    expect(json.status).toBe(404);
    const image = await api.get(`/images/${seeded[0]!.id}/thumb?size=128`, {
      accept: 'text/html,*/*',
    });
    expect(image.headers.get('content-type')).toContain('image/webp');
  });

  it('filters the data set by label and split', async () => {
    const { page, errors } = await openPage('#/dataset');
    const count = page.getByTestId('image-count');
    await expect.poll(() => count.textContent()).toContain(`${seeded.length} matches`);

    await page.locator('select[name=label-filter]').selectOption('cat');
    await expect.poll(() => count.textContent()).toContain(`${counts.cat} matches`);
    await expect
      .poll(() => page.getByTestId('image-grid').locator('figure').count())
      .toBe(counts.cat);
    await expect.poll(() => page.url()).toContain('label=cat');

    await page.locator('select[name=split-filter]').selectOption('VAL');
    await expect.poll(() => count.textContent()).toContain('1 match');
    await page.getByTestId('image-grid').getByRole('button').first().click();
    await expect.poll(() => page.getByTestId('image-detail').textContent()).toContain('val');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('uploads an image with the token and shows it added', async () => {
    const { page, errors } = await openPage('#/dataset');
    await page.getByTestId('file-input').setInputFiles({
      name: 'fox.png',
      mimeType: 'image/png',
      buffer: await makeImage(4242, { format: 'png', size: 96 }),
    });
    await expect.poll(() => page.getByTestId('chosen-file').textContent()).toContain('fox.png');
    await page.locator('input[name=label]').fill('fox');
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect
      .poll(() => page.getByTestId('upload-result').textContent())
      .toMatch(/Added #\d+ as fox/);
    // The counts chart and the filter learn the new label without a reload.
    await expect
      .poll(() =>
        page
          .locator('select[name=label-filter] option')
          .allTextContents()
          .then((all) => all.map((t) => t.trim())),
      )
      .toContain('fox (1)');
    expect(errors).toEqual([]);
    await page.close();
  });

  it("shows the server's code and message for a file that is not an image", async () => {
    const bytes = new TextEncoder().encode('just some notes, not a picture\n'.repeat(20));
    const direct = await api.upload(
      ADD_IMAGE,
      { file: null, label: 'cat' },
      [{ path: 'variables.file', file: { bytes, filename: 'notes.jpg' } }],
      { token: TOKENS.write },
    );
    const expected = direct.errors![0]!;

    const { page } = await openPage('#/dataset');
    await page
      .getByTestId('file-input')
      .setInputFiles({ name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from(bytes) });
    await page.locator('input[name=label]').fill('cat');
    await page.getByRole('button', { name: 'Upload' }).click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain(expected.extensions!.code!);
    expect(await alert.textContent()).toContain(expected.message);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dataset-bad-upload.png') });
    await page.close();
  });

  it('shows UPLOAD_TOO_LARGE for a file over the server cap, and UNAUTHENTICATED for a bad token', async () => {
    const { page } = await openPage('#/dataset');
    await page.getByTestId('file-input').setInputFiles({
      name: 'huge.jpg',
      mimeType: 'image/jpeg',
      buffer: Buffer.alloc(MAX_FILE_SIZE + 1024, 7),
    });
    await page.locator('input[name=label]').fill('cat');
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('UPLOAD_TOO_LARGE');
    await page.close();

    const bad = await openPage('#/dataset', { token: 'not-a-real-token-000' });
    // Reading works with a stale token: it is only sent on writes.
    await expect.poll(() => bad.page.getByTestId('image-count').textContent()).toContain('matches');
    await bad.page.getByTestId('file-input').setInputFiles({
      name: 'x.png',
      mimeType: 'image/png',
      buffer: await makeImage(77, { format: 'png' }),
    });
    await bad.page.locator('input[name=label]').fill('cat');
    await bad.page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => bad.page.getByRole('alert').textContent()).toContain('UNAUTHENTICATED');
    await bad.page.close();
  });

  it('says the server is unreachable when requests fail', async () => {
    const { page } = await openPage('#/dataset');
    await page.route('**/graphql', (route) => route.abort('connectionrefused'));
    await page.reload();
    await expect
      .poll(() => page.getByRole('alert').first().textContent())
      .toContain('SERVER_UNREACHABLE');
    await expect.poll(() => page.getByTestId('serving').textContent()).toContain('server down');
    await page.close();
  });

  it.skipIf(!SERVES_RUNS)('opens a run and draws its metric curve', async () => {
    const { tracking } = api.workspace;
    const experiment = await tracking.getOrCreateExperiment('browser');
    const run = await tracking.createRun({ experimentId: experiment.id, name: 'curve-run' });
    await tracking.logParams(run.id, { optimizer: 'adam', learning_rate: 0.001 });
    for (let step = 0; step < 6; step++) {
      await tracking.logMetrics(
        run.id,
        { loss: 1 / (step + 1), val_loss: 1.1 / (step + 1) },
        { step },
      );
    }
    await tracking.endRun(run.id, 'FINISHED');

    const { page, errors } = await openPage('#/experiments');
    await page.getByRole('button', { name: 'curve-run' }).click();
    const canvas = page.getByTestId('curves').locator('canvas');
    await canvas.waitFor();
    // A drawn line leaves coloured pixels on the canvas.
    await expect
      .poll(() =>
        canvas.evaluate((element) => {
          const c = element as unknown as CanvasLike;
          const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let coloured = 0;
          for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3]! > 0 && Math.abs(pixels[i]! - pixels[i + 2]!) > 60) coloured++;
          }
          return coloured;
        }),
      )
      .toBeGreaterThan(100);
    expect(errors).toEqual([]);
    await page.close();
  });

  it.skipIf(!SERVES_PROMOTION)('promotes a version and the header follows', async () => {
    const registry = createModelRegistry({ db: api.workspace.database.db });
    const inputSpec = { size: 64, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 } as const;
    for (const acc of [0.8, 0.9]) {
      const v = await registry.createModelVersion({
        name: 'pets',
        source: 'file:///nowhere',
        plugin: 'menagerie:cnn',
        labels: ['cat', 'dog', 'wild'],
        inputSpec,
        metrics: { val_accuracy: acc },
      });
      await registry.setVersionStatus('pets', v.version, 'READY');
    }
    await registry.promoteChampion('pets', 1);

    const { page } = await openPage('#/registry?model=pets');
    await expect.poll(() => page.getByTestId('serving').textContent()).toContain('pets v1');
    await page.getByRole('button', { name: 'Promote version 2 to champion' }).click();
    await expect.poll(() => page.getByTestId('metric-change').textContent()).toContain('+0.1000');
    await page.getByRole('dialog').getByRole('button', { name: 'Promote' }).click();
    await expect.poll(() => page.getByTestId('serving').textContent()).toContain('pets v2');
    await page.close();
  });

  it('renders every page (screenshots under test-results/screenshots)', async () => {
    const shots: [string, string][] = [
      ['classify', '#/classify'],
      ['dataset', '#/dataset'],
      ['experiments', '#/experiments?runs=a1f3,b7c2,c9d4'],
      ['tuning', '#/tuning'],
      ['train', '#/train'],
      ['registry', '#/registry'],
    ];
    for (const [name, hash] of shots) {
      const page = await context.newPage();
      await stubPlanned(page);
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${api.origin}/${hash}`);
      await page.waitForLoadState('networkidle');
      if (name === 'classify') {
        await page
          .getByTestId('file-input')
          .setInputFiles(path.join(AFHQ_MINI, 'cat', 'cat_010.jpg'));
        await page.getByTestId('prediction').or(page.getByRole('alert')).first().waitFor();
        await page.waitForLoadState('networkidle');
      }
      if (name === 'dataset') {
        await page.getByTestId('image-grid').getByRole('button').first().click();
        await page.waitForLoadState('networkidle');
      }
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
      if (name === 'registry') {
        await page.getByRole('button', { name: 'Promote version 3 to champion' }).click();
        await page.getByTestId('metric-change').waitFor();
        await page.screenshot({ path: path.join(SCREENSHOTS, 'registry-promote.png') });
      }
      expect(errors, name).toEqual([]);
      await page.close();
    }

    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
    });
    for (const [name, hash] of [
      ['phone-dataset', '#/dataset'],
      ['phone-registry', '#/registry'],
    ] as const) {
      const page = await phone.newPage();
      await stubPlanned(page);
      await page.goto(`${api.origin}/${hash}`);
      await page.waitForLoadState('networkidle');
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
      // Nothing wider than the screen: the page scrolls vertically only.
      const width = await page.evaluate<number>('document.documentElement.scrollWidth');
      const overflowing = await page.evaluate<string[]>(`
        [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('nav'))
          .map((e) => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))
          .slice(0, 5)
      `);
      expect(
        width,
        `${name}: wider than the screen: ${overflowing.join(', ')}`,
      ).toBeLessThanOrEqual(390);
      await page.close();
    }
    await phone.close();
  });
});
