#!/usr/bin/env node
// `npm run bench -- <name>`: runs bench/<name>.ts from source through tsx.
import { register } from 'tsx/esm/api';

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
register();
await import('../bench/main.ts');
