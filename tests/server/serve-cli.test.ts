import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';
import { startCli } from '../helpers/cli.js';

describe('menagerie serve', () => {
  it('prints its URL, answers GraphQL with the token it was given, and stops on SIGTERM', async () => {
    const { dir, remove } = tempDir();
    const child = startCli([
      '--data-dir',
      dir,
      'serve',
      '--port',
      '0',
      '--no-playground',
      '--token',
      'write:cli-test-token-1',
    ]);
    try {
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${stderr}`)), 60_000);
        child.stderr!.on('data', () => {
          const match = /serving (http:\/\/127\.0\.0\.1:\d+\/graphql)/.exec(stderr);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        });
      });
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer cli-test-token-1' },
        body: JSON.stringify({ query: 'mutation { relabel(id: "1", label: "x") { id } }' }),
      });
      const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
      // Authenticated (a write token), so the error is about the missing image.
      expect(body.errors[0]!.extensions.code).toBe('IMAGE_NOT_FOUND');
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
      remove();
    }
  });
});
