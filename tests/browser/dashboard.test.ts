import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobContext } from '../../cli/commands/train.js';
import { registerModelArtifact } from '../../registry/register-model.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { runTrackedTuning } from '../../jobs/tracked-tuning.js';
import { serveDashboard } from '../../server/dashboard-static.js';
import { AFHQ_MINI, makeImage, REPO_ROOT } from '../helpers/fixtures.js';
import { saveTinyModel } from '../helpers/models.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { embedInProcess } from '../helpers/serving.js';
import {
  CHROMIUM,
  colouredPixels,
  DIST,
  ensureBuilt,
  MISSING_CHROMIUM as MISSING,
  REQUIRE_BROWSER,
} from '../helpers/browser.js';

const SCREENSHOTS = path.join(REPO_ROOT, 'test-results', 'screenshots');
const FIXTURE_CONFIG = path.join(
  REPO_ROOT,
  'tests',
  'fixtures',
  'plugins',
  'menagerie.config.json',
);
const MAX_FILE_SIZE = 512 * 1024;
const MODEL = 'pets';
const PHONE = { width: 390, height: 844 };

if (!CHROMIUM && REQUIRE_BROWSER) {
  describe('dashboard in Chromium against a real server', () => {
    it('has a Chromium to drive (MENAGERIE_REQUIRE_BROWSER=1)', () => {
      expect.fail(MISSING);
    });
  });
}

