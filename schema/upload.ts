import type { FileUpload } from 'graphql-upload/processRequest.mjs';
import { MenagerieError } from '../core/errors.js';

/**
 * Reads an uploaded file's bytes. The multipart middleware stops a file at the size cap,
 * and a file the `map` names but the body lacks rejects; both become coded errors.
 */
export async function readUpload(upload: Promise<FileUpload>): Promise<Buffer> {
  try {
    const file: FileUpload & { bytes?: () => Promise<Buffer> } = await upload;
    if (file.bytes) return await file.bytes();
    const chunks: Buffer[] = [];
    for await (const chunk of file.createReadStream()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } catch (error) {
    throw uploadError(error);
  }
}

/** Translates graphql-upload's http-errors (status 413, 400) to Menagerie codes. */
export function uploadError(error: unknown): MenagerieError {
  if (error instanceof MenagerieError) return error;
  const status = (error as { status?: number } | null)?.status;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 413 && /max file uploads/.test(message)) {
    return new MenagerieError('UPLOAD_TOO_MANY_FILES', message, { cause: error });
  }
  if (status === 413) return new MenagerieError('UPLOAD_TOO_LARGE', message, { cause: error });
  return new MenagerieError('UPLOAD_INVALID', message, { cause: error });
}
