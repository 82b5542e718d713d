#!/usr/bin/env node
// The CLI runs from TypeScript source through tsx, so `npx menagerie` needs no build step.
import { register } from 'tsx/esm/api';

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
register();
await import('../cli/main.ts');