describe.skipIf(!CHROMIUM)(
  CHROMIUM ? 'dashboard in Chromium against a real server' : `dashboard (SKIPPED: ${MISSING})`,
  () => {
    let api: TestServer;
    let browser: Browser;
    let context: BrowserContext;
    const seeded: { id: string; label: string; split: string }[] = [];
    const counts = { cat: 0, dog: 0, wild: 0 };
    /** A real tracked training run (metric history, evaluation) and a real tuning run. */
    let trainedRun: { id: string; name: string };
    let tuningRun: { id: string; trials: string[] };

    beforeAll(async () => {
      ensureBuilt();
      api = await startTestServer(
        {
          maxFileSize: MAX_FILE_SIZE,
          servingModel: MODEL,
          // Embeddings are computed below, in this process, before anything asks for them.
          computeEmbeddings: false,
          // A job child on a loaded 2-core machine can take a while to report its run.
          jobs: { maxJobs: 1, killGraceMs: 20_000, startTimeoutMs: 180_000 },
        },
        { pluginConfig: FIXTURE_CONFIG },
      );
      expect(serveDashboard(api.server.app, DIST)).toBe(true);

      // The real AFHQ sample, through the API as the dashboard would add it.
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

      // A real training run of the fixture plugin, and a real random search over it.
      const jobs = jobContext(api.workspace);
      const quick = { batchSize: 8, augment: false, earlyStopping: false as const };
      const trained = await runTrackedTraining(jobs, {
        ...quick,
        plugin: 'tiny-mlp',
        epochs: 8,
        seed: 7,
        reduceLrOnPlateau: false,
        experiment: 'faces',
        runName: 'tiny-mlp-baseline',
      });
      trainedRun = { id: trained.runId, name: 'tiny-mlp-baseline' };
      const tuned = await runTrackedTuning(jobs, {
        plugin: 'tiny-mlp',
        tuner: 'random',
        maxTrials: 5,
        epochs: 3,
        seed: 11,
        batchSize: 8,
        experiment: 'search',
        runName: 'tiny-mlp-random',
      });
      tuningRun = {
        id: tuned.runId,
        trials: (await api.workspace.tracking.listChildRuns(tuned.runId)).map((r) => r.id),
      };

      // Two loadable versions of the model, from the run, the first one serving.
      const { registry } = api.server.services;
      for (const [seed, metrics] of [
        [1, { val_accuracy: 0.8, val_loss: 0.61 }],
        [2, { val_accuracy: 0.9, val_loss: 0.42 }],
      ] as const) {
        const dir = path.join(api.workspace.dataDir, `tiny-${seed}`);
        await saveTinyModel(dir, { seed, plugin: 'tiny-mlp', metrics });
        await registerModelArtifact(registry, api.workspace.plugins, {
          name: MODEL,
          dir,
          runId: trainedRun.id,
        });
        await embedInProcess(api, MODEL, seed);
      }
      const promoted = await api.gql(
        `mutation { promoteChampion(name: "${MODEL}", version: 1, comment: "first model") { version } }`,
        {},
        { token: TOKENS.write },
      );
      expect(promoted.errors).toBeUndefined();

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      fs.mkdirSync(SCREENSHOTS, { recursive: true });
    }, 300_000);

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

    // tiny-mlp-held trains `hold_from` epochs, then waits for the cancel: the run cannot end
    // before the cancel lands, on any machine.
    it('launches training from the Train page, follows it live and cancels it', async () => {
      const { page, errors } = await openPage('#/train');
      await page.locator('select[name=plugin]').selectOption('tiny-mlp-held');
      await page.locator('input[name=experiment]').fill('from-the-dashboard');
      await page.locator('input[name=runName]').fill('live-run');
      await page.getByLabel('Epochs').fill('1000');
      await page.getByLabel('pause_at').fill('2');
      await page.getByLabel('hold_from').fill('4');
      await page.getByLabel('Early-stopping patience').fill('0');
      await page.getByLabel('learning_rate').fill('0.001');
      await page.getByLabel('Seed').fill('7');
      const resumeFile = path.join(os.tmpdir(), `menagerie-resume-${process.pid}`);
      fs.rmSync(resumeFile, { force: true });
      process.env.HELD_MODEL_RESUME_FILE = resumeFile; // the job inherits it
      await page.getByRole('button', { name: 'Start training' }).click();

      const progress = page.getByRole('region', { name: 'Progress' });
      const epochOf = async () =>
        Number(/epoch (\d+) of 1000/.exec((await progress.textContent()) ?? '')?.[1] ?? 0);
      // Paused before its third epoch: two epochs are drawn.
      await expect.poll(epochOf, { timeout: 90_000 }).toBe(2);
      const canvas = progress.locator('canvas');
      await expect.poll(() => colouredPixels(canvas)).toBeGreaterThan(50);
      const drawing = () =>
        canvas.evaluate((element) => (element as unknown as { toDataURL(): string }).toDataURL());
      const before = await drawing();
      // Resumed, it trains to its hold; the epochs arrive over the subscription and the
      // curve grows (the drawing, not a pixel count, which a flat curve can leave equal).
      fs.writeFileSync(resumeFile, '');
      await expect.poll(epochOf, { timeout: 60_000 }).toBe(4);
      await expect.poll(drawing).not.toBe(before);
      fs.rmSync(resumeFile, { force: true });
      await page.getByRole('button', { name: 'Cancel run' }).click();
      await expect.poll(() => progress.textContent(), { timeout: 60_000 }).toMatch(/killed/i);
      expect(await page.getByRole('button', { name: 'Cancel run' }).isDisabled()).toBe(true);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'train-live.png'), fullPage: true });
      const runs = await api.gql<{ runs: { edges: { node: { status: string } }[] } }>(
        `{ runs(experiment: "from-the-dashboard") { edges { node { status } } } }`,
      );
      expect(runs.data?.runs.edges.map((e) => e.node.status)).toEqual(['KILLED']);
      expect(errors).toEqual([]);
      await page.close();
    }, 180_000);

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
      await expect
        .poll(() => bad.page.getByTestId('image-count').textContent())
        .toContain('matches');
      await bad.page.getByTestId('file-input').setInputFiles({
        name: 'x.png',
        mimeType: 'image/png',
        buffer: await makeImage(77, { format: 'png' }),
      });
      await bad.page.locator('input[name=label]').fill('cat');
      await bad.page.getByRole('button', { name: 'Upload' }).click();
      await expect
        .poll(() => bad.page.getByRole('alert').textContent())
        .toContain('UNAUTHENTICATED');
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

    it('classifies an upload: probability bars, the serving version and similar images', async () => {
      const { page, errors } = await openPage('#/classify');
      await expect.poll(() => page.getByTestId('serving').textContent()).toContain(`${MODEL} v1`);
      await page
        .getByTestId('file-input')
        .setInputFiles(path.join(AFHQ_MINI, 'cat', 'cat_010.jpg'));
      const prediction = page.getByTestId('prediction');
      await prediction.waitFor();
      expect(['cat', 'dog', 'wild']).toContain(
        (await prediction.locator('.predicted').textContent())?.trim(),
      );
      const bars = page.getByRole('meter');
      await expect.poll(() => bars.count()).toBe(3);
      const shares = await bars.evaluateAll((all) =>
        all.map((b) => Number(b.getAttribute('aria-valuenow'))),
      );
      expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
      expect(await page.getByRole('link', { name: `${MODEL} v1` }).count()).toBe(1);
      // The serving version has embeddings: neighbours by distance, not a random sample.
      const similar = page.getByTestId('similar');
      await expect.poll(() => similar.locator('figure').count()).toBeGreaterThan(0);
      expect(await page.getByText('by model embedding').count()).toBe(1);
      expect(await similar.textContent()).toMatch(/\d\.\d{2}/);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('opens a run and draws its metric curve and confusion matrix', async () => {
      const { page, errors } = await openPage('#/experiments');
      await page.getByRole('button', { name: trainedRun.name }).click();
      const canvas = page.getByTestId('curves').locator('canvas');
      await canvas.waitFor();
      // A drawn line leaves coloured pixels on the canvas.
      await expect.poll(() => colouredPixels(canvas)).toBeGreaterThan(100);
      await expect
        .poll(() => page.getByRole('heading', { name: 'Confusion matrix' }).count())
        .toBe(1);
      // The run's evaluation on the val split: one row and column per label.
      const matrix = page.getByRole('table', { name: /^Confusion matrix/ });
      await expect.poll(() => matrix.locator('tbody tr').count()).toBe(3);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('shows the trials of a real tuning run with the best highlighted', async () => {
      const { page, errors } = await openPage(`#/tuning?run=${tuningRun.id}`);
      const table = page.getByTestId('runs-table');
      await expect.poll(() => table.locator('tbody tr').count()).toBe(tuningRun.trials.length);
      await expect.poll(() => page.getByText(/^\s*best: /).count()).toBe(1);
      const canvas = page.locator('canvas').first();
      await canvas.waitFor();
      await expect.poll(() => colouredPixels(canvas)).toBeGreaterThan(20);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('evaluates versions on the val split from the Registry page; the promote dialog compares them', async () => {
      const { page, errors } = await openPage(`#/registry?model=${MODEL}`);
      const dialog = page.getByRole('dialog');
      // Nothing evaluated yet: the dialog says so rather than showing an empty comparison.
      await page.getByRole('button', { name: 'Promote version 2 to champion' }).click();
      await expect
        .poll(() => page.getByTestId('evaluation-change-missing').textContent())
        .toContain('Neither v2 nor v1 has been evaluated yet');
      await dialog.getByRole('button', { name: 'Cancel' }).click();

      // One job at a time: each evaluation is followed to its end before the next starts.
      // What the page says, alerts first, so a refused or failed job fails with its reason.
      const said = async () =>
        [
          ...(await page.getByRole('alert').allTextContents()).map((a) => `alert: ${a}`),
          ...(await page.getByRole('status').allTextContents()),
        ].join(' | ');
      for (const version of [2, 1]) {
        await page
          .getByRole('button', { name: `Evaluate version ${version} on the val split` })
          .click();
        await expect
          .poll(said, { timeout: 150_000 })
          .toContain(`v${version} was evaluated on the val split.`);
      }
      const rows = page.getByTestId('evaluations').locator('tbody tr');
      await expect.poll(() => rows.count()).toBe(2);
      for (const [i, version] of [1, 2].entries()) {
        const cells = (await rows.nth(i).locator('td').allTextContents()).map((c) =>
          c.replace(/\s+/g, ' ').trim(),
        );
        expect(cells[0]).toBe(`v${version}`);
        expect(cells[1]).toBe('val split · 3 images');
        expect(cells[3]).toMatch(/^\d+\.\d%$/);
        expect(cells[4]).toMatch(/^\d\.\d{4}$|^0$|^1$/);
        expect(cells[5]).toMatch(/^\d\.\d{4}$|^0$|^1$/);
      }

      // In full: the scores, the confusion matrix and the worst errors' thumbnails.
      await page
        .getByRole('button', { name: 'Details of the evaluation of v2 on val split' })
        .click();
      const detail = page.getByRole('region', { name: /^v2 on val split/ });
      const matrix = detail.getByRole('table', { name: /^Confusion matrix/ });
      await expect.poll(() => matrix.locator('tbody tr').count()).toBe(3);
      const counts = (await matrix.locator('tbody td').allTextContents()).map(Number);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(3);
      const worst = detail.getByTestId('worst-errors');
      const mistakes = 3 - [0, 4, 8].reduce((a, i) => a + counts[i]!, 0);
      await expect.poll(() => worst.locator('img').count()).toBe(mistakes);
      // Each thumbnail is a real image the browser decoded.
      await expect
        .poll(() =>
          worst
            .locator('img')
            .evaluateAll((all) =>
              all.every((i) => (i as unknown as { naturalWidth: number }).naturalWidth > 0),
            ),
        )
        .toBe(true);
      if (mistakes === 0) expect(await worst.textContent()).toContain('No mistakes');
      await page.screenshot({
        path: path.join(SCREENSHOTS, 'registry-evaluation.png'),
        fullPage: true,
      });

      // On a phone the same detail fits the screen: the page scrolls vertically only.
      const phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2 });
      const small = await openPage(`#/registry?model=${MODEL}`, { context: phone });
      await small.page
        .getByRole('button', { name: 'Details of the evaluation of v1 on val split' })
        .click();
      await small.page.getByRole('table', { name: /^Confusion matrix/ }).waitFor();
      await small.page.waitForLoadState('networkidle');
      await small.page.screenshot({
        path: path.join(SCREENSHOTS, 'phone-registry-evaluation.png'),
        fullPage: true,
      });
      expect(
        await small.page.evaluate<number>('document.documentElement.scrollWidth'),
      ).toBeLessThanOrEqual(PHONE.width);
      expect(small.errors).toEqual([]);
      await phone.close();

      // Both versions evaluated on the same data: the dialog compares them.
      await page.getByRole('button', { name: 'Promote version 2 to champion' }).click();
      const change = page.getByTestId('evaluation-change');
      await expect
        .poll(() => change.locator('tbody td:first-child').allTextContents())
        .toEqual([
          'accuracy',
          'macro F1',
          'ECE (calibration error)',
          'F1 cat',
          'F1 dog',
          'F1 wild',
        ]);
      expect(await dialog.textContent()).toContain('On the same data: val split, 3 images');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'registry-promote-evaluations.png') });
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      expect(errors).toEqual([]);
      await page.close();
    }, 400_000);

    it('promotes a version and the header follows', async () => {
      const { page } = await openPage(`#/registry?model=${MODEL}`);
      await expect.poll(() => page.getByTestId('serving').textContent()).toContain(`${MODEL} v1`);
      await page.getByRole('button', { name: 'Promote version 2 to champion' }).click();
      await expect.poll(() => page.getByTestId('metric-change').textContent()).toContain('+0.1000');
      await page.getByRole('dialog').getByRole('button', { name: 'Promote' }).click();
      await expect.poll(() => page.getByTestId('serving').textContent()).toContain(`${MODEL} v2`);
      // …and so does the server: predict answers with v2 from the next request.
      const serving = await api.gql<{ serving: { model: { version: number } } }>(
        '{ serving { model { version } } }',
      );
      expect(serving.data?.serving.model.version).toBe(2);
      await page.close();
    });

    it('can be driven by keyboard: every tab stop shows where focus is', async () => {
      const { page } = await openPage(`#/registry?model=${MODEL}`);
      await page.getByTestId('versions').waitFor();
      const unmarked: string[] = [];
      for (let i = 0; i < 25; i++) {
        await page.keyboard.press('Tab');
        const focus = await page.evaluate<{ name: string; visible: boolean } | null>(`(() => {
          const e = document.activeElement;
          if (!e || e === document.body) return null;
          const s = getComputedStyle(e);
          const outlined = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
          return {
            name: e.tagName.toLowerCase() + ':' + (e.getAttribute('aria-label') ?? e.textContent ?? '').trim().slice(0, 30),
            visible: outlined || s.boxShadow !== 'none',
          };
        })()`);
        if (focus && !focus.visible) unmarked.push(focus.name);
      }
      expect(unmarked).toEqual([]);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'registry-keyboard.png') });
      await page.close();
    });

    it('renders every page at 1280×800 and on a phone (screenshots under test-results/screenshots)', async () => {
      const shots: [string, string][] = [
        ['classify', '#/classify'],
        ['dataset', '#/dataset'],
        ['experiments', `#/experiments?runs=${trainedRun.id},${tuningRun.trials[0]}`],
        ['tuning', `#/tuning?run=${tuningRun.id}`],
        ['train', '#/train'],
        ['registry', `#/registry?model=${MODEL}`],
      ];
      const phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2 });
      for (const [device, ctx] of [
        ['', context],
        ['phone-', phone],
      ] as const) {
        for (const [name, hash] of shots) {
          const { page, errors } = await openPage(hash, { context: ctx });
          await page.waitForLoadState('networkidle');
          if (name === 'classify') {
            await page
              .getByTestId('file-input')
              .setInputFiles(
                path.join(AFHQ_MINI, 'dog', fs.readdirSync(path.join(AFHQ_MINI, 'dog')).sort()[0]!),
              );
            await page.getByTestId('similar').or(page.getByRole('alert')).first().waitFor();
            await page.waitForLoadState('networkidle');
          }
          if (name === 'dataset') {
            await page.getByTestId('image-grid').getByRole('button').first().click();
            await page.waitForLoadState('networkidle');
          }
          await page.waitForTimeout(400);
          await page.screenshot({
            path: path.join(SCREENSHOTS, `${device}${name}.png`),
            fullPage: true,
          });
          if (name === 'registry' && !device) {
            await page.getByRole('button', { name: 'Promote version 1 to champion' }).click();
            await page.getByTestId('metric-change').waitFor();
            await page.screenshot({ path: path.join(SCREENSHOTS, 'registry-promote.png') });
          }
          expect(errors, name).toEqual([]);
          if (!device) {
            // At 1280 every table fits its panel: nothing (an Archive button) hides behind a scroll.
            const clipped = await page.evaluate<string[]>(`
              [...document.querySelectorAll('.table-wrap')]
                .filter((w) => w.scrollWidth > w.clientWidth + 1)
                .map((w) => w.querySelector('table')?.dataset.testid ?? w.closest('section')?.id ?? '?')
            `);
            expect(clipped, `${name}: tables clipped at 1280`).toEqual([]);
          }
          // Nothing wider than the viewport: the page scrolls vertically only.
          const viewport = page.viewportSize()!.width;
          const width = await page.evaluate<number>('document.documentElement.scrollWidth');
          const overflowing = await page.evaluate<string[]>(`
            [...document.querySelectorAll('body *')]
              .filter((e) => e.getBoundingClientRect().right > ${viewport + 1} && !e.closest('nav, .table-wrap'))
              .map((e) => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))
              .slice(0, 5)
          `);
          expect(
            width,
            `${device}${name}: wider than the screen: ${overflowing.join(', ')}`,
          ).toBeLessThanOrEqual(viewport);
          await page.close();
        }
      }
      await phone.close();
    }, 180_000);
  },
);
