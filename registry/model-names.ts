import { excerpt, MenagerieError } from '../core/errors.js';
import { MODEL_STAGES, type ModelStage } from '../data/tables.js';

/** The alias serving follows; it moves only with `promoteChampion`, which also moves the stage. */
export const CHAMPION = 'champion';

/** Stages `archiveExisting` may clear, and whose holders MLflow's "latest versions" report. */
export const ACTIVE_STAGES: readonly ModelStage[] = ['Staging', 'Production'];

const MAX_NAME = 255;
const MAX_ALIAS = 255;

/**
 * A registered model name: 1–255 characters, no `/` or `@` (they split `models:/` URIs),
 * no control characters, no surrounding spaces.
 */
export function validateModelName(name: string): string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > MAX_NAME ||
    name.trim() !== name ||
    /[/@\p{Cc}]/u.test(name)
  ) {
    throw new MenagerieError(
      'MODEL_NAME_INVALID',
      `model name should be 1–${MAX_NAME} characters without '/', '@' or surrounding spaces, got ${JSON.stringify(excerpt(name))}`,
    );
  }
  return name;
}

/**
 * An alias as MLflow accepts it: letters, digits, `_` and `-`, at most 255 characters,
 * neither `latest` (any case) nor version-like (`v3`, `V3`). Menagerie also refuses bare
 * numbers (`3`), which read as a version.
 */
export function validateAlias(alias: string): string {
  if (typeof alias !== 'string' || !/^[\w-]{1,255}$/.test(alias) || alias.length > MAX_ALIAS)
    throw new MenagerieError(
      'MODEL_ALIAS_INVALID',
      `alias should be 1–${MAX_ALIAS} letters, digits, '_' or '-', got ${JSON.stringify(excerpt(alias))}`,
    );
  if (alias.toLowerCase() === 'latest')
    throw new MenagerieError(
      'MODEL_ALIAS_INVALID',
      `'${alias}' is reserved: models:/<name>/latest already means the newest version`,
    );
  if (/^[vV]?\d+$/.test(alias))
    throw new MenagerieError(
      'MODEL_ALIAS_INVALID',
      `'${alias}' reads as a version number; choose a name such as 'challenger'`,
    );
  return alias;
}

/** A stage in any case (`production`, `PRODUCTION`) to its canonical spelling. */
export function parseStage(stage: string): ModelStage {
  const found = MODEL_STAGES.find((s) => s.toLowerCase() === String(stage).toLowerCase());
  if (!found)
    throw new MenagerieError(
      'MODEL_STAGE_INVALID',
      `stage should be one of ${MODEL_STAGES.join(', ')}, got '${excerpt(stage)}'`,
    );
  return found;
}

/** Version numbers are whole numbers from 1. */
export function validateVersion(name: string, version: number): number {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new MenagerieError(
      'MODEL_VERSION_NOT_FOUND',
      `model '${excerpt(name)}' has no version ${excerpt(String(version))}: versions are whole numbers from 1`,
    );
  return version;
}
